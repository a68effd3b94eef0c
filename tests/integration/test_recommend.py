"""Using a trained model: the Python API, `recexp recommend`, the logged MLflow model (loaded, and
served by `mlflow models serve` on 127.0.0.1 with --env-manager local), and the refusals of bad
input (one line each, nothing executed from a file)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import recexp
from recexp.cli.recommend import main as recommend_main
from recexp.config.compose import group_choices
from recexp.data.synthetic import generate
from recexp.errors import UserError
from recexp.serving import bundle
from recexp.serving.recommend import Recommender

RUN = ["trainer.max_epochs=1", "trainer.progress=false", "max_len=20", "device=cpu"]


def frame(seed: int = 0) -> pd.DataFrame:
    """Synthetic interactions with string ids unlike the internal 1..N, so a mix-up shows."""
    df = generate(num_users=120, num_items=90, mean_length=10, seed=seed)
    return pd.DataFrame({"uid": "u" + df["user"].astype(str), "iid": "i" + df["item"].astype(str),
                         "when": df["timestamp"]})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """One SASRec run through the Python API, with its own runs dir and MLflow store."""
    runs = tmp_path_factory.mktemp("api") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECEXP_RUNS_DIR", str(runs))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        data = recexp.Dataset.from_pandas(frame(), user="uid", item="iid", time="when", name="toy")
        result = recexp.train(data, ["model=sasrec", *RUN])
        yield result, runs


def test_api_train_recommend_and_metrics(trained):
    result, runs = trained
    assert 0.0 <= result.metrics["test/ndcg_10"] <= 1.0
    top = result.recommend(["u3", "u7"], k=4)
    assert list(top.columns) == ["user", "rank", "item", "score"]
    assert top["user"].tolist() == ["u3"] * 4 + ["u7"] * 4
    assert top["item"].str.startswith("i").all()
    for _, g in top.groupby("user"):
        assert (np.diff(g["score"].to_numpy()) <= 0).all()
    # history items are left out by default (the user's whole history, not only the model window)
    seen = set(frame().query("uid == 'u3'")["iid"])
    assert not seen & set(top.query("user == 'u3'")["item"])
    # the same MLflow run as the CLI: params, the model artifact, per-user results in raw ids
    from mlflow.tracking import MlflowClient

    from recexp.record.store import tracking_uri

    client = MlflowClient(tracking_uri(None, str(runs)))
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.params["dataset.format"] == "csv"
    assert {"model", "per_user_test.parquet"} <= {a.path for a in client.list_artifacts(result.run_id)}
    per_user = pd.read_parquet(result.job_dir / "per_user_test.parquet")
    assert per_user["user"].str.startswith("u").all()
    assert (result.job_dir / "model" / "MLmodel").is_file()
    # the job folder is a CLI job folder: `recexp evaluate` reproduces the test figures
    from recexp.jobs.evaluate import evaluate

    again = evaluate(result.job_dir, "cpu")
    assert again["test/ndcg_10"] == pytest.approx(result.metrics["test/ndcg_10"], abs=1e-6)


def test_api_refuses_unknown_user_and_missing_column(trained):
    result, _ = trained
    with pytest.raises(UserError, match="user 'nobody' is not known to this model"):
        result.recommend(["nobody"])
    with pytest.raises(UserError, match=r"time='t'\): no such column"):
        recexp.Dataset.from_pandas(frame(), user="uid", item="iid", time="t")


def known_items(result) -> list[str]:
    return [str(x) for x in bundle.load(result.job_dir).item_raw[:2]]


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = recommend_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_matches_api_and_writes_files(trained, capsys, tmp_path):
    result, runs = trained
    rc, out, _ = _cli(capsys, result.job_dir, "--users", "u3,u7", "--k", "4")
    assert rc == 0
    cli = pd.read_csv(io.StringIO(out), dtype={"user": str, "item": str})
    api = result.recommend(["u3", "u7"], k=4)
    assert cli[["user", "rank", "item"]].equals(api[["user", "rank", "item"]])
    np.testing.assert_allclose(cli["score"], api["score"], rtol=1e-5)
    # by run id, from the MLflow store; all users to Parquet; a users file
    (tmp_path / "users.txt").write_text("u7\n\nu3\n")
    rc, out, _ = _cli(capsys, result.run_id, "--tracking-uri", f"sqlite:///{runs / 'mlflow.db'}",
                      "--users-file", tmp_path / "users.txt", "--k", "4")
    by_file = pd.read_csv(io.StringIO(out), dtype={"user": str, "item": str})
    assert rc == 0 and by_file["user"].tolist() == ["u7"] * 4 + ["u3"] * 4
    assert _cli(capsys, result.job_dir, "--k", "5", "--out", tmp_path / "all.parquet")[0] == 0
    everyone = pd.read_parquet(tmp_path / "all.parquet")
    users = json.loads((bundle.find(result.job_dir) / bundle.META).read_text())["num_users"]
    assert everyone["user"].nunique() == users > 100 and (everyone.groupby("user").size() == 5).all()
    # a history: anonymous, or appended to a user's; --keep-history may return its items
    a, b = known_items(result)
    rc, out, _ = _cli(capsys, result.job_dir, "--history", f"{a} {b}", "--k", "90", "--keep-history")
    anon = pd.read_csv(io.StringIO(out), dtype={"item": str})
    assert rc == 0 and {a, b} <= set(anon["item"])
    rc, out, _ = _cli(capsys, result.job_dir, "--history", f"{a} {b}", "--k", "90")
    assert rc == 0 and not {a, b} & set(pd.read_csv(io.StringIO(out), dtype={"item": str})["item"])


@pytest.mark.parametrize(("argv", "message"), [
    (["--users", "nobody"], "user 'nobody' is not known to this model"),
    (["--history", "nope"], "item 'nope' is not known to this model"),
    (["--k", "0"], "--k=0: must be at least 1"),
    (["--out", "x.json"], "expected a .csv or .parquet file name"),
])
def test_cli_bad_input_is_one_line(trained, capsys, argv, message):
    rc, out, err = _cli(capsys, trained[0].job_dir, *argv)
    assert rc == 2 and out == "" and message in err and "Traceback" not in err


def test_cli_run_without_model(trained, capsys, tmp_path):
    rc, _, err = _cli(capsys, tmp_path)
    assert rc == 2 and "no trained model here" in err
    rc, _, err = _cli(capsys, "0" * 32, "--tracking-uri", f"sqlite:///{trained[1] / 'mlflow.db'}")
    assert rc == 2 and "no MLflow run with that id" in err


class _Payload:
    """What a malicious weights file carries: unpickling it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def _copy(result, tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copytree(bundle.find(result.job_dir), dst)
    return dst


def test_unsafe_or_corrupt_artifacts_are_refused(trained, tmp_path, capsys):
    result, _ = trained
    pickled = _copy(result, tmp_path, "pickled")
    marker = tmp_path / "executed"
    torch.save({"state": {}, "fingerprint": "x", "evil": _Payload(marker)}, pickled / bundle.WEIGHTS)
    rc, _, err = _cli(capsys, pickled)
    assert rc == 2 and "refused, it holds more than tensors" in err and not marker.exists()

    corrupt = _copy(result, tmp_path, "corrupt")
    (corrupt / bundle.WEIGHTS).write_bytes(b"not a torch file")
    assert "not a readable weights file" in _cli(capsys, corrupt)[2]
    (corrupt / bundle.IDS).write_bytes(b"garbage")
    assert "not a readable id map" in _cli(capsys, corrupt)[2]

    target = _copy(result, tmp_path, "target")
    meta = json.loads((target / bundle.META).read_text())
    meta["model_values"]["hidden_size"] = {"_target_": "os.system", "command": "touch " + str(marker)}
    (target / bundle.META).write_text(json.dumps(meta))
    assert "refuses a '_target_'" in _cli(capsys, target)[2] and not marker.exists()
    meta["model"] = "../../evil"
    meta["model_values"]["hidden_size"] = 64
    (target / bundle.META).write_text(json.dumps(meta))
    assert "is not a model of this recexp" in _cli(capsys, target)[2]
    (target / bundle.META).write_text("{")
    assert "not a readable model description" in _cli(capsys, target)[2]


def test_model_from_another_dataset_is_refused(trained, tiny_cfg, tmp_path, capsys):
    from recexp.jobs.train import train

    other = tmp_path / "other"
    train(tiny_cfg("model=sasrec", "tracking=none", *RUN), other)
    mixed = _copy(trained[0], tmp_path, "mixed")
    shutil.copy(bundle.find(other) / bundle.WEIGHTS, mixed / bundle.WEIGHTS)
    rc, _, err = _cli(capsys, mixed)
    assert rc == 2 and "weights of a model trained on another dataset" in err
    shutil.copy(bundle.find(other) / bundle.IDS, mixed / bundle.IDS)
    assert "id maps of another dataset" in _cli(capsys, mixed)[2]


def test_pyfunc_predict_matches_recommend(trained):
    import mlflow.pyfunc

    result, _ = trained
    model = mlflow.pyfunc.load_model(str(result.job_dir / "model"))
    a, b = known_items(result)
    req = pd.DataFrame({"user": ["u3", None], "history": [None, f"{a} {b}"], "k": [3, 2]})
    got = model.predict(req)
    assert got["row"].tolist() == [0, 0, 0, 1, 1]
    rec = Recommender(bundle.load(result.job_dir))
    want = pd.concat([rec.for_users(["u3"], 3), rec.for_histories([[a, b]], 2, labels=[""])])
    assert got["item"].tolist() == want["item"].tolist()
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-6)


