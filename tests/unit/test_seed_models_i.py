"""Seed models I (issue 3): shapes, scoring paths agree, and hand-computed count models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from recexp.data.batches import Batch, EvalBatches
from recexp.data.seqs import Seqs, SplitData
from recexp.data.split import LeaveOneOut
from recexp.errors import ConfigError, DataError
from recexp.models.itemknn_tw import ItemKNNTW
from recexp.models.ma import MovingAverage
from recexp.models.markov import Markov
from recexp.models.recent_pop import RecentPop
from recexp.training.parts import build_loss_and_sampler, instantiate_user
from tests.conftest import compose_cfg

MODELS = ["ma", "recent_pop", "itemknn_tw", "markov", "fpmc", "prme", "fme", "transrec"]


def _train_only(lists: list[list[int]], times: list[list[float]] | None = None, num_items: int = 4) -> SplitData:
    """SplitData whose training part is ``lists`` (evaluation sets are not used here)."""
    lens = np.array([len(s) for s in lists])
    t = np.concatenate(times) if times else np.concatenate([np.arange(n) for n in lens]).astype(float)
    train = Seqs.from_lengths(np.arange(1, len(lists) + 1), lens, np.concatenate(lists), t)
    return SplitData(train, None, None, num_users=len(lists), num_items=num_items)  # type: ignore[arg-type]


def _random_split(num_users: int = 40, num_items: int = 30, seed: int = 0) -> SplitData:
    rng = np.random.default_rng(seed)
    lens = rng.integers(4, 12, num_users)
    items = rng.integers(1, num_items + 1, lens.sum())
    times = np.sort(rng.uniform(0, 1e6, lens.sum()))  # real (non-positional) timestamps
    seqs = Seqs.from_lengths(np.arange(1, num_users + 1), lens, items, times)
    return LeaveOneOut()(seqs, num_users, num_items)


def _batch(seq: torch.Tensor, times: torch.Tensor | None = None, users: torch.Tensor | None = None) -> Batch:
    users = users if users is not None else torch.arange(1, len(seq) + 1)
    times = times if times is not None else torch.arange(seq.shape[1], dtype=torch.float64).expand(seq.shape)
    return Batch(seq=seq, users=users, times=times * (seq > 0))


@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_all_items_equal_candidates(name):
    torch.manual_seed(0)
    data = _random_split()
    cfg = compose_cfg([f"model={name}"])
    model = instantiate(cfg.model, num_items=data.num_items, num_users=data.num_users).eval()
    model.fit(data)
    _, batch, _ = next(EvalBatches(data.test, 8, torch.device("cpu")).iterate(16))
    with torch.no_grad():
        h = model.query(batch)
        full = model.score(h)  # (B, N+1)
        assert full.shape == (16, data.num_items + 1) and torch.isfinite(full[:, 1:]).all()
        cand = torch.randint(1, data.num_items + 1, (16, 5))
        assert torch.allclose(model.score(h, cand), full.gather(1, cand), atol=1e-4)
        shared = torch.tensor([3, 1, 30])
        assert torch.allclose(model.score(h, shared), full[:, shared], atol=1e-4)
        if model.trainable:  # per-position queries for training, (B, L, D), scored per position
            H = model(batch)
            assert H.shape[:2] == batch.seq.shape
            assert torch.allclose(model.score(H)[:, -1], full, atol=1e-4)


@pytest.mark.parametrize("name", ["ma", "fpmc", "prme", "fme", "transrec"])
def test_gradient_models_are_causal_and_default_to_bpr_or_any(name):
    torch.manual_seed(0)
    cfg = compose_cfg([f"model={name}"])
    model = instantiate(cfg.model, num_items=30, num_users=3).eval()
    seq = torch.tensor([[0, 3, 4, 5, 6, 7]])
    changed = seq.clone()
    changed[0, 4] = 20
    a, b = model(_batch(seq)), model(_batch(changed))
    assert torch.allclose(a[:, :4], b[:, :4]) and not torch.allclose(a[:, 4:], b[:, 4:])
    assert model.default_loss == ("ce" if name == "ma" else "bpr")


def test_markov_transition_probabilities_by_hand():
    # transitions 1->2, 2->3 | 1->3 | 2->3; item counts 1:2 2:2 3:3 -> p = (2, 2, 3) / 7
    data = _train_only([[1, 2, 3], [1, 3], [2, 3]], num_items=3)
    m = Markov(num_items=3, smoothing=1.0)
    m.fit(data)
    p = m.transition_probs(torch.tensor([1, 2, 3, 0]))
    expect = torch.tensor([[0, 2 / 21, 9 / 21, 10 / 21],  # ((c + p) / (2 + 1))
                           [0, 2 / 21, 2 / 21, 17 / 21],
                           [0, 2 / 7, 2 / 7, 3 / 7],  # no outgoing transition: the prior
                           [0, 2 / 7, 2 / 7, 3 / 7]])  # empty history: the prior
    assert torch.allclose(p, expect, atol=1e-6)
    # the Markov property: only the last item matters
    q = m.query(_batch(torch.tensor([[3, 3, 1], [0, 2, 1]])))
    assert torch.allclose(q[0], q[1]) and torch.allclose(q[0], expect[0], atol=1e-6)
    no_smooth = Markov(num_items=3, smoothing=0.0)
    no_smooth.fit(data)
    assert torch.allclose(no_smooth.transition_probs(torch.tensor([1])), torch.tensor([[0, 0, 0.5, 0.5]]))


def test_time_weighted_knn_scores_by_hand():
    # 4 users; item -> users: 1:{1,2,4} 2:{1,2,3} 3:{2,3} 4:{4}
    data = _train_only([[1, 2], [1, 2, 3], [2, 3], [1, 4]],
                       times=[[0, 5], [0, 5, 9], [3, 4], [0, 7]], num_items=4)  # real times (not the positions)
    m = ItemKNNTW(num_items=4, neighbours=3, decay=0.5, age="time", time_unit=1.0)
    m.fit(data)
    # history [1, 3] at times [0, 2]: weights exp(-0.5 * 2) for item 1, 1 for item 3
    w1 = math.exp(-1.0)
    s = m.query(_batch(torch.tensor([[0, 1, 3]]), times=torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64)))
    expect = torch.tensor([[0.0,
                            1 / math.sqrt(6),  # item 1: sim(3, 1) (no self-similarity)
                            w1 * 2 / 3 + 2 / math.sqrt(6),  # item 2: sim(1,2) = 2/3, sim(3,2) = 2/sqrt(6)
                            w1 / math.sqrt(6),  # item 3: sim(1, 3) = 1/sqrt(6)
                            w1 / math.sqrt(3)]])  # item 4: sim(1, 4) = 1/sqrt(3)
    assert torch.allclose(s, expect, atol=1e-6)
    # neighbours=1 keeps only the nearest: item 1's is 2, item 3's is 2
    top1 = ItemKNNTW(num_items=4, neighbours=1, decay=0.5, age="time", time_unit=1.0)
    top1.fit(data)
    s1 = top1.query(_batch(torch.tensor([[0, 1, 3]]), times=torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64)))
    assert torch.allclose(s1, torch.tensor([[0.0, 0.0, w1 * 2 / 3 + 2 / math.sqrt(6), 0.0, 0.0]]), atol=1e-6)


def test_time_weighted_knn_refuses_time_ages_on_order_only_data():
    # an S3Rec-style file stores only the order (times == positions): ages in days would all be ~0
    # and every decay the same model, so age=time is refused; auto falls back to positions
    order_only = _train_only([[1, 2], [1, 2, 3]], times=[[0, 1], [0, 1, 2]], num_items=3)
    with pytest.raises(ConfigError, match="model.age=time: the training data has no timestamps"):
        ItemKNNTW(num_items=3, age="time").fit(order_only)
    auto = ItemKNNTW(num_items=3, age="auto")
    auto.fit(order_only)
    assert auto.age == "position"


def test_recent_pop_decays_by_bin_and_refuses_positional_times():
    # span [0, 100] in 2 bins of 50; half-life 0.5 of the span = 1 bin -> keep 0.5 per bin
    data = _train_only([[1, 2], [1, 3]], times=[[0, 60], [10, 100]], num_items=3)
    m = RecentPop(num_items=3, half_life=0.5, num_bins=2)
    m.fit(data)
    q = m.query(_batch(torch.tensor([[1], [2]]), times=torch.tensor([[20.0], [70.0]], dtype=torch.float64)))
    assert torch.allclose(q, torch.tensor([[0, 2.0, 0, 0], [0, 1.0, 1, 1]]))
    w = RecentPop(num_items=3, kernel="window", window=0.5, num_bins=2)
    w.fit(data)
    assert torch.allclose(w.table, torch.tensor([[0, 2.0, 0, 0], [0, 0, 1, 1]]))
    with pytest.raises(DataError, match="needs timestamps"):
        RecentPop(num_items=3).fit(_train_only([[1, 2], [1, 3]], num_items=3))


def test_moving_average_weights_by_hand():
    m = MovingAverage(num_items=9, window=3, weights="linear", hidden_size=4, dropout=0.0).eval()
    e = m.in_emb.weight
    h = m.query(_batch(torch.tensor([[0, 5, 6]])))  # weights 3 (item 6), 2 (item 5), padding dropped
    assert torch.allclose(h[0], 0.6 * e[6] + 0.4 * e[5], atol=1e-6)
    m = MovingAverage(num_items=9, window=2, weights="exponential", decay=0.25, hidden_size=4, dropout=0.0).eval()
    h = m.query(_batch(torch.tensor([[7, 5, 6]])))  # window 2: items 6 (1) and 5 (0.25) only
    assert torch.allclose(h[0], (m.in_emb.weight[6] + 0.25 * m.in_emb.weight[5]) / 1.25, atol=1e-6)
    learned = MovingAverage(num_items=9, window=4, weights="learned", hidden_size=4)
    assert [n for n, _ in learned.named_parameters()].count("logits") == 1


def test_count_model_with_a_loss_is_refused_in_one_line():
    cfg = compose_cfg(["model=markov", "loss=ce"])
    model = instantiate(cfg.model, num_items=10, num_users=3)
    with pytest.raises(ConfigError, match=r"model=markov is fit by counting.*loss=ce") as err:
        build_loss_and_sampler(cfg, model)
    assert "\n" not in str(err.value)
    loss, _ = build_loss_and_sampler(compose_cfg(["model=fpmc"]), instantiate(
        compose_cfg(["model=fpmc"]).model, num_items=10, num_users=3))
    assert loss.name == "bpr"


@pytest.mark.parametrize("override, key", [("model.weights=cubic", "model.weights"),
                                           ("model.window=0", "model.window")])
def test_bad_values_name_the_key(override, key):
    cfg = compose_cfg(["model=ma", override])
    with pytest.raises(ConfigError, match=key):
        instantiate_user(cfg.model, num_items=10, num_users=3)
