"""One MLflow run per job: params, per-epoch metrics, final metrics, tags, artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from recexp.tracking.store import PARENT_ENV, SWEEP_ENV, ensure_experiment, tracking_uri


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(d, list | tuple):
        out[prefix[:-1]] = json.dumps(list(d), default=str)
    else:
        out[prefix[:-1]] = d
    return out


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Tracker:
    """No-op tracker (``tracking=none``); :class:`MlflowTracker` records for real."""

    run_id: str | None = None

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_artifact(self, path: Path, subdir: str | None = None) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...
    def end(self, status: str = "FINISHED") -> None: ...


class MlflowTracker(Tracker):
    def __init__(self, uri: str | None = None, experiment: str = "recexp", runs_dir: str | None = None) -> None:
        self.uri = tracking_uri(uri, runs_dir)
        self.experiment = experiment
        self._active = False

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        import mlflow

        exp_id = ensure_experiment(self.uri, self.experiment)
        parent = os.environ.get(PARENT_ENV)
        tags = {**tags, "recexp.git_commit": git_commit()}
        if os.environ.get(SWEEP_ENV):
            tags["recexp.sweep_id"] = os.environ[SWEEP_ENV]
        run = mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags,
                               parent_run_id=parent or None, nested=bool(parent))
        self.run_id = run.info.run_id
        self._active = True
        flat = {k: ("" if v is None else str(v)[:5000]) for k, v in flatten(params).items()}
        items = list(flat.items())
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            mlflow.log_params(dict(items[i : i + 100]))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def set_tags(self, tags: dict[str, str]) -> None:
        import mlflow

        mlflow.set_tags(tags)

    def log_artifact(self, path: Path, subdir: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=subdir)

    def log_json(self, obj: Any, name: str) -> None:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / name
            p.write_text(json.dumps(obj, indent=2, default=str))
            self.log_artifact(p)

    def end(self, status: str = "FINISHED") -> None:
        import mlflow

        if self._active:
            mlflow.end_run(status=status)
            self._active = False
