"""Resolve before you record: every derived choice (``loss=auto``, ``sampler=auto``) is settled on
the config itself, before it is hashed, logged as params, saved or printed, so the record names
what ran. The choice names the user typed (``loss=ce``) are kept under ``choices`` for labels."""

from __future__ import annotations

import difflib
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from recexp.config.compose import conf_dir
from recexp.errors import ConfigError

#: groups whose option name is recorded (``choices.loss=ce``) and used by ``recexp compare``
LABELLED = ("dataset", "model", "loss", "sampler", "split", "eval")


def _option(group: str, name: str) -> DictConfig:
    path = conf_dir() / group / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{group}={name}: no such option{closest(name, options(group))}")
    return OmegaConf.load(path)


def options(group: str) -> list[str]:
    d = conf_dir() / group
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def closest(word: str, candidates: list[str], n: int = 3) -> str:
    """`` (did you mean a, b?)`` or ``(choose from ...)`` for a one-line error."""
    near = difflib.get_close_matches(word, candidates, n=n, cutoff=0.5)
    if near:
        return f" (did you mean {', '.join(near)}?)"
    return f" (choose from {', '.join(candidates)})" if candidates else ""


def _model_class(cfg: DictConfig) -> type:
    from hydra.utils import get_class

    try:
        return get_class(str(cfg.model._target_))
    except Exception as exc:  # ImportError or a bad path: the user's model._target_
        raise ConfigError(f"model._target_={cfg.model.get('_target_')!r}: cannot import it ({exc})") from None


def hydra_choices() -> dict[str, str]:
    """The option names Hydra composed (``{'loss': 'auto', ...}``), or {} outside a Hydra run."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return {str(k): str(v) for k, v in HydraConfig.get().runtime.choices.items() if v is not None}
    except ValueError:
        return {}


def infer_choice(group: str, node: Any) -> str:
    """The option of ``group`` whose file this node came from: same ``_target_`` (or ``name``),
    then the most keys with equal values (user overrides change a few)."""
    if not isinstance(node, DictConfig):
        return ""
    mine = OmegaConf.to_container(node, resolve=False)
    best, score = "", -1
    for name in options(group):
        opt = OmegaConf.to_container(OmegaConf.load(conf_dir() / group / f"{name}.yaml"), resolve=False)
        ident = "_target_" if "_target_" in mine else "name"
        if opt.get(ident) != mine.get(ident) or set(opt) != set(mine):
            continue
        same = sum(str(v) == str(mine.get(k)) for k, v in opt.items())
        if same > score:
            best, score = name, same
    return best


def _resolve_group(cfg: DictConfig, group: str, name: str) -> None:
    """Replace ``cfg[group]`` (an ``auto`` node) by option ``name``, keeping the user's own keys."""
    given = {k: v for k, v in OmegaConf.to_container(cfg[group], resolve=False).items() if k != "name"}
    target = _option(group, name)
    unknown = sorted(set(given) - set(target.keys()))
    if unknown:
        raise ConfigError(f"{group}.{unknown[0]}: not a key of {group}={name} (what {group}=auto chose "
                          f"here){closest(unknown[0], list(target.keys()))}; or pick {group}=NAME explicitly")
    for k, v in given.items():
        target[k] = v
    with open_dict(cfg):
        cfg[group] = target


def resolve_config(cfg: DictConfig, choices: dict[str, str] | None = None) -> DictConfig:
    """A copy of ``cfg`` with ``loss`` and ``sampler`` resolved and ``choices`` filled in.
    Idempotent: a config that already has ``choices`` is returned as it is."""
    if cfg.get("choices") is not None:
        return cfg
    cfg = cfg.copy()
    choices = dict(hydra_choices() if choices is None else choices)
    picked = {g: choices.get(g) or infer_choice(g, cfg.get(g)) for g in LABELLED if g in cfg}
    for group in ("loss", "sampler"):  # a node that is neither `auto` nor a plug-in (loss.name=typo)
        if "_target_" not in cfg[group] and cfg[group].get("name") != "auto":
            name = str(cfg[group].get("name"))
            raise ConfigError(f"{group}.name={name!r}: not an option of {group}{closest(name, options(group))}; "
                              f"pick one with {group}=NAME")
    model = _model_class(cfg)
    loss_auto = cfg.loss.get("name") == "auto"
    if not getattr(model, "trainable", True) and not loss_auto:
        raise ConfigError(f"model={picked.get('model') or model.__name__.lower()} is fit by counting, not trained: "
                          f"loss={picked.get('loss') or '?'} has nothing to train (drop the loss override, i.e. loss=auto)")
    if loss_auto:
        picked["loss"] = getattr(model, "default_loss", "ce") if getattr(model, "trainable", True) else "ce"
        _resolve_group(cfg, "loss", picked["loss"])
    if cfg.sampler.get("name") == "auto":
        from hydra.utils import get_class

        requires = getattr(get_class(str(cfg.loss._target_)), "requires", "full")
        picked["sampler"] = "none" if requires == "full" else "uniform"
        _resolve_group(cfg, "sampler", picked["sampler"])
    with open_dict(cfg):
        cfg.choices = {g: str(v) for g, v in picked.items()}
    return cfg
