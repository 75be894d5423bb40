"""The block estimator of a gradient's signal, noise and SNR (failgeom.stats): unbiasedness and
interval coverage on synthetic gradients with a known mean, with acceptance bounds from the
binomial distribution."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from failgeom.stats import block_snr, sample_snr


def synthetic_blocks(rng, mu, scales, G, n, reps):
    """``reps`` data sets of G blocks of n gradients ``g = mu + e`` (e with independent
    coordinates of std ``scales``, centred exponential so that it is skewed); per block the mean
    and the mean squared norm. Returns ``m (reps, G, D)``, ``q (reps, G)``."""
    D = len(mu)
    e = (rng.standard_exponential((reps, G, n, D)) - 1.0) * scales
    g = mu + e
    return g.mean(axis=2), np.mean(np.sum(g * g, axis=3), axis=2)


@settings(deadline=None, max_examples=4)
@given(D=st.integers(1, 6), G=st.integers(3, 12), n=st.integers(1, 5), scale=st.floats(0.0, 1.5),
       seed=st.integers(0, 2**32 - 1))
def test_signal_and_noise_estimates_are_unbiased(D, G, n, scale, seed):
    """Averaged over 2,000 data sets, the signal estimate matches ||mu||^2 and the noise
    tr Cov(g) within 5 standard errors; the plain ||mean||^2 sits tr Cov / (G n) above."""
    rng = np.random.default_rng(seed)
    mu = scale * rng.standard_normal(D)
    scales = rng.uniform(0.2, 2.0, D)
    reps = 2000
    m, q = synthetic_blocks(rng, mu, scales, G, n, reps)
    est = [block_snr(m[i], q[i]) for i in range(reps)]
    signal = np.array([e.signal for e in est])
    noise = np.array([e.noise for e in est])
    naive = np.array([e.naive_signal for e in est])
    trace = float(np.sum(scales**2))
    assert abs(signal.mean() - mu @ mu) < 5 * signal.std() / np.sqrt(reps)
    assert abs(noise.mean() - trace) < 5 * noise.std() / np.sqrt(reps)
    assert abs(naive.mean() - (mu @ mu + trace / (G * n))) < 5 * naive.std() / np.sqrt(reps)


def test_the_estimate_is_the_cross_block_u_statistic():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((7, 3))
    q = rng.uniform(5, 6, 7)
    pairs = [m[b] @ m[c] for b in range(7) for c in range(7) if b != c]
    e = block_snr(m, q)
    assert np.isclose(e.signal, np.mean(pairs), rtol=1e-12)
    assert np.isclose(e.noise, q.mean() - np.mean(pairs), rtol=1e-12)
    assert np.isclose(e.snr, e.signal / e.noise, rtol=1e-12)


# the regimes of the coverage test: (eigenvalue decay of Cov, signal / resolution, direction)
REGIMES = [(decay, ratio, direction) for decay in (0.05, 0.5, 0.95) for ratio in (0.0, 1.0, 10.0, 300.0)
           for direction in (0, 3)]


@settings(deadline=None, max_examples=4)
@given(regime=st.sampled_from(REGIMES), seed=st.integers(0, 2**32 - 1))
def test_interval_coverage(regime, seed):
    """The 95% SNR interval over 3,000 independent data sets (G = 30 Gaussian block means in
    D = 8 dimensions, a covariance of effective rank 1 to 7, the signal from 0 to 300 times the
    resolution, along the top eigenvector or not).

    Acceptance bounds from the binomial: two-sided coverage at least the 0.1% quantile of
    Binomial(3000, 0.93), so an interval that covers 93% fails with probability 0.001 while one
    that covers 90% passes with probability below 0.003 (the interval's measured coverage is
    0.936 to 0.99: at a near-zero signal its lower end is a little liberal, the chi-square-like
    skew of the degenerate U-statistic); and the upper end missing the truth at most the 99.9%
    quantile of Binomial(3000, 0.025), its nominal one-sided rate.
    """
    decay, ratio, direction = regime
    rng = np.random.default_rng(seed)
    G, D, trials = 30, 8, 3000
    lam = decay ** np.arange(D)
    lam /= lam.sum()
    resolution = np.sqrt(2 * np.sum(lam**2)) / G  # std of the signal estimate at mu = 0
    mu = np.zeros(D)
    mu[direction] = np.sqrt(ratio * resolution)
    # q_b = ||m_b||^2 + 2 estimates E||g||^2 = ||mu||^2 + tr Cov(m_b) + 2 without bias
    m = mu + rng.standard_normal((trials, G, D)) * np.sqrt(lam)
    q = np.sum(m * m, axis=2) + 2.0 + 1e-3 * rng.standard_normal((trials, G))
    truth = (mu @ mu) / (lam.sum() + 2.0)
    covered = upper_missed = 0
    for i in range(trials):
        e = block_snr(m[i], q[i])
        covered += e.snr_low <= truth <= e.snr_high
        upper_missed += e.snr_high < truth
    assert covered >= sps.binom.ppf(0.001, trials, 0.93), (regime, covered / trials)
    assert upper_missed <= sps.binom.ppf(0.999, trials, 0.025), (regime, upper_missed / trials)


def test_binomial_bounds_separate_good_and_bad_intervals():
    """The acceptance bound above rejects a 90%-covering interval almost always."""
    trials = 3000
    bound = sps.binom.ppf(0.001, trials, 0.93)
    assert sps.binom.cdf(bound - 1, trials, 0.93) <= 0.001
    assert sps.binom.sf(bound - 1, trials, 0.90) < 0.003


def test_unresolved_noise_gives_an_unbounded_snr():
    e = block_snr(np.zeros((4, 3)), np.zeros(4))
    assert e.snr_low == -np.inf and e.snr_high == np.inf and not e.resolved


def test_resolved_and_unresolved():
    rng = np.random.default_rng(1)
    g = rng.standard_normal((4000, 5))
    unresolved = sample_snr(g, 20)
    assert not unresolved.resolved and unresolved.upper_bound == unresolved.snr_high > 0
    resolved = sample_snr(g + 0.5, 20)
    assert resolved.resolved and resolved.snr_low <= 0.25 / 1.0 <= resolved.snr_high
    d = resolved.to_dict()
    assert d["resolved"] and set(d) >= {"signal", "noise", "snr", "snr_low", "snr_high", "mean_variance"}


@pytest.mark.parametrize("m, q, match", [
    (np.zeros((2, 3)), np.ones(2), "at least 3 blocks"),
    (np.zeros((4, 3)), np.ones(3), "block_second_moments"),
    (np.full((4, 3), np.nan), np.ones(4), "finite"),
])
def test_bad_input(m, q, match):
    with pytest.raises(ValueError, match=match):
        block_snr(m, q)
    with pytest.raises(ValueError, match="level"):
        block_snr(np.zeros((4, 3)), np.ones(4), level=1.5)
    with pytest.raises(ValueError, match="blocks"):
        sample_snr(np.zeros((10, 2)), 2)


def test_mean_interval_is_the_student_t_interval():
    from failgeom.stats import mean_interval

    rng = np.random.default_rng(3)
    values = rng.normal(size=(4, 7))
    mean, lo, hi = mean_interval(values, 0.9)
    half = sps.t.ppf(0.95, 6) * values.std(axis=1, ddof=1) / np.sqrt(7)
    np.testing.assert_allclose(mean, values.mean(axis=1), rtol=1e-15)
    np.testing.assert_allclose(hi - mean, half, rtol=1e-12)
    np.testing.assert_allclose(mean - lo, half, rtol=1e-12)
    m, lo1, hi1 = mean_interval(np.float32([[2.0]]))
    assert m.dtype == np.float32 and m.tolist() == [2.0] and np.isnan(lo1).all() and np.isnan(hi1).all()


@pytest.mark.parametrize("values, level, error, match", [
    (np.zeros((2, 0)), 0.95, ValueError, "last axis"),
    (1.0, 0.95, ValueError, "last axis"),
    (["a", "b"], 0.95, TypeError, "values"),
    ([1.0, 2.0], 1.0, ValueError, "level"),
])
def test_mean_interval_bad_arguments(values, level, error, match):
    from failgeom.stats import mean_interval

    with pytest.raises(error, match=match):
        mean_interval(values, level)


def test_describe_summarises_replicas():
    from failgeom.stats import describe

    v = np.array([1.0, 3.0, np.nan, 2.0])
    assert describe(v[[0, 1, 3]]) == {"mean": 2.0, "std": float(np.std([1.0, 3.0, 2.0])), "min": 1.0, "max": 3.0}
    assert describe(v, finite=True) == describe(v[[0, 1, 3]])
    assert describe([np.nan], finite=True) == {"mean": None, "std": None, "min": None, "max": None}
    assert list(describe([1.0], prefix="acc_")) == ["acc_mean", "acc_std", "acc_min", "acc_max"]
    with pytest.raises(ValueError, match="at least one"):
        describe([])
    with pytest.raises(TypeError, match="prefix"):
        describe([1.0], prefix=1)
    with pytest.raises(TypeError, match="finite"):
        describe([1.0], finite=None)

