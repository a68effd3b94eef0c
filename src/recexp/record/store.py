"""Where runs are stored: resolve the tracking URI and create experiments once."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from recexp.errors import ConfigError
from recexp.record.ui_view import write_view

PARENT_ENV = "RECEXP_PARENT_RUN_ID"  # our own variable: MLFLOW_RUN_ID would override parent_run_id
SWEEP_ENV = "RECEXP_SWEEP_ID"
SWEPT_ENV = "RECEXP_SWEPT_KEYS"  # the keys the running sweep sweeps ("loss seed"): each job's progress line
# the experiment's kind for MLflow clients that read it; MLflow 3.17's UI itself picks its GenAI or
# model-training pages by the URL (record/ui_view.py's landing URL says workflowType=machine_learning)
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"


def runs_dir(cfg_runs_dir: str | None = None) -> Path:
    """The one folder of the store (``mlflow.db``), its artifacts and the job folders:
    ``paths.runs_dir=`` when given, else ``$RECEXP_RUNS_DIR``, else ``./runs`` under the current
    directory (docs/ui.md, "Where runs are stored")."""
    return Path(cfg_runs_dir or os.environ.get("RECEXP_RUNS_DIR", "runs")).expanduser().resolve()


def runs_dir_line(cfg_runs_dir: str | None = None) -> str:
    """The rule above, as the CLI and the API say it once when they start."""
    path = runs_dir(cfg_runs_dir)
    if cfg_runs_dir:
        why = "paths.runs_dir="
    elif os.environ.get("RECEXP_RUNS_DIR"):
        why = "$RECEXP_RUNS_DIR"
    else:
        why = "./runs under the current folder; set RECEXP_RUNS_DIR to keep one place"
    return f"runs folder: {path} ({why})"


def tracking_uri(uri: str | None, cfg_runs_dir: str | None = None) -> str:
    """Explicit ``tracking.uri`` > ``MLFLOW_TRACKING_URI`` > SQLite under ``runs/`` (never the
    legacy ``./mlruns`` file store)."""
    if uri:
        return str(uri)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    d = runs_dir(cfg_runs_dir)
    d.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{d / 'mlflow.db'}"


def artifact_root(uri: str, cfg_runs_dir: str | None = None) -> str | None:
    """Local SQLite stores keep artifacts beside the database (not in ./mlruns of the cwd)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return None


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """An exclusive lock file beside a SQLite store. Several processes opening a *new* store at
    once race on its schema (``table experiments already exists``, a half-migrated DB); two sweeps
    (or jobs started by hand) can do that even when each sweep initialises the store once."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock = Path(uri[len("sqlite:///"):]).with_suffix(".init.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_server(uri: str, timeout: float = 5.0) -> None:
    """Fail in one line, before any work, when an HTTP tracking server does not answer.

    MLflow's client retries a dead server for minutes and the job would train for nothing;
    checking ``/health`` first makes a down server a clear error at job start."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as resp:
            if resp.status == 200:
                return
            reason = f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc))
    raise ConfigError(f"tracking.uri={uri}: no MLflow server answers ({reason}); start it with "
                      "`make mlflow-server`, or record locally with tracking=mlflow")


def ensure_experiment(uri: str, name: str) -> str:
    """Create the store's tables and the experiment if needed; returns the experiment id.

    Safe to call from many processes at once: the first use of a SQLite store is serialised by
    a lock file (see :func:`_store_lock`); an HTTP server is checked to answer first.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    # MLflow's import sets its loggers to INFO: creating a new store would print two lines on
    # stderr around any one-line error of the job
    for logger in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    check_server(uri)
    if "://" not in uri and not uri.startswith(("file:", "databricks")):
        raise ConfigError(f"tracking.uri={uri}: not an MLflow store URI (expected sqlite:///path.db, "
                          "http://host:port or another backend URI)")
    mlflow.set_tracking_uri(uri)
    try:
        with _store_lock(uri):
            # the first client of a new SQLite store creates and migrates its tables: only here,
            # under the lock, before any other code of this process builds a client
            client = MlflowClient(uri)
            exp = client.get_experiment_by_name(name)
            if exp is not None:
                if exp.tags.get(KIND_TAG) != KIND:  # stores made before the tag existed
                    client.set_experiment_tag(exp.experiment_id, KIND_TAG, KIND)
                write_view(client, exp.experiment_id, tags=exp.tags)  # the UI's landing view, once
                return exp.experiment_id
            try:
                exp_id = client.create_experiment(name, artifact_location=artifact_root(uri),
                                                  tags={KIND_TAG: KIND})
            except Exception:  # another client (a server's other user) created it between lookup and create
                exp = client.get_experiment_by_name(name)
                if exp is None:
                    raise
                return exp.experiment_id
            write_view(client, exp_id, tags={})
            return exp_id
    except ConfigError:
        raise
    except Exception as exc:  # a corrupt or foreign file, an unknown scheme, a read-only folder
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ConfigError(f"tracking.uri={uri}: cannot open the MLflow store ({type(exc).__name__}: {first})") from None
