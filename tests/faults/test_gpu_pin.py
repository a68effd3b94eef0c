"""Local parallel jobs claim distinct GPUs; claims end with the process."""

from __future__ import annotations

import subprocess
import sys

from recexp.runtime.gpu_pin import pinned_device

CLAIM = ("import sys; from pathlib import Path; from recexp.runtime.gpu_pin import claim_gpu; "
         "print(claim_gpu(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])), flush=True); sys.stdin.read()")


def test_concurrent_workers_get_distinct_gpus(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM, "3", "7", str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    got = [int(p.stdout.readline()) for p in procs]
    for p in procs:
        p.communicate("")
    assert sorted(got) == [0, 1, 1, 2]
    # the claims died with their processes: a new worker gets device 0 again
    out = subprocess.run([sys.executable, "-c", CLAIM, "3", "7", str(tmp_path)], input="", capture_output=True,
                         text=True)
    assert out.stdout.strip() == "0"


def test_explicit_device_is_kept():
    assert pinned_device("cpu", 3) == "cpu"
    assert pinned_device("cuda:1", 3) == "cuda:1"
