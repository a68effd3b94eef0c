"""Where runs are stored: resolve the tracking URI and create experiments once."""

from __future__ import annotations

import os
from pathlib import Path

PARENT_ENV = "RECEXP_PARENT_RUN_ID"  # our own variable: MLFLOW_RUN_ID would override parent_run_id
SWEEP_ENV = "RECEXP_SWEEP_ID"


def runs_dir(cfg_runs_dir: str | None = None) -> Path:
    return Path(cfg_runs_dir or os.environ.get("RECEXP_RUNS_DIR", "runs")).expanduser().resolve()


def tracking_uri(uri: str | None, cfg_runs_dir: str | None = None) -> str:
    """Explicit ``tracking.uri`` > ``MLFLOW_TRACKING_URI`` > SQLite under ``runs/`` (never the
    legacy ``./mlruns`` file store)."""
    if uri:
        return str(uri)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    d = runs_dir(cfg_runs_dir)
    d.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{d / 'mlflow.db'}"


def artifact_root(uri: str, cfg_runs_dir: str | None = None) -> str | None:
    """Local SQLite stores keep artifacts beside the database (not in ./mlruns of the cwd)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return None


def ensure_experiment(uri: str, name: str) -> str:
    """Create the store's tables and the experiment if needed; returns the experiment id.

    Call once in the parent process before parallel jobs start: several processes creating a new
    SQLite store at once race on its schema.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root(uri))
    except Exception:  # another process created it between our lookup and create
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id
