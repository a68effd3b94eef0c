"""Full-ranking evaluation on the device, in batches of users (never a users x items matrix)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from recexp.data.batches import EvalBatches
from recexp.eval.metrics import all_metrics
from recexp.eval.ranking import DEFAULT_BLOCK, Excluded, target_ranks
from recexp.models.base import SeqRecModel


class FullRanking:
    """Rank the target among all items. ``mask_history``: items already in the user's history
    (the full history, not just the model's input window) are removed from the ranking, as in
    the S3Rec protocol; a target that repeats a history item then counts as a miss."""

    mode = "full"

    def __init__(self, ks: list[int] = (5, 10, 20), metrics: list[str] = ("hr", "ndcg", "mrr"),
                 mask_history: bool = True, batch_size: int = 1024, item_block: int = DEFAULT_BLOCK) -> None:
        self.ks, self.metrics = [int(k) for k in ks], list(metrics)
        self.mask_history, self.batch_size = mask_history, batch_size
        self.item_block = int(item_block)

    def protocol(self) -> dict[str, object]:
        return {"mode": self.mode, "mask_history": self.mask_history, "ks": self.ks}

    def scores(self, model: SeqRecModel, data: EvalBatches, rows: torch.Tensor, batch) -> torch.Tensor:
        # contiguous(): a model may return a broadcast view (Pop); masking writes in place.
        s = model.score(model.query(batch)).float().contiguous()  # (B, N+1)
        s[:, 0] = float("-inf")
        if self.mask_history:
            r, items = data.hist.flat_members(rows)
            s.index_put_((r, items), torch.tensor(float("-inf"), device=s.device))
        return s

    def ranks(self, model: SeqRecModel, data: EvalBatches, rows: torch.Tensor, batch, targets: torch.Tensor
              ) -> torch.Tensor:
        """(B,) target ranks, streamed over item blocks (``eval/ranking.py``); same values as
        ``target_rank(self.scores(...), targets)`` except that a masked target gets rank N."""
        excluded = Excluded(*data.hist.flat_members(rows), len(rows)) if self.mask_history else None
        return target_ranks(model, model.query(batch), targets, excluded, self.item_block)

    @torch.no_grad()
    def evaluate(self, model: SeqRecModel, data: EvalBatches, per_user: bool = False
                 ) -> tuple[dict[str, float], pd.DataFrame | None]:
        was_training = model.training
        model.eval()
        sums: dict[str, torch.Tensor] = {}
        ranks, order = [], []
        for rows, batch, targets in data.iterate(self.batch_size):
            rank = self.ranks(model, data, rows, batch, targets)
            for key, v in all_metrics(rank, self.ks, self.metrics).items():
                sums[key] = sums.get(key, 0) + v.sum()
            if per_user:
                ranks.append(rank)
                order.append(rows)
        model.train(was_training)
        n = max(len(data), 1)
        means = {k: float(v) / n for k, v in sums.items()}  # one sync per metric, at the end
        table = None
        if per_user:
            rank = torch.empty(len(data), dtype=torch.long, device=data.device)
            rank[torch.cat(order)] = torch.cat(ranks)  # back to example order
            cols = {k: v.cpu().numpy() for k, v in all_metrics(rank, self.ks, self.metrics).items()}
            table = pd.DataFrame({"user": data.hist.users.cpu().numpy(), "target": data.targets.cpu().numpy(),
                                  "rank": rank.cpu().numpy().astype(np.int64), **cols})
        return means, table
