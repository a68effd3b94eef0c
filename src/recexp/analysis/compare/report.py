"""What ``recexp compare`` shows and writes: a rich table (mean ± s.d. over seeds), CSV, Markdown,
a LaTeX table, and figures as PDF + PNG + CSV (:mod:`recexp.analysis.figures`): per-seed points,
the effects with the verdict engine's intervals, the validation curves."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from recexp.analysis import figures
from recexp.record import tag

SPREAD = "mean ± s.d. over seeds"


def _fmt(mean: float, sd: float) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.4f}" if math.isnan(sd) else f"{mean:.4f} ± {sd:.4f}"


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
    table = Table(title=f"{SPREAD} (best in bold; intervals: the verdict below)")
    table.add_column("group")
    table.add_column("runs", justify="right")
    for m in metrics:
        table.add_column(m, justify="right")
    for i, row in summary.iterrows():
        cells = [f"[bold]{_fmt(row[m], row[f'{m} sd'])}[/]" if best.get(m) == i else _fmt(row[m], row[f"{m} sd"])
                 for m in metrics]
        name = f"{row['group']} (baseline)" if i == baseline else str(row["group"])
        table.add_row(name, str(row["runs"]), *cells)
    return table


def markdown(summary: pd.DataFrame, metrics: list[str], baseline: int, hypothesis: str, lines: list[str]) -> str:
    """The summary table, then the verdict's lines exactly as printed (last line ``verdict: ...``)."""
    best = best_rows(summary, metrics)
    out = [f"Cells: {SPREAD} (a spread, not an interval; the verdict's intervals are below).", "",
           "| group | runs | " + " | ".join(metrics) + " |", "|---|---:|" + "---:|" * len(metrics)]
    for i, row in summary.iterrows():
        cells = [f"**{_fmt(row[m], row[f'{m} sd'])}**" if best.get(m) == i else _fmt(row[m], row[f"{m} sd"])
                 for m in metrics]
        name = f"{row['group']} (baseline)" if i == baseline else str(row["group"])
        out.append(f"| {name} | {row['runs']} | " + " | ".join(cells) + " |")
    out += ["", *([f"Hypothesis: {hypothesis}", ""] if hypothesis else []), "```", *lines, "```"]
    return "\n".join(out) + "\n"


def seed_values(groups: list, metrics: list[str]) -> pd.DataFrame:
    """group, seed, metric, value: one row per run and metric (what the points figure plots)."""
    return pd.DataFrame([{"group": g.label, "seed": r.params.get("seed", "?"), "metric": m,
                          "value": r.metrics.get(m, math.nan)} for g in groups for r in g.runs for m in metrics])


def curve_frame(curves: dict[str, list[tuple[str, list[tuple[int, float]]]]]) -> pd.DataFrame:
    """group, seed, epoch, value from ``{group: [(seed, [(epoch, value), ...]), ...]}``."""
    return pd.DataFrame([{"group": g, "seed": seed, "epoch": int(s), "value": v}
                         for g, runs in curves.items() for seed, hist in runs for s, v in hist],
                        columns=["group", "seed", "epoch", "value"])


def effects(groups: list, arms: list, baseline: int, result) -> list[figures.Effect]:
    others = [g for i, g in enumerate(groups) if i != baseline]
    base_mean = float(np.mean(arms[baseline].arm.values))
    return [figures.Effect(g.label, r.delta, r.lo, r.hi, r.seeds, r.baseline_seeds, base_mean, r.verdict)
            for g, r in zip(others, result.levels, strict=True)]


def latex(summary: pd.DataFrame, metrics: list[str], baseline: int, effs: list[figures.Effect], result,
          column: str, protocol: str, seeds: str) -> str:
    """The summary with each group's effect on the judged metric, captioned with what it measures."""
    by_label = {e.label: e for e in effs}
    rows = []
    for i, row in summary.iterrows():
        e = by_label.get(str(row["group"]))
        iv = figures.clipped(e, column) if e else None
        delta = "--" if e is None else (f"{e.delta:+.4f}" + (f" [{iv[0]:+.4f}, {iv[1]:+.4f}]" if iv else ""))
        name = figures.tex(row["group"]) + (" (baseline)" if i == baseline else "")
        rows.append([name, row["runs"], *(_fmt(row[m], row[f"{m} sd"]).replace("±", "$\\pm$") for m in metrics),
                     delta, "--" if e is None else e.verdict])
    spread = SPREAD.replace("±", "$\\pm$")
    caption = (f"{figures.tex(', '.join(figures.pretty(m) for m in metrics))}: {spread} "
               f"(seeds {figures.tex(seeds)}); {figures.tex(protocol)}. $\\Delta$: per-user test "
               f"{figures.tex(figures.pretty(column))} minus the baseline, with the verdict engine's "
               f"{result.interval_level:.1%} interval (seed and user variance, Holm over {len(result.levels)} "
               f"level(s), alpha {result.alpha:g})".replace("%", "\\%"))
    cols = ["group", "runs", *(figures.tex(figures.pretty(m)) for m in metrics), r"$\Delta$ [interval]", "verdict"]
    return figures.latex_table(cols, rows, caption, f"tab:compare-{column.replace('_', '')}")


def write(out: Path, summary: pd.DataFrame, metrics: list[str], groups: list, baseline: int, arms: list, result,
          column: str, curves: dict, curve_key: str, hypothesis: str, lines: list[str]) -> list[Path]:
    """Every file of a comparison under ``out``; returns them."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "summary.csv", out / "comparison.md", out / "comparison.tex"]
    summary.to_csv(files[0], index=False)
    files[1].write_text(markdown(summary, metrics, baseline, hypothesis, lines))
    effs = effects(groups, arms, baseline, result)
    proto = json.loads(groups[0].runs[0].tags.get(tag.PROTOCOL) or "{}") if groups[0].runs[0].tags else {}
    seeds = ",".join(sorted({s for s in summary["seeds"] for s in str(s).split(",")}, key=lambda x: (len(x), x)))
    files[2].write_text(latex(summary, metrics, baseline, effs, result, column, figures.protocol_words(proto), seeds))
    files += figures.seed_points(seed_values(groups, metrics), metrics, out / "metrics", groups[baseline].label)
    files += figures.forest(effs, f"test/{column}", result.smallest_effect, result.interval_level, groups[baseline].label,
                            out / "effects")
    files += figures.curves(curve_frame(curves), curve_key, out / "valid_curves")
    return files


def console() -> Console:
    """A terminal keeps its width; piped or captured output gets 160 columns so tables are not cut."""
    return Console() if sys.stdout.isatty() else Console(width=160)
