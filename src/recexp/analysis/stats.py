"""Significance tests for paired per-user metrics, multiple-comparison correction, and CIs.

The formulas are written out (vectorised numpy, distributions from ``scipy.stats``) so that what
``recexp compare`` reports is visible here; ``tests/unit/test_stats.py`` checks them against
``scipy.stats.ttest_rel`` / ``wilcoxon`` on fixed data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float  # two-sided
    n: int  # pairs used (Wilcoxon: non-zero differences)
    effect: float  # paired t: Cohen's d_z; Wilcoxon: matched-pairs rank-biserial r in [-1, 1]


def mean_ci(values: np.ndarray | list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval (nan half-width for n < 2)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, math.nan
    sem = float(x.std(ddof=1)) / math.sqrt(len(x))
    return m, float(sps.t.ppf(0.5 + level / 2, len(x) - 1)) * sem


def paired_t(a: np.ndarray, b: np.ndarray) -> TestResult:
    """Paired t-test of ``b - a`` (two-sided). Effect size: d_z = mean(d) / sd(d)."""
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    n = len(d)
    if n < 2:
        return TestResult(math.nan, math.nan, n, math.nan)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:  # identical differences: no variance to test against
        return TestResult(math.nan, 1.0 if mean == 0 else 0.0, n, 0.0 if mean == 0 else math.copysign(math.inf, mean))
    t = mean / (sd / math.sqrt(n))
    return TestResult(t, float(2 * sps.t.sf(abs(t), n - 1)), n, mean / sd)


def wilcoxon(a: np.ndarray, b: np.ndarray) -> TestResult:
    """Wilcoxon signed-rank test of ``b - a``, two-sided, normal approximation with tie
    correction, zero differences dropped (Wilcoxon's convention; ``scipy.stats.wilcoxon`` with
    ``method="approx"``). Per-user ranking metrics have many ties (misses score 0), and hundreds
    of users, where the approximation is accurate. Statistic: min(W+, W-)."""
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return TestResult(math.nan, 1.0, 0, 0.0)
    r = sps.rankdata(np.abs(d))  # average ranks for ties
    w_plus, w_minus = float(r[d > 0].sum()), float(r[d < 0].sum())
    _, counts = np.unique(r, return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - float((counts**3 - counts).sum()) / 48
    stat = min(w_plus, w_minus)
    z = (stat - n * (n + 1) / 4) / math.sqrt(var) if var > 0 else 0.0
    p = float(min(1.0, 2 * sps.norm.sf(abs(z))))
    return TestResult(stat, p, n, (w_plus - w_minus) / (w_plus + w_minus))


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (same order as the input; nan stays nan).

    Sorted ascending p_(1..m): adj_(i) = max_{j<=i} min(1, (m - j + 1) p_(j)).
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out
