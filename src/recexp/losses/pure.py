"""The losses as pure functions of scores: ``pos`` (M,), ``neg`` (M, K) and the kept-negatives mask
``keep`` (M, K); each returns the mean over the M positives (docs/combinations.md)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    pass


def keep_mask(neg: torch.Tensor, neg_logq: torch.Tensor | None) -> torch.Tensor:
    """(M, K) float mask: 1 for real negatives, 0 for the sampler's accidental hits."""
    if neg_logq is None:
        return torch.ones_like(neg)
    return torch.isfinite(neg_logq).to(neg.dtype).expand_as(neg)


def _softmax_weights(neg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Softmax over each row's kept negatives (BPR-max / TOP1-max weights), (M, K)."""
    return torch.softmax(neg.masked_fill(keep == 0, -torch.inf), dim=-1).nan_to_num(0.0)


def bpr(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(s+ - s-), averaged over each row's negatives."""
    per = -F.logsigmoid(pos.unsqueeze(-1) - neg) * keep  # (M, K)
    return (per.sum(-1) / keep.sum(-1).clamp(min=1)).mean()


def top1(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """GRU4Rec's TOP1: sigmoid(s- - s+) + sigmoid(s-^2), the second term pushing negatives to 0."""
    per = (torch.sigmoid(neg - pos.unsqueeze(-1)) + torch.sigmoid(neg**2)) * keep  # (M, K)
    return (per.sum(-1) / keep.sum(-1).clamp(min=1)).mean()


def bpr_max(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor, reg: float) -> torch.Tensor:
    """Hidasi & Karatzoglou 2018: -log sum_j w_j sigmoid(s+ - s_j) + reg * sum_j w_j s_j^2,
    with w = softmax over the negatives (the hardest negatives dominate)."""
    w = _softmax_weights(neg, keep)  # (M, K)
    fit = -torch.log((w * torch.sigmoid(pos.unsqueeze(-1) - neg)).sum(-1) + 1e-24)
    return (fit + reg * (w * neg**2).sum(-1)).mean()


def top1_max(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Hidasi & Karatzoglou 2018: sum_j w_j [sigmoid(s_j - s+) + sigmoid(s_j^2)], w = softmax(s-)."""
    w = _softmax_weights(neg, keep)
    return (w * (torch.sigmoid(neg - pos.unsqueeze(-1)) + torch.sigmoid(neg**2))).sum(-1).mean()


def bce(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """SASRec's loss: -[log sigmoid(s+) + sum_j log(1 - sigmoid(s_j))]."""
    return -(F.logsigmoid(pos) + (F.logsigmoid(-neg) * keep).sum(-1)).mean()


def gbce(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor, num_items: int, t: float) -> torch.Tensor:
    """gSASRec's generalised BCE (Petrov & Macdonald 2023): the positive term raised to beta,
    beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = K / (N - 1) the negative sampling rate.
    t = 0 is plain BCE; t = 1 calibrates the sigmoid to full-softmax probabilities."""
    beta = gbce_beta(neg.shape[-1], num_items, t)
    return -(beta * F.logsigmoid(pos) + (F.logsigmoid(-neg) * keep).sum(-1)).mean()


def sampled_softmax(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
                    neg_logq: torch.Tensor | None, logq: bool) -> torch.Tensor:
    """Softmax cross-entropy over [positive, K negatives].

    With ``logq``, each negative's logit becomes s_j - log(K q_j): then sum_j exp(.) is an unbiased
    estimate of the partition function over all other items, so the loss (and its gradient)
    approaches full softmax as K grows (Bengio & Senecal 2008; Yi et al. 2019). The positive is
    always in the set exactly once, so its own logit is left uncorrected.
    """
    if logq and neg_logq is not None:
        # K counts every draw, dropped hits included: dropping them is what makes the estimate of
        # sum over the *other* items unbiased when q is the unconditional sampling distribution
        neg = neg - (math.log(neg.shape[-1]) + torch.where(torch.isfinite(neg_logq), neg_logq, 0.0))
    neg = neg.masked_fill(keep == 0, -torch.inf)
    logits = torch.cat([pos.unsqueeze(-1), neg], dim=-1)  # (M, 1 + K)
    return (torch.logsumexp(logits, dim=-1) - pos).mean()


def gbce_beta(num_negatives: int, num_items: int, t: float) -> float:
    """beta of gBCE for K negatives among N items (exposed for the docs and tests)."""
    alpha = num_negatives / (num_items - 1)
    return alpha * (t * (1 - 1 / alpha) + 1 / alpha)
