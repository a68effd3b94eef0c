"""Ranking metrics as pure functions of where the target lands among the ranked items.

One rule for every evaluator: a target scored ``greater`` items below and tied with ``ties``
others lands, under a uniformly random order of the tied items, at each 0-based position
``greater .. greater + ties`` with probability 1 / (ties + 1). HR, NDCG and MRR are the exact
expectations over that order (McSherry & Najork, ECIR 2008): a constant scorer gets HR@K = K/N,
and no tie-breaking convention (optimistic, pessimistic, mid-rank) moves a figure.
"""

from __future__ import annotations

import torch


def _gain(name: str, k: int, device: torch.device) -> torch.Tensor:
    """(K,) value of the metric at each position 0..K-1 (0 from K on)."""
    p = torch.arange(k, dtype=torch.float64, device=device)
    if name == "hr":
        return torch.ones_like(p)
    if name == "ndcg":  # one relevant item: DCG = 1/log2(pos+2), ideal DCG = 1
        return 1.0 / torch.log2(p + 2.0)
    return 1.0 / (p + 1.0)  # mrr


def expected(name: str, rank: torch.Tensor, k: int, ties: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) expected metric@k of targets with ``rank`` items strictly above and ``ties`` tied:
    (F(min(g+t+1, K)) - F(min(g, K))) / (t+1), F the prefix sum of the gains."""
    F = torch.cat([torch.zeros(1, dtype=torch.float64, device=rank.device),
                   _gain(name, k, rank.device).cumsum(0)])  # (K+1,)
    t = torch.zeros_like(rank) if ties is None else ties
    lo, hi = rank.clamp(max=k), (rank + t + 1).clamp(max=k)
    return ((F[hi] - F[lo]) / (t + 1).double()).float()


def hit_rate(rank: torch.Tensor, k: int, ties: torch.Tensor | None = None) -> torch.Tensor:
    return expected("hr", rank, k, ties)


def ndcg(rank: torch.Tensor, k: int, ties: torch.Tensor | None = None) -> torch.Tensor:
    return expected("ndcg", rank, k, ties)


def mrr(rank: torch.Tensor, k: int, ties: torch.Tensor | None = None) -> torch.Tensor:
    return expected("mrr", rank, k, ties)


METRICS = {"hr": hit_rate, "ndcg": ndcg, "mrr": mrr}


def target_rank(scores: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(items scored strictly above, items tied with) ``targets`` (B,) in ``scores`` (B, C), the
    target's own column excluded from the ties; -inf columns below a finite target never count."""
    t = scores.gather(1, targets.unsqueeze(1))  # (B, 1)
    greater = (scores > t).sum(1)
    ties = (scores == t).sum(1) - 1
    return greater, ties


def all_metrics(rank: torch.Tensor, ks: list[int], names: list[str],
                ties: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-example expected values keyed ``ndcg_10`` etc."""
    return {f"{n}_{k}": METRICS[n](rank, k, ties) for n in names for k in ks}
