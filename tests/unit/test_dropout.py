"""CPU dropout from random words (recexp.runtime.dropout) and the prefix windows' last-only step."""

import torch
import torch.nn.functional as F

from recexp.data.batches import Batch
from recexp.models.narm import NARM
from recexp.models.sasrec import SASRec
from recexp.runtime import dropout as rd


def test_keep_rate_and_scale_match_dropout() -> None:
    torch.manual_seed(0)
    x = torch.ones(400_000)
    for p in (0.1, 0.25, 0.5):
        y = rd.dropout(x, p, True)
        kept = (y > 0).float().mean().item()
        assert abs(kept - (1 - p)) < 0.005, (p, kept)
        assert torch.allclose(y[y > 0], torch.full_like(y[y > 0], 1 / (1 - p)))
    assert rd.dropout(x, 0.5, False) is x


def test_reproducible_under_the_seed_and_gradient_is_the_mask() -> None:
    torch.manual_seed(3)
    a = rd.dropout(torch.ones(1000), 0.3, True)
    torch.manual_seed(3)
    x = torch.ones(1000, requires_grad=True)
    b = rd.dropout(x, 0.3, True)
    assert torch.equal(a, b)
    b.sum().backward()
    assert torch.equal(x.grad, b.detach())


def test_attention_without_drops_equals_sdpa(monkeypatch) -> None:  # noqa: ANN001
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 5, 8, generator=g) for _ in range(3))
    mask = torch.ones(5, 5, dtype=torch.bool).tril().view(1, 1, 5, 5).expand(2, 1, 5, 5)
    monkeypatch.setattr(rd, "keep_mask", lambda shape, p, *a, **kw: torch.ones(shape, dtype=torch.bool))
    got = rd.attention(q, k, v, mask, 0.2, True)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask) / 0.8
    assert torch.allclose(got, ref, atol=1e-5)


def test_last_only_step_equals_the_full_forward_at_the_last_position() -> None:
    torch.manual_seed(0)
    m = SASRec(num_items=30, max_len=6, hidden_size=16, num_blocks=2, num_heads=2, ffn_dim=32, dropout=0.0)
    seq = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    targets = torch.zeros_like(seq)
    targets[:, -1] = torch.tensor([7, 8])
    full = Batch(seq=seq, users=torch.tensor([1, 2]), times=torch.zeros(2, 6), targets=targets, num_targets=2)
    last = Batch(seq=seq, users=full.users, times=full.times, targets=targets, num_targets=2, last_only=True)
    h_full, _ = m.train_inputs(full)
    h_last, t_last = m.train_inputs(last)
    assert h_last.shape == (2, 1, 16) and torch.equal(t_last[:, 0], targets[:, -1])
    assert torch.allclose(h_last[:, 0], h_full[:, -1], atol=1e-5)


def test_narm_last_position_query_equals_its_causal_pass() -> None:
    torch.manual_seed(0)
    m = NARM(num_items=30, embedding_size=8, hidden_size=12, dropout_emb=0.0, dropout_ct=0.0).eval()
    seq = torch.tensor([[0, 0, 0, 4, 5, 6], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 9]])
    targets = torch.zeros_like(seq)
    targets[:, -1] = torch.tensor([7, 8, 2])
    b = Batch(seq=seq, users=torch.tensor([1, 2, 3]), times=torch.zeros(3, 6), targets=targets, num_targets=3,
              last_only=True)
    h_last, t_last = m.train_inputs(b)
    assert h_last.shape == (3, 1, 8) and torch.equal(t_last[:, 0], targets[:, -1])
    assert torch.allclose(h_last[:, 0], m(b)[:, -1], atol=1e-6)
    assert torch.allclose(m.query(b), m(b)[:, -1], atol=1e-6)
