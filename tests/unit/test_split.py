import numpy as np

from recexp.data.prepare import build_seqs
from recexp.data.split import LeaveOneOut
from recexp.data.synthetic import generate


def _split(df):
    seqs, users, items = build_seqs(df)
    return seqs, LeaveOneOut()(seqs, len(users), len(items))


def test_leave_one_out_holds_out_last_two_and_keeps_order():
    df = generate(num_users=50, num_items=40, mean_length=8, seed=3)
    seqs, data = _split(df)
    for s in range(len(seqs)):
        full = seqs.seq(s)
        train = data.train.seq(s)
        assert np.array_equal(train, full[:-2])  # no validation/test item in training input
        assert np.array_equal(data.valid.hist.seq(s), full[:-2]) and data.valid.targets[s] == full[-2]
        assert np.array_equal(data.test.hist.seq(s), full[:-1]) and data.test.targets[s] == full[-1]
        # the validation example never sees the test item (its future)
        assert len(data.valid.hist.seq(s)) + 1 == len(full) - 1


def test_chronological_order_is_stable_for_ties():
    import pandas as pd

    df = pd.DataFrame({"user": ["a"] * 4, "item": [10, 11, 12, 13], "timestamp": [5.0, 1.0, 5.0, 1.0]})
    seqs, _, item_raw = build_seqs(df)
    assert [item_raw[i - 1] for i in seqs.seq(0)] == ["11", "13", "10", "12"]


def test_short_users_only_train():
    import pandas as pd

    df = pd.DataFrame({"user": [1, 1, 2, 2, 2], "item": [1, 2, 1, 2, 3], "timestamp": range(5)})
    _, data = _split(df)
    assert len(data.valid) == 1 and data.test.targets.tolist() == [3]
    assert data.train.lengths.tolist() == [2, 1]
