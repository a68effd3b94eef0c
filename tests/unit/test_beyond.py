import math

import numpy as np
import pandas as pd
import pytest
import torch

from recexp.data.batches import EvalBatches
from recexp.data.prepare import build_seqs
from recexp.data.split import LeaveOneOut
from recexp.errors import ConfigError
from recexp.eval.beyond import BeyondAccuracy
from recexp.eval.evaluator import FullRanking
from recexp.models.pop import Pop


def test_beyond_accuracy_hand_computed():
    counts = torch.tensor([0, 6, 3, 1, 0])  # items 1..4, 10 training interactions
    acc = BeyondAccuracy(counts, ks=[1, 2], names=["coverage", "avgpop", "novelty"])
    v = acc.per_example(torch.tensor([[1, 2], [1, 3]]))
    assert v["avgpop_1"].tolist() == [6.0, 6.0]
    assert v["avgpop_2"].tolist() == [4.5, 3.5]

    def p(c: int) -> float:  # add-one smoothed popularity: (count + 1) / (interactions + items)
        return (c + 1) / (10 + 4)

    assert v["novelty_1"][0].item() == pytest.approx(-math.log2(p(6)))
    assert v["novelty_2"][1].item() == pytest.approx((-math.log2(p(6)) - math.log2(p(1))) / 2)
    tot = acc.totals()
    assert tot["coverage_1"].item() == pytest.approx(1 / 4)  # only item 1 at K=1
    assert tot["coverage_2"].item() == pytest.approx(3 / 4)  # items 1, 2, 3


def test_full_ranking_reports_beyond_accuracy_for_pop():
    df = pd.DataFrame({"user": [1, 1, 1, 1, 2, 2, 2, 2], "item": [1, 2, 3, 4, 1, 2, 4, 3],
                       "timestamp": range(8)})
    seqs, users, items = build_seqs(df)
    data = LeaveOneOut()(seqs, len(users), len(items))
    model = Pop(num_items=4)
    model.fit(data)
    ev = FullRanking(ks=[1], metrics=["hr"], mask_history=False, beyond=["coverage", "avgpop"])
    ev.set_popularity(data.item_counts())  # train: items 1, 2 twice each
    means, table = ev.evaluate(model, EvalBatches(data.test, 10, torch.device("cpu")), per_user=True)
    assert means["avgpop_1"] == 2.0 and "avgpop_1" in table.columns
    assert means["coverage_1"] == pytest.approx(1 / 4)  # every user gets the same top item
    assert np.isfinite(table["avgpop_1"]).all()


def test_unknown_beyond_metric_is_a_config_error():
    with pytest.raises(ConfigError, match="eval.beyond"):
        FullRanking(beyond=["serendipity"])
