"""FPMC: Factorized Personalized Markov Chains (Rendle, Freudenthaler & Schmidt-Thieme, WWW 2010).

    x(u, l, i) = <V_u^{U,I}, V_i^{I,U}>  +  mean_{l in prev} <V_i^{I,L}, V_l^{L,I}>

a matrix-factorisation term (user taste) plus a factorised item-to-item transition term from
the previous item(s) (the paper's "basket" is the last ``prev_items`` items here). Both terms
are one dot product of concatenations, so the default scorer applies:
``query = [V_u^{UI} ; mean V_l^{LI}]``, ``item = [V_i^{IU} ; V_i^{IL}]``. Trained with BPR.
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.models.base import SeqRecModel
from recexp.models.common import prev_items


class FPMC(SeqRecModel):
    default_loss = "bpr"

    def __init__(self, num_items: int, num_users: int = 0, hidden_size: int = 64, prev_items: int = 1,
                 use_user: bool = True) -> None:
        super().__init__(num_items, num_users)
        if prev_items < 1:
            raise ConfigError(f"model.prev_items={prev_items}: must be >= 1")
        self.prev, self.use_user = prev_items, use_user
        self.user_emb = nn.Embedding(num_users + 1, hidden_size)  # V^{U,I}; 0 unused
        self.item_u = nn.Embedding(num_items + 1, hidden_size)  # V^{I,U}
        self.item_l = nn.Embedding(num_items + 1, hidden_size)  # V^{I,L} (next item)
        self.prev_l = nn.Embedding(num_items + 1, hidden_size, padding_idx=0)  # V^{L,I} (previous item)
        for emb in (self.user_emb, self.item_u, self.item_l, self.prev_l):
            nn.init.normal_(emb.weight, std=0.1)
        with torch.no_grad():
            self.prev_l.weight[0].zero_()

    def forward(self, batch: Batch) -> torch.Tensor:
        prev = prev_items(batch.seq, self.prev)  # (B, L, n)
        n_valid = (prev > 0).sum(-1, keepdim=True).clamp(min=1)  # (B, L, 1)
        trans = self.prev_l(prev).sum(-2) / n_valid  # (B, L, D); padding rows are zero vectors
        user = self.user_emb(batch.users).unsqueeze(1).expand_as(trans)  # (B, L, D)
        if not self.use_user:
            user = torch.zeros_like(user)
        return torch.cat([user, trans], dim=-1)  # (B, L, 2D)

    def item_embeddings(self) -> torch.Tensor:
        return torch.cat([self.item_u.weight, self.item_l.weight], dim=-1)  # (N+1, 2D)
