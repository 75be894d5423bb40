"""Sec. 4, Lemma 1, Lemma 2, Theorem 3: the PWL matrices, the condition number, SGD's mean."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

import failgeom.theory as T
from failgeom.theory import pwl

EPS = np.finfo(np.float64).eps


@settings(deadline=None, max_examples=25)
@given(n=st.integers(1, 300))
def test_lemma1_integer_identity(n):
    # Lemma 1: W U = U W = I exactly in integers.
    W, U = T.pwl_matrix(n), T.pwl_inverse(n)
    assert_array_equal(W @ U, np.eye(n, dtype=np.int64))
    assert_array_equal(U @ W, np.eye(n, dtype=np.int64))


@settings(deadline=None, max_examples=8)
@given(n=st.integers(1, 20))
def test_lemma1_symbolic_inverse_is_banded_u(n):
    assert T.lemma1_holds(n)
    inv = T.symbolic_pwl_inverse(n)
    assert all(inv[i, j] == 0 for i in range(n) for j in range(n) if not 0 <= i - j <= 2)


def test_lemma1_check_detects_a_wrong_inverse(monkeypatch):
    # The check compares entries: a perturbed U must fail it.
    original = pwl.pwl_inverse

    def perturbed(n, dtype=np.int64):
        U = original(n, dtype)
        U[-1, 0] += 1
        return U

    monkeypatch.setattr(pwl, "pwl_inverse", perturbed)
    assert not pwl.lemma1_holds(5)


@settings(deadline=None, max_examples=20)
@given(n=st.integers(1, 200), seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 3))
def test_matrix_free_products_match_dense(n, seed, batch):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, n))
    W, U = T.pwl_matrix(n, np.float64), T.pwl_inverse(n, np.float64)
    scale = float(np.abs(x).sum()) * n * n  # bound on |W x| entries
    assert_allclose(T.pwl_apply(x), x @ W.T, rtol=0, atol=10 * n * EPS * scale)
    assert_allclose(T.pwl_apply_transpose(x), x @ W, rtol=0, atol=10 * n * EPS * scale)
    assert_allclose(T.pwl_inverse_apply(x), x @ U.T, rtol=0, atol=16 * EPS * np.abs(x).max())
    assert_allclose(T.pwl_inverse_apply(T.pwl_apply(x)), x, rtol=0, atol=100 * n * EPS * scale)


@settings(deadline=None, max_examples=10)
@given(n=st.integers(1, 40))
def test_condition_number_methods_agree_small(n):
    # All three methods agree to 1e-6 relative where their ranges overlap.
    ref = T.condition_number(n, "mpmath")
    assert_allclose(T.condition_number(n, "dense"), ref, rtol=1e-6)
    assert_allclose(T.condition_number(n, "structured"), ref, rtol=1e-6)


@settings(deadline=None, max_examples=6)
@given(n=st.integers(41, 700))
def test_condition_number_structured_matches_dense(n):
    assert_allclose(T.condition_number(n, "structured"), T.condition_number(n, "dense"), rtol=1e-6)


def test_condition_number_closed_forms_small():
    # n = 1: W = [1]; n = 2: W^T W = [[5, 2], [2, 1]], eigenvalues 3 +- 2 sqrt(2).
    assert T.condition_number(1, "structured") == pytest.approx(1.0, rel=1e-12)
    exact = (3 + 2 * math.sqrt(2)) / (3 - 2 * math.sqrt(2))
    assert T.condition_number(2, "structured") == pytest.approx(exact, rel=1e-12)


def test_condition_number_is_omega_n_3_5_and_grows_like_n4():
    # Theorem 3, the claim thm3.condition of failgeom/claims (a lower bound); measured: local slopes approach 4.
    ns = np.array([10, 100, 1000, 10**4, 10**5])
    cond = np.array([T.condition_number(int(n)) for n in ns])
    fit = T.fit_exponent(ns, cond)
    assert np.all(np.diff(cond / ns**3.5) > 0)
    assert np.all(fit.local_slopes >= 3.5)
    assert abs(fit.local_slopes[-1] - 4.0) < 1e-3


def test_structured_warns_when_not_converged():
    with pytest.warns(pwl.ConvergenceWarning):
        pwl.pwl_extreme_eigenvalues(500, rtol=1e-300, max_iter=3)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)])
def test_condition_number_rejects_bad_n(bad, exc):
    with pytest.raises(exc, match="n must be a positive integer"):
        T.condition_number(bad)


def test_condition_number_rejects_bad_method():
    with pytest.raises(ValueError, match="method must be one of"):
        T.condition_number(10, "svd")


@settings(deadline=None, max_examples=15)
@given(n=st.integers(1, 25), t=st.integers(0, 60), x=st.floats(0.01, 1.9))
def test_lemma2_closed_form_matches_recursion(n, t, x):
    # Lemma 2's sum, evaluated by SVD, equals the expected-SGD recursion.
    lam = 0.7
    eta = x / (lam * T.pwl_singular_values(n)[0] ** 2)
    E = T.expected_iterate(n, eta, lam, t)
    R = T.expected_iterate_recursion(n, eta, lam, t)
    scale = max(np.abs(R).max(), 1e-300)
    assert np.abs(E - R).max() <= 1e3 * (t + 1) * EPS * max(scale, 1.0)


@settings(deadline=None, max_examples=10)
@given(n=st.integers(2, 60), x=st.floats(0.01, 0.999))
def test_theorem3_iteration_lower_bound(n, x):
    # Theorem 3: t+1 <= S11^2 / (2 Snn^2) implies ||E U_(t+1) - U|| >= 0.5.
    s = T.pwl_singular_values(n)
    t1 = int(math.floor(s[0] ** 2 / (2 * s[-1] ** 2)))
    eta = x / s[0] ** 2
    assert T.expected_error_norm(n, eta, 1.0, t1) >= 0.5
    # and the exact norm formula agrees with the dense spectral norm
    dense = np.linalg.norm(T.expected_iterate(n, eta, 1.0, 7) - T.pwl_inverse(n, np.float64), 2)
    assert T.expected_error_norm(n, eta, 1.0, 7) == pytest.approx(dense, rel=1e-9)


def test_divergence_threshold_is_two_over_lam_s11_squared():
    n, lam, t = 6, 2.0, 3000
    eta_star = T.divergence_threshold(n, lam)
    assert eta_star == pytest.approx(2 * T.paper_step_threshold(n, lam), rel=1e-14)
    u = np.linalg.norm(T.pwl_inverse(n, np.float64), 2)
    assert np.linalg.norm(T.expected_iterate(n, 0.99 * eta_star, lam, t), 2) <= 2 * u
    assert np.linalg.norm(T.expected_iterate(n, 1.01 * eta_star, lam, t), 2) > 1e6 * u


@settings(deadline=None, max_examples=4)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 6))
def test_lemma2_monte_carlo_matches_closed_form(seed, n):
    # Lemma 2 empirically: the replica mean of SGD runs is E U_t within its Bonferroni interval.
    lam, t, R = 1.0, 60, 600
    eta = 0.5 / T.pwl_singular_values(n)[0] ** 2
    mean, se = T.sgd_mean_iterate(n, eta, lam, t, R, seed)
    z = np.abs(mean - T.expected_iterate(n, eta, lam, t)) / se
    assert z.max() <= stats.norm.ppf(1 - 1e-4 / (2 * n * n))


def test_lemma2_monte_carlo_rejects_a_wrong_closed_form():
    # The Monte Carlo check has power: doubling the step in the closed form is detected.
    n, lam, t = 5, 1.0, 60
    eta = 0.25 / T.pwl_singular_values(n)[0] ** 2
    mean, se = T.sgd_mean_iterate(n, eta, lam, t, 600, 1)
    z = np.abs(mean - T.expected_iterate(n, 2 * eta, lam, t)) / se
    assert z.max() > stats.norm.ppf(1 - 1e-4 / (2 * n * n))


def test_sgd_mean_iterate_is_deterministic_given_seed():
    a = T.sgd_mean_iterate(4, 1e-3, 1.0, 5, 3, 11)
    b = T.sgd_mean_iterate(4, 1e-3, 1.0, 5, 3, 11)
    assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="replicas"):
        T.sgd_mean_iterate(4, 1e-3, 1.0, 5, 1, 11)


def test_a_divergent_step_size_is_a_valid_input_while_float64_holds_the_result():
    # eta lam S11^2 = 3 > 2: E U_t diverges (Theorem 3's subject), and the closed form, the
    # recursion and SGD still report it
    n, lam = 4, 1.0
    eta = 3.0 / (lam * T.pwl_singular_values(n)[0] ** 2)
    E = T.expected_iterate(n, eta, lam, 40)
    assert np.abs(E).max() > 1e10  # grows like |1 - 3|^t = 2^t
    assert_allclose(E, T.expected_iterate_recursion(n, eta, lam, 40), rtol=0, atol=1e-13 * np.abs(E).max())
    mean, se = T.sgd_mean_iterate(n, eta, lam, 5, 8, 0)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(se))


@pytest.mark.parametrize("func", [T.expected_iterate, T.expected_iterate_recursion,
                                  lambda n, eta, lam, t: T.sgd_mean_iterate(n, eta, lam, t, 2, 0)])
def test_a_divergent_step_whose_result_overflows_is_refused_naming_eta(func):
    # no inf, nan or RuntimeWarning: one ValueError that names eta and the divergence
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^eta = 1e\+30 with lam = 1 \(eta lam S11\^2 = 1.94e\+31; "
                                             r"E U_t diverges above 2\) gives values beyond float64 at t = 300"):
            func(3, 1e30, 1.0, 300)
