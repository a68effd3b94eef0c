"""Deterministic synthetic interaction data with real sequential structure.

Each user has a taste cluster; each item belongs to one cluster and has a few likely successors.
A sequence step follows an item-to-item transition (Markov structure), the user's cluster
(taste), or global popularity (Zipf-skewed). Timestamps grow with exponential gaps. A model that
reads order (SASRec, Markov) beats popularity clearly; popularity alone is a real baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _cluster_cdfs(cluster_of: np.ndarray, pop: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster member lists and CDFs (padded) for vectorized inverse-CDF sampling."""
    members = [np.flatnonzero(cluster_of == c) for c in range(n_clusters)]
    width = max(len(m) for m in members)
    ids = np.zeros((n_clusters, width), dtype=np.int64)
    cdf = np.ones((n_clusters, width), dtype=np.float64)
    for c, m in enumerate(members):
        p = pop[m] / pop[m].sum()
        ids[c, : len(m)] = m
        cdf[c, : len(m)] = np.cumsum(p)
    return ids, cdf


def generate(
    num_users: int = 2000,
    num_items: int = 1000,
    mean_length: float = 30.0,
    min_length: int = 5,
    max_length: int = 200,
    num_clusters: int = 20,
    zipf_exponent: float = 1.05,
    p_transition: float = 0.55,
    p_taste: float = 0.3,
    num_successors: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """Return a DataFrame ``user, item, timestamp`` (items 1..num_items, users 1..num_users)."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, num_items + 1) ** zipf_exponent
    pop = pop[rng.permutation(num_items)]
    global_cdf = np.cumsum(pop / pop.sum())
    cluster_of = rng.integers(0, num_clusters, size=num_items)
    c_ids, c_cdf = _cluster_cdfs(cluster_of, pop, num_clusters)

    # Successors: mostly popular items of the same cluster, with decreasing probabilities.
    u = rng.random((num_items, num_successors))
    rows = c_cdf[cluster_of]  # (N, W)
    idx = (rows[:, None, :] < u[:, :, None]).sum(-1)  # (N, S)
    succ = c_ids[cluster_of[:, None], np.minimum(idx, c_ids.shape[1] - 1)]
    succ_p = 0.5 ** np.arange(num_successors)
    succ_cdf = np.cumsum(succ_p / succ_p.sum())

    taste = rng.integers(0, num_clusters, size=num_users)
    lengths = np.clip(min_length + rng.exponential(mean_length - min_length, num_users).astype(np.int64),
                      min_length, max_length)
    T = int(lengths.max())
    seqs = np.zeros((num_users, T), dtype=np.int64)
    cur = np.zeros(num_users, dtype=np.int64)
    for t in range(T):
        r = rng.random(num_users)
        from_taste = c_ids[taste, np.minimum((c_cdf[taste] < rng.random(num_users)[:, None]).sum(1),
                                            c_ids.shape[1] - 1)]
        from_pop = np.minimum(np.searchsorted(global_cdf, rng.random(num_users)), num_items - 1)
        from_succ = succ[cur, np.searchsorted(succ_cdf, rng.random(num_users))]
        nxt = np.where(r < p_taste + p_transition, from_taste, from_pop)
        if t > 0:
            nxt = np.where(r < p_transition, from_succ, nxt)
        seqs[:, t] = nxt
        cur = nxt
    mask = np.arange(T)[None, :] < lengths[:, None]
    users = np.broadcast_to(np.arange(1, num_users + 1)[:, None], (num_users, T))[mask]
    items = seqs[mask] + 1
    gaps = rng.exponential(86400.0, size=(num_users, T))
    start = rng.uniform(0, 3.0e7, size=(num_users, 1))
    times = (start + np.cumsum(gaps, axis=1))[mask]
    return pd.DataFrame({"user": users, "item": items, "timestamp": np.round(times)})
