"""A sweep tells the truth in its exit code: 1 when any job failed (the failed jobs listed in its
summary), with any tracking backend; the hypothesis runner stops at the first failed level."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from recexp.errors import UserError
from recexp.record import tag
from recexp.record.hypothesis_tags import LEVEL_ENV
from recexp.record.sweep_report import latest_per_job
from tests.faults.helpers import SMALL, all_runs, cli, split_runs

POP = ["model=pop", *[a for a in SMALL if not a.startswith("model.")]]


@pytest.mark.parametrize("tracking", ["mlflow", "none"])
def test_a_sweep_with_a_failed_job_exits_1_and_lists_it(tmp_runs, tracking):
    r = cli(["-m", "seed=1,abc", f"tracking={tracking}", *POP], tmp_runs)
    assert r.returncode == 1, r.stderr[-3000:]
    lines = r.stderr.rstrip().splitlines()
    assert lines[-1] == "error: 1 job of the sweep failed (#1; listed above): exit status 1"
    listed = next(ln for ln in lines if ln.startswith("failed: 1 job of the sweep failed: #1 (seed=abc"))
    assert "seed='abc': expected an integer" in listed and "Traceback" not in r.stderr
    assert not list(tmp_runs.glob(".sweep-failed-*"))  # the tally is gone with the sweep
    if tracking == "mlflow":
        _, runs = all_runs(tmp_runs)
        parents, jobs = split_runs(runs)
        failed = [j for j in jobs if j.info.status == "FAILED"]
        assert len(failed) == 1 and failed[0].data.tags[tag.JOB] == "1"  # its row says which job it was
        assert parents[0].info.status == "FAILED" and "seed=abc" in parents[0].data.tags[tag.ERROR]


def test_a_sweep_whose_jobs_all_finish_exits_0(tmp_runs):
    r = cli(["-m", "seed=1,2", "tracking=none", *POP], tmp_runs)
    assert r.returncode == 0 and "failed" not in r.stderr, r.stderr[-3000:]


def _run(overrides: str, status: str, start: int):
    return SimpleNamespace(info=SimpleNamespace(run_id=f"{overrides}-{start}", status=status, start_time=start),
                           data=SimpleNamespace(tags={tag.OVERRIDES: overrides}))


def test_a_rerun_s_newest_run_of_a_job_is_its_outcome():
    runs = [_run("seed=2", "FINISHED", 3), _run("seed=1", "FAILED", 1), _run("seed=1", "FINISHED", 5)]
    assert {r.info.run_id for r in latest_per_job(runs)} == {"seed=1-5", "seed=2-3"}


def test_hypothesis_runner_stops_at_the_first_failed_level(tmp_path, monkeypatch):
    from recexp.analysis.hypothesis import runner, spec

    p = tmp_path / "h.yaml"
    p.write_text('claim: "x"\nfactor: {key: model, baseline: pop, levels: [sasrec, gru4rec]}\nseeds: 3\n')
    h = spec.load(p, compose=False)
    called = []

    def call(cmd, env):  # noqa: ANN001, ANN202
        called.append(env[LEVEL_ENV])
        return 0 if len(called) == 1 else 1

    monkeypatch.setattr(runner.subprocess, "call", call)
    with pytest.raises(UserError, match=r"the sweep of model=sasrec exited with status 1"):
        runner.sweep(h)
    assert called == ["pop", "sasrec"]  # sasrec failed: gru4rec never started
