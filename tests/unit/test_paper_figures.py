"""Figures and tables a paper can take as they are (analysis/figures.py, the hypothesis report):
PDF + PNG + CSV side by side, per-seed points, intervals only from the verdict engine, clipped to
the metric's range and never from one seed, whole-epoch curves, a LaTeX table with caption and
label, the budget in words. No training: a verdict built from made-up per-user matrices."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recexp.analysis import figures
from recexp.analysis.hypothesis.analysis import Arm, Verdict
from recexp.analysis.hypothesis.report import _budget, write
from recexp.analysis.hypothesis.spec import Hypothesis
from recexp.analysis.judge import RecordedArm
from recexp.analysis.query import RunRecord
from recexp.analysis.verdict import Arm as VArm
from recexp.analysis.verdict import verdict

USERS = 60
PROTOCOL = '{"split": "LeaveOneOut", "mode": "full", "mask_history": "all"}'


def _arm(level: str, seeds: list[int], mean: float, rng: np.random.Generator) -> Arm:
    x = np.clip(mean + rng.normal(0, 0.02, (len(seeds), USERS)), 0, 1)
    runs = [RunRecord(f"r{level}{s}", "n", "1", 0, {"seed": str(s), "trainer.monitor": "ndcg_10"},
                      {"recexp.protocol": PROTOCOL}, {"test/ndcg_10": float(x[i].mean()), "best_epoch": 3.0})
            for i, s in enumerate(seeds)]
    curves = [{"epoch": [(e, mean * e / 3) for e in (1, 2, 3)], "seconds": [(1.5 * e, mean * e / 3) for e in (1, 2, 3)]}
              for _ in seeds]
    return Arm(level, runs, seeds, x, RecordedArm(level, runs, VArm(level, x, list(range(USERS))), USERS), curves)


@pytest.fixture
def v(tmp_path: Path) -> Verdict:
    rng = np.random.default_rng(0)
    arms = [_arm("1", [1, 2, 3], 0.01, rng), _arm("2", [1, 2, 3], 0.05, rng), _arm("4", [1], 0.02, rng)]
    users = list(range(USERS))
    result = verdict(VArm("1", arms[0].matrix, users), [VArm(a.level, a.matrix, users) for a in arms[1:]],
                     direction="greater", alpha=0.05, smallest_effect=0.01, allow_few_seeds=True)
    h = Hypothesis(tmp_path / "blocks.yaml", "0" * 64, "blocks", "a claim far too long to be a figure title " * 3,
                   [], "model.num_blocks", "1", ["2", "4"], {}, "ndcg_10", "test", "greater", 0.05, 0.01, [1, 2, 3],
                   True, {"max_epochs": 10, "note": "as the paper"})
    return Verdict(h, None, arms, result, USERS, "sqlite:///none", "1")


def test_hypothesis_report_is_paper_ready(v, tmp_path):
    out = tmp_path / "rep"
    files = write(v, out, log=False)
    names = {f.name for f in files}
    for stem in ("blocks_seeds", "blocks_effects", "blocks_curves", "blocks_time"):
        assert {f"{stem}.pdf", f"{stem}.png", f"{stem}.csv"} <= names, stem
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    seeds = pd.read_csv(out / "blocks_seeds.csv")
    assert len(seeds) == 7 and set(seeds["group"]) == {"model.num_blocks=1", "model.num_blocks=2", "model.num_blocks=4"}
    eff = pd.read_csv(out / "blocks_effects.csv").set_index("level")
    one_seed = eff.loc["model.num_blocks=4"]
    assert math.isnan(one_seed["lo"]) and "no interval" in one_seed["note"]  # none drawn from one seed
    two = eff.loc["model.num_blocks=2"]
    engine = v.effects[0]
    assert two["lo"] == pytest.approx(max(engine.lo, -v.arms[0].matrix.mean())) and two["hi"] == pytest.approx(engine.hi)
    assert two["lo"] >= -v.arms[0].matrix.mean() - 1e-12  # the level's mean stays in [0, 1]
    curves = pd.read_csv(out / "blocks_curves.csv")
    assert curves["epoch"].dtype.kind == "i" and sorted(set(curves["epoch"])) == [1, 2, 3]
    tex = (out / "blocks.tex").read_text()
    assert r"\caption{test NDCG@10 per user" in tex and r"\label{tab:hyp-blocks}" in tex
    assert "seeds 1, 2, 3" in tex and "leave-one-out split, full ranking" in tex and r"\%" in tex
    assert "at most 10 epochs (as the paper)" in tex and "{'max_epochs'" not in tex
    md = (out / "blocks.md").read_text()
    assert "none (1 seed)" in md and "![seeds](blocks_seeds.png)" in md and "![effects](blocks_effects.png)" in md


def test_budget_in_words_and_metric_names():
    assert _budget({"max_epochs": 10}) == "at most 10 epochs"
    assert _budget({}) == "none"
    assert figures.pretty("test/ndcg_10") == "test NDCG@10" and figures.pretty("valid/hr_20") == "valid HR@20"
    assert figures.bounded("test/hr_10") and not figures.bounded("test/novelty_10")
    e = figures.Effect("x", 0.2, -0.5, 0.95, 3, 3, 0.3, "inconclusive")
    assert figures.clipped(e, "test/ndcg_10") == (-0.3, 0.7)  # the level's mean within [0, 1]
    assert figures.clipped(figures.Effect("x", 0.2, -0.5, 0.9, 1, 3, 0.3, "inconclusive"), "test/ndcg_10") is None


def test_the_bold_mean_curve_stops_where_a_seed_stopped(tmp_path, monkeypatch):
    """A mean over the seeds still running past another's early stop would be one seed drawn as
    three: the bold line ends at the last epoch every seed reached; the thin lines go on."""
    drawn = {}
    monkeypatch.setattr(figures, "save", lambda fig, stem, data: drawn.setdefault("ax", fig.axes[0]) and [])
    series = pd.DataFrame([{"group": "SASRec", "seed": s, "epoch": e, "value": 0.01 * e + s}
                           for s, last in ((0, 6), (1, 4)) for e in range(1, last + 1)])
    figures.curves(series, "valid/ndcg_10", tmp_path / "c")
    bold = [line for line in drawn["ax"].lines if line.get_linewidth() == 2]
    thin = [line for line in drawn["ax"].lines if line.get_linewidth() < 1]
    assert len(bold) == 1 and list(bold[0].get_xdata()) == [1, 2, 3, 4]
    assert np.allclose(bold[0].get_ydata(), [0.01 * e + 0.5 for e in range(1, 5)])
    assert sorted(len(line.get_xdata()) for line in thin) == [4, 6]
