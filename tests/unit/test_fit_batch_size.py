"""trainer.min_steps_per_epoch: the batch shrinks on small data only (issue 16)."""

from __future__ import annotations

import pytest

from recexp.errors import ConfigError
from recexp.training.trainer import Trainer, fit_batch_size


@pytest.mark.parametrize("windows,expected", [
    (1560, 32),     # default synthetic data: 6 steps of 256 -> 49 steps of 32
    (2398, 48),     # ml-100k
    (22512, 256),   # Beauty: 87 steps of 256 already; unchanged
    (10, 1),        # fewer windows than steps: one window per step
])
def test_batch_shrinks_to_give_min_steps(windows: int, expected: int):
    assert fit_batch_size(256, windows, 50) == expected
    steps = -(-windows // expected)
    assert expected == 256 or min(49, windows) <= steps <= 50 or steps == windows


def test_zero_min_steps_keeps_batch_size():
    assert fit_batch_size(256, 1560, 0) == 256


def test_min_steps_must_be_an_integer():
    with pytest.raises(ConfigError, match="trainer.min_steps_per_epoch"):
        Trainer(min_steps_per_epoch=2.5)
