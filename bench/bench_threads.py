"""CPU threads of one `recexp train` while other processes keep some cores busy.

torch's default is one intra-op thread per core. When other jobs already hold cores (a second
training run, a sweep worker, a build), those threads share cores with them, and every parallel
region waits for its slowest thread: the epoch slows by several times, not by the share of the
machine that is gone. This benchmark measures it as a user meets it, whole `recexp train`
processes (the default SASRec on the embedded synthetic data, tracking=none), with ``--busy``
spinning processes (pure Python loops, one core each) started beside it:

    python bench/bench_threads.py [--busy 0,1,2] [--epochs 6] [--repeats 1] [--late] [ARGS...]

Settings, each its own process:

- ``auto``      no thread setting: what a user gets (``trainer.threads=auto``, the default)
- ``all``       one thread per core, torch's default (``OMP_NUM_THREADS`` = cores)
- ``one``       one thread (``OMP_NUM_THREADS=1``)
- ``passive``   one thread per core, with sleeping rather than spinning OpenMP waits
                (``OMP_WAIT_POLICY=PASSIVE``)

Prints the median training throughput (sequences a second over epochs 2..N: the first pays
warm-up) of each setting at each busy level, and its speed-up over ``all`` at the same level.
``--late`` starts the busy processes when the run's first epoch ends (a job started beside a run
that already chose its threads) and measures epochs 3..N: ``auto`` gives threads back between
epochs (``recexp.runtime.threads.rebalance``). Run it on an otherwise quiet machine: the busy
levels are the processes it starts itself. Results: docs/benchmarks.md ("CPU threads").
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

EPOCH = re.compile(r"^epoch +(\d+) .* [0-9.]+s +([0-9,]+) seq/s", re.M)
SETTINGS = ("auto", "all", "one", "passive")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def setting_env(name: str, n: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
    if name == "all":
        env["OMP_NUM_THREADS"] = str(n)
    elif name == "one":
        env["OMP_NUM_THREADS"] = "1"
    elif name == "passive":
        env |= {"OMP_NUM_THREADS": str(n), "OMP_WAIT_POLICY": "PASSIVE"}
    return env


def run(name: str, n: int, epochs: int, args: list[str], runs_dir: str, busy: int, late: bool
        ) -> tuple[float, str]:
    """(median sequences a second over the measured epochs, the thread lines of the run). ``busy``
    spinners run beside it: from before its start, or (``late``) from the end of its first epoch,
    which its start-time choice cannot see; the measured epochs are 2..N, or 3..N when ``late``."""
    env = setting_env(name, n) | {"RECEXP_RUNS_DIR": runs_dir, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "recexp.cli", "train", "model=sasrec", "tracking=none",
           f"trainer.max_epochs={epochs}", f"trainer.patience={epochs}", *args]
    spinners = [] if late else spin(busy)
    lines = []
    try:
        time.sleep(0 if late else 1.0)  # the spinners are running before the run measures the machine
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:  # (the run's lines go to stderr when it is not on a terminal)
            lines.append(line)
            if late and not spinners and line.startswith("epoch   1 "):
                spinners = spin(busy)
        proc.wait(timeout=1800)
    finally:
        for p in spinners:
            p.kill()
        for p in spinners:
            p.wait()
    text = "".join(lines)
    if proc.returncode:
        raise SystemExit(f"{name}: rc {proc.returncode}\n{text[-3000:]}")
    rates = [float(s.replace(",", "")) for e, s in EPOCH.findall(text) if int(e) > (2 if late else 1)]
    said = [ln.strip() for ln in text.splitlines() if "parameters  device" in ln or ln.startswith("from epoch")]
    return statistics.median(rates), " / ".join(s.split("  MLflow")[0] for s in said)


def spin(k: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--busy", default=None, help="comma list of busy-core counts (default 0..cores)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=1, help="runs per cell; the median is shown")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--late", action="store_true", help="start the busy processes after the first epoch")
    ap.add_argument("args", nargs="*", help="extra `recexp train` overrides")
    a = ap.parse_args()
    n = cores()
    busy = [int(b) for b in a.busy.split(",")] if a.busy else list(range(n + 1))
    names = a.settings.split(",")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{n} cores, load average {load:.2f} at start; `recexp train model=sasrec` "
          f"{' '.join(a.args)} x {a.epochs} epochs; median sequences/s (epochs {3 if a.late else 2}..{a.epochs}); "
          f"busy processes {'from the end of epoch 1' if a.late else 'from before the start'}")
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for k in busy:
            cell = {}
            for name in names:
                res = [run(name, n, a.epochs, a.args, runs_dir, k, a.late) for _ in range(a.repeats)]
                cell[name] = (statistics.median(r[0] for r in res), res[-1][1])
            rows.append((k, cell))
    print(f"\n| busy cores | {' | '.join(names)} |")
    print("|---|" + "---|" * len(names))
    for k, cell in rows:
        base = cell.get("all", (float("nan"), ""))[0]
        print(f"| {k} | " + " | ".join(f"{cell[m][0]:,.0f} ({cell[m][0] / base:.2f}x)" for m in names) + " |")
    print("\n(sequences/s; in brackets: speed over `all` at the same busy level, above 1 is faster)")
    for k, cell in rows:
        if "auto" in cell:
            print(f"busy {k}, auto said: {cell['auto'][1]}")


if __name__ == "__main__":
    main()
