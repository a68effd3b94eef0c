"""Hydra callback that makes a multirun one thing in MLflow: the store is initialised once in
the parent process (avoiding SQLite's first-use race), and a parent run holds every job.

Rerunning the same sweep command (same task overrides) continues the earlier sweep's parent run,
so the jobs it skips (already FINISHED) and the ones it resumes stay under one parent."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
import uuid
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from recexp.errors import UserError
from recexp.record import sweep_report as report
from recexp.record import tag
from recexp.record.resume import scheduler_job
from recexp.record.store import PARENT_ENV, SWEEP_ENV, SWEPT_ENV, ensure_experiment, tracking_uri
from recexp.record.ui_view import landing_url, ui_base, write_view


def swept_keys(config: DictConfig) -> list[str]:
    """The keys a multirun sweeps: command-line overrides with several values (``loss=ce,bce``,
    ``range(...)``) and a sweeper's search space (``hydra.sweeper.params``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    task = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
    try:
        keys = [o.key_or_group for o in OverridesParser.create().parse_overrides(task) if o.is_sweep_override()]
    except Exception:  # noqa: BLE001 -- Hydra reports a bad override itself
        keys = []
    space = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    return list(dict.fromkeys([*keys, *(str(k) for k in space)]))


def liveness() -> dict[str, str]:
    """The sweep process's host, pid and heartbeat: a job that finds it gone closes the parent run
    (``record.resume.close_dead_runs``); its jobs keep the heartbeat fresh."""
    return {tag.HOST: socket.gethostname(), tag.PID: str(os.getpid()), tag.HEARTBEAT: f"{time.time():.0f}",
            tag.SCHEDULER_JOB: scheduler_job()}


LAST: dict[str, Any] = {}  # the last sweep of this process: {"failed": [...], "open": (uri, parent)}, read by cli.hydra_job


def close_interrupted(exc: BaseException) -> None:
    """A sweep stopped by Ctrl-C, SIGTERM or an error outside its jobs never reaches Hydra's
    ``on_multirun_end``: its parent run ends here, KILLED (an interrupt) or FAILED, with the reason,
    instead of looking alive until a later job finds its process gone. Rerunning the same command
    continues it (the FINISHED jobs are skipped, a killed one resumes from its checkpoint)."""
    opened = LAST.pop("open", None)
    if opened is None:
        return
    from mlflow.tracking import MlflowClient

    # a job's Ctrl-C / SIGTERM arrives as SystemExit(130) (cli.hydra_job); between jobs as itself
    interrupted = isinstance(exc, KeyboardInterrupt) or (isinstance(exc, SystemExit) and exc.code == 130)
    why = "interrupted (Ctrl-C or SIGTERM)" if interrupted else f"the sweep process stopped: {type(exc).__name__}: {exc}"
    client = MlflowClient(opened[0])
    client.set_tag(opened[1], tag.ERROR, f"{why}; rerun the same command to continue the sweep"[:5000])
    client.set_terminated(opened[1], "KILLED" if interrupted else "FAILED")
    for env in (PARENT_ENV, SWEEP_ENV, SWEPT_ENV):
        os.environ.pop(env, None)


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.parent_id: str | None = None
        self.uri: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        LAST.clear()
        report.start_tally(config.paths.runs_dir)
        if config.tracking.get("backend", "mlflow") != "mlflow":
            return
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri(config.tracking.get("uri"), config.paths.get("runs_dir"))
        try:
            exp_id = ensure_experiment(self.uri, config.tracking.experiment)
        except UserError as exc:
            # Hydra turns a callback's Exception into a warning and launches the jobs anyway;
            # a store no job can reach stops the whole sweep, in one line, before any job starts
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        overrides = " ".join(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
        key = hashlib.sha256(overrides.encode()).hexdigest()[:16]
        client = MlflowClient(self.uri)
        earlier = []
        if config.tracking.get("resume", False):
            earlier = client.search_runs([exp_id], f"tags.`recexp.role` = 'sweep' and tags.`recexp.sweep_key` = '{key}'",
                                         max_results=1, order_by=["attributes.start_time DESC"])
        if earlier:  # the same command again: continue that sweep (its FINISHED jobs are skipped)
            self.parent_id = earlier[0].info.run_id
            sweep_id = earlier[0].data.tags.get(tag.SWEEP_ID) or uuid.uuid4().hex[:12]
            client.update_run(self.parent_id, status="RUNNING")
            for k, v in liveness().items():  # this process now: not the dead one of the earlier sweep
                client.set_tag(self.parent_id, k, v)
            client.set_tag(self.parent_id, tag.RERUNS, str(int(earlier[0].data.tags.get(tag.RERUNS, "0")) + 1))
        else:
            sweep_id = os.environ.get(SWEEP_ENV) or uuid.uuid4().hex[:12]
            tags = {tag.SWEEP_ID: sweep_id, tag.SWEEP_OVERRIDES: overrides, tag.SWEEP_KEY: key,
                    tag.ROLE: "sweep", tag.NOTE: str(config.get("hypothesis") or ""), **liveness()}
            self.parent_id = client.create_run(exp_id, run_name=f"sweep-{sweep_id}", tags=tags).info.run_id
        swept = swept_keys(config)
        client.set_tag(self.parent_id, tag.SWEPT, " ".join(swept))
        write_view(client, exp_id, swept)  # the UI's landing view shows the swept keys as columns
        os.environ[PARENT_ENV] = self.parent_id
        os.environ[SWEEP_ENV] = sweep_id
        LAST["open"] = (self.uri, self.parent_id)
        os.environ[SWEPT_ENV] = " ".join(swept)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        LAST.pop("open", None)
        LAST["failed"] = failed = report.end_tally()
        if self.parent_id is None:
            report.print_failed(failed)
            return
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)
        exp = client.get_run(self.parent_id).info.experiment_id
        children = report.latest_per_job(
            client.search_runs([exp], f"tags.mlflow.parentRunId = '{self.parent_id}'", max_results=5000))
        sweep_id = os.environ.get(SWEEP_ENV, "")
        skipped = [r for r in report.skipped_runs(client, [exp], sweep_id)
                   if r.info.run_id not in {c.info.run_id for c in children}]
        states = [c.info.status for c in children + skipped]
        client.set_tag(self.parent_id, tag.JOBS_SKIPPED, str(len(skipped)))
        for key in (tag.COL_DATASET, tag.COL_MODEL, tag.COL_LOSS, tag.COL_SAMPLER):  # the parent's row in the UI
            values = dict.fromkeys(r.data.tags[key] for r in children + skipped if r.data.tags.get(key))
            if values:
                client.set_tag(self.parent_id, key, ", ".join(values))
        swept = os.environ.get(SWEPT_ENV, "").split()
        where = f"MLflow: {landing_url(ui_base(self.uri), exp)}" + ("" if self.uri.startswith("http") else
                                                                     " (serve it with `recexp ui`)")
        report.print_summary(children, skipped, sweep_id, str(config.optimized_metric), self.uri, swept, where)
        report.print_failed(failed)
        client.set_tag(self.parent_id, tag.JOBS, str(len(states)))
        client.set_tag(self.parent_id, tag.JOBS_FAILED, str(sum(s != "FINISHED" for s in states)))
        if failed:
            client.set_tag(self.parent_id, tag.ERROR, report.failed_line(failed)[:5000])
        client.set_terminated(self.parent_id, "FINISHED" if all(s == "FINISHED" for s in states) else "FAILED")
        for env in (PARENT_ENV, SWEEP_ENV, SWEPT_ENV):
            os.environ.pop(env, None)
