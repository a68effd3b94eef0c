import math

import numpy as np
import pytest
from scipy import stats as sps

from recexp.analysis.stats import holm, mean_ci, paired_t, wilcoxon


def _fixed_pairs(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Per-user-metric-like data: many zeros (misses) and ties, B slightly better than A."""
    rng = np.random.default_rng(7)
    a = np.where(rng.random(n) < 0.6, 0.0, 1.0 / np.log2(rng.integers(0, 10, n) + 2.0))
    b = np.where(rng.random(n) < 0.5, 0.0, 1.0 / np.log2(rng.integers(0, 10, n) + 2.0))
    return a, b


def test_paired_t_agrees_with_scipy():
    a, b = _fixed_pairs()
    ours = paired_t(a, b)
    ref = sps.ttest_rel(b, a)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    d = b - a
    assert ours.effect == pytest.approx(d.mean() / d.std(ddof=1))


def test_wilcoxon_agrees_with_scipy_approx_with_ties_and_zeros():
    a, b = _fixed_pairs()
    ours = wilcoxon(a, b)
    ref = sps.wilcoxon(b, a, zero_method="wilcox", correction=False, method="approx")
    assert ours.statistic == pytest.approx(ref.statistic)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    assert ours.n == int(np.count_nonzero(b - a))


def test_wilcoxon_hand_computed():
    # d = [1, -2, 3, 4] -> ranks 1, 2, 3, 4; W+ = 8, W- = 2; statistic min = 2
    # mean n(n+1)/4 = 5, var n(n+1)(2n+1)/24 = 7.5, z = -3 / sqrt(7.5)
    r = wilcoxon(np.zeros(4), np.array([1.0, -2.0, 3.0, 4.0]))
    assert r.statistic == 2.0
    assert r.p_value == pytest.approx(2 * sps.norm.sf(3 / math.sqrt(7.5)))
    assert r.effect == pytest.approx((8 - 2) / 10)


def test_holm_on_known_p_values():
    # sorted 0.01, 0.02, 0.03, 0.04 with m = 4: 0.04, 0.06, 0.06 (monotone), 0.06 -> max(0.04*1)=0.06
    p = [0.03, 0.01, 0.04, 0.02]
    assert holm(p).tolist() == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.001]).tolist() == pytest.approx([0.001])  # one comparison: unchanged
    out = holm([0.01, math.nan, 0.04])
    assert math.isnan(out[1]) and out[[0, 2]].tolist() == pytest.approx([0.02, 0.04])


def test_mean_ci_is_the_t_interval():
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert h == pytest.approx(sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))
    assert math.isnan(mean_ci([0.5])[1])
