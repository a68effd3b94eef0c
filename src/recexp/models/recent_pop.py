"""Recent popularity: item counts near the time of each query, not over all time.

The training time span is cut into ``num_bins`` equal bins. For a query made at time ``t`` (the
user's most recent interaction) an item's score is its count in the bins up to ``t``'s bin,

* ``kernel: exponential``: each earlier bin weighted by ``0.5 ** (age / half_life)``;
* ``kernel: window``: the last ``window`` of the span only (a hard window).

``half_life`` and ``window`` are fractions of the training time span, so one value works for
seconds (MovieLens) and days alike. Needs real timestamps: on files that store only the order
(the S3Rec ``user item item ...`` files) "recent" has no meaning and ``fit`` refuses.
"""

from __future__ import annotations

import numpy as np
import torch

from recexp.data.batches import Batch
from recexp.data.seqs import SplitData
from recexp.errors import ConfigError, DataError
from recexp.models.common import CountModel, has_real_timestamps


class RecentPop(CountModel):
    def __init__(self, num_items: int, num_users: int = 0, kernel: str = "exponential",
                 half_life: float = 0.05, window: float = 0.1, num_bins: int = 200) -> None:
        super().__init__(num_items, num_users)
        if kernel not in ("exponential", "window"):
            raise ConfigError(f"model.kernel={kernel!r}: expected exponential or window")
        for key, v in (("half_life", half_life), ("window", window)):
            if not 0 < v <= 1:
                raise ConfigError(f"model.{key}={v}: must be a fraction of the time span in (0, 1]")
        if num_bins < 1:
            raise ConfigError(f"model.num_bins={num_bins}: must be >= 1")
        self.kernel, self.half_life, self.window, self.num_bins = kernel, half_life, window, num_bins
        self.register_buffer("table", torch.zeros(num_bins, num_items + 1))  # scores per query bin
        self.span = (0.0, 1.0)  # training (t_min, t_max), set by fit

    def fit(self, data: SplitData) -> None:
        train = data.train
        if not has_real_timestamps(train):
            raise DataError(f"model=recent_pop needs timestamps, but dataset {data.name or ''!s} stores only "
                            "the order of interactions: use model=pop")
        t0, t1 = float(train.times.min()), float(train.times.max())
        nb, n = self.num_bins, self.num_items + 1
        b = self._bins(torch.as_tensor(train.times), t0, t1).numpy()
        counts = np.bincount(b * n + train.items, minlength=nb * n).reshape(nb, n).astype(np.float64)
        if self.kernel == "window":
            w = max(1, round(self.window * nb))
            cum = np.cumsum(counts, axis=0)
            table = cum - np.vstack([np.zeros((w, n)), cum[:-w]])[:nb]  # sum of bins b-w+1..b
        else:
            keep = 0.5 ** (1.0 / (self.half_life * nb))  # decay per bin
            table = counts.copy()
            for i in range(1, nb):  # a recurrence over bins (fit only), not over rows
                table[i] += keep * table[i - 1]
        dev = self.table.device
        self.table = torch.as_tensor(table, dtype=torch.float32, device=dev)
        self.span = (t0, t1)

    # the span is state learned at fit: it travels in the state dict so a saved model scores without the data
    def get_extra_state(self) -> dict[str, list[float]]:
        return {"span": [float(x) for x in self.span]}

    def set_extra_state(self, state: dict[str, list[float]]) -> None:
        self.span = (float(state["span"][0]), float(state["span"][1]))

    def _bins(self, t: torch.Tensor, t0: float, t1: float) -> torch.Tensor:
        width = max(t1 - t0, 1e-9) / self.num_bins
        return ((t - t0) / width).floor().clamp(0, self.num_bins - 1).long()

    def query(self, batch: Batch) -> torch.Tensor:
        t = batch.times[:, -1]  # (B,) time of the most recent interaction
        return self.table[self._bins(t, *self.span)]  # (B, N+1)
