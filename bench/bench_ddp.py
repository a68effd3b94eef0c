"""Data-parallel scaling, measured: training throughput with 1 and 2 processes on the same data.

    RECEXP_DATA_DIR=/path/to/datasets python bench/bench_ddp.py            # Beauty, SASRec + CE, CPU
    python bench/bench_ddp.py --dataset synthetic --epochs 2
    python bench/bench_ddp.py --device cuda --processes 1,2                # one GPU per process

Each run is the real ``recexp train ... trainer.num_processes=N`` in its own subprocess (the
launcher, the process group, DDP's all-reduce and the sharded validation all included), with an
isolated MLflow store the figures are read back from: ``train/epoch_s`` (training only, no
validation) and ``train/seq_per_s`` (training windows per second, all processes together) of
every epoch. ``trainer.batch_size`` is the global batch, so both runs take the same optimiser
steps on the same windows. Efficiency = N-process throughput / (N x 1-process throughput), on
the last epoch (the first pays the warm-up). On CPU, the cores are shared out: 1 process gets
them all, N processes cores / N threads each (OMP_NUM_THREADS).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ["model=sasrec", "loss=ce", "sampler=none", "model.dropout=0.5"]
DATA = {"beauty": ["dataset=beauty"],
        "synthetic": ["dataset=synthetic", "dataset.generator.num_users=6000", "dataset.generator.num_items=3000",
                      "dataset.generator.mean_length=12"]}


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run(n: int, threads: int, args: argparse.Namespace, runs: Path
        ) -> tuple[list[tuple[float, float]], dict[str, str], float]:
    """((epoch_s, windows/s) per epoch, the run's params, wall seconds) of one ``recexp train``."""
    from mlflow.tracking import MlflowClient

    from recexp.record.store import tracking_uri

    store = runs / f"p{n}x{threads}"
    env = {**os.environ, "RECEXP_RUNS_DIR": str(store), "PYTHONPATH": str(ROOT / "src")}
    env.pop("MLFLOW_TRACKING_URI", None)
    if args.device == "cpu":
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "recexp.cli", "train", *DATA[args.dataset], *MODEL, f"device={args.device}",
           f"trainer.num_processes={n}", f"trainer.max_epochs={args.epochs}", f"trainer.batch_size={args.batch_size}",
           "trainer.min_steps_per_epoch=0", "trainer.progress=false", "trainer.patience=1000",
           f"paths.cache_dir={runs / 'cache'}", f"hydra.run.dir={store / 'job'}"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"bench_ddp: {n} process(es) failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    client = MlflowClient(tracking_uri(None, str(store)))
    (found,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    hist = {k: sorted(client.get_metric_history(found.info.run_id, k), key=lambda m: m.step)
            for k in ("train/epoch_s", "train/seq_per_s")}
    epochs = [(e.value, s.value) for e, s in zip(hist["train/epoch_s"], hist["train/seq_per_s"], strict=True)]
    return epochs, dict(found.data.params), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(DATA), default="beauty")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--processes", default="1,2",
                    help="comma-separated process counts, the first the base; NxT: N processes of T threads "
                         "each (default T: the cores shared out), e.g. 1,1x1,2 to separate the threads' share")
    args = ap.parse_args()
    if args.dataset == "beauty":
        data_dir = Path(os.environ.get("RECEXP_DATA_DIR", ROOT / "data"))
        if not (data_dir / "beauty" / "Beauty.txt").is_file() and not (data_dir / "Beauty.txt").is_file():
            print(f"bench_ddp: no Beauty.txt under {data_dir} (set RECEXP_DATA_DIR); using --dataset synthetic")
            args.dataset = "synthetic"
    import torch

    specs = [(int(x.split("x")[0]), int(x.split("x")[1]) if "x" in x else max(1, cores() // int(x)))
             for x in args.processes.split(",")]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"machine: {cores()} cores available, load average {load[0]:.2f} at start, torch {torch.__version__}, "
          f"device {args.device}" + (f" ({torch.cuda.device_count()} GPUs)" if args.device.startswith("cuda") else ""))
    print(f"data: {args.dataset}, SASRec + CE, global batch {args.batch_size}, {args.epochs} epoch(s) per run")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        for n, t in specs:
            epochs, params, wall = run(n, t, args, Path(tmp))
            threads = params.get("dist.threads_per_process") or (str(t) if args.device == "cpu" else "?")
            windows = round(epochs[-1][0] * epochs[-1][1])  # the epoch's training windows
            for i, (sec, wps) in enumerate(epochs, 1):
                print(f"processes {n}: threads/process {threads}: epoch {i}: {sec:.2f} s, {wps:,.0f} windows/s")
            print(f"processes {n}: {windows:,} training windows an epoch; job wall time {wall:.1f} s "
                  f"(start-up, data, validation and test included); load average {os.getloadavg()[0]:.2f} at its end")
            results[n, t] = epochs[-1][1]
    (base, bt), *rest = specs
    for n, t in rest:
        eff = results[n, t] / (n / base * results[base, bt])
        print(f"scaling: {n} processes x {t} threads {results[n, t]:,.0f} windows/s vs {base} x {bt} "
              f"{results[base, bt]:,.0f}: speed-up {results[n, t] / results[base, bt]:.2f}x, efficiency {eff:.2f} "
              "(last epoch)")


if __name__ == "__main__":
    main()
