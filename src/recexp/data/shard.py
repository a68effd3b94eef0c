"""Training windows shared out among the processes of a data-parallel job, epoch by epoch.

Every process draws the epoch's batch order from the same seeded generator (the single-process
order: :func:`recexp.data.batches.length_buckets`), so all of them know every batch; each then
takes every ``world``-th window of each batch, starting at its rank. Every window is trained on
exactly once per epoch across the processes, every process runs the same number of steps (no
process waits in a gradient all-reduce that another never joins), and a step's windows stay of
similar length (the batch was length-bucketed before it was split).
"""

from __future__ import annotations

import torch


def shard_batches(order: torch.Tensor, starts: torch.Tensor, batch_size: int, rank: int, world: int
                  ) -> list[torch.Tensor]:
    """Rank ``rank``'s windows of each batch (``order[s : s + batch_size]`` for ``s`` in
    ``starts``, in that order): a strided slice. A batch with fewer windows than processes (the
    last of the order, shorter than ``batch_size``) joins its neighbour in the batch order, so no
    process ever gets an empty step. Needs ``len(order) >= world``."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside a world of {world}")
    groups: list[torch.Tensor] = []
    for s in starts.tolist():
        g = order[s : s + batch_size]
        if len(g) < world and groups:
            groups[-1] = torch.cat([groups[-1], g])
        else:
            groups.append(g)
    if len(groups) > 1 and len(groups[0]) < world:  # the short batch came first
        groups[1] = torch.cat([groups[0], groups[1]])
        groups.pop(0)
    if groups and len(groups[0]) < world:
        raise ValueError(f"{len(order)} windows cannot feed {world} processes")
    return [g[rank::world] for g in groups]


def group_plan(lengths: torch.Tensor, groups: list[torch.Tensor]) -> list[list[int]]:
    """Per group of windows: [longest length, sum of (length - 1)], one host sync for the epoch
    (as :func:`recexp.data.batches.batch_plan`)."""
    if not groups:
        return []
    return torch.stack([torch.stack([lengths[g].max(), (lengths[g] - 1).clamp(min=0).sum()])
                        for g in groups]).tolist()
