"""Which models score by a plain dot product with an item-embedding table.

Fast paths (the chunked softmax cross-entropy, streamed full ranking) need the table itself
instead of going through :meth:`SeqRecModel.score`; a model that overrides ``score`` (Pop, or a
model with item biases) keeps the generic path.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from recexp.models.base import SeqRecModel


def dot_product_items(model: SeqRecModel) -> torch.Tensor | None:
    """The (N+1, D) item table when ``model.score(h) == h @ table.T``, else ``None``."""
    if type(model).score is not SeqRecModel.score:
        return None
    try:
        return model.item_embeddings()
    except NotImplementedError:
        return None


@runtime_checkable
class Scorer(Protocol):
    """The part of a model a loss and the evaluator may use: scores of candidate items for queries."""

    num_items: int

    def score(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """``h`` (..., D) queries; ``items=None``: all ids -> (..., N+1), column 0 padding;
        ``items`` (..., K) per query or (K,) shared -> (..., K)."""
        ...
