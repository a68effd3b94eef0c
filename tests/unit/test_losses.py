"""Each loss against a hand computation on one positive (score 1) and two negatives (0 and 2)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from recexp.errors import ConfigError
from recexp.losses import (
    BCE,
    BPR,
    GBCE,
    TOP1,
    BPRMax,
    CrossEntropy,
    SampledSoftmax,
    TOP1Max,
    gbce_beta,
)
from recexp.losses.samplers import PopularitySampler


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


POS = torch.tensor([1.0])  # (M=1,)
NEG = torch.tensor([[0.0, 2.0]])  # (M=1, K=2)
A, B = sig(1 - 0), sig(1 - 2)  # sigmoid(s+ - s_j) for the two negatives
W0, W1 = 1 / (1 + math.exp(2)), math.exp(2) / (1 + math.exp(2))  # softmax over the negatives [0, 2]


@pytest.mark.parametrize("loss,expected", [
    (BPR(), -(math.log(A) + math.log(B)) / 2),
    (TOP1(), ((sig(-1) + sig(0)) + (sig(1) + sig(4))) / 2),
    (BPRMax(reg=1.0), -math.log(W0 * A + W1 * B) + (W0 * 0 + W1 * 4)),
    (BPRMax(reg=0.0), -math.log(W0 * A + W1 * B)),
    (TOP1Max(), W0 * (sig(-1) + sig(0)) + W1 * (sig(1) + sig(4))),
    (BCE(offset=0), -(math.log(sig(1)) + math.log(1 - sig(0)) + math.log(1 - sig(2)))),
    # gBCE with N=11 items: alpha = 2/10, beta = 0.2 (0.5 (1 - 5) + 5) = 0.6
    (GBCE(t=0.5, offset=0, num_items=11), -(0.6 * math.log(sig(1)) + math.log(1 - sig(0)) + math.log(1 - sig(2)))),
    # offset auto: log(1/K) = log(1/2) (BCE), log(beta/K) = log(0.3) (gBCE) added to every logit
    (BCE(), -(math.log(sig(1 + math.log(0.5))) + math.log(1 - sig(math.log(0.5)))
              + math.log(1 - sig(2 + math.log(0.5))))),
    (GBCE(t=0.5, num_items=11), -(0.6 * math.log(sig(1 + math.log(0.3))) + math.log(1 - sig(math.log(0.3)))
                                  + math.log(1 - sig(2 + math.log(0.3))))),
    (SampledSoftmax(logq=False), -1 + math.log(math.exp(1) + math.exp(0) + math.exp(2))),
])
def test_sampled_loss_equals_hand_computation(loss, expected):
    assert float(loss(POS, NEG, None, None)) == pytest.approx(expected, rel=1e-6)


def test_sampled_softmax_logq_divides_each_negative_by_k_q():
    # q = [0.1, 0.4], K = 2: exp(corrected logit) = exp(s) / (K q)
    logq = torch.log(torch.tensor([[0.1, 0.4]]))
    expected = -1 + math.log(math.exp(1) + math.exp(0) / 0.2 + math.exp(2) / 0.8)
    assert float(SampledSoftmax()(POS, NEG, None, logq)) == pytest.approx(expected, rel=1e-6)
    shared = torch.log(torch.tensor([0.1, 0.4]))  # (K,) log_q of shared negatives broadcasts
    assert float(SampledSoftmax()(POS, NEG, None, shared)) == pytest.approx(expected, rel=1e-6)


def test_gbce_beta_endpoints():
    assert gbce_beta(4, 101, 0.0) == pytest.approx(1.0)  # t = 0: plain BCE
    assert gbce_beta(4, 101, 1.0) == pytest.approx(4 / 100)  # t = 1: beta = alpha
    assert float(GBCE(t=0.0, num_items=11)(POS, NEG)) == pytest.approx(float(BCE()(POS, NEG)))
    assert float(GBCE(t=0.0, offset=0, num_items=11)(POS, NEG)) == pytest.approx(float(BCE(offset=0)(POS, NEG)))


@pytest.mark.parametrize("make", [lambda: BCE(), lambda: GBCE(num_items=12_102)])
@pytest.mark.parametrize("k", [1, 16, 256])
def test_bce_family_needs_no_shared_logit_shift(make, k: int):
    """Issue 16, the gSASRec stall: with every raw score at 0 (an uninformative model), the loss
    must not pull all logits together in one direction. Without the offset its derivative with
    respect to a common shift is (K - beta) / 2 > 0 (K = 256: ~128 per positive); a dot-product
    model then grows one direction shared by every item embedding (cosine to the mean row 0.92
    after one Beauty epoch) and ranking stalls at the popularity level."""
    shift = torch.zeros((), requires_grad=True)
    pos, neg = torch.zeros(4) + shift, torch.zeros(4, k) + shift  # (M,), (M, K)
    (g,) = torch.autograd.grad(make()(pos, neg), shift)
    assert abs(float(g)) < 1e-5
    plain = make()
    plain.offset = 0.0
    (g0,) = torch.autograd.grad(plain(torch.zeros(4) + shift, torch.zeros(4, k) + shift), shift)
    beta = 1.0 if isinstance(plain, BCE) else gbce_beta(k, 12_102, 0.75)
    assert float(g0) == pytest.approx((k - beta) / 2, rel=1e-4)


def test_offset_must_be_auto_or_a_number():
    with pytest.raises(ConfigError, match="loss.offset='big'"):
        BCE(offset="big")
    with pytest.raises(ConfigError, match="loss.offset="):
        GBCE(offset=math.inf, num_items=11)


@pytest.mark.parametrize("loss", [BPR(), TOP1(), BPRMax(), TOP1Max(), BCE(offset=0), GBCE(offset=0, num_items=11),
                                  SampledSoftmax()])
def test_accidental_hits_are_dropped(loss):
    """A negative with log_q = +inf (the sampler's mark for an excluded item) does not count."""
    neg3 = torch.tensor([[0.0, 2.0, 5.0]])
    logq = torch.tensor([[math.log(0.5), math.log(0.5), math.inf]])
    with_hit = loss(POS, neg3, None, logq)
    if isinstance(loss, SampledSoftmax):  # K counts every draw, the dropped one too
        expected = -1 + math.log(math.exp(1) + (math.exp(0) + math.exp(2)) / 1.5)
    elif isinstance(loss, GBCE):  # its beta depends on K, so compare with the formula at K = 3
        beta = gbce_beta(3, 11, 0.75)
        expected = -(beta * math.log(sig(1)) + math.log(1 - sig(0)) + math.log(1 - sig(2)))
    else:
        expected = float(loss(POS, NEG, None, None))
    assert float(with_hit) == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_ignores_padding_column():
    logits = torch.tensor([[-math.inf, 1.0, 0.0, 2.0]])
    expected = -1 + math.log(math.exp(1) + 1 + math.exp(2))
    assert float(CrossEntropy()(logits, torch.tensor([1]))) == pytest.approx(expected, rel=1e-6)
    smoothed = CrossEntropy(label_smoothing=0.1)(logits, torch.tensor([1]))
    assert torch.isfinite(smoothed)


def _grad_error(num_negatives: int, logq: bool, n_items: int = 60, rows: int = 400) -> float:
    """Relative L2 error of the sampled-softmax gradient w.r.t. the item scores vs full softmax's,
    with negatives drawn by popularity (a skewed q, so the correction matters)."""
    gen = torch.Generator().manual_seed(7)
    counts = torch.cat([torch.zeros(1), torch.rand(n_items, generator=gen) ** 4 * 100 + 1])
    scores = (torch.randn(n_items + 1, generator=gen) * 1.5).requires_grad_()  # (N+1,), 0 = padding
    pos = torch.full((rows,), 5)  # every row: same scores, positive item 5
    full = F.cross_entropy(scores[1:].expand(rows, -1), pos - 1)
    (g_full,) = torch.autograd.grad(full, scores)
    sampler = PopularitySampler(num_negatives=num_negatives, alpha=1.0)
    sampler.setup(counts, torch.device("cpu"))
    neg = sampler.sample(pos, None, torch.arange(rows), gen)  # exclude=positive needs no history
    loss = SampledSoftmax(logq=logq)(scores[pos], scores[neg.ids], neg.pos_log_q, neg.log_q)
    (g,) = torch.autograd.grad(loss, scores)
    return float((g - g_full).norm() / g_full.norm())


def test_logq_makes_sampled_softmax_gradient_approach_full_softmax():
    errs = {k: _grad_error(k, logq=True) for k in (4, 32, 512)}
    assert errs[512] < errs[32] < errs[4]
    assert errs[512] < 0.1
    # without the correction the popularity-sampled gradient stays biased however many negatives
    assert _grad_error(512, logq=False) > 3 * errs[512]
