"""The two bases every loss module derives from: :class:`FullLoss` and :class:`SampledLoss`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from recexp.errors import ConfigError
from recexp.losses.pure import keep_mask

if TYPE_CHECKING:
    from recexp.models.scoring import Scorer


class FullLoss(nn.Module):
    """Base of the losses over every item's score (``requires = "full"``): no sampler."""

    requires = "full"
    name = "full"

    def check(self, sampler_name: str, num_negatives: int, num_items: int) -> None:
        """One-line ConfigError when this loss cannot train with that sampler on ``num_items``."""
        if sampler_name != "none":
            raise ConfigError(f"loss={self.name} scores every item, so sampler={sampler_name} has nothing to do: "
                              "use sampler=none, or a sampled loss (bce, bpr, sampled_softmax, ...)")

    def from_queries(self, h: torch.Tensor, targets: torch.Tensor, model: Scorer) -> torch.Tensor:
        """The loss of queries ``h`` (M, D) against ``targets`` (M,) under ``model``'s scores. The
        trainer calls this, so a loss with a cheaper route than the (M, N+1) logits takes it here."""
        return self(model.score(h), targets)


class SampledLoss(nn.Module):
    """The one wrapper of the sampled losses (``requires = "sampled"``): ``forward`` turns the
    sampler's log-probabilities into the kept-negatives mask, then calls :meth:`value`, which a
    loss implements as one of the pure functions above. ``num_items`` is passed at instantiate."""

    requires = "sampled"
    name = "sampled"
    #: fewest negatives per positive the loss is defined for
    min_negatives = 1

    def __init__(self, num_items: int = 0) -> None:
        super().__init__()
        self.num_items = num_items

    def check(self, sampler_name: str, num_negatives: int, num_items: int) -> None:
        if sampler_name == "none":
            raise ConfigError(f"loss={self.name} needs negatives: choose a sampler (e.g. sampler=uniform)")
        if num_negatives < self.min_negatives:
            raise ConfigError(self.too_few(num_negatives))

    def too_few(self, num_negatives: int) -> str:
        return (f"loss={self.name} needs at least {self.min_negatives} negatives per positive "
                f"(sampler.num_negatives={num_negatives})")

    def forward(self, pos: torch.Tensor, neg: torch.Tensor, pos_logq: torch.Tensor | None = None,
                neg_logq: torch.Tensor | None = None) -> torch.Tensor:
        """``pos`` (M,), ``neg`` (M, K) scores; ``*_logq`` the sampler's log-probabilities."""
        return self.value(pos, neg, keep_mask(neg, neg_logq), neg_logq)

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        """The loss from scores and the (M, K) 0/1 ``keep`` mask of real negatives."""
        raise NotImplementedError
