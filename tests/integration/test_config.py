"""Compose the real config for every option of every group, and instantiate what can be."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from recexp.config import group_choices
from recexp.models.base import SeqRecModel
from tests.conftest import compose_cfg

CHOICES = group_choices()


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in CHOICES.items()
                                          if g not in ("experiment", "hparams_search", "dataset_model")
                                          for o in opts])
def test_every_option_composes_and_instantiates(group: str, option: str):
    cfg = compose_cfg([f"{group}={option}"])
    node = cfg[group]
    assert node is not None
    if "_target_" not in node:
        return  # plain settings (dataset, tracking, auto choices)
    if group == "model":
        obj = instantiate(node, num_items=50, num_users=10)
        assert isinstance(obj, SeqRecModel)
    else:
        obj = instantiate(node)
    assert obj is not None


@pytest.mark.parametrize("option", CHOICES.get("experiment", []))
def test_every_experiment_preset_composes(option: str):
    cfg = compose_cfg([f"experiment={option}"])
    assert cfg.model._target_ and cfg.dataset.name
