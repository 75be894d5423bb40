"""The step function u of Sec. 5, its grid, its sum-of-sigmoids surrogate (5.2) and the sampler."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from failgeom.nn import numerical_gradient
from failgeom.problems.steps import (
    PAPER_OFFSETS,
    StepFunction,
    draw_targets,
    paper_grids,
    sample_steps,
)


def reference_floor(grid_row, r):
    """Per-replica reference: ``np.searchsorted`` on one sorted grid (floor, clamped below)."""
    return np.maximum(np.searchsorted(grid_row, r, side="right") - 1, 0)


grids_strategy = st.lists(
    st.lists(st.floats(-50, 50, allow_nan=False, width=64), min_size=1, max_size=12),
    min_size=1, max_size=4,
)


def test_paper_grid_size_is_measured_and_matches_the_offsets():
    # {-100, -95, ..., 95} (40 values) plus the 12 fine values not already in it
    assert len(PAPER_OFFSETS) == 52
    b_star = np.array([0.0, -1.3, 2.7])
    step = paper_grids(b_star)
    assert_array_equal(step.n_steps, [52, 52, 52])
    assert_allclose(step.grid - b_star[:, None], np.tile(PAPER_OFFSETS, (3, 1)), atol=1e-12)
    assert np.all(np.diff(step.grid, axis=1) > 0)


@settings(deadline=None, max_examples=30)
@given(grids=grids_strategy, seed=st.integers(0, 2**32 - 1))
def test_index_is_the_floor_onto_each_replicas_grid(grids, seed):
    step = StepFunction(grids)
    rng = np.random.default_rng(seed)
    r = rng.uniform(-60, 60, size=(len(grids), 40))
    idx = step.index(r)
    for k, row in enumerate(grids):  # reference check per replica, outside the library
        sorted_row = np.unique(row)
        assert_array_equal(idx[k], reference_floor(sorted_row, r[k]))
        u = step(r)[k]
        above = r[k] >= sorted_row[0]
        # floor semantics: u(r) is a grid value <= r, and the next grid value is > r
        assert np.all(np.isin(u, sorted_row))
        assert np.all(u[above] <= r[k][above])
        nxt = np.append(sorted_row, np.inf)[idx[k] + 1]
        assert np.all(nxt[above] > r[k][above])
        assert np.all(u[~above] == sorted_row[0])  # below the grid: the smallest value


@settings(deadline=None, max_examples=20)
@given(grids=grids_strategy, seed=st.integers(0, 2**32 - 1))
def test_step_function_is_non_decreasing(grids, seed):
    step = StepFunction(grids)
    r = np.sort(np.random.default_rng(seed).uniform(-60, 60, size=(len(grids), 200)), axis=1)
    assert np.all(np.diff(step(r), axis=1) >= 0)
    assert np.all(np.diff(step.index(r), axis=1) >= 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exact_grid_values_and_their_left_neighbours(dtype):
    step = paper_grids(np.array([0.37, -1.21]))
    z = step.grid.astype(dtype)
    # u(z_i) = z_i exactly, in the dtype of the argument
    assert_array_equal(step(z), z)
    assert step(z).dtype == dtype
    assert_array_equal(step.index(z), np.tile(np.arange(52), (2, 1)))
    # just below z_i: the previous step (z_0 stays on z_0)
    below = np.nextafter(z, dtype(-np.inf))
    assert_array_equal(step.index(below)[:, 1:], np.tile(np.arange(51), (2, 1)))
    assert_array_equal(step(below)[:, 1:], z[:, :-1])
    assert_array_equal(step(below)[:, 0], z[:, 0])


def test_padded_grids_of_different_sizes():
    step = StepFunction([[0.0, 1.0, 2.0], [5.0], [3.0, -1.0, 3.0]])  # unsorted, duplicated
    assert_array_equal(step.n_steps, [3, 1, 2])
    r = np.array([[1.5, 10.0], [7.0, -3.0], [0.0, 3.0]])
    assert_array_equal(step(r), [[1.0, 2.0], [5.0, 5.0], [-1.0, 3.0]])
    assert_array_equal(step.nearest_index(np.array([[1.6, 0.4], [100.0, 0.0], [0.9, 1.1]])),
                       [[2, 0], [0, 0], [0, 1]])
    # padding given explicitly as +inf is the same grid
    again = StepFunction(np.where(np.isfinite(step.grid), step.grid, np.inf))
    assert_array_equal(again.grid, step.grid)


def test_bad_input_is_named():
    step = paper_grids(np.zeros(2))
    with pytest.raises(ValueError, match="replica axis"):
        step(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="finite"):
        step(np.full((2, 1), np.nan))
    with pytest.raises(ValueError, match="grids"):
        StepFunction([[1.0], []])
    with pytest.raises(ValueError, match="finite"):
        StepFunction([[1.0, np.nan]])
    with pytest.raises(ValueError, match="b_star"):
        paper_grids(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="index"):
        step.value_of(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="index"):
        step.value_of(np.full((2, 1), 52))


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**32 - 1))
def test_smooth_surrogate_matches_u_away_from_jumps_and_is_flat_there(seed):
    # Sec. 5.2: sigmoid i has centre m_i = z_{i+1} - dz_i/20 and slope 50/dz_i. Where every
    # |50 (r - m_i) / dz_i| >= 20, each sigmoid is within e^-20 of its step, so the surrogate is
    # u up to (z_last - z_0) e^-20 and its derivative sum_i 50 s_i (1 - s_i) <= 50 K e^-20:
    # the surrogate is as flat as u there
    rng = np.random.default_rng(seed)
    step = paper_grids(rng.standard_normal(1))
    z = step.grid[0]
    dz = np.diff(z)
    centre = z[1:] - dz / 20
    r = rng.uniform(z[0], z[-1], size=20_000)
    far = np.all(np.abs(r[:, None] - centre) >= 0.4 * dz, axis=1)
    r = r[far][None]
    assert r.size > 1000
    value, deriv = step.smooth(r)
    tail = np.exp(-20.0)
    assert np.all(np.abs(value - step(r)) <= (z[-1] - z[0]) * tail)
    assert np.all(deriv <= 50 * dz.size * tail)


def test_smooth_surrogate_slope_at_the_centres_and_limits():
    step = paper_grids(np.array([0.4]))
    z = step.grid[0]
    dz = np.diff(z)
    # on the regular part of the grid (steps of 5 between -95 and -10), each sigmoid's own
    # slope at its centre is 50/4 = 12.5 and the neighbours add less than 1e-6
    regular = (z[1:] - 0.4 > -95) & (z[1:] - 0.4 <= -10)
    _, slope = step.smooth((z[1:] - dz / 20)[regular][None])
    assert_allclose(slope, 12.5, rtol=1e-6)
    # far outside the grid the surrogate tends to the first and last grid values
    value, _ = step.smooth(np.array([[z[0] - 50.0, z[-1] + 50.0]]))
    assert_allclose(value[0], [z[0], z[-1]], atol=1e-9)


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**32 - 1))
def test_smooth_surrogate_derivative_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    step = paper_grids(rng.standard_normal(2))
    # points near the fine part of the grid, where the surrogate has slope
    r = np.ascontiguousarray(step.grid[:, 40:46] + rng.uniform(-0.03, 0.01, size=(2, 6)))
    weights = rng.standard_normal(r.shape)
    _, deriv = step.smooth(r)
    numeric = numerical_gradient(lambda: np.sum(weights * step.smooth(r)[0]), r, h=1e-7)
    # central differences: truncation h^2 * u''' ~ 1e-14 * 50^3/dz^3 (dz >= 0.025)
    assert_allclose(weights * deriv, numeric, rtol=1e-4, atol=1e-6)


def test_sampler_targets_and_scales():
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(3).spawn(3)]
    v_star, b_star = draw_targets(rngs, 100)
    # each replica's target comes from its own stream: replica 0 does not depend on R
    v0, b0 = draw_targets([np.random.default_rng(np.random.SeedSequence(3).spawn(3)[0])], 100)
    assert_array_equal(v_star[:1], v0)
    assert_array_equal(b_star[:1], b0)
    step = paper_grids(b_star)
    x, r, index, y = sample_steps(np.random.default_rng(0), v_star, b_star, step, 4000, np.float64)
    assert x.shape == (3, 4000, 100) and y.shape == (3, 4000, 1) and index.shape == (3, 4000)
    assert_allclose(r, np.einsum("rbn,rn->rb", x, v_star) + b_star[:, None], rtol=1e-12, atol=1e-12)
    assert_array_equal(y[..., 0], step(r))
    assert_array_equal(step.value_of(index), y[..., 0])
    # x = randn(n)/n: coordinate std 1/n; r - b* has std ||v*||/n (5 sigma of a 4000-sample std)
    assert abs(x.std() - 0.01) < 5 * 0.01 / np.sqrt(2 * x.size)
    expected = np.linalg.norm(v_star, axis=1) / 100
    assert np.all(np.abs(r.std(axis=1) - expected) < 5 * expected / np.sqrt(2 * 4000))
