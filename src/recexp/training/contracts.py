"""The plug-in contracts: what each swappable part must offer, as ``typing.Protocol``s.

A class satisfies a contract by having these members (no base class needed, although the bases
in ``models/base.py``, ``losses.py`` and ``samplers.py`` provide most of them). Parts talk to each
other only through these members; the trainer and :mod:`recexp.training.parts` use nothing else.

| part | config group | built by |
|---|---|---|
| :class:`Model` | ``model`` | ``parts.build_model`` (``num_items``, ``num_users`` passed at instantiate) |
| :class:`Loss` | ``loss`` | ``parts.build_loss_and_sampler`` (``num_items`` passed at instantiate) |
| :class:`Sampler` | ``sampler`` | ``parts.build_loss_and_sampler`` |
| :class:`Evaluator` | ``eval`` | ``parts.build_evaluator`` |
| :class:`TrainBatches` | ``model.session_parallel`` / ``trainer.window_mode`` | ``parts.build_train_batches`` |
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

from recexp.models.scoring import Scorer

if TYPE_CHECKING:
    import pandas as pd

    from recexp.data.batches import Batch, EvalBatches
    from recexp.data.seqs import Seqs, SplitData
    from recexp.losses.samplers import Negatives


@runtime_checkable
class Model(Scorer, Protocol):
    """A recommender (``SeqRecModel`` implements it; see ``models/base.py``)."""

    trainable: bool  # False: fit by counting in ``fit``, never trained
    supported_losses: tuple[str, ...] | None  # None: any loss
    default_loss: str  # what loss=auto resolves to (a file name in conf/loss)

    def fit(self, data: SplitData) -> None: ...
    def train_inputs(self, batch: Batch, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """(queries (B, L, D), targets (B, L)); ``generator`` for any random draw (masking)."""
        ...
    def query(self, batch: Batch) -> torch.Tensor:
        """(B, D) query for the item after the whole input."""
        ...
    def penalty(self) -> torch.Tensor | None:
        """A regulariser added to every batch's loss (TV-Rec's basis orthogonality), or None."""
        ...


@runtime_checkable
class Loss(Protocol):
    """``requires = "full"``: ``loss(logits (M, N+1), targets (M,))`` and ``from_queries``;
    ``requires = "sampled"``: ``loss(pos (M,), neg (M, K), pos_logq, neg_logq)``."""

    name: str
    requires: str  # "full" | "sampled"

    def check(self, sampler_name: str, num_negatives: int, num_items: int) -> None:
        """Raise a one-line ConfigError when this loss cannot train with that sampler."""
        ...
    def __call__(self, *scores: Any) -> torch.Tensor: ...


@runtime_checkable
class Sampler(Protocol):
    name: str

    @property
    def total_negatives(self) -> int:
        """Negatives per positive (per batch when shared): what a loss checks."""
        ...
    def check(self, num_items: int) -> None:
        """Raise a one-line ConfigError when this sampler cannot serve ``num_items`` items."""
        ...
    def setup(self, item_counts: torch.Tensor, device: torch.device) -> None: ...
    def sample(self, pos: torch.Tensor, batch: Batch, rows: torch.Tensor,
               generator: torch.Generator | None = None) -> Negatives: ...


@runtime_checkable
class Evaluator(Protocol):
    metrics: list[str]  # metric names, e.g. ["hr", "ndcg", "mrr"]

    def set_popularity(self, item_counts: Any) -> None:
        """Training counts per item (N+1,); an evaluator that does not need them ignores them."""
        ...
    def protocol(self) -> dict[str, object]:
        """The evaluation protocol, logged with every run."""
        ...
    def evaluate(self, model: Any, data: EvalBatches, per_user: bool = False, beyond: bool = True
                 ) -> tuple[dict[str, float], pd.DataFrame | None]: ...


class Splitter(Protocol):
    """A split protocol (``split`` group): leave-one-out, temporal, session."""

    def __call__(self, seqs: Seqs, num_users: int, num_items: int) -> SplitData: ...


class TrainBatches(Protocol):
    """What the training loop iterates: ``TrainWindows`` or ``SessionParallel``."""

    def __len__(self) -> int: ...
    def iterate(self, batch_size: int, generator: torch.Generator | None, shuffle: bool = False
                ) -> Iterator[Batch]: ...
