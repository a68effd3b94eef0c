"""Reading a job folder safely: a folder is data, and nothing in it may choose code.

:func:`load_job_config` rebuilds a job's config from the project's own config groups (their
``_target_`` entries) and takes only *values* from the folder's ``.hydra/config.yaml``: every
``_``-prefixed key (``_target_``, ``_partial_``, ``_args_``, ...) and every interpolation in the
folder is ignored, and the group option it names must be one of the project's files. Used by
``recexp evaluate``; any command that reads a job folder should use it too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from recexp.config.compose import CONFIG_NAME, conf_dir, group_choices
from recexp.errors import ConfigError

GROUPS = ("dataset", "model", "loss", "sampler", "split", "eval", "trainer", "tracking", "pretrain")
TOP_KEYS = ("seed", "device", "hypothesis", "max_len", "data_dir", "optimized_metric", "paths")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_INTERP = re.compile(r"\$\{")


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: not found (expected a recexp job directory)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # safe: no python/object tags
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys")
    return data


def _values(node: Any) -> Any:
    """Plain values only: ``_``-prefixed keys dropped at every depth, interpolations dropped
    (``None`` marks "keep the project's value")."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if str(k).startswith("_"):
                continue
            clean = _values(v)
            if clean is not None or v is None:
                out[str(k)] = clean
        return out
    if isinstance(node, list):
        return [_values(v) for v in node if not isinstance(v, dict | list)]
    if isinstance(node, str) and _INTERP.search(node):
        return None
    if node is None or isinstance(node, str | int | float | bool):
        return node
    return None


def _choice(group: str, saved: Any, choices: dict[str, Any], options: list[str]) -> str | None:
    """The project option this job used for ``group``: from Hydra's record of the choices, else the
    option whose ``_target_`` equals the folder's (only ever to *pick* a project file)."""
    name = choices.get(group)
    if name is not None:
        name = str(name)
        if not _NAME.match(name) or name not in options:
            raise ConfigError(f"{group}={name!r} in the job folder: not one of the project's options "
                              f"({', '.join(options)})")
        return name
    if not isinstance(saved, dict):
        return None
    target = saved.get("_target_")
    for opt in options:
        proj = OmegaConf.load(conf_dir() / group / f"{opt}.yaml")
        if target is not None and proj.get("_target_") == target:
            return opt
        if group == "dataset" and proj.get("name") == saved.get("name"):
            return opt
    if target is not None:
        raise ConfigError(f"{group}._target_={target!r} in the job folder: not one of the project's {group} "
                          "options; a job folder cannot choose code")
    return "custom" if group == "dataset" and "custom" in options else None


def load_job_config(job: Path) -> DictConfig:
    """The job's config: the project's group files, overlaid with the folder's plain values."""
    saved = _read(job / ".hydra" / "config.yaml")
    for group in GROUPS:
        if saved.get(group) is not None and not isinstance(saved[group], dict):
            raise ConfigError(f"{job}/.hydra/config.yaml: {group} must be a mapping, got {saved[group]!r}")
    hydra_file = job / ".hydra" / "hydra.yaml"
    choices: dict[str, Any] = {}
    if hydra_file.is_file():
        rt = ((_read(hydra_file).get("hydra") or {}).get("runtime") or {})
        choices = rt.get("choices") or {} if isinstance(rt, dict) else {}
        if not isinstance(choices, dict):
            choices = {}
    root = OmegaConf.load(conf_dir() / f"{CONFIG_NAME}.yaml")
    cfg = OmegaConf.create({k: root[k] for k in root if k not in ("defaults", "hydra")})
    all_options = group_choices()
    for group in GROUPS:
        name = _choice(group, saved.get(group), choices, all_options.get(group, []))
        if name is None:
            continue
        node = OmegaConf.load(conf_dir() / group / f"{name}.yaml")
        if "defaults" in node:
            node.pop("defaults")
        values = _values(saved.get(group) or {})
        try:
            cfg[group] = OmegaConf.merge(node, values) if values else node
        except Exception as exc:  # a value of the wrong shape (a mapping where a list belongs, ...)
            raise ConfigError(f"{job}/.hydra/config.yaml: {group} does not fit conf/{group}/{name}.yaml "
                              f"({str(exc).splitlines()[0]})") from None
    for key in TOP_KEYS:
        if key in saved:
            v = _values(saved[key])
            if v is not None:
                cfg[key] = OmegaConf.merge(cfg[key], v) if isinstance(v, dict) and key in cfg else v
    return cfg
