"""``trainer.window_mode=prefixes_empty``: the training set of the S3Rec / BSARec / TV-Rec code
(every prefix ``seq[:i + 1]`` of a training sequence is a window, the first one with an empty
input), and every trainable model stays finite on an all-padding input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from recexp.config.overrides import _compose
from recexp.data.batches import TrainWindows
from recexp.data.seqs import Seqs
from recexp.losses import CrossEntropy
from recexp.training.parts import model_node
from recexp.training.trainer import training_loss

CONF_MODELS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "model").glob("*.yaml"))


def _seqs(n: int = 40, max_items: int = 50) -> tuple[Seqs, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=n)
    items = rng.integers(1, max_items + 1, size=int(lengths.sum()))
    return (Seqs.from_lengths(np.arange(1, n + 1), lengths, items, np.arange(len(items), dtype=np.float64)),
            lengths, items)


def _windows(win: TrainWindows) -> list[tuple[int, tuple[int, ...], int]]:
    got = []
    for batch in win.iterate(16, torch.Generator().manual_seed(0), shuffle=True):
        assert batch.num_targets == int((batch.targets > 0).sum()) == len(batch.seq)
        assert (batch.targets[:, :-1] == 0).all() and batch.last_only
        for u, s, t in zip(batch.users.tolist(), batch.seq, batch.targets[:, -1].tolist(), strict=True):
            got.append((u, tuple(s[s > 0].tolist()), t))
    return sorted(got)


def test_empty_prefix_adds_each_sequence_first_item_from_no_input():
    seqs, lengths, items = _seqs()
    starts = np.cumsum(lengths) - lengths
    plain = _windows(TrainWindows(seqs, 8, torch.device("cpu"), "prefixes"))
    empty = _windows(TrainWindows(seqs, 8, torch.device("cpu"), "prefixes_empty"))
    firsts = sorted((u, (), int(items[o])) for u, o in zip(range(1, 41), starts, strict=True))
    assert len(empty) == int(lengths.sum()) == len(plain) + 40  # a single-item sequence gives a window too
    assert empty == sorted(plain + firsts)
    assert sum(1 for _, s, _ in plain if not s) == 0


def test_unknown_window_mode_names_the_choices():
    from recexp.errors import ConfigError

    with pytest.raises(ConfigError, match="expected all, last, prefixes, prefixes_empty"):
        TrainWindows(_seqs()[0], 8, torch.device("cpu"), "prefix")


def test_unknown_window_mode_is_refused_at_composition_before_a_run_opens():
    from recexp.config.schema import validate
    from recexp.errors import ConfigError

    validate(_compose(["trainer.window_mode=prefixes_empty"]))  # every choice passes
    with pytest.raises(ConfigError, match=r"^trainer.window_mode='prefix': expected all, last, prefixes, prefixes_empty$"):
        validate(_compose(["trainer.window_mode=prefix"]))


@pytest.mark.parametrize("name", CONF_MODELS)
def test_every_trainable_model_trains_finite_on_empty_inputs(name: str):
    seqs = _seqs(20, 30)[0]
    torch.manual_seed(0)
    model = instantiate(model_node(_compose([f"model={name}", "max_len=8"])), num_items=30, num_users=21)
    if not model.trainable:
        pytest.skip("a count model: no training windows")
    model.train()
    win = TrainWindows(seqs, 8, torch.device("cpu"), "prefixes_empty")
    n_empty = 0
    for batch in win.iterate(64, torch.Generator().manual_seed(0)):
        n_empty += int((batch.seq == 0).all(1).sum())
        loss = training_loss(model, CrossEntropy(num_items=30), None, batch, torch.Generator().manual_seed(0))
        loss.backward()
        assert torch.isfinite(loss), name
    assert n_empty == 20
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), name
