"""Faults of the machine, not of the code: a full disk, a read-only or unreadable folder. They are
reported as one :class:`UserError` line naming the file, and a run is closed even when the store
itself sits on the full disk (retried until space allows, within a bound)."""

from __future__ import annotations

import errno
import logging
import shutil
import time

from recexp.errors import UserError

log = logging.getLogger("recexp")

MIN_FREE_BYTES = 256 * 1024  # a job's config files and log; a checkpoint is checked when written

DISK_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EFBIG: "file size limit reached", errno.EROFS: "read-only file system",
               errno.EACCES: "permission denied", errno.EPERM: "operation not permitted"}


def disk_error(exc: BaseException) -> UserError | None:
    """The one-line error for an OSError the user's machine caused (None: not such a fault)."""
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        where = exc.filename or "a file"
        return UserError(f"{where}: {DISK_ERRNOS[exc.errno]} (errno {exc.errno}); free space or fix "
                         "permissions, then rerun (a resumable run continues from its last checkpoint)")
    return None


def close_run(tracker, status: str, tags: dict[str, str] | None = None, retry_s: float = 30.0) -> None:
    """End the tracker's run with ``status``; when the store cannot be written (a full disk),
    retry until it can, for up to ``retry_s``. Gives up with a one-line warning: the run stays
    RUNNING and the next run of the same config finds its dead process and closes or resumes it."""
    deadline = time.monotonic() + retry_s
    delay = 0.5
    while True:
        try:
            if tags:
                tracker.set_tags(tags)
            tracker.end(status)
            return
        except Exception as exc:  # the store is on the full disk too; any store error is the same here
            if time.monotonic() > deadline:
                log.warning("warning: could not mark run %s %s (%s: %s); the next run of this config "
                            "closes it", getattr(tracker, "run_id", "?"), status, type(exc).__name__,
                            str(exc).splitlines()[0][:200] if str(exc) else "")
                return
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def check_runs_dir(argv: list[str]) -> str | None:
    """One line when the runs folder (``paths.runs_dir=`` / ``$RECEXP_RUNS_DIR`` / ``runs``)
    cannot be written, checked before Hydra creates the job folder (its own error is a
    traceback). None when it can."""
    import os
    import tempfile
    from pathlib import Path

    given = [a.split("=", 1)[1] for a in argv if a.split("=", 1)[0].lstrip("+") == "paths.runs_dir"]
    if any(a.split("=", 1)[0].lstrip("+") in ("hydra.run.dir", "hydra.sweep.dir") for a in argv):
        return None  # the user placed the job folder elsewhere
    raw = given[-1] if given else os.environ.get("RECEXP_RUNS_DIR", "runs")
    if "${" in raw:
        return None
    path = Path(raw).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return (f"paths.runs_dir={raw}: cannot write there ({exc.strerror or exc}); choose a writable folder "
                "with paths.runs_dir=... or $RECEXP_RUNS_DIR")
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:  # Hydra's own job files would fail mid-write, in a multi-line block
        return (f"paths.runs_dir={raw}: no space left on the device ({free // 1024} KiB free); free space "
                "or choose another folder")
    return None
