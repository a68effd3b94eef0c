"""Issue 4 acceptance on the embedded synthetic data: every deep sequential model beats pop on
test NDCG@10 after a short CPU training (slow: four trainings)."""

from __future__ import annotations

import pytest

from recexp.jobs.train import train

BASE = ["dataset.generator.num_users=1500", "dataset.generator.num_items=800",
        "dataset.generator.mean_length=20", "max_len=50", "tracking=none", "loss=ce", "sampler=none",
        "trainer.max_epochs=8", "trainer.batch_size=64"]  # ~190 steps: 1500 sequences, 24 batches/epoch

MODELS = {
    "gru4rec": ["trainer.lr=0.005"],
    "narm": ["trainer.lr=0.005"],
    "caser": ["trainer.lr=0.005"],
    "bert4rec": ["trainer.lr=0.003"],
}


@pytest.fixture
def pop_ndcg(tiny_cfg, tmp_path) -> float:
    return train(tiny_cfg("model=pop", *BASE[:5]), tmp_path / "pop")["test/ndcg_10"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_model_beats_pop_on_synthetic(name: str, pop_ndcg: float, tiny_cfg, tmp_path):
    out = train(tiny_cfg(f"model={name}", *BASE, *MODELS[name]), tmp_path / name)
    assert out["test/ndcg_10"] > pop_ndcg, (name, out["test/ndcg_10"], pop_ndcg)
