"""Shared fixtures: the real config composed with Hydra, shrunk for CPU tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from recexp.config.compose import conf_dir

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECEXP_DATA_DIR", REPO.parent / "shared" / "datasets"))


def compose_cfg(overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=overrides or [], return_hydra_config=False)


@pytest.fixture
def tmp_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated runs dir and MLflow store per test."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("RECEXP_RUNS_DIR", str(runs))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return runs


TINY = [
    "dataset.generator.num_users=300", "dataset.generator.num_items=200", "dataset.generator.mean_length=12",
    "trainer.max_epochs=2", "trainer.progress=false", "max_len=20", "device=cpu",
    "trainer.min_steps_per_epoch=0",  # tiny data: keep the batch sizes the tests ask for (few steps, fast)
]


@pytest.fixture
def tiny_cfg(tmp_runs: Path):
    def make(*overrides: str) -> DictConfig:
        base = [o for o in TINY if not (o.startswith("dataset.generator") and
                                        any(x.startswith("dataset=") for x in overrides))]
        cfg = compose_cfg([*base, *overrides])
        with open_dict(cfg):
            cfg.paths.runs_dir = str(tmp_runs)
            cfg.paths.cache_dir = str(tmp_runs / "cache")
        return cfg

    return make


def requires_shared_data(*rel: str):
    missing = [r for r in rel if not (SHARED_DATA / r).is_file()]
    return pytest.mark.skipif(bool(missing), reason=f"shared datasets not found under {SHARED_DATA}")
