"""Quality on the embedded synthetic data (the spine's acceptance check)."""

from __future__ import annotations

from recexp.jobs.train import train


def test_sasrec_beats_pop_by_half_again(tiny_cfg, tmp_path):
    base = ["dataset.generator.num_users=1500", "dataset.generator.num_items=800",
            "dataset.generator.mean_length=20", "max_len=50", "tracking=none"]
    pop = train(tiny_cfg("model=pop", *base), tmp_path / "pop")
    sas = train(tiny_cfg("model=sasrec", "trainer.max_epochs=8", "trainer.lr=0.003", *base), tmp_path / "sas")
    assert sas["test/ndcg_10"] >= 1.5 * pop["test/ndcg_10"], (sas["test/ndcg_10"], pop["test/ndcg_10"])
