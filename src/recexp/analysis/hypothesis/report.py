"""The report of a hypothesis: Markdown, a LaTeX table (caption and label) and figures a paper can
take as they are (PDF + PNG + the CSV they plot, :mod:`recexp.analysis.figures`): per-seed points
with their mean, each level's effect with the verdict engine's interval (none from one seed), the
validation curves at equal epochs and at equal wall time; all logged to MLflow with a link to every run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from recexp.analysis import figures
from recexp.analysis.hypothesis.analysis import Verdict, text
from recexp.analysis.hypothesis.runner import REPORT, ROLE_TAG
from recexp.record import tag

MARK = {"supported": "*", "refuted": "=", "inconclusive": "", "": ""}


def _label(v: Verdict, level: str) -> str:
    return f"{v.h.key}={level}"


def plots(v: Verdict, out_dir: Path) -> list[Path]:
    """``<name>_seeds``, ``<name>_effects``, ``<name>_curves`` and ``<name>_time``, each .pdf .png .csv."""
    h, stem = v.h, out_dir / v.h.name
    metric = f"{h.split}/{h.metric}"
    base = _label(v, v.arms[0].level)
    points = pd.DataFrame([{"group": _label(v, a.level), "seed": s, "metric": metric, "value": float(x)}
                           for a in v.arms for s, x in zip(a.seeds, a.matrix.mean(axis=1), strict=True)])
    files = figures.seed_points(points, [metric], stem.with_name(f"{h.name}_seeds"), base)
    base_mean = float(v.arms[0].matrix.mean())
    effs = [figures.Effect(_label(v, a.level), e.delta, e.lo, e.hi, e.seeds, e.baseline_seeds, base_mean, e.verdict)
            for a, e in zip(v.arms[1:], v.effects, strict=True)]
    files += figures.forest(effs, metric, h.smallest_effect, v.result.interval_level, base,
                            stem.with_name(f"{h.name}_effects"))
    monitor = f"valid/{v.arms[0].runs[0].params.get('trainer.monitor', 'ndcg_10')}"
    for key, name, xlabel in (("epoch", "curves", "epoch"), ("seconds", "time", "training seconds (wall time)")):
        series = pd.DataFrame([{"group": _label(v, a.level), "seed": s, key: x, "value": y}
                               for a in v.arms for s, c in zip(a.seeds, a.curves, strict=True) for x, y in c[key]],
                              columns=["group", "seed", key, "value"])
        if not series.empty:
            files += figures.curves(series, monitor, stem.with_name(f"{h.name}_{name}"), x=key, xlabel=xlabel)
    return files


def _budget(budget: dict) -> str:
    """``{max_epochs: 10, note: "..."}`` -> ``at most 10 epochs (...)``: words, not a Python dict."""
    words = [f"at most {v} epochs" if k == "max_epochs" else f"{k.replace('_', ' ')} {v}"
             for k, v in budget.items() if k != "note"]
    note = f" ({budget['note']})" if budget.get("note") else ""
    return (", ".join(words) or "none") + note


def latex(v: Verdict) -> str:
    """The table a paper takes: per level its seeds, mean, effect and interval, verdict; the caption
    says the metric, split, protocol, seeds and the interval's level."""
    h = v.h
    rows = []
    b = v.arms[0]
    base_mean = float(b.matrix.mean())
    rows.append([f"{figures.tex(b.level)} (baseline)", len(b.seeds), f"{base_mean:.4f}", "--", "--"])
    for a, e in zip(v.arms[1:], v.effects, strict=True):
        iv = figures.clipped(figures.Effect(a.level, e.delta, e.lo, e.hi, e.seeds, e.baseline_seeds, base_mean,
                                            e.verdict), h.metric)
        rows.append([figures.tex(a.level), len(a.seeds), f"{a.matrix.mean():.4f}",
                     f"{e.delta:+.4f}" + (f" [{iv[0]:+.4f}, {iv[1]:+.4f}]" if iv else ""),
                     e.verdict + ("$^*$" if e.verdict == "supported" else "")])
    proto = json.loads(b.runs[0].tags.get(tag.PROTOCOL) or "{}")
    level = f"{v.result.interval_level:.1%}".replace("%", "\\%")
    caption = (f"{figures.tex(h.split)} {figures.tex(figures.pretty(h.metric))} per user ({v.users:,} users), "
               f"mean over seeds {figures.tex(', '.join(str(s) for s in h.seeds))}; {figures.tex(figures.protocol_words(proto))}; "
               f"budget {figures.tex(_budget(h.budget))}. $\\Delta$: level minus baseline with the verdict engine's "
               f"{level} interval (seed and user variance, Holm over {len(h.levels)} level(s), alpha {h.alpha:g}, "
               f"smallest effect that matters {h.smallest_effect:g}); $^*$ supported.")
    cols = [figures.tex(h.key), "seeds", figures.tex(figures.pretty(h.metric)), r"$\Delta$ [interval]", "verdict"]
    return figures.latex_table(cols, rows, caption, f"tab:hyp-{h.name.replace('_', '-')}")


def at_equal_time(v: Verdict) -> tuple[float, list[list[float]]]:
    """The longest training time every run reached, and per level the best validation value each
    seed had reached by then: "same quality for less compute" read off the curves."""
    runs = [c["seconds"] for a in v.arms for c in a.curves if c["seconds"]]
    if not runs:
        return float("nan"), [[] for _ in v.arms]
    budget = min(pts[-1][0] for pts in runs)
    return budget, [[max((y for x, y in c["seconds"] if x <= budget), default=float("nan")) for c in a.curves]
                    for a in v.arms]


def _interval(v: Verdict, e) -> str:
    iv = figures.clipped(figures.Effect("", e.delta, e.lo, e.hi, e.seeds, e.baseline_seeds,
                                        float(v.arms[0].matrix.mean()), e.verdict), v.h.metric)
    return f"[{iv[0]:+.4f}, {iv[1]:+.4f}]" if iv else "none (1 seed)"


def markdown(v: Verdict, pngs: list[str], ui: str) -> str:
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
                   f"{head} {e.delta:+.4f} | {_interval(v, e)} | {p:.4f} | {e.verdict}{MARK[e.verdict]} |")
    out += ["", "`*` the interval clears the smallest effect that matters; `=` it is smaller than it. Intervals are "
            "clipped to what the metric allows ([0, 1] for the level's mean).", "",
            *(f"![{name.rsplit('_', 1)[-1].removesuffix('.png')}]({name})" for name in pngs), "",
            "Each figure is also a vector PDF and the CSV of what it plots, beside it; the LaTeX table is "
            f"`{h.name}.tex`.", ""]
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
    """Write ``<name>.md``, ``<name>.tex`` and the figures (PDF + PNG + CSV) under ``out_dir``; log
    them as one MLflow run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = plots(v, out_dir)
    md = out_dir / f"{v.h.name}.md"
    md.write_text(markdown(v, [f.name for f in figs if f.suffix == ".png"], ui))
    tex = out_dir / f"{v.h.name}.tex"
    tex.write_text(latex(v))
    files = [md, tex, *figs]
    if log:
        from recexp.analysis.query import log_comparison

        rid = log_comparison(v.uri, v.experiment_id, f"report-{v.h.name}",
                             {"claim": v.h.claim, "verdict": v.overall},
                             {tag.VERDICT: v.overall, tag.HYPOTHESIS_SHA256: v.h.sha256,
                              tag.NOTE: v.first_line() + "\n\n" + text(v)}, files)
        from mlflow.tracking import MlflowClient

        MlflowClient(v.uri).set_tag(rid, ROLE_TAG, REPORT)
    return files
