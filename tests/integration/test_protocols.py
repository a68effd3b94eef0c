"""The new split and evaluation options through the real config, on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from recexp.jobs.train import train
from recexp.record.store import tracking_uri


def test_temporal_split_with_sampled_eval_records_its_protocol(tiny_cfg, tmp_path):
    cfg = tiny_cfg("split=temporal", "eval=sampled", "eval.num_negatives=50", "trainer.max_epochs=1")
    m = train(cfg, tmp_path / "job")
    assert 0.0 <= m["test/ndcg_10"] <= 1.0 and m["test/hr_10"] >= m["test/hr_5"]
    assert len(list(Path(cfg.paths.cache_dir).glob("candidates-*.npz"))) == 2  # valid + test, drawn once
    client = MlflowClient(tracking_uri(None, cfg.paths.runs_dir))
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    proto = json.loads(run.data.tags["recexp.protocol"])
    assert proto["split"] == "Temporal" and proto["mode"] == "sampled" and proto["num_negatives"] == 50
    assert proto["mask_history"] == "none" and proto["ties"] == "expected" and proto["candidate_seed"] == 0


def test_session_split_full_ranking_with_beyond_accuracy(tiny_cfg, tmp_path):
    cfg = tiny_cfg("split=session", "split.gap=172800", "eval.mask_history=false", "tracking=none",
                   "trainer.max_epochs=1")
    m = train(cfg, tmp_path / "job")
    assert 0.0 < m["test/coverage_10"] <= 1.0 and m["test/avgpop_10"] > 0 and m["test/novelty_10"] > 0
    per_user = pd.read_parquet(tmp_path / "job" / "per_user_test.parquet")
    assert {"user", "target", "rank", "ndcg_10", "novelty_10"} <= set(per_user.columns)


def test_experiment_preset_sets_top_level_keys():
    from tests.conftest import compose_cfg

    cfg = compose_cfg(["experiment=ml100k_ce_vs_bce"])  # _self_ first in train.yaml: presets win
    assert cfg.hypothesis.startswith("SASRec trained with full cross-entropy") and cfg.max_len == 50
    assert compose_cfg(["experiment=ml100k_ce_vs_bce", "hypothesis=x"]).hypothesis == "x"  # the shell wins
