"""failgeom.validation: bounded finite numbers, loop lengths and the memory refusal."""

import math

import numpy as np
import pytest

from failgeom import validation as V


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.25), np.int64(1)])
def test_finite_float_accepts_numbers_in_the_interval(value):
    assert V.finite_float(value, "x", 0, 1, low_open=True) == float(value)


@pytest.mark.parametrize("value, error", [
    (math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError), (0.0, ValueError),
    (1.5, ValueError), ("0.5", TypeError), (True, TypeError), (np.bool_(True), TypeError), (None, TypeError),
])
def test_finite_float_refuses_naming_the_argument_and_the_interval(value, error):
    with pytest.raises(error, match=r"^rtol must be a finite number in \(0, 1\]"):
        V.finite_float(value, "rtol", 0, 1, low_open=True)


def test_finite_float_one_sided_messages():
    with pytest.raises(ValueError, match="nu2 must be a finite number >= 0, got -1.0"):
        V.finite_float(-1, "nu2", low=0)
    with pytest.raises(ValueError, match="x must be a finite number < 2"):
        V.finite_float(2, "x", high=2, high_open=True)
    assert V.finite_float(-1e300, "x") == -1e300


def test_step_count_caps_loops():
    assert V.step_count(V.MAX_STEPS, "t") == V.MAX_STEPS
    assert V.step_count(0, "t") == 0
    with pytest.raises(ValueError, match="t must be at most 10\\^9"):
        V.step_count(V.MAX_STEPS + 1, "t")
    with pytest.raises(ValueError, match="T must be a positive integer"):
        V.step_count(0, "T", low=1)
    with pytest.raises(TypeError, match="t must be"):
        V.step_count(2.0, "t")


def test_fits_in_memory_refuses_in_one_line():
    V.fits_in_memory(1024, "a tiny array")
    with pytest.raises(ValueError, match=r"^n = 10 \(an n x n matrix\) needs about 7\.5e\+52 GiB of memory, more "
                                         r"than the .* GiB available; choose a smaller n$"):
        V.fits_in_memory(8 * 10**61, "n = 10 (an n x n matrix)", "choose a smaller n")
    assert V.available_memory() > 0
