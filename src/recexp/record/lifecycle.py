"""The tracked-run lifecycle, written once for every command: pick the tracker, start the run
with its tags, end it FINISHED, FAILED or KILLED -- with the reason as the ``recexp.error`` tag.
A fault of the machine (a full disk, a read-only folder) comes out as one line, and the run is
closed even when the store sits on that disk (:func:`recexp.runtime.faults.close_run`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig

from recexp.errors import ConfigError, UserError
from recexp.record import tag
from recexp.record.tracker import MlflowTracker, Tracker
from recexp.runtime.distributed import RankFailed
from recexp.runtime.faults import close_run, disk_error


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
    return {tag.HYPOTHESIS: hypothesis, tag.NOTE: hypothesis,
            tag.DATASET: str(cfg.dataset.name)}


def failure_reason(exc: BaseException) -> str:
    """The ``recexp.error`` tag: a user error's own line, else the exception type and message."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)" if not exc.args else f"interrupted ({exc.args[0]})"
    if isinstance(exc, UserError | RankFailed):  # RankFailed: another process's one line
        return str(exc)[:5000]
    return f"{type(exc).__name__}: {exc}"[:5000]


@contextmanager
def tracked_run(tracker: Tracker, name: str, params: dict[str, Any], tags: dict[str, str],
                resume_run_id: str | None = None) -> Iterator[Tracker]:
    """Start a run; end it FINISHED when the block completes, KILLED on Ctrl-C / SIGTERM, FAILED
    on any other exception, tagging the reason. The exception always propagates (an OSError the
    machine caused as its one-line :class:`UserError`)."""
    tracker.start(name, params, tags, resume_run_id=resume_run_id)
    status, reason = "FAILED", None
    try:
        yield tracker
        status = "FINISHED"
    except KeyboardInterrupt as exc:
        status, reason = "KILLED", failure_reason(exc)
        raise
    except OSError as exc:
        err = disk_error(exc)
        reason = failure_reason(err or exc)
        if err is None:
            raise
        raise err from None
    except Exception as exc:
        reason = failure_reason(exc)
        raise
    finally:
        close_run(tracker, status, {tag.ERROR: reason} if reason else None)


def failed_run(tracker: Tracker, name: str, params: dict[str, Any], tags: dict[str, str], exc: BaseException) -> None:
    """A run that failed before it could start properly (its config does not resolve): recorded
    FAILED with the reason, like any other."""
    tracker.start(name, params, tags | {tag.ERROR: failure_reason(exc)})
    tracker.end("FAILED")
