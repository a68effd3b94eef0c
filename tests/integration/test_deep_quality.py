"""Issue 4 acceptance on the embedded synthetic data: every deep sequential model beats pop on
test NDCG@10 after a short CPU training (slow: four trainings)."""

from __future__ import annotations

import pytest

from recexp.run import train

BASE = ["dataset.generator.num_users=1500", "dataset.generator.num_items=800",
        "dataset.generator.mean_length=20", "max_len=50", "tracking=none", "loss=ce", "sampler=none"]

MODELS = {
    "gru4rec": ["trainer.max_epochs=8", "trainer.lr=0.01"],
    "narm": ["trainer.max_epochs=8", "trainer.lr=0.01"],
    "caser": ["trainer.max_epochs=8", "trainer.lr=0.01"],
    "bert4rec": ["trainer.max_epochs=8", "trainer.lr=0.003"],
}


@pytest.fixture
def pop_ndcg(tiny_cfg, tmp_path) -> float:
    return train(tiny_cfg("model=pop", *BASE[:-2]), tmp_path / "pop")["test/ndcg_10"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_model_beats_pop_on_synthetic(name: str, pop_ndcg: float, tiny_cfg, tmp_path):
    out = train(tiny_cfg(f"model={name}", *BASE, *MODELS[name]), tmp_path / name)
    assert out["test/ndcg_10"] > pop_ndcg, (name, out["test/ndcg_10"], pop_ndcg)
