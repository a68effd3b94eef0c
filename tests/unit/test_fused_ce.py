"""The chunked softmax CE equals F.cross_entropy over logits with the padding column at -inf."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recexp import losses
from recexp.losses import CrossEntropy


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
