"""First-order Markov chain: next-item probabilities from the last item only.

Transition counts ``c(i -> j)`` between consecutive items of the training sequences, smoothed
toward item popularity (a Dirichlet prior, i.e. back-off for unseen transitions):

    P(j | i) = (c(i -> j) + alpha * p(j)) / (c(i -> .) + alpha),   p(j) = count(j) / total

(``prior: uniform`` uses p(j) = 1 / N). Counts live as a sparse CSR matrix; a batch of queries
gathers its rows with tensor ops, never a dense (N+1, N+1) matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recexp.data.batches import Batch
from recexp.data.seqs import SplitData
from recexp.errors import ConfigError
from recexp.models.common import CountModel


def transition_counts(train, num_items: int) -> sp.csr_matrix:
    """(N+1, N+1) counts of item i followed by item j inside one training sequence."""
    follows = train.positions()[1:] > 0  # pairs that do not cross a sequence boundary
    src, dst = train.items[:-1][follows], train.items[1:][follows]
    n = num_items + 1
    return sp.csr_matrix((np.ones(len(src), dtype=np.float32), (src, dst)), shape=(n, n))


class Markov(CountModel):
    def __init__(self, num_items: int, num_users: int = 0, smoothing: float = 1.0,
                 prior: str = "popularity") -> None:
        super().__init__(num_items, num_users)
        if smoothing < 0:
            raise ConfigError(f"model.smoothing={smoothing}: must be >= 0")
        if prior not in ("popularity", "uniform"):
            raise ConfigError(f"model.prior={prior!r}: expected popularity or uniform")
        self.smoothing, self.prior_kind = float(smoothing), prior
        n = num_items + 1
        self.register_buffer("crow", torch.zeros(n + 1, dtype=torch.long))
        self.register_buffer("col", torch.zeros(0, dtype=torch.long))
        self.register_buffer("val", torch.zeros(0))
        self.register_buffer("out_count", torch.zeros(n))  # c(i -> .)
        self.register_buffer("prior", torch.zeros(n))  # p(j); p(0) = 0

    def fit(self, data: SplitData) -> None:
        counts = transition_counts(data.train, self.num_items)
        counts.sum_duplicates()
        dev = self.crow.device
        self.crow = torch.as_tensor(counts.indptr, dtype=torch.long, device=dev)
        self.col = torch.as_tensor(counts.indices, dtype=torch.long, device=dev)
        self.val = torch.as_tensor(counts.data, dtype=torch.float32, device=dev)
        self.out_count = torch.as_tensor(np.asarray(counts.sum(1)).ravel(), dtype=torch.float32, device=dev)
        if self.prior_kind == "uniform":
            prior = torch.ones(self.num_items + 1, device=dev)
        else:
            prior = torch.as_tensor(data.item_counts(), dtype=torch.float32, device=dev)
        prior[0] = 0
        self.prior = prior / prior.sum().clamp(min=1)

    def transition_probs(self, last: torch.Tensor) -> torch.Tensor:
        """P(. | last) for last items (B,) -> (B, N+1); a padding ``last`` (0) gets the prior."""
        denom = (self.out_count[last] + self.smoothing).clamp(min=1e-12).unsqueeze(1)  # (B, 1)
        out = self.smoothing * self.prior.unsqueeze(0) / denom  # (B, N+1)
        start, end = self.crow[last], self.crow[last + 1]
        lens = end - start
        r = torch.repeat_interleave(torch.arange(len(last), device=last.device), lens)  # (nnz_b,)
        k = start[r] + torch.arange(len(r), device=last.device) - torch.repeat_interleave(
            torch.cumsum(lens, 0) - lens, lens)  # index into col/val of each gathered entry
        out.index_put_((r, self.col[k]), self.val[k] / denom[r, 0], accumulate=True)
        return out

    def query(self, batch: Batch) -> torch.Tensor:
        return self.transition_probs(batch.seq[:, -1])  # Markov property: only the last item
