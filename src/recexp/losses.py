"""Losses: pure functions of scores, wrapped as small modules selected by ``conf/loss``.

Two kinds, declared by ``requires``:

* ``"full"``: ``loss(logits (M, N+1), targets (M,))`` over every item (column 0 is padding and
  arrives as ``-inf``);
* ``"sampled"``: ``loss(pos (M,), neg (M, K), pos_logq (M,) | None, neg_logq (M, K) | None)`` over
  the positive and the sampler's negatives; ``*_logq`` are log sampling probabilities.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FullLoss(nn.Module):
    requires = "full"
    name = "full"


class SampledLoss(nn.Module):
    requires = "sampled"
    name = "sampled"


class CrossEntropy(FullLoss):
    """Softmax cross-entropy over all items (SASRec with full CE: Klenitskiy & Vasilev 2023)."""

    name = "ce"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.label_smoothing:
            # smoothing must not put mass on the padding column (-inf)
            logits = logits[:, 1:]
            targets = targets - 1
        return F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)


class BCE(SampledLoss):
    """Binary cross-entropy: positive vs each sampled negative (the SASRec paper's loss)."""

    name = "bce"

    def forward(self, pos: torch.Tensor, neg: torch.Tensor, pos_logq: torch.Tensor | None = None,
                neg_logq: torch.Tensor | None = None) -> torch.Tensor:
        return -(F.logsigmoid(pos).mean() + F.logsigmoid(-neg).sum(-1).mean())


class BPR(SampledLoss):
    """Bayesian personalised ranking: -log sigmoid(pos - neg), averaged over the negatives."""

    name = "bpr"

    def forward(self, pos: torch.Tensor, neg: torch.Tensor, pos_logq: torch.Tensor | None = None,
                neg_logq: torch.Tensor | None = None) -> torch.Tensor:
        return -F.logsigmoid(pos.unsqueeze(-1) - neg).mean()
