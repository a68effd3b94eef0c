"""Streamed full ranking (eval/ranking.py) against the dense reference and hand-computed ranks."""

from __future__ import annotations

import torch

from recexp.eval.metrics import target_rank
from recexp.eval.ranking import Excluded, streamed_topk, target_ranks
from recexp.models.base import SeqRecModel
from recexp.models.pop import Pop


class Dot(SeqRecModel):
    def __init__(self, emb: torch.Tensor) -> None:
        super().__init__(emb.shape[0] - 1)
        self.emb = emb

    def item_embeddings(self) -> torch.Tensor:
        return self.emb


def dense_ranks(model, h, targets, rows, items) -> torch.Tensor:  # noqa: ANN001
    s = model.score(h).float().contiguous()
    s[:, 0] = float("-inf")
    s[rows, items] = float("-inf")
    return target_rank(s, targets)


def test_hand_computed_ranks_with_ties_and_history():
    # item scores for one user: ids 1..5 -> 0.5, 0.9, 0.5, 0.7, 0.5 (dot with h = 1)
    emb = torch.tensor([[0.0], [0.5], [0.9], [0.5], [0.7], [0.5]])
    model, h = Dot(emb), torch.ones(3, 1)
    targets = torch.tensor([1, 1, 4])
    # row 0: no history: greater {2, 4} = 2, ties {3, 5} -> +1 => 3
    # row 1: history {2, 3, 3}: greater {4} = 1, ties {5} -> +0 => 1
    # row 2: history {4}: the target itself -> a miss, rank N = 5
    ex = Excluded(torch.tensor([1, 1, 1, 2]), torch.tensor([2, 3, 3, 4]), 3)
    for block in (1, 2, 5, 100):
        assert target_ranks(model, h, targets, ex, block).tolist() == [3, 1, 5]
    assert target_ranks(model, h, targets, None, 2).tolist() == [3, 3, 1]


def test_streamed_matches_dense_on_random_scores():
    g = torch.Generator().manual_seed(0)
    N, B, D = 97, 33, 8
    model = Dot(torch.randn(N + 1, D, generator=g))
    h = torch.randn(B, D, generator=g)
    targets = torch.randint(1, N + 1, (B,), generator=g)
    rows = torch.randint(0, B, (200,), generator=g)
    items = torch.randint(1, N + 1, (200,), generator=g)  # duplicates included
    ref = dense_ranks(model, h, targets, rows, items)
    masked = (items == targets[rows])
    miss = torch.zeros(B, dtype=torch.bool).index_fill_(0, rows[masked], True)
    for block in (5, 32, 1000):
        got = target_ranks(model, h, targets, Excluded(rows, items, B), block)
        assert torch.equal(got[~miss], ref[~miss])
        assert (got[miss] == N).all()


def test_pop_ties_match_dense_midrank():
    model = Pop(num_items=10)
    model.counts.copy_(torch.tensor([0, 3, 3, 3, 1, 1, 5, 0, 0, 2, 2], dtype=torch.float))
    h = model.counts.expand(4, -1)  # Pop's query (a CountModel): the counts, the same for every user
    targets = torch.tensor([1, 4, 6, 10])
    rows, items = torch.tensor([0, 2]), torch.tensor([6, 2])
    ref = dense_ranks(model, h, targets, rows, items)
    assert torch.equal(target_ranks(model, h, targets, Excluded(rows, items, 4), 3), ref)


def test_streamed_topk_matches_dense_and_skips_history():
    g = torch.Generator().manual_seed(1)
    N, B = 50, 6
    model = Dot(torch.randn(N + 1, 4, generator=g))
    h = torch.randn(B, 4, generator=g)
    rows, items = torch.tensor([0, 0, 3]), torch.tensor([7, 8, 9])
    s = model.score(h)
    s[:, 0] = float("-inf")
    s[rows, items] = float("-inf")
    ref_s, ref_i = s.topk(10, dim=1)
    got_s, got_i = streamed_topk(model, h, 10, Excluded(rows, items, B), block=7)
    assert torch.equal(got_i, ref_i) and torch.allclose(got_s, ref_s)
    assert not (got_i == 0).any()
