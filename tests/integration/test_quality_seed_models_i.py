"""Issue 3 acceptance: on synthetic data (item-to-item transitions built in), the Markov family
beats popularity on test NDCG@10."""

from __future__ import annotations

from recexp.jobs.train import train

BASE = ["dataset.generator.num_users=400", "dataset.generator.num_items=200", "dataset.generator.mean_length=15",
        "max_len=20", "tracking=none"]


def test_markov_fpmc_transrec_beat_pop_on_synthetic(tiny_cfg, tmp_path):
    pop = train(tiny_cfg("model=pop", *BASE), tmp_path / "pop")["test/ndcg_10"]
    markov = train(tiny_cfg("model=markov", *BASE), tmp_path / "markov")["test/ndcg_10"]
    grad = {m: train(tiny_cfg(f"model={m}", "trainer.max_epochs=6", "trainer.lr=0.01", *BASE),
                     tmp_path / m)["test/ndcg_10"] for m in ("fpmc", "transrec")}
    scores = {"pop": pop, "markov": markov, **grad}
    assert all(scores[m] > 1.5 * pop for m in ("markov", "fpmc", "transrec")), scores
