"""The model protocol every recommender implements.

A model turns a :class:`Batch` of padded sequences into query vectors and scores candidate
items (or all items) for them. It never computes its own loss and never draws its own
negatives: the trainer pairs it with any loss and sampler.
"""

from __future__ import annotations

import torch
from torch import nn

from recexp.data.batches import Batch
from recexp.data.seqs import SplitData


class SeqRecModel(nn.Module):
    """Base class. Subclasses implement :meth:`forward` (and :meth:`score` if not a dot product)."""

    #: trained by gradient descent; ``False`` for count-based models that only :meth:`fit`.
    trainable: bool = True
    #: losses this model can be paired with (``None``: any); checked at start-up.
    supported_losses: tuple[str, ...] | None = None
    #: what ``loss=auto`` resolves to for this model (a file name in ``conf/loss``).
    default_loss: str = "ce"
    #: :meth:`query` is ``forward(batch)[:, -1]`` computed for that position alone, with gradients:
    #: batches whose only target is the last position (prefix windows) train through it
    last_only_training: bool = False

    def __init__(self, num_items: int, num_users: int = 0) -> None:
        super().__init__()
        self.num_items = num_items  # ids 1..num_items, 0 = padding
        self.num_users = num_users

    def fit(self, data: SplitData) -> None:
        """Count-based models learn here, from ``data.train`` only."""

    def check_training(self, window_mode: str) -> None:
        """Refuse (a ConfigError) a ``trainer.window_mode`` this model cannot be trained on."""

    def forward(self, batch: Batch) -> torch.Tensor:
        """Query vectors per position, (B, L, D); position t may only use items <= t."""
        raise NotImplementedError

    def train_inputs(self, batch: Batch, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """(queries (B, L, D), targets (B, L)) for training; target 0 = no loss at that position.

        Default: next-item prediction at every position. BERT4Rec-style models override this and
        draw their random choices (masks) from ``generator``.
        """
        if batch.targets is None:
            raise RuntimeError("train_inputs needs a training batch (targets=None)")
        if batch.last_only and self.last_only_training:
            return self.query(batch).unsqueeze(1), batch.targets[:, -1:]  # (B, 1, D), (B, 1)
        return self(batch), batch.targets

    def penalty(self) -> torch.Tensor | None:
        """A term the trainer adds to every batch's loss (a regulariser on the weights), or ``None``."""
        return None

    def query(self, batch: Batch) -> torch.Tensor:
        """Query for the next item after the whole input, (B, D)."""
        return self(batch)[:, -1]

    def item_embeddings(self) -> torch.Tensor:
        """(N+1, D) output embeddings used by the default dot-product scorer."""
        raise NotImplementedError

    def score(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of items for queries ``h`` (..., D).

        ``items=None``: all ids -> (..., N+1) (column 0 is padding; the evaluator masks it).
        ``items`` (..., K) per query, or (K,) shared by all queries -> (..., K).
        """
        emb = self.item_embeddings()
        if items is None:
            return h @ emb.T
        if items.dim() == 1:
            return h @ emb[items].T
        return (h.unsqueeze(-2) * emb[items]).sum(-1)
