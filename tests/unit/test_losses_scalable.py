"""SCE: exact full CE when one bucket holds every query and item; shapes, gradients, selection of
the hardest negatives, and memory bounded for a 10^6-item catalogue."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from recexp.errors import ConfigError
from recexp.losses import CrossEntropy
from recexp.losses.scalable import (
    ReducedCE,
    ScalableCE,
    _block_topk,
    _BucketCE,
    hardest_negatives_ce,
    rece,
    sce,
)


def _data(M: int, N: int, D: int, seed: int = 0):  # noqa: ANN202
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(M, D, generator=g, requires_grad=True)
    emb = torch.randn(N + 1, D, generator=g, requires_grad=True)  # row 0 = padding
    t = torch.randint(1, N + 1, (M,), generator=g)
    return h, emb, t


@pytest.mark.parametrize("mix_x", [False, True])
def test_one_bucket_covering_everything_is_full_ce(mix_x):
    h, emb, t = _data(37, 50, 8)
    ref = CrossEntropy().from_embeddings(h, emb, t)
    ref_g = torch.autograd.grad(ref, [h, emb])
    got = ScalableCE(n_buckets=1, bucket_size_x=37, bucket_size_y=50, mix_x=mix_x, item_block=7)\
        .from_embeddings(h, emb, t)
    got_g = torch.autograd.grad(got, [h, emb])
    assert torch.allclose(got, ref, atol=1e-5)
    for a, b in zip(got_g, ref_g, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_oversized_buckets_are_clamped_to_the_batch_and_catalogue():
    h, emb, t = _data(5, 9, 4)
    got = ScalableCE(n_buckets=1, bucket_size_x=1000, bucket_size_y=1000).from_embeddings(h, emb, t)
    assert torch.allclose(got, CrossEntropy().from_embeddings(h, emb, t), atol=1e-5)


def test_fewer_negatives_lower_the_loss_and_keep_the_positive_out_of_them():
    # each covered query's loss is a logsumexp over a subset of full CE's terms, with its positive
    # once: never above full CE's per-query value, and the mean can only be below it
    h, emb, t = _data(64, 500, 8, seed=3)
    full = CrossEntropy().from_embeddings(h, emb, t)
    for nb, bx, by in [(8, 16, 32), (32, 64, 500)]:
        got = sce(h, emb[1:], t - 1, nb, bx, by)
        assert float(got) <= float(full) + 1e-5
        assert float(got) > 0


def test_fused_bucket_ce_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(6)
    xb = torch.randn(3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    yb = torch.randn(3, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    hit = torch.zeros(3, 4, 6, dtype=torch.bool)
    hit[0, 1, 2] = hit[2, 3, 0] = True  # a query's own positive among the bucket's items
    assert torch.autograd.gradcheck(lambda a, b, c: _BucketCE.apply(a, b, c, hit), (xb, yb, p))
    # the value: softplus(logsumexp over the unmasked items - p)
    logits = torch.bmm(xb, yb.transpose(1, 2)).masked_fill(hit, float("-inf"))
    want = torch.nn.functional.softplus(torch.logsumexp(logits, 2) - p)
    assert torch.allclose(_BucketCE.apply(xb, yb, p, hit), want)


def test_shapes_and_gradient_flow():
    torch.manual_seed(0)
    h, emb, t = _data(300, 5000, 16, seed=1)
    loss = ScalableCE(n_buckets=16, bucket_size_x=32, bucket_size_y=64).from_embeddings(h, emb, t)
    assert loss.shape == () and torch.isfinite(loss)
    gh, ge = torch.autograd.grad(loss, [h, emb])
    assert gh.shape == h.shape and ge.shape == emb.shape
    assert (gh.abs().sum(1) > 0).sum() > 0  # covered queries learn
    assert (ge.abs().sum(1) > 0).sum() > 0  # positives and selected negatives learn
    assert ge[0].abs().max() == 0  # the padding row is never a candidate


def test_buckets_pick_the_highest_scoring_items():
    # one direction, one query equal to it: the bucket's items are the top dot products
    g = torch.Generator().manual_seed(2)
    items = torch.randn(1000, 8, generator=g)
    proj = torch.randn(3, 8, generator=g)
    want = (proj @ items.T).topk(20, dim=1).indices.sort(1).values
    for block in (1, 7, 64, 5000):
        assert torch.equal(_block_topk(proj, items, 20, block).sort(1).values, want)


def test_generic_path_is_ce_over_the_hardest_negatives():
    h, emb, t = _data(20, 30, 4, seed=4)
    logits = h @ emb.T
    logits[:, 0] = float("-inf")
    assert torch.allclose(hardest_negatives_ce(logits, t, 29), CrossEntropy()(logits, t), atol=1e-5)
    # k = 1: CE over [positive, the single best other item], by hand
    rows = logits[:, 1:].detach().clone()
    pos = rows.gather(1, (t - 1).unsqueeze(1)).squeeze(1)
    best = rows.scatter(1, (t - 1).unsqueeze(1), float("-inf")).amax(1)
    want = (torch.logaddexp(pos, best) - pos).mean()
    assert torch.allclose(ScalableCE(bucket_size_y=1)(logits.detach(), t), want, atol=1e-6)


class _Largest(TorchDispatchMode):
    """Records the element count of the largest tensor any op produces."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        for o in out if isinstance(out, tuple | list) else (out,):
            if isinstance(o, torch.Tensor):
                self.largest = max(self.largest, o.numel())
        return out


