"""What the terminal shows: typos as one line with the closest names, `--cfg job` resolved, the
start-up header, the progress bar / plain progress lines, the still-improving warning, where to
look at the run; and the experiment tag that makes `make ui` open on the training runs."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from recexp.cli import main as cli_main
from recexp.config.overrides import check_overrides
from recexp.errors import ConfigError
from recexp.runtime import terminal


@pytest.mark.parametrize("argv,message", [
    (["loss=cee"], "loss=cee: no such option (did you mean ce"),
    (["-m", "loss=ce,bcee"], "loss=bcee: no such option (did you mean bce"),
    (["trainer.max_epoch=3"], "trainer.max_epoch: no such key in trainer (did you mean max_epochs"),
    (["model=sasrec", "model.hiden_size=8"], "did you mean hidden_size?"),
    (["seeed=3"], "seeed: no such key in the root config (did you mean seed?)"),
    (["loss=bce", "sampler.num_negatives=5"], "sampler=auto has no keys until it is resolved: use +sampler"),
])
def test_typos_are_one_line_with_the_closest_names(argv, message, capsys):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_overrides(argv)
    assert cli_main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_valid_overrides_pass():
    check_overrides(["-m", "model=sasrec,gru4rec", "trainer.lr=0.01", "+sampler.num_negatives=3",
                     "hydra/launcher=local", "hydra.launcher.n_jobs=2", "seed=1,2", "eval.ks=[5,10]"])


def test_cfg_job_prints_the_config_as_it_will_run(capsys):
    assert cli_main(["train", "loss=bce", "+sampler.num_negatives=5", "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert "name: auto" not in out and "recexp.losses.samplers.UniformSampler" in out and "num_negatives: 5" in out
    assert "loss: bce" in out and "sampler: uniform" in out  # the choices block


def test_still_improving_warning():
    assert "raise trainer.max_epochs" in terminal.still_improving(10, 10, 10, False)
    assert terminal.still_improving(7, 10, 10, False) is None
    assert terminal.still_improving(10, 10, 10, True) is None  # stopped early: converged


def test_where_names_the_landing_page_and_the_run():
    url = "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&viewStateShareKey=recexp"
    assert terminal.where("abc", url, "sqlite:////x/mlflow.db") == f"MLflow: {url} (run abc; serve it with `recexp ui`)"
    assert terminal.where("abc", url, "http://127.0.0.1:5001") == f"MLflow: {url} (run abc)"
    assert terminal.where(None, None) is None


def test_progress_bar_on_a_terminal_and_plain_lines_otherwise(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(terminal, "console", Console(file=buf, force_terminal=True, width=100))
    assert list(terminal.batches(range(5), 5, 1, True)) == list(range(5))
    assert "ETA" in buf.getvalue()
    buf = io.StringIO()
    monkeypatch.setattr(terminal, "console", Console(file=buf, force_terminal=False, width=100))
    monkeypatch.setattr(terminal, "PLAIN_EVERY_S", 0.0)
    assert list(terminal.batches(range(4), 4, 2, True)) == list(range(4))
    assert "epoch   2: 1/4 batches (25%), ETA" in buf.getvalue() and "\x1b[" not in buf.getvalue()
    buf.truncate(0)
    assert list(terminal.batches(range(4), 4, 2, False)) == list(range(4)) and buf.getvalue() == ""


def test_header_names_sizes_choices_parameters_device_and_run(tiny_cfg):
    from pathlib import Path

    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from recexp.config.resolve import resolve_config
    from recexp.data.prepare import prepare
    from recexp.training.parts import instantiate_user

    cfg = resolve_config(tiny_cfg("loss=bce"))
    data = prepare(OmegaConf.to_container(cfg.dataset, resolve=True), OmegaConf.to_container(cfg.split, resolve=True),
                   instantiate(cfg.split), Path("data"), Path(cfg.paths.cache_dir))
    model = instantiate_user(cfg.model, num_items=data.num_items, num_users=data.num_users)
    text = terminal.header(cfg, data, model, torch.device("cpu"), "r123")
    n = sum(p.numel() for p in model.parameters())
    assert f"{data.num_users:,} users" in text and f"{n:,} parameters" in text and "device cpu" in text
    assert "MLflow run r123" in text and "loss=bce" in text and "sampler=uniform" in text


def test_experiments_open_on_training_runs_in_the_ui(tmp_path):
    from mlflow.tracking import MlflowClient

    from recexp.record.store import ensure_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = ensure_experiment(uri, "x")
    assert MlflowClient(uri).get_experiment(exp).tags["mlflow.experimentKind"] == "custom_model_development"
