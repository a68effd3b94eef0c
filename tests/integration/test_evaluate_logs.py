"""`recexp evaluate` records its metrics on the run it evaluated, so a run stopped early and
evaluated afterwards is visible to `recexp compare`; its errors print without markup."""

from __future__ import annotations

import subprocess
import sys

from mlflow.tracking import MlflowClient

from recexp.analysis.query import select_runs
from recexp.record.store import tracking_uri
from tests.faults.helpers import SMALL, env_for


def _cli(args, runs):  # noqa: ANN001, ANN202
    return subprocess.run([sys.executable, "-m", "recexp.cli", *args], capture_output=True, text=True,
                          env=env_for(runs), timeout=600)


def test_evaluate_logs_to_the_run_it_evaluated(tmp_runs):
    job = tmp_runs / "job"
    r = _cli(["train", "model=sasrec", f"hydra.run.dir={job}", *SMALL], tmp_runs)
    assert r.returncode == 0, r.stderr[-2000:]
    uri = tracking_uri(None, str(tmp_runs))
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    client.set_terminated(run.info.run_id, "KILLED")  # as a run stopped with Ctrl-C
    r = _cli(["evaluate", str(job), "--device", "cpu"], tmp_runs)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"logged to MLflow run {run.info.run_id}" in r.stderr
    after = client.get_run(run.info.run_id)
    assert after.data.tags["recexp.evaluated"].startswith("best.pt of epoch")
    assert {"evaluate.json", "per_user_test.parquet"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    assert [x.run_id for x in select_runs(uri, None, None, None)] == [run.info.run_id]


def test_evaluate_errors_print_without_markup(tmp_runs):
    r = _cli(["evaluate", str(tmp_runs / "nowhere")], tmp_runs)
    assert r.returncode == 2 and "error:" in r.stderr and "[bold red]" not in r.stderr and "[/]" not in r.stderr
