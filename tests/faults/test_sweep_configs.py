"""The search presets and launcher configs compose with the real config (Hydra part included)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from recexp.config.compose import conf_dir


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("preset,loss,extra", [("sasrec_optuna", "CrossEntropy", set()),
                                               ("sasrec_bce_optuna", "BCE", {"sampler.num_negatives"})])
def test_optuna_presets_search_the_main_knobs(preset, loss, extra):
    cfg = _compose(f"hparams_search={preset}")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("optuna_sweeper.OptunaSweeper") and sweeper.direction == "maximize"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.storage is None
    assert set(sweeper.params) == {"trainer.lr", "model.hidden_size", "model.num_blocks", "model.dropout",
                                   "max_len"} | extra
    assert cfg.optimized_metric == "valid/ndcg_10" and cfg.loss._target_.endswith(loss)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"


def test_launchers_pin_one_gpu_per_job():
    local = _compose("hydra/launcher=local").hydra.launcher
    assert local._target_.endswith("JoblibLauncher") and local.n_jobs == 4
    slurm = _compose("hydra/launcher=slurm").hydra.launcher
    assert slurm._target_.endswith("SlurmLauncher") and slurm.gpus_per_task == 1 and slurm.tasks_per_node == 1
    ray = _compose("hydra/launcher=ray").hydra.launcher
    assert ray._target_.endswith("RayLauncher") and ray.ray.remote.num_gpus == 1
