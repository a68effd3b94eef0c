"""Compact containers: sequences in CSR form and evaluation examples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Seqs:
    """Chronological item sequences in CSR form.

    Sequence ``s`` belongs to ``users[s]`` and holds ``items[offsets[s]:offsets[s+1]]``
    (ids 1..N, 0 is padding) with matching ``times``.
    """

    users: np.ndarray  # (S,) int64, user index 1..U
    offsets: np.ndarray  # (S+1,) int64
    items: np.ndarray  # (nnz,) int64
    times: np.ndarray  # (nnz,) float64

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.users)

    def seq(self, s: int) -> np.ndarray:
        return self.items[self.offsets[s] : self.offsets[s + 1]]

    @staticmethod
    def from_lengths(users: np.ndarray, lengths: np.ndarray, items: np.ndarray, times: np.ndarray) -> Seqs:
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return Seqs(users.astype(np.int64), offsets, items.astype(np.int64), times.astype(np.float64))

    def select_positions(self, keep: np.ndarray) -> Seqs:
        """Keep the interactions where ``keep`` (nnz,) is true; empty sequences are dropped."""
        seq_id = np.repeat(np.arange(len(self.users)), self.lengths)
        new_len = np.bincount(seq_id[keep], minlength=len(self.users))
        nonempty = new_len > 0
        return Seqs.from_lengths(self.users[nonempty], new_len[nonempty], self.items[keep], self.times[keep])

    def positions(self) -> np.ndarray:
        """Index of each interaction within its sequence (nnz,)."""
        lens = self.lengths
        return np.arange(len(self.items)) - np.repeat(self.offsets[:-1], lens)

    def to_dict(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{k}": getattr(self, k) for k in ("users", "offsets", "items", "times")}

    @staticmethod
    def from_dict(d: dict[str, np.ndarray], prefix: str) -> Seqs:
        return Seqs(*(d[f"{prefix}.{k}"] for k in ("users", "offsets", "items", "times")))


@dataclass
class EvalSet:
    """Next-item examples: predict ``targets[e]`` for ``hist.users[e]`` given history ``hist.seq(e)``."""

    hist: Seqs
    targets: np.ndarray  # (E,) int64
    target_times: np.ndarray  # (E,) float64

    def __len__(self) -> int:
        return len(self.targets)

    def repeat_targets(self) -> int:
        """Examples whose target is already in their history (repeat consumption): the figures
        of these depend on the masking convention (``eval.mask_history``)."""
        ex = np.repeat(np.arange(len(self.targets)), self.hist.lengths)  # (nnz,) example of each item
        return int(len(np.unique(ex[self.hist.items == self.targets[ex]])))

    def to_dict(self, prefix: str) -> dict[str, np.ndarray]:
        return {**self.hist.to_dict(f"{prefix}.hist"), f"{prefix}.targets": self.targets,
                f"{prefix}.target_times": self.target_times}

    @staticmethod
    def from_dict(d: dict[str, np.ndarray], prefix: str) -> EvalSet:
        return EvalSet(Seqs.from_dict(d, f"{prefix}.hist"), d[f"{prefix}.targets"], d[f"{prefix}.target_times"])


@dataclass
class SplitData:
    """What a split produces: training sequences and two sealed evaluation sets."""

    train: Seqs
    valid: EvalSet
    test: EvalSet
    num_users: int
    num_items: int
    name: str = ""
    fingerprint: str = ""
    item_raw_ids: np.ndarray | None = None  # (N,) raw id of item i+1, for side information
    user_raw_ids: np.ndarray | None = None  # (U,) raw id of user u+1, for results in the user's own ids

    def raw_users(self, users: np.ndarray) -> np.ndarray:
        """Raw ids of internal user ids 1..U (the internal ids as text when no map is known)."""
        users = np.asarray(users)
        return users.astype(str) if self.user_raw_ids is None else self.user_raw_ids[users - 1]

    def item_counts(self) -> np.ndarray:
        """Interaction count per item id over the training part only (N+1,), index 0 = padding."""
        return np.bincount(self.train.items, minlength=self.num_items + 1)

    def summary(self) -> dict[str, float]:
        return {
            "users": self.num_users,
            "items": self.num_items,
            "train_interactions": int(len(self.train.items)),
            "valid_examples": len(self.valid),
            "test_examples": len(self.test),
            "avg_train_len": float(self.train.lengths.mean()) if len(self.train) else 0.0,
            "valid_repeat_targets": self.valid.repeat_targets(),
            "test_repeat_targets": self.test.repeat_targets(),
        }
