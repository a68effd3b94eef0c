"""Every loss x sampler pair through the real config: docs/combinations.md says which are valid,
and each invalid pair is refused with one line at start-up."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from recexp.config.compose import conf_dir, group_choices
from recexp.data.batches import Batch
from recexp.errors import ConfigError
from recexp.training.parts import build_loss_and_sampler
from recexp.training.trainer import training_loss
from tests.conftest import REPO, compose_cfg

CHOICES = group_choices()
LOSSES = [o for o in CHOICES["loss"] if o != "auto"]
SAMPLERS = [o for o in CHOICES["sampler"] if o != "auto"]


def _doc_table() -> dict[tuple[str, str], str]:
    lines = (REPO / "docs" / "combinations.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| loss \\ sampler"))
    header = [c.strip() for c in lines[start].strip("|").split("|")][1:]
    table = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        loss, *cells = [c.strip() for c in line.strip("|").split("|")]
        table |= {(loss, s): cell for s, cell in zip(header, cells, strict=True)}
    return table


def _check(*overrides: str, cfg: DictConfig | None = None) -> str | None:
    cfg = cfg if cfg is not None else compose_cfg(list(overrides))
    model = instantiate(cfg.model, num_items=200, num_users=10)
    try:
        build_loss_and_sampler(cfg, model)
    except ConfigError as exc:
        return str(exc)
    return None


def test_doc_table_covers_every_option():
    assert set(_doc_table()) == {(lo, s) for lo in LOSSES for s in SAMPLERS}


@pytest.mark.parametrize("loss", LOSSES)
def test_doc_table_matches_the_start_up_check(loss):
    table = _doc_table()
    cfg = compose_cfg([f"loss={loss}"])  # composed once; each sampler's own file swapped in
    for sampler in SAMPLERS:
        with open_dict(cfg):
            cfg.sampler = OmegaConf.load(conf_dir() / "sampler" / f"{sampler}.yaml")
        cell, err = table[(loss, sampler)], _check(cfg=cfg)
        if cell == "yes":
            assert err is None, (loss, sampler, err)
        elif cell == "no":
            assert err is not None and "\n" not in err, (loss, sampler)
            assert f"loss={loss}" in err
        else:  # "K>=2": refused with one negative, accepted with several
            assert cell == "K>=2"
            assert err is not None and "num_negatives" in _check(
                f"loss={loss}", f"sampler={sampler}", "sampler.num_negatives=1")
            assert _check(f"loss={loss}", f"sampler={sampler}", "sampler.num_negatives=8") is None


@pytest.mark.parametrize("overrides,match", [
    (["loss=ce", "sampler=popularity"], "loss=ce scores every item, so sampler=popularity"),
    (["loss=gbce", "sampler=uniform", "sampler.num_negatives=500"], "1 <= K < N=200"),
    (["loss=gbce", "loss.t=2"], "loss.t=2"),
    (["loss=bce", "sampler=uniform", "sampler.exclude=everything"], "sampler.exclude='everything'"),
    (["loss=bce", "sampler=popularity", "sampler.alpha=-1"], "sampler.alpha=-1"),
    (["loss=bce", "sampler=mixed", "sampler.extra=bogus"], "sampler.extra='bogus'"),
])
def test_bad_values_are_one_line_config_errors(overrides, match):
    err = _check(*overrides)
    assert err is not None and match in err and "\n" not in err


@pytest.mark.parametrize("loss,sampler,extra", [
    ("sampled_softmax", "popularity", ["sampler.num_negatives=16", "sampler.shared=true"]),
    ("sampled_softmax", "mixed", ["sampler.exclude=history"]),
    ("gbce", "uniform", ["sampler.num_negatives=8"]),
    ("bpr_max", "in_batch", ["sampler.shared=true"]),
])
def test_training_step_with_real_model_loss_and_sampler(loss, sampler, extra):
    """One SASRec training step through the trainer's own wiring: finite loss, gradients reach
    the item embeddings, shared (K,) ids scored as (M, K)."""
    cfg = compose_cfg([f"loss={loss}", f"sampler={sampler}", *extra, "model.hidden_size=16"])
    model = instantiate(cfg.model, num_items=40, num_users=6)
    loss_fn, smp = build_loss_and_sampler(cfg, model)
    smp.setup(torch.arange(41) % 7, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    seq = torch.randint(1, 41, (6, 12), generator=gen)
    seq[:3, :4] = 0  # left padding
    targets = torch.where(seq > 0, torch.randint(1, 41, (6, 12), generator=gen), 0)
    batch = Batch(seq=seq, users=torch.arange(1, 7), times=torch.zeros(6, 12, dtype=torch.float64),
                  targets=targets)
    value = training_loss(model, loss_fn, smp, batch, gen)
    value.backward()
    assert torch.isfinite(value)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_loss_sampler_preset_composes_for_each_loss():
    """The sweep preset picks the negatives by the job's loss (needs Hydra's runtime choices,
    so only its static part is checked here)."""
    cfg = compose_cfg(["experiment=beauty_loss_sampler", "loss=sampled_softmax", "sampler=popularity"])
    assert cfg.negatives.sampled_softmax.num_negatives == 256 and cfg.negatives.bce.num_negatives == 1
    assert cfg.dataset.name == "beauty" and cfg.sampler._target_.endswith("PopularitySampler")
