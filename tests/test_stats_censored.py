"""Kaplan-Meier quantiles of right-censored times, their bootstrap and local log-log slopes
(failgeom.stats): against scipy.stats.ecdf, against known answers, and censoring never taken
for convergence."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom.stats import (
    bootstrap_quantiles,
    group_quantile,
    kaplan_meier_quantile,
    kaplan_meier_quantiles,
    log_slopes,
    percentile_interval,
    windowed_slopes,
)


@settings(max_examples=40, deadline=None)
@given(R=st.integers(1, 12), seed=st.integers(0, 2**32 - 1), q=st.sampled_from([0.25, 0.5, 0.75]))
def test_vectorized_kaplan_meier_equals_scipy(R, seed, q):
    """Random times with ties (small integers) and random censoring: the vectorized product-limit
    quantile equals the one read off scipy.stats.ecdf, row by row."""
    rng = np.random.default_rng(seed)
    t = rng.integers(1, 6, size=(5, R)).astype(float)
    e = rng.random((5, R)) < 0.6
    fast = kaplan_meier_quantiles(t, e, q)
    slow = [kaplan_meier_quantile(t[i], e[i], q) for i in range(5)]
    np.testing.assert_array_equal(fast, slow)


def test_common_censoring_time_gives_the_order_statistic():
    """Censored at one common limit above every event time, the KM median is the ceil(R/2)-th
    smallest time with censored units counted as +inf; with half or more censored it is not
    observed (inf), never the limit."""
    t = np.array([5.0, 1.0, 3.0, 100.0, 100.0])
    e = np.array([True, True, True, False, False])
    assert kaplan_meier_quantile(t, e) == 5.0  # F = 3/5 at t = 5
    assert kaplan_meier_quantile(t, e, 0.75) == np.inf
    assert kaplan_meier_quantile(t[1:], e[1:]) == 3.0  # 2 of 4 observed: F(3) = 0.5 exactly
    assert kaplan_meier_quantile([100.0] * 3, [False] * 3) == np.inf


def test_early_censoring_raises_the_quantile_estimate():
    """A unit censored early leaves the risk set: the later events carry its weight (KM), so the
    median is larger than if it were dropped from the start at time 0 counted as an event."""
    t = np.array([1.0, 2.0, 3.0, 4.0])
    e = np.array([False, True, True, True])
    # survival: 1 -> (1 - 1/3) at 2 -> (2/3)(1/2) at 3: F(2) = 1/3, F(3) = 2/3
    assert kaplan_meier_quantile(t, e) == 3.0
    assert kaplan_meier_quantile(t, [True] * 4) == 2.0


def test_bootstrap_quantiles_and_groups():
    rng = np.random.default_rng(0)
    t = np.concatenate([np.full(8, 10.0), np.full(8, 50.0)])
    e = np.ones(16, bool)
    groups = np.repeat([0, 1], 8)
    assert group_quantile(t, e, groups=groups) == 10.0
    boot = bootstrap_quantiles(t, e, rng, 200, groups=groups)
    assert np.all(boot == 10.0)
    # one group never observed: the envelope is the other group's
    e2 = e.copy()
    e2[:8] = False
    assert group_quantile(t, e2, groups=groups) == 50.0
    assert np.all(bootstrap_quantiles(t, e2, rng, 50, groups=groups) == 50.0)
    assert np.all(np.isinf(bootstrap_quantiles(t, np.zeros(16, bool), rng, 50)))


def test_percentile_interval_with_infinite_and_undetermined_values():
    v = np.arange(100.0)
    assert percentile_interval(v) == [2.0, 97.0]
    v[-10:] = np.inf
    assert percentile_interval(v)[1] is None
    v = np.arange(100.0)
    v[:10] = np.nan  # undetermined resamples widen both ends
    assert percentile_interval(v) == [None, None]


def test_log_slopes_with_unobserved_points():
    ns = np.array([10.0, 20.0, 40.0])
    np.testing.assert_allclose(log_slopes(ns, 3 * ns**1.7), 1.7)
    assert log_slopes(ns, [1.0, 2.0, np.inf]) == np.inf
    assert log_slopes(ns, [np.inf, 2.0, 3.0]) == -np.inf
    assert np.isnan(log_slopes(ns, [np.inf, 2.0, np.inf]))


def test_windowed_slopes_recover_a_crossover_and_never_fit_a_censored_point():
    """values = n + n^2 / 100: local slopes rise from about 1 toward 2; with replica noise the
    intervals hold the exact local slope of each window; a window holding an unobserved median
    has no slope, and its interval is unbounded above."""
    rng = np.random.default_rng(3)
    ns = np.array([10, 20, 40, 80, 160, 320, 640])
    curve = ns + ns**2 / 100.0
    R = 64
    samples = curve[:, None] * np.exp(0.2 * rng.standard_normal((ns.size, R)))
    observed = np.ones_like(samples, bool)
    point = kaplan_meier_quantiles(samples, observed)
    boot = np.stack([bootstrap_quantiles(samples[i], observed[i], rng, 1000) for i in range(ns.size)], axis=1)
    rows = windowed_slopes(ns, point, boot, window=3)
    exact = [float(log_slopes(ns[j:j + 3], curve[j:j + 3])) for j in range(ns.size - 2)]
    assert exact[0] < 1.3 and exact[-1] > 1.6
    for row, truth in zip(rows, exact):
        assert row["ci"][0] <= truth <= row["ci"][1], (row, truth)
    assert rows[-1]["rise"] is not None and rows[0]["rise"] is None
    # the largest n censored in more than half the replicas: its median is not observed
    observed[-1, : R // 2 + 1] = False
    samples[-1, : R // 2 + 1] = 1e6
    point = kaplan_meier_quantiles(samples, observed)
    boot[:, -1] = bootstrap_quantiles(samples[-1], observed[-1], rng, 1000)
    last = windowed_slopes(ns, point, boot, window=3)[-1]
    assert point[-1] == np.inf and last["slope"] is None and last["ci"][1] is None


@pytest.mark.parametrize("bad, error", [(0.0, ValueError), (1.0, ValueError), (True, TypeError), ("0.5", TypeError)])
def test_bad_quantile(bad, error):
    with pytest.raises(error, match="q must"):
        kaplan_meier_quantile([1.0], [True], bad)
