"""``hypotheses/<name>.yaml``: a pre-registered hypothesis, read and checked once, before anything
is registered or run.

Schema (every key documented in ``docs/hypotheses.md``)::

    claim: "SASRec with 2 attention blocks ranks better than with 1"   # the claim in words
    base: [experiment=ml100k_ce_vs_bce, device=cpu]   # Hydra overrides of every run
    factor:
      key: model.num_blocks          # the Hydra key that is varied
      baseline: 1                    # its baseline level
      levels: [2, 4]                 # the levels compared with the baseline (a list, never the baseline)
      overrides: {}                  # optional per-level extra overrides: {level: [key=value, ...]}
    metric: ndcg_10                  # per-user metric the verdict is computed on
    split: test                      # the split judged (test: per-user metrics are saved for it)
    direction: greater               # greater | less | two-sided (level minus baseline)
    alpha: 0.05
    smallest_effect: 0.005           # the smallest difference that matters (metric units)
    seeds: 3                         # an int n >= 1 (seeds 1..n) or a list of distinct seeds
    allow_few_seeds: false           # fewer than 3 seeds are refused unless true
    budget: {max_epochs: 10, note: "..."}   # max_epochs becomes trainer.max_epochs

Every field is typed (``pydantic``, strict: ``seeds: abc``, ``alpha: "0.05"``, ``levels: "12"``
are refused, not coerced) and every value range-checked; the metric is checked against the
per-user columns each level's composed eval config produces. Each problem is one line naming
the file, the field and the value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from recexp.analysis.verdict import DIRECTIONS, MIN_SEEDS
from recexp.errors import ConfigError, DataError, validation_error

Scalar = str | int | float | bool


def _level(v: Any) -> str:
    """A level as Hydra reads it on the command line (``true``, ``0.3``, ``sasrec``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if not isinstance(v, str | int | float) or (isinstance(v, str) and not v.strip()):
        raise ValueError(f"a level is a number or a name, got {type(v).__name__}")
    s = str(v)
    if "," in s and not s.startswith("["):  # `key=a,b` would be a sweep of two levels
        raise ValueError("a level must not contain a comma (Hydra would sweep it)")
    return s


def _cross(msg: str) -> PydanticCustomError:
    """A check across fields (:func:`recexp.errors.validation_error` prints its message as is)."""
    return PydanticCustomError("cross_field", "{msg}", {"msg": msg})


def _overrides(v: Any) -> list[str]:
    if not isinstance(v, list) or any(not isinstance(o, str) or "=" not in o for o in v):
        raise ValueError("expected a list of Hydra overrides key=value")
    return v


class Factor(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    key: str = Field(min_length=1)
    baseline: Scalar
    levels: list[Scalar] = Field(min_length=1)
    overrides: dict[Scalar, Any] | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if any(c in v for c in "=, "):
            raise ValueError("expected a config key such as model.num_blocks")
        return v

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, v: Any) -> str:
        return _level(v)

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list) -> list[str]:
        out = [_level(x) for x in v]
        if len(set(out)) != len(out):
            raise ValueError("a level is listed twice")
        return out

    @field_validator("overrides")
    @classmethod
    def _level_overrides(cls, v: dict | None) -> dict[str, list[str]]:
        return {_level(k): _overrides(o) for k, o in (v or {}).items()}

    @model_validator(mode="after")
    def _consistent(self) -> Factor:
        if self.baseline in self.levels:
            raise _cross(f"levels={self.levels}: the baseline {self.baseline!r} is also listed among the "
                         "levels (it would be compared with itself)")
        stray = sorted(set(self.overrides or {}) - {self.baseline, *self.levels})
        if stray:
            raise _cross(f"overrides: {', '.join(stray)} is not a level of the factor "
                         f"(levels: {', '.join([self.baseline, *self.levels])})")
        return self


