"""Fast paths give the same values as the plain ones: sync-free target gather, fused CE in the
trainer, SASRec's last-position query."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from recexp.data.batches import Batch, TrainWindows
from recexp.data.seqs import Seqs
from recexp.losses import CrossEntropy, FullLoss
from recexp.models.sasrec import SASRec
from recexp.training.trainer import training_loss


class Unfused(CrossEntropy):
    from_queries = FullLoss.from_queries  # the generic path: full (M, N+1) logits


def _windows() -> TrainWindows:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=40)
    items = rng.integers(1, 51, size=int(lengths.sum()))
    seqs = Seqs.from_lengths(np.arange(1, 41), lengths, items, np.arange(len(items), dtype=np.float64))
    return TrainWindows(seqs, 8, torch.device("cpu"))


def test_planned_target_count_is_exact_and_sync_free_gather_agrees():
    torch.manual_seed(0)
    model = SASRec(num_items=50, max_len=8, hidden_size=16, dropout=0.0)
    for batch in _windows().iterate(16, torch.Generator().manual_seed(0), shuffle=True):
        assert batch.num_targets == int((batch.targets > 0).sum())
        planned = training_loss(model, CrossEntropy(), None, batch, None)
        masked = training_loss(model, CrossEntropy(), None, dataclasses.replace(batch, num_targets=None), None)
        assert torch.allclose(planned, masked, atol=1e-6)


def test_unfused_loss_still_runs():
    model = SASRec(num_items=50, max_len=8, hidden_size=16, dropout=0.0)
    batch = next(_windows().iterate(16, None))
    assert torch.isfinite(training_loss(model, Unfused(), None, batch, None))


def test_fused_training_loss_equals_masked_reference():
    torch.manual_seed(0)
    model = SASRec(num_items=50, max_len=8, hidden_size=16, dropout=0.0)
    batch = next(_windows().iterate(16, None))
    got = training_loss(model, CrossEntropy(), None, batch, None)
    H = model(batch)
    mask = batch.targets > 0
    logits = model.score(H[mask])
    logits[:, 0] = float("-inf")
    ref = torch.nn.functional.cross_entropy(logits, batch.targets[mask])
    assert torch.allclose(got, ref, atol=1e-5)


def test_sasrec_query_equals_last_position_of_forward():
    torch.manual_seed(0)
    for causal in (True, False):
        model = SASRec(num_items=30, max_len=10, hidden_size=16, causal=causal).eval()
        seq = torch.randint(1, 31, (5, 10))
        seq[:2, :6] = 0  # left padding
        b = Batch(seq=seq, users=torch.zeros(5, dtype=torch.long), times=torch.zeros(5, 10))
        with torch.no_grad():
            assert torch.allclose(model.query(b), model(b)[:, -1], atol=1e-5)


def test_bert4rec_query_equals_mask_position_of_full_encoding():
    from recexp.models.bert4rec import BERT4Rec

    torch.manual_seed(0)
    model = BERT4Rec(num_items=30, max_len=10, hidden_size=16).eval()
    seq = torch.randint(1, 31, (5, 10))
    seq[:2, :6] = 0  # left padding
    b = Batch(seq=seq, users=torch.zeros(5, dtype=torch.long), times=torch.zeros(5, 10))
    with torch.no_grad():
        assert torch.allclose(model.query(b), model.encode(model.eval_input(seq))[:, -1], atol=1e-5)


def test_prefix_windows_train_every_target_once_with_its_full_context():
    """``window_mode=prefixes`` (RecBole's augmentation): one window per (context, target) pair,
    only its last position trained, its input the last max_len items before the target; and
    with a causal model and no dropout its loss equals the ``all`` windows' loss when no sequence
    is longer than one window (beyond that, ``all`` gives the targets after a window's start
    fewer than max_len items of context)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=40)
    items = rng.integers(1, 51, size=int(lengths.sum()))
    seqs = Seqs.from_lengths(np.arange(1, 41), lengths, items, np.arange(len(items), dtype=np.float64))
    win = TrainWindows(seqs, 8, torch.device("cpu"), "prefixes")
    expect = sorted((u, tuple(s[max(0, t - 8):t]), int(s[t])) for u, s in
                    ((u, items[o:o + n]) for u, o, n in zip(range(1, 41), np.cumsum(lengths) - lengths, lengths,
                                                            strict=True)) for t in range(1, len(s)))
    got = []
    for batch in win.iterate(16, torch.Generator().manual_seed(0), shuffle=True):
        assert batch.num_targets == int((batch.targets > 0).sum()) == len(batch.seq)
        assert (batch.targets[:, :-1] == 0).all()
        for u, s, t in zip(batch.users.tolist(), batch.seq, batch.targets[:, -1].tolist(), strict=True):
            got.append((u, tuple(s[s > 0].tolist()), t))
    assert sorted(got) == expect
    torch.manual_seed(0)
    model = SASRec(num_items=50, max_len=8, hidden_size=16, dropout=0.0, positions="from_start").eval()

    def mean_loss(windows: TrainWindows) -> float:
        tot = n = 0
        for b in windows.iterate(1000, None):
            tot += float(training_loss(model, CrossEntropy(), None, b, None)) * b.num_targets
            n += b.num_targets
        return tot / n
    short = Seqs.from_lengths(np.arange(1, 41), lengths.clip(max=9), items[:int(lengths.clip(max=9).sum())],
                              np.zeros(int(lengths.clip(max=9).sum())))
    a, b = (mean_loss(TrainWindows(short, 8, torch.device("cpu"), m)) for m in ("prefixes", "all"))
    assert abs(a - b) < 1e-5
    assert abs(mean_loss(win) - mean_loss(TrainWindows(seqs, 8, torch.device("cpu")))) > 1e-3  # long ones differ
