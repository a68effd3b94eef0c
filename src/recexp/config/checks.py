"""Config values checked once, at start-up, against the plug-ins' own constructor signatures:
an unknown key or a value of the wrong type is one ConfigError naming the key, before any data
is read (the constructors then check ranges and choices themselves)."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Union

from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from recexp.errors import ConfigError

#: config groups whose node is a ``_target_`` plug-in (``None`` when the group is switched off)
PLUGIN_GROUPS = ("model", "loss", "sampler", "split", "eval", "trainer", "pretrain")
#: values passed at instantiate by the run, never set in the config
RUNTIME_ARGS = frozenset({"num_items", "num_users", "num_attributes"})
#: top-level keys of conf/train.yaml and their types
TOP_LEVEL: dict[str, Any] = {"seed": int, "max_len": int, "device": str, "hypothesis": str | None,
                             "optimized_metric": str}


def _accepts(tp: Any, value: Any) -> bool:
    """Whether ``value`` (plain YAML data) fits annotation ``tp``; unknown kinds are left to the
    constructor."""
    origin = typing.get_origin(tp)
    if tp is Any or tp is inspect.Parameter.empty:
        return True
    if origin in (Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp in (list, tuple) or origin in (list, tuple):
        return isinstance(value, list | tuple)
    if tp is dict or origin is dict:
        return isinstance(value, dict)
    return True


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null",
          list: "a list", tuple: "a list", dict: "a mapping"}


def _type_name(tp: Any) -> str:
    """``float | None`` -> 'a number or null'."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return _NAMES.get(typing.get_origin(tp) or tp, str(tp))


def check_call(key: str, target: Callable[..., Any], values: dict[str, Any], skip: frozenset[str] = frozenset()
               ) -> None:
    """Every key of ``values`` is a parameter of ``target`` and fits its annotation."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature: left to the constructor
        return
    try:
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except (NameError, TypeError):  # an annotation only importable under TYPE_CHECKING
        hints = {}
    params = {n: p for n, p in sig.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    name = getattr(target, "__name__", str(target))
    for k, v in values.items():
        if k.startswith("_") or k in skip:
            continue
        if k not in params:
            if open_kwargs:
                continue
            known = ", ".join(n for n in params if n not in RUNTIME_ARGS)
            raise ConfigError(f"{key}.{k}: {name} has no such setting (it takes: {known or 'none'})")
        if k in hints and not _accepts(hints[k], v):
            raise ConfigError(f"{key}.{k}={v!r}: expected {_type_name(hints[k])}")


def check_config(cfg: DictConfig) -> None:
    """One-line ConfigError for the first unknown key or mistyped value of the top level, any
    plug-in group or the dataset."""
    for key, kind in TOP_LEVEL.items():
        value = cfg.get(key)
        if not _accepts(kind, value):
            raise ConfigError(f"{key}={value!r}: expected {_type_name(kind)}")
    from recexp.runtime.threads import parse

    parse(cfg.get("threads", "auto"))  # auto or a count (runtime/threads.py)
    for group in PLUGIN_GROUPS:
        node = cfg.get(group)
        if node is None:
            continue
        values = OmegaConf.to_container(node, resolve=True)
        if "_target_" not in values:
            if group in ("loss", "sampler") and values.get("name") == "auto":
                continue
            raise ConfigError(f"{group}.name={values.get('name')!r}: not an option of {group} "
                              f"(pick one with {group}=NAME; `recexp train --help` lists them)")
        try:
            target = get_method(str(values["_target_"]))
        except Exception:  # noqa: BLE001 -- Hydra raises several kinds for an unknown path
            raise ConfigError(f"{group}._target_={values['_target_']!r}: no such class") from None
        check_call(group, target, values, skip=frozenset({"pretrained"}) if group == "model" else frozenset())
    _check_dataset(cfg.dataset)


def _check_dataset(ds: DictConfig) -> None:
    from recexp.data import synthetic
    from recexp.data.readers import READERS

    fmt = ds.get("format")
    if fmt != "synthetic" and fmt not in READERS:
        raise ConfigError(f"dataset.format={fmt!r}: expected one of {sorted(READERS) + ['synthetic']}")
    for key in ("min_user_count", "min_item_count"):
        v = ds.get(key, 0)
        if v is not None and not _accepts(int, v):
            raise ConfigError(f"dataset.{key}={v!r}: expected int")
    if fmt == "synthetic":
        check_call("dataset.generator", synthetic.generate, OmegaConf.to_container(ds.get("generator") or {}))
