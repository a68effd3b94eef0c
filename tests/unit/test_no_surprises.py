"""No surprises: the Python API filters nothing unless asked (and says what a filter kept), the
runs folder is one stated rule, `--cfg job` shows the folders themselves, a misspelt config group
is named, the hypothesis runner says its registration in plain words."""

from __future__ import annotations

import pandas as pd
import pytest

from recexp.api import Dataset
from recexp.cli import main as cli_main
from recexp.errors import ConfigError
from recexp.record.store import runs_dir_line


def _frame() -> pd.DataFrame:
    """Items 1..3 seen once each (a 5-core filter drops them), item 10..19 seen by every user."""
    rows = [(f"u{u}", f"i{10 + j}", j) for u in range(8) for j in range(10)]
    rows += [("u0", "i1", 20), ("u1", "i2", 20), ("u2", "i3", 20)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_from_pandas_filters_nothing_unless_asked(tmp_path, capsys):
    from omegaconf import OmegaConf

    from recexp.data.prepare import prepare
    from recexp.data.split import LeaveOneOut
    from tests.conftest import compose_cfg

    d = Dataset.from_pandas(_frame())
    assert capsys.readouterr().out == ""  # nothing done, nothing said
    ov = d.overrides(tmp_path)
    assert "dataset.min_user_count=0" in ov and "dataset.min_item_count=0" in ov
    cfg = compose_cfg(ov)
    data = prepare(OmegaConf.to_container(cfg.dataset, resolve=True), {}, LeaveOneOut(), tmp_path, None)
    assert data.num_items == 13 and data.num_users == 8  # every item and user of the frame

    k = Dataset.from_pandas(_frame(), k_core=5)
    said = capsys.readouterr().out
    assert "5-core filter" in said and "keeps 8 of 8 users, 10 of 13 items, 80 of 83 interactions" in said
    assert "dataset.min_item_count=5" in k.overrides(tmp_path)
    with pytest.raises(ConfigError, match=r"k_core=0\): expected an integer >= 1"):
        Dataset.from_pandas(_frame(), k_core=0)


def test_runs_folder_is_one_stated_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECEXP_RUNS_DIR", raising=False)
    assert runs_dir_line() == f"runs folder: {tmp_path / 'runs'} (./runs under the current folder; " \
                              "set RECEXP_RUNS_DIR to keep one place)"
    monkeypatch.setenv("RECEXP_RUNS_DIR", str(tmp_path / "r"))
    assert runs_dir_line() == f"runs folder: {tmp_path / 'r'} ($RECEXP_RUNS_DIR)"
    assert runs_dir_line("x") == f"runs folder: {tmp_path / 'x'} (paths.runs_dir=)"


def test_cfg_job_shows_the_folders_themselves(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RECEXP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECEXP_RUNS_DIR", str(tmp_path / "runs"))
    assert cli_main(["train", "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert "${" not in out
    assert f"data_dir: {tmp_path / 'data'}" in out and f"cache_dir: {tmp_path / 'runs' / 'cache'}" in out


@pytest.mark.parametrize("argv,message", [
    (["modle=sasrec"], "modle=sasrec: no such config group or key (did you mean the group model=sasrec?"),
    (["sampeler=uniform"], "did you mean the group sampler=uniform?"),
])
def test_misspelt_group_is_named(argv, message, capsys):
    assert cli_main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_registration_is_said_in_plain_words(tmp_path):
    from recexp.analysis.hypothesis.runner import Registration

    class H:
        path, sha256 = tmp_path / "h.yaml", "a" * 64

    new = Registration("r", "a" * 64, "2026-01-01 00:00:00 UTC", True)
    assert new.registered_line(H) == "registered h.yaml now: sha256 aaaaaaaaaaaa at 2026-01-01 00:00:00 UTC"
    assert new.first_line(H).startswith("pre-registered: h.yaml") and "registered pre" not in new.registered_line(H)


def test_hypothesis_sweep_says_its_claim_once_and_runs_compact_jobs(tmp_path, monkeypatch, capsys):
    from recexp.analysis.hypothesis import runner, spec
    from recexp.runtime.terminal import COMPACT_ENV

    path = tmp_path / "h.yaml"
    path.write_text('claim: "a long claim that must not be repeated per job"\nbase: [device=cpu]\n'
                    "factor: {key: model.num_blocks, baseline: 1, levels: [2, 3]}\nseeds: 3\n")
    calls = []
    monkeypatch.setattr(runner.subprocess, "call", lambda cmd, env: calls.append((cmd, env)) or 0)
    runner.sweep(spec.load(path))
    err = capsys.readouterr().err
    assert err.count("a long claim") == 1 and err.splitlines()[0].startswith("claim: ")
    assert err.splitlines()[1:] == ["level 1/3: model.num_blocks=1 (baseline), seeds 1, 2, 3",
                                    "level 2/3: model.num_blocks=2, seeds 1, 2, 3", "level 3/3: model.num_blocks=3, seeds 1, 2, 3"]
    assert all(env[COMPACT_ENV] == "1" for _, env in calls) and len(calls) == 3
