"""False-positive rate of the hypothesis verdict over simulated sweeps with no effect
(docs/hypotheses.md). From the repository root: ``PYTHONPATH=src python bench/hypothesis_fpr.py``."""

from __future__ import annotations

import sys

import numpy as np

sys.path.insert(0, "tests/unit")
from test_hierarchical import sweep  # noqa: E402  (the simulation the unit test uses)

from recexp.analysis.hierarchical import compare_levels  # noqa: E402

for sd_seed, sd_user in [(0.02, 0.01), (0.0, 0.08), (0.01, 0.05)]:
    rng = np.random.default_rng(7)
    n = 400
    hits = 0
    for i in range(n):
        base, level = sweep(rng, 0.0, sd_seed=sd_seed, sd_user=sd_user)
        hits += compare_levels(base, {"x": level}, "greater", 0.05, 0.0, n_boot=200, seed=i)[0].verdict == "supported"
    print(f"sd_seed={sd_seed} sd_user={sd_user}: false-positive rate {hits / n:.3f} over {n} simulated sweeps "
          "(3 seeds x 120 users, alpha 0.05)")
