"""glibc malloc for a recexp process: freed memory is kept for reuse, not handed back to the OS.

PyTorch's CPU tensors come from malloc. glibc serves a block above its mmap threshold (128 KiB at
start, raised as such blocks are freed, at most 32 MiB) with fresh mmap'd pages and trims the heap
top once more than twice that is free, so the same few-MB activations and score tiles are unmapped
and faulted in again, pass after pass. Measured on Beauty's full ranking (22,363 queries x 12,101
items, one thread, four alternating rounds): 140-340k minor page faults and 0.0-0.6 s of system
time per pass on top of 0.3-0.4 s of user time, varying from round to round; with the two
thresholds fixed (32 MiB, 1 GiB) no fault after the first round and 0.32-0.39 s in all
(docs/benchmarks.md).

:func:`keep_freed_memory` sets them once per process through ``mallopt`` (what the
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` environment variables do). The CLI calls it
first thing, and the benchmark workers too, as they time what the CLI runs. Resident memory then
stays near the process's peak instead of shrinking after it. ``RECEXP_MALLOC=default`` keeps
glibc's defaults; other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import sys

from recexp.runtime.envvars import setting

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
#: blocks up to this size come from the heap (glibc's largest allowed value on 64-bit systems)
MMAP_THRESHOLD = 32 << 20
#: the heap top is given back only when this much of it is free
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; True when they were set.
    ``RECEXP_MALLOC``: ``keep`` (the default) or ``default``; anything else is a one-line error."""
    if setting("RECEXP_MALLOC") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
