"""GRU4Rec, NARM, Caser, BERT4Rec: shapes, causality / bidirectionality, padding, cloze masking."""

from __future__ import annotations

import pytest
import torch

from recexp.data.batches import Batch, EvalBatches
from recexp.data.seqs import EvalSet, Seqs
from recexp.models.bert4rec import BERT4Rec
from recexp.models.caser import Caser
from recexp.models.gru4rec import GRU4Rec
from recexp.models.narm import NARM
from recexp.models.rnn import left_align, restore

N, U = 30, 4


def _batch(seq: torch.Tensor, users: torch.Tensor | None = None) -> Batch:
    users = users if users is not None else torch.arange(1, len(seq) + 1)
    return Batch(seq=seq, users=users, times=torch.zeros(seq.shape, dtype=torch.float64))


def _models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "gru4rec": GRU4Rec(N, U, embedding_size=8, hidden_size=12, num_layers=2, dropout_emb=0.0),
        "narm": NARM(N, U, embedding_size=8, hidden_size=12, dropout_emb=0.0, dropout_ct=0.0),
        "caser": Caser(N, U, embedding_size=8, window=3, num_horizontal=2, num_vertical=2, dropout=0.0),
        "bert4rec": BERT4Rec(N, U, max_len=8, hidden_size=16, num_heads=2, dropout=0.0),
    }


SEQ = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 9], [0, 0, 0, 0, 0, 0, 0, 11]])


def test_left_align_round_trip_keeps_order():
    right, back = left_align(SEQ)
    assert right[0].tolist() == [3, 4, 5, 6, 7, 8, 0, 0] and right[2].tolist() == [11, 0, 0, 0, 0, 0, 0, 0]
    assert torch.equal(restore(right.unsqueeze(-1), back, SEQ).squeeze(-1), SEQ)


@pytest.mark.parametrize("name", ["gru4rec", "narm", "caser", "bert4rec"])
def test_shapes_and_candidate_scores_agree_with_full_scores(name: str):
    m = _models()[name].eval()
    h = m.query(_batch(SEQ))  # (B, D)
    assert h.dim() == 2 and h.shape[0] == 3
    full = m.score(h)
    assert full.shape == (3, N + 1) and torch.isfinite(full).all()
    cand = torch.tensor([[1, 7, 29], [2, 3, 4], [30, 5, 1]])
    assert torch.allclose(m.score(h, cand), full.gather(1, cand), atol=1e-5)
    if name != "bert4rec":
        assert m(_batch(SEQ)).shape[:2] == SEQ.shape


@pytest.mark.parametrize("name", ["gru4rec", "narm", "caser"])
def test_output_at_step_t_depends_only_on_items_up_to_t(name: str):
    m = _models()[name].eval()
    changed = SEQ.clone()
    changed[:2, 5] = 20  # change the item at t = 5 in the two long rows
    a, b = m(_batch(SEQ)), m(_batch(changed))
    assert torch.allclose(a[:2, :5], b[:2, :5], atol=1e-6)  # outputs before t unchanged
    assert not torch.allclose(a[:2, 5], b[:2, 5])  # the output at t sees item t
    assert torch.allclose(a[2, -1], b[2, -1], atol=1e-6)  # other rows untouched


@pytest.mark.parametrize("name", ["gru4rec", "narm"])
def test_left_padding_does_not_change_the_query(name: str):
    m = _models()[name].eval()
    short, padded = torch.tensor([[3, 4, 5]]), torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5]])
    assert torch.allclose(m.query(_batch(short)), m.query(_batch(padded)), atol=1e-5)


def test_caser_uses_only_the_last_window_items_and_the_user():
    m = _models()["caser"].eval()  # window = 3
    changed = SEQ.clone()
    changed[:2, 4] = 20  # four steps before the end: outside the last window of 3
    assert torch.allclose(m.query(_batch(SEQ)), m.query(_batch(changed)), atol=1e-6)
    other_user = _batch(SEQ, users=torch.tensor([4, 3, 2]))
    assert not torch.allclose(m.query(_batch(SEQ)), m.query(other_user))


def test_bert4rec_training_sees_both_directions():
    m = _models()["bert4rec"].eval()
    changed = SEQ.clone()
    changed[:2, 6] = 20  # a later item
    a, b = m.encode(SEQ), m.encode(changed)
    assert not torch.allclose(a[:2, 2], b[:2, 2], atol=1e-4)  # an earlier position changes too


def test_bert4rec_cloze_masks_and_targets():
    m = _models()["bert4rec"]
    m.mask_prob = 0.5
    torch.manual_seed(1)
    window = torch.randint(1, N + 1, (64, 9))
    window[:, :3] = 0  # left padding
    inp, tgt = m.cloze(window)
    masked = inp == m.mask_id
    assert torch.equal(tgt > 0, masked)  # a target exactly where the input is masked
    assert torch.equal(tgt[masked], window[masked])  # ... and it is the original item
    assert torch.equal(inp[~masked], window[~masked])
    assert not masked[:, :3].any()  # padding is never masked
    assert masked.any(1).all()  # every row has something to predict
    assert 0.35 < masked[:, 3:].float().mean() < 0.65


