"""Time-weighted item-based collaborative filtering (Ding & Li, SIGIR 2005), for implicit data.

Item-item similarity is the cosine of binary co-occurrence over training users,
``sim(i, j) = |U_i & U_j| / sqrt(|U_i| |U_j|)``, keeping the ``k`` nearest neighbours of each
item. A user's past items are weighted by a time decay ``exp(-lambda * age)`` (age of the
interaction relative to the user's most recent one), so older interactions count less:

    score(u, j) = sum_{i in history(u)} exp(-lambda * age_i) * sim(i, j)

(Ding & Li divide by the sum of weights to predict a rating; for ranking one user's items that
constant is irrelevant.) Fit is sparse (scipy) and takes no gradient steps; scoring gathers the
neighbour lists of the (at most ``max_len``) history items the batch holds.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recexp.data.batches import Batch
from recexp.data.seqs import SplitData
from recexp.errors import ConfigError
from recexp.models.common import CountModel, has_real_timestamps


def cosine_topk(train, num_items: int, k: int, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(N+1, k) neighbour ids and cosine similarities from binary user-item co-occurrence.

    Row 0 (padding) and the diagonal are zero; rows with fewer than k neighbours are padded
    with (id 0, sim 0). Densifies ``chunk`` rows at a time: memory O(chunk * N)."""
    n = num_items + 1
    seq_id = np.repeat(np.arange(len(train.users)), train.lengths)
    x = sp.csr_matrix((np.ones(len(seq_id), dtype=np.float32), (seq_id, train.items)),
                      shape=(len(train.users), n))
    x.sum_duplicates()
    x.data[:] = 1.0  # binary: a repeated item counts once per user
    xt = x.T.tocsr()
    co = (xt @ x).tocsr()  # (N+1, N+1) co-occurrence counts
    norm = np.sqrt(np.asarray(x.sum(0)).ravel()).astype(np.float32)  # (N+1,) sqrt |U_i|
    inv = np.where(norm > 0, 1.0 / np.maximum(norm, 1e-12), 0.0).astype(np.float32)
    k = min(k, n)
    idx = torch.zeros(n, k, dtype=torch.long)
    val = torch.zeros(n, k)
    for s in range(0, n, chunk):
        block = co[s : s + chunk].toarray()  # (c, N+1)
        block *= inv[s : s + chunk, None] * inv[None, :]
        rows = np.arange(s, min(s + chunk, n))
        block[rows - s, rows] = 0.0  # no self-similarity
        v, i = torch.topk(torch.from_numpy(block), k, dim=1)
        idx[s : s + chunk] = torch.where(v > 0, i, torch.zeros_like(i))
        val[s : s + chunk] = v.clamp(min=0)
    return idx, val


class ItemKNNTW(CountModel):
    def __init__(self, num_items: int, num_users: int = 0, neighbours: int = 100, decay: float = 0.1,
                 age: str = "auto", time_unit: float = 86400.0) -> None:
        super().__init__(num_items, num_users)
        if neighbours < 1:
            raise ConfigError(f"model.neighbours={neighbours}: must be >= 1")
        if decay < 0:
            raise ConfigError(f"model.decay={decay}: must be >= 0")
        if age not in ("auto", "time", "position"):
            raise ConfigError(f"model.age={age!r}: expected auto, time or position")
        if time_unit <= 0:
            raise ConfigError(f"model.time_unit={time_unit}: must be > 0")
        self.neighbours, self.decay, self.age, self.time_unit = neighbours, decay, age, time_unit
        self.register_buffer("nbr_idx", torch.zeros(num_items + 1, 1, dtype=torch.long))
        self.register_buffer("nbr_val", torch.zeros(num_items + 1, 1))

    def fit(self, data: SplitData) -> None:
        if self.age == "auto":
            self.age = "time" if has_real_timestamps(data.train) else "position"
        elif self.age == "time" and not has_real_timestamps(data.train):
            # the reader stored only the order: ages would be positions / time_unit, i.e. ~0 with
            # days, and every decay would silently give the same model (seen in a LastFM sweep)
            raise ConfigError("model.age=time: the training data has no timestamps (only the order); "
                              "use model.age=position (or auto)")
        idx, val = cosine_topk(data.train, self.num_items, self.neighbours)
        self.nbr_idx, self.nbr_val = idx.to(self.nbr_idx.device), val.to(self.nbr_val.device)

    # ``age=auto`` is settled at fit: it travels in the state dict so a saved model scores without the data
    def get_extra_state(self) -> dict[str, str]:
        return {"age": self.age}

    def set_extra_state(self, state: dict[str, str]) -> None:
        self.age = str(state["age"])

    def weights(self, batch: Batch) -> torch.Tensor:
        """exp(-lambda * age) per history position (B, L); 0 at padding."""
        seq = batch.seq
        if self.age == "time":
            age = (batch.times[:, -1:] - batch.times) / self.time_unit  # (B, L) in time units
        else:
            L = seq.shape[1]
            age = torch.arange(L - 1, -1, -1, device=seq.device, dtype=torch.float64).expand_as(seq)
        w = torch.exp(-self.decay * age.clamp(min=0)).float()
        return torch.where(seq > 0, w, torch.zeros_like(w))

    def query(self, batch: Batch) -> torch.Tensor:
        seq = batch.seq  # (B, L)
        B = seq.shape[0]
        w = self.weights(batch)  # (B, L)
        nbr = self.nbr_idx[seq]  # (B, L, k)
        contrib = self.nbr_val[seq] * w.unsqueeze(-1)  # (B, L, k)
        out = torch.zeros(B, self.num_items + 1, device=seq.device)
        out.scatter_add_(1, nbr.reshape(B, -1), contrib.reshape(B, -1))
        out[:, 0] = 0.0  # padded neighbour slots land on column 0
        return out
