"""Data-parallel training (``trainer.num_processes=2``) through the real CLI: two processes on
127.0.0.1 (gloo, CPU), one MLflow run written by rank 0, test figures equal to a single-process
evaluation of the same checkpoint to the last digit, and one line for a refusal or a rank's error."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest

from recexp.errors import ConfigError
from recexp.jobs.evaluate import evaluate
from recexp.jobs.train import train
from tests.faults.helpers import SMALL, all_runs, cli, cli_cmd, env_for

TWO = [*SMALL, "trainer.num_processes=2", "trainer.max_epochs=2", "trainer.batch_size=32"]


def _cli(args: list[str], runs, extra_env: dict[str, str]) -> subprocess.CompletedProcess:  # noqa: ANN001
    return subprocess.run(cli_cmd(args), capture_output=True, text=True, env=env_for(runs) | extra_env, timeout=300)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_two_processes_one_run_and_exact_test_metrics(tmp_runs):
    job = tmp_runs / "job"
    r = cli(["model=sasrec", f"hydra.run.dir={job}", *TWO], tmp_runs, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    client, runs = all_runs(tmp_runs)
    (run,) = runs  # one run per job: rank 1 records nothing
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.num_processes"] == "2" and run.data.params["dist.world_size"] == "2"
    assert run.data.params["dist.backend"] == "gloo"
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 2  # logged once per epoch
    recorded = {k: v for k, v in run.data.metrics.items() if k.startswith("test/") and k != "test/eval_s"}
    ddp_table = pd.read_parquet(job / "per_user_test.parquet")
    assert (job / "best.pt").is_file() and (job / "last.pt").is_file()
    assert not list(job.glob("error-rank*.txt"))

    single = evaluate(job, "cpu")  # one process, the same best.pt
    again = {k: v for k, v in single.items() if k in recorded}
    assert again.keys() == recorded.keys() and len(recorded) > 10
    assert again == recorded, {k: (recorded[k], again[k]) for k in recorded if recorded[k] != again[k]}
    assert json.loads((job / "metrics.json").read_text())["test/ndcg_10"] == single["test/ndcg_10"]
    one = pd.read_parquet(job / "per_user_test.parquet")  # rewritten by evaluate
    assert ddp_table[["user", "rank", "ties"]].equals(one[["user", "rank", "ties"]])


def test_a_rank_error_is_one_line_and_the_run_fails(tmp_runs):
    job = tmp_runs / "job"
    r = cli([f"hydra.run.dir={job}", "model._target_=tests.integration.ddp_faulty.FailsOnRankOne", *TWO],
            tmp_runs, timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]
    assert _error_lines(r.stderr) == [f"error: rank 1: RuntimeError: boom on rank 1 "
                                      f"(traceback in {job / 'error-rank1.txt'})"], r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert "boom on rank 1" in (job / "error-rank1.txt").read_text()
    _, runs = all_runs(tmp_runs)
    (run,) = runs
    assert run.info.status == "FAILED"
    assert run.data.tags["recexp.error"] == "rank 1: RuntimeError: boom on rank 1"


def test_a_refusal_is_one_line_before_anything_starts(tmp_runs):
    r = cli(["model=pop", *(o for o in TWO if not o.startswith("model.")), f"hydra.run.dir={tmp_runs / 'job'}"],
            tmp_runs, timeout=120)
    assert r.returncode == 2
    assert _error_lines(r.stderr) == ["error: trainer.num_processes=2: model Pop is fit by counting: there is "
                                      "nothing to train in parallel; use trainer.num_processes=1"], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not all_runs(tmp_runs)[1]  # no MLflow run started
    assert not (tmp_runs / "job" / "best.pt").exists()


@pytest.mark.parametrize("overrides, message", [
    (["trainer.num_processes=0"], "trainer.num_processes=0: expected an integer in [1, 4096]"),
    (["trainer.num_processes=4000"], "more processes than the"),
    (["trainer.num_processes=2", "model=gru4rec", "model.session_parallel=true"], "session_parallel"),
    (["trainer.num_processes=2", "device=cuda:1"], "device=cuda:1: with trainer.num_processes=2"),
])
def test_refusals(tiny_cfg, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        train(tiny_cfg(*overrides), tmp_path / "job")
    assert "\n" not in str(err.value)


@pytest.mark.slow  # three jobs of two processes: ~100 s on 2 busy cores
def test_a_killed_job_resumes_every_rank_exactly(tmp_runs, tmp_path):
    """Interrupted in its second epoch, rerun: the run goes on from last.pt (every rank's random
    streams restored) and ends with the figures of the same job never interrupted."""
    model = "model._target_=tests.integration.ddp_faulty.InterruptedOnce"
    ref = cli([model, f"hydra.run.dir={tmp_path / 'ref'}", *TWO], tmp_path / "ref-runs", timeout=300)
    assert ref.returncode == 0, ref.stderr[-3000:]
    job = tmp_runs / "job"
    env = {"RECEXP_TEST_INTERRUPT_MARK": str(tmp_path / "interrupted"), "RECEXP_TEST_INTERRUPT_AT": "12"}
    first = _cli([model, f"hydra.run.dir={job}", *TWO], tmp_runs, env)
    assert first.returncode == 130, first.stderr[-3000:]
    assert "interrupted:" in first.stderr and "Traceback" not in first.stderr
    _, (killed,) = all_runs(tmp_runs)
    assert killed.info.status == "KILLED"
    again = _cli([model, f"hydra.run.dir={job}", *TWO], tmp_runs, env)
    assert again.returncode == 0, again.stderr[-3000:]
    _, (run,) = all_runs(tmp_runs)  # the same run, continued
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    _, (whole,) = all_runs(tmp_path / "ref-runs")
    figures = {k: v for k, v in run.data.metrics.items() if k.startswith(("test/", "valid/")) and "eval_s" not in k}
    assert figures == {k: whole.data.metrics[k] for k in figures}


def test_one_process_through_the_distributed_path_changes_no_number(tiny_cfg, tmp_path, monkeypatch):
    """RECEXP_DDP=always: a one-process group (the launcher, DDP, the sharded windows, the gathered
    evaluation) trains and evaluates to the single-process figures, to the last digit."""
    overrides = ("trainer.batch_size=32", "model.hidden_size=16", "model.ffn_dim=32", "max_len=8")
    plain = train(tiny_cfg(*overrides), tmp_path / "plain")
    monkeypatch.setenv("RECEXP_DDP", "always")
    group = train(tiny_cfg(*overrides), tmp_path / "group")
    figures = [k for k in plain if k.startswith(("valid/", "test/")) and not k.endswith("eval_s")]
    assert len(figures) > 20 and {k: group[k] for k in figures} == {k: plain[k] for k in figures}
