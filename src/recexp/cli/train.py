"""``recexp train``: train and evaluate one run, or a sweep with ``-m`` (Hydra overrides)."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.markup import escape

from recexp.cli import groups_text
from recexp.cli.hydra_job import console, hydra_main, run_job, summary_table
from recexp.config.compose import conf_dir


def help_text() -> str:
    return (
        "usage: recexp train [-m] [key=value ...] [--cfg job] [--hydra-help]\n\n"
        "Train a model on a dataset and evaluate it (validation for early stopping, test once at\n"
        "the end); every run is recorded in MLflow (default store: runs/mlflow.db, see `make ui`).\n\n"
        f"{groups_text()}\n\n"
        "top-level keys: seed, device=auto|cpu|cuda, hypothesis=\"...\", max_len, data_dir (or\n"
        "$RECEXP_DATA_DIR), optimized_metric, paths.runs_dir (or $RECEXP_RUNS_DIR)\n"
        "any nested key too: model.hidden_size=128 trainer.lr=3e-4 eval.mask_history=none\n\n"
        "  -m / --multirun   sweep over comma-separated values (a Hydra multirun); exits 1 when\n"
        "                    any job failed, the failed jobs listed in its summary\n"
        "  --cfg job         print the composed config and exit\n"
        "  --hydra-help      Hydra's own flags\n"
        f"\nconfig directory: {conf_dir()}\n"
    )


def _job(cfg: DictConfig, out: Path) -> Mapping[str, Any]:
    from recexp.jobs.train import train  # heavy imports (torch) only once a job really runs

    return train(cfg, out)


def compact_line(cfg: DictConfig, metrics: Mapping[str, Any]) -> str:
    """One line per job of a hypothesis sweep: which job, its figures, its time."""
    from hydra.core.hydra_config import HydraConfig

    from recexp.cli.hydra_job import job_label

    head = f"  job {HydraConfig.get().job.num} ({job_label()})"
    if metrics.get("skipped"):
        return f"{head}: skipped (FINISHED run {metrics.get('skipped_run')} counts)"
    m = cfg.optimized_metric
    return (f"{head}: {m} {metrics.get(m, math.nan):.4f} (best epoch {int(metrics.get('best_epoch', 0))}), "
            f"test/ndcg_10 {metrics.get('test/ndcg_10', math.nan):.4f}, {metrics.get('minutes', math.nan):.1f} min")


def _report(cfg: DictConfig, metrics: Mapping[str, Any], out: Path) -> None:
    from recexp.runtime import terminal

    if terminal.compact():
        console.print(escape(compact_line(cfg, metrics)), soft_wrap=True, highlight=False)
        return
    if metrics.get("skipped"):  # an identical config already FINISHED: nothing trained here
        console.print(f"[bold yellow]skipped:[/] nothing trained: this config has FINISHED run "
                      f"{metrics.get('skipped_run')}, whose metrics count for this job "
                      f"(tracking.skip_finished=never trains again)", soft_wrap=True)
        return
    console.print(summary_table(metrics))
    if metrics.get("test/repeat_share", 0) > 0:  # the split of Li et al. (SIGIR 2023), always said when it exists
        console.print(f"{metrics['test/repeat_share']:.1%} of test targets repeat a history item: NDCG@10 "
                      f"{metrics.get('test/repeat/ndcg_10', math.nan):.4f} on them, "
                      f"{metrics.get('test/explore/ndcg_10', math.nan):.4f} on the others "
                      f"(eval.mask_history={cfg.eval.get('mask_history')})", soft_wrap=True)
    best = metrics.get(cfg.optimized_metric, math.nan)
    shown = out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out
    console.print(f"{cfg.optimized_metric} = {best:.4f}   best epoch {int(metrics.get('best_epoch', 0))}   "
                  f"outputs: {escape(str(shown))}", soft_wrap=True)
    if metrics.get("mlflow_where"):
        console.print(escape(str(metrics["mlflow_where"])), soft_wrap=True, highlight=False)


def task(cfg: DictConfig) -> float:
    return run_job(cfg, _job, _report)


def _asks_job_config(argv: list[str]) -> bool:
    """``--cfg job`` / ``-c job`` without a sweep and without Hydra's package selector."""
    for flag in ("--cfg", "-c"):
        if flag in argv and argv.index(flag) + 1 < len(argv) and argv[argv.index(flag) + 1] == "job":
            return not {"-m", "--multirun", "-p", "--package"} & set(argv)
    return False


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(help_text())
        return 0
    argv = ["--help" if a == "--hydra-help" else a for a in argv]
    from recexp.config.overrides import check_overrides, job_config
    from recexp.errors import ConfigError

    try:
        check_overrides(argv)  # typos: one line with the closest names
        if _asks_job_config(argv):  # the config as it will run: auto choices resolved
            print(job_config(argv), end="")
            return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return hydra_main("recexp-train", argv, task)
