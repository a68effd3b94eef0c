"""What a run tells its user on the terminal: a start-up header, a progress bar inside long
epochs, a warning when training was still improving, and where to look at the run afterwards."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape

T = TypeVar("T")
console = Console(stderr=True)
#: set by `recexp hypothesis run` for its sweeps: each job prints one line, not its header and tables
COMPACT_ENV = "RECEXP_COMPACT_JOBS"


def compact() -> bool:
    return bool(os.environ.get(COMPACT_ENV))
#: a plain progress line at most this often (seconds) when stderr is not a terminal (log files)
PLAIN_EVERY_S = 30.0


def _threads(device: Any) -> str:
    """`` (1 thread: ...)`` after a CPU device: how many cores the run takes (runtime/threads.py)."""
    if str(device) != "cpu":
        return ""
    from recexp.runtime.threads import described

    return f", {described()}"


def header(cfg: Any, data: Any, model: Any, device: Any, run_id: str | None) -> str:
    """One block: dataset sizes, the resolved parts, parameter count, device, MLflow run id."""
    s = data.summary()
    ch = dict(cfg.get("choices") or {})
    n_params = sum(p.numel() for p in model.parameters())
    lines = [
        f"dataset {cfg.dataset.name}: {s['users']:,} users, {s['items']:,} items, {s['train_interactions']:,} "
        f"training interactions; valid {s['valid_examples']:,} / test {s['test_examples']:,} examples "
        f"({s['test_repeat_targets']:,} test targets repeat a history item)",
        "model=" + ch.get("model", type(model).__name__.lower()) + "  "
        + "  ".join(f"{g}={ch[g]}" for g in ("loss", "sampler", "split", "eval") if g in ch)
        + f"  eval.mask_history={cfg.eval.get('mask_history', '?')}",
        f"{n_params:,} parameters  device {device}{_threads(device)}  MLflow run {run_id or '- (tracking=none)'}",
    ]
    return "\n".join(lines)


def print_header(cfg: Any, data: Any, model: Any, device: Any, run_id: str | None) -> None:
    console.print(escape(header(cfg, data, model, device, run_id)), soft_wrap=True, highlight=False)


def batches(it: Iterable[T], total: int, epoch: int, enabled: bool) -> Iterator[T]:
    """``it`` unchanged, with a rich progress bar and ETA on a terminal (transient: the epoch line
    replaces it), or a plain line every ``PLAIN_EVERY_S`` seconds otherwise (long epochs only)."""
    if not enabled:
        yield from it
        return
    if console.is_terminal:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        cols = (TextColumn(f"epoch {epoch:>3}"), BarColumn(), MofNCompleteColumn(), TextColumn("ETA"),
                TimeRemainingColumn())
        with Progress(*cols, console=console, transient=True) as bar:
            task = bar.add_task("train", total=total)
            for x in it:
                yield x
                bar.advance(task)
        return
    t0 = last = time.perf_counter()
    for i, x in enumerate(it, 1):
        yield x
        now = time.perf_counter()
        if now - last >= PLAIN_EVERY_S and i < total:
            last = now
            eta = (now - t0) / i * (total - i)
            console.print(f"epoch {epoch:>3}: {i:,}/{total:,} batches ({100 * i / total:.0f}%), ETA {eta:.0f}s",
                          highlight=False)


def still_improving(best_epoch: int, epochs_run: int, max_epochs: int, stopped_early: bool) -> str | None:
    """The warning when the best validation epoch is the last one the budget allowed."""
    if max_epochs > 1 and epochs_run >= max_epochs and best_epoch == epochs_run and not stopped_early:
        return (f"still improving: the best validation epoch is the last one ({best_epoch}); "
                "raise trainer.max_epochs")
    return None


def where(run_id: str | None, url: str | None, uri: str | None = None) -> str | None:
    """Where to look at the run: the MLflow UI's landing page of its experiment (the run is its
    newest row) and the run id; for a local store, the command that serves that page."""
    if not run_id or not url:
        return None
    if uri and uri.startswith(("http://", "https://")):
        return f"MLflow: {url} (run {run_id})"
    return f"MLflow: {url} (run {run_id}; serve it with `recexp ui`)"
