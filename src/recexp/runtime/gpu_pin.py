"""One GPU per job when a local launcher (joblib) runs several jobs at once on a multi-GPU host.

Cluster launchers pin through the scheduler instead (SLURM ``gpus_per_task: 1`` and Ray
``num_gpus: 1`` set ``CUDA_VISIBLE_DEVICES``, so each job sees exactly one device)."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO

_held: IO[str] | None = None  # the claim lives as long as the worker process


def claim_gpu(num_gpus: int, fallback: int, lock_dir: Path | None = None) -> int:
    """Index of a GPU no other live process on this host has claimed (a non-blocking file lock
    per device, released by the OS when the process exits); ``fallback % num_gpus`` when every
    device is taken (more parallel jobs than GPUs)."""
    global _held
    lock_dir = lock_dir or Path(tempfile.gettempdir())
    if _held is not None:
        return int(Path(_held.name).stem.rsplit("-", 1)[1])
    for i in range(num_gpus):
        fh = open(lock_dir / f"recexp-gpu-{i}.lock", "w")  # noqa: SIM115 - held open on purpose
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        fh.write(str(os.getpid()))
        fh.flush()
        _held = fh
        return i
    return fallback % num_gpus


def pinned_device(device: str, job_num: int) -> str:
    """``device`` unchanged unless it lets the job pick a GPU (auto/cuda) and several are visible."""
    if str(device) not in ("auto", "cuda"):
        return str(device)
    import torch

    n = torch.cuda.device_count()
    if n <= 1:
        return str(device)
    return f"cuda:{claim_gpu(n, job_num)}"