class Budget(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    max_epochs: int | None = Field(None, ge=1)
    note: str = ""


class Spec(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    claim: str = Field(min_length=1)
    base: list[str] = []
    factor: Factor
    metric: str = Field("ndcg_10", min_length=1)
    split: Literal["test"] = "test"  # runs save per-user metrics for the test set only
    direction: Literal[tuple(DIRECTIONS)] = "greater"  # type: ignore[valid-type]
    alpha: float = Field(0.05, gt=0, lt=0.5)
    smallest_effect: float = Field(0.0, ge=0, allow_inf_nan=False)  # the direction gives the sign
    seeds: int | list[int] = Field(3, validate_default=True)  # 3: seeds 1, 2, 3
    allow_few_seeds: bool = False
    budget: Budget = Budget()

    @field_validator("base")
    @classmethod
    def _base(cls, v: list[str]) -> list[str]:
        return _overrides(v)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> list[int]:
        if isinstance(v, int) and not isinstance(v, bool):
            if v < 1:
                raise ValueError("expected a number of seeds >= 1 (or a list of seeds)")
            return list(range(1, v + 1))
        if not isinstance(v, list) or not v:
            raise ValueError("expected a number of seeds n >= 1 (seeds 1..n) or a non-empty list of seeds")
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in v):
            raise ValueError("every seed must be an integer >= 0")
        if len(set(v)) != len(v):
            raise ValueError("a seed is listed twice")
        return v

    @model_validator(mode="after")
    def _enough_seeds(self) -> Spec:
        n = len(self.seeds)  # type: ignore[arg-type]
        if n < MIN_SEEDS and not self.allow_few_seeds:
            raise _cross(f"seeds={self.seeds}: below {MIN_SEEDS} seeds no verdict can be called; use more "
                         "seeds, or set allow_few_seeds: true to run anyway")
        return self


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

    def overrides(self, level: str, seeds: list[int] | None = None) -> list[str]:
        """The Hydra overrides of one level's sweep (seeds swept by the multirun)."""
        budget = [f"trainer.max_epochs={int(self.budget['max_epochs'])}"] if self.budget.get("max_epochs") else []
        claim = self.claim.replace("'", "")
        return [*self.base, *budget, f"{self.key}={level}", *self.level_overrides.get(level, []),
                f"seed={','.join(str(s) for s in (seeds or self.seeds))}", f"tracking.experiment={self.experiment}",
                f"hypothesis='{claim}'"]


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def per_user_columns(eval_cfg: Any) -> list[str]:
    """The per-user metric columns an evaluator with this config writes (``per_user_test``):
    ``<metric>_<K>`` for K in ``ks``, and the per-example beyond-accuracy metrics (coverage is a
    property of the whole set of lists, not of one user)."""
    ks = list(eval_cfg.get("ks") or [])
    names = [*(eval_cfg.get("metrics") or []), *(b for b in (eval_cfg.get("beyond") or []) if b != "coverage")]
    return [f"{n}_{k}" for n in names for k in ks]


def check_levels(h: Hypothesis) -> None:
    """Compose every level's config (the first seed): overrides that do not compose, and a metric
    that is not a per-user column of every level, are one line now, not a failed sweep later."""
    from hydra import compose, initialize_config_dir

    from recexp.config.compose import CONFIG_NAME, conf_dir
    from recexp.config.schema import validate

    for level in h.all_levels():
        try:
            with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
                cfg = compose(config_name=CONFIG_NAME, overrides=h.overrides(level, h.seeds[:1]))
        except Exception as exc:  # every composition error is the file's overrides here
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise ConfigError(f"{h.path}: the runs of {h.key}={level} do not compose: {first}") from None
        try:  # every value range-checked as `recexp train` will (lr=-1 is refused here, not mid-sweep)
            validate(cfg)
        except ConfigError as exc:
            raise ConfigError(f"{h.path}: the runs of {h.key}={level}: {exc}") from None
        columns = per_user_columns(cfg.eval)
        if h.metric not in columns:
            raise ConfigError(f"{h.path}: metric={h.metric!r}: not a per-user metric of {h.key}={level} "
                              f"(eval ks {list(cfg.eval.get('ks') or [])}); expected one of {', '.join(columns)}")


def load(path: str | Path, compose: bool = True) -> Hypothesis:
    """Parse and check a hypothesis file; one-line errors naming the file, field and value.
    ``compose``: also compose every level's config (see :func:`check_levels`)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such hypothesis file")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    if not isinstance(d, dict):
        raise DataError(f"{p}: expected a mapping of keys (claim, base, factor, ...)")
    unknown = sorted(str(k) for k in set(d) - set(Spec.model_fields))
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(Spec.model_fields))})")
    try:
        s = Spec.model_validate(d)
    except ValidationError as exc:
        raise validation_error(str(p), exc) from None
    f = s.factor
    h = Hypothesis(p, file_hash(p), s.name or p.stem, s.claim, list(s.base), f.key, f.baseline, list(f.levels),
                   dict(f.overrides or {}), s.metric, s.split, s.direction, s.alpha, s.smallest_effect,
                   list(s.seeds), s.allow_few_seeds,  # type: ignore[arg-type]
                   {k: v for k, v in s.budget.model_dump().items() if v not in (None, "")})
    if compose:
        check_levels(h)
    return h
