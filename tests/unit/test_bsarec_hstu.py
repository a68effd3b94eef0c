"""BSARec and HSTU: hand-computed filter and attention, shapes, padding, causality, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.models.bsarec import (
    BSARec,
    BSARecBlock,
    PrefixFrequencyFilter,
    frequency_filter,
    low_pass,
    prefix_low_pass_table,
)
from recexp.models.hstu import HSTU, pointwise_attention
from recexp.models.sasrec import PostLNBlock, attention_mask

N = 30
X = torch.tensor([[[1.0, 2.0], [3.0, 0.0], [5.0, -2.0], [7.0, 4.0]]])  # (1, 4, 2)


def _batch(seq: torch.Tensor) -> Batch:
    return Batch(seq=seq, users=torch.zeros(len(seq), dtype=torch.long), times=torch.zeros(seq.shape))


def _model(name: str, **kw) -> BSARec | HSTU:
    torch.manual_seed(0)
    cls = BSARec if name == "bsarec" else HSTU
    return cls(num_items=N, max_len=8, hidden_size=16, num_heads=2, dropout=0.0, **kw).eval()


# --- BSARec: the frequency filter by hand ---------------------------------------------------------

def test_low_pass_with_c1_is_the_mean_over_time():
    mean = torch.tensor([4.0, 1.0])  # (1 + 3 + 5 + 7) / 4, (2 + 0 - 2 + 4) / 4
    assert torch.allclose(low_pass(X, 1), mean.expand(1, 4, 2), atol=1e-6)
    assert torch.allclose(frequency_filter(X, 1, torch.zeros(2)), mean.expand(1, 4, 2), atol=1e-6)  # beta 0: low only
    assert torch.allclose(frequency_filter(X, 3, torch.ones(2)), X, atol=1e-6)  # beta 1: low + high = x


def test_prefix_table_by_hand():
    t1 = prefix_low_pass_table(4, 1)  # c = 1: the mean of the m most recent items
    for m in range(1, 5):
        assert torch.allclose(t1[m - 1], torch.tensor([1 / m] * m + [0.0] * (4 - m)))
    # c = 3 keeps rfft bins 0 and 1; at length 4, read at t = 3, item j weighs 1/4 + 1/2 cos(2 pi (3 - j) / 4)
    assert torch.allclose(prefix_low_pass_table(4, 3)[3], torch.tensor([0.75, 0.25, -0.25, 0.25]), atol=1e-6)
    assert torch.allclose(prefix_low_pass_table(4, 3)[2], torch.tensor([1.0, 0.0, 0.0, 0.0]), atol=1e-6)  # 3 items: all kept


def test_prefix_filter_is_the_running_low_pass_and_ignores_padding():
    f = PrefixFrequencyFilter(2, max_len=6, c=1)
    with torch.no_grad():
        f.sqrt_beta.zero_()  # low pass only
    seq = torch.tensor([[1, 2, 3, 4]])
    running = torch.tensor([[[1.0, 2.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]]])  # running means of X
    assert torch.allclose(f(X, attention_mask(seq, causal=True)), running, atol=1e-6)
    assert torch.allclose(f(X, attention_mask(seq, True), last_only=True), low_pass(X, 1)[:, -1:], atol=1e-6)
    # two padding positions with arbitrary values in front: the real positions do not change
    padded = torch.cat([torch.full((1, 2, 2), 9.0), X], 1)
    out = f(padded, attention_mask(torch.tensor([[0, 0, 1, 2, 3, 4]]), True))
    assert torch.allclose(out[:, 2:], running, atol=1e-6)
    with torch.no_grad():
        f.sqrt_beta.fill_(1.0)  # beta = 1: the filter is the identity
    assert torch.allclose(f(padded, attention_mask(torch.tensor([[0, 0, 1, 2, 3, 4]]), True)), padded, atol=1e-6)


def test_alpha_zero_is_sasrecs_post_ln_block_and_alpha_one_beta_one_is_ln_of_x():
    torch.manual_seed(0)
    ours = BSARecBlock(8, 2, 16, 0.0, alpha=0.0, max_len=5, c=3).eval()
    theirs = PostLNBlock(8, 2, 16, 0.0).eval()
    state = {k.replace("ffn.2.", "ffn.3."): v for k, v in ours.state_dict().items()
             if not k.startswith(("filter.", "ln_f."))}
    theirs.load_state_dict(state)
    x, mask = torch.randn(2, 5, 8), attention_mask(torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]), True)
    assert torch.allclose(ours(x, mask), theirs(x, mask), atol=1e-5)
    ours.alpha = 1.0
    with torch.no_grad():
        ours.filter.sqrt_beta.fill_(1.0)
        ours.ffn[2].weight.zero_()
        ours.ffn[2].bias.zero_()  # FFN adds 0: the output is LN(LN(x + x)) = LN(x)
    assert torch.allclose(ours(x, mask), torch.nn.functional.layer_norm(x, (8,)), atol=1e-4)


def test_bsarec_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="model.alpha=1.5"):
        BSARec(num_items=N, alpha=1.5)
    with pytest.raises(ConfigError, match="model.c=0"):
        BSARec(num_items=N, c=0)


# --- HSTU: pointwise attention by hand ------------------------------------------------------------

def silu(z: float) -> float:
    return z / (1 + math.exp(-z))


def test_pointwise_attention_on_two_tokens_by_hand():
    q = torch.tensor([[1.0], [2.0]]).view(1, 1, 2, 1)  # (B, H, L, dqk)
    k = torch.tensor([[1.0], [-1.0]]).view(1, 1, 2, 1)
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 1, 2, 2)
    rab = torch.tensor([[0.5, 0.0], [-0.5, 0.5]])  # (Lq, L): lag 0 -> 0.5, lag 1 -> -0.5 (unused j > i: 0)
    allowed = attention_mask(torch.tensor([[3, 4]]), causal=True)  # (1, 1, 2, 2)
    out = pointwise_attention(q, k, v, rab, allowed, n=2)[0, 0]
    # t = 0 sees key 0 only: silu(1*1 + 0.5) / 2; t = 1: silu(2*1 - 0.5) / 2 and silu(2*-1 + 0.5) / 2
    want = torch.tensor([[silu(1.5) / 2, 0.0], [silu(1.5) / 2, silu(-1.5) / 2]])
    assert torch.allclose(out, want, atol=1e-6)
    # no softmax: the weights of t = 1 do not sum to 1, and the first position never sees the second
    v2 = v.clone()
    v2[..., 1, :] = 100.0
    assert torch.allclose(pointwise_attention(q, k, v2, rab, allowed, n=2)[0, 0, 0], want[0], atol=1e-6)


def test_hstu_temperature_scores_are_scaled_cosines_and_null_keeps_layer_norm():
    m = _model("hstu")
    h = m.query(_batch(torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5]])))
    assert torch.allclose(h.norm(dim=-1), torch.tensor(1 / 0.05), atol=1e-3)
    e = m.item_embeddings()
    assert torch.allclose(e[1:].norm(dim=-1), torch.ones(N), atol=1e-5) and e[0].abs().sum() == 0
    assert m.score(h).abs().max() <= 1 / 0.05 + 1e-3
    plain = _model("hstu", temperature=None)
    assert isinstance(plain.ln, torch.nn.LayerNorm) and torch.equal(plain.item_embeddings(), plain.item_emb.weight)
    with pytest.raises(ConfigError, match="model.temperature=0"):
        HSTU(num_items=N, temperature=0)
    with pytest.raises(ConfigError, match="model.qk_dim=0"):
        HSTU(num_items=N, qk_dim=0)


# --- both: the SASRec interface ------------------------------------------------------------------

SEQ = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 9, 2]])


@pytest.mark.parametrize("name", ["bsarec", "hstu"])
def test_shapes_and_scores(name: str):
    m = _model(name)
    b = _batch(SEQ)
    assert m(b).shape == (2, 8, 16) and m.query(b).shape == (2, 16)
    h = m.query(b)
    full = m.score(h)
    assert full.shape == (2, N + 1) and torch.isfinite(full).all()
    cand = torch.tensor([[1, 7, 29], [2, 3, 4]])
    assert torch.allclose(m.score(h, cand), full.gather(1, cand), atol=1e-4)
    train = Batch(seq=SEQ, users=torch.zeros(2, dtype=torch.long), times=torch.zeros(SEQ.shape),
                  targets=torch.where(SEQ > 0, SEQ % 7 + 1, 0))
    H, T = m.train_inputs(train)
    assert H.shape == (2, 8, 16) and T is train.targets


@pytest.mark.parametrize("name", ["bsarec", "hstu"])
def test_padding_does_not_change_real_positions(name: str):
    m = _model(name)
    short, padded = torch.tensor([[3, 4, 5]]), torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5]])
    assert torch.allclose(m(_batch(short))[0], m(_batch(padded))[0, -3:], atol=1e-5)
    assert torch.allclose(m.query(_batch(short)), m.query(_batch(padded)), atol=1e-5)


@pytest.mark.parametrize("name", ["bsarec", "hstu"])
def test_causal_and_last_only_matches_the_full_pass(name: str):
    m = _model(name)
    changed = SEQ.clone()
    changed[0, 5] = 20  # the item at t = 5
    a, b = m(_batch(SEQ)), m(_batch(changed))
    assert torch.allclose(a[0, :5], b[0, :5], atol=1e-6)  # the future does not leak
    assert not torch.allclose(a[0, 5:], b[0, 5:])
    assert torch.allclose(a[1], b[1])
    assert torch.allclose(m.query(_batch(SEQ)), a[:, -1], atol=1e-5)


@pytest.mark.parametrize("name,names", [
    ("bsarec", ["blocks.0.filter.sqrt_beta", "blocks.1.attn.qkv.weight", "blocks.0.ffn.0.weight", "item_emb.weight"]),
    ("hstu", ["blocks.0.uvqk.weight", "blocks.1.rab", "blocks.0.out.weight", "pos_emb.weight", "item_emb.weight"]),
])
def test_gradients_reach_every_part(name: str, names: list[str]):
    m = _model(name).train()
    out = m(_batch(SEQ))  # (B, L, D)
    torch.nn.functional.cross_entropy(m.score(out[:, -1]), torch.tensor([1, 2])).backward()
    params = dict(m.named_parameters())
    for n in names:
        g = params[n].grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, n


# --- BSARec, filter_scope=window: the authors' code, written out here op by op --------------------

def _authors_forward(m: BSARec, seq: torch.Tensor) -> torch.Tensor:
    """The last position's output as github.com/yehjin-shin/BSARec computes it (dropout off):
    left-pad to max_len, LN(item + position) at every position, additive -10000 masks, the
    frequency filter over the whole padded window, alpha * filter + (1 - alpha) * attention."""
    L, D = m.max_len, m.item_emb.weight.shape[1]
    seq = torch.nn.functional.pad(seq, (L - seq.shape[1], 0))
    ln = lambda z, mod: torch.nn.functional.layer_norm(z, (D,), mod.weight, mod.bias, mod.eps)  # noqa: E731
    x = ln(m.item_emb.weight[seq] + m.pos_emb.weight[1 : L + 1], m.ln)
    keep = torch.ones(L, L).tril().bool() & (seq > 0)[:, None, :]  # (B, Lq, Lk)
    add = (~keep).float() * -10000.0
    for blk in m.blocks:
        H = blk.attn.heads
        q, k, v = (x @ blk.attn.qkv.weight.T + blk.attn.qkv.bias).split(D, -1)
        heads = lambda t, H=H: t.view(*t.shape[:2], H, D // H).transpose(1, 2)  # noqa: E731
        s = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(D // H) + add[:, None]
        y = (s.softmax(-1) @ heads(v)).transpose(1, 2).reshape(x.shape)
        gsp = ln(x + y @ blk.attn.out.weight.T + blk.attn.out.bias, blk.ln1)
        f = torch.fft.rfft(x, dim=1, norm="ortho")
        f[:, m.c // 2 + 1 :] = 0
        low = torch.fft.irfft(f, n=L, dim=1, norm="ortho")
        dsp = ln(x + low + blk.filter.sqrt_beta**2 * (x - low), blk.ln_f)
        h = m.alpha * dsp + (1 - m.alpha) * gsp
        x = ln(h + blk.ffn(h), blk.ln2)
    return x[:, -1]


def test_window_scope_is_the_authors_forward_and_needs_prefix_training():
    m = _model("bsarec", filter_scope="window")
    seq = torch.tensor([[3, 4, 5], [0, 9, 2]])
    assert torch.allclose(m.query(_batch(seq)), _authors_forward(m, seq), atol=1e-5)
    assert torch.allclose(m(_batch(seq))[:, -1], _authors_forward(m, seq), atol=1e-5)
    # padding is part of the model here: the prefix scope's output differs
    prefix = _model("bsarec")
    assert not torch.allclose(prefix.query(_batch(seq)), m.query(_batch(seq)), atol=1e-3)
    m.check_training("prefixes")
    with pytest.raises(ConfigError, match="trainer.window_mode=prefixes"):
        m.check_training("all")
    with pytest.raises(ConfigError, match="model.filter_scope='fft'"):
        BSARec(num_items=N, filter_scope="fft")


def test_padded_scope_is_the_window_low_pass_of_zero_padding_and_causal():
    f = PrefixFrequencyFilter(2, max_len=6, c=3, padded=True)
    with torch.no_grad():
        f.sqrt_beta.zero_()  # low pass only
    seq = torch.tensor([[0, 0, 1, 2, 3, 4]])
    x = torch.cat([torch.full((1, 2, 2), 9.0), X], 1)  # padding values must not count
    out = f(x, attention_mask(seq, True))
    zero_padded = torch.cat([torch.zeros(1, 2, 2), X], 1)
    for t in range(2, 6):  # position t = the last of a 6-wide window of zeros then items 0..t
        window = torch.cat([torch.zeros(1, 5 - t, 2), zero_padded[:, : t + 1]], 1)
        assert torch.allclose(out[:, t], low_pass(window, 3)[:, -1], atol=1e-5)
    m = _model("bsarec", filter_scope="padded")
    changed = SEQ.clone()
    changed[0, 5] = 20
    a, b = m(_batch(SEQ)), m(_batch(changed))
    assert torch.allclose(a[0, :5], b[0, :5], atol=1e-6) and not torch.allclose(a[0, 5:], b[0, 5:])
    m.check_training("all")  # causal: every position may be trained