def test_bert4rec_last_prob_masks_only_the_newest_item_in_that_share_of_rows():
    m = _models()["bert4rec"]
    m.mask_prob, m.last_prob = 0.5, 1.0
    torch.manual_seed(2)
    window = torch.randint(1, N + 1, (200, 9))
    window[:, :3] = 0
    inp, tgt = m.cloze(window)
    masked = inp == m.mask_id
    assert masked[:, -1].all() and not masked[:, :-1].any()  # every row: the newest item alone
    assert torch.equal(tgt[:, -1], window[:, -1]) and not tgt[:, :-1].any()
    m.last_prob = 0.3
    inp, _ = m.cloze(window)
    masked = inp == m.mask_id
    only_last = masked[:, -1] & ~masked[:, :-1].any(1)
    # cloze rows mask 3+ of 6 items (p 0.5) alone only by chance (1/64): the share is ~0.3
    assert 0.2 < only_last.float().mean() < 0.42
    assert masked[:, 3:-1].any(1).float().mean() > 0.55  # the rest keep the cloze draw


@pytest.mark.parametrize("block", ["pre_ln", "post_ln"])
def test_bert4rec_query_is_the_encoder_output_at_mask_for_each_layout(block: str):
    torch.manual_seed(3)
    m = BERT4Rec(N, U, max_len=8, hidden_size=16, num_heads=2, dropout=0.0, block=block,
                 init="normal" if block == "post_ln" else "xavier", emb_scale=block == "pre_ln").eval()
    assert m.post_ln == (block == "post_ln")
    full = m.encode(m.eval_input(SEQ))[:, -1]  # every position through every block
    assert torch.allclose(m.query(_batch(SEQ)), full, atol=1e-5)


def test_bert4rec_training_inputs_hide_every_target():
    m = _models()["bert4rec"].train()
    seq = torch.tensor([[0, 3, 4, 5], [6, 7, 8, 9]])
    targets = torch.tensor([[0, 4, 5, 10], [7, 8, 9, 11]])  # next item per position
    torch.manual_seed(0)
    _, t = m.train_inputs(Batch(seq=seq, users=torch.tensor([1, 2]), times=torch.zeros(2, 4), targets=targets))
    assert t.shape == (2, 5)  # the whole window: history plus the newest item
    torch.manual_seed(0)
    inp, t2 = m.cloze(torch.cat([seq, targets[:, -1:]], 1))
    assert torch.equal(t, t2) and not ((inp == t2) & (t2 > 0)).any()


def test_bert4rec_evaluation_input_never_contains_the_target():
    m = _models()["bert4rec"].eval()
    hist = Seqs.from_lengths(torch.tensor([1, 2]).numpy(), torch.tensor([3, 9]).numpy(),
                             torch.arange(1, 13).numpy(), torch.zeros(12).numpy())
    ev = EvalSet(hist=hist, targets=torch.tensor([25, 26]).numpy(), target_times=torch.zeros(2).numpy())
    data = EvalBatches(ev, max_len=8, device=torch.device("cpu"))
    for _, batch, target in data.iterate(batch_size=2):
        inp = m.eval_input(batch.seq)
        assert inp.shape[1] <= m.max_len and (inp[:, -1] == m.mask_id).all()
        assert torch.equal(inp[:, :-1], batch.seq[:, -(m.max_len - 1):])  # the history, then [mask]
        assert not (inp == target.unsqueeze(1)).any()
        # the query is the encoder output at [mask]
        assert torch.allclose(m.query(batch), m.encode(inp)[:, -1], atol=1e-5)


@pytest.mark.parametrize("loss_name", ["ce", "bpr", "bce"])
@pytest.mark.parametrize("name", ["gru4rec", "narm", "caser", "bert4rec"])
def test_one_training_step_with_full_and_sampled_losses(name: str, loss_name: str):
    from recexp.losses import BCE, BPR, CrossEntropy
    from recexp.losses.samplers import UniformSampler
    from recexp.training.trainer import training_loss

    m = _models()[name].train()
    loss = {"ce": CrossEntropy(), "bpr": BPR(), "bce": BCE()}[loss_name]
    sampler = UniformSampler(num_negatives=4)
    sampler.setup(torch.ones(N + 1), torch.device("cpu"))
    seq = SEQ[:, :-1]
    targets = torch.where(seq > 0, SEQ[:, 1:], torch.zeros_like(seq))
    batch = Batch(seq=seq, users=torch.tensor([1, 2, 3]), times=torch.zeros(seq.shape), targets=targets)
    value = training_loss(m, loss, sampler, batch, torch.Generator().manual_seed(0))
    value.backward()
    assert torch.isfinite(value)
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
