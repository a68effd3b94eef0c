"""Hypothesis files: the schema, its one-line errors, the sweep overrides, the registration line."""

from __future__ import annotations

from pathlib import Path

import pytest

from recexp.analysis.hypothesis import spec
from recexp.analysis.hypothesis.runner import Registration
from recexp.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
claim: "two blocks beat one"
base: [dataset=ml-100k, device=cpu]
factor: {key: model.num_blocks, baseline: 1, levels: [2, 4], overrides: {4: [model.dropout=0.3]}}
seeds: 3
budget: {max_epochs: 5}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "h.yaml"
    p.write_text(text)
    return p


def test_load_and_overrides(tmp_path: Path) -> None:
    h = spec.load(write(tmp_path, GOOD))
    assert (h.name, h.metric, h.split, h.direction, h.alpha, h.seeds) == ("h", "ndcg_10", "test", "greater", 0.05,
                                                                             [1, 2, 3])
    assert h.all_levels() == ["1", "2", "4"]
    ov = h.overrides("4")
    assert ov[:3] == ["dataset=ml-100k", "device=cpu", "trainer.max_epochs=5"]
    assert "model.num_blocks=4" in ov and "model.dropout=0.3" in ov and "seed=1,2,3" in ov
    assert "tracking.experiment=hypothesis-h" in ov and "model.dropout=0.3" not in h.overrides("2")
    assert len(h.sha256) == 64


@pytest.mark.parametrize("text,key", [
    (GOOD.replace("claim:", "clam:"), "unknown key"),
    (GOOD.replace("direction", "x") + "direction: up\n", "direction"),
    (GOOD + "split: valid\n", "split"),
    (GOOD + "alpha: 0.7\n", "alpha"),
    (GOOD + "smallest_effect: -1\n", "smallest_effect"),
    (GOOD.replace("baseline: 1, ", ""), "baseline"),
    (GOOD.replace("[dataset=ml-100k, device=cpu]", "[ml-100k]"), "base"),
])
def test_one_line_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        spec.load(write(tmp_path, text))


def test_changed_file_says_so_in_the_first_line(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD)
    reg = Registration("r", spec.load(p).sha256, "then", True)
    assert reg.first_line(spec.load(p)).startswith("pre-registered")
    p.write_text(GOOD.replace("seeds: 3", "seeds: 5"))
    assert reg.first_line(spec.load(p)).startswith("WARNING: h.yaml CHANGED")


@pytest.mark.parametrize("path", sorted((REPO / "hypotheses").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_hypotheses_load_and_compose(path: Path) -> None:
    """Every shipped hypothesis parses, and each level's overrides compose with the real config."""
    from tests.conftest import compose_cfg

    h = spec.load(path)
    assert len(h.seeds) >= 3 and "max_epochs" in h.budget
    for level in h.all_levels():
        ov = [o.replace(",".join(map(str, h.seeds)), str(h.seeds[0])) if o.startswith("seed=") else o
              for o in h.overrides(level)]
        cfg = compose_cfg(ov)
        assert str(cfg.trainer.max_epochs) == str(h.budget["max_epochs"])
