"""S3Rec pre-training pieces on toy batches: masking, segments, each objective, attributes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from recexp.data.attributes import load_item_attributes
from recexp.errors import ConfigError
from recexp.models.s3rec import S3Rec
from recexp.training.pretrain.masking import mask_items, sample_negatives, segments
from recexp.training.pretrain.objectives import OBJECTIVES, attribute_bce, s3rec_losses
from recexp.training.pretrain.trainer import S3RecPretrainer

N, A = 30, 8


def _toy():
    torch.manual_seed(0)
    model = S3Rec(num_items=N, max_len=10, hidden_size=16, num_heads=2, ffn_dim=32, dropout=0.0, num_attributes=A)
    seq = torch.tensor([[0, 0, 0, 0, 1, 2, 3, 4, 5, 6],
                        [0, 0, 0, 0, 0, 0, 0, 7, 8, 9],
                        [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
                        [0, 0, 0, 0, 0, 0, 0, 0, 0, 21]])
    g = torch.Generator().manual_seed(1)
    attrs = torch.rand(N + 2, A + 1, generator=g) < 0.3
    attrs[:, 0] = False
    attrs[0] = False
    pool = torch.arange(1, N + 1).repeat(3)
    return model, seq, attrs, pool


def test_mask_items_masks_only_real_items_and_always_the_last():
    _, seq, _, _ = _toy()
    g = torch.Generator().manual_seed(0)
    m = mask_items(seq, 0.5, N + 1, N, g)
    real = seq > 0
    assert not (m.masked & ~real).any()  # padding is never masked
    assert m.masked[:, -1].all()  # mask_last
    assert (m.inputs[m.masked] == N + 1).all()
    assert torch.equal(m.inputs[~m.masked], seq[~m.masked])
    # the negatives are not in the row's own sequence (30 items, <= 10 in a row: always possible)
    assert not (m.negatives.unsqueeze(-1) == seq.unsqueeze(1)).any()
    assert ((m.negatives >= 1) & (m.negatives <= N)).all()


def test_masked_items_never_leak_into_the_encoder_input():
    """Two sequences that differ only at masked positions give the same input and the same
    hidden states, while their MIP targets differ: the model cannot see what it must predict."""
    model, seq, _, _ = _toy()
    model.eval()
    a = mask_items(seq, 0.4, model.mask_id, N, torch.Generator().manual_seed(3))
    other = torch.where(a.masked, (seq % N) + 1, seq)  # a different item at every masked position
    b = mask_items(other, 0.4, model.mask_id, N, torch.Generator().manual_seed(3))
    assert torch.equal(a.masked, b.masked) and torch.equal(a.inputs, b.inputs)
    assert not torch.equal(seq[a.masked], other[b.masked])
    assert torch.equal(model.encode_bidirectional(a.inputs), model.encode_bidirectional(b.inputs))


def test_segments_layout():
    _, seq, _, pool = _toy()
    s = segments(seq, pool, N + 1, torch.Generator().manual_seed(5))
    real = seq > 0
    for r in range(len(seq)):
        n = int(real[r].sum())
        seg = s.context[r] == N + 1
        k = int(seg.sum())
        if n < 2:
            assert not s.valid[r]
            continue
        assert s.valid[r] and 1 <= k <= n // 2
        idx = torch.nonzero(seg).flatten()
        assert torch.equal(idx, torch.arange(int(idx[0]), int(idx[0]) + k))  # contiguous
        assert torch.equal(s.context[r][~seg], seq[r][~seg])  # the rest is untouched
        assert torch.equal(s.positive[r][seg], seq[r][seg])  # the segment itself
        assert (s.positive[r][real[r] & ~seg] == N + 1).all() and (s.positive[r][~real[r]] == 0).all()
        neg = s.negative[r][seg]
        assert (neg[1:] - neg[:-1] == 1).all() or k == 1  # consecutive items of the pool (1..30 repeated)
        assert (s.negative[r][real[r] & ~seg] == N + 1).all()


def test_sample_negatives_uniform_range():
    seq = torch.zeros(64, 5, dtype=torch.long)
    neg = sample_negatives(seq, 7, torch.Generator().manual_seed(0))
    assert neg.min() >= 1 and neg.max() <= 7 and len(neg.unique()) == 7


def test_attribute_bce_hand_computed():
    logits = torch.zeros(1, 2, 4)  # sigmoid(0) = 0.5 -> BCE log 2 per attribute
    targets = torch.tensor([[[0, 1, 0, 1], [0, 0, 0, 0]]], dtype=torch.bool)
    where = torch.tensor([[True, False]])
    # one position counted, 3 attributes (column 0 is padding): 3 * log 2
    assert attribute_bce(logits, targets, where).item() == pytest.approx(3 * math.log(2))


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_is_finite_and_decreases(objective):
    model, seq, attrs, pool = _toy()
    weights = {o: float(o == objective) for o in OBJECTIVES}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    values = []
    for _ in range(25):
        g = torch.Generator().manual_seed(7)  # the same corrupted views every step
        out = s3rec_losses(model, seq, weights, attributes=attrs, pool=pool, mask_p=0.3, generator=g)
        assert set(out) == {objective, "total"} and out[objective].dim() == 0
        assert torch.isfinite(out["total"])
        values.append(out[objective].item())
        opt.zero_grad()
        out["total"].backward()
        opt.step()
    assert values[-1] < 0.7 * values[0], values


def test_total_is_the_weighted_sum():
    model, seq, attrs, pool = _toy()
    w = {"aap": 0.2, "mip": 1.0, "map": 1.0, "sp": 0.5}
    out = s3rec_losses(model.eval(), seq, w, attributes=attrs, pool=pool, mask_p=0.2,
                       generator=torch.Generator().manual_seed(0))
    assert out["total"].item() == pytest.approx(sum(w[o] * out[o].item() for o in OBJECTIVES), rel=1e-5)


def test_fine_tuned_form_is_sasrec_shaped():
    model, seq, _, _ = _toy()
    from recexp.data.batches import Batch

    h = model(Batch(seq=seq, users=torch.zeros(4, dtype=torch.long), times=torch.zeros(seq.shape)))
    assert h.shape == (4, 10, 16)
    assert model.score(h[:, -1]).shape == (4, N + 1)  # the [mask] token is never ranked


def test_pretrainer_config_errors():
    with pytest.raises(ConfigError, match="pretrain.drop"):
        S3RecPretrainer(drop="aap+xyz")
    with pytest.raises(ConfigError, match="nothing to learn"):
        S3RecPretrainer(drop="aap+mip+map+sp")
    with pytest.raises(ConfigError, match="mask_p"):
        S3RecPretrainer(mask_p=1.5)
    assert S3RecPretrainer(drop="aap+map").weights == {"aap": 0.0, "mip": 1.0, "map": 0.0, "sp": 0.5}


def test_attributes_follow_the_remapped_ids(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"10": [1, 3], "30": [2], "99": [4]}))  # 99: not in the data
    raw_ids = np.array(["10", "20", "30"])  # item 1 = raw 10, item 2 = raw 20, item 3 = raw 30
    at = load_item_attributes({"attributes": "a.json"}, tmp_path, raw_ids)
    assert at.table.shape == (4, 5)
    assert at.table[1].nonzero()[0].tolist() == [1, 3]
    assert not at.table[2].any() and at.table[3].nonzero()[0].tolist() == [2]
    assert at.coverage() == pytest.approx(2 / 3)
    (tmp_path / "m.item").write_text("item_id:token\tclass:token_seq\n10\tComedy Drama\n30\tAction\n")
    ml = load_item_attributes({"item_file": "m.item"}, tmp_path, raw_ids)
    assert ml.num_attributes == 3  # Action=1, Comedy=2, Drama=3
    assert ml.table[1].nonzero()[0].tolist() == [2, 3] and ml.table[3].nonzero()[0].tolist() == [1]
    assert load_item_attributes({"name": "x"}, tmp_path, raw_ids) is None
