"""The corrupted views S3Rec pre-trains on, built with tensor ops for a whole batch at once.

All inputs are left-padded ``(B, L)`` item-id tensors (0 = padding, position -1 the most recent
item), as produced by :mod:`recexp.data.batches`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MaskedItems:
    inputs: torch.Tensor  # (B, L) the sequence with masked positions replaced by [mask]
    masked: torch.Tensor  # (B, L) bool, True where an item was masked (MIP / MAP targets)
    negatives: torch.Tensor  # (B, L) a random item per position, not in the row's sequence


@dataclass
class Segments:
    context: torch.Tensor  # (B, L) the sequence with one contiguous segment replaced by [mask]
    positive: torch.Tensor  # (B, L) the segment itself, every other real position [mask]
    negative: torch.Tensor  # (B, L) a same-length segment from elsewhere, laid out the same way
    valid: torch.Tensor  # (B,) bool: rows with >= 2 items (a segment needs something around it)


def _uniform(shape: tuple[int, ...], low: int, high: torch.Tensor | int, generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    """Integers uniform in [low, high] (inclusive; ``high`` may differ per element)."""
    u = torch.rand(shape, generator=generator, device=device)
    span = (torch.as_tensor(high, device=device) - low + 1).clamp(min=1)
    return (low + (u * span).floor().long()).minimum(torch.as_tensor(high, device=device).clamp(min=low))


def sample_negatives(seq: torch.Tensor, num_items: int, generator: torch.Generator | None,
                     rounds: int = 8) -> torch.Tensor:
    """(B, L) items uniform in 1..N, redrawn (a fixed number of rounds) where they fall in the
    row's own sequence, as the paper samples MIP negatives outside the user's items."""
    neg = _uniform(tuple(seq.shape), 1, num_items, generator, seq.device)
    for _ in range(rounds):
        clash = (neg.unsqueeze(-1) == seq.unsqueeze(1)).any(-1)  # (B, L) via (B, L, L)
        if not bool(clash.any()):
            break
        neg = torch.where(clash, _uniform(tuple(seq.shape), 1, num_items, generator, seq.device), neg)
    return neg


def mask_items(seq: torch.Tensor, mask_p: float, mask_id: int, num_items: int,
               generator: torch.Generator | None, mask_last: bool = True) -> MaskedItems:
    """Mask each real item with probability ``mask_p``; ``mask_last`` always masks the most
    recent one (the paper's pre-training samples do, which mirrors next-item prediction)."""
    real = seq > 0
    masked = (torch.rand(seq.shape, generator=generator, device=seq.device) < mask_p) & real
    if mask_last:
        masked[:, -1] |= real[:, -1]
    inputs = torch.where(masked, torch.full_like(seq, mask_id), seq)
    return MaskedItems(inputs, masked, sample_negatives(seq, num_items, generator))


def segments(seq: torch.Tensor, pool: torch.Tensor, mask_id: int, generator: torch.Generator | None
             ) -> Segments:
    """One segment per row: length ``k`` uniform in 1..n//2 (n = the row's item count), start
    uniform; the negative segment is ``k`` consecutive items of ``pool`` (all training items
    concatenated, the paper's "long sequence") from a uniform start."""
    B, L = seq.shape
    dev = seq.device
    real = seq > 0
    n = real.sum(1)  # (B,)
    k = _uniform((B,), 1, (n // 2).clamp(min=1), generator, dev)  # (B,)
    start = _uniform((B,), 0, (n - k).clamp(min=0), generator, dev)  # within the real items
    neg_start = _uniform((B,), 0, (len(pool) - k).clamp(min=0), generator, dev)
    rel = torch.arange(L, device=dev).unsqueeze(0) - (L - n).unsqueeze(1)  # (B, L) index among real items
    in_seg = (rel >= start.unsqueeze(1)) & (rel < (start + k).unsqueeze(1)) & real
    mask = torch.full_like(seq, mask_id)
    zero = torch.zeros_like(seq)
    neg_idx = (neg_start.unsqueeze(1) + rel - start.unsqueeze(1)).clamp(0, max(len(pool) - 1, 0))
    neg_items = pool[neg_idx] if len(pool) else zero
    context = torch.where(in_seg, mask, seq)
    positive = torch.where(in_seg, seq, torch.where(real, mask, zero))
    negative = torch.where(in_seg, neg_items, torch.where(real, mask, zero))
    return Segments(context, positive, negative, n >= 2)
