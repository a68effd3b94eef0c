"""Every option of every config group, given one bad value, fails with one line that names the
key -- a UserError, which the CLI prints without a traceback and exits 2 on (checked once
through the real command at the end)."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_method
from omegaconf import OmegaConf

from recexp.config.compose import conf_dir, group_choices
from recexp.errors import UserError
from recexp.jobs.train import train

BAD = "notanumber"


def _typed_key(node: dict) -> str | None:
    """A key of ``node`` its constructor annotates int or float (a string is a bad value for it)."""
    cls = get_method(node["_target_"])
    hints = typing.get_type_hints(cls.__init__ if inspect.isclass(cls) else cls)
    for name in inspect.signature(cls).parameters:
        if name in node and hints.get(name) in (int, float):
            return name
    return None


def _first_number(node: dict, prefix: str = "") -> str | None:
    for k, v in node.items():
        if k in ("defaults", "hydra"):
            continue
        if isinstance(v, dict):
            found = _first_number(v, f"{prefix}{k}.")
            if found:
                return found
        elif isinstance(v, int | float) and not isinstance(v, bool):
            return f"{prefix}{k}"
    return None


def bad_override(group: str, option: str) -> tuple[list[str], str]:
    """(overrides selecting ``option`` plus one bad value, the key the error must name)."""
    node = OmegaConf.to_container(OmegaConf.load(conf_dir() / group / f"{option}.yaml"))
    select = [f"{group}={option}"]
    if group == "dataset":  # (a custom dataset names its file first: a required value)
        return [*select, *(["dataset.file=x.csv"] if node.get("file") == "???" else []),
                "dataset.format=nosuch"], "dataset.format"
    if group == "tracking":
        return [*select, "tracking.backend=nosuch"], "tracking.backend"
    if group == "experiment":  # a value the preset itself sets
        key = _first_number(node) or "trainer.max_epochs"
        return [*select, f"{key}={BAD}"], key
    if group == "hparams_search":  # the first searched parameter, given a value outside any space
        key = next(iter(node["hydra"]["sweeper"]["params"]))
        return [*select, f"{key}={BAD}"], key
    if "_target_" not in node:  # loss=auto, sampler=auto
        return [*select, f"{group}.name=nosuch"], f"{group}.name"
    key = _typed_key(node)
    if key is None:  # a plug-in without settings (pop, sampler=none ...): an unknown one
        return [*select, f"+{group}.nosuch=1"], f"{group}.nosuch"
    return [*select, f"{group}.{key}={BAD}"], f"{group}.{key}"


CASES = [(g, o) for g, opts in group_choices().items() for o in opts]


@pytest.mark.parametrize("group,option", CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_one_bad_value_is_one_line_naming_the_key(group: str, option: str, tmp_runs: Path, tmp_path: Path):
    overrides, key = bad_override(group, option)
    if group != "tracking":
        overrides.append("tracking=none")
    overrides += ["device=cpu", f"paths.runs_dir={tmp_runs}", f"paths.cache_dir={tmp_runs}/cache"]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        # as inside a Hydra job: presets may read ${hydra:runtime.choices...}
        HydraConfig.instance().set_config(compose(config_name="train", overrides=overrides, return_hydra_config=True))
        cfg = compose(config_name="train", overrides=overrides)
    try:
        with pytest.raises(UserError) as err:
            train(cfg, tmp_path / "job")
    finally:
        HydraConfig.instance().cfg = None  # no Hydra job outside this test
    message = str(err.value)
    assert "\n" not in message and key in message, message


def test_cli_prints_one_line_and_exits_2(tmp_runs: Path):
    env = {**os.environ, "RECEXP_RUNS_DIR": str(tmp_runs)}
    r = subprocess.run([sys.executable, "-m", "recexp.cli", "train", "model=caser", f"model.window={BAD}",
                        "tracking=none"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "model.window" in lines[0] and "Traceback" not in r.stderr, r.stderr
