"""A job folder is data: ``recexp evaluate`` builds everything from the project's config groups and
takes only values from the folder. A crafted ``.hydra/config.yaml`` cannot run code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from recexp.cli import main
from recexp.config.jobdir import load_job_config
from recexp.errors import ConfigError, UserError
from recexp.jobs.evaluate import evaluate

SMALL = ["dataset.generator.num_users=100", "dataset.generator.num_items=50", "dataset.generator.mean_length=6",
         "trainer.max_epochs=1", "trainer.progress=false", "max_len=8", "device=cpu", "tracking=none",
         "model.hidden_size=8", "model.ffn_dim=16", "model.num_blocks=1"]


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("jobdir")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECEXP_RUNS_DIR", str(d / "runs"))
        try:
            code = main(["train", *SMALL, f"hydra.run.dir={d / 'job'}"])
        except SystemExit as exc:
            code = exc.code
    assert code in (0, None)
    return d / "job"


def _craft(job: Path, edit) -> Path:
    path = job / ".hydra" / "config.yaml"
    original = path.read_text()
    cfg = yaml.safe_load(original)
    edit(cfg)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_targets_in_the_folder_are_ignored(job, tmp_path):
    pwned = tmp_path / "pwned"
    saved = (job / ".hydra" / "config.yaml").read_text()
    try:
        def edit(cfg):
            cfg["model"]["_target_"] = "os.system"
            cfg["eval"]["_target_"] = "builtins.open"
            cfg["split"]["_target_"] = "builtins.exec"
            cfg["dataset"]["generator"]["_target_"] = "builtins.open"
        _craft(job, edit)
        cfg = load_job_config(job)
        assert cfg.model._target_ == "recexp.models.sasrec.SASRec"
        assert cfg.eval._target_ == "recexp.eval.evaluator.FullRanking"
        assert cfg.model.hidden_size == 8 and cfg.dataset.generator.num_users == 100  # the job's values
        assert "_target_" not in cfg.dataset.generator
        metrics = evaluate(job, "cpu")
        assert 0 <= metrics["test/ndcg_10"] <= 1

        def edit_open(cfg):  # what once created a file: open(file=..., mode="w") from the folder
            cfg["eval"] = {"_target_": "builtins.open", "file": str(pwned), "mode": "w"}
        _craft(job, edit_open)
        with pytest.raises(UserError):
            evaluate(job, "cpu")
        assert not pwned.exists()
    finally:
        (job / ".hydra" / "config.yaml").write_text(saved)


def test_a_group_choice_outside_the_project_is_refused(job):
    hydra_yaml = job / ".hydra" / "hydra.yaml"
    saved = hydra_yaml.read_text()
    try:
        hydra_yaml.write_text(saved.replace("model: sasrec", "model: ../../evil"))
        with pytest.raises(ConfigError, match="not one of the project's options"):
            load_job_config(job)
    finally:
        hydra_yaml.write_text(saved)
