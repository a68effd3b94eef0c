"""Figures and tables a paper can take as they are, for ``recexp compare`` and the hypothesis report:
each figure as vector PDF and PNG side by side with the CSV of what it plots; per-seed points with
their mean (no error bar computed from a handful of seeds); intervals only from the verdict engine
(:mod:`recexp.analysis.verdict`), clipped to the metric's range and never drawn from one seed; epoch
axes in whole epochs; short titles; LaTeX tables with a caption and a label."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

UNBOUNDED = ("novelty", "avgpop", "_s", "loss", "epoch", "minutes")  # metrics not in [0, 1]


def bounded(metric: str) -> bool:
    """Ranking metrics (NDCG, HR, MRR, coverage, ...) lie in [0, 1]."""
    return not any(u in metric for u in UNBOUNDED)


def pretty(metric: str) -> str:
    """``test/ndcg_10`` -> ``test NDCG@10``: short axis labels and titles."""
    split, _, name = metric.rpartition("/")
    base, _, k = name.rpartition("_")
    label = f"{base.upper() if len(base) <= 4 else base}@{k}" if k.isdigit() and base else name
    return f"{split.replace('/', ' ')} {label}".strip()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "pdf.fonttype": 42, "ps.fonttype": 42})
    return plt


def save(fig, stem: Path, data: pd.DataFrame) -> list[Path]:
    """``stem``.pdf (vector), .png and .csv (the plotted numbers); returns the three paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".pdf"), stem.with_suffix(".png"), stem.with_suffix(".csv")]
    fig.tight_layout()
    fig.savefig(paths[0], metadata={"CreationDate": None})  # the same figure, the same bytes
    fig.savefig(paths[1], dpi=200)
    data.to_csv(paths[2], index=False)
    _plt().close(fig)
    return paths


