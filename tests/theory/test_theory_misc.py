"""Sec. 3.3 (stocks), Appendix A.5 (GD on regression), A.7 (forward-only), fit_exponent."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import failgeom.theory as T

EPS = np.finfo(np.float64).eps


# ---- fit_exponent -------------------------------------------------------------------------


@settings(deadline=None, max_examples=20)
@given(a=st.floats(-3, 5), c=st.floats(1e-3, 1e3), k=st.integers(3, 12))
def test_fit_exponent_recovers_exact_power_law(a, c, k):
    ns = np.geomspace(10, 1e5, k)
    fit = T.fit_exponent(ns, c * ns**a)
    assert fit.exponent == pytest.approx(a, abs=1e-9)
    assert fit.prefactor == pytest.approx(c, rel=1e-8)
    assert_allclose(fit.local_slopes, a, atol=1e-9)
    assert fit.ci95[0] <= a + 1e-9 and fit.ci95[1] >= a - 1e-9


def test_fit_exponent_interval_covers_noisy_truth():
    rng = np.random.default_rng(0)
    ns = np.geomspace(10, 1e4, 30)
    hits = 0
    for _ in range(200):
        vals = 2.0 * ns**1.5 * np.exp(0.1 * rng.standard_normal(ns.size))
        lo, hi = T.fit_exponent(ns, vals).ci95
        hits += lo <= 1.5 <= hi
    assert 180 <= hits <= 200  # nominal 95%: 190 expected, binomial sd ~3


def test_exponent_fit_to_dict_in_json_types():
    import json

    fit = T.fit_exponent([4, 2, 8], [16.0, 4.0, 64.0])
    d = fit.to_dict()
    assert list(d) == ["exponent", "stderr", "ci95", "prefactor", "local_slopes", "ns", "values"]
    assert d["ns"] == [2.0, 4.0, 8.0] and d["values"] == [4.0, 16.0, 64.0] and d["ci95"] == list(fit.ci95)
    assert d["exponent"] == fit.exponent and d["local_slopes"] == fit.local_slopes.tolist()
    r = T.fit_exponential_rate([0.0, 1.0, 2.0], np.exp([0.0, -0.5, -1.0])).to_dict(rate=True)
    assert list(r) == ["rate", "stderr", "ci95", "local_rates"]
    assert r["rate"] == pytest.approx(-0.5) and r["local_rates"] == pytest.approx([-0.5, -0.5])
    json.dumps([d, r])
    with pytest.raises(TypeError, match="rate"):
        fit.to_dict(rate="yes")


@pytest.mark.parametrize("ns, vals, msg", [
    ([1, 2], [1, 2], "at least 3"),
    ([1, 2, 3], [1, 0, 2], "values must be positive"),
    ([1, -2, 3], [1, 1, 2], "ns must be positive"),
    ([1, 2, 3], [1, 2], "same length"),
])
def test_fit_exponent_validates(ns, vals, msg):
    with pytest.raises(ValueError, match=msg):
        T.fit_exponent(ns, vals)


def test_fit_exponential_rate():
    xs = np.arange(1.0, 8.0)
    fit = T.fit_exponential_rate(xs, 3.0 * np.exp(-0.7 * xs))
    assert fit.exponent == pytest.approx(-0.7, abs=1e-10)
    assert fit.prefactor == pytest.approx(3.0, rel=1e-9)


# ---- Sec. 3.3 stocks ------------------------------------------------------------------------


@settings(deadline=None, max_examples=10)
@given(k=st.integers(2, 300), d=st.integers(1, 50), bias=st.booleans(), seed=st.integers(0, 2**32 - 1),
       scale=st.floats(0.0, 3.0))
def test_stocks_end_to_end_second_moment_is_at_least_the_decomposition(k, d, bias, seed, scale):
    # Sec. 3.3: E||g_e2e||^2 = E sum_i ||G_i||^2 >= E||G_y||^2 = E||g_dec||^2 at any weights, and both
    # are at least ||grad L||^2 (they are unbiased for it): ratio >= 1, nu^2 >= 0 up to rounding.
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=d)
    m = T.stocks_second_moments(scale * rng.standard_normal((d, k)), scale * rng.standard_normal(k) if bias else None,
                                labels)
    assert m.ratio >= 1 - 1e-12
    assert m.nu2_end_to_end >= m.nu2_decomposition >= -8 * EPS * m.decomposition


@settings(deadline=None, max_examples=10)
@given(k=st.integers(2, 300), d=st.integers(1, 50), seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-4, 1e-2))
def test_stocks_ratio_is_about_k_near_initialisation(k, d, seed, scale):
    # Sec. 3.3: near initialisation the ratio is about k; with logits of size s it is k (1 + O(s))
    # (at exactly W = 0 it is k by symmetry). A moment formula with the cross terms of z kept, or
    # without the squared softmax, would be off by a factor of order k or 1/k.
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=d)
    m = T.stocks_second_moments(scale * rng.standard_normal((d, k)), np.zeros(k), labels)
    assert m.ratio / k == pytest.approx(1.0, abs=20 * scale)


@settings(deadline=None, max_examples=5)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 12), bias=st.booleans())
def test_stocks_moments_match_monte_carlo(seed, k, bias):
    rng = np.random.default_rng(seed)
    d = 20
    W = rng.standard_normal((d, k))
    b = rng.standard_normal(k) if bias else None
    labels = rng.integers(0, k, size=d)
    exact = T.stocks_second_moments(W, b, labels)
    for est, target in (("end_to_end", exact.end_to_end), ("decomposition", exact.decomposition)):
        g = T.stocks_gradient_norms(W, b, labels, rng, 100000, est)
        assert abs(g.mean() - target) <= 5 * g.std(ddof=1) / math.sqrt(g.size)


def test_stocks_mean_gradient_matches_brute_force():
    # ||grad L||^2 against a dense per-input Jacobian computation.
    rng = np.random.default_rng(0)
    d, k = 6, 4
    W, b = rng.standard_normal((d, k)), rng.standard_normal(k)
    labels = rng.integers(0, k, size=d)
    gW, gb = np.zeros((d, k)), np.zeros(k)
    for a in range(d):
        z = W[a] + b
        N = np.exp(z - z.max())
        N /= N.sum()
        J = np.diag(N) - np.outer(N, N)
        gW[a] -= J[labels[a]] / d
        gb -= J[labels[a]] / d
    exact = T.stocks_second_moments(W, b, labels)
    assert exact.grad_norm_sq == pytest.approx(np.sum(gW**2) + np.sum(gb**2), rel=1e-12)


def test_ghadimi_lan_iterations_grow_with_the_gradient_noise():
    # Sec. 3.3 uses Ghadimi-Lan's count nu^2/eps^2 for the claim that k times the noise costs k times
    # the iterations. On f(x) = x^2/2 with gradient noise of variance nu^2, SGD with the step
    # eps/nu^2 (the one that keeps E f'(x)^2 near eps) needs iterations in proportion to nu^2: the
    # measured counts follow ghadimi_lan_iterations' ratio (4 and 16), within the replica noise.
    rng = np.random.default_rng(0)
    eps, R = 0.05, 400

    def iterations(nu2):
        x = np.full(R, 2.0)
        eta = eps / nu2
        for t in range(1, 200_000):
            x -= eta * (x + np.sqrt(nu2) * rng.standard_normal(R))
            if np.mean(x * x) <= 2 * eps:
                return t
        raise AssertionError("SGD did not reach the target")

    base = iterations(1.0)
    for nu2 in (4.0, 16.0):
        predicted = T.ghadimi_lan_iterations(nu2, eps) / T.ghadimi_lan_iterations(1.0, eps)
        assert iterations(nu2) / base == pytest.approx(predicted, rel=0.15)
    with pytest.raises(ValueError, match="eps"):
        T.ghadimi_lan_iterations(1.0, 0.0)


# ---- Appendix A.5 ---------------------------------------------------------------------------


def _problem(seed, n, cond):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    D = np.geomspace(cond, 1.0, n)
    return (Q * D) @ Q.T, D, Q, rng


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 15), cond=st.floats(1.0, 1e4), scale=st.floats(0.1, 1.0))
def test_a5_trajectory_formula(seed, n, cond, scale):
    C, D, Q, rng = _problem(seed, n, cond)
    w_star = rng.standard_normal(n)
    eta = scale / D[0]
    run = T.gd_regression_errors(C, w_star, eta, 60)
    formula = T.gd_regression_error_formula(D, Q.T @ w_star, eta, np.arange(61))
    assert_allclose(run, formula, rtol=0, atol=1e3 * n * EPS * cond * (w_star @ w_star))


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**32 - 1), cond=st.floats(2.0, 1e4), eps=st.floats(1e-6, 0.5))
def test_a5_upper_bound(seed, cond, eps):
    _, D, _, rng = _problem(seed, 10, cond)
    v = rng.standard_normal(10)
    t1 = math.ceil(T.gd_iterations_sufficient(D[0], D[-1], float(np.linalg.norm(v)), eps))
    assert math.sqrt(T.gd_regression_error_formula(D, v, 1.0 / D[0], t1)[0]) <= eps * (1 + 1e-9)


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**32 - 1), cond=st.floats(4.0, 1e5), eta_scale=st.floats(0.01, 1.0))
def test_a5_lower_bound_corrected(seed, cond, eta_scale):
    # v*_n = 1, eta <= 1/D11, t+1 < 0.5 D11/Dnn  =>  error >= 0.5.
    _, D, _, rng = _problem(seed, 10, cond)
    v = 0.5 * rng.standard_normal(10)
    v[-1] = 1.0
    t1 = math.ceil(T.gd_iterations_lower_bound(D[0], D[-1])) - 1
    assert math.sqrt(T.gd_regression_error_formula(D, v, eta_scale / D[0], t1)[0]) >= 0.5


@settings(deadline=None, max_examples=15)
@given(cond=st.floats(4.0, 1e5))
def test_a5_lower_bound_is_tight_within_a_factor_2_and_the_printed_one_is_vacuous(cond):
    # With v* along the smallest eigenvalue and eta = 1/D11, the error is (1 - 1/cond)^(t+1): at
    # twice the corrected bound, t+1 = D11/Dnn, it has fallen below 0.5 (to about e^-1), so the
    # corrected bound cannot be raised by a factor 2; the printed ratio 0.5 Dnn/D11 is the corrected
    # one upside down, below 1, and so admits no t >= 0 at all.
    D = np.array([cond, 1.0])
    v = np.array([0.0, 1.0])
    t1 = math.ceil(2 * T.gd_iterations_lower_bound(D[0], D[-1]))
    assert math.sqrt(T.gd_regression_error_formula(D, v, 1.0 / D[0], t1)[0]) < 0.5
    printed = T.printed_lower_bound(D[0], D[-1])
    assert printed == pytest.approx(0.25 / T.gd_iterations_lower_bound(D[0], D[-1]), rel=1e-12)
    assert math.ceil(printed) - 1 < 1  # the largest t+1 below it is 0: no iteration at all


@pytest.mark.parametrize("t", [np.nan, [1.0, np.nan], True, "x", -1, [[0, -2]]])
def test_gd_formula_refuses_bad_times_naming_t(t):
    with pytest.raises((TypeError, ValueError), match=r"^t must be a number of steps >= 0"):
        T.gd_regression_error_formula([1.0, 0.5], [1.0, 1.0], 0.5, t)


# ---- Appendix A.7 ---------------------------------------------------------------------------


def test_a7_refuses_an_eps_whose_horizon_no_run_can_take():
    assert T.forward_only_horizon(1.0, 1.0, 1.0, 1e-6) == 10**12  # the formula itself stands
    for run in (T.forward_only_average_error, T.forward_only_run):
        with pytest.raises(ValueError, match=r"^eps = 1e-06 needs T = c\^4 B\^4 L\^2 / eps\^2 = 1e\+12 steps"):
            run(2, 1.0, 1.0, 1.0, 1e-6, 2, 0)


def test_a7_formulas():
    T_ = T.forward_only_iterations(2.0, 1.5, 3.0, 0.1)
    assert T_ == pytest.approx(16 * 1.5**4 * 9 / 0.01)
    assert T.forward_only_step_size(T_, 2.0) == pytest.approx(1 / math.sqrt(T_ * 4))
    with pytest.raises(ValueError, match="eps must be a positive"):
        T.forward_only_iterations(1, 1, 1, -1)


@settings(deadline=None, max_examples=3)
@given(seed=st.integers(0, 2**32 - 1), c=st.floats(0.5, 2.0), L=st.floats(0.5, 3.0))
def test_a7_forward_only_reaches_eps(seed, c, L):
    # A.7: T = ceil(c^4 B^4 L^2 / eps^2) steps (100 in exact arithmetic here; forward_only_horizon
    # keeps 100 when the float quotient is 100.00000000000001) give expected squared error at most
    # eps. The argument bounds the error averaged over the iterates; over 64 replicas its mean is
    # below eps, and the last iterate is below eps in every replica.
    eps = 0.1 * c * c * L
    errors, steps, T_ = T.forward_only_run(5, c, 1.0, L, eps, 64, seed, test_size=256)
    assert T_ == 100 == T.forward_only_horizon(c, 1.0, L, eps)
    assert T.forward_only_iterations(c, 1.0, L, eps) == pytest.approx(100, rel=1e-12)
    assert steps[-1] == T_
    assert errors[:, steps < T_].mean() <= eps
    assert errors[:, -1].max() <= eps
    assert errors[:, -1].mean() < 0.5 * errors[:, 0].mean()  # it learned


def test_gd_regression_accepts_rounding_asymmetry_and_rejects_real_asymmetry():
    # (Q * D) @ Q.T is symmetric only up to rounding (entries near 0 differ by ~1e-17 from their
    # transposes): accepted; a matrix that is not symmetric is refused, naming C.
    C, D, Q, rng = _problem(3, 12, 1e3)
    assert not np.array_equal(C, C.T)
    w_star = rng.standard_normal(12)
    run = T.gd_regression_errors(C, w_star, 1.0 / D[0], 5)
    assert_allclose(run, T.gd_regression_error_formula(D, Q.T @ w_star, 1.0 / D[0], np.arange(6)), rtol=1e-10)
    bad = C.copy()
    bad[0, 1] += 1e-3 * np.abs(C).max()
    with pytest.raises(ValueError, match="C must be symmetric"):
        T.gd_regression_errors(bad, w_star, 1.0 / D[0], 5)
