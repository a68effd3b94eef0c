"""Checkpoints hold model + optimizer state, epoch and the resolved config, and load with
``weights_only=True`` (no arbitrary pickle execution)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save(path: Path, **state: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a kill mid-write never leaves a corrupt checkpoint
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=True)
