"""`recexp ui` / `make ui`: the MLflow UI over the project's store on 127.0.0.1, and the address of
the landing page (:mod:`recexp.record.ui_view`) of the experiment trained last."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from recexp.errors import ConfigError
from recexp.record.store import artifact_root, ensure_experiment
from recexp.record.ui_view import landing_url, last_trained, ui_base, write_view

HOST = "127.0.0.1"


def landing(uri: str, base: str, experiment: str | None = None) -> str:
    """The landing URL for store ``uri``: experiment ``experiment`` (a name), else the one whose
    run started last; its landing view is written if it has none yet (stores from before it)."""
    from mlflow.tracking import MlflowClient

    if experiment is not None:
        return landing_url(base, ensure_experiment(uri, experiment))
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        return landing_url(base, None)  # no store yet: the experiments list (a client would create one)
    client = MlflowClient(uri)
    exp_id = last_trained(client)
    if exp_id is not None and exp_id != "0":
        write_view(client, exp_id)
    return landing_url(base, exp_id)


def command(uri: str, port: int) -> list[str]:
    """``mlflow server`` on 127.0.0.1 over ``uri``, one worker (the UI needs no more)."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", HOST,
           "--port", str(port), "--workers", "1"]
    root = artifact_root(uri)
    if root:  # the Default experiment's artifacts beside the store too, never ./mlartifacts of the cwd
        cmd += ["--default-artifact-root", root]
    return cmd


def wait_healthy(base: str, proc: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    """Until ``/health`` answers; a server that exits first is one line naming its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
            raise ConfigError(f"the MLflow UI exited with status {proc.returncode} ({' '.join(tail)[:200]}; "
                              f"log: {log})")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ConfigError(f"the MLflow UI did not answer on {base} within {timeout:.0f} s (log: {log})")


def start(uri: str, port: int, log: Path) -> subprocess.Popen:
    """The server, its output (uvicorn's request lines) in ``log``, GenAI job workers off."""
    if not uri.startswith(("sqlite:", "postgresql", "mysql", "mssql", "file:")):
        raise ConfigError(f"--uri {uri}: `recexp ui` serves a store; {uri} is a server already: open it there")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # browsing runs needs no job runner
    with log.open("ab") as fh:
        return subprocess.Popen(command(uri, port), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)


def base_for(port: int) -> str:
    return ui_base(None, port)
