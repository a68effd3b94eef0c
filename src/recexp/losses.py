"""Losses: pure functions of scores, wrapped as small modules selected by ``conf/loss``.

Two kinds, declared by ``requires``:

* ``"full"``: ``loss(logits (M, N+1), targets (M,))`` over every item (column 0 is padding and
  arrives as ``-inf``);
* ``"sampled"``: ``loss(pos (M,), neg (M, K), pos_logq (M,) | None, neg_logq (M, K) | (K,) | None)``
  over the positive and the sampler's negatives; ``*_logq`` are log sampling probabilities.
  A ``neg_logq`` of ``+inf`` marks a negative the sampler could not avoid (an "accidental hit":
  the row's own positive, or an excluded history item); every sampled loss drops those.

Every function returns the mean over the ``M`` positives. The module wrappers take explicit
kwargs; ``num_items`` (a runtime value) is passed at instantiate and only gBCE uses it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from recexp import gemm
from recexp.errors import ConfigError
from recexp.models.scoring import dot_product_items

if TYPE_CHECKING:
    from recexp.contracts import Scorer


def _keep(neg: torch.Tensor, neg_logq: torch.Tensor | None) -> torch.Tensor:
    """(M, K) float mask: 1 for real negatives, 0 for the sampler's accidental hits."""
    if neg_logq is None:
        return torch.ones_like(neg)
    return torch.isfinite(neg_logq).to(neg.dtype).expand_as(neg)


