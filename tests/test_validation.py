"""failgeom.validation: bounded finite numbers, loop lengths and the memory refusal."""

import math

import numpy as np
import pytest

from failgeom import validation as V
from failgeom import validation


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


# ---------------------------------------------------------------------------------------------
# the same mistake gets the same exception type everywhere

def _same_mistake_sites():
    """Callables taking one value where an integer (or a number) is wanted, across the package."""
    from failgeom import initializers, runtime, stats, training
    from failgeom.problems import sparse_parity as problems_sparse
    from failgeom.problems.steps import StepFunction, step_metrics
    from failgeom.theory import sparse_parity_gradient_variance

    weights = {"W1": np.full((3, 2), 0.1), "b1": np.zeros(2), "W2": np.full((2, 1), 0.1), "b2": np.zeros(1)}
    step = StepFunction.__new__(StepFunction)
    return {
        "validation.nonnegative_int": lambda v: validation.nonnegative_int(v, "seed"),
        "training.seed_streams": lambda v: training.seed_streams(v),
        "training.fit steps": lambda v: training.fit(lambda i: np.zeros(1), v, eval_every=1, evaluate=lambda i: {}),
        "training.Checkpointer every": lambda v: training.Checkpointer("x.npz", header={}, state=dict,
                                                                       restore=print, every=v),
        "stats.sample_snr blocks": lambda v: stats.sample_snr(np.ones((6, 2)), v),
        "runtime.configure": lambda v: runtime.configure(v),
        "problems.class_size k": lambda v: problems_sparse.class_size(5, v),
        "theory.sparse_parity_gradient_variance k": lambda v: sparse_parity_gradient_variance(3, v, weights),
        "initializers.truncated_normal std": lambda v: initializers.truncated_normal(np.random.default_rng(0), (2,), v),
        "stats.block_snr level": lambda v: stats.block_snr(np.ones((4, 2)), np.ones(4), v),
        "problems.step_metrics boundary_width": lambda v: step_metrics(step, np.zeros((1, 2)), np.zeros(2), v),
    }


SITES = _same_mistake_sites()


@pytest.mark.parametrize("site", sorted(SITES))
@pytest.mark.parametrize("value, error", [("3", TypeError), (True, TypeError), (None, TypeError),
                                          (2.5 + 1j, TypeError), (-1, ValueError), (math.nan, ValueError)])
def test_the_same_mistake_gets_the_same_exception_type_everywhere(site, value, error):
    if value == -1 and site == "stats.block_snr level":
        value = 1.5  # level lies in (0, 1); -1 would be the same kind of mistake
    if value is math.nan and "level" not in site and "std" not in site and "boundary_width" not in site:
        error = TypeError  # NaN is not an integer: a type mistake where an integer is wanted
    with pytest.raises(error):
        SITES[site](value)


def test_flag_takes_only_bools():
    assert validation.flag(np.bool_(True), "bias") is True
    for bad in (1, 0, "yes", None):
        with pytest.raises(TypeError, match="bias must be True or False"):
            validation.flag(bad, "bias")


@pytest.mark.parametrize("value, error", [((0,), ValueError), ((2, -1), ValueError), ((2.5,), TypeError),
                                          ("3", TypeError), (None, TypeError), ((True,), TypeError)])
def test_shape_takes_positive_integers(value, error):
    with pytest.raises(error, match="in_shape"):
        validation.shape(value, "in_shape")
    assert validation.shape((np.int64(2), 3), "in_shape") == (2, 3)
    with pytest.raises(ValueError, match="in_shape must have 3 axes"):
        validation.shape((2, 3), "in_shape", ndim=3)


@pytest.mark.parametrize("value, error", [([1j], TypeError), ([True], TypeError), (["a"], TypeError),
                                          (None, TypeError), ([[1.0], [1.0, 2.0]], TypeError),
                                          ([np.nan], ValueError), ([np.inf], ValueError), ([[1.0]], ValueError)])
def test_real_array_takes_real_numbers_only(value, error):
    with pytest.raises(error, match="w "):
        validation.real_array(value, "w", ndim=1)
    assert validation.real_array([1, 2], "w").dtype == np.float64
    assert validation.real_array(np.arange(3), "w", dtype=None).dtype.kind == "i"  # exact integers kept


def test_positive_float_refuses_subnormal_numbers():
    assert validation.positive_float(validation.TINY, "eps") == validation.TINY
    with pytest.raises(ValueError, match="eps must be a positive finite number"):
        validation.positive_float(5e-324, "eps")
