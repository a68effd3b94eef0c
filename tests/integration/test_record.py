"""What MLflow records is what ran: resolved choices, one hash per run, data statistics as params,
and the masking convention; on the real config and tiny synthetic data."""

from __future__ import annotations

import json

import numpy as np
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
    # where it computes is not what it computes: a run resumed on another device or core count is the same run
    assert _hash([]) == _hash(["threads=1"]) == _hash(["device=cpu"])


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


def _pop_by_hand(data, mask: str) -> tuple[float, float, float]:
    """Test NDCG@10 of popularity counted with numpy alone: each example's target ranked among
    items 1..N by training count (ties: the expectation over their order), the user's history
    removed under ``all`` (a repeated target is then a miss). Returns (all, repeat, explore)."""
    counts = data.item_counts().astype(float)
    ev = data.test
    ndcg, rep = [], []
    for e in range(len(ev.targets)):
        hist = set(ev.hist.items[ev.hist.offsets[e]:ev.hist.offsets[e + 1]].tolist())
        t = int(ev.targets[e])
        rep.append(t in hist)
        ranked = [i for i in range(1, len(counts)) if mask == "none" or i not in hist]
        if mask == "all" and t in hist:
            ndcg.append(0.0)
            continue
        s = counts[ranked]
        g, ties = int((s > counts[t]).sum()), int((s == counts[t]).sum()) - 1
        ndcg.append(sum(1 / np.log2(g + j + 2) for j in range(ties + 1) if g + j < 10) / (ties + 1))
    ndcg, rep = np.array(ndcg), np.array(rep)
    return ndcg.mean(), ndcg[rep].mean(), ndcg[~rep].mean()


def test_masks_are_label_independent_and_pop_equals_an_independent_count(tiny_cfg, tmp_path):
    """Pop on synthetic data where about half the test targets repeat the history: under both
    rules its NDCG@10 (and the repeat / explore split) equals a count done by hand; each run says
    which rule it used; the old rule that unmasked the test item is refused in one line."""
    from recexp.config.prepare import prepare
    from recexp.training import parts

    with pytest.raises(ConfigError, match="except_target: refused: .*use all .* or none"):
        train(tiny_cfg("model=pop", "eval.mask_history=except_target"), tmp_path / "refused")
    out = {}
    for mode in ("all", "none"):
        cfg = tiny_cfg("model=pop", f"eval.mask_history={mode}")
        out[mode] = train(cfg, tmp_path / mode)
        data = parts.prepare_data(prepare(cfg, "train"))[0]
        want, want_rep, want_exp = _pop_by_hand(data, mode)
        assert out[mode]["test/ndcg_10"] == pytest.approx(want, abs=1e-6)
        assert out[mode]["test/repeat/ndcg_10"] == pytest.approx(want_rep, abs=1e-6)
        assert out[mode]["test/explore/ndcg_10"] == pytest.approx(want_exp, abs=1e-6)
        assert 0.3 < out[mode]["test/repeat_share"] < 0.7 and "valid/repeat_share" in out[mode]
    assert out["all"]["test/repeat/ndcg_10"] == 0.0  # masked with the history: misses for every model
    client = MlflowClient(tracking_uri(None, cfg.paths.runs_dir))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(json.loads(r.data.tags["recexp.protocol"])["mask_history"] for r in runs) == ["all", "none"]
    assert all("test/repeat_share" in r.data.metrics for r in runs)


def test_each_dataset_states_its_mask():
    from tests.conftest import compose_cfg

    assert compose_cfg(["dataset=beauty"]).eval.mask_history == "all"
    assert compose_cfg([]).eval.mask_history == "none"  # the synthetic generator: users re-consume
    assert compose_cfg(["dataset=beauty", "eval=sampled"]).eval.mask_history == "all"


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
    assert run.data.tags["recexp.cpu_threads"].split(" (")[0] in ("1 thread", *(f"{n} threads" for n in range(2, 4097)))
    assert metrics["test/ndcg_10"] > 0
    import torch
    # amp is CUDA's switch, cpu_amp the CPU's: neither leaks into the other device
    assert not Trainer(amp=True).uses_amp(torch.device("cpu"))
    assert not Trainer(cpu_amp=True).uses_amp(torch.device("meta"))


def test_the_thread_count_a_run_took_is_in_its_header_and_tags(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg("threads=1", "trainer.max_epochs=1")
    train(cfg, tmp_path / "job")
    client = MlflowClient(tracking_uri(None, cfg.paths.runs_dir))
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.tags["recexp.cpu_threads"] == "1 thread (threads=1)"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "train/cpu_threads")] == [1.0]
    assert "device cpu, 1 thread (threads=1)" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"^threads=0: expected auto or an integer >= 1"):
        train(tiny_cfg("threads=0"), tmp_path / "job2")
