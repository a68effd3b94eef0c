import itertools
import math

import pytest
import torch

from recexp.eval.metrics import all_metrics, hit_rate, mrr, ndcg, target_rank


def test_metrics_match_hand_computation():
    rank = torch.tensor([0, 1, 4, 9, 10])
    assert hit_rate(rank, 10).tolist() == [1, 1, 1, 1, 0]
    assert hit_rate(rank, 5).tolist() == [1, 1, 1, 0, 0]
    expected = [1.0, 1 / math.log2(3), 1 / math.log2(6), 1 / math.log2(11), 0.0]
    assert torch.allclose(ndcg(rank, 10), torch.tensor(expected))
    assert torch.allclose(mrr(rank, 10), torch.tensor([1.0, 0.5, 0.2, 0.1, 0.0]))


def test_target_rank_counts_strictly_better_and_the_ties():
    scores = torch.tensor([[-math.inf, 0.9, 0.5, 0.7, 0.1],
                           [-math.inf, 1.0, 1.0, 1.0, 1.0]])
    greater, ties = target_rank(scores, torch.tensor([2, 3]))
    assert greater.tolist() == [2, 0] and ties.tolist() == [0, 3]  # 0.9, 0.7 above; 3 others tie


def brute_force(scores: list[float], target: int, k: int) -> dict[str, float]:
    """Average of HR/NDCG/MRR@k over every order of the items (all permutations, ties broken by it)."""
    out = {"hr": 0.0, "ndcg": 0.0, "mrr": 0.0}
    perms = list(itertools.permutations(range(len(scores))))
    for perm in perms:  # perm[i]: tie-break priority of item i
        pos = sorted(range(len(scores)), key=lambda i: (-scores[i], perm[i])).index(target)
        if pos < k:
            out["hr"] += 1
            out["ndcg"] += 1 / math.log2(pos + 2)
            out["mrr"] += 1 / (pos + 1)
    return {m: v / len(perms) for m, v in out.items()}


@pytest.mark.parametrize("seed", range(6))
def test_metrics_are_the_expectation_over_every_order_of_ties(seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 3, (7,), generator=g).float()  # 7 items, heavy ties
    for target in range(7):
        greater, ties = target_rank(scores.unsqueeze(0), torch.tensor([target]))
        for k in (1, 2, 3, 5):
            ref = brute_force(scores.tolist(), target, k)
            got = all_metrics(greater, [k], ["hr", "ndcg", "mrr"], ties)
            for m in ("hr", "ndcg", "mrr"):
                assert got[f"{m}_{k}"].item() == pytest.approx(ref[m], abs=1e-6), (seed, target, k, m)


def test_constant_scorer_gets_hr_k_over_n():
    n, k = 200, 10
    greater, ties = target_rank(torch.zeros(3, n), torch.tensor([0, 5, 199]))
    assert torch.allclose(hit_rate(greater, k, ties), torch.full((3,), k / n))
    assert torch.allclose(mrr(greater, k, ties), torch.full((3,), sum(1 / (p + 1) for p in range(k)) / n))


def test_all_metrics_keys():
    m = all_metrics(torch.tensor([0, 3]), [5, 10], ["hr", "ndcg"])
    assert set(m) == {"hr_5", "hr_10", "ndcg_5", "ndcg_10"}
    assert m["hr_5"].mean().item() == 1.0
