"""From the MLflow store to a verdict: the runs of each level, their per-user metrics as
(seeds x users) matrices, the hierarchical bootstrap (``eval/hierarchical.py``), learning curves."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recexp.analysis.hierarchical import Effect, compare_levels
from recexp.analysis.hypothesis.runner import Registration, registration
from recexp.analysis.hypothesis.spec import Hypothesis
from recexp.analysis.query import (
    RunRecord,
    metric_history,
    mlflow_client,
    per_user_table,
    select_runs,
)
from recexp.errors import UserError
from recexp.record import tag


@dataclass
class Arm:
    level: str
    runs: list[RunRecord]  # one per seed, in seed order
    seeds: list[int]
    matrix: np.ndarray  # (seeds, users) per-user metric
    curves: list[dict[str, list[tuple[int, float]]]] = field(default_factory=list)  # per seed


@dataclass
class Verdict:
    h: Hypothesis
    reg: Registration | None
    arms: list[Arm]
    effects: list[Effect]
    users: int
    uri: str
    experiment_id: str

    @property
    def overall(self) -> str:
        v = {e.verdict for e in self.effects}
        if v == {"supported"}:
            return "supported"
        if v == {"refuted"}:
            return "refuted"
        return "mixed" if len(v) > 1 else "inconclusive"

    def rows(self) -> list[tuple[Arm, Effect | None, float | None]]:
        """(arm, its effect against the baseline, the p-value of its verdict), baseline first
        (no effect, no p): what the printed verdict and the report tabulate."""
        out: list[tuple[Arm, Effect | None, float | None]] = [(self.arms[0], None, None)]
        for a, e in zip(self.arms[1:], self.effects, strict=True):
            out.append((a, e, e.p_supported if e.verdict != "refuted" else e.p_refuted))
        return out

    def first_line(self) -> str:
        if self.reg is None:
            return f"WARNING: {self.h.path.name} was never pre-registered (no registration run in MLflow)"
        return self.reg.first_line(self.h)


def _arm(uri: str, h: Hypothesis, level: str, runs: list[RunRecord]) -> Arm:
    by_seed: dict[int, RunRecord] = {}
    for r in runs:  # newest last (select_runs sorts by start time): a rerun's run wins
        seed = int(float(r.params.get("seed", "nan")))
        if seed in h.seeds:
            by_seed[seed] = r
    seeds = sorted(by_seed)
    if not seeds:
        raise UserError(f"{h.path}: no finished run of {h.key}={level} in experiment {h.experiment} "
                        f"(run `recexp hypothesis run {h.path}` first)")
    tables = []
    for s in seeds:
        t = per_user_table(uri, by_seed[s])
        if h.metric not in t.columns:
            raise UserError(f"{h.path}: metric={h.metric!r} is not a per-user column "
                            f"(have: {', '.join(c for c in t.columns if c not in ('user', 'target', 'rank'))})")
        tables.append(t.groupby("user")[h.metric].mean())  # session splits: several examples per user
    frame = pd.concat(tables, axis=1, join="inner").sort_index()
    return Arm(level, [by_seed[s] for s in seeds], seeds, frame.to_numpy().T)


def curves(uri: str, run_id: str, monitor: str) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch validation metric and training seconds; the final summary point (logged one step
    after the last epoch) is dropped by keeping the epochs that have a training time."""
    elapsed = dict(metric_history(uri, run_id, "train/elapsed_s"))
    if not elapsed:  # runs from before train/elapsed_s existed: add up the epoch times
        ep = sorted(metric_history(uri, run_id, "train/epoch_s"))
        elapsed = dict(zip([s for s, _ in ep], np.cumsum([v for _, v in ep]), strict=True))
    valid = {s: v for s, v in metric_history(uri, run_id, f"valid/{monitor}") if s in elapsed}
    steps = sorted(valid)
    return {"epoch": [(s, valid[s]) for s in steps], "seconds": [(elapsed[s], valid[s]) for s in steps]}


def analyse(h: Hypothesis, uri: str, with_curves: bool = True) -> Verdict:
    client = mlflow_client(uri)
    exp = client.get_experiment_by_name(h.experiment)
    if exp is None:
        raise UserError(f"{h.path}: no MLflow experiment {h.experiment!r} in {uri} "
                        f"(run `recexp hypothesis run {h.path}` first)")
    runs = select_runs(uri, h.experiment, None, f"tags.`{tag.HYPOTHESIS_LEVEL}` != ''")
    arms = [_arm(uri, h, lv, [r for r in runs if r.tags.get(tag.HYPOTHESIS_LEVEL) == lv]) for lv in h.all_levels()]
    users = min(a.matrix.shape[1] for a in arms)
    if any(a.matrix.shape[1] != arms[0].matrix.shape[1] for a in arms):
        raise UserError(f"{h.path}: the levels were evaluated on different users (different data or split?)")
    effects = compare_levels(arms[0].matrix, {a.level: a.matrix for a in arms[1:]}, h.direction, h.alpha,
                             h.smallest_effect, n_boot=h.bootstrap, seed=0, allow_few_seeds=h.allow_few_seeds)
    if with_curves:
        monitor = arms[0].runs[0].params.get("trainer.monitor", "ndcg_10")
        for a in arms:
            a.curves = [curves(uri, r.run_id, monitor) for r in a.runs]
    return Verdict(h, registration(client, exp.experiment_id), arms, effects, users, uri, exp.experiment_id)


def text(v: Verdict) -> str:
    """The verdict as printed by ``recexp hypothesis run/show``; its first line is the registration."""
    h = v.h
    sign = {"greater": ">", "less": "<", "two-sided": "!="}[h.direction]
    w = max(len(f"{h.key}={a.level}") for a in v.arms) + 12
    lines = [v.first_line(), f"claim: {h.claim}",
             f"judged on: per-user test {h.metric}, {v.users} users x seeds {h.seeds}; level - baseline "
             f"{sign} {h.smallest_effect:g} (smallest effect that matters), alpha {h.alpha}, Holm over "
             f"{len(h.levels)} level(s); hierarchical bootstrap over seeds then users ({h.bootstrap} replicates)",
             f"{'level':<{w}} {'seeds':>5} {'mean':>8} {'per-seed':<26} {'delta':>8}  {'interval':<20} "
             f"{'p(Holm)':>8}  verdict"]
    for a, e, p in v.rows():
        head = (f"{h.key + '=' + a.level + (' (baseline)' if e is None else ''):<{w}} {len(a.seeds):>5} "
                f"{a.matrix.mean():>8.4f} {' '.join(f'{x:.4f}' for x in a.matrix.mean(axis=1)):<26}")
        lines.append(head if e is None else f"{head} {e.delta:>+8.4f}  [{e.lo:+.4f}, {e.hi:+.4f}]  {p:>8.4f}  "
                                            f"{e.verdict} ({e.reason})")
    lines.append(f"verdict: {v.overall}")
    return "\n".join(lines)
