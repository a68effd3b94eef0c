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


def _time_cuts(times: np.ndarray, valid_quantile: float, test_quantile: float,
               valid_time: float | None, test_time: float | None) -> tuple[float, float]:
    """(validation cut, test cut) as timestamps: explicit times win over quantiles of all
    interaction times."""
    if not 0.0 < valid_quantile <= test_quantile < 1.0:
        raise ConfigError(f"split.valid_quantile={valid_quantile}, split.test_quantile={test_quantile}: "
                          "need 0 < valid_quantile <= test_quantile < 1")
    v = float(valid_time) if valid_time is not None else float(np.quantile(times, valid_quantile))
    t = float(test_time) if test_time is not None else float(np.quantile(times, test_quantile))
    if v > t:
        raise ConfigError(f"split.valid_time={v} is after split.test_time={t}")
    return v, t


def _count_before(seqs: Seqs, cut: float) -> np.ndarray:
    """Interactions of each sequence strictly before ``cut`` (S,). Sequences are time-sorted, so
    this is also the index of the first interaction at or after the cut."""
    seq_id = np.repeat(np.arange(len(seqs)), seqs.lengths)
    return np.bincount(seq_id, weights=seqs.times < cut, minlength=len(seqs)).astype(np.int64)


class Temporal:
    """One global timeline: training gets only interactions before the validation cut, so no
    user's future reaches training.

    Validation target: each user's first interaction in [valid cut, test cut); test target: the
    first at or after the test cut. An example's history is all of the user's interactions before
    its target (those after the validation cut are model input only, never trained on). Users
    with fewer than ``min_history`` earlier interactions are not evaluated.
    """

    def __init__(self, valid_quantile: float = 0.8, test_quantile: float = 0.9, valid_time: float | None = None,
                 test_time: float | None = None, min_history: int = 1) -> None:
        if min_history < 1:
            raise ConfigError(f"split.min_history={min_history}: an example needs at least 1 history item")
        self.valid_quantile, self.test_quantile = float(valid_quantile), float(test_quantile)
        self.valid_time, self.test_time, self.min_history = valid_time, test_time, int(min_history)

    def __call__(self, seqs: Seqs, num_users: int, num_items: int) -> SplitData:
        v, t = _time_cuts(seqs.times, self.valid_quantile, self.test_quantile, self.valid_time, self.test_time)
        lens, starts = seqs.lengths, seqs.offsets[:-1]
        hv, ht = _count_before(seqs, v), _count_before(seqs, t)
        # index of the first interaction at/after the cut; its time decides the validation set
        first_v_time = seqs.times[np.minimum(starts + hv, max(len(seqs.items) - 1, 0))]
        has_v = (hv < lens) & (first_v_time < t) & (hv >= self.min_history)
        has_t = (ht < lens) & (ht >= self.min_history)
        if not has_t.any():
            raise DataError(f"temporal split: no user has an interaction after the test cut {t} with "
                            f"{self.min_history}+ before it (test_quantile={self.test_quantile})")
        if not has_v.any():
            raise DataError(f"temporal split: no user has an interaction between the cuts {v} and {t}")
        sv, st = np.flatnonzero(has_v), np.flatnonzero(has_t)
        train = seqs.select_positions(seqs.times < v)
        return SplitData(train, _eval_set(seqs, sv, hv[sv]), _eval_set(seqs, st, ht[st]), num_users, num_items)


class Session:
    """Session-based next-item evaluation (GRU4Rec / NARM style).

    A user's interactions are cut into sessions wherever more than ``gap`` seconds pass between
    two of them; sessions shorter than ``min_session_length`` are dropped. A session goes to the
    test set if it ends at or after the test cut, to validation if it ends at or after the
    validation cut, else to training (so every training interaction precedes the validation cut).
    Every position but the first of an evaluation session is an example whose history is the
    session prefix only (anonymous sessions: earlier sessions are not visible).
    """

    def __init__(self, gap: float = 1800.0, min_session_length: int = 2, valid_quantile: float = 0.8,
                 test_quantile: float = 0.9, valid_time: float | None = None,
                 test_time: float | None = None) -> None:
        if gap <= 0:
            raise ConfigError(f"split.gap={gap}: the inactivity gap must be > 0 seconds")
        if min_session_length < 2:
            raise ConfigError(f"split.min_session_length={min_session_length}: a session needs 2+ items")
        self.gap, self.min_session_length = float(gap), int(min_session_length)
        self.valid_quantile, self.test_quantile = float(valid_quantile), float(test_quantile)
        self.valid_time, self.test_time = valid_time, test_time

    def sessions(self, seqs: Seqs) -> Seqs:
        """Each user sequence cut at gaps > ``gap``; one row per kept session."""
        pos = seqs.positions()
        # a session starts at a user's first item, or after a pause longer than the gap
        new = np.ones(len(seqs.items), dtype=bool)
        new[1:] = (pos[1:] == 0) | (np.diff(seqs.times) > self.gap)
        sess_id = np.cumsum(new) - 1  # (nnz,)
        lens = np.bincount(sess_id)
        owner = np.repeat(np.arange(len(seqs)), seqs.lengths)[new]  # sequence of each session
        keep = (lens >= self.min_session_length)[sess_id]
        out = Seqs.from_lengths(seqs.users[owner], lens, seqs.items, seqs.times)
        return out.select_positions(keep)

    def __call__(self, seqs: Seqs, num_users: int, num_items: int) -> SplitData:
        v, t = _time_cuts(seqs.times, self.valid_quantile, self.test_quantile, self.valid_time, self.test_time)
        sess = self.sessions(seqs)
        if len(sess) == 0:
            raise DataError(f"session split: no session has {self.min_session_length}+ items (gap={self.gap}s)")
        end = sess.times[sess.offsets[1:] - 1]  # (S,) time of each session's last item
        part = np.where(end >= t, 2, np.where(end >= v, 1, 0))  # 0 train, 1 valid, 2 test
        sets = []
        for p, name in ((1, "validation"), (2, "test")):
            sel = np.flatnonzero(part == p)
            if len(sel) == 0:
                raise DataError(f"session split: no {name} session (cuts {v}, {t}; gap={self.gap}s)")
            n_ex = sess.lengths[sel] - 1
            rows = np.repeat(sel, n_ex)  # every prefix of length 1..len-1 is an example
            hist_len = np.arange(len(rows)) - np.repeat(np.cumsum(n_ex) - n_ex, n_ex) + 1
            sets.append(_eval_set(sess, rows, hist_len))
        train = sess.select_positions(np.repeat(part == 0, sess.lengths))
        return SplitData(train, sets[0], sets[1], num_users, num_items)
