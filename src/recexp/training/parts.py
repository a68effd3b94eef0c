"""Builds a run's parts from the composed config, in one place, for every command (train,
pretrain, evaluate): device, seed, data, model, loss + sampler, evaluator, training batches.

The build order is the order the global RNG is consumed in (seed, then the model's initial
weights), so a seeded run draws exactly the same numbers whichever command builds it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from recexp.config.resolve import resolve_config
from recexp.data.batches import SessionParallel, TrainWindows
from recexp.data.prepare import prepare
from recexp.data.seqs import SplitData
from recexp.errors import ConfigError, UserError
from recexp.training.contracts import Evaluator, Loss, Model, Sampler, Splitter


def resolve_device(name: str) -> torch.device:
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name}: no CUDA device is available here (use device=cpu or device=auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r}: expected auto, cpu, cuda or cuda:N") from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def instantiate_user(node: DictConfig, **runtime: Any) -> Any:
    """``instantiate``, but a :class:`UserError` raised by a constructor (a bad config value)
    comes out as itself, one line, instead of wrapped in Hydra's InstantiationException."""
    try:
        return instantiate(node, **runtime)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, UserError):
            raise exc.__cause__ from None
        if isinstance(exc.__cause__, TypeError | ValueError):  # a value the constructor refuses
            target = node.get("_target_", "?") if hasattr(node, "get") else "?"
            raise ConfigError(f"{target}: {str(exc.__cause__).splitlines()[0]}") from None
        raise


def model_choice(model: Model) -> str:
    """The name the user typed (``model=markov``), falling back to the class name outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        name = HydraConfig.get().runtime.choices.get("model")
        if name:
            return str(name)
    except ValueError:  # not inside a Hydra run
        pass
    return type(model).__name__.lower()


def prepare_data(cfg: DictConfig) -> tuple[SplitData, Splitter, float]:
    """(split data, the splitter, seconds spent) for ``cfg.dataset`` and ``cfg.split``."""
    splitter = instantiate_user(cfg.split)
    t0 = time.perf_counter()
    data = prepare(OmegaConf.to_container(cfg.dataset, resolve=True),
                   OmegaConf.to_container(cfg.split, resolve=True), splitter,
                   Path(str(cfg.data_dir)).expanduser(), Path(str(cfg.paths.cache_dir)))
    return data, splitter, time.perf_counter() - t0


#: keys of a model node that configure the run, not the model's constructor
RUN_KEYS = ("pretrained",)


def model_node(cfg: DictConfig) -> DictConfig:
    """``cfg.model`` without :data:`RUN_KEYS` (``model.pretrained`` is loaded by the run, so a
    model never touches the tracking store)."""
    node = OmegaConf.to_container(cfg.model, resolve=True)
    return OmegaConf.create({k: v for k, v in node.items() if k not in RUN_KEYS})


def build_model(cfg: DictConfig, data: SplitData, device: torch.device, **extra: Any) -> Model:
    """The model of ``cfg.model`` sized to the data (its initial weights draw from the global RNG)."""
    return instantiate_user(model_node(cfg), num_items=data.num_items, num_users=data.num_users,
                            **extra).to(device)


def build_loss_and_sampler(cfg: DictConfig, model: Model) -> tuple[Loss, Sampler]:
    """Instantiate loss and sampler (``auto`` resolved by :func:`recexp.config.resolve.resolve_config`),
    refusing combinations that make no sense with a one-line explanation (docs/combinations.md)."""
    cfg = resolve_config(cfg)
    loss = instantiate_user(cfg.loss, num_items=model.num_items)
    sampler = instantiate_user(cfg.sampler)
    if model.trainable:
        allowed = model.supported_losses
        if allowed is not None and loss.name not in allowed:
            raise ConfigError(f"model={model_choice(model)} cannot be trained with loss={loss.name}: "
                              f"it supports {', '.join(allowed) or 'no loss (it is fit by counting)'}")
        check_combination(loss, sampler, model.num_items)
    return loss, sampler


def check_combination(loss: Loss, sampler: Sampler, num_items: int) -> None:
    """One-line ConfigError for every (loss, sampler) pair that cannot work: each part checks
    its own needs through its public contract (:mod:`recexp.training.contracts`)."""
    loss.check(sampler.name, sampler.total_negatives, num_items)
    sampler.check(num_items)


def build_evaluator(cfg: DictConfig, data: SplitData) -> Evaluator:
    evaluator = instantiate_user(cfg.eval)
    evaluator.set_popularity(data.item_counts())  # beyond-accuracy metrics / popularity-sampled candidates
    return evaluator


def build_train_batches(cfg: DictConfig, data: SplitData, device: torch.device) -> TrainWindows | SessionParallel:
    """The training batches the config asks for: GRU4Rec's session-parallel lanes
    (``model.session_parallel=true``, ``model.bptt`` steps each) or windows of ``max_len + 1``
    items (``trainer.window_mode``)."""
    if cfg.model.get("session_parallel", False):
        return SessionParallel(data.train, device, bptt=int(cfg.model.get("bptt", 1)))
    return TrainWindows(data.train, int(cfg.max_len), device, str(cfg.trainer.get("window_mode", "all")))


@dataclass
class Parts:
    """Everything a command needs to train or evaluate one model."""

    device: torch.device
    data: SplitData
    splitter: Splitter
    prepare_s: float
    model: Model
    evaluator: Evaluator
    loss: Loss | None = None  # None: built for evaluation only
    sampler: Sampler | None = None


def build(cfg: DictConfig, *, device: str | None = None, training: bool = True) -> Parts:
    """Seed, device, data, model, (``training``) loss and sampler, and the evaluator of a config
    that went through :func:`recexp.config.prepare.prepare`."""
    seed_everything(int(cfg.seed))
    dev = resolve_device(cfg.device if device is None else device)
    data, splitter, prep_s = prepare_data(cfg)
    model = build_model(cfg, data, dev)
    loss, sampler = build_loss_and_sampler(cfg, model) if training else (None, None)
    return Parts(device=dev, data=data, splitter=splitter, prepare_s=prep_s, model=model,
                 evaluator=build_evaluator(cfg, data), loss=loss, sampler=sampler)
