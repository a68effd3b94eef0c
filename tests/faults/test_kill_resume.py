"""A job killed with SIGKILL mid-training is not reported as finished; running the same command
again resumes it from its last checkpoint and ends with one FINISHED run holding every epoch."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from recexp.training import checkpoint
from tests.faults.helpers import all_runs, cli, cli_cmd, die_with_parent, env_for, split_runs

EPOCHS = 4
# big enough that an epoch takes a while, so the kill lands inside a later epoch
ARGS = ["dataset.generator.num_users=800", "dataset.generator.num_items=300", "dataset.generator.mean_length=20",
        f"trainer.max_epochs={EPOCHS}", "trainer.patience=100", "trainer.batch_size=64", "max_len=20",
        "device=cpu", "model.hidden_size=32", "model.ffn_dim=64", "trainer.progress=false",
        "trainer.min_steps_per_epoch=0"]


def _wait_for_checkpoint(runs: Path, proc: subprocess.Popen, timeout: float = 400,
                         pattern: str = "single/*/*/last.pt") -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the job ended before it could be killed"
        found = list(runs.glob(pattern))
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no last.pt appeared")


def test_sigkill_then_rerun_resumes_from_checkpoint(tmp_runs):
    proc = subprocess.Popen(cli_cmd(ARGS), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_for(tmp_runs),
                            preexec_fn=die_with_parent)
    try:
        last = _wait_for_checkpoint(tmp_runs, proc)
    finally:
        proc.send_signal(signal.SIGKILL)  # no handler runs: the run cannot mark itself
        proc.wait(timeout=60)
    done_epochs = checkpoint.load(last)["epoch"]
    assert 1 <= done_epochs < EPOCHS
    _, runs = all_runs(tmp_runs)
    (killed,) = runs
    assert killed.info.status == "RUNNING"  # never FINISHED; a rerun sees its process is gone

    r = cli(ARGS, tmp_runs)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert f"resuming run {killed.info.run_id}" in out
    client, runs = all_runs(tmp_runs)
    _, jobs = split_runs(runs)
    assert [j.info.run_id for j in jobs] == [killed.info.run_id]  # the same run went on: no duplicate
    assert jobs[0].info.status == "FINISHED"
    steps = sorted(m.step for m in client.get_metric_history(killed.info.run_id, "train/loss"))
    assert sorted(set(steps)) == list(range(1, EPOCHS + 1))  # every epoch's metrics, before and after the kill
    new_last = next(p for p in tmp_runs.glob("single/*/*/last.pt") if p != last)
    state = checkpoint.load(new_last)
    assert state["epoch"] == EPOCHS and len(state["history"]) == EPOCHS


def _sigterm_at_checkpoint(runs: Path, args: list[str], pattern: str = "single/*/*/last.pt") -> tuple[int, str, Path]:
    """Start the CLI, send SIGTERM once its first checkpoint exists: (exit status, output, checkpoint)."""
    proc = subprocess.Popen(cli_cmd(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env_for(runs), preexec_fn=die_with_parent)
    try:
        last = _wait_for_checkpoint(runs, proc, pattern=pattern)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, last


def test_sigterm_ends_the_run_killed_with_its_checkpoint(tmp_runs):
    """`kill PID` (or a scheduler's preemption) is handled like Ctrl-C: exit 130, the MLflow run
    is KILLED, not left RUNNING, and the job's checkpoint stays for `recexp evaluate` / a rerun."""
    rc, out, last = _sigterm_at_checkpoint(tmp_runs, ARGS)
    assert rc == 130, out[-2000:]
    assert "interrupted" in out and "KILLED" in out
    (run,) = all_runs(tmp_runs)[1]
    assert run.info.status == "KILLED"
    assert last.is_file()


def test_sigterm_mid_sweep_ends_the_sweep_and_its_parent_killed(tmp_runs):
    """SIGTERM (or Ctrl-C) inside a sweep's job stops the sweep: exit 130, the job KILLED with its
    checkpoint, and the sweep's parent run KILLED with the reason -- not left RUNNING until some
    later job notices its process is gone."""
    rc, out, _ = _sigterm_at_checkpoint(tmp_runs, ["-m", "seed=1,2", *ARGS], "multirun/*/*/0/last.pt")
    assert rc == 130, out[-2000:]
    parents, jobs = split_runs(all_runs(tmp_runs)[1])
    assert [j.info.status for j in jobs] == ["KILLED"]  # job 0 only: the sweep did not go on to job 1
    assert len(parents) == 1 and parents[0].info.status == "KILLED"
    assert "interrupted" in parents[0].data.tags["recexp.error"]
    assert "rerun the same command" in parents[0].data.tags["recexp.error"]
