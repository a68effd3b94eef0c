"""Checks on ``recexp train`` overrides before Hydra sees them: a typo in an option or a key is
one line naming the closest names (Hydra's own message is a paragraph), and ``--cfg job`` prints
the config as it will run (``auto`` choices resolved, :mod:`recexp.config.resolve`)."""

from __future__ import annotations

import difflib
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from recexp.config.compose import conf_dir, group_choices
from recexp.config.resolve import closest
from recexp.errors import ConfigError


def _pairs(argv: list[str]) -> list[tuple[str, str]]:
    return [tuple(a.split("=", 1)) for a in argv if "=" in a and not a.startswith("-")]  # type: ignore[misc]


def _compose(overrides: list[str], hydra_node: bool = False) -> DictConfig:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=hydra_node)


def check_overrides(argv: list[str]) -> None:
    """Raise a one-line :class:`ConfigError` for an unknown option of a group or an unknown key."""
    groups = group_choices()
    group_ov, keys = [], []
    for key, val in _pairs(argv):
        if key.startswith(("+", "~", "hydra")):  # additions, deletions, Hydra's own settings
            continue
        if key in groups:
            if "(" in val:  # sweep syntax: choice(...), range(...), glob(...)
                continue
            values = val.split(",")
            for v in values:
                if v not in groups[key] and v != "null":
                    raise ConfigError(f"{key}={v}: no such option{closest(v, groups[key])}")
            group_ov.append(f"{key}={values[0]}")
        else:
            keys.append(key)
            if "." not in key:  # a misspelt group (modle=sasrec) reads like an unknown top-level key
                near = difflib.get_close_matches(key, list(groups), n=1, cutoff=0.6)
                if near and near[0] != key:
                    raise ConfigError(f"{key}={val}: no such config group or key (did you mean the group "
                                      f"{near[0]}={val}? groups: {', '.join(groups)})")
    if not keys:
        return
    try:
        cfg = _compose(group_ov)
    except Exception:  # noqa: BLE001 -- anything else wrong: Hydra reports it itself right after
        return
    for key in keys:
        node, path = cfg, []
        for part in key.split("."):
            if not isinstance(node, DictConfig):
                break
            if part not in node.keys():  # `in` is False for a ??? (missing) value
                if path and node.get("name") == "auto":
                    raise ConfigError(f"{key}: {path[0]}=auto has no keys until it is resolved: use +{key}=... "
                                      f"(applied to the option auto picks) or pick {path[0]}=NAME")
                where = ".".join(path) or "the root config"
                raise ConfigError(f"{key}: no such key in {where}{closest(part, [str(k) for k in node.keys()])}; "
                                  f"to add a new key use +{key}=...")
            try:
                node = node.get(part)
            except Exception:  # noqa: BLE001 -- an interpolation not resolvable here: stop checking
                break
            path.append(part)


def job_config(argv: list[str]) -> str:
    """The YAML that ``--cfg job`` prints: composed, then resolved as the run will see it."""
    from recexp.config.resolve import resolve_config

    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    cfg = _compose(overrides, hydra_node=True)
    choices = {str(k): str(v) for k, v in cfg.hydra.runtime.choices.items() if v is not None}
    with open_dict(cfg):
        del cfg["hydra"]
    cfg = resolve_config(cfg, choices)
    with open_dict(cfg):  # the folders as the run will use them (Hydra does not change directory)
        for key in ("data_dir", "paths.runs_dir", "paths.cache_dir"):
            value = OmegaConf.select(cfg, key, throw_on_missing=False)
            if isinstance(value, str) and value:
                OmegaConf.update(cfg, key, str(Path(value).expanduser().absolute()), merge=False)
    try:
        return OmegaConf.to_yaml(cfg, resolve=True)
    except Exception:  # noqa: BLE001 -- an interpolation only a running job can resolve: show it as written
        return OmegaConf.to_yaml(cfg)
