"""What ``recexp compare`` shows and writes: a rich table, CSV + Markdown, PNG plots."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table


def _fmt(mean: float, half: float) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.4f}" if math.isnan(half) else f"{mean:.4f} ± {half:.4f}"


def _p(p: float) -> str:
    return "—" if math.isnan(p) else (f"{p:.2e}" if p < 1e-3 else f"{p:.4f}")


def best_rows(summary: pd.DataFrame, metrics: list[str]) -> dict[str, int]:
    """Row index of the best mean per metric (higher is better, except average popularity)."""
    out = {}
    for m in metrics:
        col = summary[m].astype(float)
        if col.notna().any():
            out[m] = int(col.idxmin() if "avgpop" in m else col.idxmax())
    return out


def rich_summary(summary: pd.DataFrame, metrics: list[str], baseline: int) -> Table:
    best = best_rows(summary, metrics)
    table = Table(title="mean ± 95% CI over seeds (best in bold)")
    table.add_column("group")
    table.add_column("runs", justify="right")
    for m in metrics:
        table.add_column(m, justify="right")
    for i, row in summary.iterrows():
        cells = [f"[bold]{_fmt(row[m], row[f'{m} ±'])}[/]" if best.get(m) == i else _fmt(row[m], row[f"{m} ±"])
                 for m in metrics]
        name = f"{row['group']} (baseline)" if i == baseline else str(row["group"])
        table.add_row(name, str(row["runs"]), *cells)
    return table


def markdown(summary: pd.DataFrame, metrics: list[str], baseline: int, hypothesis: str, lines: list[str]) -> str:
    """The summary table, then the verdict's lines exactly as printed (last line ``verdict: ...``)."""
    best = best_rows(summary, metrics)
    out = ["| group | runs | " + " | ".join(metrics) + " |", "|---|---:|" + "---:|" * len(metrics)]
    for i, row in summary.iterrows():
        cells = [f"**{_fmt(row[m], row[f'{m} ±'])}**" if best.get(m) == i else _fmt(row[m], row[f"{m} ±"])
                 for m in metrics]
        name = f"{row['group']} (baseline)" if i == baseline else str(row["group"])
        out.append(f"| {name} | {row['runs']} | " + " | ".join(cells) + " |")
    out += ["", *([f"Hypothesis: {hypothesis}", ""] if hypothesis else []), "```", *lines, "```"]
    return "\n".join(out) + "\n"


def plot_metrics(summary: pd.DataFrame, metrics: list[str], path: Path) -> None:
    """One panel per metric: group means with 95% CI error bars over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1, 3.4), squeeze=False)
    x = np.arange(len(summary))
    for ax, m in zip(axes[0], metrics, strict=True):
        err = summary[f"{m} ±"].fillna(0).to_numpy(dtype=float)
        ax.bar(x, summary[m].to_numpy(dtype=float), yerr=err, capsize=4, color="#4c72b0")
        ax.set_xticks(x, summary["group"], rotation=20, ha="right", fontsize=8)
        ax.set_title(m, fontsize=9)
    fig.suptitle("mean over seeds, 95% CI", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(curves: dict[str, list[list[tuple[int, float]]]], key: str, path: Path) -> None:
    """Validation curve per group: mean over seeds (line) and the seeds' min-max (band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, runs in curves.items():
        frame = pd.DataFrame([{"step": s, "value": v, "run": i} for i, h in enumerate(runs) for s, v in h])
        if frame.empty:
            continue
        agg = frame.groupby("step")["value"].agg(["mean", "min", "max"])
        line, = ax.plot(agg.index, agg["mean"], marker="o", ms=3, label=f"{label} ({len(runs)} seeds)")
        ax.fill_between(agg.index, agg["min"], agg["max"], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def console() -> Console:
    """A terminal keeps its width; piped or captured output gets 160 columns so tables are not cut."""
    return Console() if sys.stdout.isatty() else Console(width=160)
