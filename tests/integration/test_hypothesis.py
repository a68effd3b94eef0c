"""`recexp hypothesis run/show` end to end on tiny synthetic data: the sweep through
`recexp train -m`, the registration, the report, resume (nothing retrained), a changed file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from recexp.analysis.hypothesis import main
from recexp.record import tag

TINY = """\
claim: "two blocks beat one on tiny synthetic data"
base: [dataset.generator.num_users=150, dataset.generator.num_items=80, dataset.generator.mean_length=8,
       max_len=8, device=cpu, trainer.progress=false]
factor: {key: model.num_blocks, baseline: 1, levels: [2]}
seeds: 2
allow_few_seeds: true
budget: {max_epochs: 1}
alpha: 0.05
"""


@pytest.mark.slow
def test_run_show_resume_and_changed_file(tmp_runs: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    out = tmp_path / "report"
    assert main(["run", str(path), "--out", str(out)]) == 0
    first = capsys.readouterr().out
    assert first.startswith("pre-registered: tiny.yaml") and "verdict:" in first
    assert {f.name for f in out.iterdir()} == {"tiny.md", "tiny.tex", *(f"tiny_{f}.{x}" for f in ("seeds", "effects", "curves", "time")
                                                                       for x in ("pdf", "png", "csv"))}
    md = (out / "tiny.md").read_text()
    assert md.count("/runs/") == 4 and "(baseline)" in md and r"\begin{tabular}" in (out / "tiny.tex").read_text()

    uri = f"sqlite:///{tmp_runs / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("hypothesis-tiny")
    jobs = client.search_runs([exp.experiment_id], f"tags.`{tag.HYPOTHESIS_LEVEL}` != ''")
    assert len(jobs) == 4 and all(r.info.status == "FINISHED" for r in jobs)
    assert all("after_target_median" in json.loads(r.data.tags["recexp.audit"]) for r in jobs)
    assert all(r.data.metrics.get("train/elapsed_s", 0) > 0 for r in jobs)

    # show: the same verdict from MLflow, nothing trained
    assert main(["show", str(path)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[-1] == first.splitlines()[-2] and shown[-1].startswith("verdict: ")
    # compare on the same runs: the one engine, the same last line
    from recexp.analysis.compare import main as compare_main

    assert compare_main(["--uri", uri, "--experiment", "hypothesis-tiny", "--no-log",
                         "--out", str(tmp_path / "cmp")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == shown[-1]
    # run again: every job is skipped (no new run), the verdict is unchanged
    assert main(["run", str(path), "--no-report"]) == 0
    assert len(client.search_runs([exp.experiment_id], f"tags.`{tag.HYPOTHESIS_LEVEL}` != ''")) == 4
    capsys.readouterr()
    # a changed file says so in the first line of its verdict
    path.write_text(TINY.replace("alpha: 0.05", "alpha: 0.01"))
    assert main(["show", str(path)]) == 0
    assert capsys.readouterr().out.startswith("WARNING: tiny.yaml CHANGED since its pre-registration")


def test_audit_command_on_synthetic_data(tmp_runs: Path, capsys) -> None:
    from recexp.cli.audit import main as audit_main

    assert audit_main(["dataset.generator.num_users=100", "dataset.generator.num_items=50", "--json"]) == 0
    fig = json.loads(capsys.readouterr().out)
    assert 0 <= fig["after_target_median"] <= 1 and fig["test_examples"] == 100
    assert audit_main(["dataset=nope"]) == 2
    assert "dataset" in capsys.readouterr().err


def test_show_before_run_is_one_line(tmp_runs: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err  # no store yet (or no experiment): one line
