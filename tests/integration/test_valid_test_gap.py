"""bench/valid_test_gap.py (the issue-31 diagnostic in docs/results.md) re-evaluates a job's
best.pt per user: its means must be the job's own figures, and at test time the query's last item
must be the validation target (the one position where the two splits differ)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.faults.helpers import SMALL, env_for


def _bench():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("valid_test_gap", REPO / "bench" / "valid_test_gap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_transitions_by_hand():
    from recexp.data.seqs import Seqs
    # sequences [3, 1, 2] and [2, 3]: transitions 3->1, 1->2, 2->3; nothing crosses a sequence boundary
    train = Seqs.from_lengths(np.array([1, 2]), np.array([3, 2]), np.array([3, 1, 2, 2, 3]), np.zeros(5))
    codes = _bench().train_transitions(train, num_items=3)
    assert codes.tolist() == sorted([3 * 4 + 1, 1 * 4 + 2, 2 * 4 + 3])


def test_per_user_figures_are_the_jobs_own(tmp_runs):
    job = tmp_runs / "job"
    r = subprocess.run([sys.executable, "-m", "recexp.cli", "train", "model=sasrec", "trainer.max_epochs=2",
                        f"hydra.run.dir={job}", "tracking=none", *SMALL], capture_output=True, text=True,
                       env=env_for(tmp_runs), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    bench = _bench()
    frames = bench.per_user(job)
    metrics = json.loads((job / "metrics.json").read_text())
    for split in ("valid", "test"):
        assert frames[split]["ndcg_10"].mean() == pytest.approx(metrics[f"{split}/ndcg_10"], abs=1e-6)  # float32 sums
    both = frames["valid"].merge(frames["test"], on="user", suffixes=("_v", "_t"))
    assert len(both) == len(frames["test"]) > 0
    assert (both["last_count_t"] == both["target_count_v"]).all()
    skip = frames["test_skip"].merge(frames["valid"], on="user", suffixes=("_s", "_v"))
    assert len(skip) == len(frames["test"])
    assert (skip["last_count_s"] == skip["last_count_v"]).all()  # the validation query ...
    assert (frames["test_skip"]["target_count"] == frames["test"]["target_count"]).all()  # ... the test target
    assert not np.allclose(skip["ndcg_10_s"], skip["ndcg_10_v"])
    _, p, _ = bench.load_job(job, "cpu")
    tr = p.data.train
    pairs = {(int(a), int(b)) for s in range(len(tr)) for a, b in zip(tr.seq(s)[:-1], tr.seq(s)[1:], strict=True)}
    for split in ("valid", "test"):  # the transition flag, recomputed in plain Python
        es = getattr(p.data, split)
        flags = {int(u): (int(es.hist.seq(i)[-1]), int(es.targets[i])) in pairs for i, u in enumerate(es.hist.users)}
        got = dict(zip(frames[split]["user"].tolist(), frames[split]["pair_seen"].tolist(), strict=True))
        assert got == flags and 0 < sum(flags.values()) < len(flags)
    pair = bench.pair_table({"SASRec": frames}).splitlines()
    assert len(pair) == 2 + 3 and pair[3].startswith("| test | SASRec | ")
    table = bench.bucket_table({"SASRec": frames}, "last_count")
    shares = [line for line in table.splitlines() if "| users |" in line]
    assert len(shares) == 3 and all(line.endswith("| 1.000 |") for line in shares)
    assert sum(float(x) for x in shares[0].split("|")[3:9]) == pytest.approx(1.0, abs=0.01)
