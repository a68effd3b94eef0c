"""The function Hydra calls for each job: one-line errors for user mistakes, the optimized
metric returned for sweepers."""

from __future__ import annotations

import logging
import math
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import recexp.config  # noqa: F401  registers ${recexp.uid:} in launcher workers too
from recexp.errors import UserError

console = Console(stderr=True)


def _quiet_libraries() -> None:
    for name in ("alembic", "mlflow", "urllib3", "git"):
        logging.getLogger(name).setLevel(logging.WARNING)


def summary_table(metrics: dict[str, float]) -> Table:
    table = Table(title="test (best validation checkpoint)")
    ks = sorted({int(k.rsplit("_", 1)[1]) for k in metrics if k.startswith("test/") and k[-1].isdigit()})
    names = [n for n in ("hr", "ndcg", "mrr") if any(k.startswith(f"test/{n}_") for k in metrics)]
    table.add_column("K")
    for n in names:
        table.add_column(n.upper(), justify="right")
    for k in ks:
        table.add_row(str(k), *(f"{metrics.get(f'test/{n}_{k}', math.nan):.4f}" for n in names))
    return table


def sweep_job_failed(cfg: DictConfig, out: Path, reason: str) -> float:
    """The job's child run FAILED with ``reason`` (created when the job failed before it had one)."""
    from recexp.tracking.failed import record_failed_job

    try:
        record_failed_job(cfg, out, reason)
    except Exception as exc:  # the store itself is the problem: the sweep's end reports it
        console.print(f"[bold red]error:[/] could not record the failed job ({type(exc).__name__})", soft_wrap=True)
    return math.nan


def task(cfg: DictConfig) -> float:
    _quiet_libraries()
    from recexp.run import train  # heavy imports (torch) only once a job really runs

    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun:  # parallel local jobs on a multi-GPU host: one device each
        from recexp.training.gpu_pin import pinned_device

        with open_dict(cfg):
            cfg.device = pinned_device(cfg.device, int(hc.job.num))
    try:
        metrics = train(cfg, out)
    except UserError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        if multirun:  # the sweep goes on; this run is FAILED in MLflow with the reason as a tag
            return sweep_job_failed(cfg, out, str(exc))
        raise SystemExit(2) from None
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
    if metrics.get("skipped"):  # an identical config already FINISHED: nothing trained here
        console.print(f"[bold yellow]skipped:[/] nothing trained: this config has FINISHED run "
                      f"{metrics.get('skipped_run')}, whose metrics count for this job "
                      f"(tracking.skip_finished=never trains again)", soft_wrap=True)
        return float(metrics.get(cfg.optimized_metric, math.nan))
    console.print(summary_table(metrics))
    best = metrics.get(cfg.optimized_metric, math.nan)
    console.print(f"{cfg.optimized_metric} = {best:.4f}   best epoch {int(metrics.get('best_epoch', 0))}   "
                  f"outputs: {escape(str(out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out))}",
                  soft_wrap=True)
    if metrics.get("mlflow_where"):
        console.print(escape(str(metrics["mlflow_where"])), soft_wrap=True, highlight=False)
    return float(metrics.get(cfg.optimized_metric, math.nan))
