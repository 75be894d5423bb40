"""PWL curves of Sec. 4.1 (failgeom.problems.pwl): the three distributions, their exact moments,
the per-replica training sets and minibatches."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom.problems import pwl as P
from failgeom.theory.pwl import pwl_inverse, pwl_matrix

EPS64 = np.finfo(np.float64).eps


@settings(deadline=None, max_examples=15)
@given(n=st.integers(9, 120), count=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_code_curves_equal_W_p_exactly(n, count, seed):
    # Sec. 4.1: f = W p. The original code's kink coefficients are integers, so both sides are
    # exact integers in float64 (|f| <= 4 n^2 << 2^53) and must agree bit for bit.
    f, p = P.sample_pwl_curves(np.random.default_rng(seed), count, n, 3, "code")
    np.testing.assert_array_equal(f, p @ pwl_matrix(n, np.float64).T)
    assert ((p != 0).sum(axis=1) == 3).all()


@settings(deadline=None, max_examples=15)
@given(n=st.integers(3, 120), k=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_paper_curves_equal_W_p(n, k, seed):
    # Sec. 4.1 with a_r ~ U[-1, 1]: cumulative sums and the dense product round differently;
    # each f_i sums at most n terms of size <= n |a|, so the gap is below n^2 eps * k.
    f, p = P.sample_pwl_curves(np.random.default_rng(seed), 20, n, k, "paper")
    np.testing.assert_allclose(f, p @ pwl_matrix(n, np.float64).T, rtol=0, atol=4 * k * n * n * EPS64)
    # and U f = p (Lemma 1) to the same tolerance
    np.testing.assert_allclose(f @ pwl_inverse(n, np.float64).T, p, rtol=0, atol=16 * k * n * n * EPS64)


def test_code_distribution_is_the_original_codes():
    # PWL_fail1.py: thetas = 3 + sorted(choice(n - 6, 3, replace=False)), slopes one of four
    # patterns, a = successive differences. Over 20,000 curves at n = 12 (m = 6 positions,
    # 20 subsets) every kink position 3..8 and every pattern occurs, and nothing else does.
    n = 12
    _, p = P.sample_pwl_curves(np.random.default_rng(0), 20_000, n, 3, "code")
    kinks = np.array([np.flatnonzero(row) for row in p])
    assert kinks.min() == 3 and kinks.max() == n - 4
    assert set(map(tuple, kinks)) == set(itertools.combinations(range(3, n - 3), 3))
    slopes = np.cumsum(p[np.arange(len(p))[:, None], kinks], axis=1)  # slope after each kink
    assert set(map(tuple, slopes.astype(int))) == set(map(tuple, P.CODE_SLOPE_PATTERNS.astype(int)))


def test_continuous_kink_curves_match_their_formula():
    f, theta = P.sample_continuous_kink_curves(np.random.default_rng(3), 50, 30, 3)
    assert theta.min() >= 0 and theta.max() <= 30
    x = np.arange(30)
    # f(x) = sum_r a_r [x - theta_r]_+ : slopes change only at the kinks, so the second
    # difference vanishes at every point farther than one step from all kinks
    d2 = f[:, 2:] - 2 * f[:, 1:-1] + f[:, :-2]
    near = np.any(np.abs(x[None, None, 1:-1] - theta[:, :, None]) < 1, axis=1)
    assert np.abs(d2[~near]).max() < 1e-12
    assert (np.abs(d2[near]) > 0).mean() > 0.5


def test_near_kink_mask_covers_the_bend():
    p = np.zeros((1, 10))
    p[0, 5] = 0.7  # f = W p is 0 up to x = 4, bends at x = 4, is 0.7 at x = 5
    f = p @ pwl_matrix(10, np.float64).T
    assert f[0, 4] == 0 and f[0, 5] == pytest.approx(0.7)
    np.testing.assert_array_equal(np.flatnonzero(P.near_kink_mask(p)[0]), [3, 4, 5])


def _enumerated_code_moment(n):
    """E[p p^T] by exact enumeration of every 3-subset and slope pattern (small n only)."""
    total = np.zeros((n, n))
    subsets = list(itertools.combinations(range(3, n - 3), 3))
    for theta in subsets:
        for slopes in P.CODE_SLOPE_PATTERNS:
            p = np.zeros(n)
            p[list(theta)] = np.diff(slopes, prepend=0.0)
            total += np.outer(p, p)
    return total / (len(subsets) * len(P.CODE_SLOPE_PATTERNS))


@pytest.mark.parametrize("n", [9, 10, 13, 17])
def test_code_second_moment_closed_form_equals_enumeration(n):
    # The order-statistic probabilities of code_kink_second_moment against brute force.
    np.testing.assert_allclose(P.code_kink_second_moment(n), _enumerated_code_moment(n), rtol=0, atol=1e-14)


def test_code_second_moment_matches_sampling_at_n_100():
    # The diagonal (each position's kink energy) within 5 standard errors of the mean of p_i^2
    # over 40,000 curves, and the window covariance C = E[F^T F] it implies (Appendix A.6, what
    # the conv learner sees) within 5 standard errors of its sample mean, entrywise.
    count = 40_000
    _, p = P.sample_pwl_curves(np.random.default_rng(7), count, 100, 3, "code")
    exact = P.code_kink_second_moment(100)
    sq = p * p
    mean, se = sq.mean(axis=0), sq.std(axis=0, ddof=1) / np.sqrt(count)
    support = slice(3, 97)
    assert np.all(np.abs(mean[support] - np.diag(exact)[support]) <= 5 * se[support])
    assert np.all(np.diag(exact)[:3] == 0) and np.all(np.diag(exact)[97:] == 0)
    from failgeom.theory.windows import window_covariance_of, window_matrix

    W = pwl_matrix(100, np.float64)
    C = window_covariance_of(W @ exact @ W.T)
    F = window_matrix(p @ W.T)
    per = np.einsum("cta,ctb->cab", F, F)
    mean, se = per.mean(axis=0), per.std(axis=0, ddof=1) / np.sqrt(count)
    assert np.all(np.abs(mean - C) <= 5 * se)


def test_paper_second_moment_is_isotropic():
    np.testing.assert_allclose(P.kink_second_moment_matrix(20, 3, "paper"), np.eye(20) / 20, rtol=1e-15)
    with pytest.raises(ValueError, match="continuous"):
        P.kink_second_moment_matrix(20, 3, "continuous")


def test_training_sets_are_per_replica_and_deterministic():
    rngs = lambda: [np.random.default_rng(s) for s in (1, 2)]  # noqa: E731
    a = P.sample_pwl_data(rngs(), 20, 3, "code", 50, 5)
    b = P.sample_pwl_data(rngs(), 20, 3, "code", 50, 5)
    assert a.train_f.shape == (2, 50, 20) and a.val_near_kink.shape == (2, 5, 20)
    np.testing.assert_array_equal(a.train_f, b.train_f)
    assert not np.array_equal(a.train_f[0], a.train_f[1])
    # replica 0's sets do not depend on how many replicas there are
    c = P.sample_pwl_data(rngs()[:1], 20, 3, "code", 50, 5)
    np.testing.assert_array_equal(c.val_f[0], a.val_f[0])
    assert a.has_kink_vectors
    cont = P.sample_pwl_data(rngs(), 20, 3, "continuous", 10, 5)
    assert not cont.has_kink_vectors and cont.val_near_kink.any()


def test_minibatch_draws_from_each_replicas_own_set():
    f = np.arange(2 * 5 * 4, dtype=float).reshape(2, 5, 4)
    fb, pb = P.minibatch(np.random.default_rng(0), f, -f, 7)
    assert fb.shape == (2, 7, 4)
    for r in range(2):  # every row drawn comes from replica r's own rows
        assert all(any((row == f[r, i]).all() for i in range(5)) for row in fb[r])
    np.testing.assert_array_equal(pb, -fb)


@pytest.mark.parametrize("call, match", [
    (lambda: P.sample_pwl_curves(np.random.default_rng(0), 2, 20, 4, "code"), "k must be 3"),
    (lambda: P.sample_pwl_curves(np.random.default_rng(0), 2, 8, 3, "code"), "n must be at least 9"),
    (lambda: P.sample_pwl_curves(np.random.default_rng(0), 2, 20, 3, "autoencoder"), "distribution"),
    (lambda: P.sample_pwl_curves(np.random.default_rng(0), 2, 20, 3, "continuous"), "continuous"),
    (lambda: P.sample_pwl_data([], 20, 3, "code", 5, 5), "rngs"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
