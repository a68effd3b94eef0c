"""Running the real CLI in subprocesses against an isolated store, and reading the store back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from recexp.record.store import tracking_uri

# tiny synthetic data, one epoch: these tests are about the runs, not the numbers
SMALL = ["dataset.generator.num_users=150", "dataset.generator.num_items=80", "dataset.generator.mean_length=8",
         "trainer.max_epochs=1", "trainer.progress=false", "max_len=8", "device=cpu",
         "model.hidden_size=16", "model.ffn_dim=32", "trainer.min_steps_per_epoch=0"]


def env_for(runs: Path) -> dict[str, str]:
    env = {**os.environ, "RECEXP_RUNS_DIR": str(runs), "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RECEXP_PARENT_RUN_ID", None)
    env.pop("RECEXP_SWEEP_ID", None)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def cli_cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "recexp.cli", "train", *args]


def cli(args: list[str], runs: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(args), capture_output=True, text=True, env=env_for(runs), timeout=timeout)


def all_runs(runs: Path, uri: str | None = None):
    client = MlflowClient(uri or tracking_uri(None, str(runs)))
    exps = client.search_experiments()
    return client, client.search_runs([e.experiment_id for e in exps], max_results=5000)


def split_runs(runs_list):
    parents = [r for r in runs_list if r.data.tags.get("recexp.role") == "sweep"]
    jobs = [r for r in runs_list if r.data.tags.get("recexp.role") != "sweep"]
    return parents, jobs


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL if the test process dies (a timed-out pytest leaves no
    orphan training job behind)."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
