import torch

from recexp.data.batches import Batch
from recexp.models.sasrec import SASRec


def _batch(seq):
    return Batch(seq=seq, users=torch.zeros(len(seq), dtype=torch.long), times=torch.zeros(seq.shape))


def test_causality_future_items_do_not_change_past_outputs():
    torch.manual_seed(0)
    m = SASRec(num_items=30, max_len=8, hidden_size=16, num_heads=2, dropout=0.0).eval()
    seq = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8]])
    changed = seq.clone()
    changed[0, 5] = 20  # change item at t = 5
    a, b = m(_batch(seq)), m(_batch(changed))
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)  # outputs before t unchanged
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_padding_does_not_change_outputs_and_scores_agree():
    torch.manual_seed(0)
    m = SASRec(num_items=30, max_len=8, hidden_size=16, dropout=0.0).eval()
    short = torch.tensor([[3, 4, 5]])
    padded = torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5]])
    assert torch.allclose(m.query(_batch(short)), m.query(_batch(padded)), atol=1e-5)
    h = m.query(_batch(padded))
    all_scores = m.score(h)
    cand = torch.tensor([[1, 7, 29]])
    assert torch.allclose(m.score(h, cand), all_scores[:, [1, 7, 29]], atol=1e-5)
    assert all_scores.shape == (1, 31) and torch.isfinite(all_scores).all()
