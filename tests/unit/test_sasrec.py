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
    with pytest.raises(ConfigError, match="model.block='post-ln'"):
        SASRec(num_items=30, block="post-ln")
    with pytest.raises(ConfigError, match="model.init='uniform'"):
        SASRec(num_items=30, init="uniform")
    with pytest.raises(ConfigError, match="model.positions='absolute'"):
        SASRec(num_items=30, positions="absolute")


RECBOLE_LIKE = [dict(block="post_ln"), dict(positions="from_start"), dict(init="normal", emb_scale=False),
                dict(block="post_ln", init="normal", emb_scale=False, positions="from_start")]


def test_recbole_style_options_are_causal_padding_safe_and_last_only_matches_full():
    for kw in RECBOLE_LIKE:
        torch.manual_seed(0)
        m = SASRec(num_items=30, max_len=8, hidden_size=16, num_heads=2, dropout=0.0, **kw).eval()
        seq = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 9, 2]])
        changed = seq.clone()
        changed[0, 5] = 20
        a, b = m(_batch(seq)), m(_batch(changed))
        assert torch.allclose(a[0, :5], b[0, :5], atol=1e-6), kw  # the future does not leak
        assert not torch.allclose(a[0, 5:], b[0, 5:]), kw
        short, padded = torch.tensor([[3, 4, 5]]), torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5]])
        assert torch.allclose(m.query(_batch(short)), m.query(_batch(padded)), atol=1e-5), kw
        assert torch.allclose(m.query(_batch(seq)), a[:, -1], atol=1e-5), kw
        if kw.get("block") == "post_ln":  # no final LayerNorm: the last block's own is the output's
            with torch.no_grad():
                m.blocks[-1].ln2.bias.fill_(3.0)
            assert torch.allclose(m(_batch(seq))[0, -1].mean(), torch.tensor(3.0), atol=1e-4)


def test_from_start_positions_number_the_window_from_its_first_item():
    torch.manual_seed(0)
    m = SASRec(num_items=30, max_len=8, hidden_size=16, num_heads=1, dropout=0.0, positions="from_start").eval()
    # the first item's output sees only itself: identical whatever follows and however much padding
    one = m.encode(torch.tensor([[0, 0, 0, 0, 0, 0, 0, 3]]))[0, -1]
    three = m.encode(torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5]]))[0, -3]
    assert torch.allclose(one, three, atol=1e-5)
    torch.manual_seed(0)
    e = SASRec(num_items=30, max_len=8, hidden_size=16, num_heads=1, dropout=0.0).eval()  # from_end: differs
    assert not torch.allclose(e.encode(torch.tensor([[0, 0, 0, 0, 0, 0, 0, 3]]))[0, -1],
                              e.encode(torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5]]))[0, -3], atol=1e-5)


def test_normal_init_and_unscaled_embeddings():
    torch.manual_seed(0)
    m = SASRec(num_items=2000, hidden_size=64, init="normal", emb_scale=False)
    w = m.item_emb.weight[1:]
    assert abs(w.std().item() - 0.02) < 0.002 and m.scale == 1.0
    assert abs(m.blocks[0].attn.qkv.weight.std().item() - 0.02) < 0.002
    torch.manual_seed(0)
    x = SASRec(num_items=2000, hidden_size=64)
    assert x.item_emb.weight[1:].std().item() > 0.03 and x.scale == 8.0  # xavier on (2001, 64)