@pytest.mark.parametrize("model", [m for m in group_choices()["model"] if m != "sasrec"])  # sasrec: above
def test_every_model_round_trips(model, tiny_cfg, tmp_path, monkeypatch):
    """The saved bundle rebuilds each model with the scores of the model that was trained."""
    from recexp.jobs.train import train
    from recexp.serving import export

    trained_models = []

    def spy(cfg, model, data, output_dir, tracker):  # noqa: ANN001, ANN202
        trained_models.append(model)
        return real(cfg, model, data, output_dir, tracker)

    real = export.export_model
    monkeypatch.setattr(export, "export_model", spy)
    out = tmp_path / "job"
    train(tiny_cfg(f"model={model}", "tracking=none", *RUN, "dataset.generator.num_users=80",
                   "dataset.generator.num_items=60"), out)
    loaded = bundle.load(out)
    rec = Recommender(loaded)
    top = rec.for_users(None, k=5)
    assert top["user"].nunique() == int(loaded.meta["num_users"]) and len(top) == 5 * top["user"].nunique()
    live = Recommender(dataclasses.replace(loaded, model=trained_models[0].eval())).for_users(None, k=5)
    assert top["item"].tolist() == live["item"].tolist()
    np.testing.assert_allclose(top["score"], live["score"], rtol=1e-5, atol=1e-6)
    hist = rec.for_histories([list(loaded.item_raw[:3])], k=5)
    assert len(hist) == 5 and not set(loaded.item_raw[:3]) & set(hist["item"])


START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_served_model_answers_like_recommend(trained, capsys, tmp_path):
    result, runs = trained
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{runs / 'mlflow.db'}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # uvicorn
           "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).parents[2] / "src"),
                                                     os.environ.get("PYTHONPATH")) if p)}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{result.run_id}/model",
                             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "server not up in time"
                time.sleep(0.5)
        got = _post(f"http://127.0.0.1:{port}/invocations",
                    {"dataframe_records": [{"user": "u3", "k": 5}, {"user": "u7", "k": 5}]})["predictions"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group: mlflow and the uvicorn it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    served = pd.DataFrame(got)
    assert recommend_main([str(result.job_dir), "--users", "u3", "u7", "--k", "5"]) == 0
    cli = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype={"user": str, "item": str})
    assert served["user"].tolist() == cli["user"].tolist() and served["item"].tolist() == cli["item"].tolist()
    np.testing.assert_allclose(served["score"], cli["score"], rtol=1e-5)
