"""The pieces the run is built from: early stopping, the tracked-run lifecycle, the training state."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch

from recexp.errors import ConfigError
from recexp.record import tag
from recexp.record.lifecycle import tracked_run
from recexp.record.tracker import Tracker
from recexp.training.early_stopping import EarlyStopping
from recexp.training.state import TrainingState


def test_early_stopping_first_eval_counts_then_needs_strict_improvement():
    s = EarlyStopping(patience=2)
    assert s.update(1, math.nan) and s.best_epoch == 1  # even NaN: a best checkpoint always exists
    assert s.update(2, 0.1) is False  # NaN compares false: not an improvement over NaN either
    s = EarlyStopping(patience=2)
    assert s.update(1, 0.1) and not s.update(2, 0.1) and not s.should_stop
    assert not s.update(3, 0.05) and s.should_stop and (s.best_epoch, s.best_score) == (1, 0.1)
    assert s.update(4, 0.2) and s.bad_evals == 0 and not s.should_stop


class Recorder(Tracker):
    def __init__(self) -> None:
        self.tags: dict[str, str] = {}
        self.status: str | None = None

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags |= tags

    def end(self, status: str = "FINISHED") -> None:
        self.status = status


@pytest.mark.parametrize("exc,status,reason", [
    (None, "FINISHED", None),
    (ConfigError("model.x=1: bad"), "FAILED", "model.x=1: bad"),
    (RuntimeError("boom"), "FAILED", "RuntimeError: boom"),
    (KeyboardInterrupt(), "KILLED", "interrupted (Ctrl-C)"),
    (KeyboardInterrupt("signal 15"), "KILLED", "interrupted (signal 15)"),
])
def test_tracked_run_ends_with_status_and_reason(exc, status, reason):
    t = Recorder()
    with pytest.raises(type(exc)) if exc is not None else nullcontext():
        with tracked_run(t, "r", {}, {}):
            if exc is not None:
                raise exc
    assert t.status == status and t.tags.get(tag.ERROR) == reason


def test_training_state_round_trips_through_last_pt(tmp_path: Path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    a = TrainingState.fresh(patience=3, seed=7, device=torch.device("cpu"))
    a.stopper.update(1, 0.5)
    a.stopper.update(2, 0.4)
    a.epoch, a.history, a.best_model = 2, [{"x": 1.0}, {"x": 2.0}], {k: v.clone() for k, v in model.state_dict().items()}
    torch.randperm(10, generator=a.shuffle_gen)
    a.save(tmp_path / "last.pt", model, opt, {"seed": 7})
    b = TrainingState.fresh(patience=3, seed=0, device=torch.device("cpu"))
    assert b.restore(tmp_path / "last.pt", torch.nn.Linear(3, 2), torch.optim.AdamW(model.parameters()),
                     torch.device("cpu"))
    assert (b.epoch, b.history, b.stopper) == (a.epoch, a.history, a.stopper)
    assert torch.equal(torch.randperm(10, generator=b.shuffle_gen), torch.randperm(10, generator=a.shuffle_gen))
    assert not b.restore(tmp_path / "missing.pt", model, opt, torch.device("cpu"))


def test_tracked_run_turns_a_full_disk_into_one_line_and_still_closes_the_run():
    import errno

    from recexp.errors import UserError

    t = Recorder()
    with pytest.raises(UserError) as err:
        with tracked_run(t, "r", {}, {}):
            raise OSError(errno.ENOSPC, "No space left on device", "/runs/x/last.pt")
    assert "\n" not in str(err.value) and "/runs/x/last.pt: no space left" in str(err.value)
    assert t.status == "FAILED" and t.tags[tag.ERROR] == str(err.value)
