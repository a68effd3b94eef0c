"""One benchmark measurement in its own process (so its peak memory is its own); bench_speed.py
runs it and reads the JSON line it prints last.

    recexp  --epochs N --overrides "dataset=beauty model=sasrec ..." [--train-batches B]
    atomic  --out DIR --overrides "dataset=beauty"      # RecBole atomic files of recexp's split
    rank1m  [--device cpu]                              # streamed full ranking over 1M items
    scale   --users U --items N --mean-length L --overrides "loss=sce" --train-batches B
            # trainer steps + full ranking on random sequences of that shape, for one loss
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from recexp.config.compose import conf_dir
from recexp.data.batches import EvalBatches, TrainWindows
from recexp.data.prepare import prepare
from recexp.runtime.malloc import keep_freed_memory
from recexp.training.parts import build_loss_and_sampler, resolve_device, seed_everything
from recexp.training.trainer import training_loss


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def load(overrides: list[str]) -> tuple[DictConfig, object]:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    data = prepare(OmegaConf.to_container(cfg.dataset, resolve=True), OmegaConf.to_container(cfg.split, resolve=True),
                   instantiate(cfg.split), Path(str(cfg.data_dir)).expanduser(), Path(str(cfg.paths.cache_dir)))
    return cfg, data


class CpuClock:
    """Wraps an evaluator to split each epoch's process CPU time (all threads) into training and
    evaluation: on a shared machine CPU seconds vary less with other users' load than wall time."""

    def __init__(self, evaluator, stop_at: float = 0.0) -> None:  # noqa: ANN001
        self.inner, self.train, self.eval = evaluator, [], []
        self.metrics = evaluator.metrics
        self.history: list[dict] = []
        self.stop_at = stop_at  # > 0: end the run at the first epoch whose valid NDCG@10 reaches it
        self._mark, self._eval_now = time.process_time(), 0.0

    def evaluate(self, *args, **kw):  # noqa: ANN002, ANN003, ANN201
        c = time.process_time()
        out = self.inner.evaluate(*args, **kw)
        self._eval_now += time.process_time() - c
        return out

    def on_epoch(self, epoch: int, metrics: dict) -> None:
        now = time.process_time()
        self.train.append(now - self._mark - self._eval_now)
        self.eval.append(self._eval_now)
        self._mark, self._eval_now = now, 0.0
        self.history.append(dict(metrics))
        if self.stop_at and metrics.get("valid/ndcg_10", 0.0) >= self.stop_at:
            raise Reached


class Reached(Exception):
    """The time-to-quality run reached its target (raised from the epoch callback)."""


def run_recexp(a: argparse.Namespace) -> dict:
    # RecBole's sequential full ranking does not mask history: compare like with like
    fixed = ["tracking=none", "trainer.progress=false", f"trainer.max_epochs={a.epochs}", "trainer.patience=1000",
             "eval.mask_history=false", "eval.ks=[10]", "eval.metrics=[hr,ndcg]"]
    cfg, data = load(a.overrides.split() + fixed)
    seed_everything(int(cfg.seed))
    device = resolve_device(cfg.device)
    model = instantiate(cfg.model, num_items=data.num_items, num_users=data.num_users).to(device)
    loss, sampler = build_loss_and_sampler(cfg, model)
    evaluator = instantiate(cfg.eval)
    trainer = instantiate(cfg.trainer)
    out = {"impl": "recexp", "users": data.num_users, "items": data.num_items,
           "interactions": int(len(data.train.items) + 2 * len(data.valid)), "device": str(device),
           "threads": torch.get_num_threads(), "torch": torch.__version__}
    if device.type == "cuda":
        out["device"] = torch.cuda.get_device_name()
    if a.eval_passes:
        out |= eval_only(cfg, data, model, evaluator, device, a.eval_passes)
    elif a.train_batches:
        out |= partial_epoch(cfg, data, model, loss, sampler, trainer, evaluator, device, a.train_batches)
    else:
        cpu = CpuClock(evaluator, a.stop_at)
        try:
            trainer.fit(model, loss, sampler, data, cpu, int(cfg.max_len), device, seed=int(cfg.seed),
                        on_epoch=cpu.on_epoch)
        except Reached:
            pass
        h = cpu.history
        out |= {"train_epoch_s": [m["train/epoch_s"] for m in h], "eval_s": [m["valid/eval_s"] for m in h],
                "train_epoch_cpu_s": cpu.train, "eval_cpu_s": cpu.eval,
                "valid_per_epoch": [m.get("valid/ndcg_10") for m in h],
                "valid": {"ndcg_10": h[-1]["valid/ndcg_10"], "hit_10": h[-1]["valid/hr_10"]}}
    out["peak_rss_mb"] = peak_rss_mb()
    out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return out


