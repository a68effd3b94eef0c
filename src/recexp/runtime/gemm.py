"""fp32 matrix products on CPU through oneDNN, where PyTorch's BLAS is the slower of the two.

PyTorch's x86 CPU wheels send fp32 ``mm`` / ``linear`` to MKL, and MKL picks its kernels by CPU
vendor: on AMD CPUs it runs its AVX2 code even where AVX-512 is there. Measured on this project's
AMD EPYC (AVX-512, one thread, docs/benchmarks.md): 97 GFLOP/s on a 2,048-square product and
80-88 on the shapes of evaluation and of the fused softmax CE, against 195-210 for oneDNN's fp32
matmul, which PyTorch ships in the same wheel (``torch.ops.mkldnn._linear_pointwise``, the op
Inductor uses for frozen linear layers). Both are IEEE fp32 with fp32 accumulation: with an inner
size of 64 (scores, the CE's logits) the two gave bit-identical products here; longer inner sums
may differ in the last bits, as between any two BLAS builds.

:func:`linear` is ``F.linear`` with that route for CPU fp32 tensors, with autograd (the input
gradient goes the same way; the weight gradient, a sum over the rows, is faster with BLAS).
Everything else, and any process where the op is missing or disagrees with ``F.linear`` on a
probe, keeps PyTorch's own path. ``RECEXP_CPU_GEMM=blas`` turns
the route off (A/B measurements; bench/bench_speed.py uses it for the before rows).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from recexp.runtime.envvars import setting


@functools.cache
def onednn_fp32() -> bool:
    """Whether fp32 CPU products go through oneDNN: the op exists and agrees with ``F.linear``."""
    if setting("RECEXP_CPU_GEMM") == "blas":
        return False
    try:
        op = torch.ops.mkldnn._linear_pointwise
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(s, generator=g) for s in ((7, 33), (5, 33), (5,)))
        ref = F.linear(x, w, b)
        plain = op(x, w.T.contiguous().T, b, "none", [], "")  # a transposed layout, read as it lies
        packed = op(x, torch.ops.mkldnn._reorder_linear_weight(w, 7), b, "none", [], "")
        return all(bool(torch.allclose(y, ref, rtol=1e-5, atol=1e-5)) for y in (plain, packed))
    except (AttributeError, RuntimeError):
        return False


def mm_nt(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x (M, K) @ w (N, K).T + b through oneDNN, without autograd; strided (transposed) operands are
    read as they lie. Only where :func:`routable` said so."""
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")


#: products of fewer multiply-adds stay with PyTorch: oneDNN's call costs ~0.1 ms more than BLAS's
SMALL = 1 << 16


def pack(w: torch.Tensor, rows: int) -> torch.Tensor:
    """``w`` (N, K) reordered once into oneDNN's blocked layout for :func:`mm_nt` with ``rows``-row
    inputs (a hint; any row count works). A plain ``w`` is repacked inside every call: over the
    (128 x 4,096-item) score tiles of a Beauty ranking pass, 179 GFLOP/s plain against 203 packed
    (MKL: 67; one thread). Only where :func:`routable` said so."""
    return torch.ops.mkldnn._reorder_linear_weight(w.contiguous(), rows)


def routable(*ts: torch.Tensor | None) -> bool:
    """Whether a product of these tensors may go through oneDNN: all on CPU in fp32, no autocast."""
    return (all(t is None or (t.device.type == "cpu" and t.dtype == torch.float32) for t in ts)
            and not torch.is_autocast_enabled("cpu") and onednn_fp32())


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return mm_nt(x, w, b)

    @staticmethod
    def backward(ctx, gy: torch.Tensor):  # noqa: ANN001, ANN205
        x, w = ctx.saved_tensors
        gx = mm_nt(gy, w.T) if ctx.needs_input_grad[0] else None  # (M, N) @ (N, K)
        # the weight's gradient sums over the M rows: there BLAS is the faster (one thread, every
        # shape measured, e.g. 5.7 against 11.0 ms at M 12,800, N 256, K 64; docs/benchmarks.md)
        gw = gy.T @ x if ctx.needs_input_grad[1] else None  # (N, M) @ (M, K)
        gb = gy.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``; CPU fp32 products go through oneDNN (module docstring)."""
    if x.numel() * weight.shape[0] < SMALL or not routable(x, weight, bias):
        return F.linear(x, weight, bias)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)):
        y = _Linear.apply(x2, weight, bias)
    else:
        y = mm_nt(x2, weight, bias)
    return y.view(*lead, weight.shape[0])


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state-dict keys) whose product is :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
