"""Streamed full ranking (eval/ranking.py) against the dense reference and hand-computed ranks."""

from __future__ import annotations

import numpy as np
import pytest
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
    keep = items != targets[rows]  # history masked except the target itself
    s[rows[keep], items[keep]] = float("-inf")
    return target_rank(s, targets)


def test_hand_computed_ranks_with_ties_and_history():
    # item scores for one user: ids 1..5 -> 0.5, 0.9, 0.5, 0.7, 0.5 (dot with h = 1)
    emb = torch.tensor([[0.0], [0.5], [0.9], [0.5], [0.7], [0.5]])
    model, h = Dot(emb), torch.ones(3, 1)
    targets = torch.tensor([1, 1, 4])
    # row 0: no history: greater {2, 4} = 2, ties {3, 5} = 2
    # row 1: history {2, 3, 3}: greater {4} = 1, ties {5} = 1
    # row 2: history {4}: the target is masked with its history: a miss (greater = N = 5)
    ex = Excluded(torch.tensor([1, 1, 1, 2]), torch.tensor([2, 3, 3, 4]), 3)
    for block, rows in ((1, 0), (2, 1), (5, 2), (100, 0), (100, 2)):  # rows: row tiles (the CPU path)
        g, t = target_ranks(model, h, targets, ex, block, rows=rows)
        assert g.tolist() == [2, 1, 5] and t.tolist() == [2, 1, 0]
    g, t = target_ranks(model, h, targets, None, 2)
    assert g.tolist() == [2, 2, 1] and t.tolist() == [2, 2, 0]


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
    assert miss.any()  # the test covers targets that repeat the history
    for block, tile in ((5, 0), (32, 0), (1000, 0), (5, 4), (32, 7), (1000, 32)):
        g, t = target_ranks(model, h, targets, Excluded(rows, items, B), block, rows=tile)
        assert torch.equal(g[~miss], ref[0][~miss]) and torch.equal(t[~miss], ref[1][~miss])
        assert (g[miss] == N).all() and (t[miss] == 0).all()


def test_pop_ties_match_dense_midrank():
    model = Pop(num_items=10)
    model.counts.copy_(torch.tensor([0, 3, 3, 3, 1, 1, 5, 0, 0, 2, 2], dtype=torch.float))
    h = model.counts.expand(4, -1)  # Pop's query (a CountModel): the counts, the same for every user
    targets = torch.tensor([1, 4, 6, 10])
    rows, items = torch.tensor([0, 2]), torch.tensor([6, 2])
    ref = dense_ranks(model, h, targets, rows, items)
    got = target_ranks(model, h, targets, Excluded(rows, items, 4), 3)
    assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1]) and ref[1].sum() > 0


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


def test_full_ranking_of_a_constant_scorer_is_k_over_n():
    """Every item tied: the expectation over tie orders is HR@K = K/N exactly (floor(ties/2)
    mid-ranks gave 0 for N > 2K)."""
    import pandas as pd

    from recexp.data.batches import EvalBatches
    from recexp.data.prepare import build_seqs
    from recexp.data.split import LeaveOneOut
    from recexp.eval.evaluator import FullRanking

    df = pd.DataFrame({"user": [u for u in range(1, 31) for _ in range(4)],
                       "item": [(u * 7 + j) % 50 + 1 for u in range(1, 31) for j in range(4)],
                       "timestamp": range(120)})
    seqs, users, items = build_seqs(df)
    data = LeaveOneOut()(seqs, len(users), len(items))
    model = Pop(num_items=data.num_items)  # counts all zero: a constant scorer
    eb = EvalBatches(data.test, 10, torch.device("cpu"))
    means, _ = FullRanking(ks=[10], metrics=["hr"], mask_history="none", beyond=[]).evaluate(model, eb)
    assert means["hr_10"] == pytest.approx(10 / data.num_items)
    # history masked except the target: each user ranks N - (distinct history items other than the target)
    means, _ = FullRanking(ks=[10], metrics=["hr"], beyond=[]).evaluate(model, eb)
    n = [data.num_items - len(set(data.test.hist.seq(e).tolist()) - {int(data.test.targets[e])})
         for e in range(len(data.test))]
    assert means["hr_10"] == pytest.approx(sum(10 / x for x in n) / len(n))


