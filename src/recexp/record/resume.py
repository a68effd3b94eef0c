"""Finding what a rerun can reuse: a FINISHED run with the same resolved config is skipped, a
run whose job died (SIGKILL, node lost, Ctrl-C) is resumed from its ``last.pt``.

Runs are matched by a hash of the resolved config (tag ``recexp.config_hash``), leaving out keys
that say where things go rather than what is computed (paths, tracking, progress display).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from recexp.record import tag

log = logging.getLogger("recexp")


def scheduler_job() -> str:
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID", "")


def liveness_tags(output_dir: Path) -> dict[str, str]:
    return {tag.HOST: socket.gethostname(), tag.PID: str(os.getpid()), tag.HEARTBEAT: f"{time.time():.0f}",
            tag.OUTPUT_DIR: str(output_dir.resolve()), tag.SCHEDULER_JOB: scheduler_job()}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def is_stale(tags: dict[str, str], stale_after_s: float) -> bool:
    """A RUNNING run whose job is gone: on this host its process is dead; elsewhere (a cluster
    node) its last heartbeat (set every epoch) is older than ``stale_after_s``. A scheduler job
    that finds a RUNNING run with its own job id was requeued (preemption, timeout): that run's
    process is gone whatever the heartbeat says."""
    if tags.get(tag.SCHEDULER_JOB) and tags.get(tag.SCHEDULER_JOB) == scheduler_job():
        return True
    if tags.get(tag.HOST) == socket.gethostname() and tags.get(tag.PID, "").isdigit():
        return not pid_alive(int(tags[tag.PID]))
    beat = float(tags.get(tag.HEARTBEAT) or 0)
    return time.time() - beat > stale_after_s


def death(tags: dict[str, str], stale_after_s: float) -> str | None:
    """Why a RUNNING run's job is surely gone (None: it may be alive, or it carries no liveness
    tags to tell). Stricter than :func:`is_stale`: its scheduler rule (a requeued job finding its
    own id) would call the live siblings of a job array dead."""
    if not tags.get(tag.HOST):
        return None
    if tags[tag.HOST] == socket.gethostname() and tags.get(tag.PID, "").isdigit():
        return None if pid_alive(int(tags[tag.PID])) else f"its process {tags[tag.PID]} on this host is gone"
    beat = float(tags.get(tag.HEARTBEAT) or 0)
    if time.time() - beat > stale_after_s:
        return f"no heartbeat from {tags[tag.HOST]} for {time.time() - beat:.0f} s (tracking.stale_after_s={stale_after_s:g})"
    return None


def close_dead_runs(client, stale_after_s: float, keep: str | None = None) -> list[str]:
    """Mark KILLED, with the reason, every RUNNING run of the store whose job died (a job of a
    sweep that was killed, the sweep's parent itself): done by the start of any job, so a dead
    run does not wait for a rerun of its own config to stop looking alive. Returns their ids."""
    exps = [e.experiment_id for e in client.search_experiments()]
    if not exps:
        return []
    closed = []
    for r in client.search_runs(exps, "attributes.status = 'RUNNING'", max_results=5000):
        why = None if r.info.run_id == keep else death(r.data.tags, stale_after_s)
        if why is None:
            continue
        client.set_tag(r.info.run_id, tag.ERROR, f"its job died ({why}); closed by a later job")
        client.set_terminated(r.info.run_id, "KILLED")
        closed.append(r.info.run_id)
    if closed:
        log.warning("warning: %d run(s) whose job died marked KILLED: %s", len(closed), ", ".join(closed))
    return closed


@dataclass
class Previous:
    """What an earlier run with the same config left: ``finished`` (skip it) or resumable."""

    run_id: str
    status: str
    metrics: dict[str, float]
    checkpoint: Path | None

    @property
    def finished(self) -> bool:
        return self.status == "FINISHED"


def find_previous(client, experiment_id: str, chash: str, stale_after_s: float,
                  finished: bool = True) -> Previous | None:
    """The FINISHED run with this config if there is one (and ``finished``), else the newest run whose job died
    (stale RUNNING, or KILLED) to resume. FAILED runs are not reused: they failed for a reason
    (NaN loss, bad input) that a plain rerun meets again, so a rerun starts a fresh run."""
    runs = client.search_runs([experiment_id], f"tags.`{tag.CONFIG_HASH}` = '{chash}'", max_results=200,
                              order_by=["attributes.start_time DESC"])
    for r in runs if finished else ():
        if r.info.status == "FINISHED":
            return Previous(r.info.run_id, "FINISHED", dict(r.data.metrics), None)
    for r in runs:
        if r.info.status == "KILLED" or (r.info.status == "RUNNING" and is_stale(r.data.tags, stale_after_s)):
            out = r.data.tags.get(tag.OUTPUT_DIR)
            ckpt = Path(out) / "last.pt" if out else None
            return Previous(r.info.run_id, r.info.status, dict(r.data.metrics),
                            ckpt if ckpt is not None and ckpt.is_file() else None)
    return None


@dataclass
class Plan:
    """What :func:`recexp.jobs.train.train` does with an earlier run: ``skip`` (return its metrics),
    ``resume_run_id`` + ``resume_from`` (continue it), or neither (a fresh run)."""

    skip: dict[str, float] | None = None
    skipped_run_id: str | None = None
    resume_run_id: str | None = None
    resume_from: Path | None = None


def plan(tracker, chash: str, enabled: bool, skip_finished: bool, checkpoint_problem) -> Plan:
    """``checkpoint_problem(path) -> str | None`` says why a ``last.pt`` cannot continue this job
    (None: it can; ``damaged: ...``: torch cannot read it). ``skip_finished``: reuse a FINISHED
    run's metrics (sweeps) rather than train again."""
    from recexp.training.checkpoint import move_aside  # torch: imported only when a run is planned

    prev = tracker.previous(chash, skip_finished) if enabled else None
    if prev is None:
        return Plan()
    if prev.finished:
        return Plan(skip=prev.metrics, skipped_run_id=prev.run_id)
    problem = checkpoint_problem(prev.checkpoint) if prev.checkpoint is not None else "missing"
    if problem is None:
        return Plan(resume_run_id=prev.run_id, resume_from=prev.checkpoint)
    if problem.startswith("damaged"):
        # a wedged config otherwise: every rerun would trip on the same file
        try:
            moved = f"moved to {move_aside(prev.checkpoint).name}"
        except OSError as exc:  # a read-only folder: the file stays, the run is still closed
            moved = f"could not be moved ({exc.strerror})"
        reason = f"checkpoint {prev.checkpoint} is {problem}; {moved}, rerun as a new run"
        log.warning("warning: %s", reason)
        tracker.close_other(prev.run_id, "FAILED", {tag.ERROR: reason})
        return Plan()
    if problem == "missing":
        reason = "job died before its first checkpoint; rerun as a new run"
    else:
        reason = f"not resumed from {prev.checkpoint}: {problem}; rerun as a new run"
        log.warning("warning: %s", reason)
    # the dead job left nothing to continue from: close its run so exactly one run ends FINISHED
    tracker.close_other(prev.run_id, "KILLED", {tag.ERROR: reason})
    return Plan()
