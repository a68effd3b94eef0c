"""Fetch a run's artifact from the tracking store (the only place a run id becomes a file)."""

from __future__ import annotations

import os
from pathlib import Path

from recexp.errors import ConfigError
from recexp.record.store import tracking_uri


def download(run_id: str, name: str, uri: str | None = None, runs_dir: str | None = None,
             key: str = "model.pretrained",
             hint: str = "was it a `recexp pretrain` run that finished?") -> Path:
    """Local path of artifact ``name`` of MLflow run ``run_id``; a missing run or artifact is a
    one-line :class:`ConfigError` naming ``key``."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bar in run logs
    uri = tracking_uri(uri, runs_dir)
    client = MlflowClient(uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"{key}={run_id}: no such file, and no MLflow run with that id in {uri}") from None
    try:
        return Path(client.download_artifacts(run_id, name))
    except (MlflowException, OSError):
        raise ConfigError(f"{key}={run_id}: that MLflow run has no artifact {name!r} ({hint})") from None
