"""Locating the config directory and resolving the ``auto`` choices."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from omegaconf import OmegaConf

CONFIG_NAME = "train"


def _job_uid() -> str:
    """``<pid>-<4 hex>``: two jobs started in the same second (even the same microsecond, even
    on two hosts sharing runs/) never share an output folder, so one never resumes the other's
    ``last.pt``. Cached per config like Hydra's ``now``, so a sweep's jobs share their sweep dir."""
    return f"{os.getpid()}-{secrets.token_hex(2)}"


OmegaConf.register_new_resolver("recexp.uid", _job_uid, use_cache=True, replace=True)


def conf_dir() -> Path:
    """``$RECEXP_CONF_DIR`` > the repository's ``conf/`` (editable install) > the packaged copy."""
    env = os.environ.get("RECEXP_CONF_DIR")
    if env:
        return Path(env).resolve()
    repo = Path(__file__).resolve().parents[3] / "conf"
    if (repo / f"{CONFIG_NAME}.yaml").is_file():
        return repo
    return Path(__file__).resolve().parents[1] / "conf"


def group_choices(root: Path | None = None) -> dict[str, list[str]]:
    """Config groups and their options, read from the files (no Hydra import: fast --help)."""
    root = root or conf_dir()
    out: dict[str, list[str]] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "hydra"):
        out[d.name] = sorted(f.stem for f in d.glob("*.yaml"))
    return out
