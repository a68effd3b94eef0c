"""Scalable approximations of full softmax cross-entropy for large catalogues.

``sce``: Scalable Cross-Entropy (Mezentsev, Gusak, Oseledets & Frolov, "Scalable Cross-Entropy Loss
for Sequential Recommendations with Large Item Catalogs", RecSys 2024, arXiv:2409.18721), from the
paper's algorithm after reading a public PyTorch implementation: ``n_buckets`` random directions
w_b (drawn fresh every step); bucket b holds the ``bucket_size_x`` queries and the
``bucket_size_y`` items whose projections on w_b are largest, i.e. pairs likely to have large dot
products -- the hardest negatives, found without scoring every item for every query. Each query
in bucket b gets a softmax CE over [its positive, the bucket's items except its positive]; a query
in several buckets keeps its largest such loss; queries in no bucket are left out of the mean.

Memory: the item projections are ranked ``item_block`` items at a time, so no tensor grows as
(queries x items) or even (buckets x items); the largest are the (n_buckets, bucket_size_x,
bucket_size_y) bucket logits and the (N, D) gradient of the item table (which any loss that
trains item embeddings has). With ``n_buckets=1, bucket_size_x >= M, bucket_size_y >= N`` it is
exactly full CE (tests/unit/test_losses_scalable.py).

``rece``: Reduced Cross-Entropy (Gusak, Mezentsev, Oseledets & Frolov, CIKM 2024, arXiv:2408.02354),
from the paper and its public code: each round sorts queries and items by their nearest random
direction and cuts both orders into equal chunks; a query's negatives are the items of its chunk
and of ``n_extra_chunks`` neighbours, over ``rounds`` rounds, each item counted once. Every query
is covered. See :func:`rece` for what is done differently from the reference code (same values).

Both are ``requires = "full"`` losses (they need no sampler): the trainer hands dot-product models'
queries and item table to ``from_embeddings``; other models go through ``forward(logits,
targets)``: SCE keeps each row's ``bucket_size_y`` hardest negatives of the full logits, RECE is
exact CE there (neither saves memory: such a model already built the logits).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from recexp.errors import ConfigError
from recexp.losses import FullLoss
from recexp.models.scoring import dot_product_items
from recexp.runtime.precision import native_bf16

if TYPE_CHECKING:
    from recexp.models.scoring import Scorer


def _block_topk(proj: torch.Tensor, items: torch.Tensor, k: int, block: int) -> torch.Tensor:
    """(P, k) indices of the ``k`` items with the largest ``proj @ items.T`` per row, scanning the
    (N, D) ``items`` ``block`` rows at a time: memory (P, block + k), never (P, N)."""
    best_v = best_i = None
    for s in range(0, items.shape[0], block):
        v = proj @ items[s : s + block].T  # (P, C)
        tv, ti = v.topk(min(k, v.shape[1]), dim=1, sorted=False)
        ti += s
        if best_v is not None:
            tv, j = torch.cat([best_v, tv], 1).topk(min(k, best_v.shape[1] + tv.shape[1]), dim=1, sorted=False)
            ti = torch.cat([best_i, ti], 1).gather(1, j)
        best_v, best_i = tv, ti
    return best_i


class _BucketCE(torch.autograd.Function):
    """Per (bucket, query) CE over [positive logit p, the bucket's items except the positive]:
    softplus(logsumexp_j(x . y_j) - p). Fused like ``losses.ChunkedSoftmaxCE``: the softmax over
    the bucket is formed once, in place, and reused by backward (autograd's logsumexp would exp the
    (n_b, bx, by) logits a second time and keep a masked copy)."""

    @staticmethod
    def forward(ctx, xb: torch.Tensor, yb: torch.Tensor, p: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        logits = torch.bmm(xb, yb.transpose(1, 2))  # (n_b, bx, by)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32)).masked_fill_(hit, float("-inf"))
        top = logits.amax(2, keepdim=True).clamp_min_(-3e38)  # (n_b, bx, 1); finite even if all masked
        w = logits.sub_(top).exp_()  # (n_b, bx, by) unnormalised softmax, in place
        z = w.sum(2)  # (n_b, bx)
        d = top.squeeze(2) + z.log() - p.to(z.dtype)  # logsumexp(neg) - p
        w.div_(z.clamp_min(1e-30).unsqueeze(2))  # softmax over the bucket's negatives
        ctx.save_for_backward(xb, yb, w, torch.sigmoid(d))
        return F.softplus(d)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:  # noqa: ANN001
        xb, yb, w, sig = ctx.saved_tensors
        g = grad * sig  # (n_b, bx): d per / d logsumexp; -g is d per / d p
        G = (w * g.unsqueeze(2)).to(xb.dtype)  # (n_b, bx, by) d per / d logit_j (w kept: backward may rerun)
        return torch.bmm(G, yb), torch.bmm(G.transpose(1, 2), xb), -g, None


def sce(h: torch.Tensor, items: torch.Tensor, targets: torch.Tensor, n_buckets: int, bucket_size_x: int,
        bucket_size_y: int, mix_x: bool = False, item_block: int = 65_536) -> torch.Tensor:
    """Scalable cross-entropy of queries ``h`` (M, D) against ``items`` (N, D), ``targets`` (M,)
    0-based into ``items``. Mean over the queries that fell in at least one bucket."""
    M, D = h.shape
    N = items.shape[0]
    bx, by = min(bucket_size_x, M), min(bucket_size_y, N)
    pos = (h * items.index_select(0, targets)).sum(1)  # (M,)
    with torch.no_grad():  # bucket selection is not differentiated (as in the paper)
        hd = h.detach().float()
        scale = D ** -0.25
        if mix_x:  # directions are random mixtures of this batch's queries: they follow the data
            dirs = (torch.randn(n_buckets, M, device=h.device) * scale) @ hd  # (n_b, D)
        else:
            dirs = torch.randn(n_buckets, D, device=h.device) * scale  # (n_b, D)
        top_x = (dirs @ hd.T).topk(bx, dim=1, sorted=False).indices.flatten()  # (n_b * bx,); (n_b, M) is small
        top_y = _block_topk(dirs, items.detach().float(), by, item_block).flatten()  # (n_b * by,)
        # (n_b, bx, by): the query's own positive among the bucket's items
        hit = (targets.index_select(0, top_x).view(n_buckets, bx, 1) == top_y.view(n_buckets, 1, by))
    # index_select, not h[idx]: its backward is one index_add_, where advanced indexing's
    # index_put_ zero-fills and accumulates (measured ~25% of SCE's CPU time on Beauty)
    xb = h.index_select(0, top_x).view(n_buckets, bx, D)
    yb = items.index_select(0, top_y).view(n_buckets, by, D)
    p = pos.float().index_select(0, top_x).view(n_buckets, bx)  # (n_b, bx)
    per = _BucketCE.apply(xb, yb, p, hit)  # (n_b, bx)
    # a query in several buckets keeps its largest loss (its hardest bucket); -inf = in no bucket
    loss = torch.full((M,), float("-inf"), device=h.device).scatter_reduce(
        0, top_x, per.flatten(), reduce="amax", include_self=True)
    covered = torch.isfinite(loss)
    # no boolean indexing: the mean stays on the device (no host sync per step)
    return torch.where(covered, loss, 0.0).sum() / covered.sum().clamp(min=1)


def hardest_negatives_ce(logits: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """CE over [positive, the ``k`` highest-scoring other items] per row of full ``logits``
    (M, N+1), column 0 padding: what SCE approximates, for models without an item table."""
    logits = logits[:, 1:].float()
    t = (targets - 1).unsqueeze(1)  # (M, 1)
    p = logits.gather(1, t)  # (M, 1)
    neg = logits.scatter(1, t, float("-inf")).topk(min(k, logits.shape[1] - 1), dim=1).values  # (M, k)
    return (torch.logsumexp(torch.cat([p, neg], 1), 1) - p.squeeze(1)).mean()


def _check_ints(*rules: tuple[str, object, int]) -> None:
    """One-line ConfigError for the first ``(key, value, lowest)`` whose value is not an integer >= lowest."""
    for key, value, low in rules:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"loss.{key}={value!r}: expected an integer >= {low}")


class _ItemTableLoss(FullLoss):
    """A full-CE approximation that works on the model's item table instead of the (M, N+1) logits:
    :meth:`from_queries` (the trainer's entry, the loss contract) takes that route when the model
    scores by a dot product; other models go through ``forward(logits, targets)``. Subclasses give
    :meth:`reduced` on 0-based targets and the table without its padding row."""

    def from_queries(self, h: torch.Tensor, targets: torch.Tensor, model: Scorer) -> torch.Tensor:
        table = dot_product_items(model)
        if table is None:
            return super().from_queries(h, targets, model)
        return self.from_embeddings(h, table, targets)

    def from_embeddings(self, h: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``h`` (M, D), ``items`` (N+1, D) with row 0 = padding (never a candidate), ``targets``
        (M,) in 1..N."""
        return self.reduced(h, items[1:], targets - 1)

    def reduced(self, h: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ScalableCE(_ItemTableLoss):
    """SCE (Mezentsev et al., RecSys 2024): softmax CE over the hardest negatives found by random
    bucketing of queries and items; see the module docstring."""

    name = "sce"

    def __init__(self, n_buckets: int = 64, bucket_size_x: int = 64, bucket_size_y: int = 256,
                 mix_x: bool = False, item_block: int = 65_536, num_items: int = 0) -> None:
        super().__init__()
        _check_ints(("n_buckets", n_buckets, 1), ("bucket_size_x", bucket_size_x, 1),
                    ("bucket_size_y", bucket_size_y, 1), ("item_block", item_block, 1))
        self.n_buckets, self.bucket_size_x, self.bucket_size_y = n_buckets, bucket_size_x, bucket_size_y
        self.mix_x, self.item_block = bool(mix_x), item_block

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return hardest_negatives_ce(logits, targets, self.bucket_size_y)

    def reduced(self, h: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return sce(h, items, targets, self.n_buckets, self.bucket_size_x, self.bucket_size_y, self.mix_x,
                   self.item_block)


def _bucket_of(dirs: torch.Tensor, x: torch.Tensor, block: int) -> torch.Tensor:
    """(R, n) index of the direction among ``dirs`` (R, n_b, D) with the largest projection of each
    row of ``x`` (n, D), ``block`` rows at a time: memory (block, R * n_b), never (R, n_b, n).
    The projections only pick buckets at random, so they run in bf16 where that is native (3.9x
    fp32's throughput on this project's CPU; a near-tie may pick the other bucket, which is as
    random as the directions themselves)."""
    R, nb, D = dirs.shape
    dtype = torch.bfloat16 if native_bf16(x.device.type) else torch.float32
    flat = dirs.reshape(R * nb, D).T.to(dtype)  # (D, R * n_b): one matmul per block, argmax along the last dim
    return torch.cat([(x[s : s + block].to(dtype) @ flat).float().view(-1, R, nb).argmax(2)
                      for s in range(0, x.shape[0], block)]).T


class _BandedLogits(torch.autograd.Function):
    """Logits of each query chunk against its own item chunk and the ``E`` chunks on either side:
    ``xb`` (nc, cx, D), ``yb`` (nc, cy, D) -> (2E+1, nc, cx, cy), -inf where chunk c + o is past
    either end. Each band is one bmm written in place; backward accumulates into one gradient
    buffer per input (autograd over slices would zero-fill a table-sized gradient per band)."""

    @staticmethod
    def forward(ctx, xb: torch.Tensor, yb: torch.Tensor, E: int) -> torch.Tensor:  # noqa: ANN001
        nc, cx, _ = xb.shape
        out = xb.new_full((2 * E + 1, nc, cx, yb.shape[1]), float("-inf"))
        for k, o in enumerate(range(-E, E + 1)):
            lo, hi = max(0, -o), nc - max(0, o)
            if hi > lo:
                torch.bmm(xb[lo:hi], yb[lo + o : hi + o].transpose(1, 2), out=out[k, lo:hi])
        ctx.save_for_backward(xb, yb)
        ctx.E = E
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:  # noqa: ANN001
        xb, yb = ctx.saved_tensors
        E, nc = ctx.E, xb.shape[0]
        grad = grad.to(xb.dtype)
        gx = torch.bmm(grad[E], yb)  # the own-chunk band covers every chunk: it starts both sums
        gy = torch.bmm(grad[E].transpose(1, 2), xb)
        for k, o in enumerate(range(-E, E + 1)):
            lo, hi = max(0, -o), nc - max(0, o)
            if o and hi > lo:
                g = grad[k, lo:hi]  # (n, cx, cy)
                gx[lo:hi].baddbmm_(g, yb[lo + o : hi + o])
                gy[lo + o : hi + o].baddbmm_(g.transpose(1, 2), xb[lo:hi])
        return gx, gy, None


def rece(h: torch.Tensor, items: torch.Tensor, targets: torch.Tensor, n_buckets: int = 0,
         buckets_per_chunk: int = 1, n_extra_chunks: int = 1, rounds: int = 1,
         item_block: int = 65_536) -> torch.Tensor:
    """Reduced cross-entropy of queries ``h`` (M, D) against ``items`` (N, D), ``targets`` (M,)
    0-based into ``items``: each round, queries and items are sorted by their nearest of
    ``n_buckets`` random directions and cut into n_buckets / buckets_per_chunk equal chunks;
    a query's negatives are the items of its chunk and of the ``n_extra_chunks`` chunks on either
    side, over all rounds, each counted once. ``n_buckets=0``: the paper's balance of bucketing
    and logits, sqrt(4 * buckets_per_chunk * (1 + 2 * n_extra_chunks) * min(M, N)).

    Each round's logits stay in chunk order, (chunks, queries per chunk, candidates), and are
    reduced there to one logsumexp per query; rounds meet only as (M,) vectors. An item already
    met in an earlier round is known without sorting: it lies within ``n_extra_chunks`` of the
    query's chunk in that round's order (the reference implementation sorts the candidate ids)."""
    M, D = h.shape
    N = items.shape[0]
    R, E = rounds, n_extra_chunks
    nb = n_buckets or max(1, int((4 * buckets_per_chunk * (1 + 2 * E) * min(M, N)) ** 0.5))
    nc = max(1, min(nb // buckets_per_chunk, M, N))  # chunks (a chunk holds >= 1 query and item)
    cx, cy = -(-M // nc), -(-N // nc)  # ceil: the last chunk is padded
    pos = (h * items.index_select(0, targets)).sum(1)  # (M,)
    ar = torch.arange(max(M, N), device=h.device)
    with torch.no_grad():  # the bucketing is not differentiated (as in the paper)
        dirs = torch.randn(R, nb, D, device=h.device)
        xo = _bucket_of(dirs, h.detach().float(), item_block).argsort(dim=1, stable=True)  # (R, M)
        yo = _bucket_of(dirs, items.detach().float(), item_block).argsort(dim=1, stable=True)  # (R, N)
        x_chunk = torch.empty_like(xo).scatter_(1, xo, ar[:M].expand(R, M))  # (R, M) slot of each query ...
        slot = x_chunk.clone()
        x_chunk //= cx  # ... and its chunk
        y_chunk = torch.empty_like(yo).scatter_(1, yo, ar[:N].expand(R, N)) // cy  # (R, N)
        xo = F.pad(xo, (0, nc * cx - M)).view(R, nc, cx)  # padding slots repeat query 0, never read
        yo = F.pad(yo, (0, nc * cy - N), value=-1).view(R, nc, cy)  # -1: no item
        # ids of each chunk's candidates, by band: chunk c + o for o in -E..E (-1 past the ends)
        ids = F.pad(yo, (0, 0, E, E), value=-1).unfold(1, 2 * E + 1, 1).permute(0, 3, 1, 2)  # (R, 2E+1, nc, cy)
    terms = [pos.float()]
    for r in range(R):
        with torch.no_grad():
            q = xo[r].view(1, nc, cx, 1)  # the query in each slot
            cand = ids[r].unsqueeze(2)  # (2E+1, nc, 1, cy)
            drop = (cand < 0) | (cand == targets[q])  # no item, or the query's own positive
            for e in range(r):  # met in round e already: within E chunks of the query there
                drop |= (y_chunk[e][cand.clamp(min=0)] - x_chunk[e][q]).abs_() <= E
        xb = h.index_select(0, xo[r].flatten()).view(nc, cx, D)
        yb = items.index_select(0, yo[r].clamp(min=0).flatten()).view(nc, cy, D)
        logits = _BandedLogits.apply(xb, yb, E).float().masked_fill(drop, float("-inf"))  # (2E+1, nc, cx, cy)
        terms.append(torch.logsumexp(logits, (0, 3)).view(-1).index_select(0, slot[r]))  # (M,) this round's negatives
    lse = torch.logsumexp(torch.stack(terms, 1), 1)  # over [positive, every round's negatives]
    return (lse - terms[0]).mean()


class ReducedCE(_ItemTableLoss):
    """RECE (Gusak, Mezentsev, Oseledets & Frolov, "RECE: Reduced Cross-Entropy Loss for
    Large-Catalogue Sequential Recommenders", CIKM 2024, arXiv:2408.02354): softmax CE over the
    negatives that share an LSH-like chunk with the query (items and queries sorted by their nearest
    random direction), over several rounds; see :func:`rece`. Every query is covered (unlike SCE's
    buckets), and with one chunk it is exactly full CE."""

    name = "rece"

    def __init__(self, n_buckets: int = 0, buckets_per_chunk: int = 1, n_extra_chunks: int = 1, rounds: int = 1,
                 item_block: int = 65_536, num_items: int = 0) -> None:
        super().__init__()
        _check_ints(("n_buckets", n_buckets, 0), ("buckets_per_chunk", buckets_per_chunk, 1),
                    ("n_extra_chunks", n_extra_chunks, 0), ("rounds", rounds, 1), ("item_block", item_block, 1))
        self.n_buckets, self.buckets_per_chunk = n_buckets, buckets_per_chunk
        self.n_extra_chunks, self.rounds, self.item_block = n_extra_chunks, rounds, item_block

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # models without an item table already built the full logits: nothing to save, exact CE
        return F.cross_entropy(logits.float(), targets)

    def reduced(self, h: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return rece(h, items, targets, self.n_buckets, self.buckets_per_chunk, self.n_extra_chunks, self.rounds,
                    self.item_block)
