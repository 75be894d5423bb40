"""nn.SmoothStep: an elementwise layer from a surrogate and its derivative (Sec. 5.2), checked in
float64 against central finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom import nn
from failgeom.problems.steps import StepFunction


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**32 - 1))
def test_sum_of_sigmoids_layer_gradient_matches_finite_differences(seed):
    # points inside the sigmoid ramps (width about dz/50 before each jump), where the surrogate's
    # derivative is large, and points on the flat parts, where it vanishes
    rng = np.random.default_rng(seed)
    R, batch = 2, 12
    grids = np.sort(rng.uniform(-5, 5, size=(R, 1)) + np.cumsum(rng.uniform(0.5, 2.0, size=(R, 5)), axis=1), axis=1)
    step = StepFunction(grids)
    dz = np.diff(grids, axis=1)
    centres = grids[:, 1:] - dz / 20
    pick = rng.integers(0, dz.shape[1], size=(R, batch))
    near = np.take_along_axis(centres, pick, 1) + np.take_along_axis(dz, pick, 1) / 50 * rng.standard_normal((R, batch))
    x = near[..., None].copy()
    x[:, : batch // 3, 0] = np.take_along_axis(grids, pick[:, : batch // 3], 1) + 0.3 * np.take_along_axis(dz, pick[:, : batch // 3], 1)
    layer = nn.SmoothStep(step.smooth, name="sum of sigmoids")
    report = nn.check_layer(layer, (1,), R=R, batch=batch, x=x, h=1e-7)
    assert report.max_error < 1e-6, report.errors
    _, deriv = step.smooth(x)
    assert np.abs(deriv).max() > 1.0  # the check did run through the steep parts


def test_generic_surrogate_and_bad_input():
    layer = nn.SmoothStep(lambda x: (np.tanh(x), 1 - np.tanh(x) ** 2))
    assert nn.check_layer(layer, (3,), R=2, batch=4).max_error < 1e-7
    with pytest.raises(TypeError, match="surrogate"):
        nn.SmoothStep(3.0)
    bad = nn.SmoothStep(lambda x: (x, x[..., :1]))
    with pytest.raises(ValueError, match="shape"):
        bad.forward({}, np.zeros((2, 3, 4)))
