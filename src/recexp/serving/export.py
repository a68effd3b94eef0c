"""After a run's test: its best model as a bundle inside an MLflow model folder (``<job>/model``),
logged to the run as the artifact ``model`` (``mlflow models serve -m runs:/<id>/model``)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recexp.data.seqs import SplitData
from recexp.serving import bundle

log = logging.getLogger("recexp")
MODEL_DIR = "model"


def export_model(cfg: DictConfig, model: Any, data: SplitData, output_dir: Path, tracker: Any) -> Path | None:
    """Save and log the model; ``None`` (with a warning) for a model class no ``conf/model``
    option builds, since such a bundle could not be loaded without trusting its ``_target_``."""
    from recexp.record.model import BUNDLE_DIR, save_mlflow_model
    from recexp.training.parts import model_choice

    option = bundle.model_option(str(cfg.model.get("_target_")), model_choice(model))
    if option is None:
        log.warning("model %s is not a conf/model option: no model logged", cfg.model.get("_target_"))
        return None
    values = OmegaConf.to_container(cfg.model, resolve=True)
    mask = bool(cfg.eval.get("mask_history", True))
    with tempfile.TemporaryDirectory() as tmp:
        b = bundle.save(Path(tmp) / BUNDLE_DIR, model, values, option, data, int(cfg.max_len), mask,
                        run_id=getattr(tracker, "run_id", None))
        path = save_mlflow_model(b, output_dir / MODEL_DIR)
    tracker.log_artifacts(path, MODEL_DIR)
    run_id = getattr(tracker, "run_id", None)
    log.info("model saved: %s%s", path, f" and logged as runs:/{run_id}/{MODEL_DIR}" if run_id else "")
    return path
