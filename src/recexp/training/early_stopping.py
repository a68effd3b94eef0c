"""Early stopping on the validation metric: a small pure object, saved with the training state."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """Tracks the best validation score (higher is better). The first evaluation always counts as
    an improvement, even a NaN one, so a best checkpoint always exists; after that a score must
    beat the best strictly, and ``patience`` evaluations in a row without that stop training."""

    patience: int
    best_score: float = math.nan
    best_epoch: int = 0  # 0: nothing evaluated yet
    bad_evals: int = 0

    def update(self, epoch: int, score: float) -> bool:
        """Record ``score`` of ``epoch``; True when it is the new best."""
        if self.best_epoch == 0 or score > self.best_score:
            self.best_score, self.best_epoch, self.bad_evals = score, epoch, 0
            return True
        self.bad_evals += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_evals >= self.patience