def seed_points(values: pd.DataFrame, metrics: Sequence[str], stem: Path, baseline: str | None = None) -> list[Path]:
    """One panel per metric: each seed's value as a point, the mean as a bar across them.
    ``values``: columns group, seed, metric, value."""
    plt = _plt()
    groups = list(dict.fromkeys(values["group"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.2 + 0.9 * len(groups) * len(metrics) + 0.8 * len(metrics), 3.0),
                             squeeze=False)
    for ax, m in zip(axes[0], metrics, strict=True):
        for i, g in enumerate(groups):
            v = values[(values["group"] == g) & (values["metric"] == m)]["value"].to_numpy(dtype=float)
            if not len(v):
                continue
            jitter = [0.0] if len(v) == 1 else [-0.12 + 0.24 * j / (len(v) - 1) for j in range(len(v))]
            color = "k" if g == baseline else f"C{i}"
            ax.scatter([i + d for d in jitter], v, s=16, color=color, zorder=3, alpha=0.85, linewidths=0)
            ax.hlines(v.mean(), i - 0.25, i + 0.25, color=color, lw=2, zorder=4)
        keys = {g.split("=", 1)[0] for g in groups}
        key = keys.pop() if len(keys) == 1 and all("=" in g and " " not in g for g in groups) else ""
        ticks = [g.split("=", 1)[1] if key else g for g in groups]  # model.num_blocks=2 -> 2 under a key label
        tilt = sum(len(t) for t in ticks) > 36
        ax.set_xticks(range(len(groups)), [f"{t}\n(baseline)" if g == baseline else t for g, t in zip(groups, ticks, strict=True)],
                      rotation=20 if tilt else 0, ha="right" if tilt else "center")
        ax.set_xlabel(key)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_title(pretty(m))
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("points: seeds; bar: mean")
    return save(fig, stem, values)


@dataclass
class Effect:
    """One level against the baseline, as the verdict engine judged it."""

    label: str
    delta: float
    lo: float
    hi: float
    seeds: int
    baseline_seeds: int
    baseline_mean: float
    verdict: str


def clipped(e: Effect, metric: str) -> tuple[float, float] | None:
    """The interval of ``e`` within what the metric allows (level mean in [0, 1]); None from one
    seed in either arm (its seed variance is assumed, not measured)."""
    if min(e.seeds, e.baseline_seeds) < 2 or not (math.isfinite(e.lo) and math.isfinite(e.hi)):
        return None
    if not bounded(metric):
        return e.lo, e.hi
    return max(e.lo, -e.baseline_mean), min(e.hi, 1.0 - e.baseline_mean)


def forest(effects: Sequence[Effect], metric: str, smallest_effect: float, level: float, baseline: str,
           stem: Path) -> list[Path]:
    """Each level's effect (level - baseline) with its interval; 0 as a line, the effects smaller
    than the smallest one that matters as a shaded band."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 1.5 + 0.45 * len(effects)))
    if smallest_effect > 0:
        ax.axvspan(-smallest_effect, smallest_effect, color="0.85", zorder=0)
    ax.axvline(0, color="k", lw=0.8, zorder=1)
    rows = []
    for i, e in enumerate(effects):
        y = len(effects) - 1 - i
        iv = clipped(e, metric)
        if iv is not None:
            ax.hlines(y, iv[0], iv[1], color=f"C{i}", lw=2, zorder=2)
        ax.plot(e.delta, y, "o", color=f"C{i}", zorder=3, ms=5)
        rows.append({"level": e.label, "baseline": baseline, "delta": e.delta, "lo": iv[0] if iv else math.nan,
                     "hi": iv[1] if iv else math.nan, "interval_level": level, "seeds": e.seeds,
                     "baseline_seeds": e.baseline_seeds, "verdict": e.verdict,
                     "note": "" if iv else "fewer than 2 seeds: no interval"})
    ax.set_yticks(range(len(effects)), [e.label + ("" if clipped(e, metric) else "\n(1 seed: no interval)")
                                        for e in reversed(effects)])
    ax.set_ylim(-0.7, len(effects) - 0.3)
    band = f"\nshaded: |effect| < {smallest_effect:g}, too small to matter" if smallest_effect > 0 else ""
    ax.set_xlabel(f"{pretty(metric)}: level - {baseline}{band}")
    ax.set_title(f"effect vs baseline ({level:.0%} intervals)")
    ax.grid(axis="x", alpha=0.3)
    return save(fig, stem, pd.DataFrame(rows))


def _seeds(group: str, part: pd.DataFrame) -> str:
    n = part["seed"].nunique()
    return f"{group} ({n} seed{'s' * (n != 1)})"


def curves(series: pd.DataFrame, metric: str, stem: Path, x: str = "epoch", xlabel: str = "epoch",
           reference: tuple[str, float] | None = None, title: str | None = None,
           figsize: tuple[float, float] = (4.8, 3.2)) -> list[Path]:
    """Validation curves: one thin line per seed, the mean over seeds bold (at the epochs every
    seed reached); whole-epoch ticks.
    ``series``: columns group, seed, ``x``, value. ``reference``: (label, value) drawn as a dashed
    level line (a count model's figure, which has no epochs); the CSV holds it as the group
    ``label`` at the first and last ``x`` plotted."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    fig, ax = plt.subplots(figsize=figsize)
    if reference is not None and len(series):
        lo, hi = series[x].min(), series[x].max()
        ax.axhline(reference[1], color="0.35", lw=1.2, ls="--", label=reference[0])
        series = pd.concat([series, pd.DataFrame({"group": reference[0], "seed": "", x: [lo, hi],
                                                  "value": reference[1]})], ignore_index=True)
        plotted = series[series["group"] != reference[0]]
    else:
        plotted = series
    groups = plotted.groupby("group", sort=False)
    many = plt.get_cmap("tab20")  # past ten groups the default cycle repeats its colours
    for i, (g, part) in enumerate(groups):
        color = f"C{i}" if groups.ngroups <= 10 else many(i % 20)
        for _, run in part.groupby("seed"):
            ax.plot(run[x], run["value"], color=color, lw=0.8, alpha=0.45)
        if x == "epoch":  # the mean where every seed has a point: past a seed's early stop only thin lines
            by_x = part.groupby(x)["value"]
            mean = by_x.mean()[by_x.count() == part["seed"].nunique()]
            ax.plot(mean.index, mean.to_numpy(), color=color, lw=2, marker="o", ms=3 if len(mean) <= 60 else 0,
                    label=_seeds(g, part))
        else:
            ax.plot([], [], color=color, lw=2, label=_seeds(g, part))
    if x == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(pretty(metric))
    ax.set_title(title or f"{pretty(metric)} by {xlabel.split(' (')[0]}")
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3)
    return save(fig, stem, series)


def tex(s: object) -> str:
    return str(s).replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")


def latex_table(columns: Sequence[str], rows: Sequence[Sequence[object]], caption: str, label: str) -> str:
    """A booktabs table in a ``table`` float: first column left, the others right."""
    out = [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
           rf"\begin{{tabular}}{{l{'r' * (len(columns) - 1)}}}", r"\toprule", " & ".join(columns) + r" \\", r"\midrule"]
    out += [" & ".join(str(c) for c in r) + r" \\" for r in rows]
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def protocol_words(protocol: dict) -> str:
    """``{"split": "LeaveOneOut", "mode": "full", "mask_history": "all"}`` -> words for a caption."""
    parts = [{"LeaveOneOut": "leave-one-out split", "Temporal": "temporal split", "Session": "session split"}
             .get(str(protocol.get("split")), f"{protocol.get('split')} split") if protocol.get("split") else "",
             "full ranking" if protocol.get("mode") == "full" else (f"{protocol.get('mode')} ranking"
                                                                    if protocol.get("mode") else ""),
             f"history masked: {protocol['mask_history']}" if "mask_history" in protocol else ""]
    return ", ".join(p for p in parts if p) or "protocol not recorded"
