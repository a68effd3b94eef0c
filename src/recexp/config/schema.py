"""Every numeric config key, range-checked once at composition time (before any data is read or
any epoch runs), with one line naming the key, the value and the allowed range.

One table instead of checks scattered over constructors: constructors still defend themselves,
but a user meets this first. ``tests/unit/test_schema.py`` fails when a config file gains a
numeric key this table does not cover.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    InterpolationResolutionError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from recexp.data import PREFIXES, check_window_mode
from recexp.errors import ConfigError

INF = math.inf


@dataclass(frozen=True)
class Num:
    """An int or float in [lo, hi] (an open end when ``lo_open`` / ``hi_open``)."""

    kind: type = float
    lo: float = -INF
    hi: float = INF
    lo_open: bool = False
    hi_open: bool = False
    nullable: bool = False

    def allowed(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.lo == -INF and self.hi == INF:
            rng = ""
        elif self.hi == INF:
            rng = f" {'>' if self.lo_open else '>='} {_fmt(self.lo)}"
        elif self.lo == -INF:
            rng = f" {'<' if self.hi_open else '<='} {_fmt(self.hi)}"
        else:
            rng = f" in {'(' if self.lo_open else '['}{_fmt(self.lo)}, {_fmt(self.hi)}{')' if self.hi_open else ']'}"
        return what + rng + (" or null" if self.nullable else "")

    def ok(self, v: Any) -> bool:
        if v is None:
            return self.nullable
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        if self.kind is int and (not isinstance(v, int) and not (math.isfinite(v) and v == int(v))):
            return False
        if not math.isfinite(v):
            return False
        if v < self.lo or (self.lo_open and v == self.lo) or v > self.hi or (self.hi_open and v == self.hi):
            return False
        return True


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


POS_INT = Num(int, 1)
NONNEG_INT = Num(int, 0)
POS = Num(float, 0, lo_open=True)
NONNEG = Num(float, 0)
PROB = Num(float, 0, 1)
DROPOUT = Num(float, 0, 1, hi_open=True)
SEED = Num(int, 0, 2**63 - 1)

# key (glob over the dotted path) -> rule; ``key@Class`` applies when that group's _target_ ends
# in ``.Class`` and wins over the plain key. Lists: ``key[]`` is each element, ``key`` the list.
RULES: dict[str, Num] = {
    "seed": SEED, "max_len": Num(int, 1, 100_000),
    "trainer.max_epochs": Num(int, 0, 1_000_000), "trainer.batch_size": POS_INT,
    "trainer.lr": POS, "trainer.weight_decay": NONNEG,
    "trainer.grad_clip": Num(float, 0, lo_open=True, nullable=True), "trainer.patience": POS_INT,
    "trainer.eval_every": POS_INT, "trainer.checkpoint_every": NONNEG_INT, "trainer.log_every": POS_INT,
    "trainer.min_steps_per_epoch": NONNEG_INT, "trainer.num_processes": Num(int, 1, 4096),
    "eval.ks[]": POS_INT, "eval.batch_size": POS_INT, "eval.item_block": NONNEG_INT,
    "eval.num_negatives": POS_INT, "eval.seed": SEED,
    "dataset.min_user_count": NONNEG_INT, "dataset.min_item_count": NONNEG_INT,
    "dataset.generator.num_users": POS_INT, "dataset.generator.num_items": Num(int, 2),
    "dataset.generator.mean_length": Num(float, 1), "dataset.generator.min_length": Num(int, 2),
    "dataset.generator.max_length": Num(int, 2), "dataset.generator.num_clusters": POS_INT,
    "dataset.generator.num_successors": POS_INT, "dataset.generator.p_*": PROB,
    "dataset.generator.seed": SEED, "dataset.generator.zipf_exponent": POS,
    "model.*dropout*": DROPOUT, "model.hidden_size": POS_INT, "model.embedding_size": POS_INT,
    "model.ffn_dim": POS_INT, "model.num_*": POS_INT, "model.bptt": POS_INT, "model.max_len": Num(int, 1, 100_000),
    "model.window": POS_INT, "model.window@RecentPop": Num(float, 0, 1, lo_open=True),
    "model.mask_prob": Num(float, 0, 1, lo_open=True, hi_open=True), "model.last_prob": PROB,
    "model.alpha": PROB,
    "model.decay": NONNEG, "model.decay@MovingAverage": Num(float, 0, 1, lo_open=True),
    "model.half_life": POS, "model.smoothing": NONNEG, "model.time_unit": POS, "model.neighbours": POS_INT,
    "model.prev_items": POS_INT, "model.c": POS_INT, "model.qk_dim": POS_INT, "model.v_dim": POS_INT,
    "model.temperature": Num(float, 0, lo_open=True, nullable=True), "model.reg_weight": NONNEG,
    "loss.label_smoothing": Num(float, 0, 1, hi_open=True), "loss.reg": NONNEG, "loss.t": PROB,
    "loss.n_buckets": POS_INT, "loss.n_buckets@ReducedCE": NONNEG_INT, "loss.bucket_size_*": POS_INT,
    "loss.item_block": POS_INT, "loss.buckets_per_chunk": POS_INT, "loss.n_extra_chunks": NONNEG_INT,
    "loss.rounds": POS_INT,
    "sampler.num_negatives": POS_INT, "sampler.extra_negatives": NONNEG_INT, "sampler.alpha": NONNEG,
    "split.min_length": POS_INT, "split.gap": POS, "split.min_history": NONNEG_INT,
    "split.min_session_length": POS_INT, "split.*_quantile": Num(float, 0, 1, lo_open=True, hi_open=True),
    "tracking.stale_after_s": POS,
    "pretrain.epochs": NONNEG_INT, "pretrain.batch_size": POS_INT, "pretrain.lr": POS,
    "pretrain.weight_decay": NONNEG, "pretrain.grad_clip": Num(float, 0, lo_open=True, nullable=True),
    "pretrain.mask_p": Num(float, 0, 1, lo_open=True, hi_open=True), "pretrain.*_weight": NONNEG,
}
NONEMPTY_LISTS = ("eval.ks", "eval.metrics")
BAD_ROWS = ("drop", "error")


def rule_for(key: str, target: str | None) -> Num | None:
    cls = (target or "").rsplit(".", 1)[-1]
    for pattern, rule in RULES.items():
        if "@" in pattern and pattern.split("@")[1] == cls and fnmatch.fnmatchcase(key, pattern.split("@")[0]):
            return rule
    for pattern, rule in RULES.items():
        if "@" not in pattern and fnmatch.fnmatchcase(key, pattern):
            return rule
    return None


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain data; a missing (``???``) or broken interpolation is one line."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except MissingMandatoryValue as exc:
        raise ConfigError(f"{exc.full_key}: a value is required (set {exc.full_key}=...)") from None
    except (InterpolationResolutionError, OmegaConfBaseException) as exc:
        key = getattr(exc, "full_key", "") or "config"
        raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None


def _leaves(node: Any, prefix: str = "", is_value=lambda key: False):
    """(key, value) of every leaf; a mapping where ``is_value(key)`` (a number is expected there)
    is one value, so it is refused rather than walked into."""
    if isinstance(node, dict) and not (prefix and is_value(prefix[:-1])):
        for k, v in node.items():
            if str(k).startswith("_"):
                continue
            yield from _leaves(v, f"{prefix}{k}.", is_value)
    else:
        yield prefix[:-1], node


def check_value(key: str, value: Any, target: str | None = None) -> None:
    rule = rule_for(key, target)
    if isinstance(value, list):
        if key in NONEMPTY_LISTS and not value:
            raise ConfigError(f"{key}={value}: expected a non-empty list")
        elem = rule_for(f"{key}[]", target)
        if elem is None and rule is not None:  # a number is expected here, not a list of them
            raise ConfigError(f"{key}={value}: expected {rule.allowed()}, not a list")
        for v in value:
            if elem is not None and not elem.ok(v):
                raise ConfigError(f"{key}={value}: every element must be {elem.allowed()}, got {v!r}")
            if elem is None and isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{key}={value}: {v} is not a finite number")
        return
    if rule is not None:
        if not rule.ok(value):
            raise ConfigError(f"{key}={value!r}: expected {rule.allowed()}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={value}: expected a finite number")


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Check every value; returns the resolved config (plain data)."""
    data = resolved(cfg)
    groups = {g: (data.get(g) or {}).get("_target_") if isinstance(data.get(g), dict) else None for g in data}
    def group(key: str) -> str | None:
        return groups.get(key.split(".", 1)[0])

    for key, value in _leaves(data, is_value=lambda k: rule_for(k, group(k)) is not None):
        if key.startswith("hydra."):
            continue
        check_value(key, value, group(key))
    _cross_checks(data)
    return data