def test_memory_is_bounded_for_a_million_items():
    M, N, D = 512, 1_000_000, 8
    h, emb, t = _data(M, N, D, seed=5)
    loss_fn = ScalableCE(n_buckets=32, bucket_size_x=64, bucket_size_y=128, item_block=32_768)
    with _Largest() as mode:
        loss = loss_fn.from_embeddings(h, emb, t)
        loss.backward()
    # nothing larger than the item table's own gradient (N+1, D); a (M, N) logit block would be
    # 64x that, and a (buckets, N) projection 4x
    assert mode.largest <= (N + 1) * D
    assert torch.isfinite(loss)


@pytest.mark.parametrize("key,value", [("n_buckets", 0), ("bucket_size_x", -1), ("bucket_size_y", 1.5),
                                       ("item_block", True)])
def test_bad_values_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=f"loss.{key}="):
        ScalableCE(**{key: value})


def test_presets_compose_and_build():
    from hydra.utils import instantiate

    from tests.conftest import compose_cfg

    cfg = compose_cfg(["experiment=beauty_sasrec_sce"])
    assert cfg.loss._target_.endswith("ScalableCE") and cfg.sampler._target_.endswith("NoSampler")
    loss = instantiate(cfg.loss, num_items=100)
    assert loss.requires == "full" and loss.name == "sce"


@pytest.mark.parametrize("fn,loss", [("sce", lambda ls: ls.ScalableCE(n_buckets=2, bucket_size_x=4, bucket_size_y=8)),
                                     ("rece", lambda ls: ls.ReducedCE())])
