"""Resume is exactly once: a run killed after it logged its final metrics (but before it closed)
logs nothing twice when resumed, ``data/prepare_s`` gains no point per resume, and the run of a
dead sweep is closed by the next start of *any* job on the store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import Counter

import pytest
from mlflow.tracking import MlflowClient

from recexp.jobs import train as train_job
from recexp.record import tag
from recexp.record.store import tracking_uri
from tests.faults.helpers import all_runs, cli, cli_cmd, die_with_parent, env_for, split_runs
from tests.faults.test_kill_resume import ARGS


def _steps_are_unique(client: MlflowClient, run_id: str) -> dict[str, list[int]]:
    steps = {k: [m.step for m in client.get_metric_history(run_id, k)] for k in client.get_run(run_id).data.metrics}
    dup = {k: s for k, s in steps.items() if len(s) != len(set(s))}
    assert not dup, f"metrics logged twice at one step: {dup}"
    return steps


def test_killed_after_its_final_metrics_resumes_without_logging_them_again(tiny_cfg, tmp_path, monkeypatch):
    cfg = tiny_cfg("model.hidden_size=16", "model.ffn_dim=32", "trainer.max_epochs=2", "trainer.batch_size=64")
    real = train_job.write_test_outputs
    calls = []

    def killed_once(*a, **kw):  # the final metrics are logged just before: die before the run closes
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt("killed")
        return real(*a, **kw)

    monkeypatch.setattr(train_job, "write_test_outputs", killed_once)
    with pytest.raises(KeyboardInterrupt):
        train_job.train(cfg, tmp_path / "first")
    client = MlflowClient(tracking_uri(None, cfg.paths.runs_dir))
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "KILLED" and "test/ndcg_10" in run.data.metrics
    before = _steps_are_unique(client, run.info.run_id)

    train_job.train(cfg, tmp_path / "second")  # resumes the same run: nothing is logged twice
    (same,) = client.search_runs([run.info.experiment_id])
    assert same.info.run_id == run.info.run_id and same.info.status == "FINISHED"
    assert _steps_are_unique(client, run.info.run_id) == before
    assert len(before["data/prepare_s"]) == 1 and len(before["test/ndcg_10"]) == 1
    assert before["train/loss"] == [1, 2]


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_any_job_start_closes_the_runs_whose_job_died(tiny_cfg, tmp_path):
    cfg = tiny_cfg("model=pop")
    client = MlflowClient(tracking_uri(None, cfg.paths.runs_dir))
    exp = client.create_experiment("elsewhere")
    host, now = socket.gethostname(), time.time()
    runs = {name: client.create_run(exp, run_name=name, tags={tag.HOST: h, tag.PID: str(pid),
                                                              tag.HEARTBEAT: f"{beat:.0f}"}).info.run_id
            for name, h, pid, beat in [("dead here", host, _dead_pid(), now), ("alive here", host, os.getpid(), 0),
                                       ("silent there", "other-host", 1, now - 7200),
                                       ("beating there", "other-host", 1, now)]}
    no_tags = client.create_run(exp, run_name="no liveness tags").info.run_id  # cannot tell: left alone
    train_job.train(cfg, tmp_path / "job")
    status = {name: client.get_run(rid).info.status for name, rid in runs.items()}
    assert status == {"dead here": "KILLED", "alive here": "RUNNING", "silent there": "KILLED",
                      "beating there": "RUNNING"}
    assert "its process" in client.get_run(runs["dead here"]).data.tags[tag.ERROR]
    assert "no heartbeat from other-host" in client.get_run(runs["silent there"]).data.tags[tag.ERROR]
    assert client.get_run(no_tags).info.status == "RUNNING"


def test_a_killed_sweep_is_closed_by_an_unrelated_job(tmp_runs):
    proc = subprocess.Popen(cli_cmd(["-m", "seed=1,2", *ARGS]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env_for(tmp_runs), preexec_fn=die_with_parent)
    try:
        deadline = time.monotonic() + 400
        while not list(tmp_runs.glob("multirun/*/*/0/last.pt")):
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint before the kill"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)  # the sweep and its job: nothing can mark itself
        proc.wait(timeout=60)
    _, runs = all_runs(tmp_runs)
    assert Counter(r.info.status for r in runs) == {"RUNNING": 2}  # the parent and job 0
    r = cli(["model=pop", "dataset.generator.num_users=50", "dataset.generator.num_items=30", "device=cpu",
             "tracking.experiment=another"], tmp_runs)
    assert r.returncode == 0, r.stderr[-3000:]
    client, runs = all_runs(tmp_runs)
    parents, jobs = split_runs(runs)
    dead = [parents[0], *(j for j in jobs if j.data.tags.get(tag.SWEEP_ID))]
    assert len(dead) == 2 and all(d.info.status == "KILLED" for d in dead)
    assert all("its job died" in d.data.tags[tag.ERROR] for d in dead)
