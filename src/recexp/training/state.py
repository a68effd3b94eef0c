"""The training state a killed job needs to continue exactly: one object, saved to and restored
from ``last.pt`` (see :mod:`recexp.training.checkpoint` for the file format)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from recexp.training import checkpoint
from recexp.training.early_stopping import EarlyStopping


def global_generator(device: torch.device) -> torch.Generator:
    """The default generator of ``device`` (what a draw with ``generator=None`` uses)."""
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
    return torch.default_generator


@dataclass
class TrainingState:
    """Everything besides the model and optimizer that changes from epoch to epoch."""

    stopper: EarlyStopping
    shuffle_gen: torch.Generator  # CPU: the order of training windows
    sample_gen: torch.Generator  # training device: negatives, masks
    epoch: int = 0  # last completed epoch
    best_model: dict[str, torch.Tensor] | None = None  # weights of the best validation epoch
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False

    @classmethod
    def fresh(cls, patience: int, seed: int, device: torch.device) -> TrainingState:
        return cls(stopper=EarlyStopping(patience), shuffle_gen=torch.Generator().manual_seed(seed),
                   sample_gen=torch.Generator(device=device).manual_seed(seed + 1))

    @property
    def mask_gen(self) -> torch.Generator:
        """The model's own training draws (BERT4Rec's cloze masks): the device's global generator,
        the stream dropout draws from too. Kept there, not in ``sample_gen``, so seeded BERT4Rec
        runs reproduce the figures recorded before masks took an explicit generator; it is saved
        and restored with the global RNG state."""
        return global_generator(self.sample_gen.device)

    def save(self, path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             config: dict[str, Any], **extra: Any) -> Path:
        """``extra``: more entries (a distributed job's ``rng_ranks``, :mod:`recexp.training.ddp`)."""
        s = self.stopper
        return checkpoint.save_resumable(path, model=model, optimizer=optimizer, epoch=self.epoch,
                                         best_model=self.best_model, best_score=s.best_score,
                                         best_epoch=s.best_epoch, bad_evals=s.bad_evals, history=self.history,
                                         stopped_early=self.stopped_early,
                                         generators=(self.shuffle_gen, self.sample_gen), config=config, **extra)

    def restore(self, path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                device: torch.device) -> bool:
        """Load ``path`` into this state, the model and the optimizer (every RNG included); False
        when there is nothing resumable there (missing, or a mid-epoch Ctrl-C checkpoint)."""
        state = checkpoint.load_resumable(path, device)
        if state is None:
            return False
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        self.best_model, self.epoch = state["best_model"], int(state["epoch"])
        self.stopper.best_score, self.stopper.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.stopper.bad_evals = int(state["bad_evals"])
        self.history, self.stopped_early = list(state["history"]), bool(state["stopped_early"])
        checkpoint.restore_rng(state, self.shuffle_gen, self.sample_gen)
        return True
