"""Batches as tensors on the training device: no per-row Python in the hot path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from recexp.data import PREFIXES, check_window_mode
from recexp.data.seqs import EvalSet, Seqs
from recexp.errors import ConfigError


@dataclass
class Batch:
    """What a model sees. Sequences are left-padded with 0 so position -1 is the most recent."""

    seq: torch.Tensor  # (B, L) item ids
    users: torch.Tensor  # (B,) user ids 1..U
    times: torch.Tensor  # (B, L) float64 timestamps (0 at padding)
    targets: torch.Tensor | None = None  # (B, L) next item per position at training, 0 = none
    num_targets: int | None = None  # count of targets > 0 when known on the host (avoids a sync)
    reset: torch.Tensor | None = None  # (B, L) bool, session-parallel batches only: a new sequence starts
    last_only: bool = False  # only the last position has a target (prefix windows)


def pad_last(offsets: torch.Tensor, items: torch.Tensor, rows: torch.Tensor, length: int,
             end_shift: torch.Tensor | int = 0) -> torch.Tensor:
    """Left-padded last ``length`` entries of CSR rows ``rows`` -> (B, length).

    ``end_shift`` (B,) or int moves each row's end back (to cut windows out of long rows).
    """
    start = offsets[rows]
    end = offsets[rows + 1] - end_shift
    idx = end.unsqueeze(1) - length + torch.arange(length, device=items.device)  # (B, L)
    valid = idx >= start.unsqueeze(1)
    out = items[idx.clamp(min=0, max=max(len(items) - 1, 0))] if len(items) else torch.zeros_like(idx, dtype=items.dtype)
    return torch.where(valid, out, torch.zeros((), dtype=items.dtype, device=items.device))


def to_device(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """Upload once; through pinned memory on CUDA (a direct DMA copy, not a staged one)."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class DeviceSeqs:
    """A :class:`Seqs` moved to a device once."""

    def __init__(self, seqs: Seqs, device: torch.device) -> None:
        self.users = to_device(seqs.users, device)
        self.offsets = to_device(seqs.offsets, device)
        self.items = to_device(seqs.items, device)
        self.times = to_device(seqs.times.astype(np.float64, copy=False), device)
        self.device = device

    def __len__(self) -> int:
        return len(self.users)

    def last(self, rows: torch.Tensor, length: int, end_shift: torch.Tensor | int = 0
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(items, times) of the last ``length`` positions of ``rows``, left-padded."""
        seq = pad_last(self.offsets, self.items, rows, length, end_shift)
        t = pad_last(self.offsets, self.times, rows, length, end_shift)
        return seq, t

    def flat_members(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row-in-batch, item) pairs for every item of ``rows``: used to mask histories."""
        start, end = self.offsets[rows], self.offsets[rows + 1]
        lens = end - start
        r = torch.repeat_interleave(torch.arange(len(rows), device=self.device), lens)
        pos = torch.arange(int(lens.sum()), device=self.device) - torch.repeat_interleave(
            torch.cumsum(lens, 0) - lens, lens)
        return r, self.items[start[r] + pos]


def length_buckets(lengths: torch.Tensor, batch_size: int, generator: torch.Generator | None,
                   bucket: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """A shuffled batch order that keeps padding small: (order (n,) of the samples, start offset
    of each batch in ``order``, in random batch order).

    Samples are shuffled, sorted by ``lengths`` inside chunks of ``bucket`` batches, and the
    batches shuffled again: a batch holds samples of similar length, so short sequences (Amazon
    data: ~9 items) do not pay for ``max_len`` positions of padding. Two draws from
    ``generator``, in this order (seeded runs depend on it).
    """
    n = len(lengths)
    order = torch.randperm(n, generator=generator).to(lengths.device)
    if bucket > 1 and n:
        chunk = batch_size * bucket
        parts = [order[i : i + chunk] for i in range(0, n, chunk)]
        order = torch.cat([p[torch.argsort(lengths[p], stable=True)] for p in parts])
    starts = torch.arange(0, n, batch_size)[torch.randperm((n + batch_size - 1) // batch_size, generator=generator)]
    return order, starts


def batch_plan(lengths: torch.Tensor, order: torch.Tensor, starts: torch.Tensor, batch_size: int
               ) -> list[list[int]]:
    """Per batch: [longest length, sum of (length - 1)] (its width and, for windows, its number
    of targets); one host sync per epoch, not per batch."""
    if not len(order):
        return []
    return torch.stack([torch.stack([lengths[order[s : s + batch_size]].max(),
                                     (lengths[order[s : s + batch_size]] - 1).clamp(min=0).sum()])
                        for s in starts]).tolist()


class TrainWindows:
    """Training windows of ``max_len + 1`` items cut from each training sequence.

    ``mode='all'`` tiles each sequence from its end with stride ``max_len`` so every interaction
    but the first of a sequence is a target exactly once; ``mode='last'`` keeps only the most
    recent window (the SASRec paper's choice). ``mode='prefixes'`` is RecBole's and GRU4Rec's
    data augmentation: one window per target (every prefix of every sequence, its last
    ``max_len`` items as input) with only its last position trained, so a batch holds
    ``batch_size`` targets from as many different contexts (about mean length / 2 times the
    encoder work of ``all`` for the same targets). ``mode='prefixes_empty'`` adds the empty
    prefix: each sequence's first item is a target too, predicted from an all-padding input, as
    the training sets of the S3Rec, BSARec and TV-Rec code are built (``seq[:i + 1]`` for every
    i, the first of them with no input).
    """

    def __init__(self, train: Seqs, max_len: int, device: torch.device, mode: str = "all") -> None:
        check_window_mode(mode)
        lens = train.lengths
        if mode == "all":
            n_win = np.maximum(1, np.ceil((lens - 1) / max_len).astype(np.int64))
        elif mode == "last":
            n_win = np.ones_like(lens)
        else:  # one of PREFIXES
            n_win = np.maximum(1, lens - (mode == "prefixes"))
        keep = lens >= (1 if mode == "prefixes_empty" else 2)  # else a single item has no target
        rows = np.repeat(np.arange(len(lens)), np.where(keep, n_win, 0))
        k = np.arange(len(rows)) - np.repeat(np.cumsum(np.where(keep, n_win, 0)) - np.where(keep, n_win, 0),
                                             np.where(keep, n_win, 0))
        self.seqs = DeviceSeqs(train, device)
        self.rows = torch.as_tensor(rows, device=device)
        self.shift = torch.as_tensor(k if mode in PREFIXES else k * max_len, device=device)
        self.max_len, self.prefixes = max_len, mode in PREFIXES
        self.device = device

    def __len__(self) -> int:
        return len(self.rows)

    def window_lengths(self) -> torch.Tensor:
        """Items in each window (<= max_len + 1)."""
        end = self.seqs.offsets[self.rows + 1] - self.shift
        return (end - self.seqs.offsets[self.rows]).clamp(max=self.max_len + 1)

    def iterate(self, batch_size: int, generator: torch.Generator | None, shuffle: bool = False,
                bucket: int = 64, shard: tuple[int, int] | None = None) -> Iterator[Batch]:
        """Batches of windows, trimmed to their longest member; with ``shuffle``, in the
        length-bucketed random order of :func:`length_buckets`. ``shard=(rank, world)``: this
        process's part of each batch (:func:`recexp.data.shard.shard_batches`)."""
        n = len(self.rows)
        lengths = self.window_lengths()
        if shuffle:
            order, starts = length_buckets(lengths, batch_size, generator, bucket)
        else:
            order, starts = torch.arange(n, device=self.device), torch.arange(0, n, batch_size)
        if shard is not None:
            from recexp.data.shard import group_plan, shard_batches

            groups = shard_batches(order, starts, batch_size, *shard)
            yield from (self._batch(w, width, count) for w, (width, count) in
                        zip(groups, group_plan(lengths, groups), strict=True))
            return
        plan = batch_plan(lengths, order, starts, batch_size)
        for s, (width, count) in zip(starts.tolist(), plan, strict=True):
            yield self._batch(order[s : s + batch_size], width, count)

    def _batch(self, w: torch.Tensor, width: int, count: int) -> Batch:
        """The batch of windows ``w`` (``width``: the longest, ``count``: its targets)."""
        rows = self.rows[w]
        win, t = self.seqs.last(rows, max(width, 2), self.shift[w])  # (B, width) <= max_len + 1
        seq, targets = win[:, :-1], win[:, 1:]
        if self.prefixes:  # the window's last item is its one target (after an empty input too)
            targets = torch.zeros_like(targets)
            targets[:, -1] = win[:, -1]
            count = len(w)
        else:
            targets = torch.where(seq > 0, targets, torch.zeros_like(targets))
        return Batch(seq=seq, users=self.seqs.users[rows], times=t[:, :-1], targets=targets,
                     num_targets=int(count), last_only=self.prefixes)


class SessionParallel:
    """GRU4Rec's session-parallel mini-batches (Hidasi et al., ICLR 2016, section 3.1.1).

    The (shuffled) training sequences are laid end to end and cut into ``B`` lanes of about equal
    length (a lane takes consecutive sequences of the shuffled order); step t of a lane is the
    pair (item t, item t+1) of its current sequence, and ``reset`` marks the steps where a lane
    starts a new sequence -- the model zeroes that lane's hidden state there. A batch is
    ``bptt`` consecutive steps of all lanes, (B, bptt); every (item, next item) pair of every
    training sequence is a target exactly once per epoch. A stateful model carries its hidden
    state from one batch to the next (detached: truncated back-propagation through time).
    Lanes are built with array ops once per epoch, then uploaded once; the batches are slices.
    """

    def __init__(self, train: Seqs, device: torch.device, bptt: int = 1) -> None:
        if int(bptt) < 1:
            raise ConfigError(f"model.bptt={bptt}: expected at least 1 step")
        self.train, self.device, self.bptt = train, device, int(bptt)
        self.rows = np.flatnonzero(train.lengths >= 2)  # a single item has no target
        self.num_pairs = int((train.lengths[self.rows] - 1).sum())

    def __len__(self) -> int:
        return len(self.rows)

    def lanes(self, num_lanes: int, order: np.ndarray) -> dict[str, np.ndarray]:
        """(B, width) ``seq``, ``targets``, ``times``, ``users``, ``reset`` for sequences
        ``self.rows[order]`` laid out on ``num_lanes`` lanes; unused slots are 0 / False."""
        tr = self.train
        rows = self.rows[order]
        n = tr.lengths[rows] - 1  # pairs per sequence
        T = int(n.sum())
        B = max(1, min(int(num_lanes), len(rows)))
        first = np.cumsum(n) - n  # index of each sequence's first pair in the stream
        lane = first * B // max(T, 1)  # consecutive sequences share a lane: about T / B pairs each
        lane_start = np.full(B, T, dtype=np.int64)
        np.minimum.at(lane_start, lane, first)
        p_lane = np.repeat(lane, n)
        col = np.arange(T) - lane_start[p_lane]  # step of the pair within its lane
        j = np.arange(T) - np.repeat(first, n)  # position of the pair within its sequence
        at = np.repeat(tr.offsets[rows], n) + j  # flat index of the input item
        width = int(col.max()) + 1 if T else 0
        out = {k: np.zeros((B, width), dtype=d) for k, d in
               (("seq", tr.items.dtype), ("targets", tr.items.dtype), ("times", np.float64),
                ("users", tr.users.dtype), ("reset", bool))}
        out["seq"][p_lane, col] = tr.items[at]
        out["targets"][p_lane, col] = tr.items[at + 1]
        out["times"][p_lane, col] = tr.times[at]
        out["users"][p_lane, col] = np.repeat(tr.users[rows], n)
        out["reset"][p_lane, col] = j == 0
        return out

    def iterate(self, batch_size: int, generator: torch.Generator | None, shuffle: bool = False,
                bucket: int = 0) -> Iterator[Batch]:
        """Batches of ``bptt`` steps over ``batch_size`` lanes (``bucket`` is unused: lanes
        have no padding to trim)."""
        order = (torch.randperm(len(self.rows), generator=generator).numpy() if shuffle
                 else np.arange(len(self.rows)))
        g = self.lanes(batch_size, order)
        counts = np.add.reduceat((g["targets"] > 0).sum(0), np.arange(0, g["seq"].shape[1], self.bptt)) \
            if g["seq"].shape[1] else np.zeros(0, dtype=np.int64)
        t = {k: to_device(v, self.device) for k, v in g.items()}
        for i, c in zip(range(0, t["seq"].shape[1], self.bptt), counts.tolist(), strict=True):
            sl = slice(i, i + self.bptt)
            yield Batch(seq=t["seq"][:, sl], users=t["users"][:, i], times=t["times"][:, sl],
                        targets=t["targets"][:, sl], num_targets=int(c), reset=t["reset"][:, sl])


class EvalBatches:
    """Batches of evaluation examples: the last ``max_len`` history items as input. ``query``
    (one sequence per example, default: the history) replaces what the model reads, for
    diagnostics; the history mask and :meth:`repeats` always use the whole history."""

    def __init__(self, ev: EvalSet, max_len: int, device: torch.device, query: Seqs | None = None) -> None:
        self.hist = DeviceSeqs(ev.hist, device)
        self.query = self.hist if query is None else DeviceSeqs(query, device)
        if len(self.query.users) != len(self.hist.users):
            raise ValueError(f"query has {len(self.query.users)} sequences for {len(self.hist.users)} examples")
        self.targets = torch.as_tensor(ev.targets, device=device)
        self.max_len = max_len
        self.device = device

    def __len__(self) -> int:
        return len(self.targets)

    def repeats(self, rows: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the example's target is already in its (full) history."""
        r, items = self.hist.flat_members(rows)
        hit = items == self.targets[rows][r]
        return torch.zeros(len(rows), dtype=torch.bool, device=self.device).index_fill_(0, r[hit], True)

    def iterate(self, batch_size: int, max_positions: int = 0) -> Iterator[tuple[torch.Tensor, Batch, torch.Tensor]]:
        """(rows, batch, targets). Examples go by history length so each batch is trimmed to its
        longest input; ``rows`` says which examples a batch holds. ``max_positions`` > 0 caps
        rows x width: batches of long histories get fewer rows, so an encoder's largest
        activation (rows x width x its widest layer) stays bounded."""
        lens = (self.query.offsets[1:] - self.query.offsets[:-1]).clamp(max=self.max_len)
        order = torch.argsort(lens, stable=True)
        ends = lens[order].clamp(min=1).cpu().numpy()  # width of a batch = its last (longest) row
        i, n = 0, len(self.targets)
        while i < n:
            j = min(i + batch_size, n)
            if max_positions > 0 and (j - i) * int(ends[j - 1]) > max_positions:
                j = i + max(1, max_positions // int(ends[j - 1]))  # its width can only shrink
            rows = order[i:j]
            seq, t = self.query.last(rows, int(ends[j - 1]))
            yield rows, Batch(seq=seq, users=self.hist.users[rows], times=t), self.targets[rows]
            i = j
