import math

import torch

from recexp.eval.metrics import all_metrics, hit_rate, mrr, ndcg, target_rank


def test_metrics_match_hand_computation():
    rank = torch.tensor([0, 1, 4, 9, 10])
    assert hit_rate(rank, 10).tolist() == [1, 1, 1, 1, 0]
    assert hit_rate(rank, 5).tolist() == [1, 1, 1, 0, 0]
    expected = [1.0, 1 / math.log2(3), 1 / math.log2(6), 1 / math.log2(11), 0.0]
    assert torch.allclose(ndcg(rank, 10), torch.tensor(expected))
    assert torch.allclose(mrr(rank, 10), torch.tensor([1.0, 0.5, 0.2, 0.1, 0.0]))


def test_target_rank_counts_strictly_better_and_half_the_ties():
    scores = torch.tensor([[-math.inf, 0.9, 0.5, 0.7, 0.1],
                           [-math.inf, 1.0, 1.0, 1.0, 1.0]])
    assert target_rank(scores, torch.tensor([2, 3])).tolist() == [2, 1]  # 0.9, 0.7 above; 3 ties -> 1


def test_all_metrics_keys():
    m = all_metrics(torch.tensor([0, 3]), [5, 10], ["hr", "ndcg"])
    assert set(m) == {"hr_5", "hr_10", "ndcg_5", "ndcg_10"}
    assert m["hr_5"].mean().item() == 1.0
