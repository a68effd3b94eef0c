"""Moving-average autoregression over the recent history.

The query after position t is a weighted average of the input embeddings of the last ``K``
items (t, t-1, ..., t-K+1); scores are dot products with output item embeddings.

* ``weights: uniform``: moving average, every recent item counts the same;
* ``weights: linear``: weighted moving average, weight K - a for the item a steps back;
* ``weights: exponential``: weight ``decay ** a``;
* ``weights: learned``: learning-based moving average, K position logits (softmax) are parameters.

Weights are renormalised over the positions that hold an item, so short histories are averages
too. Input and output embeddings are separate tables (``tie_embeddings: true`` shares them):
with one shared table the nearest item to an average of history items is a history item, which
the evaluator masks.
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.models.base import SeqRecModel
from recexp.models.common import prev_items
from recexp.runtime.dropout import Dropout


class MovingAverage(SeqRecModel):
    def __init__(self, num_items: int, num_users: int = 0, window: int = 5, weights: str = "uniform",
                 decay: float = 0.5, hidden_size: int = 64, dropout: float = 0.1,
                 tie_embeddings: bool = False) -> None:
        super().__init__(num_items, num_users)
        if window < 1:
            raise ConfigError(f"model.window={window}: must be >= 1")
        if weights not in ("uniform", "linear", "exponential", "learned"):
            raise ConfigError(f"model.weights={weights!r}: expected uniform, linear, exponential or learned")
        if weights == "exponential" and not 0 < decay <= 1:
            raise ConfigError(f"model.decay={decay}: must be in (0, 1]")
        self.window, self.weights = window, weights
        ages = torch.arange(window, dtype=torch.float32)  # 0 = the current (most recent) item
        fixed = {"uniform": torch.ones(window), "linear": window - ages,
                 "exponential": decay ** ages, "learned": torch.ones(window)}[weights]
        self.register_buffer("fixed", fixed)
        self.logits = nn.Parameter(torch.zeros(window)) if weights == "learned" else None
        self.in_emb = nn.Embedding(num_items + 1, hidden_size, padding_idx=0)
        self.out_emb = self.in_emb if tie_embeddings else nn.Embedding(num_items + 1, hidden_size)
        self.drop = Dropout(dropout)
        for emb in {self.in_emb, self.out_emb}:
            nn.init.normal_(emb.weight, std=hidden_size**-0.5)
        with torch.no_grad():
            self.in_emb.weight[0].zero_()

    def position_weights(self) -> torch.Tensor:
        """(K,) unnormalised weight per age (0 = most recent)."""
        return self.logits.softmax(0) if self.logits is not None else self.fixed

    def forward(self, batch: Batch) -> torch.Tensor:
        win = prev_items(batch.seq, self.window)  # (B, L, K), age 0 first
        w = self.position_weights() * (win > 0)  # (B, L, K)
        w = w / w.sum(-1, keepdim=True).clamp(min=1e-12)
        x = self.drop(self.in_emb(win))  # (B, L, K, D)
        return (w.unsqueeze(-1) * x).sum(-2)  # (B, L, D)

    def item_embeddings(self) -> torch.Tensor:
        return self.out_emb.weight
