"""PRME: Personalized Ranking Metric Embedding (Feng et al., IJCAI 2015).

User preference and sequential transition are Euclidean distances in two spaces:

    D(u, l, i) = alpha * ||X_u^P - X_i^P||^2 + (1 - alpha) * ||X_l^S - X_i^S||^2,   score = -D

with ``l`` the previous item. The query packs both query points, ``h = [X_u^P ; X_l^S]``
(..., 2D); :meth:`score` splits it again, for all items, (K,) shared or (..., K) candidates.
Trained with BPR (the paper's pairwise objective).
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.models.base import SeqRecModel
from recexp.models.common import neg_sq_dist


class PRME(SeqRecModel):
    default_loss = "bpr"

    def __init__(self, num_items: int, num_users: int = 0, hidden_size: int = 64, alpha: float = 0.2) -> None:
        super().__init__(num_items, num_users)
        if not 0 <= alpha <= 1:
            raise ConfigError(f"model.alpha={alpha}: must be in [0, 1]")
        self.alpha, self.dim = alpha, hidden_size
        self.user_p = nn.Embedding(num_users + 1, hidden_size)  # X^P of users
        self.item_p = nn.Embedding(num_items + 1, hidden_size)  # X^P of items
        self.item_s = nn.Embedding(num_items + 1, hidden_size)  # X^S: the sequential space
        for emb in (self.user_p, self.item_p, self.item_s):
            nn.init.normal_(emb.weight, std=0.1)

    def forward(self, batch: Batch) -> torch.Tensor:
        s = self.item_s(batch.seq)  # (B, L, D): the previous item's point, per position
        u = self.user_p(batch.users).unsqueeze(1).expand_as(s)  # (B, L, D)
        return torch.cat([u, s], dim=-1)  # (B, L, 2D)

    def score(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        hu, hs = h[..., : self.dim], h[..., self.dim :]
        return (self.alpha * neg_sq_dist(hu, self.item_p.weight, items)
                + (1 - self.alpha) * neg_sq_dist(hs, self.item_s.weight, items))
