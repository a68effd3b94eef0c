"""Checkpoints hold model + optimizer state, epoch and the resolved config, and load with
``weights_only=True`` (no arbitrary pickle execution)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch


class _Sink:
    """The file torch writes to, keeping the OSError of a failed write: torch's zip writer turns it
    into an opaque ``RuntimeError: ... unexpected pos``, which hides a full disk."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.error = fh, None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def save(path: Path, **state: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    sink = None
    try:
        with open(tmp, "wb") as fh:
            sink = _Sink(fh)
            torch.save(state, sink)
    except BaseException as exc:  # a full disk or Ctrl-C mid-write: no orphan .tmp left behind
        tmp.unlink(missing_ok=True)
        cause = sink.error if sink is not None and sink.error is not None and not isinstance(exc, OSError) else exc
        if isinstance(cause, OSError):  # named after the checkpoint, not the temp file
            raise OSError(cause.errno, cause.strerror or str(cause), str(path)) from None
        raise
    tmp.replace(path)  # atomic: a kill mid-write never leaves a corrupt checkpoint
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=True)


def save_resumable(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
                   generators: tuple[torch.Generator, torch.Generator], **state: Any) -> Path:
    """Everything a killed job needs to continue after ``epoch`` as if it had never stopped:
    weights, optimizer moments, early-stopping state, the per-epoch history and every RNG the
    loop draws from (global torch RNG for dropout, the shuffle and the sampler generators)."""
    shuffle_gen, sample_gen = generators
    rng = {"torch": torch.get_rng_state(), "shuffle": shuffle_gen.get_state(), "sample": sample_gen.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return save(path, model=model.state_dict(), optimizer=optimizer.state_dict(), epoch=epoch, rng=rng,
                resumable=True, **state)


def load_resumable(path: str | Path, device: torch.device) -> dict[str, Any] | None:
    """The state saved by :func:`save_resumable`, or None for a missing file or a mid-epoch
    (Ctrl-C) checkpoint, which is not a consistent point to continue from."""
    path = Path(path)
    if not path.is_file():
        return None
    state = load(path, map_location=device)
    return state if state.get("resumable") else None


def restore_rng(state: dict[str, Any], shuffle_gen: torch.Generator, sample_gen: torch.Generator) -> None:
    rng = state["rng"]
    torch.set_rng_state(rng["torch"].cpu())
    shuffle_gen.set_state(rng["shuffle"].cpu())
    sample_gen.set_state(rng["sample"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])


def resume_problem(path: Path, config_hash: str, seed: int) -> str | None:
    """Why ``path`` cannot continue this job (None: it can). A checkpoint is accepted only when
    the config it recorded hashes to the job's ``config_hash`` and holds the job's ``seed``: a
    ``last.pt`` reached through a shared folder must never finish another run. A file torch
    cannot read starts with ``damaged:``."""
    from recexp.config.hashing import config_hash as hash_of

    if not path.is_file():
        return "missing"
    try:
        state = load(path)
    except Exception as exc:  # truncated zip, garbage bytes, a pickle weights_only refuses: all the same here
        return f"damaged: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    if not isinstance(state, dict) or not state.get("resumable"):
        return "mid-epoch checkpoint (not a consistent point to continue from)"
    cfg = state.get("config")
    if not isinstance(cfg, dict):
        return "it records no config"
    if hash_of(cfg) != config_hash or cfg.get("seed") != seed:
        return (f"it belongs to another config (hash {hash_of(cfg)}, seed {cfg.get('seed')}; "
                f"this job: hash {config_hash}, seed {seed})")
    return None


def move_aside(path: Path) -> Path:
    """Rename a damaged checkpoint out of the way (kept for inspection, never loaded again)."""
    dest = path.with_name(f"{path.name}.damaged-{int(time.time())}")
    path.replace(dest)
    return dest
