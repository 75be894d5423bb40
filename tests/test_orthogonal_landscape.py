"""The talk's 2-D linear-periodic landscape (paper Sec. 2.2, talk part 4): closed form against
Monte Carlo, its critical points, and gradient descent from far starts."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from failgeom import plotting
from failgeom.experiments import get
from failgeom.experiments.landscape_descent import (
    distance_to_optimum, gradient_descent, reach_radius, stochastic_gradient, stochastic_loss_and_gradient,
)
from failgeom.experiments.orthogonal_landscape import PRESETS, critical_points, grid_local_minima
from failgeom.theory.periodic import (
    periodic_landscape, periodic_landscape_gradient, periodic_landscape_monte_carlo,
    periodic_landscape_value_and_gradient,
)

B = np.array([2.0, 2.0])
# |z| > 4.5 for a standard normal has probability 7e-6: a failure is a real disagreement
Z = 4.5


@settings(deadline=None, max_examples=15)
@given(w1=st.floats(-4, 4), w2=st.floats(-4, 4), seed=st.integers(0, 2**31 - 1))
def test_closed_form_matches_monte_carlo(w1, w2, seed):
    w = np.array([w1, w2])
    mean, stderr = periodic_landscape_monte_carlo(w, np.random.default_rng(seed), 100_000, B)
    assert abs(mean - periodic_landscape(w, B)) <= Z * stderr + 1e-12


@settings(deadline=None, max_examples=10)
@given(w1=st.floats(-4, 4), w2=st.floats(-4, 4), seed=st.integers(0, 2**31 - 1))
def test_stochastic_gradient_is_unbiased(w1, w2, seed):
    # each of 50,000 replicas gets one sample: the replica spread gives the standard error
    rng = np.random.default_rng(seed)
    R = 50_000
    w = np.tile([w1, w2], (R, 1))
    g = stochastic_gradient(w, rng.standard_normal((R, 1, 2)), B)
    se = g.std(axis=0, ddof=1) / np.sqrt(R)
    exact = periodic_landscape_gradient(np.array([w1, w2]), B)
    assert np.all(np.abs(g.mean(axis=0) - exact) <= Z * se + 1e-12)


@settings(deadline=None, max_examples=10)
@given(w1=st.floats(-4, 4), w2=st.floats(-4, 4), seed=st.integers(0, 2**31 - 1))
def test_minibatch_loss_is_unbiased_for_the_closed_form(w1, w2, seed):
    # the loss SGD reports to training.fit estimates F(w) without bias
    R = 50_000
    w = np.tile([w1, w2], (R, 1))
    loss, _ = stochastic_loss_and_gradient(w, np.random.default_rng(seed).standard_normal((R, 1, 2)), B)
    se = loss.std(ddof=1) / np.sqrt(R)
    assert abs(loss.mean() - periodic_landscape(np.array([w1, w2]), B)) <= Z * se + 1e-12


@settings(deadline=None, max_examples=10)
@given(w1=st.floats(-6, 6), w2=st.floats(-6, 6), sigma=st.floats(0.3, 2.0))
def test_value_and_gradient_agree_with_the_separate_closed_forms(w1, w2, sigma):
    # one function sharing the three exponentials; identical up to the rounding of the sums
    w = np.array([[w1, w2], [w2, -w1]])
    F, g = periodic_landscape_value_and_gradient(w, B, sigma)
    assert_allclose(F, periodic_landscape(w, B, sigma), rtol=1e-14, atol=1e-15)
    assert_allclose(g, periodic_landscape_gradient(w, B, sigma), rtol=1e-14, atol=1e-300)


def test_no_local_minimum_other_than_the_optimum_copies_on_a_fine_grid():
    # talk: "no local minima"; F is resolvable in float64 within 4.5 of the origin
    minima = grid_local_minima(B, extent=4.5, points=901)
    assert minima.shape == (2, 2)
    spacing = 9.0 / 900
    assert np.all(distance_to_optimum(minima, B) <= spacing)


def test_critical_points_are_two_minima_two_saddles_and_a_maximum():
    # The talk also says "no saddle points". Measured: along the line w perpendicular to b the
    # restriction t -> F(t u) has a minimum at t^2 = |b|^2 / 3 while F curves down along b, so
    # there are two saddles at +-(|b| / sqrt 3) u, F = 1 + e^{-|b|^2 * 2}/2 - 1.5 e^{-2|b|^2/3}.
    crit = critical_points(B, extent=7.0, points=401)
    kinds = sorted(c["kind"] for c in crit)
    assert kinds == ["maximum", "minimum", "minimum", "saddle", "saddle"]
    u = np.array([1.0, -1.0]) / np.sqrt(2.0)
    nb2 = float(B @ B)
    for c in crit:
        w = np.asarray(c["w"])
        if c["kind"] == "minimum":
            assert_allclose(np.abs(w), B, atol=1e-9)
            assert c["F"] < 1e-15
        elif c["kind"] == "maximum":
            assert_allclose(w, 0.0, atol=1e-9)
            assert_allclose(c["F"], 1.5 + 0.5 * np.exp(-2 * nb2) - 2 * np.exp(-nb2 / 2), rtol=1e-12)
        else:
            assert_allclose(abs(w @ u), np.sqrt(nb2 / 3), rtol=1e-8)
            assert abs(w @ B) < 1e-8
            assert_allclose(c["F"], 1 + 0.5 * np.exp(-2 * nb2) - 1.5 * np.exp(-2 * nb2 / 3), rtol=1e-12)


@settings(deadline=None, max_examples=4)
@given(norm=st.floats(2.0, 3.5), angle=st.floats(0, np.pi))
def test_saddle_structure_for_other_targets(norm, angle):
    b = norm * np.array([np.cos(angle), np.sin(angle)])
    crit = critical_points(b, extent=norm + 3.0, points=301)
    assert sorted(c["kind"] for c in crit) == ["maximum", "minimum", "minimum", "saddle", "saddle"]
    for c in crit:
        if c["kind"] == "saddle":
            assert_allclose(np.linalg.norm(c["w"]) ** 2, norm**2 / 3, rtol=1e-8)


@pytest.mark.parametrize("steps", [1_000, 10_000])
def test_exact_gd_reaches_only_within_the_predicted_radius(steps):
    # gradient flow on the one-well model F ~ 1 - e^{-rho^2/2} needs time (Ei(rho0^2/2) - Ei(1/2))/2:
    # starts 0.25 inside the radius arrive, starts 0.25 outside (3x the time) do not
    lr = 0.5
    rho = reach_radius(lr, steps)
    out = B / np.linalg.norm(B)
    starts = np.stack([B + (rho - 0.25) * out, B + (rho + 0.25) * out, -B - (rho - 0.25) * out])
    _, hit = gradient_descent(starts, B, lr, steps, 0.1)
    assert hit[0] > 0 and hit[2] > 0
    assert hit[1] == -1


def test_reach_radius_grows_like_sqrt_log_budget():
    r = [reach_radius(0.5, t) for t in (10**3, 10**5, 10**7)]
    assert r[0] < r[1] < r[2] < 7.0
    assert_allclose(np.array(r) ** 2 / 2, np.log(0.5 * np.array([1e3, 1e5, 1e7])) + 2 * np.log(r), atol=0.5)


def test_gradient_descent_replicas_are_independent():
    starts = np.array([[3.0, -1.0], [-0.5, 0.7], [6.0, 6.0]])
    batched, hit_b = gradient_descent(starts, B, 0.5, 200, 0.1)
    for i in range(3):
        alone, hit_a = gradient_descent(starts[i : i + 1], B, 0.5, 200, 0.1)
        assert_array_equal(alone[0], batched[i])
        assert hit_a[0] == hit_b[i]


def test_sgd_is_deterministic_for_a_seed():
    starts = np.array([[3.0, -1.0], [5.0, 5.0]])
    a = gradient_descent(starts, B, 0.5, 50, 0.1, rng=np.random.default_rng(1), batch=4)
    b = gradient_descent(starts, B, 0.5, 50, 0.1, rng=np.random.default_rng(1), batch=4)
    assert_array_equal(a[0], b[0])


SMALL = dataclasses.replace(PRESETS["quick"], extent=6.0, plot_points=61, critical_points_grid=201,
                            starts_per_axis=13, steps=1_500, sgd_starts_per_axis=7)


def test_experiment_small_run():
    result = get("linear-periodic-landscape").run(SMALL, seed=0)
    m = result.metrics
    assert m["critical_point_counts"] == {"minimum": 2, "maximum": 1, "saddle": 2, "degenerate": 0}
    assert len(m["grid_local_minima"]) == 2
    # exact GD: never from beyond the predicted radius (+0.25), always from well inside it
    c = result.curves["exact"]
    d, f = np.asarray(c["distance"]), np.asarray(c["fraction_reached"])
    assert np.all(f[d - SMALL.distance_bin / 2 > m["predicted_reach_radius"] + 0.25] == 0.0)
    assert m["exact"]["max_start_distance_reached"] <= m["predicted_reach_radius"] + 0.25
    # the far plateau sits at F = 1 (+ e^-16 / 2) up to e^{-rho^2/2}
    assert abs(m["plateau_F_far"] - 1.0) < 1e-6
    exp = get("linear-periodic-landscape")
    assert "saddles" in exp.summary(result)
    fig = exp.figure(result)
    assert len(fig.axes) >= 2
    assert plotting.displayed_min_font_pt(fig) >= plotting.MIN_FONT_PT
    plotting.close(fig)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="target"):
        dataclasses.replace(SMALL, target=(1.0, 2.0, 3.0)).validate()
    with pytest.raises(ValueError, match="lr"):
        dataclasses.replace(SMALL, lr=0.0).validate()


@pytest.mark.slow
def test_exact_gd_reach_radius_at_paper_budget():
    steps, lr = 100_000, 0.5
    rho = reach_radius(lr, steps)
    out = B / np.linalg.norm(B)
    starts = np.stack([B + (rho - 0.2) * out, B + (rho + 0.2) * out])
    _, hit = gradient_descent(starts, B, lr, steps, 0.1)
    assert hit[0] > 0 and hit[1] == -1


def test_flat_radius_needs_no_box_and_bounds_the_gradient_beyond_it():
    from failgeom.experiments.landscape_descent import flat_radius, flatness_profile
    from failgeom.theory.periodic import periodic_landscape_gradient

    b = np.array([2.0, 2.0])
    radius = flat_radius(b, 1e-4)
    # beyond it, at any distance and direction (nearest optimum +b), the gradient is below 1e-4
    rng = np.random.default_rng(0)
    rho = rng.uniform(radius, radius + 10.0, 20_000)
    phi = rng.uniform(0, 2 * np.pi, rho.size)
    w = b + rho[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    w = w[np.linalg.norm(w + b, axis=1) >= rho]
    assert np.linalg.norm(periodic_landscape_gradient(w, b), axis=-1).max() < 1e-4
    # and just inside it the gradient reaches the level somewhere
    assert flat_radius(b, 1e-4) > flat_radius(b, 1e-2)
    prof = flatness_profile(b)
    assert 0.4 < prof["growth_exponent"] < 0.6  # a Gaussian fall with the distance: radius ~ log(1/level)^(1/2)


def test_success_rates_come_with_clopper_pearson_intervals():
    from scipy import stats

    from failgeom.experiments.landscape_descent import success

    got = success([True] * 3 + [False] * 7)
    assert got["reached"] == 3 and got["runs"] == 10 and got["rate"] == 0.3
    ci = stats.binomtest(3, 10).proportion_ci(0.95, method="exact")
    np.testing.assert_allclose(got["ci95"], [ci.low, ci.high])
    assert success([True] * 5)["ci95"][1] == 1.0 and success([False] * 5)["ci95"][0] == 0.0
