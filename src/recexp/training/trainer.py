"""The training loop: wires model, loss, sampler and evaluator; knows none of their internals."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from recexp.data.batches import Batch, EvalBatches, SessionParallel, TrainWindows
from recexp.data.seqs import SplitData
from recexp.errors import ConfigError, NonFiniteLoss
from recexp.models.base import SeqRecModel
from recexp.models.scoring import dot_product_items
from recexp.samplers import Sampler
from recexp.terminal import batches
from recexp.training import checkpoint

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class FitResult:
    best_epoch: int = 0
    best_score: float = float("nan")
    epochs_run: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def training_loss(model: SeqRecModel, loss: torch.nn.Module, sampler: Sampler | None, batch: Batch,
                  generator: torch.Generator | None) -> torch.Tensor:
    """One batch's loss. Only positions with a target contribute."""
    H, T = model.train_inputs(batch)  # (B, L, D), (B, L)
    if batch.num_targets is not None and T is batch.targets:
        # the count is known from the batch plan: no device->host sync for a boolean index
        flat = torch.nonzero_static((T > 0).flatten(), size=batch.num_targets).squeeze(1)  # (M,)
        h, pos = H.flatten(0, 1)[flat], T.flatten()[flat]  # (M, D), (M,)
        rows = torch.div(flat, T.shape[1], rounding_mode="floor")  # (M,)
    else:
        mask = T > 0
        h, pos = H[mask], T[mask]  # (M, D), (M,)
        rows = torch.arange(T.shape[0], device=T.device).unsqueeze(1).expand_as(T)[mask]  # (M,)
    if loss.requires == "full":
        table = dot_product_items(model)
        if table is not None and callable(getattr(loss, "from_embeddings", None)):
            return loss.from_embeddings(h, table, pos)  # fused: never holds the (M, N+1) logits
        return loss(model.score(h), pos)
    neg = sampler.sample(pos, batch, rows, generator)
    pos_s = model.score(h, pos.unsqueeze(1)).squeeze(1)  # (M,)
    neg_s = model.score(h, neg.ids)  # (M, K)
    return loss(pos_s, neg_s, neg.pos_log_q, neg.log_q)


