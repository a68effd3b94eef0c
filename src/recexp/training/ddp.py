"""Data-parallel training (``torch.distributed``) inside :meth:`recexp.training.trainer.Trainer.fit`:
the training step under DistributedDataParallel, one random stream per process, the sharded and
exactly gathered evaluation, and ``last.pt`` with every process's random state.

The process group itself (joining, ranks, the collectives) is :mod:`recexp.runtime.distributed`.
With ``world=None`` every function here is the single-process behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from recexp.data.batches import Batch, EvalBatches
from recexp.runtime import distributed
from recexp.runtime.distributed import World
from recexp.training.contracts import Evaluator, Loss, Model, Sampler, TrainBatches
from recexp.training.state import TrainingState

StepFn = Callable[..., torch.Tensor]


class LossStep(nn.Module):
    """The whole training step's loss as one module call, so DistributedDataParallel sees it.

    A model's loss goes through ``train_inputs`` and the loss's own path (``from_queries`` reads the
    item table directly), not through ``forward``; DDP all-reduces the gradients of whatever the
    wrapped call used, so the wrapped call is the step. The loss and sampler are kept out of the
    module tree (they hold no trained parameters: DDP must not broadcast their buffers)."""

    def __init__(self, model: Model, loss: Loss, sampler: Sampler | None, loss_fn: StepFn) -> None:
        super().__init__()
        self.model = model
        self._parts = (loss, sampler, loss_fn)

    def forward(self, batch: Batch, generator: torch.Generator | None,
                mask_generator: torch.Generator | None) -> torch.Tensor:
        loss, sampler, loss_fn = self._parts
        return loss_fn(self.model, loss, sampler, batch, generator, mask_generator)


def step(model: Model, loss: Loss, sampler: Sampler | None, loss_fn: StepFn, world: World | None,
         batches: TrainBatches | None = None, state: TrainingState | None = None, batch_size: int = 1) -> StepFn:
    """``loss_fn`` itself for one process; else the same call through DistributedDataParallel
    (built after the weights are final, so its start-up broadcast of rank 0's weights is a
    no-op for a resumed job). ``find_unused_parameters`` only where a step leaves some trainable
    parameter without a gradient (S3Rec's pre-training heads when fine-tuning): measured on one
    batch by :func:`unused_parameters` (else DDP would walk the autograd graph every step)."""
    if world is None:
        return loss_fn
    unused = batches is not None and state is not None and unused_parameters(model, loss, sampler, loss_fn,
                                                                             world, batches, state, batch_size)
    ddp = nn.parallel.DistributedDataParallel(LossStep(model, loss, sampler, loss_fn), device_ids=None,
                                              find_unused_parameters=unused)

    def run(_model: Model, _loss: Loss, _sampler: Sampler | None, batch: Batch,
            generator: torch.Generator | None, mask_generator: torch.Generator | None = None) -> torch.Tensor:
        return ddp(batch, generator, mask_generator)

    return run


def unused_parameters(model: Model, loss: Loss, sampler: Sampler | None, loss_fn: StepFn, world: World,
                      batches: TrainBatches, state: TrainingState, batch_size: int) -> bool:
    """Whether a training step leaves a trainable parameter without gradient on any rank: one
    step's gradients (never applied) of this rank's first batch, with every random stream it
    drew from put back, so the training that follows draws exactly as without the probe."""
    params = [p for p in model.parameters() if p.requires_grad]
    batch = next(iter(batches.iterate(batch_size, None, shuffle=False, shard=(world.rank, world.size))))
    cuda = state.sample_gen.device.type == "cuda"
    saved = (torch.get_rng_state(), state.sample_gen.get_state(), torch.cuda.get_rng_state() if cuda else None)
    try:
        value = loss_fn(model, loss, sampler, batch, state.sample_gen, state.mask_gen)
        grads = torch.autograd.grad(value, params, allow_unused=True)
    finally:
        torch.set_rng_state(saved[0])
        state.sample_gen.set_state(saved[1])
        if cuda:
            torch.cuda.set_rng_state(saved[2])
    flag = torch.tensor([float(any(g is None for g in grads))], device=state.sample_gen.device)
    return bool(distributed.all_sum(flag, world).item() > 0)


def rank_seed(seed: int, rank: int) -> int:
    """Rank ``rank``'s seed for its own draws (dropout, negatives, masks); rank 0 keeps ``seed``."""
    return seed if rank == 0 else (seed * 1_000_003 + rank * 7919) % 2**63


def seed_ranks(state: TrainingState, seed: int, world: World | None) -> None:
    """Different windows deserve different dropout masks and negatives: every rank but 0 gets
    its own streams (rank 0 draws exactly what a single process draws). The window order
    (``state.shuffle_gen``) stays shared: all ranks must cut the same batches."""
    if world is None or world.main:
        return
    s = rank_seed(seed, world.rank)
    torch.manual_seed(s)  # the global stream: dropout, BERT4Rec's masks (every CUDA device too)
    state.sample_gen.manual_seed(s + 1)


def _my_rng(state: TrainingState) -> dict[str, torch.Tensor]:
    rng = {"torch": torch.get_rng_state(), "sample": state.sample_gen.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state()
    return rng


def save_last(state: TrainingState, path: Path | None, model: nn.Module, opt: torch.optim.Optimizer,
              config: dict[str, Any], world: World | None) -> None:
    """``last.pt`` (rank 0 writes it) with every rank's random streams (``rng_ranks``), so a
    resumed job continues each rank exactly. A collective: every rank calls it."""
    ranks = distributed.gather(_my_rng(state), world) if world is not None else None
    if path is not None and (world is None or world.main):
        state.save(path, model, opt, config, rng_ranks=ranks)


def restore_rank(state: TrainingState, path: Path, seed: int, world: World | None) -> None:
    """After :meth:`TrainingState.restore` (rank 0's streams everywhere): this rank's own streams
    from ``last.pt``, or fresh ones derived from them for a file written by fewer processes."""
    if world is None or world.main:
        return
    from recexp.training import checkpoint

    ranks = checkpoint.load(path).get("rng_ranks") or []
    if world.rank < len(ranks):
        mine = ranks[world.rank]
        torch.set_rng_state(mine["torch"].cpu())
        state.sample_gen.set_state(mine["sample"].cpu())
        if "cuda" in mine and torch.cuda.is_available():
            torch.cuda.set_rng_state(mine["cuda"].cpu())
    else:
        seed_ranks(state, seed + state.epoch, world)


def mean_loss(total: torch.Tensor, steps: int, world: World | None) -> float:
    """The epoch's mean training loss over every rank's steps (one host sync)."""
    if world is None:
        return float(total) / max(steps, 1)
    both = distributed.all_sum(torch.stack([total.float(), torch.tensor(float(steps), device=total.device)]), world)
    return float(both[0]) / max(float(both[1]), 1.0)


def evaluate(evaluator: Evaluator, model: Model, data: EvalBatches, world: World | None,
             per_user: bool = False, beyond: bool = True) -> tuple[dict[str, float], pd.DataFrame | None]:
    """``evaluator.evaluate`` over every process. An evaluator that splits its work
    (``score`` / ``reduce``, :class:`recexp.eval.evaluator.FullRanking`) scores every
    ``world``-th batch on each rank; rank 0 gathers the per-example ranks and ties of every batch
    and reduces them in the single-process batch order, so the figures equal a single-process
    evaluation to the last digit. Others are evaluated by rank 0 alone. Every rank returns rank
    0's metrics (broadcast: the early-stopping decision is the same everywhere); the per-user
    table exists on rank 0 only."""
    if world is None:
        return evaluator.evaluate(model, data, per_user=per_user, beyond=beyond)
    result: tuple[dict[str, float], pd.DataFrame | None] = ({}, None)
    if hasattr(evaluator, "score") and hasattr(evaluator, "reduce"):
        mine = [_to(p, "cpu") for p in evaluator.score(model, data, beyond,
                                                       pick=lambda i: i % world.size == world.rank)]
        every = distributed.gather(mine, world)
        if world.main:
            scored = sorted((p for part in every for p in part), key=lambda p: p.index)
            result = evaluator.reduce(data, (_to(p, data.device) for p in scored), per_user, beyond)
    elif world.main:
        result = evaluator.evaluate(model, data, per_user=per_user, beyond=beyond)
    means = distributed.broadcast(result[0] if world.main else None, world)
    return means, result[1]


def _to(scored: Any, device: torch.device | str) -> Any:
    """A scored batch (a NamedTuple of tensors) on ``device``."""
    return type(scored)(*(v.to(device) if isinstance(v, torch.Tensor) else v for v in scored))
