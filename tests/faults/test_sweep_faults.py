"""Sweeps against the default local (SQLite) store lose nothing: parallel jobs, two sweeps at
once, jobs that raise, a rerun of a finished sweep. Every test runs the real CLI."""

from __future__ import annotations

import subprocess
import time

from tests.faults.helpers import SMALL, all_runs, cli, cli_cmd, die_with_parent, env_for, split_runs

LOCAL4 = ["hydra/launcher=local", "hydra.launcher.n_jobs=4"]


def test_eight_jobs_four_parallel_exactly_eight_finished(tmp_runs):
    r = cli(["-m", "seed=1,2,3,4,5,6,7,8", *LOCAL4, *SMALL], tmp_runs)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "database is locked" not in out and "Traceback" not in out
    _, runs = all_runs(tmp_runs)
    parents, jobs = split_runs(runs)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(jobs) == 8 and all(j.info.status == "FINISHED" for j in jobs)
    assert sorted(int(j.data.params["seed"]) for j in jobs) == list(range(1, 9))  # no duplicates
    assert len({j.data.tags["recexp.config_hash"] for j in jobs}) == 8
    assert all(j.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for j in jobs)
    assert all("test/ndcg_10" in j.data.metrics for j in jobs)


def test_two_sweeps_at_once_on_a_new_store(tmp_runs):
    """Both sweeps start on a store that does not exist yet: its creation is serialised."""
    env = env_for(tmp_runs)
    procs = [subprocess.Popen(cli_cmd(["-m", seeds, "hydra/launcher=local", "hydra.launcher.n_jobs=2", *SMALL]),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              preexec_fn=die_with_parent)
             for seeds in ("seed=1,2", "seed=3,4")]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]
        assert "database is locked" not in out and "already exists" not in out
    _, runs = all_runs(tmp_runs)
    parents, jobs = split_runs(runs)
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    assert len(jobs) == 4 and all(j.info.status == "FINISHED" for j in jobs)
    by_parent = {p.info.run_id: sorted(j.data.params["seed"] for j in jobs
                                       if j.data.tags["mlflow.parentRunId"] == p.info.run_id) for p in parents}
    assert sorted(by_parent.values()) == [["1", "2"], ["3", "4"]]


def test_jobs_that_raise_fail_alone_with_the_reason(tmp_runs):
    # lr=1e30 without clipping: NaN loss; monitor=nosuch_10: a bad config value. 1 of 4 jobs is sound.
    r = cli(["-m", "trainer.lr=0.001,1e30", "trainer.monitor=ndcg_10,nosuch_10", "loss=bce",
             "trainer.grad_clip=null", "trainer.batch_size=16", *SMALL], tmp_runs)
    assert r.returncode == 1, (r.stdout + r.stderr)[-3000:]  # the sweep went on, and says it failed
    assert "error: 3 jobs of the sweep failed (#1, #2, #3; listed above)" in r.stderr
    _, runs = all_runs(tmp_runs)
    parents, jobs = split_runs(runs)
    assert len(jobs) == 4
    done = [j for j in jobs if j.info.status == "FINISHED"]
    assert len(done) == 1 and done[0].data.params["trainer.lr"] == "0.001"
    failed = {(j.data.params["trainer.lr"], j.data.params["trainer.monitor"]): j for j in jobs if j not in done}
    assert all(j.info.status == "FAILED" for j in failed.values())
    assert "training loss became nan at epoch 1" in failed[("1e+30", "ndcg_10")].data.tags["recexp.error"]
    assert "trainer.monitor='nosuch_10'" in failed[("0.001", "nosuch_10")].data.tags["recexp.error"]
    assert parents[0].info.status == "FAILED" and parents[0].data.tags["recexp.jobs_failed"] == "3"


def test_rerun_of_a_sweep_skips_finished_jobs(tmp_runs):
    args = ["-m", "seed=1,2", *SMALL]
    first = cli(args, tmp_runs)
    assert first.returncode == 0, first.stderr[-3000:]
    t0 = time.perf_counter()
    again = cli(args, tmp_runs)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (again.stdout + again.stderr).count("skipped: nothing trained: this config has FINISHED run") == 2
    _, runs = all_runs(tmp_runs)
    parents, jobs = split_runs(runs)
    assert len(parents) == 1 and parents[0].data.tags["recexp.reruns"] == "1"  # the same sweep went on
    assert len(jobs) == 2 and all(j.info.status == "FINISHED" for j in jobs)
    assert time.perf_counter() - t0 < 120
