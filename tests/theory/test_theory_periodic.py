"""Theorem 2 and the talk's landscape: closed-form Gaussian expectations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import failgeom.theory as T
from failgeom.checks.orthogonal import PSIS, periodic_variance, periodic_variance_mc

vec2 = st.tuples(st.floats(-4, 4), st.floats(-4, 4)).map(np.array)


@settings(deadline=None, max_examples=8)
@given(w=vec2, seed=st.integers(0, 2**32 - 1))
def test_landscape_closed_form_matches_monte_carlo(w, seed):
    mean, se = T.periodic_landscape_monte_carlo(w, np.random.default_rng(seed), 200000)
    assert abs(mean - T.periodic_landscape(w)) <= 5 * se + 1e-12


@settings(deadline=None, max_examples=20)
@given(w=vec2, sigma=st.floats(0.3, 2.0))
def test_landscape_gradient_matches_finite_differences(w, sigma):
    h = 1e-6
    def F(u):
        return T.periodic_landscape(u, sigma=sigma)

    fd = [(F(w + h * e) - F(w - h * e)) / (2 * h) for e in np.eye(2)]
    assert_allclose(T.periodic_landscape_gradient(w, sigma=sigma), fd, atol=1e-7)


def test_landscape_is_vectorized_and_zero_at_the_target():
    grid = np.stack(np.meshgrid(np.linspace(-3, 3, 7), np.linspace(-3, 3, 5)), axis=-1)
    F = T.periodic_landscape(grid)
    assert F.shape == (5, 7)
    assert_allclose(F[2, 3], T.periodic_landscape(np.zeros(2)))
    assert T.periodic_landscape(np.array([2.0, 2.0])) == pytest.approx(0.0, abs=1e-15)
    assert T.periodic_landscape(np.array([-2.0, -2.0])) == pytest.approx(0.0, abs=1e-15)
    assert T.periodic_landscape_gradient(grid).shape == (5, 7, 2)


@settings(deadline=None, max_examples=6)
@given(d=st.integers(1, 6), r=st.floats(0.2, 3.0), seed=st.integers(0, 2**32 - 1))
def test_cos_predictor_gradients_match_monte_carlo(d, r, seed):
    # grad F_h = E[(cos(w^T x) - cos(r v^T x)) (-sin(w^T x) x)], x ~ N(0, I)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d) / np.sqrt(d)
    v = T.sphere_directions(rng, 1, d)
    x = rng.standard_normal((400000, d))
    per = ((np.cos(x @ w) - np.cos(r * x @ v[0])) * -np.sin(x @ w))[:, None] * x
    mean, se = per.mean(axis=0), per.std(axis=0, ddof=1) / np.sqrt(x.shape[0])
    assert np.all(np.abs(T.cos_predictor_gradients(w, v, r)[0] - mean) <= 5 * se)


def test_cos_predictor_gradient_bound_matches_monte_carlo():
    rng = np.random.default_rng(0)
    w = np.array([0.3, -0.7, 0.2])
    x = rng.standard_normal((400000, 3))
    vals = np.sin(x @ w) ** 2 * np.sum(x * x, axis=1)
    assert abs(vals.mean() - T.cos_predictor_gradient_bound(w)) <= 5 * vals.std() / np.sqrt(vals.size)


@pytest.mark.parametrize("psi", sorted(PSIS))
def test_theorem2_variance_matches_the_closed_form_and_decays_in_r(psi):
    # Theorem 2 at d = 10, |w| = 1: the Monte Carlo variance over v agrees with the 1-D integral at
    # every r, and log Var falls faster than linearly in r: its local slopes fall by about 2 per
    # unit r, Var ~ exp(-r^2 + O(r)).
    d, rs = 10, [2.0, 3.0, 4.0, 5.0]
    w = np.full(d, 1.0 / np.sqrt(d))
    exact = [periodic_variance(1.0, r, d, PSIS[psi]) for r in rs]
    for i, r in enumerate(rs):
        mc, se = periodic_variance_mc(w, r, PSIS[psi], np.random.default_rng(i), 8192)
        assert abs(mc - exact[i]) <= 4 * se
    slopes = np.diff(np.log(exact)) / np.diff(rs)
    assert np.all(slopes < 0)
    assert np.diff(slopes) == pytest.approx(-2.0, rel=0.2)


def test_closed_form_variance_is_the_theory_estimator_for_cos():
    # psi = cos: the Monte Carlo of the checks and theory's linear_periodic_variance are one estimator
    w = np.array([0.5, 0.1, -0.4])
    mc, se = periodic_variance_mc(w, 1.5, PSIS["cos"], np.random.default_rng(3), 4000)
    est = T.linear_periodic_variance(w, 1.5, np.random.default_rng(3), 4000)
    assert mc == pytest.approx(est.value, rel=1e-12) and se == pytest.approx(est.stderr, rel=1e-12)
    # and the quadrature has converged
    exact = periodic_variance(np.linalg.norm(w), 1.5, 3, PSIS["cos"])
    assert exact == pytest.approx(T.exact_linear_periodic_variance(np.linalg.norm(w), 1.5, 3, nodes=4000), rel=1e-10)
    assert abs(mc - exact) <= 4 * se


def test_linear_periodic_variance_interval_covers_a_larger_run():
    w = np.array([0.5, 0.1, -0.4])
    small = T.linear_periodic_variance(w, 1.5, np.random.default_rng(3), 4000)
    big = T.linear_periodic_variance(w, 1.5, np.random.default_rng(4), 400000)
    lo, hi = small.ci95
    assert lo - 3 * big.stderr <= big.value <= hi + 3 * big.stderr


def test_periodic_validates():
    with pytest.raises(ValueError, match="target must have shape"):
        T.periodic_landscape(np.zeros(3))
    with pytest.raises(ValueError, match="sigma must be a positive"):
        T.periodic_landscape(np.zeros(2), sigma=0.0)
