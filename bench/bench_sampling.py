"""What negative sampling costs a SASRec training step, measured in one process.

For each (loss, sampler) it runs the same training batches (SASRec, AdamW step included) and
times the whole step and, separately, the sampler's ``sample`` call. Configurations take turns in
rounds, so a machine whose load changes during the run slows them all alike. Printed: ms per
step, the share of the step spent sampling, and the step time relative to ``ce`` (no sampling).

    RECEXP_DATA_DIR=/work/shared/datasets python bench/bench_sampling.py --batches 60 --rounds 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from recexp.config.compose import conf_dir
from recexp.data.batches import TrainWindows
from recexp.data.prepare import prepare
from recexp.training.parts import build_loss_and_sampler
from recexp.training.trainer import training_loss

CONFIGS: list[tuple[str, list[str]]] = [
    ("ce (no sampling)", ["loss=ce", "sampler=none"]),
    ("bce uniform K=1", ["loss=bce", "sampler=uniform"]),
    ("bce popularity K=1", ["loss=bce", "sampler=popularity"]),
    ("sampled_softmax uniform K=256 shared",
     ["loss=sampled_softmax", "sampler=uniform", "sampler.num_negatives=256", "sampler.shared=true"]),
    ("sampled_softmax popularity K=256 shared",
     ["loss=sampled_softmax", "sampler=popularity", "sampler.num_negatives=256", "sampler.shared=true"]),
    ("sampled_softmax in_batch K=64", ["loss=sampled_softmax", "sampler=in_batch"]),
    ("sampled_softmax mixed K=32+32", ["loss=sampled_softmax", "sampler=mixed"]),
]


class TimedSampler:
    """Wraps a sampler; accumulates the seconds spent in ``sample`` (CPU: synchronous)."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner, self.seconds = inner, 0.0

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.inner, name)

    def sample(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        t0 = time.perf_counter()
        out = self.inner.sample(*args, **kwargs)
        if out.ids.is_cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t0
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--batches", type=int, default=60, help="training batches per config and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--overrides", nargs="*", default=[], help="extra Hydra overrides for every config")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        base = [f"dataset={args.dataset}", "model=sasrec", "model.dropout=0.5", *args.overrides]
        cfgs = {name: compose(config_name="train", overrides=[*base, *o]) for name, o in CONFIGS}
    cfg0 = next(iter(cfgs.values()))
    data = prepare(OmegaConf.to_container(cfg0.dataset, resolve=True),
                   OmegaConf.to_container(cfg0.split, resolve=True), instantiate(cfg0.split),
                   Path(str(cfg0.data_dir)).expanduser(), Path(str(cfg0.paths.cache_dir)))
    windows = TrainWindows(data.train, int(cfg0.max_len), device)
    batches = list(windows.iterate(int(cfg0.trainer.batch_size), torch.Generator().manual_seed(0), shuffle=True))
    batches = batches[: args.batches]
    per_epoch = (len(windows) + int(cfg0.trainer.batch_size) - 1) // int(cfg0.trainer.batch_size)
    print(f"{args.dataset}: {data.num_items} items, {len(windows)} training windows = {per_epoch} batches "
          f"per epoch; timing {len(batches)} batches x {args.rounds} rounds per config on {device}, "
          f"{torch.get_num_threads()} threads")

    parts = {}
    for name, cfg in cfgs.items():
        model = instantiate(cfg.model, num_items=data.num_items, num_users=data.num_users).to(device)
        loss, sampler = build_loss_and_sampler(cfg, model)
        if loss.requires == "sampled":
            sampler.setup(torch.as_tensor(data.item_counts(), device=device), device)
            sampler = TimedSampler(sampler)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        parts[name] = (model, loss, sampler, opt, {"step_s": 0.0, "steps": 0})

    for _ in range(args.rounds):
        for model, loss, sampler, opt, acc in parts.values():
            gen = torch.Generator(device=device).manual_seed(1)
            model.train()
            t0 = time.perf_counter()
            for batch in batches:
                value = training_loss(model, loss, sampler, batch, gen)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            acc["step_s"] += time.perf_counter() - t0
            acc["steps"] += len(batches)

    ref = parts[CONFIGS[0][0]][4]
    ref_ms = 1000 * ref["step_s"] / ref["steps"]
    print("\n| loss / sampler | ms per step | sampling ms per step | sampling share of step | step vs ce |")
    print("|---|---|---|---|---|")
    for name, (_, _, sampler, _, acc) in parts.items():
        ms = 1000 * acc["step_s"] / acc["steps"]
        smp_ms = 1000 * getattr(sampler, "seconds", 0.0) / acc["steps"]
        print(f"| {name} | {ms:.1f} | {smp_ms:.2f} | {100 * smp_ms / ms:.1f}% | {ms / ref_ms:.2f} |")


if __name__ == "__main__":
    main()
