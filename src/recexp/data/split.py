"""Splits turn full chronological sequences into training sequences plus validation and test
examples. Every split keeps each example's history strictly before its target."""

from __future__ import annotations

import numpy as np

from recexp.data.seqs import EvalSet, Seqs, SplitData
from recexp.errors import ConfigError, DataError


def _eval_set(seqs: Seqs, sel: np.ndarray, hist_len: np.ndarray) -> EvalSet:
    """Examples for sequences ``sel``: history = first ``hist_len`` items, target = the next."""
    starts = seqs.offsets[:-1][sel]
    tgt_idx = starts + hist_len
    rows = np.repeat(np.arange(len(sel)), hist_len)
    pos = np.arange(hist_len.sum()) - np.repeat(np.cumsum(hist_len) - hist_len, hist_len)
    flat = starts[rows] + pos
    hist = Seqs.from_lengths(seqs.users[sel], hist_len, seqs.items[flat], seqs.times[flat])
    return EvalSet(hist, seqs.items[tgt_idx], seqs.times[tgt_idx])


class LeaveOneOut:
    """Last item of each user is the test target, the second-last the validation target.

    Users with fewer than ``min_length`` interactions only contribute to training.
    """

    def __init__(self, min_length: int = 3) -> None:
        if min_length < 3:
            raise ConfigError(f"split.min_length={min_length}: leave-one-out needs at least 3")
        self.min_length = min_length

    def __call__(self, seqs: Seqs, num_users: int, num_items: int) -> SplitData:
        lens = seqs.lengths
        evaluated = lens >= self.min_length
        if not evaluated.any():
            raise DataError(f"no user has {self.min_length}+ interactions: nothing to evaluate")
        sel = np.flatnonzero(evaluated)
        valid = _eval_set(seqs, sel, lens[sel] - 2)
        test = _eval_set(seqs, sel, lens[sel] - 1)
        held_out = np.repeat(np.where(evaluated, 2, 0), lens)
        keep = seqs.positions() < np.repeat(lens, lens) - held_out
        train = seqs.select_positions(keep)
        return SplitData(train, valid, test, num_users, num_items)
