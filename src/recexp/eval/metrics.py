"""Ranking metrics as pure functions of the 0-based rank of the target item."""

from __future__ import annotations

import torch


def hit_rate(rank: torch.Tensor, k: int) -> torch.Tensor:
    return (rank < k).float()


def ndcg(rank: torch.Tensor, k: int) -> torch.Tensor:
    """One relevant item: DCG = 1/log2(rank+2), ideal DCG = 1."""
    return torch.where(rank < k, 1.0 / torch.log2(rank.float() + 2.0), torch.zeros((), device=rank.device))


def mrr(rank: torch.Tensor, k: int) -> torch.Tensor:
    return torch.where(rank < k, 1.0 / (rank.float() + 1.0), torch.zeros((), device=rank.device))


METRICS = {"hr": hit_rate, "ndcg": ndcg, "mrr": mrr}


def target_rank(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of ``targets`` (B,) in ``scores`` (B, C); ties count half (mid-rank), so a
    model that scores everything equal gets the expected rank of a random order, not rank 0."""
    t = scores.gather(1, targets.unsqueeze(1))  # (B, 1)
    greater = (scores > t).sum(1)
    ties = (scores == t).sum(1) - 1
    return greater + torch.div(ties, 2, rounding_mode="floor")


def all_metrics(rank: torch.Tensor, ks: list[int], names: list[str]) -> dict[str, torch.Tensor]:
    """Per-example values keyed ``ndcg_10`` etc."""
    return {f"{n}_{k}": METRICS[n](rank, k) for n in names for k in ks}
