"""GRU4Rec's session-parallel mini-batches (issue 4): every pair once, resets at sequence starts,
and a lane's carried hidden state reproduces running the GRU over the whole sequence."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from recexp.data.batches import Batch, SessionParallel
from recexp.data.seqs import Seqs
from recexp.jobs.train import train
from recexp.models.gru4rec import GRU4Rec


def toy(n: int = 23, seed: int = 0) -> Seqs:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 9, size=n)  # some single items: no pair, skipped
    items = rng.integers(1, 40, size=int(lengths.sum()))
    times = np.arange(len(items), dtype=np.float64)
    return Seqs.from_lengths(np.arange(1, n + 1), lengths, items, times)


def pairs_of(seqs: Seqs) -> Counter:
    return Counter((int(s[j]), int(s[j + 1]), j == 0) for r in range(len(seqs))
                   for s in [seqs.seq(r)] for j in range(len(s) - 1))


@pytest.mark.parametrize("lanes", [1, 4, 7, 100])
def test_lanes_hold_every_pair_once_and_reset_at_sequence_starts(lanes: int):
    seqs = toy()
    sp = SessionParallel(seqs, torch.device("cpu"))
    g = sp.lanes(lanes, np.random.default_rng(1).permutation(len(sp)))
    real = g["targets"] > 0
    got = Counter(zip(g["seq"][real].tolist(), g["targets"][real].tolist(), g["reset"][real].tolist(), strict=True))
    assert got == pairs_of(seqs)
    assert int(g["reset"].sum()) == int((seqs.lengths >= 2).sum())  # one reset per sequence
    # inside a lane, a sequence continues where it left off: next input = previous target
    cont = real[:, 1:] & real[:, :-1] & ~g["reset"][:, 1:]
    assert (g["seq"][:, 1:][cont] == g["targets"][:, :-1][cont]).all()
    assert g["seq"].shape[0] == min(lanes, len(sp))


def test_iterate_counts_targets_and_cuts_bptt_steps():
    seqs = toy()
    sp = SessionParallel(seqs, torch.device("cpu"), bptt=3)
    batches = list(sp.iterate(5, torch.Generator().manual_seed(0), shuffle=True))
    assert all(b.seq.shape[0] == 5 and b.seq.shape[1] <= 3 and b.reset is not None for b in batches)
    assert all(b.num_targets == int((b.targets > 0).sum()) for b in batches)
    assert sum(b.num_targets for b in batches) == sp.num_pairs == sum(pairs_of(seqs).values())


@pytest.mark.parametrize("bptt", [1, 3])
def test_carried_state_equals_the_gru_over_the_whole_sequence(bptt: int):
    torch.manual_seed(0)
    seqs = toy(12)
    model = GRU4Rec(40, dropout_emb=0.0, dropout_hidden=0.0, hidden_size=16, embedding_size=8,
                    session_parallel=True, bptt=bptt, num_layers=2).eval()
    sp = SessionParallel(seqs, torch.device("cpu"), bptt=bptt)
    g = sp.lanes(3, np.arange(len(sp)))
    with torch.no_grad():
        outs = torch.cat([model(b) for b in sp.iterate(3, None, shuffle=False)], dim=1)  # (B, width, D)
        checked = 0
        for lane in range(g["seq"].shape[0]):
            prefix: list[int] = []
            for c in range(g["seq"].shape[1]):
                if g["targets"][lane, c] == 0:
                    continue
                prefix = [int(g["seq"][lane, c])] if g["reset"][lane, c] else [*prefix, int(g["seq"][lane, c])]
                s = torch.tensor([prefix])
                ref = model(Batch(seq=s, users=torch.zeros(1, dtype=torch.long), times=s.double()))[0, -1]
                torch.testing.assert_close(outs[lane, c], ref, atol=1e-5, rtol=1e-4)
                checked += 1
    assert checked == sp.num_pairs


def test_session_parallel_training_runs_end_to_end(tiny_cfg, tmp_path):
    out = train(tiny_cfg("model=gru4rec", "model.session_parallel=true", "model.bptt=2", "loss=bpr_max",
                         "sampler=in_batch", "trainer.max_epochs=2", "trainer.batch_size=32", "tracking=none"),
                tmp_path / "sp")
    assert np.isfinite(out["test/ndcg_10"]) and out["test/ndcg_10"] > 0
