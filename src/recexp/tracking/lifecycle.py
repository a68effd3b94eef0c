"""The tracked-run lifecycle, written once for every command: pick the tracker, start the run
with its tags, end it FINISHED, FAILED or KILLED -- with the reason as the ``recexp.error`` tag."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig

from recexp.errors import ConfigError, UserError
from recexp.tracking.tracker import MlflowTracker, Tracker

ERROR_TAG = "recexp.error"


def make_tracker(cfg: DictConfig) -> Tracker:
    t = cfg.tracking
    backend = t.get("backend", "mlflow")
    if backend == "none":
        return Tracker()
    if backend != "mlflow":
        raise ConfigError(f"tracking.backend={backend!r}: expected mlflow or none")
    return MlflowTracker(uri=t.get("uri"), experiment=t.experiment, runs_dir=cfg.paths.runs_dir,
                         stale_after_s=float(t.get("stale_after_s", 1800)))


def base_tags(cfg: DictConfig) -> dict[str, str]:
    """Tags every run carries: its hypothesis (also MLflow's note) and dataset."""
    hypothesis = str(cfg.get("hypothesis") or "")
    return {"recexp.hypothesis": hypothesis, "mlflow.note.content": hypothesis,
            "recexp.dataset": str(cfg.dataset.name)}


def failure_reason(exc: BaseException) -> str:
    """The ``recexp.error`` tag: a user error's own line, else the exception type and message."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)" if not exc.args else f"interrupted ({exc.args[0]})"
    if isinstance(exc, UserError):
        return str(exc)[:5000]
    return f"{type(exc).__name__}: {exc}"[:5000]


@contextmanager
def tracked_run(tracker: Tracker, name: str, params: dict[str, Any], tags: dict[str, str],
                resume_run_id: str | None = None) -> Iterator[Tracker]:
    """Start a run; end it FINISHED when the block completes, KILLED on Ctrl-C / SIGTERM, FAILED
    on any other exception, tagging the reason. The exception always propagates."""
    tracker.start(name, params, tags, resume_run_id=resume_run_id)
    status = "FAILED"
    try:
        yield tracker
        status = "FINISHED"
    except (KeyboardInterrupt, Exception) as exc:
        if isinstance(exc, KeyboardInterrupt):
            status = "KILLED"
        tracker.set_tags({ERROR_TAG: failure_reason(exc)})
        raise
    finally:
        tracker.end(status)
