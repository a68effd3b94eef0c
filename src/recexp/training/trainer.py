"""The training loop: wires model, loss, sampler and evaluator; knows none of their internals.

``Trainer.fit`` reads as its steps: set up, then per epoch ``train_epoch`` -> ``validate`` ->
early stopping -> checkpoint, then restore the best validation weights.
"""

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
from recexp.runtime.distributed import World
from recexp.runtime.precision import native_bf16
from recexp.runtime.terminal import batches as with_progress
from recexp.training import checkpoint, ddp
from recexp.training.contracts import Evaluator, Loss, Model, Sampler, TrainBatches
from recexp.training.state import TrainingState

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class FitResult:
    best_epoch: int = 0
    best_score: float = float("nan")
    epochs_run: int = 0
    history: list[dict[str, float]] = field(default_factory=list)  # one entry per epoch, in order
    stopped_early: bool = False

    @property
    def best(self) -> dict[str, float]:
        """The metrics of the best validation epoch (the last entry when none was selected)."""
        if 1 <= self.best_epoch <= len(self.history):
            return self.history[self.best_epoch - 1]
        return self.history[-1] if self.history else {}


def training_loss(model: Model, loss: Loss, sampler: Sampler | None, batch: Batch,
                  generator: torch.Generator | None, mask_generator: torch.Generator | None = None
                  ) -> torch.Tensor:
    """One batch's loss. Only positions with a target contribute. ``generator`` draws the
    negatives, ``mask_generator`` the model's own training draws (BERT4Rec's cloze masks)."""
    H, T = model.train_inputs(batch, mask_generator)  # (B, L, D), (B, L)
    if batch.num_targets is not None and T is batch.targets:
        # the count is known from the batch plan: no device->host sync for a boolean index
        flat = torch.nonzero_static((T > 0).flatten(), size=batch.num_targets).squeeze(1)  # (M,)
        h, pos = H.flatten(0, 1)[flat], T.flatten()[flat]  # (M, D), (M,)
        rows = torch.div(flat, T.shape[1], rounding_mode="floor")  # (M,)
    elif batch.last_only and T.shape[1] == 1:  # every prefix window's last position is a target
        h, pos = H[:, 0], T[:, 0]  # (B, D), (B,)
        rows = torch.arange(T.shape[0], device=T.device)
    else:
        mask = T > 0
        h, pos = H[mask], T[mask]  # (M, D), (M,)
        rows = torch.arange(T.shape[0], device=T.device).unsqueeze(1).expand_as(T)[mask]  # (M,)
    if loss.requires == "full":
        value = loss.from_queries(h, pos, model)  # the loss picks its own (fused) path
    else:
        neg = sampler.sample(pos, batch, rows, generator)
        pos_s = model.score(h, pos.unsqueeze(1)).squeeze(1)  # (M,)
        neg_s = model.score(h, neg.ids)  # (M, K)
        value = loss(pos_s, neg_s, neg.pos_log_q, neg.log_q)
    penalty = model.penalty()
    return value if penalty is None else value + penalty


