"""Issue 16: the defaults a new user meets first must work. On the default synthetic data every
deep model, with its default settings (`recexp train model=X`), reaches at least 0.6x the
first-order Markov chain's test NDCG@10 -- a signal any of them can learn. Before
``trainer.min_steps_per_epoch`` GRU4Rec and NARM ended at the popularity level (~0.039 vs
Markov 0.205): 256 windows per batch left ~6 optimiser steps per epoch. Slow: six trainings."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import open_dict

from recexp.jobs.train import train
from tests.conftest import compose_cfg

DEEP = ["sasrec", "gru4rec", "narm", "caser", "bert4rec"]


def _default_run(model: str, tmp_path: Path) -> float:
    cfg = compose_cfg([f"model={model}", "tracking=none", "trainer.progress=false", "device=cpu"])
    with open_dict(cfg):
        cfg.paths.runs_dir = str(tmp_path / "runs")
        cfg.paths.cache_dir = str(tmp_path / "runs" / "cache")
    return train(cfg, tmp_path / model)["test/ndcg_10"]


@pytest.fixture(scope="module")
def markov_ndcg(tmp_path_factory: pytest.TempPathFactory) -> float:
    return _default_run("markov", tmp_path_factory.mktemp("markov"))


@pytest.mark.slow
@pytest.mark.parametrize("model", DEEP)
def test_default_deep_model_reaches_markov_level(model: str, markov_ndcg: float, tmp_path: Path):
    ndcg = _default_run(model, tmp_path)
    assert ndcg >= 0.6 * markov_ndcg, (model, ndcg, markov_ndcg)
