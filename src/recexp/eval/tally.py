"""What every evaluator does with its ranks: per-example metrics summed on the device, batch by batch
(one host sync per metric, at the end), split into repeat / explore examples, and, when asked for,
kept per example for the per-user table the verdict engine pairs runs on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from recexp.data.batches import EvalBatches
from recexp.eval.masking import RepeatSplit
from recexp.eval.metrics import all_metrics


class Tally:
    """Sums of HR/NDCG/MRR@K (and any extra per-example values) over evaluation batches in any order;
    ``per_user`` also keeps each example's rank, ties, repeat flag and extra values."""

    def __init__(self, ks: list[int], metrics: list[str], per_user: bool = False) -> None:
        self.ks, self.metrics, self.per_user = ks, metrics, per_user
        self.sums: dict[str, torch.Tensor] = {}
        self.split = RepeatSplit()
        self.kept: list[tuple[torch.Tensor, ...]] = []  # (rows, rank, ties, repeats) per batch
        self.extra: list[dict[str, torch.Tensor]] = []

    def add(self, rows: torch.Tensor, rank: torch.Tensor, ties: torch.Tensor, repeats: torch.Tensor,
            extra: dict[str, torch.Tensor] | None = None) -> None:
        """One batch: example rows, target ranks and ties, repeat flags (B,); ``extra``: more
        per-example values (B,) summed with the metrics but left out of the repeat split."""
        values = all_metrics(rank, self.ks, self.metrics, ties)
        self.split.add(values, repeats)
        values |= extra or {}
        for key, v in values.items():
            self.sums[key] = self.sums.get(key, 0) + v.sum()
        if self.per_user:
            self.kept.append((rows, rank, ties, repeats))
            self.extra.append(dict(extra or {}))

    def means(self, n: int) -> dict[str, float]:
        """Each sum over ``n`` examples, and the repeat / explore split."""
        means = {k: float(v) / max(n, 1) for k, v in self.sums.items()}
        return means | self.split.means(self.sums, n)

    def table(self, data: EvalBatches) -> pd.DataFrame | None:
        """One row per example of ``data`` in its order (None without ``per_user``)."""
        if not self.per_user:
            return None
        order = torch.cat([k[0] for k in self.kept]) if self.kept else torch.zeros(0, dtype=torch.long)

        def back(parts: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:  # to example order
            out = torch.empty(len(data), dtype=dtype, device=data.device)
            if parts:
                out[order] = torch.cat(parts)
            return out

        rank = back([k[1] for k in self.kept], torch.long)
        ties = back([k[2] for k in self.kept], torch.long)
        cols = {k: v.cpu().numpy() for k, v in all_metrics(rank, self.ks, self.metrics, ties).items()}
        cols["repeat"] = back([k[3] for k in self.kept], torch.bool).cpu().numpy()
        for key in (self.extra[0] if self.extra else {}):  # per-example extra values
            cols[key] = back([e[key] for e in self.extra], torch.float32).cpu().numpy()
        return pd.DataFrame({"user": data.hist.users.cpu().numpy(), "target": data.targets.cpu().numpy(),
                             "rank": rank.cpu().numpy().astype(np.int64),
                             "ties": ties.cpu().numpy().astype(np.int64), **cols})
