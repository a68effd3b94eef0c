"""CPU threads of torch in this process: the config key ``threads`` (``auto`` or a number).

torch runs one intra-op thread per core. When other processes already keep some of those cores
busy (a second training run, a sweep worker, a build), the threads share cores with them and every
parallel region waits for its slowest thread: on the 2-core machine of docs/benchmarks.md ("CPU
threads"), a SASRec epoch takes 2.5x as long with one core busy elsewhere as with one thread.
``auto`` therefore takes one thread per usable core that no other process was busy on, measured
from ``/proc/stat`` between this module's import (the CLI's start) and the job's start, minus this
process's own CPU time over that window; at least one. (On a saturated machine the others get
less than they ask, so the figure understates them; the choice is one thread all the same.) Elsewhere than Linux, ``auto`` is one per
usable core. ``OMP_NUM_THREADS``, when set, is the user's choice and wins over ``auto``.

Load that starts or ends later is seen between epochs (:func:`rebalance`, over the last epoch):
a run that took both cores gives one back at its next epoch when a second job starts beside it.
The count at start is in the run's header line and its ``recexp.cpu_threads`` tag, the count of
each epoch in the metric ``train/cpu_threads``: floating-point sums may differ in their last bits
between thread counts, so a bit-exact rerun sets ``threads=N``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from recexp.errors import ConfigError

MIN_WINDOW_S = 0.2  # a shorter window is topped up by a sleep (a job started right after import)


@dataclass(frozen=True)
class Sample:
    wall: float  # time.monotonic()
    own: float  # this process's CPU seconds, all threads
    busy: tuple[int, ...]  # per usable core: busy jiffies (user, nice, system, irq, softirq, steal)
    total: tuple[int, ...]  # per usable core: busy + idle + iowait jiffies


def usable_cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def sample(cores: list[int] | None = None, stat: str = "/proc/stat") -> Sample | None:
    """The per-core counters of ``cores`` (default: the usable ones), or None where there is no
    readable ``/proc/stat`` or it lacks one of them."""
    cores = usable_cores() if cores is None else cores
    wall, own = time.monotonic(), time.process_time()
    try:
        with open(stat) as f:
            lines = [ln.split() for ln in f if ln.startswith("cpu") and ln[3:4].isdigit()]
    except OSError:
        return None
    rows = {int(f[0][3:]): [int(x) for x in f[1:9]] for f in lines if len(f) >= 9}
    if not all(c in rows for c in cores):
        return None
    busy = tuple(u + n + s + irq + sirq + steal for u, n, s, _, _, irq, sirq, steal in (rows[c] for c in cores))
    total = tuple(b + rows[c][3] + rows[c][4] for b, c in zip(busy, cores, strict=True))
    return Sample(wall, own, busy, total)


def busy_elsewhere(a: Sample, b: Sample) -> float:
    """Cores' worth of CPU that other processes used between samples ``a`` and ``b``."""
    used = sum((b1 - b0) / (t1 - t0) for b0, b1, t0, t1 in zip(a.busy, b.busy, a.total, b.total, strict=True)
               if t1 > t0)
    own = (b.own - a.own) / max(b.wall - a.wall, 1e-9)
    return max(0.0, used - own)


_mark = sample()  # the window starts at import: the CLI imports this module before anything heavy
_last = ""
_auto = False  # whether the count in force came from ``auto`` (then :func:`rebalance` may move it)


def parse(setting: object) -> int:
    """``auto`` -> 0, a positive integer -> itself; anything else is a ConfigError."""
    if setting is None or str(setting).strip().lower() == "auto":
        return 0
    try:
        n = int(str(setting))
    except ValueError:
        n = 0
    if n < 1 or isinstance(setting, bool) or (isinstance(setting, float) and setting != int(setting)):
        raise ConfigError(f"threads={setting!r}: expected auto or an integer >= 1")
    return n


def resolve(setting: object = "auto", processes: int = 1) -> tuple[int, str]:
    """(threads for each of ``processes`` processes, why): see the module doc."""
    global _mark
    n = parse(setting)
    if n:
        return n, "threads=" + str(n)
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env), f"OMP_NUM_THREADS={env}"
    cores = usable_cores()
    start = _mark
    if start is not None and time.monotonic() - start.wall < MIN_WINDOW_S:
        time.sleep(MIN_WINDOW_S - (time.monotonic() - start.wall))
    end = sample(cores)
    _mark = end
    if start is None or end is None or len(start.busy) != len(cores):
        return max(1, len(cores) // processes), f"auto: {len(cores)} cores"
    busy = busy_elsewhere(start, end)
    free = max(1, len(cores) - round(busy))
    return max(1, free // processes), f"auto: {len(cores)} cores, {busy:.1f} in use by other processes"


def apply(setting: object = "auto") -> str:
    """Set torch's intra-op threads for this process; returns the header's description."""
    return pin(*resolve(setting))


def pin(n: int, why: str) -> str:
    """Set torch's intra-op threads to ``n`` and remember ``why`` (the launcher's ranks use it)."""
    import torch

    global _last, _auto
    torch.set_num_threads(n)
    _last, _auto = f"{n} thread{'s' if n > 1 else ''} ({why})", why.startswith("auto")
    return _last


def rebalance(min_window_s: float = 1.0) -> str | None:
    """Between epochs of an ``auto`` run: measure again over the time since the last measurement
    and move the count when the free cores changed (a job started or ended beside this one).
    The new description when it moved; None when it stays, the window is shorter than
    ``min_window_s`` (it grows until the next call), or the count was not ``auto``."""
    if not _auto or _mark is None or time.monotonic() - _mark.wall < min_window_s:
        return None
    n, why = resolve("auto")
    return None if n == count() else pin(n, why)


def count() -> int:
    """torch's intra-op threads now."""
    import torch

    return torch.get_num_threads()


def described() -> str:
    """What the last :func:`pin` set, or torch's own count (a torchrun rank, a library caller)."""
    if _last:
        return _last
    import torch

    n = torch.get_num_threads()
    return f"{n} thread{'s' if n > 1 else ''} (not set by recexp)"
