"""``recexp evaluate`` records what it measured on the run it evaluated, so a run stopped early
(Ctrl-C, a time budget) and evaluated afterwards is visible to ``recexp compare``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from recexp.record import tag


def log_to_run(job: Path, cfg: DictConfig, metrics: dict[str, float], files: list[Path]) -> str | None:
    """Log ``metrics`` and ``files`` to the MLflow run that wrote ``job``; returns its id, or None
    when the job was not tracked (``tracking=none``) or its store holds no run for it."""
    tracking = cfg.get("tracking") or {}
    if tracking.get("backend", "mlflow") != "mlflow":
        return None
    from mlflow.tracking import MlflowClient

    from recexp.record.store import tracking_uri

    uri = tracking_uri(tracking.get("uri"), str(cfg.paths.runs_dir))
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        return None
    client = MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(exps, f"tags.`{tag.OUTPUT_DIR}` = '{job.resolve()}'", max_results=1,
                               order_by=["attributes.start_time DESC"]) if exps else []
    if not found:
        return None
    rid = found[0].info.run_id
    client.log_batch(rid, metrics=[_metric(k, v) for k, v in metrics.items()])
    for f in files:
        client.log_artifact(rid, str(f))
    client.set_tag(rid, tag.EVALUATED, f"best.pt of epoch {int(metrics.get('best_epoch', 0))}")
    return rid


def _metric(key: str, value: float):  # noqa: ANN202
    import time

    from mlflow.entities import Metric

    return Metric(key, float(value), int(time.time() * 1000), 0)
