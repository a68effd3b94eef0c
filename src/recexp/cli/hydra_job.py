"""The one Hydra task wrapper every Hydra verb (train, pretrain) runs its job through: quiet
library loggers, a GPU per parallel job, one-line errors for user mistakes (exit 2; NaN for a
sweep, which goes on, with the job's run FAILED and the reason recorded), an internal error of a
sweep job kept to that job, exit 1 after a sweep in which any job failed (the failed jobs listed),
exit 130 on Ctrl-C, and the optimized metric returned for sweepers."""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import recexp.config.compose  # noqa: F401  registers ${recexp.uid:} in launcher workers too
from recexp.config.compose import CONFIG_NAME, conf_dir
from recexp.errors import UserError
from recexp.runtime import terminal
from recexp.runtime.distributed import RankFailed, WorkerFailed, is_main_process
from recexp.runtime.malloc import keep_freed_memory

console = Console(stderr=True)

Job = Callable[[DictConfig, Path], Mapping[str, Any]]
Report = Callable[[DictConfig, Mapping[str, Any], Path], None]

QUIET_LOGGERS = ("alembic", "mlflow", "urllib3", "git")


def summary_table(metrics: Mapping[str, Any]) -> Table:
    table = Table(title="test (best validation checkpoint)")
    ks = sorted({int(k.rsplit("_", 1)[1]) for k in metrics if k.startswith("test/") and k[-1].isdigit()})
    names = [n for n in ("hr", "ndcg", "mrr") if any(k.startswith(f"test/{n}_") for k in metrics)]
    table.add_column("K")
    for n in names:
        table.add_column(n.upper(), justify="right")
    for k in ks:
        table.add_row(str(k), *(f"{metrics.get(f'test/{n}_{k}', math.nan):.4f}" for n in names))
    return table


def job_label() -> str:
    """This sweep job's overrides of the swept keys (``loss=ce seed=2``)."""
    from hydra.core.hydra_config import HydraConfig

    from recexp.record.store import SWEPT_ENV
    from recexp.record.sweep_report import swept_only

    return swept_only(list(HydraConfig.get().overrides.task), os.environ.get(SWEPT_ENV, "").split())


def sweep_job_failed(cfg: DictConfig, out: Path, reason: str) -> float:
    """The job's child run FAILED with ``reason`` (created when the job failed before it had one)."""
    from recexp.record.failed import record_failed_job
    from recexp.record.sweep_report import note_failed

    note_failed(reason)  # the sweep's exit status counts it, whatever the store does
    try:
        record_failed_job(cfg, out, reason)
    except Exception as exc:  # the store itself is the problem: the sweep's end reports it
        console.print(f"[bold red]error:[/] could not record the failed job ({type(exc).__name__})", soft_wrap=True)
    return math.nan


def run_job(cfg: DictConfig, job: Job, report: Report) -> float:
    """Run ``job(cfg, output_dir)`` as one Hydra job; returns ``cfg.optimized_metric`` (NaN when
    the job has none or failed inside a sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    keep_freed_memory()  # again in launcher workers (joblib, submitit), which do not start in recexp.cli.main
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun:  # parallel local jobs on a multi-GPU host: one device each
        from recexp.runtime.gpu_pin import pinned_device

        with open_dict(cfg):
            cfg.device = pinned_device(cfg.device, int(hc.job.num))
        if not terminal.compact():  # compact jobs say it all in their one line at the end
            console.print(f"[bold]job {hc.job.num}[/]: {escape(job_label())}", soft_wrap=True, highlight=False)
    try:
        result = job(cfg, out)
    except UserError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        if multirun:  # the sweep goes on; this run is FAILED in MLflow with the reason as a tag
            return sweep_job_failed(cfg, out, str(exc))
        raise SystemExit(2) from None
    except (RankFailed, WorkerFailed) as exc:  # a process of a distributed job failed: its one line
        if isinstance(exc, WorkerFailed):  # (RankFailed: this rank only saw another fail, which said so)
            console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        if multirun:
            return sweep_job_failed(cfg, out, str(exc))
        raise SystemExit(1) from None
    except Exception as exc:
        if not multirun:  # an internal error of a single run: its traceback is the bug report
            raise
        # one crashing job must not abort the sweep (the parent would stay RUNNING, uncounted)
        reason = f"{type(exc).__name__}: {exc}"
        (out / "error.txt").write_text(traceback.format_exc())
        console.print(f"[bold red]error:[/] {escape(reason.splitlines()[0])} (traceback in {out / 'error.txt'})",
                      soft_wrap=True)
        return sweep_job_failed(cfg, out, reason)
    except KeyboardInterrupt:
        console.print(f"[bold yellow]interrupted:[/] run marked KILLED; checkpoints kept in {out}", soft_wrap=True)
        raise SystemExit(130) from None
    if is_main_process():  # (the other ranks of a torchrun job: rank 0 reports)
        report(cfg, result, out)
    value = result.get(cfg.optimized_metric)
    return float(value) if value is not None else math.nan


def _asks_config_only(argv: list[str]) -> bool:
    """``--cfg``, ``--info``, ``--help`` and the like print and leave: no runs folder to name."""
    return any(a in ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve") for a in argv)


def hydra_main(prog: str, argv: list[str], task: Callable[[DictConfig], float]) -> int:
    """Compose the root config from ``argv`` (Hydra overrides and flags) and run ``task``; an
    unwritable runs folder or a config that does not compose is one line first (exit 2)."""
    from recexp.config.precheck import compose_error
    from recexp.runtime.faults import check_runs_dir

    argv = ["--help" if a == "--hydra-help" else a for a in argv]
    if (problem := check_runs_dir(argv) or compose_error(argv)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import hydra

    if not _asks_config_only(argv):  # once per command (a sweep's jobs do not repeat it)
        from recexp.record.store import runs_dir_line

        given = [a.split("=", 1)[1] for a in argv if a.split("=", 1)[0].lstrip("+") == "paths.runs_dir"]
        # stdout: information, not a diagnostic (stderr stays one line for an error)
        print(runs_dir_line(given[-1] if given else None), flush=True)
    from recexp.record import tag
    from recexp.record.callback import LAST, close_interrupted

    LAST.clear()
    sys.argv = [prog, *argv]
    try:
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=CONFIG_NAME)(task)()
    except BaseException as exc:  # Ctrl-C / SIGTERM mid-sweep: its parent run ends KILLED too
        close_interrupted(exc)
        raise
    if LAST.get("failed"):  # Hydra returns normally after a multirun, whatever its jobs did
        failed = LAST["failed"]
        print(f"error: {len(failed)} job{'s' * (len(failed) > 1)} of the sweep failed "
              f"({', '.join('#' + str(f.get(tag.JOB, '?')) for f in failed)}; listed above): exit status 1",
              file=sys.stderr)
        return 1
    return 0
