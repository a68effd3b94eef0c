"""Negative samplers: tensor ops on the training device, no per-row Python.

A sampler is set up once with the training item counts, then ``sample(pos, batch, rows)``
returns :class:`Negatives` for the ``M`` positives ``pos`` (``rows`` maps each to its batch row,
whose sequence is the user's visible history). Each sampler reports the log-probability of what
it drew, so sampled softmax can apply the logQ correction.

Exclusion (``exclude=positive|history``): per-row draws that hit an excluded item are redrawn a
fixed number of times (no host sync to test for "done"); whatever still hits -- and, with
``shared`` negatives, every hit, since one set serves all rows -- gets ``log_q = +inf``, which
every sampled loss reads as "drop this negative" (see ``recexp.losses``). ``log_q`` is then
(M, K) even for shared ids (K,).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from recexp.data.batches import Batch
from recexp.errors import ConfigError

# one redraw: a hit survives with p_hit^2 (< 0.1% for an item with 3% of the mass) and is then
# dropped; each round costs a full (M, K) draw, so more rounds would only buy the rare survivor
_REDRAW_ROUNDS = 1


@dataclass
class Negatives:
    ids: torch.Tensor  # (M, K) per positive, or (K,) shared by all positives
    log_q: torch.Tensor | None = None  # (M, K) or (K,): log P(draw); +inf = excluded item, drop it
    pos_log_q: torch.Tensor | None = None  # (M,) log P(positive would be drawn)


class Sampler:
    """Base: ``num_negatives`` per positive (or in total when ``shared``); subclasses implement
    ``_draw`` (ids of a shape) and ``log_prob`` (log-probability of ids, same shape)."""

    name = "base"

    def __init__(self, num_negatives: int = 1, shared: bool = False, exclude: str = "positive") -> None:
        if exclude not in ("positive", "history", "none"):
            raise ConfigError(f"sampler.exclude={exclude!r}: expected positive, history or none")
        if int(num_negatives) < 1:
            raise ConfigError(f"sampler.num_negatives={num_negatives}: expected at least 1")
        self.num_negatives, self.shared, self.exclude = int(num_negatives), bool(shared), exclude
        self.num_items = 0
        self.device = torch.device("cpu")

    @property
    def total_negatives(self) -> int:
        """Negatives drawn per positive (or per batch when ``shared``): what a loss checks."""
        return self.num_negatives

    def check(self, num_items: int) -> None:
        """One-line ConfigError when this sampler cannot serve a catalogue of ``num_items``."""
        if self.exclude != "none" and num_items < 2:
            raise ConfigError(f"sampler={self.name} with exclude={self.exclude}: a catalogue of {num_items} "
                              "item(s) has no negative besides the positive (use sampler.exclude=none)")

    def setup(self, item_counts: torch.Tensor, device: torch.device) -> None:
        """``item_counts`` (N+1,): training interactions per item id, index 0 = padding."""
        self.num_items = len(item_counts) - 1
        self.device = device

    def begin_batch(self, pos: torch.Tensor) -> None:
        """Per-batch state from the batch's positives ``pos`` (M,) (in-batch samplers draw from them)."""

    def _draw(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, ids: torch.Tensor) -> torch.Tensor:
        """log P(one draw is ``ids``), same shape; -inf for ids never drawn."""
        raise NotImplementedError

    def prob(self, ids: torch.Tensor) -> torch.Tensor:
        """P(one draw is ``ids``), same shape; subclasses with a probability table override it."""
        return self.log_prob(ids).exp()

    def _log_q_cond(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """log_q of ``ids`` as actually drawn: per-row draws redrawn away from the positive come
        from q conditioned on "not the positive", q_i / (1 - q_pos). (History exclusion is left
        at this approximation: the history's mass is not removed.)"""
        log_q = self.log_prob(ids)
        if self.shared or self.exclude == "none":
            return log_q  # shared: hits are dropped, not redrawn, so q is unconditional
        p_pos = self.log_prob(pos).exp().clamp(max=1 - 1e-6)  # (M,)
        return log_q - torch.log1p(-p_pos).unsqueeze(1)

    def _hits(self, ids: torch.Tensor, pos: torch.Tensor, batch: Batch, rows: torch.Tensor) -> torch.Tensor:
        """(M, K) bool: negative equals the row's positive (or, with ``history``, a history item)."""
        ids = ids.expand(len(pos), -1) if ids.dim() == 1 else ids  # (M, K)
        bad = ids == pos.unsqueeze(1)
        if self.exclude == "history":  # (M, K, L) compare: fine for per-row K; heavy for large shared K
            bad |= (ids.unsqueeze(-1) == batch.seq[rows].unsqueeze(1)).any(-1)
        return bad

    def _finish(self, ids: torch.Tensor, log_q: torch.Tensor, pos_log_q: torch.Tensor, pos: torch.Tensor,
                batch: Batch, rows: torch.Tensor) -> Negatives:
        if self.exclude != "none":
            bad = self._hits(ids, pos, batch, rows)
            log_q = log_q.expand(bad.shape).masked_fill(bad, math.inf)
        return Negatives(ids, log_q, pos_log_q)

    def draw_ids(self, pos: torch.Tensor, batch: Batch, rows: torch.Tensor,
                 generator: torch.Generator | None) -> torch.Tensor:
        """(K,) shared or (M, K) ids, per-row hits redrawn (not yet marked): the raw draw a
        composite sampler (:class:`MixedSampler`) combines."""
        K = self.num_negatives
        if self.shared:
            return self._draw((K,), generator)
        ids = self._draw((len(pos), K), generator)
        if self.exclude != "none":
            for _ in range(_REDRAW_ROUNDS):
                ids = torch.where(self._hits(ids, pos, batch, rows), self._redraw(ids, generator), ids)
        return ids

    def _redraw(self, ids: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Replacement draws for (M, K) ``ids``: the same ids shifted by one row. Row i-1's draw in
        column k is independent of row i's and has the same distribution, so every replaced entry
        is still a draw from q -- at the price of one copy instead of a second full draw. A single
        row has no neighbour and draws afresh."""
        return ids.roll(1, dims=0) if len(ids) > 1 else self._draw(ids.shape, generator)

    def sample(self, pos: torch.Tensor, batch: Batch, rows: torch.Tensor,
               generator: torch.Generator | None = None) -> Negatives:
        self.begin_batch(pos)
        ids = self.draw_ids(pos, batch, rows, generator)
        return self._finish(ids, self._log_q_cond(ids, pos), self.log_prob(pos), pos, batch, rows)


class NoSampler(Sampler):
    """For full-softmax losses: nothing to draw. Accepts (and ignores) the common sampler keys so
    a sweep preset can set them once for every sampler it crosses."""

    name = "none"

    def __init__(self, num_negatives: int = 0, shared: bool = False, exclude: str = "none") -> None:
        super().__init__(num_negatives=1, exclude="none")
        self.num_negatives = 0

    def sample(self, pos, batch, rows, generator=None) -> Negatives:  # noqa: ANN001
        raise RuntimeError("sampler=none draws no negatives; pair it with a full loss such as loss=ce")


class UniformSampler(Sampler):
    """Uniform over items 1..N."""

    name = "uniform"

    def _draw(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        return torch.randint(1, self.num_items + 1, shape, device=self.device, generator=generator)

    def log_prob(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.full(ids.shape, -math.log(self.num_items), device=ids.device)

    def prob(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.full(ids.shape, 1.0 / self.num_items, device=ids.device)


def alias_table(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Walker/Vose alias table for drawing from ``p`` (n,) in O(1) per draw: keep column j with
    probability ``accept[j]``, else take ``alias[j]``. Built once (a Python pass over n items at
    setup); drawing is then three tensor ops, much cheaper than a binary search per draw."""
    n = len(p)
    scaled = (p.double() / p.sum() * n).tolist()
    alias = list(range(n))
    small = [i for i, x in enumerate(scaled) if x < 1.0]
    large = [i for i, x in enumerate(scaled) if x >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        alias[s] = g
        scaled[g] += scaled[s] - 1.0
        (small if scaled[g] < 1.0 else large).append(g)
    for i in small + large:  # leftovers are 1 up to rounding
        scaled[i] = 1.0
    return torch.tensor(scaled, dtype=torch.float64), torch.tensor(alias, dtype=torch.long)


class PopularitySampler(Sampler):
    """P(i) proportional to count(i)^alpha over the training counts; alpha = 0 is uniform,
    alpha = 1 is the empirical item distribution. Drawn with an alias table."""

    name = "popularity"

    def __init__(self, num_negatives: int = 1, shared: bool = False, exclude: str = "positive",
                 alpha: float = 1.0) -> None:
        super().__init__(num_negatives, shared, exclude)
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ConfigError(f"sampler.alpha={alpha}: expected a finite number >= 0")
        self.alpha = float(alpha)

    def setup(self, item_counts: torch.Tensor, device: torch.device) -> None:
        super().setup(item_counts, device)
        w = item_counts[1:].to(dtype=torch.float64).cpu().pow(self.alpha)  # (N,); 0^0 = 1
        if not float(w.sum()) > 0:
            raise ConfigError("sampler=popularity: the training split has no item counts")
        p = w / w.sum()
        accept, alias = alias_table(p)
        self.accept = accept.double().to(device)
        # [1..N, alias + 1]: an alias draw is one lookup at j (kept) or N + j (aliased)
        self.table = torch.cat([torch.arange(1, self.num_items + 1), alias + 1]).to(device)
        # (N+1,) log P(i); padding and unseen items (alpha > 0) are never drawn: -inf
        self.p = torch.cat([torch.zeros(1, dtype=torch.float64), p]).float().to(device)
        self.log_p = self.p.log()

    def _draw(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        # one uniform per draw: its integer part picks the column j, its fraction is the coin
        # (float64, so the coin keeps ~30 bits of resolution even for millions of items)
        n = self.num_items
        x = torch.rand(shape, device=self.device, dtype=torch.float64, generator=generator).view(-1).mul_(n)
        j = x.long().clamp_(max=n - 1)
        coin = x.sub_(j)  # in [0, 1)
        j += (coin >= self.accept.index_select(0, j)).long().mul_(n)  # aliased: N + j
        return self.table.index_select(0, j).view(shape)

    def log_prob(self, ids: torch.Tensor) -> torch.Tensor:
        return self.log_p[ids]

    def prob(self, ids: torch.Tensor) -> torch.Tensor:
        return self.p[ids]


class InBatchSampler(Sampler):
    """Negatives are other positives of the same mini-batch: K of them per row (or shared), drawn
    uniformly over the batch's M positive slots -- so item i comes with probability c_i / M, its
    count in the batch (popularity-like). Never builds an (M, M) matrix."""

    name = "in_batch"

    def begin_batch(self, pos: torch.Tensor) -> None:
        self._pool = pos  # (M,)
        counts = torch.bincount(pos, minlength=self.num_items + 1).float()  # (N+1,)
        self._p = counts / max(len(pos), 1)
        self._log_p = self._p.log()  # -inf for items absent from the batch

    def _draw(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        idx = torch.randint(0, len(self._pool), shape, device=self._pool.device, generator=generator)
        return self._pool[idx]

    def log_prob(self, ids: torch.Tensor) -> torch.Tensor:
        return self._log_p[ids]

    def prob(self, ids: torch.Tensor) -> torch.Tensor:
        return self._p[ids]


class MixedSampler(Sampler):
    """GRU4Rec's improved training (Hidasi & Karatzoglou 2018): ``num_negatives`` in-batch
    negatives plus ``extra_negatives`` drawn uniformly or by popularity^alpha.

    The K = K1 + K2 draws come from a mixture, so each id's log_q is the mixture's:
    log((K1 q_batch(i) + K2 q_extra(i)) / K), which keeps logQ-corrected sampled softmax unbiased.
    """

    name = "mixed"

    def __init__(self, num_negatives: int = 1, shared: bool = False, exclude: str = "positive",
                 extra_negatives: int = 1, extra: str = "popularity", alpha: float = 1.0) -> None:
        super().__init__(num_negatives, shared, exclude)
        if extra not in ("uniform", "popularity"):
            raise ConfigError(f"sampler.extra={extra!r}: expected uniform or popularity")
        self.in_batch = InBatchSampler(num_negatives, shared, exclude)
        self.extra: Sampler = (UniformSampler(extra_negatives, shared, exclude) if extra == "uniform"
                               else PopularitySampler(extra_negatives, shared, exclude, alpha))

    @property
    def total_negatives(self) -> int:
        return self.in_batch.num_negatives + self.extra.num_negatives

    def setup(self, item_counts: torch.Tensor, device: torch.device) -> None:
        super().setup(item_counts, device)
        self.in_batch.setup(item_counts, device)
        self.extra.setup(item_counts, device)

    def _mix(self, ids: torch.Tensor, pos: torch.Tensor, cond: bool) -> torch.Tensor:
        """log((K1 q1(i) / c1 + K2 q2(i) / c2) / K) in probability space (two gathers and one log
        instead of four log-gathers and a logaddexp); c = 1 - q(pos) for per-row draws redrawn
        away from the positive (see ``_log_q_cond``), else 1."""
        k1, k2 = self.in_batch.num_negatives, self.extra.num_negatives
        w1, w2 = k1 / (k1 + k2), k2 / (k1 + k2)
        if cond and not self.shared and self.exclude != "none":  # per-row (M, K) ids
            w1 = (w1 / (1 - self.in_batch.prob(pos)).clamp(min=1e-6)).unsqueeze(1)
            w2 = (w2 / (1 - self.extra.prob(pos)).clamp(min=1e-6)).unsqueeze(1)
        return (self.in_batch.prob(ids) * w1 + self.extra.prob(ids) * w2).log()

    def sample(self, pos: torch.Tensor, batch: Batch, rows: torch.Tensor,
               generator: torch.Generator | None = None) -> Negatives:
        self.in_batch.begin_batch(pos)
        a = self.in_batch.draw_ids(pos, batch, rows, generator)
        b = self.extra.draw_ids(pos, batch, rows, generator)
        ids = torch.cat([a, b], dim=-1)  # (M, K1 + K2) or (K1 + K2,)
        return self._finish(ids, self._mix(ids, pos, True), self._mix(pos, pos, False), pos, batch, rows)