def test_the_trainer_takes_the_item_table_path_for_dot_product_models(monkeypatch, fn, loss):
    """The loss contract's entry (from_queries, what training_loss calls) must reach the bucketed
    route, never the (M, N+1) logits, for a model that scores by a dot product."""
    import recexp.losses.scalable as ls
    from recexp.data.batches import Batch
    from recexp.models.sasrec import SASRec
    from recexp.training.trainer import training_loss

    calls = []
    real = getattr(ls, fn)
    monkeypatch.setattr(ls, fn, lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    model = SASRec(num_items=50, max_len=6, hidden_size=8, num_heads=1, dropout=0.0)
    model.score = lambda *a, **k: (_ for _ in ()).throw(AssertionError("full logits formed"))  # type: ignore[method-assign]
    seq = torch.tensor([[0, 1, 2, 3, 4, 5], [0, 0, 7, 8, 9, 10]])
    batch = Batch(seq=seq, users=torch.zeros(2, dtype=torch.long), times=torch.zeros(seq.shape),
                  targets=torch.tensor([[0, 2, 3, 4, 5, 6], [0, 0, 8, 9, 10, 11]]))
    value = training_loss(model, loss(ls), None, batch, None)
    assert calls and torch.isfinite(value)


# --- RECE ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rounds", [1, 3])
def test_rece_with_one_chunk_is_full_ce_and_counts_repeats_once(rounds):
    # one chunk: every query meets every item in every round; with 3 rounds each item is a
    # candidate 3 times and must still enter the softmax once
    h, emb, t = _data(37, 50, 8)
    ref = CrossEntropy().from_embeddings(h, emb, t)
    ref_g = torch.autograd.grad(ref, [h, emb])
    got = ReducedCE(n_buckets=4, buckets_per_chunk=4, rounds=rounds, item_block=7).from_embeddings(h, emb, t)
    got_g = torch.autograd.grad(got, [h, emb])
    assert torch.allclose(got, ref, atol=1e-5)
    for a, b in zip(got_g, ref_g, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_rece_candidates_are_chunk_neighbours_and_exclude_the_positive():
    # a subset of full CE's terms per query, positive once: the mean is below full CE; with enough
    # extra chunks to span the whole catalogue it is full CE again
    torch.manual_seed(0)
    h, emb, t = _data(64, 500, 8, seed=3)
    full = CrossEntropy().from_embeddings(h, emb, t)
    part = rece(h, emb[1:], t - 1, n_buckets=16, n_extra_chunks=0, rounds=1)
    assert 0 < float(part) < float(full)
    spans = rece(h, emb[1:], t - 1, n_buckets=16, n_extra_chunks=15, rounds=1)
    assert torch.allclose(spans, full, atol=1e-5)


def test_rece_finds_harder_negatives_than_uniform_ones():
    # queries that point at clusters of items: the chunked negatives must carry more of the softmax
    # mass than as many uniformly drawn ones (what makes RECE an approximation of CE, not sampling)
    g = torch.Generator().manual_seed(7)
    centres = torch.randn(100, 16, generator=g) * 3
    items = centres.repeat_interleave(20, 0) + torch.randn(2000, 16, generator=g) * 0.5  # (2000, 16)
    t = torch.randint(0, 2000, (256,), generator=g)
    h = items[t] + torch.randn(256, 16, generator=g) * 0.5
    torch.manual_seed(0)
    hard = float(rece(h, items, t, n_buckets=32, n_extra_chunks=1, rounds=2))
    k = 2 * 3 * -(-2000 // 32)  # as many candidates per query (2 rounds x 3 chunks), drawn uniformly
    neg = torch.randint(0, 2000, (256, k), generator=g)
    p = (h * items[t]).sum(1, keepdim=True)
    logits = torch.einsum("md,mkd->mk", h, items[neg]).masked_fill(neg == t.unsqueeze(1), float("-inf"))
    uniform = float((torch.logsumexp(torch.cat([p, logits], 1), 1) - p.squeeze(1)).mean())
    full = float(CrossEntropy().from_embeddings(h, torch.cat([torch.zeros(1, 16), items]), t + 1))
    assert uniform < hard <= full + 1e-5
    assert full - hard < 0.5 * (full - uniform)  # closer to full CE than uniform negatives get


def test_rece_shapes_gradients_and_padding_row():
    torch.manual_seed(0)
    h, emb, t = _data(300, 5000, 16, seed=1)
    loss = ReducedCE().from_embeddings(h, emb, t)
    assert loss.shape == () and torch.isfinite(loss)
    gh, ge = torch.autograd.grad(loss, [h, emb])
    assert (gh.abs().sum(1) > 0).all()  # every query is covered
    assert ge[0].abs().max() == 0  # the padding row is never a candidate


def test_rece_memory_is_bounded_for_a_million_items():
    M, N, D = 512, 1_000_000, 8
    h, emb, t = _data(M, N, D, seed=5)
    with _Largest() as mode:
        loss = ReducedCE(rounds=2, item_block=32_768).from_embeddings(h, emb, t)  # auto buckets
        loss.backward()
    # a round's logits are (M, 3 N / chunks) with sqrt(12 M) chunks: ~N sqrt(M) / 1.2, here 4% of the
    # (M, N) logits of full CE; the rounds run one after the other, so they do not add up
    assert mode.largest <= M * N // 20
    assert torch.isfinite(loss)


@pytest.mark.parametrize("key,value", [("n_buckets", -1), ("rounds", 0), ("n_extra_chunks", 1.5),
                                       ("buckets_per_chunk", True)])
def test_rece_bad_values_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=f"loss.{key}="):
        ReducedCE(**{key: value})


def test_rece_composes():
    from hydra.utils import instantiate

    from tests.conftest import compose_cfg

    loss = instantiate(compose_cfg(["loss=rece"]).loss, num_items=10)
    assert loss.requires == "full" and loss.name == "rece" and loss.rounds == 1 and loss.n_buckets == 0


@pytest.mark.parametrize("nc,E", [(4, 1), (3, 2), (1, 1), (5, 0)])
def test_rece_banded_logits_values_and_gradients(nc, E):
    from recexp.losses.scalable import _BandedLogits

    g = torch.Generator().manual_seed(nc * 10 + E)
    xb = torch.randn(nc, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    yb = torch.randn(nc, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    out = _BandedLogits.apply(xb, yb, E)
    for k, o in enumerate(range(-E, E + 1)):  # band o: chunk c against chunk c + o, -inf past the ends
        for c in range(nc):
            want = xb[c] @ yb[c + o].T if 0 <= c + o < nc else torch.full((3, 5), float("-inf"), dtype=torch.float64)
            assert torch.equal(out[k, c], want.detach()) or torch.allclose(out[k, c], want)
    finite = torch.isfinite(out)  # gradcheck through a function that zeroes the -inf cells
    assert torch.autograd.gradcheck(lambda a, b: _BandedLogits.apply(a, b, E).masked_fill(~finite, 0.0), (xb, yb))