def partial_epoch(cfg, data, model, loss, sampler, trainer, evaluator, device, n_batches: int) -> dict:  # noqa: ANN001
    """Time the first ``n_batches`` of an epoch with the trainer's own step and extrapolate."""
    windows = TrainWindows(data.train, int(cfg.max_len), device, trainer.window_mode)
    opt = torch.optim.AdamW(model.parameters(), lr=trainer.lr, fused=device.type in ("cpu", "cuda"))
    gen = torch.Generator().manual_seed(0)
    total = (len(windows) + trainer.batch_size - 1) // trainer.batch_size
    done = 0
    sync(device)
    t0 = time.perf_counter()
    for batch in windows.iterate(trainer.batch_size, gen, shuffle=True):
        value = training_loss(model, loss, sampler, batch, None)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        done += 1
        if done == n_batches:
            break
    sync(device)
    part = time.perf_counter() - t0
    t1 = time.perf_counter()
    metrics, _ = evaluator.evaluate(model, EvalBatches(data.valid, int(cfg.max_len), device))
    sync(device)
    return {"train_epoch_s": [part * total / done], "eval_s": [time.perf_counter() - t1],
            "valid": {"ndcg_10": metrics["ndcg_10"], "hit_10": metrics["hr_10"]},
            "note": f"epoch extrapolated from {done}/{total} batches ({part:.1f}s)"}


def eval_only(cfg, data, model, evaluator, device, passes: int) -> dict:  # noqa: ANN001
    """Time ``passes`` full-ranking validation passes of the untrained model: the work of a pass
    (encoder over every history, every item scored) does not depend on the weights."""
    valid = EvalBatches(data.valid, int(cfg.max_len), device)
    wall, cpu = [], []
    for _ in range(passes):
        sync(device)
        t, c = time.perf_counter(), time.process_time()
        metrics, _ = evaluator.evaluate(model, valid, beyond=False)
        sync(device)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"train_epoch_s": [], "train_epoch_cpu_s": [], "eval_s": wall, "eval_cpu_s": cpu,
            "valid": {"ndcg_10": metrics["ndcg_10"], "hit_10": metrics["hr_10"]},
            "note": f"evaluation only, {passes} passes of the untrained model"}


def write_atomic(a: argparse.Namespace) -> dict:
    """``bench/bench.inter``: every user's full sequence, ``timestamp`` = position, so RecBole's
    leave-one-out by time (order TO) holds out the same two items recexp's loo split does."""
    _, data = load(a.overrides.split())
    tr, te = data.train, data.test
    full: dict[int, np.ndarray] = {int(u): tr.seq(s) for s, u in enumerate(tr.users)}
    for e, u in enumerate(te.hist.users):  # test history = train + validation target
        full[int(u)] = np.append(te.hist.seq(e), te.targets[e])
    out = Path(a.out) / "bench"
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(out / "bench.inter", "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for u, seq in sorted(full.items()):
            f.writelines(f"{u}\t{i}\t{p}\n" for p, i in enumerate(seq.tolist()))
            n += len(seq)
    return {"file": str(out / "bench.inter"), "users": len(full), "interactions": n}


def rank_1m(a: argparse.Namespace) -> dict:
    """Streamed full ranking over 1M items for 2,048 users in batches of 1,024: a dense
    (batch x items) fp32 score matrix would be ~3.8 GiB per batch; the streamed one holds
    (1024 x 32768) = 128 MiB per block."""
    from recexp.eval.ranking import streamed_topk, target_ranks
    from recexp.models.sasrec import SASRec

    device = torch.device(a.device)
    torch.manual_seed(0)
    n_items, n_users, batch = 1_000_000, 2048, 1024
    model = SASRec(num_items=n_items, max_len=50, hidden_size=64).to(device).eval()
    seq = torch.randint(1, n_items + 1, (n_users, 50), device=device)
    targets = torch.randint(1, n_items + 1, (n_users,), device=device)
    from recexp.data.batches import Batch

    rss0 = peak_rss_mb()
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, n_users, batch):
            b = Batch(seq=seq[i : i + batch], users=torch.zeros(batch, device=device),
                      times=torch.zeros(batch, 50, device=device))
            h = model.query(b)
            target_ranks(model, h, targets[i : i + batch])
            streamed_topk(model, h, 20)
    sync(device)
    return {"impl": "recexp", "users": n_users, "items": n_items, "interactions": 0,
            "train_epoch_s": [], "eval_s": [time.perf_counter() - t0], "peak_rss_mb": peak_rss_mb(),
            "rss_before_eval_mb": rss0, "dense_batch_scores_mb": batch * (n_items + 1) * 4 / 2**20,
            "note": f"ranks + top-20 of {n_users} random users (untrained model); no training"}


