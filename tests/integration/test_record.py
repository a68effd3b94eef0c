"""What MLflow records is what ran: resolved choices, one hash per run, data statistics as params,
and the masking convention; on the real config and tiny synthetic data."""

from __future__ import annotations

import json

import pytest
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from recexp.config.hashing import config_hash
from recexp.config.resolve import resolve_config
from recexp.errors import ConfigError
from recexp.jobs.train import train
from recexp.record.store import tracking_uri
from tests.conftest import compose_cfg


def _hash(overrides: list[str]) -> str:
    return config_hash(OmegaConf.to_container(resolve_config(compose_cfg(overrides)), resolve=True))


def test_one_run_written_two_ways_has_one_hash():
    assert _hash(["model=sasrec"]) == _hash(["model=sasrec", "loss=ce", "sampler=none"])
    assert _hash(["loss=bce"]) == _hash(["loss=bce", "sampler=uniform"])
    assert _hash(["loss=bce"]) != _hash(["loss=bce", "+sampler.num_negatives=5"])


def test_override_of_an_auto_group_is_applied_or_refused_in_one_line():
    cfg = resolve_config(compose_cfg(["loss=bce", "+sampler.num_negatives=5"]))
    assert cfg.sampler.num_negatives == 5 and cfg.sampler._target_.endswith("UniformSampler")
    assert dict(cfg.choices)["sampler"] == "uniform" and dict(cfg.choices)["loss"] == "bce"
    with pytest.raises(ConfigError, match=r"sampler.num_negativs: .*did you mean num_negatives"):
        resolve_config(compose_cfg(["loss=bce", "+sampler.num_negativs=5"]))
    with pytest.raises(ConfigError, match="model=pop is fit by counting"):
        resolve_config(compose_cfg(["model=pop", "loss=ce"]))


def test_params_config_yaml_and_run_name_name_what_trained(tiny_cfg, tmp_path):
    cfg = tiny_cfg("loss=bce", "+sampler.num_negatives=5", "trainer.max_epochs=1")
    train(cfg, tmp_path / "job")
    client = MlflowClient(tracking_uri(None, cfg.paths.runs_dir))
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    p = run.data.params
    assert p["sampler.num_negatives"] == "5" and p["sampler._target_"] == "recexp.losses.samplers.UniformSampler"
    assert p["choices.loss"] == "bce" and p["choices.sampler"] == "uniform" and "sampler.name" not in p
    saved = yaml.safe_load((tmp_path / "job" / "config.yaml").read_text())
    assert saved["sampler"]["num_negatives"] == 5 and saved["loss"]["_target_"] == "recexp.losses.BCE"
    assert "auto" not in run.info.run_name and "bce" in run.info.run_name
    # dataset statistics are params (they describe the input), not metrics
    assert int(p["data.test_examples"]) > 0 and "data.test_repeat_targets" in p
    assert not any(k.startswith("data/") and k != "data/prepare_s" for k in run.data.metrics)


def test_masking_convention_is_one_key_and_logged(tiny_cfg, tmp_path):
    """Pop on synthetic data with repeats: masking the repeated target too (S3Rec code) can only
    lose hits; masking nothing ranks the history; each run says which rule it used."""
    out = {}
    for mode in ("except_target", "all", "none"):
        cfg = tiny_cfg("model=pop", f"eval.mask_history={mode}")
        out[mode] = train(cfg, tmp_path / mode)
    client = MlflowClient(tracking_uri(None, cfg.paths.runs_dir))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(json.loads(r.data.tags["recexp.protocol"])["mask_history"] for r in runs) == [
        "all", "except_target", "none"]
    assert all(int(r.data.params["data.test_repeat_targets"]) > 0 for r in runs)
    assert out["all"]["test/hr_20"] < out["except_target"]["test/hr_20"]


@pytest.mark.parametrize("cpu_amp", [False, True])
def test_the_precision_the_step_ran_in_is_recorded(tiny_cfg, tmp_path, cpu_amp):
    """``trainer.cpu_amp`` asks for bf16 autocast on CPU; the run's tag says what the step ran in
    (bf16 only where the CPU has it natively), and evaluation stays fp32 either way."""
    from recexp.runtime.precision import native_bf16
    from recexp.training.trainer import Trainer

    cfg = tiny_cfg(f"trainer.cpu_amp={str(cpu_amp).lower()}", "trainer.max_epochs=1")
    metrics = train(cfg, tmp_path / "job")
    client = MlflowClient(tracking_uri(None, cfg.paths.runs_dir))
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    want = "bf16-autocast" if cpu_amp and native_bf16("cpu") else "fp32"
    assert run.data.tags["recexp.precision"] == want and run.data.params["trainer.cpu_amp"] == str(cpu_amp)
    assert metrics["test/ndcg_10"] > 0
    import torch
    # amp is CUDA's switch, cpu_amp the CPU's: neither leaks into the other device
    assert not Trainer(amp=True).uses_amp(torch.device("cpu"))
    assert not Trainer(cpu_amp=True).uses_amp(torch.device("meta"))
