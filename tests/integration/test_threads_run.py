"""A real `recexp train` whose cores get taken mid-run gives threads back at its next epoch."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from recexp.runtime import threads
from tests.faults.helpers import cli_cmd, die_with_parent, env_for

CORES = len(threads.usable_cores())


@pytest.mark.skipif(threads.sample() is None or CORES < 2, reason="needs /proc/stat and 2+ cores")
def test_a_job_started_beside_a_run_takes_threads_from_it(tmp_runs):
    env = env_for(tmp_runs)
    env.pop("OMP_NUM_THREADS", None)  # auto, as a user's shell has it
    # default SASRec on the default synthetic data: epochs of about a second, long enough to measure
    proc = subprocess.Popen(cli_cmd(["model=sasrec", "tracking=none", "trainer.max_epochs=8", "trainer.patience=8",
                                     "device=cpu"]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, preexec_fn=die_with_parent)
    lines, spinners = [], []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("epoch   1 ") and not spinners:  # from now on every core is busy elsewhere
                spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(CORES)]
        proc.wait(timeout=300)
    finally:
        for p in spinners:
            p.kill()
        if proc.poll() is None:
            proc.kill()
        time.sleep(0.1)
    out = "".join(lines)
    assert proc.returncode == 0, out[-2000:]
    start = int(re.search(r"device cpu, (\d+) threads? \(auto: ", out).group(1))
    if start == 1:
        pytest.skip("the machine was busy before the run started: it took one thread, none to give back")
    moved = [int(n) for n in re.findall(r"^from epoch \d+: (\d+) threads? \(auto: ", out, re.M)]
    assert moved and min(moved) < start, out
