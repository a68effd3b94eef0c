"""The one job lifecycle that ``recexp train``, ``pretrain`` and ``evaluate`` share.

    cfg -> config.prepare (once) -> output folder -> tracker -> recorded run (FINISHED / FAILED /
    KILLED) -> parts -> the verb's work (recexp.jobs.*) -> test once -> outputs + record

What a verb does inside the run lives in ``recexp/jobs/``; how a run starts, ends and writes its
outputs is here, once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from recexp.config.prepare import prepare
from recexp.record.lifecycle import base_tags, make_tracker, tracked_run
from recexp.record.tracker import Tracker
from recexp.runtime.faults import disk_error


@dataclass
class Job:
    """A job whose config is prepared: what it runs (``cfg``), what is recorded (``resolved``),
    where its files go and the tracker of its run."""

    cfg: DictConfig
    resolved: dict[str, Any]
    output_dir: Path
    tracker: Tracker


def open_job(cfg: DictConfig, output_dir: Path, verb: str, record: bool = True) -> Job:
    """Prepare the config (every bad value one line, before any data, store or run), make the
    output folder (a full or read-only disk is one line) and pick the tracker (a no-op one when
    not ``record``: the ranks but 0 of a distributed job)."""
    cfg = prepare(cfg, verb)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise (disk_error(exc) or exc) from None
    return Job(cfg, OmegaConf.to_container(cfg, resolve=True), output_dir, make_tracker(cfg) if record else Tracker())


@contextmanager
def recorded(job: Job, name: str, tags: dict[str, str], resume_run_id: str | None = None) -> Iterator[Job]:
    """The job's run: started with its resolved config as params and ``tags`` (plus the hypothesis
    and dataset every run carries), ended FINISHED, FAILED or KILLED with the reason."""
    with tracked_run(job.tracker, name, job.resolved, base_tags(job.cfg) | tags, resume_run_id):
        yield job


def write_test_outputs(job: Job, final: dict[str, float], per_user: pd.DataFrame, raw_users: Any,
                       metrics_name: str = "metrics.json") -> list[Path]:
    """The job's files after its one test evaluation: the final metrics and the per-user test table
    in raw user ids. Returns their paths (to log as artifacts)."""
    out = job.output_dir
    (out / metrics_name).write_text(json.dumps(final, indent=2))
    per_user = per_user.copy()
    per_user["user"] = raw_users(per_user["user"].to_numpy())
    per_user.to_parquet(out / "per_user_test.parquet", index=False)
    return [out / metrics_name, out / "per_user_test.parquet"]