#: the history-masking rules (:mod:`recexp.eval.masking`): neither lets the candidates depend on the label
MASK_RULES = ("all", "none")


def check_mask_history(value: object) -> str:
    """``eval.mask_history`` normalised (the old booleans: true = all, false = none), or one line."""
    if isinstance(value, bool):
        return "all" if value else "none"
    if value == "except_target":
        raise ConfigError("eval.mask_history=except_target: refused: it unmasks the test item itself, so the "
                          "candidate set depends on the answer; use all (history masked, a repeated target is "
                          "a miss) or none (nothing masked)")
    if value not in MASK_RULES:
        raise ConfigError(f"eval.mask_history={value!r}: expected one of {', '.join(MASK_RULES)}")
    return str(value)


def _cross_checks(data: dict[str, Any]) -> None:
    if "mask_history" in (data.get("eval") or {}):
        check_mask_history(data["eval"]["mask_history"])
    model = data.get("model") or {}
    mode = (data.get("trainer") or {}).get("window_mode", "all")
    check_window_mode(mode)  # here, before a run opens, not at the first epoch
    if model.get("filter_scope") == "window" and mode not in PREFIXES:
        raise ConfigError(f"model.filter_scope=window filters the whole window, so only its last position may "
                          f"be trained: use trainer.window_mode=prefixes (got {mode})")
    h, heads = model.get("hidden_size"), model.get("num_heads")
    if isinstance(h, int) and isinstance(heads, int) and h % heads:
        raise ConfigError(f"model.num_heads={heads}: must divide model.hidden_size={h}")
    gen = (data.get("dataset") or {}).get("generator") or {}
    if isinstance(gen.get("min_length"), int) and isinstance(gen.get("max_length"), int) \
            and gen["min_length"] > gen["max_length"]:
        raise ConfigError(f"dataset.generator.min_length={gen['min_length']}: must be <= "
                          f"dataset.generator.max_length={gen['max_length']}")
    split = data.get("split") or {}
    vq, tq = split.get("valid_quantile"), split.get("test_quantile")
    if isinstance(vq, float) and isinstance(tq, float) and vq >= tq:
        raise ConfigError(f"split.valid_quantile={vq}: must be < split.test_quantile={tq}")
    bad = (data.get("dataset") or {}).get("bad_rows", "drop")
    if bad not in BAD_ROWS:
        raise ConfigError(f"dataset.bad_rows={bad!r}: expected one of {', '.join(BAD_ROWS)}")
    ra = (data.get("dataset") or {}).get("reader_args")
    if ra is not None and not isinstance(ra, dict):
        raise ConfigError(f"dataset.reader_args={ra!r}: expected a mapping such as {{sep: ','}}")
