"""Shared pieces of the recurrent models (GRU4Rec, NARM).

Batches are left-padded (position -1 is the most recent item). A GRU run over left padding would
start from a state already moved by the padding steps, so the recurrent models shift each row to
the left edge first (right padding), run the GRU, and shift the outputs back. A GRU is causal, so
the trailing padding never reaches the real positions: no packing, no host sync.
"""

from __future__ import annotations

import torch


def shift_index(seq: torch.Tensor, to_left: bool) -> torch.Tensor:
    """(B, L) column index that moves each row's real items to the left edge (``to_left``) or
    back to the right edge. Rotations: row b moves by its padding count ``L - len_b``."""
    B, L = seq.shape
    pad = L - (seq > 0).sum(1, keepdim=True)  # (B, 1) leading padding per row
    cols = torch.arange(L, device=seq.device).unsqueeze(0)  # (1, L)
    return (cols + pad) % L if to_left else (cols - pad) % L


def left_align(seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (B, L) ids -> (right-padded ids (B, L), index to undo it for (B, L, ...) outputs)."""
    back = shift_index(seq, to_left=False)
    return seq.gather(1, shift_index(seq, to_left=True)), back


def restore(x: torch.Tensor, back: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """(B, L, D) outputs in right-padded order -> left-padded order of ``seq`` (B, L); padding
    positions are zeroed (the trailing padding steps saw real items, and carry no target)."""
    return x.gather(1, back.unsqueeze(-1).expand_as(x)) * (seq > 0).unsqueeze(-1)
