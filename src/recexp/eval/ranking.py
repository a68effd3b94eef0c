"""Full ranking streamed over blocks of items: memory stays (B, block) whatever the catalogue size.

Two contained functions used by the evaluators:

* :func:`target_ranks`: 0-based rank of each target among all items 1..N, with an optional set
  of excluded (row, item) pairs (the user's history). Counting replaces the masked (B, N+1)
  score matrix and its four passes (mask, gather, >, ==): per block one matmul and two compares;
  excluded items are taken out of the counts afterwards from their own scores.
* :func:`streamed_topk`: the k best items per row, merged block by block on the device.
"""

from __future__ import annotations

import torch

from recexp.models.base import SeqRecModel
from recexp.models.scoring import dot_product_items
from recexp.runtime import gemm

#: items per block: bounds evaluation memory at (batch, block) fp32 scores (1024 x 32768 = 128 MiB)
DEFAULT_BLOCK = 32768
#: on CPU a (1024 x 4096) block stays in cache between the matmul and the count: Beauty's
#: validation pass took 2.4 s instead of 3.5 s (1 thread) measured against 32768
CPU_BLOCK = 4096
#: ... and counting 128 rows at a time keeps the (128 x 4096) tile in a core's L2 between the
#: matmul and its count passes: the scoring of a Beauty pass (22,363 users, random queries, 1
#: thread) took 0.46 CPU s against 0.61 with 1024 rows (docs/benchmarks.md)
CPU_ROWS = 128


def block_for(device: torch.device) -> int:
    """Default item block for ``device``: small on CPU (cache), large on accelerators (launches)."""
    return CPU_BLOCK if torch.device(device).type == "cpu" else DEFAULT_BLOCK


#: positions (rows x width) encoded at once on CPU: Beauty's widest batch of 1024 users x 50 had a
#: 52 MB feed-forward activation, above glibc's largest mmap threshold (32 MB), so its pages were
#: mapped and faulted in again on every pass; 8192 positions (8 MB at SASRec's 256-wide FFN) took
#: a warm Beauty pass from ~1.0 to ~0.87 CPU s for SASRec and BERT4Rec (docs/benchmarks.md)
CPU_POSITIONS = 8192


def positions_for(device: torch.device) -> int:
    """Default cap on rows x width of an evaluation batch for ``device`` (0: none)."""
    return CPU_POSITIONS if torch.device(device).type == "cpu" else 0


def rows_for(device: torch.device) -> int:
    """Default row tile of :func:`target_ranks` for ``device`` (0: every row at once)."""
    return CPU_ROWS if torch.device(device).type == "cpu" else 0


