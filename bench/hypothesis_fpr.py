"""False-positive rate of the verdict (``recexp.analysis.verdict``) over simulated sweeps with no
effect, and its power for one planted effect. From the repository root::

    PYTHONPATH=src python bench/hypothesis_fpr.py            # about a minute on one core

Each line is one null regime, 4,000 sweeps (binomial s.e. 0.0034 at 0.05), alpha 0.05, smallest
effect 0. ``FPR`` is the rate of calling the null level *supported* for direction ``greater``;
``two-sided`` is the rate of calling it better or worse (supported, direction two-sided). For
comparison, on the same sweeps: ``Wilcoxon`` = what ``recexp compare`` called better/worse from
the per-user Wilcoxon on seed-averaged values (now a labelled secondary statistic), ``Welch df`` =
greater / two-sided rates with the plain per-arm Welch-Satterthwaite df (the rejected alternative).
The simulation is the one the unit tests use (``tests/unit/test_verdict.py``); the vectorised core
is checked against the public ``verdict()`` on the first sweeps of every regime.
"""

from __future__ import annotations

import sys
import time

import numpy as np

sys.path.insert(0, "tests/unit")
from test_verdict import simulate_gauss, simulate_zero_inflated  # noqa: E402

from recexp.analysis.stats import wilcoxon  # noqa: E402
from recexp.analysis.verdict import MIN_SEEDS, Arm, effect_stats, p_values, verdict  # noqa: E402

SWEEPS, ALPHA, CHUNK, CHECKED = 4000, 0.05, 200, 25

G = "120 users"
REGIMES = [  # (label, simulator, keyword arguments)
    ("seed-dominated     3v3 seeds, seed s.d. 0.02/0.02, user s.d. 0.01, " + G, simulate_gauss,
     {"sd_seed": (0.02, 0.02), "sd_user": 0.01}),
    ("user-dominated     3v3 seeds, seed s.d. 0/0, user s.d. 0.08, " + G, simulate_gauss,
     {"sd_seed": (0.0, 0.0), "sd_user": 0.08}),
    ("mixed              3v3 seeds, seed s.d. 0.01/0.01, user s.d. 0.05, " + G, simulate_gauss,
     {"sd_seed": (0.01, 0.01), "sd_user": 0.05}),
    ("unequal seed var   3v3 seeds, seed s.d. 0.005/0.04, user s.d. 0.05, " + G, simulate_gauss,
     {"sd_seed": (0.005, 0.04), "sd_user": 0.05}),
    ("unequal seed var   5v5 seeds, seed s.d. 0.005/0.04, user s.d. 0.05, " + G, simulate_gauss,
     {"seeds": (5, 5), "sd_seed": (0.005, 0.04), "sd_user": 0.05}),
    ("unequal counts     3v5 seeds, seed s.d. 0.01/0.01, user s.d. 0.05, " + G, simulate_gauss,
     {"seeds": (3, 5), "sd_seed": (0.01, 0.01), "sd_user": 0.05}),
    ("unequal counts     5v3 seeds, seed s.d. 0.005/0.04 (3-seed arm noisier), user s.d. 0.05, " + G,
     simulate_gauss, {"seeds": (5, 3), "sd_seed": (0.005, 0.04), "sd_user": 0.05}),
    ("zero-inflated NDCG 3v3 seeds, 5000 users, ~92% zeros, seed spread 0.05/0.4 (grand-mean s.d. ~.0026/.012)",
     simulate_zero_inflated, {"users": 5000, "spread": (0.05, 0.4)}),
    ("zero-inflated NDCG 3v3 seeds, 5000 users, ~92% zeros, seed spread 0.1/0.1", simulate_zero_inflated,
     {"users": 5000, "spread": (0.1, 0.1)}),
    ("one seed per arm   1v1 seeds, seed s.d. 0.01/0.01, user s.d. 0.05, " + G + " (default: no verdict)",
     simulate_gauss, {"seeds": (1, 1), "sd_seed": (0.01, 0.01), "sd_user": 0.05}),
]
POWER = ("power: mixed 3v3 seeds, seed s.d. 0.01, user s.d. 0.05, 120 users, planted +0.03", simulate_gauss,
         {"sd_seed": (0.01, 0.01), "sd_user": 0.05, "effect": 0.03})


def run(simulate, kwargs: dict, seed: int) -> dict[str, float]:
    """Rates over SWEEPS sweeps, simulated and judged CHUNK at a time (vectorised over sweeps)."""
    rng = np.random.default_rng(seed)
    hits = {k: 0 for k in ("greater", "two-sided", "welch greater", "welch two-sided", "wilcoxon", "allowed")}
    for start in range(0, SWEEPS, CHUNK):
        base, level = simulate(rng, CHUNK, **kwargs)
        s = effect_stats(base, level)
        enough = min(base.shape[1], level.shape[1]) >= MIN_SEEDS  # the verdict's rule below 3 seeds
        for d in ("greater", "two-sided"):
            sup = p_values(s["delta"], s["se"], s["df"], d)[0] < ALPHA
            hits[d] += int(sup.sum()) * enough
            hits["allowed"] += int(sup.sum()) * (d == "greater")
            hits[f"welch {d}"] += int((p_values(s["delta"], s["se"], s["df_welch"], d)[0] < ALPHA).sum())
            if start == 0:  # the public function decides the same on the first sweeps
                users = range(base.shape[2])
                for i in range(CHECKED):
                    v = verdict(Arm("b", base[i], users), Arm("l", level[i], users), direction=d, alpha=ALPHA)
                    assert (v.levels[0].verdict == "supported") == bool(sup[i] and enough), (d, i)
        hits["wilcoxon"] += sum(wilcoxon(base[i].mean(0), level[i].mean(0)).p_value < ALPHA for i in range(CHUNK))
    return {k: v / SWEEPS for k, v in hits.items()}


def main() -> None:
    t0 = time.perf_counter()
    print(f"verdict on {SWEEPS} simulated sweeps per regime, alpha {ALPHA}; FPR = rate of 'supported' for "
          "direction greater, two-sided = rate of better/worse (supported, two-sided); Welch df = the plain "
          "per-arm Welch-Satterthwaite df (greater/two-sided); Wilcoxon = the old compare's better/worse")
    for i, (label, simulate, kwargs) in enumerate(REGIMES):
        t = time.perf_counter()
        r = run(simulate, kwargs, seed=100 + i)
        few = f" | allow_few_seeds=True would give {r['allowed']:.3f}" if min(kwargs.get("seeds", (3, 3))) < MIN_SEEDS else ""
        print(f"{label} | Wilcoxon {r['wilcoxon']:.3f} | Welch df {r['welch greater']:.3f}/{r['welch two-sided']:.3f}"
              f"{few} | {time.perf_counter() - t:.0f} s | two-sided {r['two-sided']:.3f} | FPR {r['greater']:.3f}",
              flush=True)
    label, simulate, kwargs = POWER
    r = run(simulate, kwargs, seed=99)
    print(f"{label} | Welch df {r['welch greater']:.3f} | two-sided {r['two-sided']:.3f} | power {r['greater']:.3f}")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
