"""Sampled ranking: the target against N negatives drawn ONCE and saved.

Candidates are drawn per evaluation set (keyed by a hash of its content), candidate seed, N and
strategy, and cached as ``candidates-<key>.npz`` under ``cache_dir``: every model, every epoch
and every later run ranks against the same negatives (RecBole re-draws them for each
evaluation, so two models never see the same candidates). Negatives exclude the user's history
and the target and are distinct (drawn without replacement).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recexp.data.batches import EvalBatches
from recexp.errors import ConfigError, DataError
from recexp.eval.masking import mask_mode
from recexp.eval.metrics import target_rank
from recexp.eval.tally import Tally
from recexp.models.base import SeqRecModel

STRATEGIES = ("uniform", "popularity")


def draw_candidates(data: EvalBatches, num_items: int, n: int, weights: torch.Tensor, seed: int,
                    chunk: int = 1024, exclude_history: bool = True) -> torch.Tensor:
    """(E, n) negatives per example, without replacement, P proportional to ``weights`` (N+1,).

    Gumbel top-k: argmax_n of log w + Gumbel noise is a draw of n distinct items with
    successive-sampling probabilities proportional to w. Excluded items (padding, the history,
    the target) get -inf. Drawn on the CPU with a seeded generator, so the candidates do not
    depend on the device; it runs once per evaluation set, in chunks of ``chunk`` examples
    ((chunk, N+1) noise at a time, never an examples x items matrix).
    """
    if n > num_items:
        raise ConfigError(f"eval.num_negatives={n}: the catalogue has only {num_items} items")
    gen = torch.Generator().manual_seed(int(seed))
    logw = torch.log(weights.double().cpu())  # (N+1,), -inf where weight 0
    logw[0] = float("-inf")
    offsets, items = data.hist.offsets.cpu(), data.hist.items.cpu()
    targets = data.targets.cpu()
    out = []
    for i in range(0, len(targets), chunk):
        rows = torch.arange(i, min(i + chunk, len(targets)))
        u = torch.rand(len(rows), num_items + 1, generator=gen, dtype=torch.float64)
        keys = logw - torch.log(-torch.log(u.clamp_min(1e-300)))  # (C, N+1) log w + Gumbel
        start, end = offsets[rows], offsets[rows + 1]
        lens = end - start
        r = torch.repeat_interleave(torch.arange(len(rows)), lens)
        pos = torch.arange(int(lens.sum())) - torch.repeat_interleave(torch.cumsum(lens, 0) - lens, lens)
        if exclude_history:
            keys[r, items[start[r] + pos]] = float("-inf")  # the user's history
        keys[torch.arange(len(rows)), targets[rows]] = float("-inf")  # the target
        top = keys.topk(n, dim=1)
        if not torch.isfinite(top.values[:, -1]).all():
            raise ConfigError(f"eval.num_negatives={n}: some examples have fewer eligible items "
                              f"(not in history, non-zero weight) than that")
        out.append(top.indices)
    return torch.cat(out) if out else torch.zeros(0, n, dtype=torch.long)


class SampledRanking:
    """Rank the target among itself + ``num_negatives`` fixed negatives; HR/NDCG/MRR@K as in
    full ranking (ties as the expectation over their order). ``mask_history`` as in full ranking:
    ``all`` (negatives never come from the history; a target that repeats it is a miss), ``none``
    (negatives may be history items). ``strategy``: ``uniform`` over items, or ``popularity``
    (proportional to training counts). ``seed`` is the candidate seed, independent of the training
    seed by default so that all runs share one candidate set (set ``eval.seed=${seed}`` to redraw
    per training seed)."""

    mode = "sampled"

    def __init__(self, num_negatives: int = 100, strategy: str = "uniform", seed: int = 0,
                 ks: list[int] = (1, 5, 10), metrics: list[str] = ("hr", "ndcg", "mrr"),
                 batch_size: int = 1024, cache_dir: str | None = None,
                 mask_history: str | bool = "all") -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(f"eval.strategy={strategy!r}: expected one of {list(STRATEGIES)}")
        if num_negatives < 1:
            raise ConfigError(f"eval.num_negatives={num_negatives}: need at least 1")
        self.num_negatives, self.strategy, self.seed = int(num_negatives), strategy, int(seed)
        self.ks, self.metrics = [int(k) for k in ks], list(metrics)
        if max(self.ks) > self.num_negatives + 1:
            raise ConfigError(f"eval.ks={self.ks}: K cannot exceed the {self.num_negatives + 1} candidates")
        self.batch_size = batch_size
        self.mask_history = mask_mode(mask_history)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.item_counts: torch.Tensor | None = None
        self._memo: dict[str, torch.Tensor] = {}

    def set_popularity(self, item_counts: np.ndarray) -> None:
        """Training counts per item (N+1,): the weights of the ``popularity`` strategy."""
        self.item_counts = torch.as_tensor(item_counts)

    def protocol(self) -> dict[str, object]:
        return {"mode": self.mode, "num_negatives": self.num_negatives, "strategy": self.strategy,
                "candidate_seed": self.seed, "mask_history": self.mask_history, "ties": "expected",
                "ks": self.ks}

    def _key(self, data: EvalBatches, weights: torch.Tensor) -> str:
        h = hashlib.sha256()
        for t in (data.hist.offsets, data.hist.items, data.hist.users, data.targets, weights):
            h.update(t.detach().cpu().numpy().tobytes())
        # the history stays out of the candidates unless nothing is masked (the older files' key)
        tail = "" if self.mask_history != "none" else "/with-history"
        h.update(f"{self.num_negatives}/{self.strategy}/{self.seed}{tail}".encode())
        return h.hexdigest()[:16]

    def candidates(self, data: EvalBatches, num_items: int) -> torch.Tensor:
        """(E, num_negatives) negatives for ``data``: from memory, the cache file, or drawn once."""
        if self.strategy == "popularity":
            if self.item_counts is None:
                raise ConfigError("eval.strategy=popularity needs the training counts (set_popularity)")
            weights = self.item_counts.double()
        else:
            weights = torch.ones(num_items + 1, dtype=torch.float64)
        if len(weights) != num_items + 1:
            raise DataError(f"candidate weights cover {len(weights) - 1} items, the model {num_items}")
        key = self._key(data, weights)
        if key in self._memo:
            return self._memo[key]
        path = self.cache_dir / f"candidates-{key}.npz" if self.cache_dir else None
        if path is not None and path.is_file():
            with np.load(path) as z:
                neg = torch.as_tensor(z["negatives"])
        else:
            neg = draw_candidates(data, num_items, self.num_negatives, weights, self.seed,
                                  exclude_history=self.mask_history != "none")
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
                np.savez(tmp, negatives=neg.numpy())
                tmp.replace(path)  # atomic: parallel sweep jobs never read half a file
        self._memo[key] = neg.to(data.device)
        return self._memo[key]

    @torch.no_grad()
    def evaluate(self, model: SeqRecModel, data: EvalBatches, per_user: bool = False, beyond: bool = True
                 ) -> tuple[dict[str, float], pd.DataFrame | None]:
        was_training = model.training
        model.eval()
        neg = self.candidates(data, model.num_items)  # (E, n)
        tally = Tally(self.ks, self.metrics, per_user)
        for rows, batch, targets in data.iterate(self.batch_size):
            cand = torch.cat([targets.unsqueeze(1), neg[rows]], dim=1)  # (B, 1+n), target first
            s = model.score(model.query(batch), cand).float()  # (B, 1+n)
            rank, ties = target_rank(s, torch.zeros_like(targets))
            rep = data.repeats(rows)  # (B,) the target repeats an item of the history
            if self.mask_history == "all":  # masked with the history: a miss
                rank = torch.where(rep, torch.full_like(rank, s.shape[1]), rank)
                ties = torch.where(rep, torch.zeros_like(ties), ties)
            tally.add(rows, rank, ties, rep)
        model.train(was_training)
        return tally.means(len(data)), tally.table(data)
