"""Theorem 2 (paper Sec. 2.2, after Shamir 2016): the gradient variance over linear-periodic
targets cos(r v^T x), computed exactly by quadrature, against brute force and Monte Carlo."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import roots_legendre

from failgeom.experiments import get
from failgeom.experiments.orthogonal_periodic import PRESETS, exact_linear_periodic_variance, run
from failgeom.theory.periodic import cos_predictor_gradients, linear_periodic_variance


def brute_force_variance(w_norm, r, d, n=4000):
    """E_v ||g_v - E g||^2 with every gradient from the theory's closed form, v on a grid.

    d = 2: n equally spaced angles (the trapezoid rule is spectrally accurate for periodic
    integrands). d = 3: t = v_3 is uniform on [-1, 1] (Archimedes), Gauss-Legendre in t times
    n/10 equally spaced azimuths.
    """
    if d == 2:
        phi = 2 * np.pi * np.arange(n) / n
        V = np.stack([np.cos(phi), np.sin(phi)], axis=1)
        weights = np.full(n, 1.0 / n)
    else:
        t, wt = roots_legendre(n // 10)
        phi = 2 * np.pi * np.arange(n // 10) / (n // 10)
        T, P = np.meshgrid(t, phi, indexing="ij")
        s = np.sqrt(1 - T**2)
        V = np.stack([s * np.cos(P), s * np.sin(P), T], axis=-1).reshape(-1, 3)
        weights = (np.outer(wt, np.ones(phi.size)) / 2 / phi.size).ravel()
    w = np.zeros(d)
    w[-1] = w_norm  # the variance depends on w only through |w|
    g = cos_predictor_gradients(w, V, r)
    mean = weights @ g
    return float(weights @ np.sum((g - mean) ** 2, axis=1))


@settings(deadline=None, max_examples=12)
@given(d=st.sampled_from([2, 3]), r=st.floats(0.3, 10.0), matched=st.booleans())
def test_quadrature_matches_brute_force_over_directions(d, r, matched):
    # an independent reduction: full gradient vectors on a grid of directions, no 1-D formula.
    # Both are exact up to quadrature error, far below 1e-8 relative at these sizes. The brute
    # force centres gradients whose v-independent part is w e^{-2|w|^2} ~ 0.14 (|w| = 1): summing
    # 4000 of them leaves a rounding floor near (sqrt(4000) eps 0.14)^2 ~ 1e-29 absolute.
    w_norm = r if matched else 1.0
    exact = exact_linear_periodic_variance(w_norm, r, d)
    assert_allclose(exact, brute_force_variance(w_norm, r, d), rtol=1e-8, atol=1e-27)


@settings(deadline=None, max_examples=10)
@given(d=st.integers(2, 8), r=st.floats(0.5, 3.0), seed=st.integers(0, 2**31 - 1))
def test_quadrature_matches_theory_monte_carlo(d, r, seed):
    # |w| = 1, r <= 3: the variance is not carried by rare directions, so the Monte Carlo
    # estimator over v is well behaved; |z| > 4.5 has probability 7e-6
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    est = linear_periodic_variance(w, r, rng, targets=20_000)
    assert abs(est.value - exact_linear_periodic_variance(1.0, r, d)) <= 4.5 * est.stderr


@pytest.mark.parametrize("r", [1.0, 2.0, 4.0])
def test_large_d_limit_for_unit_predictor(r):
    # d -> infinity: t = w.v/|w| ~ N(0, 1/d) and Var -> e^{-(1 + r^2)} r^4 / d (1 + O(1/d)):
    # only polynomial decay in d for a predictor at the initialisation's scale
    d = 4096
    limit = np.exp(-(1 + r**2)) * r**4 / d
    # measured: the relative O(1/d) correction is about (1.5, 1.5, 13.5) / d for r = (1, 2, 4)
    assert_allclose(exact_linear_periodic_variance(1.0, r, d), limit, rtol=2 * (1 + r**4 / 16) / d)


def test_unit_predictor_decays_like_exp_minus_r_squared():
    # c^2 = e^{-(1 + r^2)} times terms polynomial in r and cosh(r t): the rate per unit r^2 tends to -1
    r = np.array([8.0, 9.0, 10.0, 11.0])
    v = np.array([exact_linear_periodic_variance(1.0, x, 10) for x in r])
    rates = np.diff(np.log(v)) / np.diff(r**2)
    assert np.all((rates < -0.85) & (rates > -1.0))


def test_matched_predictor_decays_exponentially_in_d_only_with_r():
    # |w| = r: the gradient is informative only for v within ~1/r of w/|w|, whose probability falls
    # exponentially with d; at fixed d it decays only polynomially in r (about r^-(d-1)).
    d = np.array([4, 8, 12, 16])
    v8 = np.array([exact_linear_periodic_variance(8.0, 8.0, int(k)) for k in d])
    assert np.all(np.diff(np.log(v8)) / np.diff(d) < -1.0)
    r = np.array([16.0, 18.0, 20.0])
    v = np.array([exact_linear_periodic_variance(x, x, 6) for x in r])
    slopes = np.diff(np.log(v)) / np.diff(np.log(r))
    assert_allclose(slopes, -(6 - 1), atol=0.5)


SMALL = dataclasses.replace(PRESETS["quick"], radii=(1.0, 2.0, 3.0, 4.0), dims=(2, 4, 8, 16), dim_radii=(4.0,),
                            mc_targets=512, replicas=2, quadrature_nodes=1000)


def test_experiment_small_run():
    result = run(SMALL, seed=0)
    fits = result.metrics["fits"]
    assert fits["vs_r/unit"]["per_r2"]["rate"] < -0.5
    assert fits["vs_d/matched/r=4"]["per_d"]["rate"] < -0.3
    for key, c in result.curves.items():
        assert np.all(np.asarray(c["exact"]) > 0), key
    again = run(SMALL, seed=0)
    assert again.curves == result.curves
    exp = get("linear-periodic-variance")
    assert "matched" in exp.summary(result)
    assert len(exp.figure(result).axes) >= 2


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="d"):
        exact_linear_periodic_variance(1.0, 1.0, 1)
    with pytest.raises(ValueError, match="radii"):
        dataclasses.replace(SMALL, radii=(1.0, 30.0, 2.0)).validate()
    with pytest.raises(ValueError, match="dims"):
        dataclasses.replace(SMALL, dims=(1, 2, 3)).validate()
