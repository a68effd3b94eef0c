"""The work of a data-parallel job shared out: training windows per rank each epoch (every window
exactly once, the same number of steps everywhere) and evaluation batches per rank (gathered, the
single-process figures to the last digit)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recexp.data.batches import EvalBatches, TrainWindows, length_buckets
from recexp.data.seqs import EvalSet, Seqs
from recexp.data.shard import shard_batches
from recexp.eval.evaluator import FullRanking
from recexp.models.sasrec import SASRec

CPU = torch.device("cpu")


def _seqs(num: int, seed: int = 0, max_len: int = 30) -> Seqs:
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, max_len, num)
    items = rng.integers(1, 50, int(lens.sum()))
    offsets = np.concatenate([[0], np.cumsum(lens)])
    return Seqs(users=np.arange(1, num + 1), offsets=offsets, items=items,
                times=np.arange(len(items), dtype=np.float64))


@pytest.mark.parametrize("n, batch_size, world", [(100, 32, 2), (101, 32, 2), (97, 16, 3), (65, 32, 2),
                                                  (33, 32, 2), (7, 4, 4), (5, 5, 5), (1000, 256, 7)])
def test_every_window_once_per_epoch_and_equal_steps(n, batch_size, world):
    gen = torch.Generator().manual_seed(n)
    lengths = torch.randint(2, 21, (n,), generator=gen)
    order, starts = length_buckets(lengths, batch_size, gen, bucket=2)
    shards = [shard_batches(order, starts, batch_size, r, world) for r in range(world)]
    seen = torch.cat([g for shard in shards for g in shard])
    assert sorted(seen.tolist()) == list(range(n))  # each window exactly once, across all ranks
    assert len({len(s) for s in shards}) == 1  # the same number of steps on every rank
    assert all(len(g) >= 1 for s in shards for g in s)  # no rank ever has an empty step
    for step in zip(*shards, strict=True):  # a step's shares differ by at most one window
        assert max(map(len, step)) - min(map(len, step)) <= 1


def test_too_few_windows_for_the_processes_is_refused():
    order, starts = torch.arange(3), torch.tensor([0])
    with pytest.raises(ValueError, match="3 windows cannot feed 4 processes"):
        shard_batches(order, starts, 8, 0, 4)


def test_sharded_train_windows_cover_the_epoch_and_follow_the_seed():
    windows = TrainWindows(_seqs(120), max_len=10, device=CPU)
    targets = {}
    for rank in range(2):
        gen = torch.Generator().manual_seed(7)  # the shared seed: every rank cuts the same batches
        batches = list(windows.iterate(16, gen, shuffle=True, shard=(rank, 2)))
        targets[rank] = sum(int(b.num_targets) for b in batches), len(batches)
        assert all(int((b.targets > 0).sum()) == b.num_targets for b in batches)
    whole = list(windows.iterate(16, torch.Generator().manual_seed(7), shuffle=True))
    assert targets[0][0] + targets[1][0] == sum(int(b.num_targets) for b in whole)  # every target once
    assert targets[0][1] == targets[1][1] <= len(whole)


def test_evaluation_shared_by_batches_reduces_to_the_single_process_figures():
    torch.manual_seed(0)
    hist = _seqs(300, seed=1)
    data = EvalBatches(EvalSet(hist=hist, targets=np.random.default_rng(2).integers(1, 50, 300),
                                target_times=np.zeros(300)), 20, CPU)
    model = SASRec(num_items=49, hidden_size=16, num_blocks=1, num_heads=1, max_len=20)
    ev = FullRanking(ks=[1, 5, 10], batch_size=64, beyond=["coverage", "novelty"])
    ev.set_popularity(np.arange(50))
    expected, table = ev.evaluate(model, data, per_user=True)
    parts = [list(ev.score(model, data, pick=lambda i, r=r: i % 3 == r)) for r in range(3)]  # 3 "ranks"
    scored = sorted((p for part in parts for p in part), key=lambda p: p.index)
    means, gathered = ev.reduce(data, scored, per_user=True)
    assert means == expected  # exactly, not approximately
    assert gathered.equals(table)
