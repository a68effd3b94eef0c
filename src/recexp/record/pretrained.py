"""Start a fine-tuning run from pre-trained weights (a checkpoint path or an MLflow run id).

Loading goes through :func:`recexp.training.checkpoint.load` (``weights_only=True``: tensors and
plain containers only, no arbitrary pickle execution).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from recexp.errors import ConfigError
from recexp.record import tag
from recexp.training import checkpoint

CHECKPOINT_NAME = "pretrained.pt"
KIND = "s3rec-pretrain"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def resolve(ref: str, tracking_uri: str | None, runs_dir: str | None) -> tuple[Path, str | None]:
    """(checkpoint path, run id or None) for ``model.pretrained``."""
    p = Path(ref).expanduser()
    if p.is_dir() and (p / CHECKPOINT_NAME).is_file():
        p = p / CHECKPOINT_NAME
    if p.is_file():
        return p, None
    if _RUN_ID.match(ref):
        from recexp.record.artifacts import download

        return download(ref, CHECKPOINT_NAME, tracking_uri, runs_dir), ref
    raise ConfigError(f"model.pretrained={ref}: no such file, and not an MLflow run id (32 hex digits)")


def load_pretrained(model: torch.nn.Module, ref: str, fingerprint: str, *, tracking_uri: str | None = None,
                    runs_dir: str | None = None) -> dict[str, str]:
    """Copy the pre-trained encoder (and any head the model shares) into ``model``; returns the
    tags that link this run to its source."""
    path, run_id = resolve(ref, tracking_uri, runs_dir)
    try:
        ckpt = checkpoint.load(path)
    except Exception as exc:  # garbage bytes fail in any of torch's readers (KeyError,
        # UnpicklingError, RuntimeError, EOFError, ...): whatever it raised, the file is not a checkpoint
        first = str(exc).splitlines()[0][:200] if str(exc).strip() else ""
        raise ConfigError(f"model.pretrained={ref}: {path} is not a readable torch checkpoint "
                          f"({type(exc).__name__}{': ' + first if first else ''})") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != KIND or not isinstance(ckpt.get("model"), dict) \
            or not all(isinstance(v, torch.Tensor) for v in ckpt["model"].values()):
        raise ConfigError(f"model.pretrained={ref}: {path} is not a `recexp pretrain` checkpoint")
    if ckpt.get("fingerprint") and fingerprint and ckpt["fingerprint"] != fingerprint:
        raise ConfigError(f"model.pretrained={ref}: pre-trained on dataset {ckpt.get('dataset')!r} "
                          f"(data fingerprint {ckpt['fingerprint']}), this run's data is {fingerprint}: "
                          "item ids would not line up")
    state: dict[str, torch.Tensor] = ckpt["model"]
    own = model.state_dict()
    encoder = model.encoder_keys(own) if hasattr(model, "encoder_keys") else list(own)
    for k in encoder:
        if k not in state or state[k].shape != own[k].shape:
            got = "missing" if k not in state else tuple(state[k].shape)
            raise ConfigError(f"model.pretrained={ref}: tensor {k} is {got} in the checkpoint, "
                              f"{tuple(own[k].shape)} here (different model.* sizes?)")
    shared = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    model.load_state_dict(shared, strict=False)
    where = str(path) if run_id is None else f"runs:/{run_id}/{CHECKPOINT_NAME}"  # not the download temp dir
    return {tag.PRETRAINED_FROM: run_id or "", tag.PRETRAINED_PATH: where,
            tag.PRETRAINED_EPOCHS: str(ckpt.get("epoch", ""))}
