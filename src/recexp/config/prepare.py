"""The one door every verb's config passes, once, before anything is hashed, logged or built."""

from __future__ import annotations

from omegaconf import DictConfig

from recexp.config.checks import check_config
from recexp.config.resolve import resolve_config
from recexp.config.schema import validate
from recexp.errors import ConfigError

VERBS = ("train", "pretrain", "evaluate")


def prepare(cfg: DictConfig, verb: str) -> DictConfig:
    """``cfg`` as it will run: every value range-checked (:mod:`.schema`), the ``auto`` choices
    resolved (:mod:`.resolve`: the record names what ran), every plug-in's keys and types checked
    against its constructor (:mod:`.checks`). Each problem is one :class:`ConfigError` line.
    Idempotent: a prepared config passes through unchanged."""
    if verb not in VERBS:
        raise ValueError(f"prepare: unknown verb {verb!r}")
    if verb == "pretrain" and cfg.get("pretrain") is None:
        raise ConfigError("pretrain: no pre-training config selected (use pretrain=s3rec)")
    validate(cfg)
    if cfg.get("loss") is not None:  # a job folder read by `recexp evaluate` may hold no loss
        cfg = resolve_config(cfg)
    check_config(cfg)
    return cfg
