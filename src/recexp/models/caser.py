"""Caser (Tang & Wang, WSDM 2018): convolutional sequence embedding.

The last ``window`` (L) items form an L x d "image". Horizontal filters of heights 1..L slide
over time and are max-pooled (union-level and point-level patterns); vertical filters weigh the
L rows (a learned weighted sum of the embeddings). A fully connected layer gives z; the user
embedding P_u is concatenated and item i scores W'_i [z; P_u] + b'_i with output embeddings W'
separate from the input ones. Every position t is a query over its own last L items (t-L+1..t).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.models.base import SeqRecModel
from recexp.runtime.dropout import Dropout
from recexp.runtime.gemm import Linear


class Caser(SeqRecModel):
    def __init__(self, num_items: int, num_users: int = 0, embedding_size: int = 50, window: int = 5,
                 num_horizontal: int = 16, num_vertical: int = 4, dropout: float = 0.5,
                 use_user: bool = True) -> None:
        super().__init__(num_items, num_users)
        if window < 1:
            raise ConfigError(f"model.window={window}: must be >= 1")
        d = embedding_size
        self.window, self.use_user = window, use_user
        self.item_emb = nn.Embedding(num_items + 1, d, padding_idx=0)
        self.user_emb = nn.Embedding(num_users + 1, d, padding_idx=0) if use_user else None
        self.vertical = nn.Conv2d(1, num_vertical, (window, 1))
        self.horizontal = nn.ModuleList(nn.Conv2d(1, num_horizontal, (h, d)) for h in range(1, window + 1))
        self.fc = Linear(num_vertical * d + num_horizontal * window, d)
        self.drop = Dropout(dropout)
        out = 2 * d if use_user else d
        # output embeddings W' with the bias b' as one extra column: score = [q; 1] . [W'_i; b'_i]
        self.out_emb = nn.Embedding(num_items + 1, out + 1, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=1.0 / d)
        nn.init.normal_(self.out_emb.weight, std=1.0 / out)
        if self.user_emb is not None:
            nn.init.normal_(self.user_emb.weight, std=1.0 / d)
        with torch.no_grad():
            self.out_emb.weight[:, -1].zero_()
            self.item_emb.weight[0].zero_()

    def windows(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, L): for each position t the items t-L+1..t (0 before the start)."""
        padded = F.pad(seq, (self.window - 1, 0))  # (B, T + L - 1)
        return padded.unfold(1, self.window, 1)  # (B, T, L)

    def forward(self, batch: Batch) -> torch.Tensor:
        B, T = batch.seq.shape
        x = self.item_emb(self.windows(batch.seq)).reshape(B * T, 1, self.window, -1)  # (BT, 1, L, d)
        o_v = self.vertical(x).reshape(B * T, -1)  # (BT, n_v * d)
        o_h = [F.relu(conv(x)).squeeze(3).amax(2) for conv in self.horizontal]  # each (BT, n_h)
        z = F.relu(self.fc(self.drop(torch.cat([o_v, *o_h], 1)))).view(B, T, -1)  # (B, T, d)
        parts = [z]
        if self.user_emb is not None:
            parts.append(self.user_emb(batch.users).unsqueeze(1).expand(B, T, -1))  # (B, T, d)
        parts.append(torch.ones(B, T, 1, device=z.device, dtype=z.dtype))  # multiplies the bias column
        return torch.cat(parts, -1)  # (B, T, 2d + 1)

    def item_embeddings(self) -> torch.Tensor:
        return self.out_emb.weight
