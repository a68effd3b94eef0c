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


def test_ligr_block_is_causal_padding_safe_and_last_only_matches_full():
    torch.manual_seed(0)
    m = SASRec(num_items=30, max_len=8, hidden_size=16, num_heads=2, dropout=0.0, block="ligr").eval()
    assert {type(b).__name__ for b in m.blocks} == {"LiGRBlock"}
    seq = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8]])
    changed = seq.clone()
    changed[0, 5] = 20
    a, b = m(_batch(seq)), m(_batch(changed))
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6) and not torch.allclose(a[:, 5:], b[:, 5:])
    short, padded = torch.tensor([[3, 4, 5]]), torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5]])
    assert torch.allclose(m.query(_batch(short)), m.query(_batch(padded)), atol=1e-5)
    # the evaluation shortcut (last block for the last position only) equals the full pass
    assert torch.allclose(m.query(_batch(seq)), a[:, -1], atol=1e-5)


def test_ligr_gates_and_swiglu_receive_gradients():
    torch.manual_seed(0)
    m = SASRec(num_items=30, max_len=8, hidden_size=16, num_heads=2, dropout=0.0, block="ligr")
    out = m(_batch(torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7]])))
    m.score(out[:, -1]).logsumexp(-1).sum().backward()
    for name in ("blocks.0.gate1.weight", "blocks.1.gate2.weight", "blocks.0.ffn.w13.weight", "blocks.1.ffn.w2.weight"):
        g = dict(m.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name


def test_default_block_is_the_old_pre_ln_block_and_unknown_is_one_line():
    import pytest

    from recexp.errors import ConfigError

    torch.manual_seed(0)
    a = SASRec(num_items=30, max_len=8, hidden_size=16)
    torch.manual_seed(0)
    b = SASRec(num_items=30, max_len=8, hidden_size=16, block="pre_ln")
    assert {type(x).__name__ for x in a.blocks} == {"Block"}
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(ConfigError, match="model.block='post_ln'"):
        SASRec(num_items=30, block="post_ln")
