"""Reading runs back from the MLflow store for ``recexp compare``, and logging its result."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recexp.errors import ConfigError, DataError, UserError
from recexp.record import tag

PER_USER = "per_user_test.parquet"
# runs that hold no training job: sweep parents, comparisons, hypothesis registrations and reports
BOOKKEEPING_ROLES = ("sweep", "compare", "hypothesis-registration", "hypothesis-report")


@dataclass
class RunRecord:
    run_id: str
    name: str
    experiment_id: str
    start_time: int
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]


def mlflow_client(uri: str):
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise UserError(f"no MLflow store at {uri[len('sqlite:///'):]} (train something first, or pass --uri)")
    return MlflowClient(uri)


def select_runs(uri: str, experiment: str | None, sweep: str | None, filter_string: str | None) -> list[RunRecord]:
    """Finished job runs (not sweep parents, not earlier comparisons) matching the selection."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(uri)
    exps = client.search_experiments()
    if experiment is not None:
        match = [e for e in exps if e.name == experiment or e.experiment_id == experiment]
        if not match:
            known = ", ".join(sorted(e.name for e in exps)) or "none"
            raise ConfigError(f"--experiment {experiment!r}: no such experiment in {uri} (known: {known})")
        exps = match
    clauses = [f"tags.`recexp.sweep_id` = '{sweep}'"] if sweep else []
    if filter_string:
        clauses.append(filter_string)
    try:
        runs = client.search_runs([e.experiment_id for e in exps], " and ".join(clauses), max_results=5000)
        if sweep:  # jobs of the sweep that reused an identical FINISHED run (tracking/sweep_report.py)
            from recexp.record.sweep_report import IN_SWEEP

            seen = {r.info.run_id for r in runs}
            extra = [f"tags.`{IN_SWEEP}{sweep}` != ''", *([filter_string] if filter_string else [])]
            runs += [r for r in client.search_runs([e.experiment_id for e in exps], " and ".join(extra),
                                                   max_results=5000) if r.info.run_id not in seen]
    except MlflowException as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"--filter {filter_string!r}: MLflow rejected it: {msg}") from None
    out = [RunRecord(r.info.run_id, r.info.run_name or r.info.run_id[:8], r.info.experiment_id,
                     int(r.info.start_time or 0), dict(r.data.params), dict(r.data.tags), dict(r.data.metrics))
           for r in runs
           # a run stopped early counts once `recexp evaluate` has logged its test metrics to it
           if (r.info.status == "FINISHED" or r.data.tags.get(tag.EVALUATED))
           and r.data.tags.get(tag.ROLE) not in BOOKKEEPING_ROLES]
    if not out:
        where = f"sweep {sweep!r}" if sweep else f"experiment {experiment!r}" if experiment else "the store"
        extra = f" matching {filter_string!r}" if filter_string else ""
        raise UserError(f"no finished runs in {where}{extra} ({uri})")
    return sorted(out, key=lambda r: r.start_time)


def per_user_table(uri: str, run: RunRecord) -> pd.DataFrame:
    """The run's saved per-user test metrics; a one-line error when the run has none."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(uri)
    with tempfile.TemporaryDirectory() as d:
        try:
            path = client.download_artifacts(run.run_id, PER_USER, d)
        except (MlflowException, OSError):
            raise DataError(f"run {run.name} ({run.run_id}) has no {PER_USER}: paired tests need per-user "
                            "metrics (runs from `recexp train` save them; failed or external runs do not)") from None
        return pd.read_parquet(path)


def metric_history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in mlflow_client(uri).get_metric_history(run_id, key)]


def log_comparison(uri: str, experiment_id: str, name: str, params: dict[str, str], tags: dict[str, str],
                   files: list[Path]) -> str:
    """One MLflow run holding the comparison's tables and plots; returns its id."""
    client = mlflow_client(uri)
    run = client.create_run(experiment_id, run_name=name, tags={**tags, tag.ROLE: "compare"})
    rid = run.info.run_id
    for k, v in params.items():
        client.log_param(rid, k, str(v)[:5000])
    for f in files:
        client.log_artifact(rid, str(f))
    client.set_terminated(rid, "FINISHED")
    return rid

