"""A recexp model bundle as an MLflow model: the ``python_function`` flavour through a loader
module (``recexp.serving.pyfunc``), so the MLmodel names code by import path and nothing is
pickled (``mlflow.pyfunc.PythonModel`` would cloudpickle an object into the artifact)."""

from __future__ import annotations

import shutil
from pathlib import Path

LOADER = "recexp.serving.pyfunc"
BUNDLE_DIR = "bundle"  # the bundle lands in <model>/data/bundle


def save_mlflow_model(bundle_dir: Path, path: Path) -> Path:
    """Write the MLflow model folder ``path`` holding ``bundle_dir``; replaces an older one."""
    import mlflow.pyfunc

    if path.exists():
        shutil.rmtree(path)
    # explicit requirements: inferring them loads the model in a subprocess (seconds per run)
    reqs = ["torch", "numpy", "pandas", "omegaconf", "hydra-core", "recexp"]
    mlflow.pyfunc.save_model(path=str(path), loader_module=LOADER, data_path=str(bundle_dir),
                             pip_requirements=reqs)
    return path
