"""Samplers: empirical distributions over many draws match their definitions (chi-square, fixed
seed), exclusions hold, and the reported log_q is the probability of what was drawn."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import chisquare

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.losses.samplers import InBatchSampler, MixedSampler, PopularitySampler, UniformSampler

CPU = torch.device("cpu")
COUNTS = torch.tensor([0, 1, 2, 3, 5, 8, 13, 21, 0, 40])  # (N+1,) items 1..9; item 8 never seen
N = len(COUNTS) - 1


def _batch(seq: torch.Tensor) -> Batch:
    return Batch(seq=seq, users=torch.arange(len(seq)), times=torch.zeros(seq.shape, dtype=torch.float64))


def _freq(ids: torch.Tensor, n: int = N) -> torch.Tensor:
    return torch.bincount(ids.flatten(), minlength=n + 1)[1:].double()  # (N,)


def _assert_fits(observed: torch.Tensor, p: torch.Tensor) -> None:
    """Chi-square goodness of fit over the items with p > 0 (and none drawn where p = 0)."""
    assert observed[p == 0].sum() == 0
    keep = p > 0
    expected = p[keep] / p[keep].sum() * observed[keep].sum()
    assert chisquare(observed[keep].numpy(), expected.numpy()).pvalue > 1e-3


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_popularity_draws_follow_count_power_alpha(alpha):
    s = PopularitySampler(num_negatives=50, exclude="none", alpha=alpha)
    s.setup(COUNTS, CPU)
    pos = torch.ones(2000, dtype=torch.long)
    neg = s.sample(pos, _batch(torch.zeros(2000, 1, dtype=torch.long)), torch.arange(2000),
                   torch.Generator().manual_seed(0))
    p = COUNTS[1:].double().pow(alpha)  # 0^0 = 1: alpha = 0 is uniform over all items
    _assert_fits(_freq(neg.ids), p)
    assert torch.allclose(neg.log_q.exp().double(), (p / p.sum())[neg.ids - 1], rtol=1e-5)


def test_uniform_draws_are_uniform_and_never_the_positive():
    s = UniformSampler(num_negatives=20)
    s.setup(COUNTS, CPU)
    pos = torch.randint(1, N + 1, (5000,), generator=torch.Generator().manual_seed(1))
    neg = s.sample(pos, _batch(torch.zeros(5000, 1, dtype=torch.long)), torch.arange(5000),
                   torch.Generator().manual_seed(2))
    hit = neg.ids == pos.unsqueeze(1)
    assert torch.isinf(neg.log_q[hit]).all()  # the rare survivors of the redraws are dropped
    assert hit.float().mean() == pytest.approx(1 / 81, rel=0.1)  # hit twice: (1/9)^2
    _assert_fits(_freq(neg.ids[(pos == 3).unsqueeze(1) & ~hit]), torch.tensor([1.0, 1, 0, 1, 1, 1, 1, 1, 1]))
    # conditioned on "not the positive": q = 1 / (N - 1)
    assert torch.allclose(neg.log_q[~hit].exp(), torch.tensor(1 / (N - 1)))


def test_exclude_history_never_returns_a_visible_item():
    s = PopularitySampler(num_negatives=30, exclude="history", alpha=1.0)
    s.setup(COUNTS, CPU)
    seq = torch.tensor([[0, 9, 7], [6, 7, 9], [0, 0, 4]])
    pos = torch.tensor([7, 5, 9])
    neg = s.sample(pos, _batch(seq), torch.arange(3), torch.Generator().manual_seed(3))
    bad = (neg.ids.unsqueeze(-1) == seq.unsqueeze(1)).any(-1) | (neg.ids == pos.unsqueeze(1))
    assert torch.isinf(neg.log_q[bad]).all() and torch.isfinite(neg.log_q[~bad]).all()


def test_shared_negatives_mark_each_rows_own_positive():
    s = PopularitySampler(num_negatives=200, shared=True, alpha=1.0)
    s.setup(COUNTS, CPU)
    pos = torch.tensor([9, 7, 1])
    neg = s.sample(pos, _batch(torch.zeros(3, 1, dtype=torch.long)), torch.arange(3),
                   torch.Generator().manual_seed(4))
    assert neg.ids.shape == (200,) and neg.log_q.shape == (3, 200)
    assert (torch.isinf(neg.log_q) == (neg.ids.unsqueeze(0) == pos.unsqueeze(1))).all()


def test_in_batch_follows_batch_counts_and_excludes_own_positive():
    # the batch's positives: item 2 x1, item 4 x3, item 6 x6 (M = 10)
    pos = torch.tensor([2, 4, 4, 4, 6, 6, 6, 6, 6, 6])
    s = InBatchSampler(num_negatives=4000)
    s.setup(COUNTS, CPU)
    neg = s.sample(pos, _batch(torch.zeros(10, 1, dtype=torch.long)), torch.arange(10),
                   torch.Generator().manual_seed(5))
    kept = torch.isfinite(neg.log_q)
    assert not (neg.ids == pos.unsqueeze(1))[kept].any()  # never the row's own positive
    # a row of item 6 (60% of the batch) keeps a draw unless it hits twice: 1 - 0.6^2 = 0.64
    assert kept[4:].float().mean() == pytest.approx(0.64, abs=0.02)
    assert set(neg.ids.unique().tolist()) <= {2, 4, 6}  # only the batch's positives
    # a row whose positive is 6 draws 2 and 4 in ratio 1 : 3, with q = c / (M - c_6) = 1/4, 3/4
    row = neg.ids[4][kept[4]]
    _assert_fits(_freq(row), torch.tensor([0.0, 1, 0, 3, 0, 0, 0, 0, 0]))
    assert torch.allclose(neg.log_q[4][kept[4]].exp(), torch.where(row == 2, 0.25, 0.75))
    assert torch.allclose(neg.pos_log_q.exp(), torch.tensor([0.1, 0.3, 0.3, 0.3] + [0.6] * 6))


def test_in_batch_shared_without_exclusion_follows_batch_counts():
    pos = torch.tensor([2, 4, 4, 4, 6, 6, 6, 6, 6, 6])
    s = InBatchSampler(num_negatives=20000, shared=True, exclude="none")
    s.setup(COUNTS, CPU)
    neg = s.sample(pos, _batch(torch.zeros(10, 1, dtype=torch.long)), torch.arange(10),
                   torch.Generator().manual_seed(6))
    _assert_fits(_freq(neg.ids), torch.tensor([0.0, 1, 0, 3, 0, 6, 0, 0, 0]))


def test_mixed_is_the_mixture_of_in_batch_and_popularity():
    pos = torch.tensor([2, 4, 4, 4, 6, 6, 6, 6, 6, 6])
    s = MixedSampler(num_negatives=1000, extra_negatives=3000, extra="popularity", alpha=1.0,
                     shared=True, exclude="none")
    s.setup(COUNTS, CPU)
    neg = s.sample(pos, _batch(torch.zeros(10, 1, dtype=torch.long)), torch.arange(10),
                   torch.Generator().manual_seed(8))
    assert neg.ids.shape == (4000,)
    q_batch = torch.tensor([0.0, 1, 0, 3, 0, 6, 0, 0, 0]) / 10
    q_pop = COUNTS[1:].double() / COUNTS.sum()
    mix = (1000 * q_batch + 3000 * q_pop) / 4000  # (N,)
    _assert_fits(_freq(neg.ids), mix)
    assert torch.allclose(neg.log_q.exp().double(), mix[neg.ids - 1], rtol=1e-5)


def test_samplers_are_vectorized_on_a_large_batch():
    """M = 12,800 positions with 256 negatives each: tensor ops, well under a second."""
    s = MixedSampler(num_negatives=128, extra_negatives=128)
    counts = torch.randint(1, 50, (12001,))
    s.setup(counts, CPU)
    pos = torch.randint(1, 12001, (12800,))
    neg = s.sample(pos, _batch(torch.zeros(12800, 1, dtype=torch.long)), torch.arange(12800))
    assert neg.ids.shape == (12800, 256) and torch.isfinite(neg.log_q).float().mean() > 0.999


@pytest.mark.parametrize("make", [lambda: UniformSampler(num_negatives=0),
                                  lambda: UniformSampler(exclude="everything"),
                                  lambda: PopularitySampler(alpha=-1.0),
                                  lambda: PopularitySampler(alpha=math.nan),
                                  lambda: MixedSampler(extra="in_batch")])
def test_bad_options_raise_config_error(make):
    with pytest.raises(ConfigError, match="sampler\\."):
        make()