def fit_batch_size(batch_size: int, num_windows: int, min_steps: int) -> int:
    """The batch size actually used: ``batch_size``, shrunk to ceil(windows / min_steps) so an epoch
    has about ``min_steps`` optimiser steps (49 for 1,560 windows and 50). On the default synthetic
    data (~1,500 windows) 256 per batch gave 6 steps per epoch and GRU4Rec, NARM and Caser stopped
    at the popularity level on an early plateau; with ~32 per batch they learn (docs/results.md).
    Data with ``num_windows >= batch_size * min_steps`` (Beauty: 22k windows) is unaffected.
    ``min_steps = 0``: always ``batch_size``."""
    if min_steps <= 0 or num_windows <= 0:
        return batch_size
    return max(1, min(batch_size, -(-num_windows // min_steps)))


class Trainer:
    def __init__(self, max_epochs: int = 100, batch_size: int = 256, lr: float = 1e-3,
                 weight_decay: float = 0.0, grad_clip: float | None = 5.0, patience: int = 10,
                 monitor: str = "ndcg_10", eval_every: int = 1, window_mode: str = "all",
                 amp: bool = True, progress: bool = True, log_every: int = 50,
                 checkpoint_every: int = 1, compile: bool = False, min_steps_per_epoch: int = 0,
                 cpu_amp: bool = False, num_processes: int = 1) -> None:
        for key, value, kind in (("max_epochs", max_epochs, int), ("batch_size", batch_size, int),
                                 ("lr", lr, float), ("weight_decay", weight_decay, float),
                                 ("patience", patience, int), ("eval_every", eval_every, int),
                                 ("min_steps_per_epoch", min_steps_per_epoch, int),
                                 ("num_processes", num_processes, int)):
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
        self.cpu_amp = bool(cpu_amp)  # bf16 autocast on CPU too: opt-in, it changes the numbers of CPU runs
        self.checkpoint_every = checkpoint_every  # epochs between resumable ``last.pt`` files; 0: never
        self.compile = compile
        self.min_steps_per_epoch = int(min_steps_per_epoch)
        # processes of a data-parallel job (started by recexp.jobs.launch, or torchrun's); fit's
        # ``world`` says which one this is; None: a single process
        self.num_processes = int(num_processes)
        self.world: World | None = None
        self._ddp_step: Callable[..., torch.Tensor] | None = None
        self.console = Console(stderr=True)

    def fit(self, model: Model, loss: Loss, sampler: Sampler | None, data: SplitData,
            evaluator: Evaluator, max_len: int, device: torch.device, *, seed: int = 0,
            on_epoch: EpochCallback | None = None, ckpt_dir: Path | None = None,
            config: dict | None = None, resume_from: Path | None = None,
            batches: TrainBatches | None = None, world: World | None = None) -> FitResult:
        model.fit(data)  # count-based models learn here; a no-op for gradient models
        valid = EvalBatches(data.valid, max_len, device)
        params = [p for p in model.parameters() if p.requires_grad]
        if not model.trainable or not params or self.max_epochs <= 0:
            return self._evaluate_only(model, evaluator, valid, on_epoch)
        self._check_setup(evaluator, loss, sampler, data, device)
        if hasattr(model, "check_training"):
            model.check_training(self.window_mode)
        batches = batches if batches is not None else TrainWindows(data.train, max_len, device, self.window_mode)
        # session-parallel batches are lanes (a model setting), not windows: never resized
        batch_size = (self.batch_size if isinstance(batches, SessionParallel)
                      else fit_batch_size(self.batch_size, len(batches), self.min_steps_per_epoch))
        if world is not None:  # batch_size is the global batch: each step every rank gets a share
            batch_size, self.progress = max(batch_size, world.size), self.progress and world.main
        self.world, writes = world, ckpt_dir is not None and (world is None or world.main)
        if self.compile:
            # compiles __call__ (training forward) in place: state_dict keys stay unprefixed;
            # dynamic: batch widths vary with length bucketing
            model.compile(dynamic=True)
        # fused: one kernel for all parameters instead of ~10 small ops per parameter tensor
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay,
                                fused=device.type in ("cpu", "cuda"))
        state = TrainingState.fresh(self.patience, seed, device)
        ddp.seed_ranks(state, seed, world)
        if resume_from is not None and state.restore(resume_from, model, opt, device):
            ddp.restore_rank(state, resume_from, seed, world)
            # continue exactly where the killed job's last full epoch ended
            if self.progress:
                self.console.print(f"resumed from {resume_from} after epoch {state.epoch}")
        self._ddp_step = (ddp.step(model, loss, sampler, training_loss, world, batches, state, batch_size)
                          if world is not None else None)
        config = config or {}
        epoch = state.epoch
        try:
            for epoch in range(state.epoch + 1, self.max_epochs + 1):
                if state.stopped_early:  # resumed after the stop: nothing left to train
                    break
                metrics = self.train_epoch(model, loss, sampler, batches, batch_size, opt, params, state, device,
                                           epoch)
                if epoch % self.eval_every == 0 or epoch == self.max_epochs:
                    metrics |= self.validate(model, evaluator, valid)
                    if state.stopper.update(epoch, metrics[f"valid/{self.monitor}"]):
                        state.best_model = copy.deepcopy(model.state_dict())
                        if writes:
                            checkpoint.save(ckpt_dir / "best.pt", model=state.best_model, epoch=epoch,
                                            best_score=state.stopper.best_score, config=config)
                state.history.append(metrics)
                state.epoch = epoch
                self._report(epoch, metrics)
                if on_epoch:
                    on_epoch(epoch, metrics)
                state.stopped_early = state.stopper.should_stop
                # saved after on_epoch so a resumed job never skips logging an epoch (at worst one
                # epoch killed between the two is logged twice, with the same step)
                if ckpt_dir is not None and self.checkpoint_every > 0 and (
                        epoch % self.checkpoint_every == 0 or state.stopped_early):
                    if world is None:
                        state.save(ckpt_dir / "last.pt", model, opt, config)
                    else:  # every rank's random streams, gathered; rank 0 writes
                        ddp.save_last(state, ckpt_dir / "last.pt" if writes else None, model, opt, config, world)
                if state.stopped_early:
                    break
        except KeyboardInterrupt:
            if writes and not (ckpt_dir / "last.pt").is_file():
                # mid-epoch state: kept for inspection, but never resumed from (resumable=False)
                checkpoint.save(ckpt_dir / "last.pt", model=model.state_dict(), optimizer=opt.state_dict(),
                                epoch=epoch, best_score=state.stopper.best_score, config=config,
                                resumable=False)
            raise
        if state.best_model is not None:
            model.load_state_dict(state.best_model)  # the test set is evaluated once, from the best epoch
        return FitResult(best_epoch=state.stopper.best_epoch, best_score=state.stopper.best_score,
                         epochs_run=state.epoch, history=state.history, stopped_early=state.stopped_early)

    def uses_amp(self, device: torch.device) -> bool:
        """bf16 autocast of the training step: ``amp`` on CUDA, ``cpu_amp`` on CPU, each only where
        bf16 is native (an emulated bf16 would be slower than fp32). Evaluation stays fp32."""
        on = self.amp if device.type == "cuda" else self.cpu_amp if device.type == "cpu" else False
        return on and native_bf16(device.type)

    def train_epoch(self, model: Model, loss: Loss, sampler: Sampler | None,
                    batches: TrainBatches, batch_size: int, opt: torch.optim.Optimizer,
                    params: list[torch.nn.Parameter], state: TrainingState, device: torch.device,
                    epoch: int) -> dict[str, float]:
        """One pass over the training batches; ``train/*`` figures of the epoch."""
        t0 = time.perf_counter()
        use_amp = self.uses_amp(device)
        model.train()
        total = torch.zeros((), device=device)
        steps = 0
        world, step = self.world, self._ddp_step or training_loss
        shard = {} if world is None else {"shard": (world.rank, world.size)}  # this rank's share of each batch
        for batch in with_progress(batches.iterate(batch_size, state.shuffle_gen, shuffle=True, **shard),
                                   math.ceil(len(batches) / batch_size), epoch, self.progress):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                value = step(model, loss, sampler, batch, state.sample_gen, state.mask_gen)
            opt.zero_grad(set_to_none=True)
            value.backward()
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            opt.step()
            total += value.detach()
            steps += 1
        mean_loss = ddp.mean_loss(total, steps, world)  # one host sync per epoch (over every rank)
        if not math.isfinite(mean_loss):
            raise NonFiniteLoss(f"training loss became {mean_loss} at epoch {epoch} "
                                f"(lower trainer.lr={self.lr} or set trainer.grad_clip)")
        train_s = time.perf_counter() - t0
        # elapsed_s: training seconds so far (validation excluded), for curves at equal wall time
        elapsed = (state.history[-1].get("train/elapsed_s", 0.0) if state.history else 0.0) + train_s
        return {"train/loss": mean_loss, "train/epoch_s": train_s, "train/elapsed_s": elapsed,
                "train/batch_size": float(batch_size), "train/seq_per_s": len(batches) / max(train_s, 1e-9)}

    def validate(self, model: Model, evaluator: Evaluator, valid: EvalBatches) -> dict[str, float]:
        """``valid/*`` metrics (no beyond-accuracy lists: they never select anything)."""
        t0 = time.perf_counter()
        vm, _ = ddp.evaluate(evaluator, model, valid, self.world, beyond=False)  # the same on every rank
        return {"valid/eval_s": time.perf_counter() - t0} | {f"valid/{k}": v for k, v in vm.items()}

    def _evaluate_only(self, model: Model, evaluator: Evaluator, valid: EvalBatches,
                       on_epoch: EpochCallback | None) -> FitResult:
        """Count models (and max_epochs=0): one validation, logged as epoch 0."""
        metrics, _ = evaluator.evaluate(model, valid, beyond=False)
        metrics = {f"valid/{k}": v for k, v in metrics.items()}
        if on_epoch:
            on_epoch(0, metrics)
        return FitResult(best_score=metrics.get(f"valid/{self.monitor}", float("nan")), history=[metrics])

    def _check_setup(self, evaluator: Evaluator, loss: Loss, sampler: Sampler | None, data: SplitData,
                     device: torch.device) -> None:
        if f"{self.monitor.split('_')[0]}" not in evaluator.metrics:
            raise ConfigError(f"trainer.monitor={self.monitor!r}: the evaluator computes {evaluator.metrics}")
        if loss.requires == "sampled":
            if sampler is None or sampler.name == "none":
                raise ConfigError(f"loss={loss.name} needs negatives: choose a sampler (e.g. sampler=uniform)")
            sampler.setup(torch.as_tensor(data.item_counts(), device=device), device)

    def _report(self, epoch: int, m: dict[str, float]) -> None:
        if not self.progress:
            return
        valid = m.get(f"valid/{self.monitor}")
        vtxt = f"valid {self.monitor} [bold]{valid:.4f}[/]" if valid is not None else ""
        self.console.print(f"epoch {epoch:>3}  loss {m['train/loss']:.4f}  {vtxt}  "
                           f"{m['train/epoch_s']:.1f}s  {m['train/seq_per_s']:,.0f} seq/s")
