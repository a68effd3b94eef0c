"""Beyond-accuracy metrics of the top-K lists, accumulated on the device batch by batch.

- ``coverage_K``: share of the catalogue (items 1..N) that appears in at least one top-K list.
- ``avgpop_K``: average training interaction count of the recommended items (ARP,
  Abdollahpouri et al. 2019), per example then averaged.
- ``novelty_K``: mean self-information -log2 p(i) of the recommended items, with
  p(i) = (count_i + 1) / (interactions + N) (add-one, so items unseen in training stay finite).
"""

from __future__ import annotations

import torch

BEYOND = ("coverage", "avgpop", "novelty")


class BeyondAccuracy:
    def __init__(self, item_counts: torch.Tensor, ks: list[int], names: list[str]) -> None:
        unknown = sorted(set(names) - set(BEYOND))
        if unknown:
            raise ValueError(f"unknown beyond-accuracy metrics {unknown}; expected {list(BEYOND)}")
        counts = item_counts.double()  # (N+1,), index 0 = padding
        self.num_items = len(counts) - 1
        self.pop = counts.float()
        p = (counts + 1) / (counts[1:].sum() + self.num_items)
        self.info = (-torch.log2(p)).float()  # (N+1,)
        self.ks, self.names = ks, names
        self.seen = torch.zeros(len(ks), len(counts), dtype=torch.bool, device=counts.device)  # (|ks|, N+1)

    def per_example(self, top: torch.Tensor) -> dict[str, torch.Tensor]:
        """``top`` (B, max K) item ids, best first -> per-example values (B,); marks coverage."""
        out: dict[str, torch.Tensor] = {}
        for j, k in enumerate(self.ks):
            ids = top[:, :k]  # (B, k)
            if "coverage" in self.names:
                self.seen[j, ids.reshape(-1)] = True
            if "avgpop" in self.names:
                out[f"avgpop_{k}"] = self.pop[ids].mean(1)
            if "novelty" in self.names:
                out[f"novelty_{k}"] = self.info[ids].mean(1)
        return out

    def totals(self) -> dict[str, torch.Tensor]:
        """Set-level metrics over everything seen so far (coverage)."""
        if "coverage" not in self.names:
            return {}
        return {f"coverage_{k}": self.seen[j, 1:].sum() / self.num_items for j, k in enumerate(self.ks)}
