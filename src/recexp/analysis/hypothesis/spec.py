"""``hypotheses/<name>.yaml``: a pre-registered hypothesis, read and checked once.

Schema (every key documented in ``docs/hypotheses.md``)::

    claim: "SASRec with 2 attention blocks ranks better than with 1"   # the claim in words
    base: [experiment=ml100k_ce_vs_bce, device=cpu]   # Hydra overrides of every run
    factor:
      key: model.num_blocks          # the Hydra key that is varied
      baseline: 1                    # its baseline level
      levels: [2, 4]                 # the levels compared with the baseline
      overrides: {}                  # optional per-level extra overrides: {level: [key=value, ...]}
    metric: ndcg_10                  # per-user metric the verdict is computed on
    split: test                      # the split judged (test: per-user metrics are saved for it)
    direction: greater               # greater | less | two-sided (level minus baseline)
    alpha: 0.05
    smallest_effect: 0.005           # the smallest difference that matters (metric units)
    seeds: 3                         # an int n (seeds 1..n) or a list of seeds
    allow_few_seeds: false           # below 3 seeds no verdict is called unless true
    budget: {max_epochs: 10, note: "..."}   # max_epochs becomes trainer.max_epochs
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from recexp.analysis.verdict import DIRECTIONS
from recexp.errors import ConfigError, DataError

KEYS = {"name", "claim", "base", "factor", "metric", "split", "direction", "alpha", "smallest_effect", "seeds",
        "allow_few_seeds", "budget"}


@dataclass
class Hypothesis:
    path: Path
    sha256: str
    name: str
    claim: str
    base: list[str]
    key: str
    baseline: str
    levels: list[str]
    level_overrides: dict[str, list[str]]
    metric: str
    split: str
    direction: str
    alpha: float
    smallest_effect: float
    seeds: list[int]
    allow_few_seeds: bool = False
    budget: dict[str, Any] = field(default_factory=dict)

    @property
    def experiment(self) -> str:
        """The MLflow experiment holding this hypothesis's runs (and nothing else)."""
        return f"hypothesis-{self.name}"

    def all_levels(self) -> list[str]:
        return [self.baseline, *self.levels]

    def overrides(self, level: str) -> list[str]:
        """The Hydra overrides of one level's sweep (seeds swept by the multirun)."""
        budget = [f"trainer.max_epochs={int(self.budget['max_epochs'])}"] if "max_epochs" in self.budget else []
        claim = self.claim.replace("'", "")
        return [*self.base, *budget, f"{self.key}={level}", *self.level_overrides.get(level, []),
                f"seed={','.join(str(s) for s in self.seeds)}", f"tracking.experiment={self.experiment}",
                f"hypothesis='{claim}'"]


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _need(d: dict, key: str, where: str) -> Any:
    if key not in d or d[key] in (None, ""):
        raise ConfigError(f"{where}: missing key {key!r}")
    return d[key]


def load(path: str | Path) -> Hypothesis:
    """Parse and check a hypothesis file; one-line errors naming the file and key."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such hypothesis file")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise DataError(f"{p}: expected a mapping of keys (claim, base, factor, ...)")
    unknown = sorted(set(d) - KEYS)
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})")
    f = _need(d, "factor", str(p))
    if not isinstance(f, dict):
        raise ConfigError(f"{p}: factor must be a mapping with key, baseline, levels")
    levels = [str(v) for v in _need(f, "levels", f"{p}: factor")]
    lo = f.get("overrides") or {}
    if not isinstance(lo, dict) or any(str(k) not in [str(f.get("baseline")), *levels] for k in lo):
        raise ConfigError(f"{p}: factor.overrides must map levels of the factor to lists of overrides")
    direction = str(d.get("direction", "greater"))
    if direction not in DIRECTIONS:
        raise ConfigError(f"{p}: direction={direction!r}: expected {', '.join(DIRECTIONS)}")
    split = str(d.get("split", "test"))
    if split != "test":  # runs save per-user metrics for the test set only (validation: averages)
        raise ConfigError(f"{p}: split={split!r}: only test is judged (per-user metrics are saved for test)")
    seeds = d.get("seeds", 3)
    seeds = list(range(1, int(seeds) + 1)) if isinstance(seeds, int) else [int(s) for s in seeds]
    alpha = float(d.get("alpha", 0.05))
    if not 0 < alpha < 0.5:
        raise ConfigError(f"{p}: alpha={alpha}: expected 0 < alpha < 0.5")
    smallest = float(d.get("smallest_effect", 0.0))
    if smallest < 0:
        raise ConfigError(f"{p}: smallest_effect={smallest}: expected >= 0 (the direction gives the sign)")
    base = d.get("base") or []
    if not isinstance(base, list) or any("=" not in str(o) for o in base):
        raise ConfigError(f"{p}: base must be a list of Hydra overrides key=value")
    return Hypothesis(p, file_hash(p), str(d.get("name") or p.stem), str(_need(d, "claim", str(p))),
                      [str(o) for o in base], str(_need(f, "key", f"{p}: factor")),
                      str(_need(f, "baseline", f"{p}: factor")), levels,
                      {str(k): [str(o) for o in v] for k, v in lo.items()}, str(d.get("metric", "ndcg_10")),
                      split, direction, alpha, smallest, seeds, bool(d.get("allow_few_seeds", False)),
                      dict(d.get("budget") or {}))
