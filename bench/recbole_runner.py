"""Time RecBole on atomic files written by bench_speed.py; runs inside bench/.recbole-venv.

Not part of recexp (RecBole is never a project dependency). Prints one JSON line:
``{"train_epoch_s": [...], "eval_s": [...], "valid": {...}, "peak_rss_mb": ..., ...}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time

# RecBole 1.2.1 uses aliases removed in numpy 2; harmless on numpy<2 (what the venv pins).
import numpy as np

for _alias, _real in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
    if not hasattr(np, _alias):
        setattr(np, _alias, _real)

import torch  # noqa: E402
from recbole.config import Config  # noqa: E402  (not recbole.quick_start: it imports ray)
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import get_model, get_trainer, init_seed  # noqa: E402

# RecBole's own names and the hyperparameters matching recexp's (see bench_speed.MODELS).
MODEL_ARGS: dict[str, dict] = {
    "SASRec": {"n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 256,
               "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5, "loss_type": "CE"},
    "GRU4Rec": {"embedding_size": 64, "hidden_size": 64, "num_layers": 1, "dropout_prob": 0.3,
                "loss_type": "CE"},
    "BERT4Rec": {"n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 256,
                 "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5, "mask_ratio": 0.2,
                 "loss_type": "CE"},
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-path", required=True, help="folder holding DATASET/DATASET.inter")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--model", required=True, choices=sorted(MODEL_ARGS))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--eval-passes", type=int, default=1, help="with --epochs 0: evaluations to time")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint-dir", default="/tmp/recbole-bench-ckpt")
    a = ap.parse_args()
    logging.disable(logging.INFO)
    cfg = {
        "data_path": a.data_path, "checkpoint_dir": a.checkpoint_dir, "seed": a.seed,
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": a.max_len, "train_batch_size": a.batch_size, "learning_rate": a.lr,
        "train_neg_sample_args": None, "epochs": a.epochs,
        # leave-one-out by time, full ranking, as recexp's loo split (RecBole does not mask history)
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "NDCG@10",
        "use_gpu": a.device != "cpu", "show_progress": False, "save_dataset": False,
        "save_dataloaders": False, "worker": 0, **MODEL_ARGS[a.model],
    }
    config = Config(model=a.model, dataset=a.dataset, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    t0 = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, _ = data_preparation(config, dataset)
    prep_s = time.perf_counter() - t0
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    cuda = torch.cuda.is_available() and a.device != "cpu"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    train_s, eval_s, train_cpu, eval_cpu, valid = [], [], [], [], {}
    for _ in range(a.eval_passes if a.epochs == 0 else 0):  # evaluation only (untrained model)
        sync()
        t2, c2 = time.perf_counter(), time.process_time()
        valid = trainer.evaluate(valid_data, load_best_model=False, show_progress=False)
        sync()
        eval_s.append(time.perf_counter() - t2)
        eval_cpu.append(time.process_time() - c2)
    for epoch in range(a.epochs):
        sync()
        t1, c1 = time.perf_counter(), time.process_time()
        trainer._train_epoch(train_data, epoch_idx=epoch, show_progress=False)
        sync()
        train_s.append(time.perf_counter() - t1)
        train_cpu.append(time.process_time() - c1)
        t2, c2 = time.perf_counter(), time.process_time()
        valid = trainer.evaluate(valid_data, load_best_model=False, show_progress=False)
        sync()
        eval_s.append(time.perf_counter() - t2)
        eval_cpu.append(time.process_time() - c2)
        print(f"recbole {a.model} epoch {epoch + 1}: train {train_s[-1]:.1f}s eval {eval_s[-1]:.1f}s "
              f"{dict(valid)}", file=sys.stderr, flush=True)
    out = {"impl": "recbole", "model": a.model, "train_epoch_s": train_s, "eval_s": eval_s,
           "train_epoch_cpu_s": train_cpu, "eval_cpu_s": eval_cpu,
           "valid": {k.lower().replace("@", "_"): float(v) for k, v in valid.items()},
           "peak_rss_mb": peak_rss_mb(), "prepare_s": prep_s,
           "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
           "users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1),
           "interactions": int(dataset.inter_num), "device": torch.cuda.get_device_name() if cuda else "cpu",
           "torch": torch.__version__, "threads": torch.get_num_threads()}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
