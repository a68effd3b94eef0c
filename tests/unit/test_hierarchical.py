"""The hierarchical-bootstrap verdict against cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from recexp.analysis.hierarchical import bootstrap_deltas, compare_levels, welch_df


def sweep(rng: np.random.Generator, effect: float, n_seeds: int = 3, n_users: int = 120,
          sd_seed: float = 0.01, sd_user: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """One simulated sweep: per-user metric = user difficulty (shared by both arms) + arm x user
    noise + seed effect + residual; ``effect`` is the planted difference of the level."""
    user = rng.gamma(0.5, 0.1, size=n_users)

    def arm(mu: float) -> np.ndarray:
        return (mu + user + rng.normal(0, sd_seed, (n_seeds, 1)) + rng.normal(0, sd_user, (1, n_users))
                + rng.normal(0, sd_user, (n_seeds, n_users)))

    return arm(0.0), arm(effect)


@pytest.mark.parametrize("sd_seed,sd_user", [(0.02, 0.01), (0.0, 0.08), (0.01, 0.05)],
                         ids=["seed-dominated", "user-dominated", "mixed"])
def test_false_positive_rate_near_alpha(sd_seed: float, sd_user: float) -> None:
    rng = np.random.default_rng(7)
    n, alpha = 400, 0.05
    hits = 0
    for i in range(n):
        base, level = sweep(rng, 0.0, sd_seed=sd_seed, sd_user=sd_user)
        hits += compare_levels(base, {"x": level}, "greater", alpha, 0.0, n_boot=200, seed=i)[0].verdict == "supported"
    rate = hits / n
    # binomial SE at alpha=.05, n=400 is 0.011: the band is about +-2.5 SE
    assert 0.02 <= rate <= 0.08, rate


def test_planted_effect_is_found_and_a_null_is_not() -> None:
    rng = np.random.default_rng(3)
    base, level = sweep(rng, 0.05)
    _, null = sweep(rng, 0.0)
    out = compare_levels(base, {"planted": level, "null": null[:, :]}, "greater", 0.05, 0.01, n_boot=1000)
    assert [e.verdict for e in out] == ["supported", "inconclusive"] or out[1].verdict == "refuted"
    assert out[0].lo > 0.01 and out[0].lo < 0.05 < out[0].hi


def test_an_effect_smaller_than_what_matters_is_refuted() -> None:
    rng = np.random.default_rng(4)
    base, level = sweep(rng, 0.0, n_seeds=5, n_users=2000, sd_seed=0.001, sd_user=0.01)
    e = compare_levels(base, {"x": level}, "greater", 0.05, 0.01, n_boot=500)[0]
    assert e.verdict == "refuted" and e.hi < 0.01


def test_two_sided_finds_a_negative_effect_and_less_mirrors_greater() -> None:
    rng = np.random.default_rng(5)
    base, level = sweep(rng, -0.05)
    assert compare_levels(base, {"x": level}, "two-sided", 0.05, 0.01)[0].verdict == "supported"
    assert compare_levels(base, {"x": level}, "less", 0.05, 0.01)[0].verdict == "supported"
    assert compare_levels(base, {"x": level}, "greater", 0.05, 0.01)[0].verdict == "refuted"


def test_below_three_seeds_no_verdict_unless_allowed() -> None:
    rng = np.random.default_rng(6)
    base, level = sweep(rng, 0.1, n_seeds=2, sd_seed=0.001)
    e = compare_levels(base, {"x": level}, "greater", 0.05, 0.0)[0]
    assert e.verdict == "inconclusive" and "2 seed" in e.reason
    assert compare_levels(base, {"x": level}, "greater", 0.05, 0.0, allow_few_seeds=True)[0].verdict == "supported"


def test_holm_makes_many_levels_harder() -> None:
    rng = np.random.default_rng(8)
    base, level = sweep(rng, 0.02, sd_seed=0.005)
    one = compare_levels(base, {"a": level}, "greater", 0.05, 0.0)[0]
    many = compare_levels(base, {"a": level, **{f"n{i}": sweep(rng, 0.0)[1] for i in range(5)}}, "greater", 0.05, 0.0)[0]
    assert many.p_supported >= one.p_supported
    assert (many.hi - many.lo) > (one.hi - one.lo)  # the interval is at the corrected level


def test_bootstrap_variance_matches_the_true_sampling_variance() -> None:
    """Across simulated sweeps, the mean bootstrap variance is close to the variance of the
    estimate itself (neither stage double-counts the cell noise)."""
    rng = np.random.default_rng(9)
    for sd_seed, sd_user in ((0.02, 0.01), (0.0, 0.08), (0.01, 0.05)):
        est, var = [], []
        for _ in range(300):
            base, level = sweep(rng, 0.0, sd_seed=sd_seed, sd_user=sd_user)
            est.append(level.mean() - base.mean())
            var.append(np.var(bootstrap_deltas(base, level, 300, rng), ddof=1))
        assert np.mean(var) == pytest.approx(np.var(est), rel=0.25), (sd_seed, sd_user)


def test_welch_df_limits() -> None:
    assert welch_df(1.0, 4, 0.0, 100) == pytest.approx(4)
    assert welch_df(0.0, 4, 1.0, 100) == pytest.approx(100)
