"""Losses: pure functions of scores, wrapped as small modules selected by ``conf/loss``.

Two kinds, declared by ``requires``:

* ``"full"``: ``loss(logits (M, N+1), targets (M,))`` over every item (column 0 is padding and
  arrives as ``-inf``);
* ``"sampled"``: ``loss(pos (M,), neg (M, K), pos_logq (M,) | None, neg_logq (M, K) | (K,) | None)``
  over the positive and the sampler's negatives; ``*_logq`` are log sampling probabilities.
  A ``neg_logq`` of ``+inf`` marks a negative the sampler could not avoid (an "accidental hit":
  the row's own positive, or an excluded history item); every sampled loss drops those.

Every function returns the mean over the ``M`` positives. The module wrappers take explicit
kwargs; ``num_items`` (a runtime value) is passed at instantiate and only gBCE uses it.
"""

from recexp.losses.base import FullLoss, SampledLoss
from recexp.losses.full import ChunkedSoftmaxCE, CrossEntropy
from recexp.losses.pure import bce, bpr, bpr_max, gbce, gbce_beta, sampled_softmax, top1, top1_max
from recexp.losses.sampled import (
    BCE,
    BPR,
    GBCE,
    TOP1,
    BPRMax,
    SampledSoftmax,
    SoftmaxWeightedLoss,
    TOP1Max,
    bce_offset,
)

__all__ = ["BCE", "BPR", "GBCE", "TOP1", "BPRMax", "ChunkedSoftmaxCE", "CrossEntropy", "FullLoss", "SampledLoss",
           "SampledSoftmax", "SoftmaxWeightedLoss", "TOP1Max", "bce", "bce_offset", "bpr", "bpr_max", "gbce",
           "gbce_beta", "sampled_softmax", "top1", "top1_max"]
