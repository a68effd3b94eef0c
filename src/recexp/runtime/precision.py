"""Where bf16 arithmetic is native: the one question behind ``trainer.amp`` / ``trainer.cpu_amp`` and
the bf16 bucketing projections of ``loss=rece``."""

from __future__ import annotations

import functools

import torch


@functools.cache
def native_bf16(device_type: str) -> bool:
    """bf16 matmuls are native on CUDA devices that support them and on CPUs with AVX512-BF16 or
    AMX (oneDNN); elsewhere they are emulated and slower than fp32."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device_type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
