"""A job stopped after an epoch and resumed from ``last.pt`` ends exactly where an uninterrupted
job ends: same weights, same per-epoch losses and validation metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from recexp.data.prepare import prepare
from recexp.training import checkpoint
from recexp.training.parts import build_loss_and_sampler, seed_everything


class Killed(Exception):
    """Stands in for SIGKILL between two epochs (the subprocess test kills for real)."""


def _fit(cfg, ckpt_dir: Path, kill_at: int | None = None, resume_from: Path | None = None):
    seed_everything(int(cfg.seed))
    device = torch.device("cpu")
    data = prepare(OmegaConf.to_container(cfg.dataset, resolve=True), OmegaConf.to_container(cfg.split, resolve=True),
                   instantiate(cfg.split), Path("."), Path(str(cfg.paths.cache_dir)))
    model = instantiate(cfg.model, num_items=data.num_items, num_users=data.num_users)
    loss, sampler = build_loss_and_sampler(cfg, model)

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        if epoch == kill_at:
            raise Killed

    trainer = instantiate(cfg.trainer)
    result = trainer.fit(model, loss, sampler, data, instantiate(cfg.eval), int(cfg.max_len), device,
                         seed=int(cfg.seed), on_epoch=on_epoch, ckpt_dir=ckpt_dir, resume_from=resume_from)
    return model, result


def _strip(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in h.items() if not k.endswith("_s") and k != "train/seq_per_s"} for h in history]


def test_resume_matches_uninterrupted(tiny_cfg, tmp_path):
    # bce: the loop also draws negatives from the sampler's generator; dropout draws from torch's
    cfg = tiny_cfg("loss=bce", "trainer.max_epochs=3", "trainer.batch_size=64", "tracking=none",
                   "model.dropout=0.3", "model.hidden_size=16", "model.ffn_dim=32")
    full_model, full = _fit(cfg, tmp_path / "full")
    with pytest.raises(Killed):
        _fit(cfg, tmp_path / "a", kill_at=3)
    assert checkpoint.load(tmp_path / "a" / "last.pt")["epoch"] == 2
    model, resumed = _fit(cfg, tmp_path / "b", resume_from=tmp_path / "a" / "last.pt")
    assert resumed.epochs_run == full.epochs_run == 3
    assert _strip(resumed.history) == _strip(full.history)
    assert (resumed.best_epoch, resumed.best_score) == (full.best_epoch, full.best_score)
    for (name, a), b in zip(model.state_dict().items(), full_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_mid_epoch_checkpoint_is_not_resumed(tmp_path):
    checkpoint.save(tmp_path / "last.pt", model={}, epoch=1, resumable=False)
    assert checkpoint.load_resumable(tmp_path / "last.pt", torch.device("cpu")) is None
    assert checkpoint.load_resumable(tmp_path / "missing.pt", torch.device("cpu")) is None
