"""Full-softmax cross-entropy over every item, with its fused chunked path (no (M, N+1) logits
table kept for the backward)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from recexp.models.scoring import dot_product_items
from recexp.runtime import gemm

if TYPE_CHECKING:
    from recexp.models.scoring import Scorer

from recexp.losses.base import FullLoss


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
        # fp32 on CPU: the products through oneDNN (recexp.runtime.gemm: 2.3-2.9x MKL's on AMD CPUs), with
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
