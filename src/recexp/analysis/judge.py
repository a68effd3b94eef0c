"""The one way recorded runs become a verdict, for ``recexp compare`` and ``recexp hypothesis``:
each arm's runs -> a (seeds x users) matrix of a per-user test metric, paired by user id ->
:func:`recexp.analysis.verdict.verdict` -> the same printed rows and the same last line,
``verdict: <word>``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from recexp.analysis.query import RunRecord, per_user_table
from recexp.analysis.verdict import Arm, VerdictResult, verdict
from recexp.errors import DataError, UserError

SIGN = {"greater": ">", "less": "<", "two-sided": "!="}


@dataclass
class RecordedArm:
    """One level as recorded: its runs (one per seed, in seed order) and its per-user matrix."""

    name: str
    runs: list[RunRecord]
    arm: Arm
    examples: int = 0  # per run; more than the users on session splits (averaged per user first)

    @property
    def seeds(self) -> list[int]:
        return [int(float(r.params.get("seed", "nan"))) for r in self.runs]


def recorded_arm(uri: str, name: str, runs: Sequence[RunRecord], metric: str) -> RecordedArm:
    """The per-user ``metric`` of each run (a user's examples averaged first: session splits have
    several per user), one row per run, columns = user ids (the users every run evaluated)."""
    cols, examples = [], 0
    for r in runs:
        t = per_user_table(uri, r)
        examples = len(t)
        if metric not in t.columns:
            have = ", ".join(c for c in t.columns if c not in ("user", "target", "rank", "ties", "repeat"))
            raise UserError(f"{name}: per-user metrics have no column {metric!r} (have: {have})")
        cols.append(t.groupby("user")[metric].mean())
    frame = pd.concat(cols, axis=1, join="outer")
    if frame.isna().any().any():
        raise DataError(f"{name}: its runs were evaluated on different users (different data or split); "
                        "paired tests need the same test users")
    return RecordedArm(name, list(runs), Arm(name, frame.to_numpy().T, list(frame.index)), examples)


def judge(baseline: RecordedArm, levels: Sequence[RecordedArm], *, direction: str, alpha: float,
          smallest_effect: float, allow_few_seeds: bool = False) -> VerdictResult:
    """The verdict engine on recorded arms; arms with different users are one line naming how many."""
    try:
        return verdict(baseline.arm, [a.arm for a in levels], direction=direction, alpha=alpha,
                       smallest_effect=smallest_effect, allow_few_seeds=allow_few_seeds)
    except ValueError as exc:
        raise UserError(str(exc).splitlines()[0]) from None


def still_improving(runs: Sequence[RunRecord]) -> int:
    """Runs whose best validation epoch is their last one: the budget ended while they improved."""
    n = 0
    for r in runs:
        best, last = r.metrics.get("best_epoch", math.nan), r.metrics.get("epochs_run", math.nan)
        n += bool(best > 0 and best == last)
    return n


def header(metric: str, result: VerdictResult, users: int, seeds: str, examples: int = 0) -> str:
    per_user = f" ({examples:,} examples averaged per user first: {users:,} users)" if examples > users else ""
    return (f"judged on: per-user test {metric}{per_user}, {users:,} users x seeds {seeds}; level - baseline "
            f"{SIGN[result.direction]} {result.smallest_effect:g} (smallest effect that matters), alpha "
            f"{result.alpha:g}, Holm over {len(result.levels)} level(s), {result.interval_level:.1%} interval; "
            "Student t with seed (per arm) and user variance parts (analysis/verdict.py)")


def rows(baseline: RecordedArm, levels: Sequence[RecordedArm], result: VerdictResult,
         label: str = "") -> list[str]:
    """One line per arm, baseline first, then the notes (convergence, assumptions) and the last
    line ``verdict: <word>``: what compare and hypothesis both print."""
    w = max(len(label + a.name) for a in [baseline, *levels]) + 12
    out = [f"{'level':<{w}} {'seeds':>5} {'mean':>8} {'per-seed':<26} {'delta':>8}  {'interval':<20} "
           f"{'p(Holm)':>8}  verdict   [secondary: Wilcoxon p]"]
    for a, r in [(baseline, None), *zip(levels, result.levels, strict=True)]:
        x = a.arm.values
        head = (f"{label + a.name + (' (baseline)' if r is None else ''):<{w}} {x.shape[0]:>5} {x.mean():>8.4f} "
                f"{' '.join(f'{v:.4f}' for v in x.mean(axis=1)):<26}")
        if r is None:
            out.append(head)
            continue
        p = r.p_supported if r.verdict != "refuted" else r.p_refuted
        out.append(f"{head} {r.delta:>+8.4f}  [{r.lo:+.4f}, {r.hi:+.4f}]  {p:>8.4f}  {r.verdict} ({r.reason}) "
                   f"[{r.wilcoxon.p_value:.3g}]")
    moving = [(label + a.name, still_improving(a.runs), len(a.runs)) for a in [baseline, *levels]]
    if any(n for _, n, _ in moving):
        out.append("still improving when the budget ended (best epoch = last epoch): "
                   + ", ".join(f"{label}{name} {n}/{m}" for name, n, m in moving)
                   + "; their figures may rise with a larger budget")
    out.append(f"verdict: {result.overall}")
    return out
