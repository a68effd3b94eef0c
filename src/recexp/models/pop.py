"""Most-popular baseline: every user gets the items ranked by training interaction count."""

from __future__ import annotations

import torch

from recexp.data.batches import Batch
from recexp.data.seqs import SplitData
from recexp.models.common import CountModel


class Pop(CountModel):
    """Counts come from the training part of the split only (validation and test targets are
    never counted; the S3Rec paper's PopRec counted all interactions, test items included)."""

    def __init__(self, num_items: int, num_users: int = 0) -> None:
        super().__init__(num_items, num_users)
        self.register_buffer("counts", torch.zeros(num_items + 1))

    def fit(self, data: SplitData) -> None:
        counts = torch.bincount(torch.as_tensor(data.train.items), minlength=self.num_items + 1)
        self.counts.copy_(counts.to(self.counts))

    def query(self, batch: Batch) -> torch.Tensor:
        return self.counts.expand(batch.seq.shape[0], -1)  # (B, N+1), the same for every user
