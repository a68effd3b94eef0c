"""End-to-end runs on tiny synthetic data through the real config and the MLflow store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from recexp.errors import ConfigError, DataError, NonFiniteLoss
from recexp.jobs.train import train
from recexp.record.store import tracking_uri


def _runs(runs_dir: Path):
    client = MlflowClient(tracking_uri(None, str(runs_dir)))
    exps = client.search_experiments()
    return client, client.search_runs([e.experiment_id for e in exps], max_results=1000)


def test_smoke_train_records_everything(tiny_cfg, tmp_path):
    cfg = tiny_cfg("model=sasrec", "hypothesis=two blocks are enough")
    out = tmp_path / "job"
    metrics = train(cfg, out)
    for key in ("valid/ndcg_10", "test/ndcg_10", "test/hr_10", "test/mrr_10", "test/hr_20", "test/ndcg_5"):
        assert 0.0 <= metrics[key] <= 1.0
    assert json.loads((out / "metrics.json").read_text())["test/ndcg_10"] == metrics["test/ndcg_10"]
    assert (out / "best.pt").is_file() and (out / "per_user_test.parquet").is_file()
    client, runs = _runs(Path(cfg.paths.runs_dir))
    (run,) = runs
    assert run.info.status == "FINISHED"
    assert run.data.params["model.hidden_size"] == "64"
    assert run.data.tags["recexp.hypothesis"] == "two blocks are enough"
    assert run.data.tags["recexp.dataset_fingerprint"]
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 2
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "config.yaml", "per_user_test.parquet"} <= arts
    # what the MLflow UI's landing view shows first (docs/ui.md), and where the run tells to look
    t = run.data.tags
    assert (t["dataset"], t["model"], t["loss"], t["sampler"]) == ("synthetic", "sasrec", "ce", "none")
    assert run.data.metrics["minutes"] == pytest.approx(run.data.metrics["fit_s"] / 60)
    assert metrics["mlflow_where"].startswith(f"MLflow: http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}"
                                              "/runs?workflowType=machine_learning&viewStateShareKey=recexp")


def test_pop_fits_without_gradient_steps(tiny_cfg, tmp_path):
    metrics = train(tiny_cfg("model=pop"), tmp_path / "job")
    assert metrics["epochs_run"] == 0 and metrics["test/hr_20"] > 0


def test_loss_choice_is_independent_of_model(tiny_cfg, tmp_path):
    m = train(tiny_cfg("model=sasrec", "loss=bce", "tracking=none"), tmp_path / "a")
    assert m["test/ndcg_10"] >= 0


def test_nonsense_combination_is_one_line(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="loss=ce scores every item"):
        train(tiny_cfg("loss=ce", "sampler=uniform", "tracking=none"), tmp_path / "a")


def test_missing_data_file_fails_run(tiny_cfg, tmp_path):
    cfg = tiny_cfg("dataset=beauty", f"data_dir={tmp_path}/nowhere", "dataset.download.url=null")
    with pytest.raises(DataError, match="Beauty.txt: file not found"):
        train(cfg, tmp_path / "a")
    _, runs = _runs(Path(cfg.paths.runs_dir))
    assert runs[0].info.status == "FAILED" and "file not found" in runs[0].data.tags["recexp.error"]


def test_offline_download_names_the_place(tiny_cfg, tmp_path):
    cfg = tiny_cfg("dataset=beauty", f"data_dir={tmp_path}/nowhere", "dataset.download.url=http://127.0.0.1:9/x.txt",
                   "tracking=none")
    with pytest.raises(DataError, match=r"download from .* failed .*place the file at"):
        train(cfg, tmp_path / "a")


def test_empty_after_filtering(tiny_cfg, tmp_path):
    with pytest.raises(DataError, match="empty after filtering"):
        train(tiny_cfg("dataset.min_user_count=1000", "tracking=none"), tmp_path / "a")


def test_cuda_without_gpu(tiny_cfg, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="device=cuda: no CUDA device"):
        train(tiny_cfg("device=cuda", "tracking=none"), tmp_path / "a")


def test_nan_loss_fails_run_with_epoch(tiny_cfg, tmp_path):
    cfg = tiny_cfg("trainer.lr=1e30", "trainer.grad_clip=null", "loss=bce")
    with pytest.raises(NonFiniteLoss, match="at epoch 1"):
        train(cfg, tmp_path / "a")
    _, runs = _runs(Path(cfg.paths.runs_dir))
    assert runs[0].info.status == "FAILED"


def test_ctrl_c_marks_run_killed_and_keeps_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    from recexp.training import trainer as trainer_mod

    calls = {"n": 0}
    real = trainer_mod.training_loss

    def interrupting(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(trainer_mod, "training_loss", interrupting)
    cfg = tiny_cfg("trainer.batch_size=32")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "a")
    assert (tmp_path / "a" / "last.pt").is_file()
    _, runs = _runs(Path(cfg.paths.runs_dir))
    assert runs[0].info.status == "KILLED"


def _cli(args: list[str], env_runs: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "RECEXP_RUNS_DIR": str(env_runs)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "recexp.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


SMALL = ["dataset.generator.num_users=200", "dataset.generator.num_items=100", "dataset.generator.mean_length=10",
         "trainer.max_epochs=1", "trainer.progress=false", "max_len=10", "device=cpu"]


def test_cli_multirun_four_jobs_one_sweep(tmp_runs):
    r = _cli(["train", "-m", "model=sasrec,pop", "seed=1,2", *SMALL], tmp_runs)
    assert r.returncode == 0, r.stderr[-2000:]
    client, runs = _runs(tmp_runs)
    parents = [x for x in runs if x.data.tags.get("recexp.role") == "sweep"]
    jobs = [x for x in runs if x.data.tags.get("recexp.role") != "sweep"]
    assert len(parents) == 1 and len(jobs) == 4
    sweep = parents[0].data.tags["recexp.sweep_id"]
    assert all(j.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for j in jobs)
    assert all(j.data.tags["recexp.sweep_id"] == sweep for j in jobs)
    assert all(j.info.status == "FINISHED" for j in jobs) and parents[0].info.status == "FINISHED"
    combos = sorted((j.data.params["model._target_"].rsplit(".", 1)[1], j.data.params["seed"]) for j in jobs)
    assert combos == [("Pop", "1"), ("Pop", "2"), ("SASRec", "1"), ("SASRec", "2")]
    # the parent's row in the UI: what its jobs are; the keys it swept
    assert parents[0].data.tags["recexp.swept"] == "model seed"
    assert sorted(parents[0].data.tags["model"].split(", ")) == ["pop", "sasrec"]
    assert parents[0].data.tags["dataset"] == "synthetic"


def test_cli_unknown_choice_lists_options(tmp_runs):
    r = _cli(["train", "model=nosuchmodel"], tmp_runs)
    assert r.returncode != 0
    assert "nosuchmodel" in r.stderr and "sasrec" in r.stderr and "Traceback" not in r.stderr


def test_cli_user_error_is_one_line(tmp_runs, tmp_path):
    small = [o for o in SMALL if not o.startswith("dataset.generator")]
    r = _cli(["train", "dataset=beauty", f"data_dir={tmp_path}", "dataset.download.url=null", *small], tmp_runs)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("error:")] == [
        f"error: {tmp_path}/beauty/Beauty.txt: file not found (set RECEXP_DATA_DIR or data_dir= to the folder holding it)"]


def test_cli_help_is_fast_and_lists_groups(tmp_runs):
    import time

    t = time.perf_counter()
    r = _cli(["train", "--help"], tmp_runs)
    assert r.returncode == 0 and "sasrec" in r.stdout and "loss" in r.stdout
    assert time.perf_counter() - t < 3.0  # well under a second plus interpreter start-up on a busy CI box


def test_cli_cfg_job_prints_config(tmp_runs):
    r = _cli(["train", "model=sasrec", "--cfg", "job"], tmp_runs)
    assert r.returncode == 0 and "recexp.models.sasrec.SASRec" in r.stdout


def test_evaluate_command_reproduces_the_runs_test_metrics(tmp_runs):
    r = _cli(["train", "model=sasrec", "tracking=none", "hydra.run.dir=" + str(tmp_runs / "job"), *SMALL], tmp_runs)
    assert r.returncode == 0, r.stderr[-2000:]
    expected = json.loads((tmp_runs / "job" / "metrics.json").read_text())
    r = _cli(["evaluate", str(tmp_runs / "job"), "--device", "cpu"], tmp_runs)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads((tmp_runs / "job" / "evaluate.json").read_text())
    for key in ("test/ndcg_10", "test/hr_10", "valid/ndcg_10"):
        assert abs(got[key] - expected[key]) < 1e-9, key
    r = _cli(["evaluate", str(tmp_runs / "nowhere")], tmp_runs)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not found" in r.stderr
    import torch

    ckpt = tmp_runs / "job" / "best.pt"
    torch.save({"model": {"item_emb.weight": torch.zeros(3, 2)}, "epoch": 1}, ckpt)  # another model's weights
    r = _cli(["evaluate", str(tmp_runs / "job"), "--device", "cpu"], tmp_runs)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"{ckpt}: does not fit this job's model" in r.stderr
    ckpt.write_bytes(b"not a checkpoint")
    r = _cli(["evaluate", str(tmp_runs / "job"), "--device", "cpu"], tmp_runs)
    assert r.returncode == 2 and f"{ckpt}: not a readable checkpoint" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("override,message", [("trainer.lr=abc", "trainer.lr='abc': expected a number"),
                                              ("trainer.batch_size=2.5", "trainer.batch_size=2.5: expected an integer")])
def test_badly_typed_trainer_value_is_one_line(tiny_cfg, tmp_path, override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        train(tiny_cfg(override, "tracking=none"), tmp_path / "a")


@pytest.mark.parametrize("args", ["--help", "train --help"])
def test_help_piped_into_a_reader_that_leaves_is_quiet(tmp_runs, args):
    """`recexp --help | head -3`, `recexp train --help | head -5`: the reader closes the pipe
    early; no BrokenPipeError traceback (a verb's help had one)."""
    import subprocess
    import sys

    p = subprocess.run(f"{sys.executable} -c 'from recexp.cli import main; raise SystemExit(main())' {args} | head -1",
                       shell=True, capture_output=True, text=True, env={**__import__("os").environ})
    assert p.stdout.startswith("usage: recexp") and "Traceback" not in p.stderr, p.stderr
