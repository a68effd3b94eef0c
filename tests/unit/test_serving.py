"""Pure parts of model serving: latest histories, refusal of non-plain bundle values, pyfunc input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recexp.data.seqs import EvalSet, Seqs, SplitData
from recexp.errors import UserError
from recexp.serving.bundle import BundleError, _plain, latest_histories
from recexp.serving.pyfunc import RecexpModel


def _seqs(users: list[int], rows: list[list[int]]) -> Seqs:
    lengths = np.array([len(r) for r in rows])
    items = np.concatenate([np.array(r) for r in rows]) if rows else np.zeros(0)
    return Seqs.from_lengths(np.array(users), lengths, items, items.astype(float) * 10)


def _ev(users: list[int], hists: list[list[int]], targets: list[int]) -> EvalSet:
    return EvalSet(_seqs(users, hists), np.array(targets), np.array(targets, dtype=float) * 10)


def test_latest_history_is_the_longest_known_sequence_with_its_target():
    # user 1: leave-one-out (test example is the longest); user 2: only training (too short to
    # evaluate); user 3: no sequence at all (filtered out of every part)
    train = _seqs([1, 2], [[1, 2, 3], [7, 8]])
    valid = _ev([1], [[1, 2, 3]], [4])
    test = _ev([1], [[1, 2, 3, 4]], [5])
    h = latest_histories(SplitData(train, valid, test, num_users=3, num_items=9))
    assert h.users.tolist() == [1, 2, 3]
    assert h.seq(0).tolist() == [1, 2, 3, 4, 5] and h.seq(1).tolist() == [7, 8] and h.seq(2).tolist() == []
    assert h.times[h.offsets[0]: h.offsets[1]].tolist() == [10, 20, 30, 40, 50]


@pytest.mark.parametrize("value", [{"_target_": "os.system"}, "${oc.env:HOME}", [1, {"a": b"x"}]])
def test_bundle_values_must_be_plain(value):
    with pytest.raises(BundleError, match="refuses|unexpected value"):
        _plain({"k": value}, "bundle.json")


def test_plain_values_pass_through():
    assert _plain({"a": [1, 2.5, "x", None, True], "b": {"c": 1}}, "w") == {"a": [1, 2.5, "x", None, True],
                                                                            "b": {"c": 1}}


def test_pyfunc_needs_a_user_or_history_column():
    with pytest.raises(UserError, match="'history' or a 'user' column"):
        RecexpModel(None).predict(pd.DataFrame({"items": ["1 2"]}))


def test_from_pandas_times_and_ids():
    from recexp.api import Dataset

    when = pd.to_datetime(["1970-01-01 00:00:10", "1970-01-02 00:00:00"])
    df = pd.DataFrame({"u": [7, 7], "i": ["a", "b"], "t": when})
    d = Dataset.from_pandas(df, user="u", item="i", time="t")
    assert d.frame["timestamp"].tolist() == [10.0, 86400.0] and d.frame["user_id"].tolist() == ["7", "7"]
    aware = Dataset.from_pandas(df.assign(t=when.tz_localize("Europe/Paris")), user="u", item="i", time="t")
    assert aware.frame["timestamp"].tolist() == [10.0 - 3600, 86400.0 - 3600]
    assert Dataset.from_pandas(df, user="u", item="i", time=None).frame["timestamp"].tolist() == [0, 1]
    with pytest.raises(UserError, match=r"row 1 is not a number"):
        Dataset.from_pandas(df.assign(t=["1", "x"]), user="u", item="i", time="t")
