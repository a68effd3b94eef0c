"""One MLflow run per job: params, per-epoch metrics, final metrics, tags, artifacts."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from recexp.record import tag
from recexp.record.resume import Previous, close_dead_runs, find_previous
from recexp.record.store import (
    PARENT_ENV,
    SWEEP_ENV,
    check_server,
    ensure_experiment,
    tracking_uri,
)

log = logging.getLogger("recexp")


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

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str],
              resume_run_id: str | None = None) -> None: ...
    def previous(self, config_hash: str, finished: bool = True) -> Previous | None:
        return None

    def close_other(self, run_id: str, status: str, tags: dict[str, str]) -> None: ...
    def attach_to_sweep(self, run_id: str) -> None: ...
    def heartbeat(self) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_params(self, params: dict[str, object]) -> None: ...
    def log_artifact(self, path: Path, subdir: str | None = None) -> None: ...
    def log_artifacts(self, folder: Path, subdir: str | None = None) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...
    def end(self, status: str = "FINISHED") -> None: ...


class MlflowTracker(Tracker):
    def __init__(self, uri: str | None = None, experiment: str = "recexp", runs_dir: str | None = None,
                 stale_after_s: float = 1800.0) -> None:
        self.uri = tracking_uri(uri, runs_dir)
        self.experiment = experiment
        self.stale_after_s = stale_after_s
        self._active = False
        self._exp_id: str | None = None
        self._logged: set[tuple[str, int]] = set()  # (key, step) already in the run: each logged once
        check_server(self.uri)  # a down server is one line at job start, before any work

    def _experiment_id(self) -> str:
        if self._exp_id is None:
            self._exp_id = ensure_experiment(self.uri, self.experiment)
        return self._exp_id

    def previous(self, config_hash: str, finished: bool = True) -> Previous | None:
        from mlflow.tracking import MlflowClient

        exp_id = self._experiment_id()  # first: building a client creates (migrates) a new store, under the lock only
        return find_previous(MlflowClient(self.uri), exp_id, config_hash, self.stale_after_s, finished)

    def close_other(self, run_id: str, status: str, tags: dict[str, str]) -> None:
        """Terminate a run another (dead) job left open, so it is never mistaken for a live one."""
        from mlflow.tracking import MlflowClient

        self._experiment_id()
        client = MlflowClient(self.uri)
        for k, v in tags.items():
            client.set_tag(run_id, k, v)
        client.set_terminated(run_id, status)

    def attach_to_sweep(self, run_id: str) -> None:
        """A job of the running sweep reuses FINISHED run ``run_id``: record it on that run."""
        if os.environ.get(SWEEP_ENV):
            from recexp.record.sweep_report import attach_skipped

            attach_skipped(self.uri, run_id, os.environ[SWEEP_ENV])

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str],
              resume_run_id: str | None = None) -> None:
        import mlflow

        exp_id = self._experiment_id()
        self._close_dead_runs(keep=resume_run_id)
        tags = {**tags, tag.GIT_COMMIT: git_commit()}
        if resume_run_id:  # the same run goes on: its params, parent and earlier epochs stay as they are
            run = mlflow.start_run(run_id=resume_run_id)
            self.run_id = run.info.run_id
            self._active = True
            self._logged = self._points(resume_run_id)
            mlflow.set_tags(tags)
            return
        parent = os.environ.get(PARENT_ENV)
        if os.environ.get(SWEEP_ENV):
            tags[tag.SWEEP_ID] = os.environ[SWEEP_ENV]
        run = mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags,
                               parent_run_id=parent or None, nested=bool(parent))
        self.run_id = run.info.run_id
        self._active = True
        flat = {k: ("" if v is None else str(v)[:5000]) for k, v in flatten(params).items()}
        items = list(flat.items())
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            mlflow.log_params(dict(items[i : i + 100]))

    def _close_dead_runs(self, keep: str | None) -> None:
        """Any job's start closes the store's runs whose job died (:func:`close_dead_runs`): a
        courtesy to the record, so a failure here is a warning, never this job's failure."""
        from mlflow.tracking import MlflowClient

        try:
            close_dead_runs(MlflowClient(self.uri), self.stale_after_s, keep)
        except Exception as exc:  # a busy store: the next job start tries again
            log.warning("warning: could not close the runs of dead jobs (%s: %s)", type(exc).__name__,
                        str(exc).splitlines()[0][:200] if str(exc) else "")

    def _points(self, run_id: str) -> set[tuple[str, int]]:
        """Every (metric, step) a resumed run already holds: a job killed after it logged them
        (an epoch before its checkpoint, the final metrics before the run closed) logs none twice."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)
        return {(key, m.step) for key in client.get_run(run_id).data.metrics
                for m in client.get_metric_history(run_id, key)}

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import mlflow

        at = 0 if step is None else int(step)  # MLflow's own default step
        new = {k: float(v) for k, v in metrics.items() if (k, at) not in self._logged}
        if new:
            mlflow.log_metrics(new, step=at)
            self._logged |= {(k, at) for k in new}

    def log_params(self, params: dict[str, object]) -> None:
        import mlflow

        mlflow.log_params({k: str(v) for k, v in params.items()})

    def set_tags(self, tags: dict[str, str]) -> None:
        import mlflow

        mlflow.set_tags(tags)

    def heartbeat(self) -> None:
        """Proof of life for :func:`recexp.record.resume.is_stale` on other hosts (cluster jobs),
        for this run and for the sweep it belongs to (whose process may sit on another host)."""
        now = f"{time.time():.0f}"
        self.set_tags({tag.HEARTBEAT: now})
        if os.environ.get(PARENT_ENV):
            from mlflow.tracking import MlflowClient

            MlflowClient(self.uri).set_tag(os.environ[PARENT_ENV], tag.HEARTBEAT, now)

    def log_artifact(self, path: Path, subdir: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=subdir)

    def log_artifacts(self, folder: Path, subdir: str | None = None) -> None:
        import mlflow

        mlflow.log_artifacts(str(folder), artifact_path=subdir)

    def end(self, status: str = "FINISHED") -> None:
        import mlflow

        if self._active:
            mlflow.end_run(status=status)
            self._active = False
