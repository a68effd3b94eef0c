"""The report of a hypothesis: Markdown + PNG + LaTeX table, logged to MLflow with a link to
every run. Plots show one point per seed; an interval is drawn only from 2+ seeds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from recexp.analysis.hypothesis.analysis import Verdict, text
from recexp.analysis.hypothesis.runner import REPORT, ROLE_TAG
from recexp.record import tag

MARK = {"supported": "*", "refuted": "=", "inconclusive": "", "": ""}


def _seed_ci(x: np.ndarray) -> float | None:
    """Half-width of the 95% t interval of the seed means; None from one seed (no honest interval)."""
    if len(x) < 2:
        return None
    from scipy import stats

    return float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def plot(v: Verdict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    h = v.h
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for i, a in enumerate(v.arms):
        seed_means = a.matrix.mean(axis=1)
        ax.scatter(np.full(len(seed_means), i) + np.linspace(-0.08, 0.08, len(seed_means)), seed_means,
                   color="k" if i == 0 else f"C{i}", zorder=3, s=22, label=None)
        half = _seed_ci(seed_means)
        if half is not None:
            ax.errorbar(i + 0.22, seed_means.mean(), yerr=half, fmt="_", color="gray", capsize=4)
        verdict = "" if i == 0 else v.effects[i - 1].verdict
        ax.annotate(MARK[verdict] + ("baseline" if i == 0 else verdict), (i, seed_means.max()),
                    textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    ax.set_xticks(range(len(v.arms)), [f"{h.key}={a.level}" for a in v.arms], rotation=15, fontsize=8)
    ax.set_ylabel(f"test {h.metric} (one point per seed)")
    ax.set_title("per seed; bar: 95% t interval over seeds (2+ seeds)", fontsize=9)
    for k, (xkey, xlabel) in enumerate((("epoch", "epoch"), ("seconds", "training seconds (wall time)")), start=1):
        ax = axes[k]
        for i, a in enumerate(v.arms):
            for j, c in enumerate(a.curves):
                pts = c[xkey]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color="k" if i == 0 else f"C{i}", lw=1, alpha=0.8,
                        marker="." if xkey == "epoch" else None,
                        label=(f"{h.key}={a.level}" + (" (baseline)" if i == 0 else "")) if j == 0 else None)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation metric (monitor)")
        if xkey == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"learning curves at equal {'epochs' if xkey == 'epoch' else 'wall time'} (one line per seed)",
                     fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(textwrap.fill(h.claim, 150), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _budget(budget: dict) -> str:
    """``max_epochs 10 (note)`` rather than a Python dict."""
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in budget.items()) or "none"


def _tex(s: str) -> str:
    return s.replace("_", "\\_")


def latex(v: Verdict) -> str:
    h = v.h
    rows = [r"\begin{tabular}{lrrrl}", r"\toprule",
            rf"{_tex(h.key)} & seeds & {_tex(h.metric)} & $\Delta$ [interval] & verdict \\",
            r"\midrule"]
    b = v.arms[0]
    rows.append(rf"{_tex(b.level)} (baseline) & {len(b.seeds)} & {b.matrix.mean():.4f} & -- & -- \\")
    for a, e in zip(v.arms[1:], v.effects, strict=True):
        rows.append(rf"{_tex(a.level)} & {len(a.seeds)} & {a.matrix.mean():.4f} & "
                    rf"{e.delta:+.4f} [{e.lo:+.4f}, {e.hi:+.4f}] & {e.verdict}{'$^*$' if e.verdict == 'supported' else ''} \\")
    rows += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(rows) + "\n"


def at_equal_time(v: Verdict) -> tuple[float, list[list[float]]]:
    """The longest training time every run reached, and per level the best validation value each
    seed had reached by then: "same quality for less compute" read off the curves."""
    runs = [c["seconds"] for a in v.arms for c in a.curves if c["seconds"]]
    if not runs:
        return float("nan"), [[] for _ in v.arms]
    budget = min(pts[-1][0] for pts in runs)
    return budget, [[max((y for x, y in c["seconds"] if x <= budget), default=float("nan")) for c in a.curves]
                    for a in v.arms]


def markdown(v: Verdict, png: str, ui: str) -> str:
    h = v.h
    out = [f"# Hypothesis `{h.name}`", "", f"> {v.first_line()}", "", f"**Claim.** {h.claim}", "",
           f"**Verdict: {v.overall}.**", "",
           f"Judged on per-user test `{h.metric}` ({v.users} users, paired by user id) by the verdict engine "
           f"(`recexp.analysis.verdict`: seed and user variance parts, Student t with the least favourable "
           f"Welch-Satterthwaite df), direction `{h.direction}`, smallest effect that matters "
           f"{h.smallest_effect:g}, alpha {h.alpha}, Holm-corrected over {len(h.levels)} level(s), "
           f"{v.result.interval_level:.1%} intervals. Budget: {_budget(h.budget)}.", "",
           f"| {h.key} | seeds | mean | per-seed means | delta vs baseline | interval | p (Holm) | verdict |",
           "|---|---:|---:|---|---:|---|---:|---|"]
    for a, e, p in v.rows():
        head = (f"| {f'**{a.level}** (baseline)' if e is None else a.level} | {len(a.seeds)} | {a.matrix.mean():.4f} | "
                f"{', '.join(f'{x:.4f}' for x in a.matrix.mean(axis=1))} |")
        out.append(f"{head} | | | |" if e is None else
                   f"{head} {e.delta:+.4f} | [{e.lo:+.4f}, {e.hi:+.4f}] | {p:.4f} | {e.verdict}{MARK[e.verdict]} |")
    out += ["", "`*` the interval clears the smallest effect that matters; `=` it is smaller than it.", "",
            f"![per-seed points and learning curves]({png})", ""]
    budget, vals = at_equal_time(v)
    if vals and any(vals):
        out += [f"**At equal wall time** ({budget:.1f} training seconds, the shortest run's total; validation metric "
                "reached by then, best so far, per seed; wall time on a shared CPU is noisy):", "",
                f"| {h.key} | per-seed validation | mean |", "|---|---|---:|"]
        out += [f"| {a.level} | {', '.join(f'{x:.4f}' for x in vs)} | {np.mean(vs):.4f} |"
                for a, vs in zip(v.arms, vals, strict=True)]
        out += ["", "Training seconds per epoch (mean over seeds and epochs): " + ", ".join(
            f"{a.level} {np.mean([np.diff([0.0] + [x for x, _ in c['seconds']]).mean() for c in a.curves]):.1f} s"
            for a in v.arms) + ".", ""]
    out += ["## Runs", ""]
    for a in v.arms:
        for s, r in zip(a.seeds, a.runs, strict=True):
            out.append(f"- {h.key}={a.level} seed {s}: [{r.run_id}]({ui}/#/experiments/{v.experiment_id}/runs/{r.run_id}) "
                       f"(test {h.metric} {r.metrics.get(f'test/{h.metric}', float('nan')):.4f}, "
                       f"best epoch {int(r.metrics.get('best_epoch', 0))}, fit {r.metrics.get('fit_s', float('nan')):.0f} s)")
    out += ["", "## Verdict as printed", "", "```", text(v), "```", ""]
    return "\n".join(out)


def write(v: Verdict, out_dir: Path, ui: str = "http://127.0.0.1:5000", log: bool = True) -> list[Path]:
    """Write report.md, curves.png, table.tex under ``out_dir``; log them as one MLflow run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{v.h.name}.png"
    plot(v, png)
    md = out_dir / f"{v.h.name}.md"
    md.write_text(markdown(v, png.name, ui))
    tex = out_dir / f"{v.h.name}.tex"
    tex.write_text(latex(v))
    if log:
        from recexp.analysis.query import log_comparison

        rid = log_comparison(v.uri, v.experiment_id, f"report-{v.h.name}",
                             {"claim": v.h.claim, "verdict": v.overall},
                             {tag.VERDICT: v.overall, tag.HYPOTHESIS_SHA256: v.h.sha256,
                              tag.NOTE: v.first_line() + "\n\n" + text(v)}, [md, png, tex])
        from mlflow.tracking import MlflowClient

        MlflowClient(v.uri).set_tag(rid, ROLE_TAG, REPORT)
    return [md, png, tex]
