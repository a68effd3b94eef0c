"""The MLflow UI's landing page for an experiment: its training runs (not MLflow 3's GenAI pages),
with the columns that matter selected and ordered, sweeps nested under their parent run, and the
validation curves in the charts tab.

What the installed MLflow UI (3.17, the version pyproject requires) offers for this, read from its
JS bundle and checked in a real browser (``tests/browser/test_ui.py``):

- ``workflowType=machine_learning`` in the URL selects its "Model training" pages; without it (and
  without an earlier click in that browser) MLflow 3.17 opens every experiment on its GenAI
  overview, whatever the experiment's ``mlflow.experimentKind`` tag says;
- a *saved view* is an experiment tag ``mlflow.sharedViewState.<key>`` holding
  ``{"name", "createdAt", "updatedAt", "state"}``, ``state`` being the JSON of the runs page's
  search facets and UI state (selected columns, column order, charts, ...); the URL parameter
  ``viewStateShareKey=<key>`` of the runs page opens it (and "Views" lists it by name);
- runs are nested under their parent run only while sorted by creation time (MLflow's rule), so the
  view keeps that order: a sweep is one row that opens onto its jobs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from recexp.record import tag

VIEW_KEY = "recexp"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
DEFAULT_UI = "http://127.0.0.1:5000"  # `recexp ui` / `make ui` without --port / PORT=

#: what identifies a run, then its figures; the columns the landing view shows, in this order
HEADLINE = [f"tags.`{tag.COL_DATASET}`", f"tags.`{tag.COL_MODEL}`", f"tags.`{tag.COL_LOSS}`",
            f"tags.`{tag.COL_SAMPLER}`", "params.`seed`"]
METRICS = ["test/ndcg_10", "test/hr_10", "valid/ndcg_10", "valid/hr_10", "best_epoch", "minutes"]
CURVES = ["valid/ndcg_10", "valid/hr_10", "train/loss"]  # the charts tab: one line per run, x = epoch
MAX_VARIED = 12  # swept keys kept as columns (newest sweeps first)
_GROUP_TAG = {"dataset": tag.COL_DATASET, "model": tag.COL_MODEL, "loss": tag.COL_LOSS, "sampler": tag.COL_SAMPLER}
_LABELLED = ("split", "eval")  # other groups whose option name is a param (choices.<group>)


def varied_column(key: str) -> str | None:
    """The runs-table column of a swept override key: a headline column (None), the option name of a
    config group, the preset, or the param itself (``trainer.lr`` -> ``params.`trainer.lr```)."""
    key = key.lstrip("+~")
    if key == "seed" or key in _GROUP_TAG:
        return None
    if key in _LABELLED:
        return f"params.`choices.{key}`"
    if key == "experiment":
        return f"tags.`{tag.PRESET}`"
    return f"params.`{key}`"


def _line_chart(metric: str, section: str) -> dict[str, Any]:
    return {"uuid": f"recexp-{metric}", "type": "LINE", "runsCountToCompare": 10, "metricSectionId": section,
            "deleted": False, "isGenerated": False, "displayName": metric, "metricKey": metric,
            "selectedMetricKeys": [metric], "lineSmoothness": 0, "xAxisScaleType": "linear", "scaleType": "linear",
            "range": {}, "xAxisKey": "step", "selectedXAxisMetricKey": "", "yAxisKey": "metric",
            "yAxisExpressions": [], "ignoreOutliers": False, "useGlobalXaxisKey": True,
            "useGlobalLineSmoothing": True}


def view_state(varied: Iterable[str] = ()) -> dict[str, Any]:
    """The runs page as recexp opens it: headline columns, the swept keys, the figures."""
    cols = [*HEADLINE, *varied, *(f"metrics.`{m}`" for m in METRICS)]
    section = "recexp-curves"
    return {
        "searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": False, "startTime": "ALL",
        "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
        "selectedColumns": cols, "columnOrder": ["attributes.`Run Name`", "runDateAndNestInfo", *cols, "duration"],
        "columnWidths": {"attributes.`Run Name`": 240, **{f"metrics.`{m}`": 112 for m in METRICS}},
        "runsHiddenMode": "FIRST_10_RUNS",
        "compareRunCharts": [_line_chart(m, section) for m in CURVES],
        "compareRunSections": [{"uuid": section, "name": "Validation curves (x: epoch)", "display": True,
                                "isReordered": False, "deleted": False, "isGenerated": False}],
        "viewMaximized": False, "runListHidden": False, "isAccordionReordered": True,
        "useGroupedValuesInCharts": True, "hideEmptyCharts": True, "groupBy": None, "groupsExpanded": {},
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
    }


def view_columns(tags: dict[str, str]) -> list[str]:
    """The swept-key columns of the experiment's current view ([] when it has none)."""
    try:
        cols = json.loads(json.loads(tags[VIEW_TAG])["state"])["selectedColumns"]
    except (KeyError, TypeError, ValueError):
        return []
    fixed = {*HEADLINE, *(f"metrics.`{m}`" for m in METRICS)}
    return [c for c in cols if c not in fixed]


def write_view(client: Any, experiment_id: str, swept: Iterable[str] = (),
               tags: dict[str, str] | None = None) -> None:
    """Create or update the experiment's landing view; the columns of ``swept`` keys come first,
    then those of earlier sweeps (at most :data:`MAX_VARIED`)."""
    if tags is None:
        tags = client.get_experiment(experiment_id).tags
    new = [c for c in (varied_column(k) for k in swept) if c]
    varied = list(dict.fromkeys([*new, *view_columns(tags)]))[:MAX_VARIED]
    if VIEW_TAG in tags and not new:
        return  # already there, nothing new to show
    now = int(time.time() * 1000)
    try:
        created = int(json.loads(tags[VIEW_TAG])["createdAt"])
    except (KeyError, TypeError, ValueError):
        created = now
    body = {"name": VIEW_KEY, "createdAt": created, "updatedAt": now, "state": json.dumps(view_state(varied))}
    client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(body))


def ui_base(uri: str | None, port: int | None = None) -> str:
    """Where the UI of store ``uri`` answers: the tracking server itself, else `recexp ui`'s address."""
    if uri and uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return DEFAULT_UI if port is None else f"http://127.0.0.1:{port}"


def landing_url(base: str, experiment_id: str | None) -> str:
    """The runs page of ``experiment_id`` in the landing view (the experiments list without one)."""
    if experiment_id is None:
        return f"{base.rstrip('/')}/#/experiments?workflowType=machine_learning"
    return (f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"
            f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}")


def last_trained(client: Any) -> str | None:
    """The experiment of the most recently started training run (a job, not a sweep's parent or a
    comparison), else of any run, else None."""
    exps = [e.experiment_id for e in client.search_experiments()]
    if not exps:
        return None
    for query in (f"tags.`{tag.COL_MODEL}` != ''", ""):
        runs = client.search_runs(exps, query, max_results=1, order_by=["attributes.start_time DESC"])
        if runs:
            return runs[0].info.experiment_id
    return None
