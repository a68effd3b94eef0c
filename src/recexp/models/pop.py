"""Most-popular baseline: every user gets the items ranked by training interaction count."""

from __future__ import annotations

import torch

from recexp.data.batches import Batch
from recexp.data.seqs import SplitData
from recexp.models.base import SeqRecModel


class Pop(SeqRecModel):
    """Counts come from the training part of the split only (validation and test targets are
    never counted; the S3Rec paper's PopRec counted all interactions, test items included)."""

    trainable = False
    supported_losses = ()

    def __init__(self, num_items: int, num_users: int = 0) -> None:
        super().__init__(num_items, num_users)
        self.register_buffer("counts", torch.zeros(num_items + 1))

    def fit(self, data: SplitData) -> None:
        counts = torch.bincount(torch.as_tensor(data.train.items), minlength=self.num_items + 1)
        self.counts.copy_(counts.to(self.counts))

    def forward(self, batch: Batch) -> torch.Tensor:
        return torch.zeros(*batch.seq.shape, 1, device=batch.seq.device)

    def score(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        lead = h.shape[:-1]
        if items is None:
            return self.counts.expand(*lead, -1)
        if items.dim() == 1:
            return self.counts[items].expand(*lead, -1)
        return self.counts[items]