def _softmax_weights(neg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Softmax over each row's kept negatives (BPR-max / TOP1-max weights), (M, K)."""
    return torch.softmax(neg.masked_fill(keep == 0, -torch.inf), dim=-1).nan_to_num(0.0)


def bpr(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(s+ - s-), averaged over each row's negatives."""
    per = -F.logsigmoid(pos.unsqueeze(-1) - neg) * keep  # (M, K)
    return (per.sum(-1) / keep.sum(-1).clamp(min=1)).mean()


def top1(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """GRU4Rec's TOP1: sigmoid(s- - s+) + sigmoid(s-^2), the second term pushing negatives to 0."""
    per = (torch.sigmoid(neg - pos.unsqueeze(-1)) + torch.sigmoid(neg**2)) * keep  # (M, K)
    return (per.sum(-1) / keep.sum(-1).clamp(min=1)).mean()


def bpr_max(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor, reg: float) -> torch.Tensor:
    """Hidasi & Karatzoglou 2018: -log sum_j w_j sigmoid(s+ - s_j) + reg * sum_j w_j s_j^2,
    with w = softmax over the negatives (the hardest negatives dominate)."""
    w = _softmax_weights(neg, keep)  # (M, K)
    fit = -torch.log((w * torch.sigmoid(pos.unsqueeze(-1) - neg)).sum(-1) + 1e-24)
    return (fit + reg * (w * neg**2).sum(-1)).mean()


def top1_max(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Hidasi & Karatzoglou 2018: sum_j w_j [sigmoid(s_j - s+) + sigmoid(s_j^2)], w = softmax(s-)."""
    w = _softmax_weights(neg, keep)
    return (w * (torch.sigmoid(neg - pos.unsqueeze(-1)) + torch.sigmoid(neg**2))).sum(-1).mean()


def bce(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """SASRec's loss: -[log sigmoid(s+) + sum_j log(1 - sigmoid(s_j))]."""
    return -(F.logsigmoid(pos) + (F.logsigmoid(-neg) * keep).sum(-1)).mean()


def gbce(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor, num_items: int, t: float) -> torch.Tensor:
    """gSASRec's generalised BCE (Petrov & Macdonald 2023): the positive term raised to beta,
    beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = K / (N - 1) the negative sampling rate.
    t = 0 is plain BCE; t = 1 calibrates the sigmoid to full-softmax probabilities."""
    beta = gbce_beta(neg.shape[-1], num_items, t)
    return -(beta * F.logsigmoid(pos) + (F.logsigmoid(-neg) * keep).sum(-1)).mean()


def sampled_softmax(pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
                    neg_logq: torch.Tensor | None, logq: bool) -> torch.Tensor:
    """Softmax cross-entropy over [positive, K negatives].

    With ``logq``, each negative's logit becomes s_j - log(K q_j): then sum_j exp(.) is an unbiased
    estimate of the partition function over all other items, so the loss (and its gradient)
    approaches full softmax as K grows (Bengio & Senecal 2008; Yi et al. 2019). The positive is
    always in the set exactly once, so its own logit is left uncorrected.
    """
    if logq and neg_logq is not None:
        # K counts every draw, dropped hits included: dropping them is what makes the estimate of
        # sum over the *other* items unbiased when q is the unconditional sampling distribution
        neg = neg - (math.log(neg.shape[-1]) + torch.where(torch.isfinite(neg_logq), neg_logq, 0.0))
    neg = neg.masked_fill(keep == 0, -torch.inf)
    logits = torch.cat([pos.unsqueeze(-1), neg], dim=-1)  # (M, 1 + K)
    return (torch.logsumexp(logits, dim=-1) - pos).mean()


class FullLoss(nn.Module):
    """Base of the losses over every item's score (``requires = "full"``): no sampler."""

    requires = "full"
    name = "full"

    def check(self, sampler_name: str, num_negatives: int, num_items: int) -> None:
        """One-line ConfigError when this loss cannot train with that sampler on ``num_items``."""
        if sampler_name != "none":
            raise ConfigError(f"loss={self.name} scores every item, so sampler={sampler_name} has nothing to do: "
                              "use sampler=none, or a sampled loss (bce, bpr, sampled_softmax, ...)")

    def from_queries(self, h: torch.Tensor, targets: torch.Tensor, model: Scorer) -> torch.Tensor:
        """The loss of queries ``h`` (M, D) against ``targets`` (M,) under ``model``'s scores. The
        trainer calls this, so a loss with a cheaper route than the (M, N+1) logits takes it here."""
        return self(model.score(h), targets)


class SampledLoss(nn.Module):
    """The one wrapper of the sampled losses (``requires = "sampled"``): ``forward`` turns the
    sampler's log-probabilities into the kept-negatives mask, then calls :meth:`value`, which a
    loss implements as one of the pure functions above. ``num_items`` is passed at instantiate."""

    requires = "sampled"
    name = "sampled"
    #: fewest negatives per positive the loss is defined for
    min_negatives = 1

    def __init__(self, num_items: int = 0) -> None:
        super().__init__()
        self.num_items = num_items

    def check(self, sampler_name: str, num_negatives: int, num_items: int) -> None:
        if sampler_name == "none":
            raise ConfigError(f"loss={self.name} needs negatives: choose a sampler (e.g. sampler=uniform)")
        if num_negatives < self.min_negatives:
            raise ConfigError(self.too_few(num_negatives))

    def too_few(self, num_negatives: int) -> str:
        return (f"loss={self.name} needs at least {self.min_negatives} negatives per positive "
                f"(sampler.num_negatives={num_negatives})")

    def forward(self, pos: torch.Tensor, neg: torch.Tensor, pos_logq: torch.Tensor | None = None,
                neg_logq: torch.Tensor | None = None) -> torch.Tensor:
        """``pos`` (M,), ``neg`` (M, K) scores; ``*_logq`` the sampler's log-probabilities."""
        return self.value(pos, neg, _keep(neg, neg_logq), neg_logq)

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        """The loss from scores and the (M, K) 0/1 ``keep`` mask of real negatives."""
        raise NotImplementedError


class CrossEntropy(FullLoss):
    """Softmax cross-entropy over all items (SASRec with full CE: Klenitskiy & Vasilev 2023)."""

    name = "ce"

    def __init__(self, label_smoothing: float = 0.0, num_items: int = 0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.label_smoothing:
            # smoothing must not put mass on the padding column (-inf)
            logits = logits[:, 1:]
            targets = targets - 1
        return F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)

    def from_embeddings(self, h: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Same value as ``forward(h @ items.T, targets)`` with column 0 excluded, without keeping the
        (M, N+1) logits: computed in row chunks, gradients formed in the same pass (see
        :class:`ChunkedSoftmaxCE`). ``h`` (M, D), ``items`` (N+1, D) with row 0 = padding."""
        if self.label_smoothing:
            logits = h @ items.T
            return self.forward(logits.float().index_fill(1, torch.zeros(1, dtype=torch.long,
                                                                         device=h.device), float("-inf")), targets)
        return ChunkedSoftmaxCE.apply(h, items[1:], targets - 1)

    def from_queries(self, h: torch.Tensor, targets: torch.Tensor, model: Scorer) -> torch.Tensor:
        table = dot_product_items(model)  # None unless the model scores by a plain dot product
        if table is None:
            return super().from_queries(h, targets, model)
        return self.from_embeddings(h, table, targets)  # fused: never holds the (M, N+1) logits


def _chunk_rows(num_items: int, device: torch.device) -> int:
    """Rows per chunk: the (rows, N) fp32 block bounds memory; on CPU ~6 MB (~130 rows of 12k
    items): CPU time of one forward+backward (1,500 x 12,101, d 64, 1 thread, loaded 2-core machine,
    2026-12-01) was 100-104 ms at 128 rows, 111 at 64 and 192, 129-130 at 500 (the earlier 24 MB);
    on a GPU ~1 GiB keeps kernels large."""
    budget = 6 * 2**20 if device.type == "cpu" else 2**30
    return max(64, budget // (4 * max(num_items, 1)))


#: the fused CE's d/ditems goes through oneDNN up to this size (see ChunkedSoftmaxCE.forward)
GI_ONEDNN_BYTES = 16 * 2**20


class ChunkedSoftmaxCE(torch.autograd.Function):
    """Mean softmax cross-entropy of ``h @ items.T`` against ``targets`` (0-based into ``items``).

    The unfused path writes the (M, N) logits, log-softmax, a zero-filled gradient and a
    log-softmax backward: five passes over M x N floats, the bulk of a SASRec+CE step on CPU.
    Here each row chunk's logits are turned into softmax - onehot in place and multiplied out
    into d/dh (M, D) and d/ditems (N, D) at once; backward only scales them.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        M = h.shape[0]
        want_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        gh = torch.empty(h.shape, dtype=torch.float32, device=h.device) if want_grad else None
        step = _chunk_rows(items.shape[0], h.device)
        # under autocast (amp / cpu_amp) all three matmuls run in its dtype, the softmax in fp32: cast
        # the table once here, not per chunk, and keep d/ditems off the fp32 in-place addmm_
        low = torch.get_autocast_dtype(h.device.type) if torch.is_autocast_enabled(h.device.type) else None
        mm_items = items.to(low) if low is not None else items.float()  # (N, D)
        # fp32 on CPU: the products through oneDNN (recexp.gemm: 2.3-2.9x MKL's on AMD CPUs), with
        # d/ditems accumulated transposed, (D, N), where its product reads the chunk as it lies.
        # oneDNN has no in-place accumulate: each chunk's (D, N) product is a new tensor added in,
        # cheaper than MKL's in-place addmm_ while it is small (Beauty: 2.2 vs 3.7 ms a chunk) and
        # dearer once it is not (10^6 items, 256 MB: 320 vs 121 ms), so large tables keep addmm_
        fast = low is None and gemm.routable(h, mm_items)
        gi_onednn = fast and items.numel() * 4 <= GI_ONEDNN_BYTES
        items_t = None if fast else mm_items.T.contiguous()  # (D, N) once: 27-35 ms vs 31-36 ms per 500-row chunk with items.T (CPU)
        packed = gemm.pack(mm_items, step) if fast else None  # the logits' table, packed once: 1.25 vs 1.41 ms a chunk
        gi_t = torch.zeros(items.shape[::-1], dtype=torch.float32, device=h.device) if gi_onednn and want_grad else None
        gi = torch.zeros(items.shape, dtype=torch.float32, device=h.device) if want_grad and not gi_onednn else None
        for s in range(0, M, step):
            hc, tc = h[s : s + step], targets[s : s + step]  # (C, D), (C,)
            if low is not None:
                hc = hc.to(low)
            logits = gemm.mm_nt(hc, packed) if fast else (hc @ items_t).float()  # (C, N)
            top = logits.amax(1, keepdim=True)  # (C, 1)
            picked = logits.gather(1, tc.unsqueeze(1)).squeeze(1)  # (C,)
            p = logits.sub_(top).exp_()  # (C, N) unnormalised softmax, in place: one exp pass
            z = p.sum(1)  # (C,)
            total += (top.squeeze(1) + z.log() - picked).sum()
            if want_grad:
                p.div_(z.unsqueeze(1))
                p.scatter_add_(1, tc.unsqueeze(1), torch.full((len(tc), 1), -1.0, device=h.device))
                if fast:
                    gh[s : s + step] = gemm.mm_nt(p, mm_items.T)  # (C, D) = p @ items
                    if gi_onednn:
                        gi_t += gemm.mm_nt(hc.T, p.T)  # (D, N) = hc.T @ p
                    else:
                        gi.addmm_(p.T, hc)  # (N, D), in place
                elif low is None:
                    gh[s : s + step] = p @ mm_items  # (C, D)
                    gi.addmm_(p.T, hc.float())  # (N, D)
                else:
                    pl = p.to(low)
                    gh[s : s + step] = pl @ mm_items
                    gi += pl.T @ hc  # (N, D) in the low dtype, accumulated in fp32
        inv = 1.0 / max(M, 1)
        if gi_t is not None:
            gi = gi_t.T
        if want_grad:
            ctx.save_for_backward(gh.mul_(inv).to(h.dtype), gi.mul_(inv).to(items.dtype))
        return total * inv if M else total.fill_(math.nan)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:  # noqa: ANN001
        gh, gi = ctx.saved_tensors
        return gh * grad.to(gh.dtype), gi * grad.to(gi.dtype), None


def bce_offset(num_negatives: int, beta: float = 1.0) -> float:
    """log(beta / K): the logit at which an uninformative score balances the BCE family's loss.

    With K uniform negatives the loss's optimum is s*(j) = log(P(j | ctx) N) + log(beta / K): for
    the average item the logits must all sit at log(beta / K) (-6.9 for gSASRec's K = 256,
    beta = 0.27). A dot-product model has no logit bias, so it buys that shift with one direction
    shared by every item embedding and a query pointing against it (LayerNorm bounds the query's
    norm, leaving little of it for the context): on Beauty the rows' cosine to the mean row went
    0.009 -> 0.92 in one epoch and ranking stalled at the popularity level (docs/results.md).
    Adding this constant to every logit puts that optimum at 0; ranking is unchanged by it."""
    return math.log(beta / num_negatives)


def _offset(offset: float | str, value: float) -> float:
    return value if offset == "auto" else float(offset)


def _check_offset(offset: float | str) -> float | str:
    if offset != "auto" and not (isinstance(offset, int | float) and not isinstance(offset, bool)
                                 and math.isfinite(offset)):
        raise ConfigError(f"loss.offset={offset!r}: expected auto or a finite number (0 = no offset)")
    return offset


class BCE(SampledLoss):
    """Binary cross-entropy: positive vs each sampled negative (the SASRec paper's loss).
    ``offset`` (``auto`` = log(1/K), see :func:`bce_offset`; 0 for one negative) is added to every
    logit; ``offset=0`` is the plain loss."""

    name = "bce"

    def __init__(self, offset: float | str = "auto", num_items: int = 0) -> None:
        super().__init__(num_items)
        self.offset = _check_offset(offset)

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        b = _offset(self.offset, bce_offset(neg.shape[-1]))
        return bce(pos + b, neg + b, keep)


class BPR(SampledLoss):
    """Bayesian personalised ranking: -log sigmoid(pos - neg), averaged over the negatives."""

    name = "bpr"

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        return bpr(pos, neg, keep)


class TOP1(SampledLoss):
    """GRU4Rec's regularised pairwise loss (Hidasi et al. 2016)."""

    name = "top1"

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        return top1(pos, neg, keep)


class SoftmaxWeightedLoss(SampledLoss):
    """BPR-max and TOP1-max weight negatives by a softmax over them: one negative is weight 1."""

    min_negatives = 2
    #: the loss this one reduces to with a single negative
    plain = ""

    def too_few(self, num_negatives: int) -> str:
        return (f"loss={self.name} weights negatives by a softmax over them: with sampler.num_negatives="
                f"{num_negatives} it is just {self.plain} -- use more negatives or that loss")


class BPRMax(SoftmaxWeightedLoss):
    """BPR-max with score regularisation ``reg`` (GRU4Rec's ``bpreg``)."""

    name = "bpr_max"
    plain = "bpr"

    def __init__(self, reg: float = 1.0, num_items: int = 0) -> None:
        super().__init__(num_items)
        if not reg >= 0:
            raise ConfigError(f"loss.reg={reg}: expected a number >= 0")
        self.reg = reg

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        return bpr_max(pos, neg, keep, self.reg)


class TOP1Max(SoftmaxWeightedLoss):
    """TOP1-max: softmax-weighted TOP1 (its sigmoid(s^2) term is the score regularisation)."""

    name = "top1_max"
    plain = "top1"

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        return top1_max(pos, neg, keep)


class GBCE(SampledLoss):
    """Generalised BCE of gSASRec; ``t`` in [0, 1] is its calibration parameter; ``offset``
    (``auto`` = log(beta / K)) is added to every logit as in :class:`BCE`."""

    name = "gbce"

    def check(self, sampler_name: str, num_negatives: int, num_items: int) -> None:
        super().check(sampler_name, num_negatives, num_items)
        if not 0 < num_negatives < num_items:
            raise ConfigError(f"loss=gbce with sampler.num_negatives={num_negatives}: gBCE's sampling rate "
                              f"K/(N-1) needs 1 <= K < N={num_items} items")

    def __init__(self, t: float = 0.75, offset: float | str = "auto", num_items: int = 0) -> None:
        super().__init__(num_items)
        if not 0.0 <= t <= 1.0:
            raise ConfigError(f"loss.t={t}: gBCE's calibration parameter must lie in [0, 1]")
        self.t = t
        self.offset = _check_offset(offset)

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        if self.num_items < 2:
            raise RuntimeError("GBCE needs num_items (passed at instantiate) to know the sampling rate")
        k = neg.shape[-1]
        b = _offset(self.offset, bce_offset(k, gbce_beta(k, self.num_items, self.t)))
        return gbce(pos + b, neg + b, keep, self.num_items, self.t)


class SampledSoftmax(SampledLoss):
    """Softmax over the positive and sampled negatives, logQ-corrected by default."""

    name = "sampled_softmax"

    def __init__(self, logq: bool = True, num_items: int = 0) -> None:
        super().__init__(num_items)
        self.logq = logq

    def value(self, pos: torch.Tensor, neg: torch.Tensor, keep: torch.Tensor,
              neg_logq: torch.Tensor | None) -> torch.Tensor:
        return sampled_softmax(pos, neg, keep, neg_logq, self.logq)


def gbce_beta(num_negatives: int, num_items: int, t: float) -> float:
    """beta of gBCE for K negatives among N items (exposed for the docs and tests)."""
    alpha = num_negatives / (num_items - 1)
    return alpha * (t * (1 - 1 / alpha) + 1 / alpha)

