"""Pure rules of resuming: what the config hash ignores, when a RUNNING run counts as dead."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from recexp.config.hashing import config_hash
from recexp.record.resume import is_stale

BASE = {"seed": 1, "trainer": {"lr": 0.001, "progress": True}, "paths": {"runs_dir": "/a"},
        "tracking": {"uri": None}, "model": {"hidden_size": 64}}


def test_hash_ignores_where_outputs_go_but_not_what_is_computed():
    moved = {**BASE, "paths": {"runs_dir": "/b"}, "tracking": {"uri": "http://x"},
             "trainer": {"lr": 0.001, "progress": False}}
    assert config_hash(moved) == config_hash(BASE)
    assert config_hash({**BASE, "trainer": {"lr": 0.01, "progress": True}}) != config_hash(BASE)
    assert config_hash({**BASE, "seed": 2}) != config_hash(BASE)


def test_stale_on_this_host_means_the_process_is_gone(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = {"recexp.host": socket.gethostname(), "recexp.heartbeat": f"{time.time():.0f}"}
    assert is_stale({**here, "recexp.pid": str(dead.pid)}, 1800)
    assert not is_stale({**here, "recexp.pid": str(os.getpid())}, 1800)


def test_stale_elsewhere_means_no_recent_heartbeat(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    other = {"recexp.host": "another-node", "recexp.pid": "1"}
    assert not is_stale({**other, "recexp.heartbeat": f"{time.time() - 60:.0f}"}, 1800)
    assert is_stale({**other, "recexp.heartbeat": f"{time.time() - 3600:.0f}"}, 1800)


def test_a_requeued_scheduler_job_takes_over_its_own_run(monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    tags = {"recexp.host": "another-node", "recexp.pid": "1", "recexp.heartbeat": f"{time.time():.0f}"}
    assert is_stale({**tags, "recexp.scheduler_job": "77_3"}, 1800)
    assert not is_stale({**tags, "recexp.scheduler_job": "77_4"}, 1800)
