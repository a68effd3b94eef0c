"""FME: factorized Markov embedding, a hybrid of FPMC and PRME.

User-to-item preference is an inner product (as in MF / FPMC), item-to-item transition a
Euclidean distance between the previous item and the candidate in a transition space (as in
PRME's sequential space), plus an item bias:

    score(u, l, i) = <P_u, Q_i> - ||T_l - T_i||^2 + b_i

The query packs ``h = [P_u ; T_l]`` (..., 2D); :meth:`score` splits it. Trained with BPR.
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.data.batches import Batch
from recexp.models.base import SeqRecModel
from recexp.models.common import neg_sq_dist, pick


class FME(SeqRecModel):
    default_loss = "bpr"

    def __init__(self, num_items: int, num_users: int = 0, hidden_size: int = 64) -> None:
        super().__init__(num_items, num_users)
        self.dim = hidden_size
        self.user = nn.Embedding(num_users + 1, hidden_size)  # P
        self.item = nn.Embedding(num_items + 1, hidden_size)  # Q
        self.trans = nn.Embedding(num_items + 1, hidden_size)  # T
        self.bias = nn.Parameter(torch.zeros(num_items + 1))  # b
        for emb in (self.user, self.item, self.trans):
            nn.init.normal_(emb.weight, std=0.1)

    def forward(self, batch: Batch) -> torch.Tensor:
        t = self.trans(batch.seq)  # (B, L, D)
        u = self.user(batch.users).unsqueeze(1).expand_as(t)  # (B, L, D)
        return torch.cat([u, t], dim=-1)  # (B, L, 2D)

    def score(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        hu, ht = h[..., : self.dim], h[..., self.dim :]
        q = self.item.weight
        if items is None or items.dim() == 1:
            pref = hu @ (q if items is None else q[items]).T
        else:
            pref = (hu.unsqueeze(-2) * q[items]).sum(-1)
        bias = pick(self.bias.expand(*h.shape[:-1], -1), items)
        return pref + neg_sq_dist(ht, self.trans.weight, items) + bias