def fit_batch_size(batch_size: int, num_windows: int, min_steps: int) -> int:
    """The batch size actually used: ``batch_size``, shrunk to ceil(windows / min_steps) so an epoch
    has about ``min_steps`` optimiser steps (49 for 1,560 windows and 50). On the default synthetic data (~1,500 windows) 256 per batch gave 6 steps per
    epoch and GRU4Rec, NARM and Caser stopped at the popularity level on an early plateau; with
    ~32 per batch they learn (docs/results.md). Data with ``num_windows >= batch_size * min_steps``
    (Beauty: 22k windows) is unaffected. ``min_steps = 0``: always ``batch_size``."""
    if min_steps <= 0 or num_windows <= 0:
        return batch_size
    return max(1, min(batch_size, -(-num_windows // min_steps)))


class Trainer:
    def __init__(self, max_epochs: int = 100, batch_size: int = 256, lr: float = 1e-3,
                 weight_decay: float = 0.0, grad_clip: float | None = 5.0, patience: int = 10,
                 monitor: str = "ndcg_10", eval_every: int = 1, window_mode: str = "all",
                 amp: bool = True, progress: bool = True, log_every: int = 50,
                 checkpoint_every: int = 1, compile: bool = False, min_steps_per_epoch: int = 0) -> None:
        for key, value, kind in (("max_epochs", max_epochs, int), ("batch_size", batch_size, int),
                                 ("lr", lr, float), ("weight_decay", weight_decay, float),
                                 ("patience", patience, int), ("eval_every", eval_every, int),
                                 ("min_steps_per_epoch", min_steps_per_epoch, int)):
            if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
                raise ConfigError(f"trainer.{key}={value!r}: expected {'an integer' if kind is int else 'a number'}")
        if grad_clip is not None and not isinstance(grad_clip, int | float):
            raise ConfigError(f"trainer.grad_clip={grad_clip!r}: expected a number or null")
        if batch_size < 1 or lr <= 0:
            raise ConfigError(f"trainer.batch_size={batch_size}, trainer.lr={lr}: both must be positive")
        self.max_epochs, self.batch_size, self.lr = max_epochs, batch_size, lr
        self.weight_decay, self.grad_clip, self.patience = weight_decay, grad_clip, patience
        self.monitor, self.eval_every, self.window_mode = monitor, eval_every, window_mode
        self.amp, self.progress, self.log_every = amp, progress, log_every
        self.checkpoint_every = checkpoint_every  # epochs between resumable ``last.pt`` files; 0: never
        self.compile = compile
        self.min_steps_per_epoch = int(min_steps_per_epoch)
        self.console = Console(stderr=True)

    def fit(self, model: SeqRecModel, loss: torch.nn.Module, sampler: Sampler | None, data: SplitData,
            evaluator, max_len: int, device: torch.device, *, seed: int = 0,
            on_epoch: EpochCallback | None = None, ckpt_dir: Path | None = None,
            config: dict | None = None, resume_from: Path | None = None) -> FitResult:
        result = FitResult()
        model.fit(data)
        valid = EvalBatches(data.valid, max_len, device)
        params = [p for p in model.parameters() if p.requires_grad]
        if not model.trainable or not params or self.max_epochs <= 0:
            metrics, _ = evaluator.evaluate(model, valid, beyond=False)
            metrics = {f"valid/{k}": v for k, v in metrics.items()}
            result.history.append(metrics)
            result.best_score = metrics.get(f"valid/{self.monitor}", float("nan"))
            if on_epoch:
                on_epoch(0, metrics)
            return result
        if f"{self.monitor.split('_')[0]}" not in evaluator.metrics:
            raise ConfigError(f"trainer.monitor={self.monitor!r}: the evaluator computes {evaluator.metrics}")
        if loss.requires == "sampled":
            if sampler is None or sampler.name == "none":
                raise ConfigError(f"loss={loss.name} needs negatives: choose a sampler (e.g. sampler=uniform)")
            sampler.setup(torch.as_tensor(data.item_counts(), device=device), device)
        if getattr(model, "session_parallel", False):  # GRU4Rec's lanes of consecutive sequences
            windows = SessionParallel(data.train, device, bptt=getattr(model, "bptt", 1))
        else:
            windows = TrainWindows(data.train, max_len, device, self.window_mode)
        # session-parallel batches are lanes (a model setting), not windows: never resized
        batch_size = (self.batch_size if isinstance(windows, SessionParallel)
                      else fit_batch_size(self.batch_size, len(windows), self.min_steps_per_epoch))
        if self.compile:
            # compiles __call__ (training forward) in place: state_dict keys stay unprefixed;
            # dynamic: batch widths vary with length bucketing
            model.compile(dynamic=True)
        # fused: one kernel for all parameters instead of ~10 small ops per parameter tensor
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay,
                                fused=device.type in ("cpu", "cuda"))
        shuffle_gen = torch.Generator().manual_seed(seed)
        sample_gen = torch.Generator(device=device).manual_seed(seed + 1)
        use_amp = self.amp and device.type == "cuda" and torch.cuda.is_bf16_supported()
        best_state, bad_evals = None, 0
        epoch = start = 0
        if resume_from is not None:
            state = checkpoint.load_resumable(resume_from, device)
            if state is not None:  # continue exactly where the killed job's last full epoch ended
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                best_state, bad_evals, start = state["best_model"], int(state["bad_evals"]), int(state["epoch"])
                result.best_score, result.best_epoch = float(state["best_score"]), int(state["best_epoch"])
                result.history, result.epochs_run = list(state["history"]), start
                checkpoint.restore_rng(state, shuffle_gen, sample_gen)
                if self.progress:
                    self.console.print(f"resumed from {resume_from} after epoch {start}")
                if state["stopped_early"]:
                    result.stopped_early = True
                    start = self.max_epochs  # nothing left to train; restore best below
        try:
            for epoch in range(start + 1, self.max_epochs + 1):
                t0 = time.perf_counter()
                model.train()
                total = torch.zeros((), device=device)
                steps = 0
                for batch in batches(windows.iterate(batch_size, shuffle_gen, shuffle=True),
                                     math.ceil(len(windows) / batch_size), epoch, self.progress):
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                        value = training_loss(model, loss, sampler, batch, sample_gen)
                    opt.zero_grad(set_to_none=True)
                    value.backward()
                    if self.grad_clip:
                        torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                    opt.step()
                    total += value.detach()
                    steps += 1
                mean_loss = float(total) / max(steps, 1)  # one host sync per epoch
                if not math.isfinite(mean_loss):
                    raise NonFiniteLoss(f"training loss became {mean_loss} at epoch {epoch} "
                                        f"(lower trainer.lr={self.lr} or set trainer.grad_clip)")
                train_s = time.perf_counter() - t0
                # elapsed_s: training seconds so far (validation excluded), for curves at equal wall time
                elapsed = (result.history[-1].get("train/elapsed_s", 0.0) if result.history else 0.0) + train_s
                metrics = {"train/loss": mean_loss, "train/epoch_s": train_s, "train/elapsed_s": elapsed,
                           "train/batch_size": float(batch_size),
                           "train/seq_per_s": len(windows) / max(train_s, 1e-9)}
                if epoch % self.eval_every == 0 or epoch == self.max_epochs:
                    t1 = time.perf_counter()
                    vm, _ = evaluator.evaluate(model, valid, beyond=False)
                    metrics["valid/eval_s"] = time.perf_counter() - t1
                    metrics.update({f"valid/{k}": v for k, v in vm.items()})
                    score = vm[self.monitor]
                    if best_state is None or score > result.best_score:
                        result.best_score, result.best_epoch, bad_evals = score, epoch, 0
                        best_state = copy.deepcopy(model.state_dict())
                        if ckpt_dir is not None:
                            checkpoint.save(ckpt_dir / "best.pt", model=best_state, epoch=epoch,
                                            best_score=score, config=config or {})
                    else:
                        bad_evals += 1
                result.history.append(metrics)
                result.epochs_run = epoch
                self._report(epoch, metrics)
                if on_epoch:
                    on_epoch(epoch, metrics)
                if bad_evals >= self.patience:
                    result.stopped_early = True
                # saved after on_epoch so a resumed job never skips logging an epoch (at worst one
                # epoch killed between the two is logged twice, with the same step)
                if ckpt_dir is not None and self.checkpoint_every > 0 and (
                        epoch % self.checkpoint_every == 0 or result.stopped_early):
                    checkpoint.save_resumable(ckpt_dir / "last.pt", model=model, optimizer=opt, epoch=epoch,
                                              best_model=best_state, best_score=result.best_score,
                                              best_epoch=result.best_epoch, bad_evals=bad_evals,
                                              history=result.history, stopped_early=result.stopped_early,
                                              generators=(shuffle_gen, sample_gen), config=config or {})
                if result.stopped_early:
                    break
        except KeyboardInterrupt:
            if ckpt_dir is not None and not (ckpt_dir / "last.pt").is_file():
                # mid-epoch state: kept for inspection, but never resumed from (resumable=False)
                checkpoint.save(ckpt_dir / "last.pt", model=model.state_dict(), optimizer=opt.state_dict(),
                                epoch=epoch, best_score=result.best_score, config=config or {},
                                resumable=False)
            raise
        if best_state is not None:
            model.load_state_dict(best_state)  # the test set is evaluated once, from the best epoch
        return result

    def _report(self, epoch: int, m: dict[str, float]) -> None:
        if not self.progress:
            return
        valid = m.get(f"valid/{self.monitor}")
        vtxt = f"valid {self.monitor} [bold]{valid:.4f}[/]" if valid is not None else ""
        self.console.print(f"epoch {epoch:>3}  loss {m['train/loss']:.4f}  {vtxt}  "
                           f"{m['train/epoch_s']:.1f}s  {m['train/seq_per_s']:,.0f} seq/s")
