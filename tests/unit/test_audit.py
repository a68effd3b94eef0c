"""The leakage audit against a split small enough to count by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recexp.data.audit import audit, audit_json, render
from recexp.data.seqs import EvalSet, Seqs, SplitData


def tiny_split() -> SplitData:
    # user 1 trains on items 1, 2 (t = 1, 2); user 2 on 3, 1, 1 (t = 5, 6, 6: one exact duplicate)
    train = Seqs.from_lengths(np.array([1, 2]), np.array([2, 3]), np.array([1, 2, 3, 1, 1]),
                              np.array([1.0, 2.0, 5.0, 6.0, 6.0]))
    # test: user 1 -> item 2 at t = 3 (repeats its history; 3 of 5 training interactions are later),
    # user 2 -> item 4 at t = 7 (never trained on; nothing later)
    hist = Seqs.from_lengths(np.array([1, 2]), np.array([2, 3]), np.array([1, 2, 3, 1, 1]),
                             np.array([1.0, 2.0, 5.0, 6.0, 6.0]))
    test = EvalSet(hist, np.array([2, 4]), np.array([3.0, 7.0]))
    return SplitData(train, test, test, num_users=2, num_items=4)


def test_audit_figures_by_hand() -> None:
    fig = audit(tiny_split())
    assert fig["after_target_median"] == pytest.approx(0.3)  # users: 3/5 and 0/5
    assert fig["after_target_mean"] == pytest.approx(0.3)
    assert fig["users_above_10pct"] == pytest.approx(0.5)
    assert fig["target_repeats_history"] == pytest.approx(0.5)
    assert fig["test_items_unseen_in_train"] == pytest.approx(0.5)
    assert fig["train_repeated_user_item"] == pytest.approx(0.2)
    assert fig["train_exact_duplicates"] == pytest.approx(0.2)


def test_positions_are_not_a_timeline() -> None:
    fig = audit(tiny_split(), real_time=False)
    assert "after_target_median" not in fig and "positions" in str(fig["timeline"])
    assert "n/a" in render(fig, "t")
    tag = json.loads(audit_json(tiny_split(), {"format": "seqtxt"}))
    assert tag["target_repeats_history"] == 0.5 and "timeline" in tag
