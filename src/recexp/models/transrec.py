"""TransRec: Translation-based Recommendation (He, Kang & McAuley, RecSys 2017).

Items are points gamma_i in a transition space (kept inside the unit ball); each user is a
translation vector t_u, added to a global translation T. The next item after l is expected
near gamma_l + T + t_u:

    score(u, l, i) = beta_i - d(gamma_l + T + t_u, gamma_i)

with ``d`` the L2 distance (``distance: l2``, the paper's choice; smoothed as sqrt(d^2 + 1e-5))
or its square. The query is the
translated point (..., D); :meth:`score` handles all items, (K,) shared and (..., K) candidates.
Trained with BPR (the paper's S-BPR).
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.models.base import SeqRecModel
from recexp.models.common import neg_sq_dist, pick


class TransRec(SeqRecModel):
    default_loss = "bpr"

    def __init__(self, num_items: int, num_users: int = 0, hidden_size: int = 64,
                 distance: str = "l2") -> None:
        super().__init__(num_items, num_users)
        if distance not in ("l2", "squared_l2"):
            raise ConfigError(f"model.distance={distance!r}: expected l2 or squared_l2")
        self.distance = distance
        self.item = nn.Embedding(num_items + 1, hidden_size)  # gamma
        self.user = nn.Embedding(num_users + 1, hidden_size)  # t_u, initialised at zero as in the paper
        self.global_t = nn.Parameter(torch.zeros(hidden_size))  # T
        self.bias = nn.Parameter(torch.zeros(num_items + 1))  # beta
        nn.init.normal_(self.item.weight, std=0.1)
        nn.init.zeros_(self.user.weight)

    def points(self) -> torch.Tensor:
        """(N+1, D) item points projected into the unit ball: gamma / max(1, ||gamma||)."""
        w = self.item.weight
        return w / w.norm(dim=-1, keepdim=True).clamp(min=1.0)

    def forward(self, batch: Batch) -> torch.Tensor:
        prev = self.points()[batch.seq]  # (B, L, D)
        return prev + self.global_t + self.user(batch.users).unsqueeze(1)  # (B, L, D)

    def score(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        d2 = -neg_sq_dist(h, self.points(), items)  # (..., N+1) or (..., K)
        # smoothed sqrt: finite gradient at d = 0 (a repeated item) and no blow-up of float32
        # rounding in the expanded d^2 near 0, so all-items and candidate scores agree
        d = (d2.clamp(min=0) + 1e-5).sqrt() if self.distance == "l2" else d2
        return pick(self.bias.expand(*h.shape[:-1], -1), items) - d
