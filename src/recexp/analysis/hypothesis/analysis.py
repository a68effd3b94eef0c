"""From the MLflow store to a verdict: the runs of each level, their per-user metrics as (seeds x
users) matrices paired by user id, the one verdict engine (:mod:`recexp.analysis.judge`), learning
curves."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recexp.analysis import judge
from recexp.analysis.hypothesis.runner import Registration, registration
from recexp.analysis.hypothesis.spec import Hypothesis
from recexp.analysis.query import (
    RunRecord,
    metric_history,
    mlflow_client,
    select_runs,
)
from recexp.analysis.verdict import LevelResult, VerdictResult
from recexp.errors import UserError
from recexp.record import tag


@dataclass
class Arm:
    level: str
    runs: list[RunRecord]  # one per seed, in seed order
    seeds: list[int]
    matrix: np.ndarray  # (seeds, users) per-user metric
    recorded: judge.RecordedArm | None = None
    curves: list[dict[str, list[tuple[int, float]]]] = field(default_factory=list)  # per seed


@dataclass
class Verdict:
    h: Hypothesis
    reg: Registration | None
    arms: list[Arm]
    result: VerdictResult
    users: int
    uri: str
    experiment_id: str

    @property
    def effects(self) -> tuple[LevelResult, ...]:
        return self.result.levels

    @property
    def overall(self) -> str:
        return self.result.overall

    def rows(self) -> list[tuple[Arm, LevelResult | None, float | None]]:
        """(arm, its effect against the baseline, the p-value of its verdict), baseline first
        (no effect, no p): what the printed verdict and the report tabulate."""
        out: list[tuple[Arm, LevelResult | None, float | None]] = [(self.arms[0], None, None)]
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
    rec = judge.recorded_arm(uri, level, [by_seed[s] for s in seeds], h.metric)
    return Arm(level, rec.runs, seeds, rec.arm.values, rec)


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
    try:
        result = judge.judge(arms[0].recorded, [a.recorded for a in arms[1:]], direction=h.direction, alpha=h.alpha,
                             smallest_effect=h.smallest_effect, allow_few_seeds=h.allow_few_seeds)
    except UserError as exc:
        raise UserError(f"{h.path}: {exc}") from None
    if with_curves:
        monitor = arms[0].runs[0].params.get("trainer.monitor", "ndcg_10")
        for a in arms:
            a.curves = [curves(uri, r.run_id, monitor) for r in a.runs]
    users = arms[0].matrix.shape[1]
    return Verdict(h, registration(client, exp.experiment_id), arms, result, users, uri, exp.experiment_id)


def text(v: Verdict) -> str:
    """The verdict as printed by ``recexp hypothesis run/show`` (and by ``recexp compare`` on the
    runs of a registered hypothesis); its first line is the registration, its last ``verdict: ...``."""
    h = v.h
    rec = [a.recorded for a in v.arms]
    return "\n".join([v.first_line(), f"claim: {h.claim}",
                      judge.header(h.metric, v.result, v.users, str(h.seeds), rec[0].examples),
                      *judge.rows(rec[0], rec[1:], v.result, label=f"{h.key}=")])
