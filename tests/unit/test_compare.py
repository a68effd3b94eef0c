"""`recexp compare` against a small MLflow store written directly (no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from recexp.analysis.compare import main
from recexp.analysis.compare.grouping import group_runs, varying_keys
from recexp.analysis.query import RunRecord
from recexp.record.store import ensure_experiment

USERS = 200


def _log_run(client: MlflowClient, exp: str, tmp: Path, loss: str, seed: int, shift: float,
             per_user: bool = True, hypothesis: str = "CE beats BCE") -> str:
    rng = np.random.default_rng(seed * 10 + len(loss))
    # per-user NDCG@10: a shared "difficulty" per user plus noise; CE shifted up by ``shift``
    base = np.random.default_rng(0).random(USERS)
    ndcg = np.clip(base * 0.3 + shift + rng.normal(0, 0.02, USERS), 0, 1)
    run = client.create_run(exp, run_name=f"{loss}-s{seed}", tags={"recexp.hypothesis": hypothesis})
    rid = run.info.run_id
    params = {"loss._target_": f"recexp.losses.{loss}", "seed": str(seed), "model._target_": "recexp.models.sasrec.SASRec",
              "paths.runs_dir": f"/tmp/{seed}"}
    if loss == "CrossEntropy":
        params["loss.label_smoothing"] = "0.0"
    for k, v in params.items():
        client.log_param(rid, k, v)
    for step in range(1, 4):
        client.log_metric(rid, "valid/ndcg_10", float(ndcg.mean()) * step / 3, step=step)
    client.log_metric(rid, "epochs_run", 3.0)
    client.log_metric(rid, "test/ndcg_10", float(ndcg.mean()))
    client.log_metric(rid, "test/hr_10", float((ndcg > 0.2).mean()))
    if per_user:
        path = tmp / f"{rid}" / "per_user_test.parquet"
        path.parent.mkdir(parents=True)
        pd.DataFrame({"user": np.arange(1, USERS + 1), "target": np.arange(USERS) % 7 + 1,
                      "rank": np.zeros(USERS, dtype=np.int64), "ndcg_10": ndcg}).to_parquet(path, index=False)
        client.log_artifact(rid, str(path))
    client.set_terminated(rid, "FINISHED")
    return rid


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, MlflowClient, str]:
    """One store for the module (creating MLflow stores is the slow part): 2 losses x 3 seeds
    plus a sweep parent run that compare must ignore."""
    tmp_path = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = ensure_experiment(uri, "cmp")
    client = MlflowClient(uri)
    for seed in (1, 2, 3):
        _log_run(client, exp, tmp_path, "CrossEntropy", seed, shift=0.05)
        _log_run(client, exp, tmp_path, "BCE", seed, shift=0.0)
    parent = client.create_run(exp, run_name="sweep", tags={"recexp.role": "sweep"})
    client.set_terminated(parent.info.run_id, "FINISHED")
    return uri, client, exp


def _rec(params: dict[str, str]) -> RunRecord:
    return RunRecord("id", "n", "0", 0, params, {}, {})


def test_grouping_ignores_seed_and_implied_keys():
    runs = [_rec({"loss._target_": "a.CE", "loss.label_smoothing": "0.0", "seed": "1", "paths.runs_dir": "x"}),
            _rec({"loss._target_": "a.CE", "loss.label_smoothing": "0.0", "seed": "2", "paths.runs_dir": "y"}),
            _rec({"loss._target_": "a.BCE", "seed": "1"})]
    assert varying_keys(runs) == ["loss._target_"]
    groups = group_runs(runs)
    assert [g.label for g in groups] == ["loss=CE", "loss=BCE"] and [len(g.runs) for g in groups] == [2, 1]


def test_compare_end_to_end(store, tmp_path, capsys):
    uri, client, exp = store
    out = tmp_path / "out"
    assert main(["--uri", uri, "--experiment", "cmp", "--baseline", "loss=BCE", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "6 runs in 2 groups" in text and "CE beats BCE" in text and "supported" in text
    tests = pd.read_csv(out / "tests.csv")
    (row,) = tests.itertuples()
    assert row.group == "loss=CrossEntropy" and row.baseline == "loss=BCE" and row.users == USERS
    assert row.delta == pytest.approx(0.05, abs=0.01) and row.p_supported_holm < 0.01 and row.verdict == "supported"
    assert row.lo > 0 and row.p_wilcoxon_secondary < 1e-6  # two-sided: the interval excludes 0
    assert text.rstrip().splitlines()[-2].startswith("verdict: supported") or "verdict: supported" in text
    summary = pd.read_csv(out / "summary.csv")
    assert summary["runs"].tolist() == [3, 3] and (summary["test/ndcg_10 sd"] > 0).all()
    for f in ("comparison.md", "comparison.tex", *(f"{s}.{x}" for s in ("metrics", "effects", "valid_curves")
                                                     for x in ("pdf", "png", "csv"))):
        assert (out / f).stat().st_size > 0, f
    assert "mean ± s.d. over seeds" in text and "95% CI" not in text  # a spread, not a t-interval of 3 seeds
    assert (out / "metrics.pdf").read_bytes()[:5] == b"%PDF-"  # vector
    points = pd.read_csv(out / "metrics.csv")
    assert len(points) == 6 * len(points["metric"].unique()) and set(points["seed"]) == {1, 2, 3}
    eff = pd.read_csv(out / "effects.csv")  # the engine's interval, as tests.csv has it
    assert eff["lo"].iloc[0] == pytest.approx(row.lo) and eff["hi"].iloc[0] == pytest.approx(row.hi)
    curves = pd.read_csv(out / "valid_curves.csv")
    assert curves["epoch"].dtype.kind == "i" and set(curves["seed"]) == {1, 2, 3}  # whole epochs, per seed
    tex = (out / "comparison.tex").read_text()
    assert r"\caption{" in tex and r"\label{tab:compare-ndcg10}" in tex and "seeds 1,2,3" in tex
    assert "s.d. over seeds" in tex and "interval" in tex and r"\begin{tabular}" in tex
    (cmp_run,) = client.search_runs([exp], "tags.`recexp.role` = 'compare'")
    assert cmp_run.data.tags["recexp.verdict"] == "supported"
    arts = {a.path for a in client.list_artifacts(cmp_run.info.run_id)}
    assert {"metrics.png", "metrics.pdf", "effects.pdf", "valid_curves.png", "summary.csv", "comparison.md"} <= arts
    # a second compare ignores the comparison run it logged
    assert main(["--uri", uri, "--experiment", "cmp", "--no-log", "--out", str(tmp_path / "o2")]) == 0
    assert "6 runs in 2 groups" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--experiment", "nope"], "--experiment 'nope': no such experiment"),
    (["--filter", "params.x === 1"], "--filter 'params.x === 1': MLflow rejected it"),
    (["--filter", "params.`loss._target_` = 'recexp.losses.BCE'"], "nothing to compare"),
    (["--baseline", "loss=Hinge"], "--baseline loss=Hinge matches no group"),
    (["--metrics", "test/auc"], "--metrics: test/auc not logged"),
])
def test_bad_input_is_one_line(store, tmp_path, capsys, args, message):
    uri = store[0]
    assert main(["--uri", uri, "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_runs_without_per_user_metrics_are_one_line(store, tmp_path, capsys):
    uri, client, _ = store
    exp = client.create_experiment("no-per-user")
    _log_run(client, exp, tmp_path, "BCE", 1, shift=0.0)
    _log_run(client, exp, tmp_path, "BPR", 1, shift=0.0, per_user=False)
    assert main(["--uri", uri, "-e", "no-per-user", "--out", str(tmp_path / "o"), "--no-log"]) == 2
    err = capsys.readouterr().err.strip()
    assert "BPR-s1" in err and "has no per_user_test.parquet" in err and len(err.splitlines()) == 1


def test_missing_store_is_one_line(tmp_path, capsys):
    assert main(["--uri", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no MLflow store" in capsys.readouterr().err
