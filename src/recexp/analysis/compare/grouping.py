"""Grouping runs by the parameters that vary, per-group summaries, paired per-user tests.

Pure pandas/numpy on records already read from the store (``tracking/query.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recexp.analysis.query import RunRecord
from recexp.analysis.settings import is_setting_key
from recexp.analysis.verdict import VerdictResult
from recexp.errors import ConfigError, UserError
from recexp.record import tag

#: params that never define a group: the seed is what we average over; the rest is bookkeeping.
CHOICE = "choices."  # the option names the user typed (choices.loss=ce): the labels, when logged
MISSING = "—"


@dataclass
class Group:
    label: str  # "loss=ce" built from the keys that separate the groups
    key: dict[str, str]  # short key -> value
    params: dict[str, str]  # the full varying params of this group
    runs: list[RunRecord] = field(default_factory=list)


def _short(key: str, value: str) -> tuple[str, str]:
    """``choices.loss`` + ``bce`` -> ``loss``, ``bce``; runs recorded without choices:
    ``loss._target_`` + ``recexp.losses.BCE`` -> ``loss``, ``BCE``."""
    if key.startswith(CHOICE):
        return key[len(CHOICE):], value
    if key.endswith("._target_"):
        return key[: -len("._target_")], value.rsplit(".", 1)[-1]
    return key, value


def varying_keys(runs: list[RunRecord]) -> list[str]:
    """Params whose value differs between runs (seed and bookkeeping ignored), reduced to those
    that refine the grouping: a key implied by earlier ones (``loss.label_smoothing`` only
    exists for one loss) adds nothing. Option names (``choices.loss``) come first, then
    ``_target_`` keys: they name the component."""
    keys = sorted({k for r in runs for k in r.params})
    keys = [k for k in keys if is_setting_key(k)]
    vary = [k for k in keys if len({r.params.get(k, MISSING) for r in runs}) > 1]
    vary.sort(key=lambda k: (not k.startswith(CHOICE), not k.endswith("._target_"), k))
    kept: list[str] = []
    n_groups = 1
    for k in vary:
        n = len({tuple(r.params.get(x, MISSING) for x in [*kept, k]) for r in runs})
        if n > n_groups:
            kept.append(k)
            n_groups = n
    return kept


def group_runs(runs: list[RunRecord]) -> list[Group]:
    """Groups in order of their first run; one-line error if there is only one."""
    keys = varying_keys(runs)
    if not keys:
        raise UserError(f"all {len(runs)} selected runs share their parameters apart from the seed: "
                        "nothing to compare (select runs of at least two configurations)")
    groups: dict[tuple[str, ...], Group] = {}
    for r in runs:
        vals = tuple(r.params.get(k, MISSING) for k in keys)
        if vals not in groups:
            short = dict(_short(k, v) for k, v in zip(keys, vals, strict=True))
            groups[vals] = Group(" ".join(f"{k}={v}" for k, v in short.items()), short,
                                 dict(zip(keys, vals, strict=True)))
        groups[vals].runs.append(r)
    return list(groups.values())


def find_baseline(groups: list[Group], spec: list[str]) -> int:
    """Index of the group matching every ``key=value`` (short or full key; a ``_target_`` may be
    given by its class name); default: the first group."""
    if not spec:
        return 0
    pairs = []
    for s in spec:
        if "=" not in s:
            raise ConfigError(f"--baseline {s!r}: expected key=value (e.g. loss=bce)")
        pairs.append(s.split("=", 1))

    def matches(g: Group, k: str, v: str) -> bool:
        if g.key.get(k, "").lower() == v.lower() or g.params.get(k) == v:
            return True
        if g.params.get(f"{CHOICE}{k}", "").lower() == v.lower():  # loss=ce, the option name
            return True
        full = g.params.get(f"{k}._target_") or g.params.get(k) or ""
        return full.rsplit(".", 1)[-1].lower() == v.lower()

    hits = [i for i, g in enumerate(groups) if all(matches(g, k, v) for k, v in pairs)]
    if len(hits) != 1:
        labels = "; ".join(g.label for g in groups)
        what = "matches no group" if not hits else "matches several groups"
        raise ConfigError(f"--baseline {' '.join(spec)} {what} (groups: {labels})")
    return hits[0]


def summary_table(groups: list[Group], metrics: list[str]) -> pd.DataFrame:
    """One row per group: its seeds, then each metric's mean and sample s.d. over seeds (``<m> sd``,
    NaN from one seed). A spread, not an interval: the intervals come from the verdict engine."""
    rows = []
    for g in groups:
        row: dict[str, object] = {"group": g.label, "runs": len(g.runs),
                                  "seeds": ",".join(sorted({r.params.get("seed", "?") for r in g.runs}))}
        for m in metrics:
            x = np.array([r.metrics.get(m, math.nan) for r in g.runs], dtype=float)
            x = x[np.isfinite(x)]
            row[m] = float(x.mean()) if len(x) else math.nan
            row[f"{m} sd"] = float(x.std(ddof=1)) if len(x) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def partition_key(run: RunRecord) -> str:
    """What must be equal for runs to be compared example by example: the dataset (and its
    preprocessing) and the protocol (split, evaluation mode, masking)."""
    import json

    proto = run.tags.get(tag.PROTOCOL, "")
    try:
        p = json.loads(proto) if proto else {}
    except ValueError:
        p = {}
    parts = [run.tags.get(tag.DATASET) or run.params.get("dataset.name", "?"),
             str(p.get("split", "")), str(p.get("mode", "")),
             f"mask={p['mask_history']}" if "mask_history" in p else ""]
    return " ".join(x for x in parts if x)


def verdict_table(result: VerdictResult) -> pd.DataFrame:
    """One row per group against the baseline, as ``tests.csv`` keeps it."""
    return pd.DataFrame([{"group": r.level, "baseline": result.baseline, "seeds": r.seeds,
                          "baseline_seeds": r.baseline_seeds, "users": r.users, "delta": r.delta, "se": r.se,
                          "df": r.df, "lo": r.lo, "hi": r.hi, "interval_level": result.interval_level,
                          "p_supported_holm": r.p_supported, "p_refuted_holm": r.p_refuted, "verdict": r.verdict,
                          "reason": str(r.reason), "direction": result.direction,
                          "smallest_effect": result.smallest_effect, "alpha": result.alpha,
                          "p_wilcoxon_secondary": r.wilcoxon.p_value} for r in result.levels])
