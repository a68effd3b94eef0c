"""The chunked softmax CE equals F.cross_entropy over logits with the padding column at -inf."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recexp.losses import CrossEntropy
from recexp.losses import full as losses


def reference(h, emb, t, smoothing=0.0):  # noqa: ANN001, ANN201
    logits = h @ emb.T
    logits = torch.cat([torch.full_like(logits[:, :1], float("-inf")), logits[:, 1:]], 1)
    if smoothing:
        return F.cross_entropy(logits[:, 1:], t - 1, label_smoothing=smoothing)
    return F.cross_entropy(logits, t)


@pytest.mark.parametrize("chunk", [3, 64, 10_000])
def test_value_and_gradients_match(monkeypatch, chunk):
    monkeypatch.setattr(losses, "_chunk_rows", lambda n, d: chunk)
    g = torch.Generator().manual_seed(0)
    M, N, D = 37, 50, 8
    h = torch.randn(M, D, generator=g, requires_grad=True)
    emb = torch.randn(N + 1, D, generator=g, requires_grad=True)
    t = torch.randint(1, N + 1, (M,), generator=g)
    ref = reference(h, emb, t)
    ref_g = torch.autograd.grad(ref, [h, emb])
    got = CrossEntropy().from_embeddings(h, emb, t)
    got_g = torch.autograd.grad(got * 2.0, [h, emb])  # upstream gradient is applied
    assert torch.allclose(got, ref, atol=1e-6)
    for a, b in zip(got_g, ref_g, strict=True):
        assert torch.allclose(a, 2.0 * b, atol=1e-6)
    assert got_g[1][0].abs().max() == 0  # the padding row gets no gradient


def test_label_smoothing_path_matches():
    g = torch.Generator().manual_seed(1)
    h, emb = torch.randn(9, 4, generator=g), torch.randn(21, 4, generator=g)
    t = torch.randint(1, 21, (9,), generator=g)
    got = CrossEntropy(label_smoothing=0.1).from_embeddings(h, emb, t)
    assert torch.allclose(got, reference(h, emb, t, 0.1), atol=1e-6)


@pytest.mark.parametrize("chunk", [3, 10_000])
def test_under_autocast_all_three_matmuls_run_low_and_stay_close(monkeypatch, chunk):
    """trainer.amp / cpu_amp: the fused CE runs its matmuls in the autocast dtype (the table cast
    once), the softmax in fp32; values and gradients stay within bf16's precision of fp32's."""
    monkeypatch.setattr(losses, "_chunk_rows", lambda n, d: chunk)
    seen = []
    real_mm = torch.Tensor.__matmul__
    monkeypatch.setattr(torch.Tensor, "__matmul__", lambda a, b: seen.append((a.dtype, b.dtype)) or real_mm(a, b))
    g = torch.Generator().manual_seed(3)
    M, N, D = 37, 50, 16
    h = torch.randn(M, D, generator=g, requires_grad=True)
    emb = (torch.randn(N + 1, D, generator=g) * 0.5).requires_grad_()
    t = torch.randint(1, N + 1, (M,), generator=g)
    ref = reference(h, emb, t)
    ref_g = torch.autograd.grad(ref, [h, emb])
    seen.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = CrossEntropy().from_embeddings(h, emb, t)
    got_g = torch.autograd.grad(got, [h, emb])
    assert seen and all(a == b == torch.bfloat16 for a, b in seen), seen
    assert got.dtype == torch.float32 and abs(float(got) - float(ref)) < 2e-2 * float(ref)
    for a, b in zip(got_g, ref_g, strict=True):
        assert a.dtype == torch.float32 and (a - b).norm() < 3e-2 * b.norm()