class Excluded:
    """Unique (row, item) pairs sorted by item, so each item block is one contiguous slice."""

    def __init__(self, rows: torch.Tensor, items: torch.Tensor, num_rows: int) -> None:
        key = torch.unique(items * num_rows + rows)  # sorted by item, then row; duplicates dropped
        self.items = torch.div(key, num_rows, rounding_mode="floor")  # (P,)
        self.rows = key - self.items * num_rows  # (P,)

    def rows_in(self, lo: int, hi: int) -> Excluded:
        """The pairs of rows lo..hi-1, renumbered from 0 (still sorted by item)."""
        sub = Excluded.__new__(Excluded)
        keep = (self.rows >= lo) & (self.rows < hi)
        sub.items, sub.rows = self.items[keep], self.rows[keep] - lo
        return sub

    def in_block(self, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = torch.searchsorted(self.items, torch.tensor([lo, hi], device=self.items.device)).tolist()
        return self.rows[a:b], self.items[a:b]


class ItemScores:
    """``(h, lo, hi)`` -> (B, hi - lo) fp32 scores of items lo..hi-1 for queries ``h``: a plain
    product for models that score by a dot product with their item table (else ``model.score``).
    On CPU in fp32 the table's blocks are packed for oneDNN once (:func:`recexp.runtime.gemm.pack`) and
    reused by every batch: a plain block is repacked inside each (128-row) product (179 vs 203
    GFLOP/s). Build one per evaluation pass: the packed blocks copy the table as it is when
    first used."""

    def __init__(self, model: SeqRecModel) -> None:
        self.model, self.table = model, dot_product_items(model)
        self._packed: dict[tuple[int, int], torch.Tensor] = {}

    def __call__(self, h: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        if self.table is None:
            return self.model.score(h, torch.arange(lo, hi, device=h.device)).float()
        w = self.table[lo:hi]
        if gemm.routable(h, w):
            if (lo, hi) not in self._packed:
                self._packed[lo, hi] = gemm.pack(w.detach(), CPU_ROWS)
            return gemm.mm_nt(h, self._packed[lo, hi])
        return (h @ w.T).float()


def target_ranks(model: SeqRecModel, h: torch.Tensor, targets: torch.Tensor,
                 excluded: Excluded | None = None, block: int = DEFAULT_BLOCK,
                 rows: int = 0, scores: ItemScores | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(greater (B,), ties (B,)): items ranked strictly above ``targets`` (B,) among items 1..N
    for queries ``h`` (B, D), and items tied with it (its own column not counted); the metrics
    take the expectation over a random order of the ties (:mod:`recexp.eval.metrics`).

    Excluded items (the history) are not ranked; a target among them is masked with them, a miss
    at every cut-off (greater = N): the candidate set never depends on the target.

    One pass per block: with S = sum_i sign(s_i - t) and E = #(s_i == t) over the C ranked
    columns (the target's own column included in E), greater = (S + C - E) / 2, ties = E - 1.
    ``rows`` > 0 counts that many rows at a time (tiles of rows x block; :func:`rows_for`);
    every row's counts are its own, so the result does not depend on it. ``scores``: an
    :class:`ItemScores` shared by the batches of a pass (a new one otherwise).
    """
    B = len(targets)
    scores = scores or ItemScores(model)
    if 0 < rows < B:
        parts = [target_ranks(model, h[lo : lo + rows], targets[lo : lo + rows],
                              excluded.rows_in(lo, lo + rows) if excluded is not None else None,
                              block, scores=scores) for lo in range(0, B, rows)]
        return torch.cat([g for g, _ in parts]), torch.cat([t for _, t in parts])
    N = model.num_items
    # (B,) target scores. Rows whose target lies in the block being counted use that block's own
    # value, so the target's column always ties with itself and ranks equal the dense reference
    # bit for bit with one block; rows whose target comes in a later block compare against the
    # candidate score, which may differ from the block matmul in the last bit (a count can move
    # by one only at an exact float near-tie).
    t = model.score(h, targets.unsqueeze(1)).squeeze(1).float()
    # sums of values in {-1, 0, 1} over at most N + 1 columns: integers, exact in fp32 below 2^24
    # (no long casts per block: they were a tenth of a CPU pass's counting time)
    acc = torch.float32 if N < 2**24 else torch.float64
    S = torch.zeros(B, dtype=acc, device=h.device)  # sum of sign(s_i - t) over ranked items
    E = torch.zeros(B, dtype=acc, device=h.device)  # ranked items scored exactly t
    C = torch.full((B,), N, dtype=torch.long, device=h.device)  # ranked items per row (target included)
    for lo in range(1, N + 1, block):  # id 0 is padding: never ranked
        hi = min(lo + block, N + 1)
        s = scores(h, lo, hi)  # (B, C)
        inb = (targets >= lo) & (targets < hi)  # (B,)
        own = s.gather(1, (targets - lo).clamp(0, hi - lo - 1).unsqueeze(1)).squeeze(1)  # (B,)
        t = torch.where(inb, own, t)
        if excluded is not None:
            r, it = excluded.in_block(lo, hi)
            v = s[r, it - lo]  # (P_block,) scores of excluded items
            drop = it != targets[r]  # the target stays ranked even when it repeats history
            S.index_add_(0, r, -torch.sign(v - t[r]).to(acc) * drop)
            E.index_add_(0, r, -(v == t[r]).to(acc) * drop)
            C.index_add_(0, r, -drop.long())
        # s - t in place where s is the block's own fresh product (a model's score() may return a view)
        d = (s.sub_(t.unsqueeze(1)) if scores.table is not None else torch.sub(s, t.unsqueeze(1))).sign_()  # (B, C)
        S += d.sum(1)
        # ties = columns minus nonzero signs: an in-place abs and a sum cost less than a (d == 0)
        # mask and its count (measured 1 thread, 1024 x 4096: ~2x less)
        E += (hi - lo) - d.abs_().sum(1)
    S, E = S.long(), E.long()
    greater = torch.div(S + C - E, 2, rounding_mode="floor")
    ties = (E - 1).clamp_min(0)
    if excluded is not None:
        hit = excluded.items == targets[excluded.rows]  # (P,) target repeats a history item
        miss = torch.zeros(B, dtype=torch.bool, device=h.device).index_fill_(0, excluded.rows[hit], True)
        greater = torch.where(miss, torch.full_like(greater, N), greater)
        ties = torch.where(miss, torch.zeros_like(ties), ties)
    return greater, ties


def streamed_topk(model: SeqRecModel, h: torch.Tensor, k: int, excluded: Excluded | None = None,
                  block: int = DEFAULT_BLOCK, scores: ItemScores | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores (B, k), item ids (B, k)) of the k best items 1..N per row, best first; excluded
    items never appear. Memory: (B, k + block). ``scores``: as in :func:`target_ranks`."""
    B, N = h.shape[0], model.num_items
    k = min(k, N)
    best_s = torch.full((B, 0), float("-inf"), device=h.device)
    best_i = torch.zeros((B, 0), dtype=torch.long, device=h.device)
    scores = scores or ItemScores(model)
    for lo in range(1, N + 1, block):
        hi = min(lo + block, N + 1)
        s = scores(h, lo, hi).contiguous()  # contiguous: a model may return a broadcast view (Pop)
        if excluded is not None:
            r, it = excluded.in_block(lo, hi)
            s[r, it - lo] = float("-inf")
        ids = torch.arange(lo, hi, device=h.device).expand(B, -1)
        cand_s, cand_i = torch.cat([best_s, s], 1), torch.cat([best_i, ids], 1)  # (B, k + C)
        best_s, pos = cand_s.topk(min(k, cand_s.shape[1]), dim=1)
        best_i = cand_i.gather(1, pos)
    return best_s, best_i
