"""Where the CPU time of the benchmarked phases goes (torch.profiler, one process, Beauty).

    OMP_NUM_THREADS=1 python bench/profile_hot_paths.py train gru4rec   # 20 trainer steps
    OMP_NUM_THREADS=1 python bench/profile_hot_paths.py eval sasrec     # one full-ranking pass
    OMP_NUM_THREADS=1 python bench/profile_hot_paths.py eval bert4rec
    OMP_NUM_THREADS=1 python bench/profile_hot_paths.py eval sasrec shapes   # grouped by input shapes

Same overrides as bench_speed.MODELS (and, for eval, RecBole's protocol: history not masked).
Prints the ops by self CPU time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch.profiler import profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_speed  # noqa: E402
from bench_worker import load  # noqa: E402

from recexp.data.batches import EvalBatches, TrainWindows  # noqa: E402
from recexp.runtime.malloc import keep_freed_memory  # noqa: E402
from recexp.training.parts import build_loss_and_sampler  # noqa: E402
from recexp.training.trainer import training_loss  # noqa: E402


def main() -> None:
    phase, name = sys.argv[1], sys.argv[2]
    keep_freed_memory()  # as the CLI does
    ov = ["dataset=beauty", "device=cpu", *bench_speed.MODELS[name][0], "tracking=none",
          "eval.mask_history=false", "eval.ks=[10]", "eval.metrics=[hr,ndcg]"]
    cfg, data = load(ov)
    torch.manual_seed(0)
    model = instantiate(cfg.model, num_items=data.num_items, num_users=data.num_users)
    if phase == "eval":
        ev, valid = instantiate(cfg.eval), EvalBatches(data.valid, int(cfg.max_len), torch.device("cpu"))
        ev.evaluate(model, valid, beyond=False)  # warm-up
        with profile(record_shapes=len(sys.argv) > 3) as p:
            ev.evaluate(model, valid, beyond=False)
    else:
        loss, sampler = build_loss_and_sampler(cfg, model)
        trainer = instantiate(cfg.trainer)
        windows = TrainWindows(data.train, int(cfg.max_len), torch.device("cpu"), trainer.window_mode)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
        batches = list(windows.iterate(trainer.batch_size, torch.Generator().manual_seed(0), shuffle=True))[:23]

        def step(b) -> None:  # noqa: ANN001
            v = training_loss(model, loss, sampler, b, None)
            opt.zero_grad()
            v.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()

        for b in batches[:3]:
            step(b)
        with profile(record_shapes=len(sys.argv) > 3) as p:
            for b in batches[3:]:
                step(b)
    print(p.key_averages(group_by_input_shape=len(sys.argv) > 3).table(sort_by="self_cpu_time_total", row_limit=15 if len(sys.argv) <= 3 else 40))


if __name__ == "__main__":
    main()
