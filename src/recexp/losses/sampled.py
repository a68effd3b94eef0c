"""The sampled losses: BCE, gBCE, BPR, TOP1, BPR-max, TOP1-max and sampled softmax over the
sampler's negatives."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from recexp.errors import ConfigError

if TYPE_CHECKING:
    pass

from recexp.losses.base import SampledLoss
from recexp.losses.pure import bce, bpr, bpr_max, gbce, gbce_beta, sampled_softmax, top1, top1_max


def bce_offset(num_negatives: int, beta: float = 1.0) -> float:
    """log(beta / K): the logit at which an uninformative score balances the BCE family's loss.

    With K uniform negatives the loss's optimum is s*(j) = log(P(j | ctx) N) + log(beta / K): for
    the average item the logits must all sit at log(beta / K) (-6.9 for gSASRec's K = 256,
    beta = 0.27). A dot-product model has no logit bias, so it buys that shift with one direction
    shared by every item embedding and a query pointing against it (LayerNorm bounds the query's
    norm, leaving little of it for the context): on Beauty the rows' cosine to the mean row went
    0.009 -> 0.92 in one epoch and ranking stalled at the popularity level (docs/results.md).
    Adding this constant to every logit puts that optimum at 0; ranking is unchanged by it."""
    return math.log(beta / num_negatives)


def _offset(offset: float | str, value: float) -> float:
    return value if offset == "auto" else float(offset)


def _check_offset(offset: float | str) -> float | str:
    if offset != "auto" and not (isinstance(offset, int | float) and not isinstance(offset, bool)
                                 and math.isfinite(offset)):
        raise ConfigError(f"loss.offset={offset!r}: expected auto or a finite number (0 = no offset)")
    return offset


class BCE(SampledLoss):
    """Binary cross-entropy: positive vs each sampled negative (the SASRec paper's loss).
    ``offset`` (``auto`` = log(1/K), see :func:`bce_offset`; 0 for one negative) is added to every
    logit; ``offset=0`` is the plain loss."""

    name = "bce"

    def __init__(self, offset: float | str = "auto", num_items: int = 0) -> None:
        super().__init__(num_items)
        self.offset = _check_offset(offset)

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        b = _offset(self.offset, bce_offset(neg.shape[-1]))
        return bce(pos + b, neg + b, keep)


class BPR(SampledLoss):
    """Bayesian personalised ranking: -log sigmoid(pos - neg), averaged over the negatives."""

    name = "bpr"

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        return bpr(pos, neg, keep)


class TOP1(SampledLoss):
    """GRU4Rec's regularised pairwise loss (Hidasi et al. 2016)."""

    name = "top1"

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        return top1(pos, neg, keep)


class SoftmaxWeightedLoss(SampledLoss):
    """BPR-max and TOP1-max weight negatives by a softmax over them: one negative is weight 1."""

    min_negatives = 2
    #: the loss this one reduces to with a single negative
    plain = ""

    def too_few(self, num_negatives: int) -> str:
        return (f"loss={self.name} weights negatives by a softmax over them: with sampler.num_negatives="
                f"{num_negatives} it is just {self.plain} -- use more negatives or that loss")


class BPRMax(SoftmaxWeightedLoss):
    """BPR-max with score regularisation ``reg`` (GRU4Rec's ``bpreg``)."""

    name = "bpr_max"
    plain = "bpr"

    def __init__(self, reg: float = 1.0, num_items: int = 0) -> None:
        super().__init__(num_items)
        if not reg >= 0:
            raise ConfigError(f"loss.reg={reg}: expected a number >= 0")
        self.reg = reg

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        return bpr_max(pos, neg, keep, self.reg)


class TOP1Max(SoftmaxWeightedLoss):
    """TOP1-max: softmax-weighted TOP1 (its sigmoid(s^2) term is the score regularisation)."""

    name = "top1_max"
    plain = "top1"

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        return top1_max(pos, neg, keep)


class GBCE(SampledLoss):
    """Generalised BCE of gSASRec; ``t`` in [0, 1] is its calibration parameter; ``offset``
    (``auto`` = log(beta / K)) is added to every logit as in :class:`BCE`."""

    name = "gbce"

    def check(self, sampler_name: str, num_negatives: int, num_items: int) -> None:
        super().check(sampler_name, num_negatives, num_items)
        if not 0 < num_negatives < num_items:
            raise ConfigError(f"loss=gbce with sampler.num_negatives={num_negatives}: gBCE's sampling rate "
                              f"K/(N-1) needs 1 <= K < N={num_items} items")

    def __init__(self, t: float = 0.75, offset: float | str = "auto", num_items: int = 0) -> None:
        super().__init__(num_items)
        if not 0.0 <= t <= 1.0:
            raise ConfigError(f"loss.t={t}: gBCE's calibration parameter must lie in [0, 1]")
        self.t = t
        self.offset = _check_offset(offset)

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        if self.num_items < 2:
            raise RuntimeError("GBCE needs num_items (passed at instantiate) to know the sampling rate")
        k = neg.shape[-1]
        b = _offset(self.offset, bce_offset(k, gbce_beta(k, self.num_items, self.t)))
        return gbce(pos + b, neg + b, keep, self.num_items, self.t)


class SampledSoftmax(SampledLoss):
    """Softmax over the positive and sampled negatives, logQ-corrected by default."""

    name = "sampled_softmax"

    def __init__(self, logq: bool = True, num_items: int = 0) -> None:
        super().__init__(num_items)
        self.logq = logq

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        return sampled_softmax(pos, neg, keep, neg_logq, self.logq)
