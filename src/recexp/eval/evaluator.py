"""Full-ranking evaluation on the device, in batches of users (never a users x items matrix)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from recexp.data.batches import EvalBatches
from recexp.errors import ConfigError
from recexp.eval.beyond import BEYOND, BeyondAccuracy
from recexp.eval.masking import mask_mode
from recexp.eval.ranking import (
    Excluded,
    ItemScores,
    block_for,
    positions_for,
    rows_for,
    streamed_topk,
    target_ranks,
)
from recexp.eval.tally import Tally
from recexp.models.base import SeqRecModel


class Scored(NamedTuple):
    """One scored evaluation batch: its index in ``EvalBatches.iterate``'s order, its example rows
    (B,), the target's rank and ties (B,), whether the target repeats the history (B,), and the
    top-K item ids (B, max K) when beyond-accuracy metrics are asked for."""

    index: int
    rows: torch.Tensor
    rank: torch.Tensor
    ties: torch.Tensor
    repeats: torch.Tensor
    top: torch.Tensor | None = None


class FullRanking:
    """Rank the target among all items. ``mask_history`` (:mod:`recexp.eval.masking`): ``all``
    removes the items of the user's history (the full history, not just the model's input window)
    from the ranking, a repeated target with them (a miss); ``none`` masks nothing. Every metric is
    also reported over the examples whose target repeats the history and over the others."""

    mode = "full"

    def __init__(self, ks: list[int] = (5, 10, 20), metrics: list[str] = ("hr", "ndcg", "mrr"),
                 mask_history: str | bool = "all", batch_size: int = 1024, item_block: int = 0,
                 beyond: list[str] = ()) -> None:
        self.ks, self.metrics = [int(k) for k in ks], list(metrics)
        self.mask_history, self.batch_size = mask_mode(mask_history), batch_size
        self.item_block = int(item_block)  # 0: auto (block_for(device))
        self.beyond, self.item_counts = list(beyond), None
        if set(self.beyond) - set(BEYOND):
            raise ConfigError(f"eval.beyond={self.beyond}: expected a subset of {list(BEYOND)}")

    def set_popularity(self, item_counts: np.ndarray) -> None:
        """Training counts per item (N+1,): enables the beyond-accuracy metrics (``beyond``)."""
        self.item_counts = torch.as_tensor(item_counts)

    def protocol(self) -> dict[str, object]:
        return {"mode": self.mode, "mask_history": self.mask_history, "ties": "expected", "ks": self.ks,
                "beyond": self.beyond}

    @torch.no_grad()
    def evaluate(self, model: SeqRecModel, data: EvalBatches, per_user: bool = False, beyond: bool = True
                 ) -> tuple[dict[str, float], pd.DataFrame | None]:
        """Metrics averaged over ``data`` (and a per-example table with ``per_user``). ``beyond=False``
        skips the beyond-accuracy metrics (the trainer's per-epoch validation: they are
        descriptive, never used for selection, and their top-K lists double the cost)."""
        return self.reduce(data, self.score(model, data, beyond), per_user, beyond)

    @torch.no_grad()
    def score(self, model: SeqRecModel, data: EvalBatches, beyond: bool = True,
              pick: Callable[[int], bool] | None = None) -> Iterator[Scored]:
        """The ranking work, batch by batch (``data.iterate``'s order): each example's rank, ties,
        repeat flag and, with beyond-accuracy metrics, its top-K list. ``pick(i)``: score batch
        ``i`` only when true (a process's share of a distributed evaluation); the per-example
        results do not depend on which other batches are scored."""
        was_training = model.training
        model.eval()
        block = self.item_block or block_for(data.device)
        top_k = bool(beyond and self.beyond and self.item_counts is not None)
        scores = ItemScores(model)  # the item table's blocks, prepared once for the whole pass
        try:
            for i, (rows, batch, targets) in enumerate(data.iterate(self.batch_size, positions_for(data.device))):
                if pick is not None and not pick(i):
                    continue
                h = model.query(batch)  # (B, D)
                # the full history is excluded from the ranking, not just the model's input window
                excluded = (Excluded(*data.hist.flat_members(rows), len(rows))
                            if self.mask_history != "none" else None)
                rank, ties = target_ranks(model, h, targets, excluded, block,  # streamed over item blocks
                                          rows=rows_for(data.device), scores=scores)
                top = streamed_topk(model, h, max(self.ks), excluded, block, scores)[1] if top_k else None
                yield Scored(i, rows, rank, ties, data.repeats(rows), top)  # rep: the target repeats history
        finally:
            model.train(was_training)

    def reduce(self, data: EvalBatches, scored: Iterable[Scored], per_user: bool = False, beyond: bool = True
               ) -> tuple[dict[str, float], pd.DataFrame | None]:
        """The metrics of ``scored`` (every batch of ``data``, in batch order): per-example values
        summed batch by batch, then divided once -- a distributed evaluation that gathers the
        batches of every process gives the single-process figures to the last digit."""
        tally = Tally(self.ks, self.metrics, per_user)
        acc = (BeyondAccuracy(self.item_counts.to(data.device), self.ks, self.beyond)
               if beyond and self.beyond and self.item_counts is not None else None)
        for part in scored:  # top-K lists on the device: (B, max K)
            extra = acc.per_example(part.top) if acc is not None else None
            tally.add(part.rows, part.rank, part.ties, part.repeats, extra)
        means = tally.means(len(data))
        if acc is not None:
            means |= {k: float(v) for k, v in acc.totals().items()}
        return means, tally.table(data)
