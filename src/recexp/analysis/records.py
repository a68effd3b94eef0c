"""Run records: each run's id, experiment, params, recexp tags, final metrics, per-epoch times and
validation curve, copied from the MLflow store into JSON lines so a results document (and its
learning-curve figures) survives a new checkout."""

from __future__ import annotations

import json
from pathlib import Path

from recexp.analysis.query import RunRecord
from recexp.analysis.settings import Row, group_rows
from recexp.errors import UserError


def _experiment_names(uri: str) -> dict[str, str]:
    from recexp.analysis.query import mlflow_client

    return {e.experiment_id: e.name for e in mlflow_client(uri).search_experiments()}


def store_runs(uri: str, experiments: list[str] | None, filter_string: str | None,
               missing_ok: bool = False) -> list[dict]:
    """The store's finished job runs as plain records (see :func:`record`); ``missing_ok``: an
    experiment the store lacks gives nothing (its runs may be in the records file)."""
    from recexp.analysis.query import metric_history, select_runs
    from recexp.errors import ConfigError

    runs = []
    for e in experiments or [None]:
        try:
            runs += select_runs(uri, e, None, filter_string)
        except ConfigError:
            if not (missing_ok and e is not None and filter_string is None):
                raise
    names = _experiment_names(uri) if runs else {}
    out = []
    for r in runs:
        epochs = metric_history(uri, r.run_id, "train/epoch_s")
        trained = {s for s, _ in epochs}
        # the validation curve at the epochs that trained: the final summary point, logged one
        # step after the last epoch, is not an epoch
        curve = [[s, v] for s, v in metric_history(uri, r.run_id, CURVE) if s in trained]
        out.append(record(r, names.get(r.experiment_id, r.experiment_id), [v for _, v in epochs], curve))
    return out


CURVE = "valid/ndcg_10"  # the metric every job selects its best epoch on


def record(run: RunRecord, experiment: str, epoch_s: list[float], curve: list[list[float]] | None = None) -> dict:
    """What the tables need of a run, as MLflow holds it: no value is recomputed or rounded.
    ``curve``: ``[[epoch, valid NDCG@10], ...]`` (empty for count models and for records copied
    before curves were kept)."""
    return {"run_id": run.run_id, "name": run.name, "experiment": experiment, "start_time": run.start_time,
            "params": run.params, "tags": {k: v for k, v in run.tags.items() if k.startswith("recexp.")},
            "metrics": run.metrics, "epoch_s": epoch_s, "curve": curve or []}


def load_records(path: Path) -> list[dict]:
    """Records from a JSON-lines file; a bad line is an error naming the file and line."""
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or not {"run_id", "params", "tags", "metrics"} <= rec.keys():
                raise ValueError("expected an object with run_id, params, tags and metrics")
        except ValueError as exc:
            raise UserError(f"{path}:{i}: not a run record ({str(exc).splitlines()[0]})") from None
        out.append(rec)
    return out


def save_records(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    ordered = sorted(records, key=lambda r: (r.get("start_time", 0), r["run_id"]))
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in ordered))
    tmp.replace(path)


def merge(saved: list[dict], fresh: list[dict]) -> list[dict]:
    by_id = {r["run_id"]: r for r in saved}
    by_id.update({r["run_id"]: r for r in fresh})
    return list(by_id.values())


def rows_from_records(records: list[dict]) -> list[Row]:
    runs = [RunRecord(r["run_id"], r.get("name", ""), r.get("experiment", ""), int(r.get("start_time", 0)),
                      r["params"], r["tags"], r["metrics"]) for r in records]
    return group_rows(runs, {r["run_id"]: list(r.get("epoch_s", [])) for r in records})


def build(uri: str, experiments: list[str] | None, filter_string: str | None) -> list[Row]:
    return rows_from_records(store_runs(uri, experiments, filter_string))
