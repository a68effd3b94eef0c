"""Top-k recommendations in raw ids from a :class:`~recexp.serving.bundle.Bundle`: histories are
batched on the model's device, scored by the model's own query/score, and ranked with the same
streamed top-k as evaluation (no users x items matrix)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from recexp.data.batches import Batch, DeviceSeqs
from recexp.data.seqs import Seqs
from recexp.errors import UserError
from recexp.eval.ranking import Excluded, block_for, streamed_topk
from recexp.serving.bundle import Bundle

COLUMNS = ["user", "rank", "item", "score"]


class Recommender:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.device = next(iter(self.model.state_dict().values()), torch.zeros(0)).device
        self.user_index = {u: i + 1 for i, u in enumerate(bundle.user_raw)}
        self.item_index = {it: i + 1 for i, it in enumerate(bundle.item_raw)}
        self.max_len = int(bundle.meta["max_len"])

    def _ids(self, index: dict[str, int], raw: Sequence[str], what: str, prefix: str = "") -> np.ndarray:
        """Internal ids of raw ids; an unknown id is one line naming it."""
        out = np.empty(len(raw), dtype=np.int64)
        for j, r in enumerate(raw):
            idx = index.get(str(r))
            if idx is None:
                raise UserError(f"{prefix}{what} {str(r)!r} is not known to this model (dataset "
                                f"{self.bundle.meta.get('dataset')}: {len(index)} {what}s)")
            out[j] = idx
        return out

    def users(self, users: Sequence[str], prefix: str = "") -> np.ndarray:
        return self._ids(self.user_index, users, "user", prefix)

    def items(self, items: Sequence[str], where: str = "history") -> np.ndarray:
        return self._ids(self.item_index, items, "item", f"{where}: ")

    def for_users(self, users: Sequence[str] | None = None, k: int = 10, extra: Sequence[str] = (),
                  keep_history: bool = False, batch_size: int = 1024) -> pd.DataFrame:
        """Top-``k`` for known users (all when ``users`` is None) after their latest history,
        optionally followed by ``extra`` raw item ids (interactions since training)."""
        h = self.bundle.history
        idx = np.arange(1, len(h) + 1) if users is None else self.users(users)
        idx = idx[h.lengths[idx - 1] > 0]  # a user seen only in a filtered part has no history
        starts, lens = h.offsets[idx - 1], h.lengths[idx - 1]
        flat = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())  # CSR row gather
        seqs = Seqs.from_lengths(idx, lens, h.items[flat], h.times[flat])
        if len(extra):
            add = self.items(extra, "--history")
            rows, times = [], []
            for j in range(len(seqs)):  # interactions since training, one time step apart
                t = seqs.times[seqs.offsets[j]: seqs.offsets[j + 1]]
                rows.append(np.concatenate([seqs.seq(j), add]))
                times.append(np.concatenate([t, t[-1] + 1 + np.arange(len(add), dtype=np.float64)]))
            seqs = _csr(idx, rows, times)
        return self._topk(seqs, self.bundle.user_raw[idx - 1], k, keep_history, batch_size)

    def for_histories(self, histories: Sequence[Sequence[str]], k: int = 10, keep_history: bool = False,
                      labels: Sequence[str] | None = None, batch_size: int = 1024) -> pd.DataFrame:
        """Top-``k`` after each history of raw item ids, for a user the model need not know (user
        index 0: the padding row of models with a user embedding)."""
        rows = []
        for j, hist in enumerate(histories):
            if len(hist) == 0:
                raise UserError(f"history {j}: empty (give at least one item id)")
            rows.append(self.items(hist, f"history {j}"))
        # no timestamps come with a history: it is taken to end now (the last time in the data),
        # one time unit per step, so time-aware models (recent_pop, itemknn_tw) score the present
        h = self.bundle.history
        now = float(h.times.max()) if len(h.times) else 0.0
        times = [now - np.arange(len(r) - 1, -1, -1, dtype=np.float64) for r in rows]
        seqs = _csr(np.zeros(len(rows), dtype=np.int64), rows, times)
        names = np.asarray(labels if labels is not None else [str(j) for j in range(len(rows))], dtype=object)
        return self._topk(seqs, names, k, keep_history, batch_size)

    @torch.no_grad()
    def _topk(self, seqs: Seqs, names: np.ndarray, k: int, keep_history: bool, batch_size: int) -> pd.DataFrame:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise UserError(f"k={k!r}: must be a whole number, at least 1")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise UserError(f"batch_size={batch_size!r}: must be a whole number, at least 1")
        k = min(int(k), self.model.num_items)
        dev = DeviceSeqs(seqs, self.device)
        block = block_for(self.device)
        scores, items = [], []
        for lo in range(0, len(seqs), batch_size):
            rows = torch.arange(lo, min(lo + batch_size, len(seqs)), device=self.device)
            width = int(min(seqs.lengths[lo: lo + batch_size].max(), self.max_len))
            seq, t = dev.last(rows, max(width, 1))
            h = self.model.query(Batch(seq=seq, users=dev.users[rows], times=t))  # (B, D)
            # the whole history is left out (not only the model's window), as in evaluation
            excluded = None if keep_history else Excluded(*dev.flat_members(rows), len(rows))
            s, i = streamed_topk(self.model, h, k, excluded, block)  # (B, k) each
            scores.append(s.float().cpu())
            items.append(i.cpu())
        if not scores:
            return pd.DataFrame({c: [] for c in COLUMNS})
        s, i = torch.cat(scores).numpy(), torch.cat(items).numpy()  # (R, k)
        ok = np.isfinite(s).ravel()  # fewer than k items left after removing the history
        return pd.DataFrame({"user": np.repeat(names, k)[ok], "rank": np.tile(np.arange(1, k + 1), len(s))[ok],
                             "item": self.bundle.item_raw[i.ravel()[ok] - 1], "score": s.ravel()[ok]})


def _csr(users: np.ndarray, rows: list[np.ndarray], times: list[np.ndarray]) -> Seqs:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    items = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    stamps = np.concatenate(times) if times else np.zeros(0, dtype=np.float64)
    return Seqs.from_lengths(np.asarray(users), lengths, items, stamps)