def scale_run(a: argparse.Namespace) -> dict:
    """Trainer steps and a full-ranking pass on random sequences of a given shape, for one loss.

    Lengths are drawn like the synthetic generator's (``min + Exponential(mean - min)``, clipped),
    items Zipf-like (rank^-0.8, so popular items repeat as in real logs). The first ``--warmup``
    steps are not timed; the epoch is the mean of the next ``--train-batches`` steps times the
    number of batches an epoch has; evaluation times ``--eval-users`` users (last item the
    target, history masked) and is extrapolated to all users. Both extrapolations are stated."""
    from recexp.data.seqs import EvalSet, Seqs
    from recexp.eval.evaluator import FullRanking

    rng = np.random.default_rng(0)
    U, N = a.users, a.items
    lens = np.clip(a.min_length + rng.exponential(a.mean_length - a.min_length, U).astype(np.int64),
                   a.min_length, a.max_length)
    w = np.arange(1, N + 1, dtype=np.float64) ** -0.8
    items = rng.choice(N, size=int(lens.sum()), p=w / w.sum()) + 1  # (nnz,) 1..N
    seqs = Seqs.from_lengths(np.arange(1, U + 1), lens, items, np.arange(len(items), dtype=np.float64))
    ov = ["model=sasrec", "model.dropout=0.5", f"max_len={a.max_len}", "tracking=none", "device=cpu",
          *a.overrides.split()]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=ov)
    seed_everything(0)
    device = torch.device(a.device)
    model = instantiate(cfg.model, num_items=N, num_users=U).to(device)
    loss, sampler = build_loss_and_sampler(cfg, model)
    if loss.requires == "sampled":
        sampler.setup(torch.as_tensor(np.bincount(items, minlength=N + 1)), device)
    windows = TrainWindows(seqs, a.max_len, device)
    total = -(-len(windows) // a.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type in ("cpu", "cuda"))
    gen = torch.Generator(device=device).manual_seed(1)
    rss_setup = peak_rss_mb()
    steps, steps_cpu, targets = [], [], []
    for i, batch in enumerate(windows.iterate(a.batch_size, torch.Generator().manual_seed(0), shuffle=True)):
        if i == a.warmup + a.train_batches:
            break
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        value = training_loss(model, loss, sampler, batch, gen)
        opt.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sync(device)
        if i >= a.warmup:
            steps.append(time.perf_counter() - t0)
            steps_cpu.append(time.process_time() - c0)
            targets.append(int((batch.targets > 0).sum()))
    rss_train = peak_rss_mb()
    E = min(a.eval_users, U)
    hist = Seqs.from_lengths(np.arange(1, E + 1), lens[:E] - 1,
                             np.concatenate([seqs.seq(u)[:-1] for u in range(E)]),
                             np.zeros(int(lens[:E].sum() - E)))
    ev = EvalSet(hist=hist, targets=np.array([seqs.seq(u)[-1] for u in range(E)]), target_times=np.zeros(E))
    evaluator = FullRanking(ks=[10], metrics=["hr", "ndcg"])
    valid = EvalBatches(ev, a.max_len, device)
    sync(device)
    t1, c1 = time.perf_counter(), time.process_time()
    evaluator.evaluate(model, valid, beyond=False)
    sync(device)
    eval_part, eval_cpu = time.perf_counter() - t1, time.process_time() - c1
    step = sum(steps) / len(steps)
    return {"impl": "recexp", "users": U, "items": N, "interactions": int(lens.sum()), "loss": a.overrides,
            "train_epoch_s": [step * total], "step_s": step, "step_cpu_s": sum(steps_cpu) / len(steps_cpu),
            "eval_cpu_part_s": eval_cpu, "steps_timed": len(steps), "batches": total,
            "targets_per_batch": sum(targets) / len(targets), "eval_s": [eval_part * U / E],
            "eval_part_s": eval_part, "eval_users": E, "rss_after_setup_mb": rss_setup,
            "rss_after_train_mb": rss_train, "peak_rss_mb": peak_rss_mb(),
            "note": f"epoch = mean of {len(steps)} steps x {total} batches; eval = {E} users x {U / E:.1f}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["recexp", "atomic", "rank1m", "scale"])
    ap.add_argument("--users", type=int, default=0)
    ap.add_argument("--items", type=int, default=0)
    ap.add_argument("--mean-length", type=float, default=0)
    ap.add_argument("--min-length", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=2000)
    ap.add_argument("--max-len", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--eval-users", type=int, default=4096)
    ap.add_argument("--overrides", default="")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-batches", type=int, default=0)
    ap.add_argument("--out", default="bench/out/atomic")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--eval-passes", type=int, default=0, help="recexp: no training, time this many evaluations")
    ap.add_argument("--stop-at", type=float, default=0.0, help="recexp: stop once valid NDCG@10 >= this")
    a = ap.parse_args()
    keep_freed_memory()  # as the CLI does (recexp.runtime.malloc)
    fn = {"recexp": run_recexp, "atomic": write_atomic, "rank1m": rank_1m, "scale": scale_run}[a.kind]
    print(json.dumps(fn(a)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
