"""A sweep job that fails before its MLflow run exists (a bad value, an unreadable file) still
gets a child run, FAILED with the reason: the parent's ``recexp.jobs_failed`` counts children,
so a job without one would be missing from the count."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from recexp.record import tag
from recexp.record.store import PARENT_ENV, SWEEP_ENV, ensure_experiment, tracking_uri


def record_failed_job(cfg: DictConfig, output_dir: Path, reason: str) -> str | None:
    """Create the FAILED child run for this job unless it already has one; returns its id."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or cfg.tracking.get("backend", "mlflow") != "mlflow":
        return None
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    from recexp.record.tracker import flatten

    uri = tracking_uri(cfg.tracking.get("uri"), cfg.paths.get("runs_dir"))
    exp_id = ensure_experiment(uri, str(cfg.tracking.experiment))
    client = MlflowClient(uri)
    out = str(output_dir.resolve())
    found = client.search_runs([exp_id], f"tags.mlflow.parentRunId = '{parent}' and tags.`{tag.OUTPUT_DIR}` = '{out}'",
                               max_results=1)
    if found:
        return found[0].info.run_id
    from recexp.record.sweep_report import job_info

    tags = {"mlflow.parentRunId": parent, tag.OUTPUT_DIR: out, tag.ERROR: reason[:5000],
            tag.SWEEP_ID: os.environ.get(SWEEP_ENV, ""), **job_info()}  # its job number and overrides
    run = client.create_run(exp_id, run_name=f"failed-{output_dir.name}", tags=tags)
    try:  # the same params as a job that got further, so the sweep's runs compare side by side
        values = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # the failure may be an unresolvable value itself
        values = OmegaConf.to_container(cfg, resolve=False)
    params = [Param(k, "" if v is None else str(v)[:5000]) for k, v in flatten(values).items()]
    for i in range(0, len(params), 100):
        client.log_batch(run.info.run_id, params=params[i : i + 100])
    client.set_terminated(run.info.run_id, "FAILED")
    return run.info.run_id
