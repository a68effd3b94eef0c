"""A sweep says what it did: a job skipped because an identical run already FINISHED (here one
made outside any sweep) says so, belongs to the new sweep (compare --sweep, job count), and the
sweep ends with a summary table and the exact compare command. Real CLI, count models (fast)."""

from __future__ import annotations

from recexp.analysis.compare import main as compare_main
from recexp.runtime.terminal import COMPACT_ENV
from tests.faults.helpers import SMALL, all_runs, cli, split_runs

COUNT = [o for o in SMALL if not o.startswith("model.")]  # count models have no layer sizes


def test_skipped_job_is_reported_and_attached_to_the_new_sweep(tmp_runs, tmp_path, capsys, monkeypatch):
    first = cli(["model=pop", *COUNT], tmp_runs)  # a single run, outside any sweep
    assert first.returncode == 0, first.stderr[-3000:]
    r = cli(["-m", "model=pop,markov", *COUNT], tmp_runs)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "skipped:" in out and "nothing trained: this config has FINISHED run" in out
    # a tidy terminal: each fact once, one line per job, no log-formatted lines (they go to recexp.log)
    assert out.count("skipped:") == 1 and "job 0: model=pop" in out and "job 1: model=markov" in out
    assert not [ln for ln in out.splitlines() if "INFO" in ln or "[HYDRA]" in ln or "][recexp][" in ln]
    assert out.count("runs folder: ") == 1 and "MLflow: http://127.0.0.1:5000/#/experiments/" in out
    (log,) = tmp_runs.glob("multirun/*/*/0/recexp.log")
    assert "skipped: run" in log.read_text()
    client, runs = all_runs(tmp_runs)
    (parent,), jobs = split_runs(runs)
    sweep_id = parent.data.tags["recexp.sweep_id"]
    assert parent.data.tags["recexp.jobs"] == "2" and parent.data.tags["recexp.jobs_skipped"] == "1"
    assert len(jobs) == 2  # nothing trained twice
    # the summary table: one row per job, what each did, and the command to compare the sweep
    assert f"sweep {sweep_id}: 2 jobs" in out and "trained/skipped" in out
    assert "skipped (reused" in out and "model=markov" in out and "model=pop" in out
    assert f"recexp compare --sweep {sweep_id}" in out
    capsys.readouterr()
    assert compare_main(["--uri", client.tracking_uri, "--sweep", sweep_id, "--baseline", "model=pop",
                         "--out", str(tmp_path / "cmp"), "--no-log"]) == 0
    assert "2 runs in 2 groups" in capsys.readouterr().out
    # as `recexp hypothesis run` runs its sweeps: one line per job, one line for the sweep
    monkeypatch.setenv(COMPACT_ENV, "1")
    r = cli(["-m", "model=pop,markov", *COUNT], tmp_runs)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "  job 0 (model=pop): skipped (FINISHED run" in out and "  job 1 (model=markov): skipped" in out
    assert "2 jobs, 0 trained, 2 skipped, 0 failed" in out and "┏" not in out and "dataset synthetic" not in out
