"""Negative samplers: tensor ops on the training device, no per-row Python.

A sampler is set up once with the training item counts, then ``sample(pos, batch, rows)``
returns :class:`Negatives` for the ``M`` positives ``pos`` (``rows`` maps each to its batch row,
whose sequence is the user's visible history). Each sampler reports the log-probability of what
it drew so sampled softmax can apply the logQ correction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from recexp.data.batches import Batch


@dataclass
class Negatives:
    ids: torch.Tensor  # (M, K) per positive, or (K,) shared by all positives
    log_q: torch.Tensor | None = None  # same shape as ids: log P(draw)
    pos_log_q: torch.Tensor | None = None  # (M,) log P(positive would be drawn)


class Sampler:
    """Base: ``num_negatives`` per positive (or shared), never the positive itself."""

    name = "base"

    def __init__(self, num_negatives: int = 1, shared: bool = False, exclude: str = "positive") -> None:
        if exclude not in ("positive", "history", "none"):
            raise ValueError(f"sampler.exclude={exclude!r}: expected positive|history|none")
        self.num_negatives, self.shared, self.exclude = num_negatives, shared, exclude
        self.num_items = 0

    def setup(self, item_counts: torch.Tensor, device: torch.device) -> None:
        self.num_items = len(item_counts) - 1
        self.device = device

    def sample(self, pos: torch.Tensor, batch: Batch, rows: torch.Tensor,
               generator: torch.Generator | None = None) -> Negatives:
        raise NotImplementedError


class NoSampler(Sampler):
    """For full-softmax losses: nothing to draw."""

    name = "none"

    def __init__(self) -> None:
        super().__init__(num_negatives=0)

    def sample(self, pos, batch, rows, generator=None) -> Negatives:  # noqa: ANN001
        raise RuntimeError("sampler=none draws no negatives; pair it with a full loss such as loss=ce")


class UniformSampler(Sampler):
    """Uniform over 1..N. Collisions with the positive (or the history) are redrawn a few
    times in a vectorized loop; the rare survivors are kept (their effect is negligible)."""

    name = "uniform"

    def _draw(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        return torch.randint(1, self.num_items + 1, shape, device=self.device, generator=generator)

    def sample(self, pos: torch.Tensor, batch: Batch, rows: torch.Tensor,
               generator: torch.Generator | None = None) -> Negatives:
        K = self.num_negatives
        if self.shared:
            ids = self._draw((K,), generator)
        else:
            ids = self._draw((len(pos), K), generator)
            if self.exclude != "none":
                for _ in range(3):  # fixed rounds: no host-device sync to test for "done"
                    bad = ids == pos.unsqueeze(1)
                    if self.exclude == "history":
                        bad |= (ids.unsqueeze(-1) == batch.seq[rows].unsqueeze(1)).any(-1)
                    ids = torch.where(bad, self._draw(ids.shape, generator), ids)
        log_q = -math.log(self.num_items)
        return Negatives(ids, torch.full(ids.shape, log_q, device=ids.device),
                         torch.full(pos.shape, log_q, device=pos.device))
