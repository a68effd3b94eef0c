import numpy as np
import pandas as pd
import pytest
import torch

from recexp.data.batches import EvalBatches
from recexp.data.prepare import build_seqs
from recexp.data.split import LeaveOneOut
from recexp.data.synthetic import generate
from recexp.errors import ConfigError
from recexp.eval.sampled import SampledRanking
from recexp.models.base import SeqRecModel

CPU = torch.device("cpu")


def _data(num_users: int = 120, num_items: int = 80, seed: int = 4):
    seqs, users, items = build_seqs(generate(num_users=num_users, num_items=num_items, mean_length=10, seed=seed))
    return LeaveOneOut()(seqs, len(users), len(items))


def test_candidates_identical_across_runs_and_exclude_history(tmp_path):
    data = _data()
    eb = EvalBatches(data.test, 50, CPU)
    first = SampledRanking(num_negatives=20, seed=3, cache_dir=str(tmp_path)).candidates(eb, data.num_items)
    assert len(list(tmp_path.glob("candidates-*.npz"))) == 1  # saved once
    # a second "run": a new evaluator reads the saved file; a third draws again without a cache
    again = SampledRanking(num_negatives=20, seed=3, cache_dir=str(tmp_path)).candidates(eb, data.num_items)
    fresh = SampledRanking(num_negatives=20, seed=3).candidates(eb, data.num_items)
    assert torch.equal(first, again) and torch.equal(first, fresh)
    other = SampledRanking(num_negatives=20, seed=4).candidates(eb, data.num_items)
    assert not torch.equal(first, other)
    neg = first.numpy()
    assert neg.shape == (len(data.test), 20) and neg.min() >= 1 and neg.max() <= data.num_items
    for e in range(len(data.test)):
        hist = set(data.test.hist.seq(e).tolist()) | {int(data.test.targets[e])}
        assert not hist & set(neg[e].tolist())  # never the history or the target
        assert len(set(neg[e].tolist())) == 20  # distinct


def test_popularity_strategy_only_draws_trained_items():
    data = _data(num_items=300)
    counts = data.item_counts()
    ev = SampledRanking(num_negatives=10, strategy="popularity")
    ev.set_popularity(counts)
    neg = ev.candidates(EvalBatches(data.valid, 50, CPU), data.num_items)
    assert (counts[neg.numpy()] > 0).all()


class _FixedScores(SeqRecModel):
    """Scores every query the same: item i gets ``table[i]``."""

    trainable = False

    def __init__(self, table: list[float]) -> None:
        super().__init__(num_items=len(table) - 1)
        self.register_buffer("table", torch.tensor(table))

    def query(self, batch) -> torch.Tensor:
        return torch.zeros(batch.seq.shape[0], 1)

    def score(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        return self.table[items]


def test_sampled_rank_hand_computed():
    # valid examples: user 1 hist [1] -> target 2, the only eligible negatives are 3 and 4;
    # user 2 hist [4] -> target 1, negatives 2 and 3.
    df = pd.DataFrame({"user": [1, 1, 1, 2, 2, 2], "item": [1, 2, 3, 4, 1, 3], "timestamp": range(6)})
    seqs, users, items = build_seqs(df)
    data = LeaveOneOut()(seqs, len(users), len(items))
    model = _FixedScores([0.0, 0.9, 0.5, 0.7, 0.1])
    ev = SampledRanking(num_negatives=2, ks=[1, 2], metrics=["hr", "ndcg"])
    eb = EvalBatches(data.valid, 10, CPU)
    assert [sorted(r) for r in ev.candidates(eb, 4).tolist()] == [[3, 4], [2, 3]]
    means, table = ev.evaluate(model, eb, per_user=True)
    # user 1: target 0.5 vs 0.7, 0.1 -> rank 1; user 2: target 0.9 beats 0.5, 0.7 -> rank 0
    assert table["rank"].tolist() == [1, 0]
    assert means["hr_1"] == 0.5 and means["hr_2"] == 1.0
    assert means["ndcg_2"] == pytest.approx((1 / np.log2(3) + 1) / 2)


def test_too_many_negatives_is_one_line():
    data = _data(num_items=20)
    with pytest.raises(ConfigError, match="eval.num_negatives=30"):
        SampledRanking(num_negatives=30, ks=[1]).candidates(EvalBatches(data.test, 50, CPU), data.num_items)
    with pytest.raises(ConfigError, match="eval.strategy"):
        SampledRanking(strategy="zipf")


def _repeat_data():
    # user 1: 1 2 1 2 -> valid: hist [1, 2, 1] target 2 (a repeat); user 2: 3 4 5 6 -> no repeat
    df = pd.DataFrame({"user": [1] * 4 + [2] * 4, "item": [1, 2, 1, 2, 3, 4, 5, 6], "timestamp": range(8)})
    seqs, users, items = build_seqs(df)
    return LeaveOneOut()(seqs, len(users), len(items))


def test_sampled_follows_the_same_masking_rule_as_full_ranking():
    """all: a repeated target is a miss (masked with the history, as in full ranking); none: it
    is ranked, and negatives may come from the history; except_target is refused."""
    data = _repeat_data()
    eb = EvalBatches(data.valid, 10, CPU)
    rep = eb.repeats(torch.arange(2))
    assert data.valid.repeat_targets() == 1 and rep.sum() == 1
    table = [0.0] + [0.1 * i for i in range(1, data.num_items + 1)]
    table[int(data.valid.targets[int(rep.nonzero())])] = 9.0  # the repeated target scores highest
    model = _FixedScores(table)
    got = {m: SampledRanking(num_negatives=2, ks=[1], metrics=["hr"], mask_history=m).evaluate(model, eb)[0]["hr_1"]
           for m in ("none", "all")}
    assert got["none"] > got["all"]  # the repeated target (scored highest) is a miss under all
    with pytest.raises(ConfigError, match="except_target: refused"):
        SampledRanking(num_negatives=20, mask_history="except_target")
    with_hist = SampledRanking(num_negatives=5, ks=[1], mask_history="none").candidates(eb, data.num_items)
    e = int(rep.nonzero())
    hist = set(data.valid.hist.seq(e).tolist()) - {int(data.valid.targets[e])}
    assert hist & set(with_hist[e].tolist())  # a history item is a candidate when nothing is masked
    with pytest.raises(ConfigError, match="eval.mask_history='some'"):
        SampledRanking(mask_history="some")


def test_constant_scorer_sampled_gets_k_over_candidates():
    data = _data()
    eb = EvalBatches(data.test, 50, CPU)
    model = _FixedScores([0.0] * (data.num_items + 1))
    means, _ = SampledRanking(num_negatives=19, ks=[1, 5], metrics=["hr"], mask_history="none").evaluate(model, eb)
    assert means["hr_1"] == pytest.approx(1 / 20) and means["hr_5"] == pytest.approx(5 / 20)
