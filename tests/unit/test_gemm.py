"""recexp.runtime.gemm: fp32 products through oneDNN on CPU equal PyTorch's, values and gradients, and the
route is taken (or left) where the docstring says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from recexp.eval.ranking import target_ranks
from recexp.losses import full as losses
from recexp.models.sasrec import SASRec
from recexp.runtime import gemm

pytestmark = pytest.mark.skipif(not gemm.onednn_fp32(), reason="this torch build has no oneDNN fp32 linear")


@pytest.fixture
def route(monkeypatch):  # noqa: ANN201
    """Set the route for one test: route('blas') or route('auto')."""

    def set_(mode: str) -> None:
        monkeypatch.setenv("RECEXP_CPU_GEMM", mode)
        gemm.onednn_fp32.cache_clear()

    yield set_
    gemm.onednn_fp32.cache_clear()


def test_blas_env_turns_the_route_off(route):
    route("blas")
    assert not gemm.onednn_fp32()
    route("auto")
    assert gemm.onednn_fp32()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("transposed", [True, False])
def test_linear_matches_f_linear_values_and_gradients(bias, transposed):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 40, 64, generator=g, requires_grad=True)  # 3-D: rows flattened and restored
    w0 = torch.randn(96, 64, generator=g)
    w = (w0.T.contiguous().T if transposed else w0).requires_grad_()  # a transposed layout is read as it lies
    b = torch.randn(96, generator=g, requires_grad=True) if bias else None
    gy = torch.randn(6, 40, 96, generator=g)
    params = [x, w] + ([b] if bias else [])
    ours = gemm.linear(x, w, b)
    got = torch.autograd.grad(ours, params, gy)
    ref = F.linear(x, w, b)
    want = torch.autograd.grad(ref, params, gy)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    for a, c in zip(got, want, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-4)


def test_route_is_taken_for_large_cpu_fp32_products_only(monkeypatch):
    calls = []
    real = gemm.mm_nt
    monkeypatch.setattr(gemm, "mm_nt", lambda *a: calls.append(a[0].shape) or real(*a))
    w = torch.randn(64, 64)
    gemm.linear(torch.randn(512, 64), w)
    assert calls == [(512, 64)]
    gemm.linear(torch.randn(2, 64), w)  # below SMALL multiply-adds: PyTorch's own
    gemm.linear(torch.randn(512, 64, dtype=torch.float64), w.double())  # not fp32
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast decides the dtype: PyTorch's own
        assert gemm.linear(torch.randn(512, 64), w).dtype == torch.bfloat16
    assert calls == [(512, 64)]


def test_sasrec_encoder_and_ranking_use_it_at_evaluation(monkeypatch):
    torch.manual_seed(0)
    model = SASRec(num_items=300, max_len=20).eval()
    calls = []
    real = gemm.mm_nt
    monkeypatch.setattr(gemm, "mm_nt", lambda *a: calls.append(tuple(a[1].shape)) or real(*a))
    seq = torch.randint(1, 301, (64, 20))
    with torch.no_grad():
        h = model.encode(seq, last_only=True)[:, -1]
        target_ranks(model, h, torch.randint(1, 301, (64,)), block=128)
    assert (192, 64) in calls and (256, 64) in calls  # qkv, feed-forward
    assert (128, 64) in calls  # an item block of the ranking


def test_same_numbers_with_either_route(route):
    """The fused CE's value and gradients, SASRec's training loss gradients and the ranks agree
    between the oneDNN route and PyTorch's BLAS (fp32 both: last-bit differences only)."""
    g = torch.Generator().manual_seed(1)
    M, N, D = 700, 3000, 64
    h = torch.randn(M, D, generator=g, requires_grad=True)
    emb = torch.randn(N + 1, D, generator=g, requires_grad=True)
    t = torch.randint(1, N + 1, (M,), generator=g)
    seq = torch.randint(0, N + 1, (32, 30), generator=g)
    out = {}
    for mode in ("blas", "auto"):
        route(mode)
        v = losses.ChunkedSoftmaxCE.apply(h, emb, t)
        torch.manual_seed(0)
        model = SASRec(num_items=N, max_len=30, dropout=0.0)
        enc = model.encode(seq).square().mean()
        grads = torch.autograd.grad(v, [h, emb]) + torch.autograd.grad(enc, list(model.parameters()))
        with torch.no_grad():
            ranks = target_ranks(model.eval(), h.detach(), t, block=1024)
        out[mode] = (v.detach(), grads, ranks)
    (v0, g0, r0), (v1, g1, r1) = out["blas"], out["auto"]
    torch.testing.assert_close(v1, v0, rtol=1e-6, atol=1e-6)
    for a, c in zip(g1, g0, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-6)
    assert torch.equal(r1[0], r0[0]) and torch.equal(r1[1], r0[1])


MALLOC_PROBE = """
import resource, sys, torch
from recexp.runtime.malloc import keep_freed_memory
print(keep_freed_memory())
a = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(300):  # 2-6 MB tensors, sizes varying: each one mmap'd afresh under glibc's dynamic threshold
    x = torch.ones(512, 1024 + 37 * (i % 50))
    del x
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - a)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_reuses_blocks_instead_of_faulting_them_in_again():
    def run(env: dict) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", MALLOC_PROBE], capture_output=True, text=True, check=True,
                             env={**os.environ, **env}).stdout.split()
        return out[0], int(out[1])

    (set_on, faults_on), (set_off, faults_off) = run({}), run({"RECEXP_MALLOC": "default"})
    assert (set_on, set_off) == ("True", "False")
    assert 4 * faults_on < faults_off  # measured ~7k vs ~66k: 300 x 2-6 MB of fresh pages without the setting


def test_fused_ce_large_tables_accumulate_in_place(monkeypatch):
    """Above GI_ONEDNN_BYTES d/ditems is MKL's in-place addmm_ (a 256 MB product per chunk at 10^6
    items cost more as a new tensor): the same values and gradients as the small-table branch."""
    g = torch.Generator().manual_seed(2)
    h = torch.randn(300, 64, generator=g, requires_grad=True)
    emb = torch.randn(2001, 64, generator=g, requires_grad=True)
    t = torch.randint(1, 2001, (300,), generator=g)
    small = losses.ChunkedSoftmaxCE.apply(h, emb, t)
    want = torch.autograd.grad(small, [h, emb])
    monkeypatch.setattr(losses, "GI_ONEDNN_BYTES", 0)
    large = losses.ChunkedSoftmaxCE.apply(h, emb, t)
    got = torch.autograd.grad(large, [h, emb])
    torch.testing.assert_close(large, small)
    for a, c in zip(got, want, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("name", "value"), [("RECEXP_CPU_GEMM", "fast"), ("RECEXP_MALLOC", "yes")])
def test_a_bad_setting_is_one_line_before_any_work(name, value):
    p = subprocess.run([sys.executable, "-m", "recexp.cli", "train", "model=pop"], capture_output=True, text=True,
                       env={**os.environ, name: value})
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"recexp: {name}={value!r}: expected "
                                              + ("auto or blas" if name == "RECEXP_CPU_GEMM" else "keep or default")]
