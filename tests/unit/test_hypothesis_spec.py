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


@pytest.mark.parametrize("text,expected", [
    (GOOD.replace("levels: [2, 4]", "levels: 2"), "factor.levels=2: "),
    (GOOD.replace("levels: [2, 4]", 'levels: "12"'), "factor.levels='12': "),
    (GOOD.replace("seeds: 3", "seeds: abc"), "seeds='abc': "),
    (GOOD + "alpha: abc\n", "alpha='abc': "),
    (GOOD + 'alpha: "0.05"\n', "alpha='0.05': "),
    (GOOD.replace("max_epochs: 5", "max_epochs: abc"), "budget.max_epochs='abc': "),
    (GOOD.replace("max_epochs: 5", "max_epochs: 0"), "budget.max_epochs=0: "),
    (GOOD.replace("levels: [2, 4]", "levels: [2, 1]"), "the baseline '1' is also listed among the levels"),
    (GOOD.replace("levels: [2, 4]", "levels: [2, 2]"), "listed twice"),
    (GOOD.replace("seeds: 3", "seeds: 0"), "seeds=0: "),
    (GOOD.replace("seeds: 3", "seeds: 0") + "allow_few_seeds: true\n", "seeds=0: "),
    (GOOD.replace("seeds: 3", "seeds: 2"), "allow_few_seeds: true"),
    (GOOD.replace("seeds: 3", "seeds: [1, 1, 2]"), "listed twice"),
    (GOOD + "allow_few_seeds: maybe\n", "allow_few_seeds='maybe': "),
    (GOOD + "metric: ndcg_11\n", "metric='ndcg_11': not a per-user metric"),
    (GOOD + "metric: coverage_10\n", "metric='coverage_10'"),
    (GOOD.replace("{4: [model.dropout=0.3]}", "{5: [model.dropout=0.3]}"), "factor.overrides: 5 is not a level"),
    (GOOD.replace("key: model.num_blocks", "key: model.num_blokcs"), "do not compose"),
    (GOOD.replace("levels: [2, 4]", "levels: [2, -4]").replace("4: [", "-4: ["),
     "the runs of model.num_blocks=-4: model.num_blocks=-4: expected an integer >= 1"),
])
def test_every_field_is_typed_and_checked(tmp_path: Path, text: str, expected: str) -> None:
    """Each bad value is one ConfigError line naming the file, the field and the value."""
    with pytest.raises(ConfigError) as info:
        spec.load(write(tmp_path, text))
    msg = str(info.value)
    assert expected in msg and msg.startswith(f"{tmp_path / 'h.yaml'}: ") and "\n" not in msg


def test_few_seeds_and_other_metrics_when_asked(tmp_path: Path) -> None:
    assert spec.load(write(tmp_path, GOOD.replace("seeds: 3\n", ""))).seeds == [1, 2, 3]  # the default
    h = spec.load(write(tmp_path, GOOD.replace("seeds: 3", "seeds: 1") + "allow_few_seeds: true\nmetric: hr_20\n"))
    assert h.seeds == [1] and h.metric == "hr_20"
    sampled = GOOD.replace("device=cpu]", "device=cpu, eval=sampled]")
    assert spec.load(write(tmp_path, sampled + "metric: ndcg_1\n")).metric == "ndcg_1"  # sampled: ks 1, 5, 10
    with pytest.raises(ConfigError, match="ndcg_20"):
        spec.load(write(tmp_path, sampled + "metric: ndcg_20\n"))


def test_hypothesis_run_refuses_a_bad_file_before_registering(tmp_runs: Path, tmp_path: Path, capsys) -> None:
    from recexp.analysis.hypothesis import main

    assert main(["run", str(write(tmp_path, GOOD.replace("max_epochs: 5", "max_epochs: abc")))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "budget.max_epochs='abc'" in err and "\n" not in err
    assert not (tmp_runs / "mlflow.db").exists()  # nothing registered


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
