import numpy as np
import pandas as pd
import pytest

from recexp.data.prepare import build_seqs
from recexp.data.split import Session, Temporal
from recexp.data.synthetic import generate
from recexp.errors import ConfigError, DataError


def _seqs(df: pd.DataFrame):
    seqs, users, items = build_seqs(df)
    return seqs, len(users), len(items)


def _examples(ev):
    return [(int(ev.hist.users[e]), ev.hist.seq(e).tolist(), int(ev.targets[e])) for e in range(len(ev))]


def test_temporal_never_trains_on_interactions_after_the_cut():
    df = generate(num_users=80, num_items=60, mean_length=10, seed=5)
    seqs, nu, ni = _seqs(df)
    split = Temporal(valid_quantile=0.7, test_quantile=0.85)
    data = split(seqs, nu, ni)
    v = np.quantile(seqs.times, 0.7)
    t = np.quantile(seqs.times, 0.85)
    assert len(data.train.items) > 0 and data.train.times.max() < v
    assert len(data.train.items) == int((seqs.times < v).sum())  # and nothing before it is lost
    assert (data.valid.target_times >= v).all() and (data.valid.target_times < t).all()
    assert (data.test.target_times >= t).all()
    for ev in (data.valid, data.test):  # history strictly before the target, in order
        for e in range(len(ev)):
            h = ev.hist.times[ev.hist.offsets[e]:ev.hist.offsets[e + 1]]
            assert len(h) >= 1 and (h <= ev.target_times[e]).all() and (np.diff(h) >= 0).all()


def test_temporal_hand_example():
    # user 1: times 1..6; user 2: times 2, 9; cuts: valid 4, test 6
    df = pd.DataFrame({"user": [1] * 6 + [2, 2], "item": [1, 2, 3, 4, 5, 6, 7, 8],
                       "timestamp": [1, 2, 3, 4, 5, 6, 2, 9]})
    seqs, nu, ni = _seqs(df)
    data = Temporal(valid_time=4, test_time=6)(seqs, nu, ni)
    assert data.train.seq(0).tolist() == [1, 2, 3] and data.train.seq(1).tolist() == [7]
    assert _examples(data.valid) == [(1, [1, 2, 3], 4)]  # user 2 has nothing in [4, 6)
    assert _examples(data.test) == [(1, [1, 2, 3, 4, 5], 6), (2, [7], 8)]


def test_temporal_bad_quantiles_are_config_errors():
    with pytest.raises(ConfigError, match="valid_quantile"):
        Temporal(valid_quantile=0.9, test_quantile=0.5)(*_seqs(generate(num_users=5, num_items=5, seed=0)))


def test_session_boundaries_follow_the_gap():
    # gaps: 10, 100 (> 50: new session), 10 | user 2: 5, 60 (> 50), 5
    df = pd.DataFrame({"user": [1, 1, 1, 1, 2, 2, 2, 2], "item": [1, 2, 3, 4, 5, 6, 7, 8],
                       "timestamp": [0, 10, 110, 120, 0, 5, 65, 70]})
    seqs, nu, ni = _seqs(df)
    sess = Session(gap=50).sessions(seqs)
    assert [sess.seq(s).tolist() for s in range(len(sess))] == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert sess.users.tolist() == [1, 1, 2, 2]
    assert len(Session(gap=60).sessions(seqs)) == 3  # a pause of exactly the gap (user 2) does not cut
    # a single-item session is dropped
    df2 = pd.DataFrame({"user": [1, 1, 1], "item": [1, 2, 3], "timestamp": [0, 1000, 1001]})
    s2 = Session(gap=50).sessions(_seqs(df2)[0])
    assert [s2.seq(s).tolist() for s in range(len(s2))] == [[2, 3]]


def test_session_split_prefix_examples_and_no_future_in_training():
    df = pd.DataFrame({"user": [1] * 9, "item": [1, 2, 3, 4, 5, 6, 7, 8, 9],
                       "timestamp": [0, 1, 2, 100, 101, 102, 200, 201, 202]})
    seqs, nu, ni = _seqs(df)
    data = Session(gap=50, valid_time=100, test_time=200)(seqs, nu, ni)
    assert data.train.seq(0).tolist() == [1, 2, 3]
    assert _examples(data.valid) == [(1, [4], 5), (1, [4, 5], 6)]
    assert _examples(data.test) == [(1, [7], 8), (1, [7, 8], 9)]
    big = generate(num_users=60, num_items=50, mean_length=10, seed=2)
    s, nu, ni = _seqs(big)
    d = Session(gap=3600.0 * 24, valid_quantile=0.7, test_quantile=0.85)(s, nu, ni)
    assert d.train.times.max() < np.quantile(s.times, 0.7)


def test_session_split_without_eval_sessions_is_a_data_error():
    df = pd.DataFrame({"user": [1, 1], "item": [1, 2], "timestamp": [0, 1]})
    with pytest.raises(DataError, match="session"):
        Session(gap=50, valid_time=100, test_time=200)(*_seqs(df))
