"""Helpers shared by the seed models: count-model scoring, distance scoring, data checks."""

from __future__ import annotations

import numpy as np
import torch

from recexp.data.batches import Batch
from recexp.data.seqs import Seqs
from recexp.models.base import SeqRecModel


def pick(full: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
    """Candidate scores out of dense scores ``full`` (..., N+1).

    ``items=None`` -> ``full``; (K,) shared -> (..., K); (..., K) per query -> (..., K).
    """
    if items is None:
        return full
    if items.dim() == 1:
        return full[..., items]
    return full.gather(-1, items)


def neg_sq_dist(h: torch.Tensor, emb: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
    """-||h - e_i||^2 for queries ``h`` (..., D) and item points ``emb`` (N+1, D).

    All items: expanded as 2 h.e - |h|^2 - |e|^2 (one matmul, no (..., N+1, D) tensor);
    candidates (..., K) are gathered and computed directly.
    """
    if items is None or items.dim() == 1:
        e = emb if items is None else emb[items]  # (K, D)
        return 2 * h @ e.T - (h * h).sum(-1, keepdim=True) - (e * e).sum(-1)
    return -((h.unsqueeze(-2) - emb[items]) ** 2).sum(-1)


def has_real_timestamps(seqs: Seqs) -> bool:
    """False when the reader stored only the order (``times`` == position in the sequence, as
    for the S3Rec ``user item item ...`` files) or no times at all."""
    return len(seqs.items) > 0 and not np.array_equal(seqs.times, seqs.positions().astype(np.float64))


def prev_items(seq: torch.Tensor, n: int) -> torch.Tensor:
    """The ``n`` most recent items at every position, (B, L) -> (B, L, n); index 0 = the
    current item, 0 where the sequence has no such item (left padding)."""
    B, L = seq.shape
    padded = torch.cat([seq.new_zeros(B, n - 1), seq], dim=1)  # (B, L + n - 1)
    win = padded.unfold(1, n, 1)  # (B, L, n), oldest first
    return win.flip(-1)


class CountModel(SeqRecModel):
    """Base of models fit by counting: :meth:`query` returns dense scores (B, N+1) over all
    items, so :meth:`score` only picks columns."""

    trainable = False
    supported_losses = ()

    def forward(self, batch: Batch) -> torch.Tensor:
        """Only the query after the whole input is defined: (B, 1, N+1)."""
        return self.query(batch).unsqueeze(1)

    def score(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        return pick(h, items)