def test_eval_batches_capped_positions_cover_every_example_once(monkeypatch):  # noqa: ANN001
    """``max_positions`` (the CPU default) splits long-history batches; every example still comes
    once, each batch holds its rows' last items, and a SASRec evaluation gives the same ranks."""
    import recexp.eval.evaluator as evaluator
    from recexp.data.batches import EvalBatches
    from recexp.data.seqs import EvalSet, Seqs
    from recexp.models.sasrec import SASRec

    g = torch.Generator().manual_seed(0)
    lens = torch.randint(1, 40, (300,), generator=g).numpy()
    offsets = np.concatenate([[0], np.cumsum(lens)])
    items = torch.randint(1, 60, (int(offsets[-1]),), generator=g).numpy()
    hist = Seqs(np.arange(300), offsets, items, np.zeros(len(items)))
    ev = EvalSet(hist, torch.randint(1, 60, (300,), generator=g).numpy(), np.zeros(300))
    eb = EvalBatches(ev, 30, torch.device("cpu"))
    seen = []
    for rows, batch, _ in eb.iterate(64, max_positions=200):
        assert len(rows) == 1 or batch.seq.numel() <= 200
        for r, s in zip(rows.tolist(), batch.seq, strict=True):
            last = items[offsets[r]:offsets[r + 1]][-30:]
            assert s[s > 0].tolist() == last.tolist()
        seen += rows.tolist()
    assert sorted(seen) == list(range(300))
    model = SASRec(num_items=59, max_len=30, hidden_size=16, num_heads=2, ffn_dim=32).eval()
    ranked = {}
    for cap in (0, 200):
        monkeypatch.setattr(evaluator, "positions_for", lambda device, cap=cap: cap)
        ranked[cap] = evaluator.FullRanking(batch_size=64).evaluate(model, eb, per_user=True)[1]
    assert ranked[0]["rank"].tolist() == ranked[200]["rank"].tolist()


class NextItems(SeqRecModel):
    """Scores item last+1 at 2, item last+2 at 1, everything else 0."""

    def __init__(self, n: int) -> None:
        super().__init__(n)

    def query(self, batch) -> torch.Tensor:  # noqa: ANN001
        last = batch.seq[:, -1]
        h = torch.zeros(len(last), self.num_items + 1)
        h[torch.arange(len(last)), (last + 1).clamp(max=self.num_items)] += 2.0
        h[torch.arange(len(last)), (last + 2).clamp(max=self.num_items)] += 1.0
        return h

    def item_embeddings(self) -> torch.Tensor:
        return torch.eye(self.num_items + 1)


def test_a_replaced_query_is_what_the_model_reads_and_the_whole_history_is_still_masked():
    from recexp.data.batches import EvalBatches
    from recexp.data.seqs import EvalSet, Seqs
    from recexp.eval.evaluator import FullRanking

    def seqs(*rows: list[int]) -> Seqs:
        items = np.concatenate([np.asarray(r) for r in rows])
        return Seqs.from_lengths(np.arange(1, len(rows) + 1), np.array([len(r) for r in rows]), items,
                                 np.zeros(len(items)))

    ev = EvalSet(seqs([1, 3, 4], [6, 2, 7]), np.array([5, 3]), np.zeros(2))
    model, evaluator = NextItems(8), FullRanking(ks=[1], metrics=["hr"])
    # reading the history: user 1 ends in 4 (5 on top: a hit), user 2 ends in 7 (8 on top: a miss)
    metrics, _ = evaluator.evaluate(model, EvalBatches(ev, 50, torch.device("cpu")))
    assert metrics["hr_1"] == pytest.approx(0.5)
    # reading [1, 3] / [6, 2]: 4 scores highest for user 1 but is in the history, so masked, and the
    # target 5 is first; user 2's top item is the target 3
    short = seqs([1, 3], [6, 2])
    metrics, per_user = evaluator.evaluate(model, EvalBatches(ev, 50, torch.device("cpu"), query=short), per_user=True)
    assert metrics["hr_1"] == pytest.approx(1.0) and per_user["hr_1"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="query has 1 sequences for 2 examples"):
        EvalBatches(ev, 50, torch.device("cpu"), query=seqs([1]))
