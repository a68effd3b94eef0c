"""The MLflow UI's landing page (record/ui_view.py, `recexp ui`): the saved view recexp writes on
every experiment, the swept keys it adds as columns, the address `recexp ui` and `recexp train`
print. The page itself, in a real browser: tests/browser/test_ui.py (`make test-browser`)."""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from recexp.cli import main as cli_main
from recexp.record.callback import swept_keys
from recexp.record.store import ensure_experiment
from recexp.record.ui_view import (
    HEADLINE,
    VIEW_TAG,
    landing_url,
    last_trained,
    ui_base,
    varied_column,
    view_columns,
    view_state,
    write_view,
)


def _state(client: MlflowClient, exp: str) -> dict:
    body = json.loads(client.get_experiment(exp).tags[VIEW_TAG])
    assert body["name"] == "recexp" and body["createdAt"] <= body["updatedAt"]
    return json.loads(body["state"])


def test_view_shows_what_a_run_is_then_its_figures_and_the_validation_curves():
    st = view_state(["params.`trainer.lr`"])
    cols = st["selectedColumns"]
    assert cols[:5] == HEADLINE == ["tags.`dataset`", "tags.`model`", "tags.`loss`", "tags.`sampler`", "params.`seed`"]
    assert cols[5] == "params.`trainer.lr`"
    assert [c for c in cols if c.startswith("metrics.")] == [
        "metrics.`test/ndcg_10`", "metrics.`test/hr_10`", "metrics.`valid/ndcg_10`", "metrics.`valid/hr_10`",
        "metrics.`best_epoch`", "metrics.`minutes`"]
    assert st["columnOrder"][:2] == ["attributes.`Run Name`", "runDateAndNestInfo"] and st["columnOrder"][2:-1] == cols
    assert st["orderByKey"] == "attributes.start_time"  # MLflow nests a sweep's jobs under it only in this order
    assert [c["metricKey"] for c in st["compareRunCharts"]] == ["valid/ndcg_10", "valid/hr_10", "train/loss"]
    assert all(c["type"] == "LINE" and c["xAxisKey"] == "step" for c in st["compareRunCharts"])
    assert len(json.dumps(view_state(["params.`a.very.long.key`"] * 12))) < 5000  # fits any MLflow's tag limit


def test_swept_keys_become_columns_newest_first(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = ensure_experiment(uri, "x")
    client = MlflowClient(uri)
    assert _state(client, exp)["selectedColumns"][:5] == HEADLINE  # every experiment gets the view at once
    write_view(client, exp, ["loss", "seed", "trainer.lr", "split"])
    assert view_columns(client.get_experiment(exp).tags) == ["params.`trainer.lr`", "params.`choices.split`"]
    write_view(client, exp, ["model.num_blocks", "trainer.lr"])
    assert view_columns(client.get_experiment(exp).tags) == [
        "params.`model.num_blocks`", "params.`trainer.lr`", "params.`choices.split`"]
    assert varied_column("experiment") == "tags.`recexp.preset`" and varied_column("+foo.bar") == "params.`foo.bar`"


def test_swept_keys_of_a_multirun():
    cfg = OmegaConf.create({"hydra": {"overrides": {"task": ["model=sasrec,pop", "seed=1", "trainer.lr=range(1,3)",
                                                             "hypothesis='a, b'"]},
                                      "sweeper": {"params": {"model.dropout": "interval(0, 0.5)"}}}})
    assert swept_keys(cfg) == ["model", "trainer.lr", "model.dropout"]


def test_landing_url_and_last_trained_experiment(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert ui_base(uri) == "http://127.0.0.1:5000" and ui_base("http://h:5001/") == "http://h:5001"
    assert landing_url("http://127.0.0.1:5000", "7") == \
        "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning&viewStateShareKey=recexp"
    assert landing_url("http://127.0.0.1:5000", None).endswith("/#/experiments?workflowType=machine_learning")
    a, b = ensure_experiment(uri, "a"), ensure_experiment(uri, "b")
    client = MlflowClient(uri)
    client.create_run(a, tags={"model": "sasrec"})
    client.create_run(b, tags={"recexp.role": "compare"})  # newer, but not a training run
    assert last_trained(client) == a
    assert cli_main(["ui", "--uri", uri, "--port", "5123", "--print-url"]) == 0
    assert capsys.readouterr().out.strip() == landing_url("http://127.0.0.1:5123", a)
    assert cli_main(["ui", "--uri", uri, "--print-url", "--experiment", "b"]) == 0
    assert f"/#/experiments/{b}/runs?" in capsys.readouterr().out
