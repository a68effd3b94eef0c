"""``recexp results --targets FILE``: the schema of the targets file, one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from recexp.analysis.results import main
from recexp.analysis.targets import load_targets
from recexp.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_targets_load():
    t = load_targets(REPO / "docs" / "results" / "targets.yaml")
    assert t["beauty"]["ndcg_10"] == 0.0611 and "SASRec" in t["beauty"]["models"]
    assert "hr_10" in t["toys"] and "same_as" not in t["toys"]


@pytest.mark.parametrize("text,expected", [
    ("beauty: 5\n", "beauty=5: "),
    ("beauty: {ndcg_10: abc}\n", "beauty.ndcg_10='abc': "),
    ("beauty: {ndcg_10: '0.05'}\n", "beauty.ndcg_10='0.05': "),
    ("beauty: {hr_10: 2}\n", "beauty.hr_10=2: "),
    ("beauty: {hr_10: .nan}\n", "beauty.hr_10=nan: "),
    ("beauty: {ndcg10: 0.1}\n", "unknown key 'beauty.ndcg10'"),
    ("beauty: {models: [SASRec]}\n", "beauty.models=['SASRec']: "),
    ("beauty: {same_as: beauty_x}\n", "beauty.same_as='beauty_x': "),
    ("[1, 2]\n", "expected a mapping"),
    ("beauty: [\n", "not valid YAML"),
    ("", "expected a mapping"),
])
def test_a_malformed_targets_file_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(UserError) as info:
        load_targets(p)
    assert str(info.value).startswith(f"--targets {p}: ") and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_results_exits_2_before_reading_any_run(tmp_path: Path, capsys) -> None:
    p = tmp_path / "t.yaml"
    p.write_bytes(b"\xff\xfe garbage")
    records = tmp_path / "none.jsonl"
    records.write_text("")
    assert main(["--records", str(records), "--records-only", "--targets", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recexp results: error: --targets") and "UTF-8" in err and "\n" not in err
    assert main(["--records", str(records), "--records-only", "--targets", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read it" in capsys.readouterr().err
