"""`recexp compare` on runs recorded with option names, on two datasets, and on a session split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from recexp.analysis.compare import main
from recexp.record.store import ensure_experiment


def _run(client: MlflowClient, exp: str, tmp: Path, loss: str, seed: int, dataset: str, users: np.ndarray,
         shift: float) -> None:
    """A run as `recexp train` records it now: option names under choices.*, the protocol tag."""
    rng = np.random.default_rng(seed * 31 + len(loss) + len(dataset))
    base = np.random.default_rng(len(dataset)).random(len(users))
    ndcg = np.clip(base * 0.3 + shift + rng.normal(0, 0.02, len(users)), 0, 1)
    proto = {"split": "Session" if len(set(users)) < len(users) else "LeaveOneOut", "mode": "full",
             "mask_history": "all"}
    run = client.create_run(exp, run_name=f"{loss}-{dataset}-s{seed}",
                            tags={"recexp.dataset": dataset, "recexp.protocol": json.dumps(proto)})
    rid = run.info.run_id
    target = {"ce": "CrossEntropy", "bce": "BCE"}[loss]
    for k, v in {"choices.loss": loss, "loss._target_": f"recexp.losses.{target}", "seed": str(seed),
                 "choices.dataset": dataset, "dataset.name": dataset, "data.users": str(len(set(users)))}.items():
        client.log_param(rid, k, v)
    client.log_metric(rid, "test/ndcg_10", float(ndcg.mean()))
    path = tmp / rid / "per_user_test.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"user": users, "target": np.arange(len(users)) % 5 + 1, "ndcg_10": ndcg}).to_parquet(path)
    client.log_artifact(rid, str(path))
    client.set_terminated(rid, "FINISHED")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("labels")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = ensure_experiment(uri, "two-datasets")
    for seed in (1, 2):
        for dataset, n in (("ml-100k", 120), ("beauty", 150)):
            _run(client, exp, tmp, "ce", seed, dataset, np.arange(1, n + 1), shift=0.05)
            _run(client, exp, tmp, "bce", seed, dataset, np.arange(1, n + 1), shift=0.0)
    sess = ensure_experiment(uri, "session")
    users = np.repeat(np.arange(1, 31), 8)  # 30 users, 8 session prefixes each
    for seed in (1, 2):
        _run(client, sess, tmp, "ce", seed, "ml-100k", users, shift=0.05)
        _run(client, sess, tmp, "bce", seed, "ml-100k", users, shift=0.0)
    return uri


def test_groups_are_labelled_by_option_names_and_baseline_accepts_them(store, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["--uri", store, "-e", "two-datasets", "--filter", "tags.`recexp.dataset` = 'beauty'",
                 "--baseline", "loss=bce", "--out", str(out), "--no-log"]) == 0
    (row,) = pd.read_csv(out / "tests.csv").itertuples()
    assert row.group == "loss=ce" and row.baseline == "loss=bce" and row.users == 150
    assert "loss=CrossEntropy" not in capsys.readouterr().out


def test_no_selection_compares_each_dataset_separately(store, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["--uri", store, "-e", "two-datasets", "--baseline", "loss=bce", "--out", str(out), "--no-log"]) == 0
    text = capsys.readouterr().out
    assert "compared separately" in text and "ml-100k" in text and "beauty" in text
    users = sorted(int(pd.read_csv(p).users.iloc[0]) for p in out.glob("*/tests.csv"))
    assert users == [120, 150]


def test_session_split_tests_are_per_user_and_say_so(store, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["--uri", store, "-e", "session", "--baseline", "loss=bce", "--out", str(out), "--no-log"]) == 0
    (row,) = pd.read_csv(out / "tests.csv").itertuples()
    assert row.users == 30  # not 240 prefixes
    assert "240 examples averaged per user first: 30 users" in capsys.readouterr().out
    assert "averaged per user first" in (out / "comparison.md").read_text()
