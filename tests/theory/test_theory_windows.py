"""Sec. 4.1.2-4.1.3 and Appendix A.6: window covariance, its growth, the preconditioner."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import failgeom.theory as T
import failgeom.theory.windows as TW
from failgeom.problems.pwl import sample_pwl_curves


def test_window_matrix_conventions():
    f = np.arange(1.0, 6.0)
    assert_array_equal(T.window_matrix(f, "valid"), [[1, 2, 3], [2, 3, 4], [3, 4, 5]])
    zero = T.window_matrix(f, "zero")
    assert zero.shape == (5, 3)
    assert_array_equal(zero[0], [0, 1, 2])
    assert_array_equal(zero[-1], [4, 5, 0])
    with pytest.raises(ValueError, match="padding"):
        T.window_matrix(f, "same")


@settings(deadline=None, max_examples=20)
@given(n=st.integers(3, 40), padding=st.sampled_from(["valid", "zero"]))
def test_window_gram_matches_brute_force(n, padding):
    # E[F^T F] = lam * sum_t G[t+a-1, t+b-1] with G = W W^T: closed-form sums vs explicit windows.
    W = T.pwl_matrix(n)
    # column j of W is the curve of a unit kink at j; sum over kinks of F_j^T F_j = sum_t G-windows
    F = T.window_matrix(W.T, padding)  # (n kinks, rows, 3)
    brute = np.einsum("jta,jtb->ab", F, F)
    assert_array_equal(np.array(T.window_gram_integer(n, padding)), brute)


@settings(deadline=None, max_examples=5)
@given(seed=st.integers(0, 2**32 - 1))
def test_window_covariance_matches_sampling(seed):
    # The exact C agrees with the sample mean of F^T F (entrywise, 5 standard errors).
    rng = np.random.default_rng(seed)
    n, count = 30, 20000
    f, _ = sample_pwl_curves(rng, count, n)
    F = T.window_matrix(f)
    per = np.einsum("cta,ctb->cab", F, F)
    mean, se = per.mean(axis=0), per.std(axis=0, ddof=1) / np.sqrt(count)
    assert np.all(np.abs(mean - T.window_covariance(n)) <= 5 * se)


def test_kink_second_moment_is_isotropic():
    # E[p p^T] = lam I for the paper's distribution: exact enumeration for a small case.
    rng = np.random.default_rng(0)
    count = 200000
    _, p = sample_pwl_curves(rng, count, 8, 3)
    prods = p[:, :, None] * p[:, None, :]
    mean, se = prods.mean(axis=0), prods.std(axis=0, ddof=1) / np.sqrt(count)
    target = T.kink_second_moment(8, 3) * np.eye(8)
    assert np.all(np.abs(mean - target) <= 5 * se)


def test_window_condition_grows_like_n_cubed():
    # Appendix A.6: Theta(n^3) for valid windows; cond/n^3 -> 3/2.
    ns = [100, 1000, 10**4, 10**5]
    cond = np.array([T.window_condition_number(n) for n in ns])
    fit = T.fit_exponent(ns, cond)
    assert abs(fit.local_slopes[-1] - 3) < 1e-3
    assert cond[-1] / 1e15 == pytest.approx(1.5, rel=1e-3)


def test_window_condition_with_zero_padding_grows_like_n_squared():
    # The right-edge zero breaks the second-difference direction: only n^2.
    ns = [1000, 10**4, 10**5]
    fit = T.fit_exponent(ns, [T.window_condition_number(n, "zero") for n in ns])
    assert abs(fit.exponent - 2) < 1e-2


@settings(deadline=None, max_examples=5)
@given(n=st.integers(5, 60))
def test_window_condition_matches_float_eigenvalues(n):
    C = T.window_covariance(n)
    assert T.window_condition_number(n) == pytest.approx(np.linalg.cond(C), rel=1e-6)


@settings(deadline=None, max_examples=4)
@given(seed=st.integers(0, 2**32 - 1))
def test_preconditioned_condition_number_near_one(seed):
    # Sec. 4.1.3: with C_hat from 2e4 curves, F C_hat^{-1/2} has condition number < 1.05.
    rng = np.random.default_rng(seed)
    f, _ = sample_pwl_curves(rng, 20000, 100)
    kappa = T.preconditioned_condition_number(T.empirical_window_covariance(f), T.window_covariance(100))
    assert 1.0 <= kappa < 1.05


def test_preconditioned_condition_number_of_exact_is_one():
    C = T.window_covariance(50)
    assert T.preconditioned_condition_number(C, C) == pytest.approx(1.0, abs=1e-6)
    assert T.preconditioned_condition_number(np.eye(3), C) == pytest.approx(np.linalg.cond(C), rel=1e-9)


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(9, 50), dist=st.sampled_from(["paper", "code"]))
def test_sampled_curves_are_w_p(seed, n, dist):
    rng = np.random.default_rng(seed)
    f, p = sample_pwl_curves(rng, 7, n, 3, dist)
    assert_allclose(f, p @ T.pwl_matrix(n, np.float64).T, atol=1e-12 * n * n)
    assert np.all(np.count_nonzero(p, axis=1) <= 3)
    if dist == "code":
        kinks = [np.flatnonzero(row) for row in p]
        assert all(k.min() >= 3 and k.max() <= n - 4 for k in kinks)
        slopes = np.cumsum(p, axis=1)[:, -1]
        assert set(np.round(slopes).astype(int)) <= {1, -1, 2}


def test_sample_pwl_curves_is_deterministic_and_validates():
    a = sample_pwl_curves(np.random.default_rng(3), 4)
    b = sample_pwl_curves(np.random.default_rng(3), 4)
    assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="k must be 3"):
        sample_pwl_curves(np.random.default_rng(0), 2, 20, 4, "code")
    with pytest.raises(ValueError, match="distribution"):
        sample_pwl_curves(np.random.default_rng(0), 2, 20, 3, "autoencoder")
    with pytest.raises(TypeError, match="rng"):
        sample_pwl_curves(0, 2)


@settings(deadline=None, max_examples=10)
@given(n=st.integers(3, 40), padding=st.sampled_from(["valid", "zero"]), seed=st.integers(0, 2**32 - 1))
def test_window_covariance_of_any_second_moment_matches_the_windows(n, padding, seed):
    # E[F^T F] for E[f f^T] = G: with G = A A^T, the columns of A are curves whose windows' Gram
    # sum is exactly C (the definition, computed from explicit windows).
    A = np.random.default_rng(seed).standard_normal((n, n))
    F = T.window_matrix(A.T, padding)  # windows of each column: (n, rows, 3)
    assert_allclose(TW.window_covariance_of(A @ A.T, padding), np.einsum("jta,jtb->ab", F, F),
                    rtol=1e-12, atol=1e-12 * n * n)


@pytest.mark.parametrize("padding", ["valid", "zero"])
def test_window_covariance_of_isotropic_kinks_is_the_integer_closed_form(padding):
    n, k = 50, 3
    W = T.pwl_matrix(n, np.float64)
    lam = T.kink_second_moment(n, k)
    assert_allclose(TW.window_covariance_of(lam * W @ W.T, padding), T.window_covariance(n, k, "paper", padding),
                    rtol=1e-13)


def test_empirical_window_covariance_keeps_leading_axes():
    f, _ = sample_pwl_curves(np.random.default_rng(2), 60, 12)
    batched = T.empirical_window_covariance(f.reshape(3, 20, 12))
    assert batched.shape == (3, 3, 3)
    for r in range(3):
        assert_allclose(batched[r], T.empirical_window_covariance(f[20 * r:20 * (r + 1)]), rtol=1e-14)
    with pytest.raises(ValueError, match="count, n"):
        T.empirical_window_covariance(np.ones(5))


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 8))
def test_jacobi_condition_number_ignores_diagonal_scaling(seed, d):
    # cond(D^{-1/2} H D^{-1/2}) depends on H only up to a diagonal rescaling H -> S H S: the
    # quantity that bounds what a per-coordinate method (Adam, AdaGrad) can do (talk, part 1).
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d))
    H = A @ A.T + 0.1 * np.eye(d)
    S = np.diag(np.exp(rng.uniform(-3, 3, size=d)))
    assert TW.jacobi_condition_number(S @ H @ S) == pytest.approx(TW.jacobi_condition_number(H), rel=1e-8)
    # and it is at most d times the best diagonal rescaling's (van der Sluis): in particular
    # a diagonal H is perfectly conditioned after it
    assert TW.jacobi_condition_number(np.diag(np.exp(rng.uniform(-5, 5, size=d)))) == pytest.approx(1.0)
    assert TW.spd_condition_number(H) == pytest.approx(np.linalg.cond(H), rel=1e-8)


def test_condition_numbers_on_the_range_of_a_singular_matrix():
    # E[f f^T] of the original code's curves has rank n - 6; conditioned on its range with rank.
    H = np.diag([4.0, 2.0, 1.0, 0.0])
    assert TW.spd_condition_number(H, rank=3) == 4.0
    with pytest.raises(ValueError, match="non-positive"):
        TW.spd_condition_number(H)
    # a zero coordinate is left out of the Jacobi rescaling
    assert TW.jacobi_condition_number(H, rank=3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rank"):
        TW.spd_condition_number(H, rank=5)
