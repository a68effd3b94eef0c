"""Losses: pure functions of scores, wrapped as small modules selected by ``conf/loss``.

Two kinds, declared by ``requires``:

* ``"full"``: ``loss(logits (M, N+1), targets (M,))`` over every item (column 0 is padding and
  arrives as ``-inf``);
* ``"sampled"``: ``loss(pos (M,), neg (M, K), pos_logq (M,) | None, neg_logq (M, K) | None)`` over
  the positive and the sampler's negatives; ``*_logq`` are log sampling probabilities.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FullLoss(nn.Module):
    requires = "full"
    name = "full"


class SampledLoss(nn.Module):
    requires = "sampled"
    name = "sampled"


class CrossEntropy(FullLoss):
    """Softmax cross-entropy over all items (SASRec with full CE: Klenitskiy & Vasilev 2023)."""

    name = "ce"

    def __init__(self, label_smoothing: float = 0.0) -> None:
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


def _chunk_rows(num_items: int, device: torch.device) -> int:
    """Rows per chunk: the (rows, N) fp32 block bounds memory; on CPU ~24 MB (~500 rows of 12k
    items) measured faster than both whole-batch and cache-sized (~4 MB) blocks, whose small
    matmuls are inefficient; on a GPU ~1 GiB keeps kernels large."""
    budget = 24 * 2**20 if device.type == "cpu" else 2**30
    return max(64, budget // (4 * max(num_items, 1)))


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
        gi = torch.zeros(items.shape, dtype=torch.float32, device=h.device) if want_grad else None
        step = _chunk_rows(items.shape[0], h.device)
        for s in range(0, M, step):
            hc, tc = h[s : s + step], targets[s : s + step]  # (C, D), (C,)
            logits = (hc @ items.T).float()  # (C, N)
            top = logits.amax(1, keepdim=True)  # (C, 1)
            picked = logits.gather(1, tc.unsqueeze(1)).squeeze(1)  # (C,)
            p = logits.sub_(top).exp_()  # (C, N) unnormalised softmax, in place: one exp pass
            z = p.sum(1)  # (C,)
            total += (top.squeeze(1) + z.log() - picked).sum()
            if want_grad:
                p.div_(z.unsqueeze(1))
                p.scatter_add_(1, tc.unsqueeze(1), torch.full((len(tc), 1), -1.0, device=h.device))
                gh[s : s + step] = p @ items.float()  # (C, D)
                gi.addmm_(p.T, hc.float())  # (N, D)
        inv = 1.0 / max(M, 1)
        if want_grad:
            ctx.save_for_backward(gh.mul_(inv).to(h.dtype), gi.mul_(inv).to(items.dtype))
        return total * inv if M else total.fill_(math.nan)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:  # noqa: ANN001
        gh, gi = ctx.saved_tensors
        return gh * grad.to(gh.dtype), gi * grad.to(gi.dtype), None


class BCE(SampledLoss):
    """Binary cross-entropy: positive vs each sampled negative (the SASRec paper's loss)."""

    name = "bce"

    def forward(self, pos: torch.Tensor, neg: torch.Tensor, pos_logq: torch.Tensor | None = None,
                neg_logq: torch.Tensor | None = None) -> torch.Tensor:
        return -(F.logsigmoid(pos).mean() + F.logsigmoid(-neg).sum(-1).mean())


class BPR(SampledLoss):
    """Bayesian personalised ranking: -log sigmoid(pos - neg), averaged over the negatives."""

    name = "bpr"

    def forward(self, pos: torch.Tensor, neg: torch.Tensor, pos_logq: torch.Tensor | None = None,
                neg_logq: torch.Tensor | None = None) -> torch.Tensor:
        return -F.logsigmoid(pos.unsqueeze(-1) - neg).mean()
