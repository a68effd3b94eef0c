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
