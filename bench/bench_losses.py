"""Training step time of each loss against full CE, measured in one process, back to back.

    OMP_NUM_THREADS=1 python bench/bench_losses.py                       # Beauty, SASRec preset
    OMP_NUM_THREADS=1 python bench/bench_losses.py --losses ce,sce,sampled_softmax --batches 30 --rounds 3

The same model size and the same batches (one seeded shuffle of the Beauty preset's windows) are
trained with each loss in turn; the losses alternate in ``--rounds`` rounds so that a change of
machine load hits them alike, and each loss's step time is the median over all its timed steps
(the first ``--warmup`` steps of each round are not timed), in wall-clock and in process CPU time
(on a shared machine the CPU time varies less with other users' load). The step is the trainer's own
(``training_loss`` under the trainer's autocast setting, backward, clipping, fused AdamW). Prints a
table with ratios against ``ce``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_worker import load  # noqa: E402

from recexp.data.batches import TrainWindows  # noqa: E402
from recexp.runtime.malloc import keep_freed_memory  # noqa: E402
from recexp.training.parts import build_loss_and_sampler, seed_everything  # noqa: E402
from recexp.training.trainer import training_loss  # noqa: E402

# loss name -> overrides on top of the preset (sampled losses need a sampler)
LOSSES: dict[str, list[str]] = {
    "ce": ["loss=ce", "sampler=none"],
    "sce": ["experiment=beauty_sasrec_sce"],
    "sce_32x64x256": ["experiment=beauty_sasrec_sce", "loss.n_buckets=32", "loss.bucket_size_y=256"],
    "sce_64x64x128": ["experiment=beauty_sasrec_sce", "loss.n_buckets=64", "loss.bucket_size_y=128"],
    "sce_64x64x128_mix": ["experiment=beauty_sasrec_sce", "loss.n_buckets=64", "loss.bucket_size_y=128",
                          "loss.mix_x=true"],
    "ce_cpu_amp": ["loss=ce", "sampler=none", "trainer.cpu_amp=true"],  # bf16 autocast of the step
    "rece": ["loss=rece", "sampler=none"],
    "rece_r2": ["loss=rece", "sampler=none", "loss.rounds=2"],
    "sampled_softmax": ["loss=sampled_softmax", "sampler=uniform", "sampler.num_negatives=256",
                        "sampler.shared=true"],
}


def main() -> None:
    keep_freed_memory()  # as the CLI does (recexp.runtime.malloc)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="beauty_sasrec_ce")
    ap.add_argument("--losses", default="ce,sce,sampled_softmax")
    ap.add_argument("--batches", type=int, default=30, help="timed steps per loss per round")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--overrides", default="", help="extra overrides for every loss")
    a = ap.parse_args()
    names = a.losses.split(",")
    runs = {}
    for name in names:
        ov = [f"experiment={a.preset}", *LOSSES[name], "tracking=none", "device=cpu", *a.overrides.split()]
        cfg, data = load(ov)
        seed_everything(0)
        model = instantiate(cfg.model, num_items=data.num_items, num_users=data.num_users)
        loss, sampler = build_loss_and_sampler(cfg, model)
        if loss.requires == "sampled":
            sampler.setup(torch.as_tensor(data.item_counts()), torch.device("cpu"))
        trainer = instantiate(cfg.trainer)
        windows = TrainWindows(data.train, int(cfg.max_len), torch.device("cpu"), trainer.window_mode)
        batches = []
        for b in windows.iterate(trainer.batch_size, torch.Generator().manual_seed(0), shuffle=True):
            batches.append(b)
            if len(batches) == a.warmup + a.batches:
                break
        opt = torch.optim.AdamW(model.parameters(), lr=trainer.lr, fused=True)
        runs[name] = (model, loss, sampler, batches, opt, trainer, [], [])
    gen = torch.Generator().manual_seed(1)
    for _ in range(a.rounds):
        for name in names:
            model, loss, sampler, batches, opt, trainer, times, cpu = runs[name]
            model.train()
            for i, batch in enumerate(batches):
                t0, c0 = time.perf_counter(), time.process_time()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=trainer.uses_amp(torch.device("cpu"))):
                    value = training_loss(model, loss, sampler, batch, gen)
                opt.zero_grad(set_to_none=True)
                value.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.grad_clip or 1e9)
                opt.step()
                if i >= a.warmup:
                    times.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
    m = sum(int((b.targets > 0).sum()) for b in runs[names[0]][3]) / len(runs[names[0]][3])
    print(f"machine: load average {os.getloadavg()}, torch threads {torch.get_num_threads()}, "
          f"{a.rounds} rounds x {a.batches} steps per loss, preset {a.preset}, ~{m:.0f} targets per batch")
    med = {n: (statistics.median(runs[n][6]), statistics.median(runs[n][7])) for n in names}
    ce = med.get("ce")
    print(f"{'loss':18} {'median step (ms)':>17} {'vs ce':>7} {'median CPU (ms)':>16} {'CPU vs ce':>10}")
    for name in names:
        w, c = med[name]
        print(f"{name:18} {w * 1e3:17.1f} {(f'{w / ce[0]:.2f}x' if ce else '-'):>7} {c * 1e3:16.1f} "
              f"{(f'{c / ce[1]:.2f}x' if ce else '-'):>10}")


if __name__ == "__main__":
    main()
