"""staircase-parity: the targets' values and Fourier structure, the relative-error check, cells and
merge, censoring."""

import dataclasses
import itertools

import numpy as np
import pytest

from failgeom.experiments import get
from failgeom.experiments.staircase_parity import StaircaseConfig, ordered_supports, staircase_values

EXP = get("staircase-parity")


def test_staircase_and_parity_values_on_the_whole_cube():
    """On every x of {±1}^5 with support order (3, 0, 4): the staircase is x3 + x3 x0 + x3 x0 x4,
    the parity x3 x0 x4; the staircase's monomials are orthonormal, so its variance is k = 3 and
    its correlation with the parity is 1."""
    x = np.array(list(itertools.product([-1.0, 1.0], repeat=5)))[None]
    order = np.array([[3, 0, 4]])
    s = staircase_values(x, order, "staircase")[0, :, 0]
    p = staircase_values(x, order, "parity")[0, :, 0]
    x0, x3, x4 = x[0, :, 0], x[0, :, 3], x[0, :, 4]
    np.testing.assert_array_equal(s, x3 + x3 * x0 + x3 * x0 * x4)
    np.testing.assert_array_equal(p, x3 * x0 * x4)
    assert s.mean() == 0 and np.mean(s * s) == 3 and np.mean(s * p) == 1


def test_ordered_supports_are_k_distinct_bits():
    order = ordered_supports(np.random.default_rng(0).spawn(20), 9, 4)
    assert order.shape == (20, 4) and all(len(set(row)) == 4 and max(row) < 9 for row in order.tolist())


def test_tiny_run_is_deterministic_and_merge_equals_serial():
    config = EXP.tiny
    a = EXP.run(config, seed=3)
    outputs = {key: EXP.compute_cell(config, 3, key) for key in reversed(EXP.cell_keys(config))}
    b = EXP.merge_cells(config, 3, outputs)
    np.testing.assert_equal(b.metrics, a.metrics)
    assert EXP.summary(a)


def test_step_limit_censors_and_nothing_is_fitted():
    result = EXP.run(dataclasses.replace(EXP.tiny, max_steps=1), seed=0)
    for target in ("staircase", "parity"):
        m = result.metrics[target]
        assert m["converged"] == [0, 0, 0] and m["median_samples"] == [None] * 3 and m["tail"] is None
    assert result.metrics["difference"] is None and "no window observed" in EXP.summary(result)


def test_sgd_learns_the_staircase_faster_than_the_parity():
    """k = 3 at n = 12 (same network and SGD): the staircase's median samples are below the
    parity's; both are learned by most replicas within 3,000 steps."""
    config = dataclasses.replace(EXP.tiny, k=3, ns=(8, 10, 12), replicas=8, width=64, max_steps=3000, eval_size=512,
                                 target_rel_mse=0.1)
    result = EXP.run(config, seed=0)
    s, p = result.metrics["staircase"], result.metrics["parity"]
    assert s["median_samples"][-1] is not None and p["median_samples"][-1] is not None
    assert s["median_samples"][-1] < p["median_samples"][-1]


@pytest.mark.parametrize("changes, match", [
    ({"target_rel_mse": 0.4, "k": 3}, "below 1/k"),
    ({"ns": (3, 5, 6), "k": 3}, "exceed k"),
    ({"ns": (10, 20)}, "slope_window"),
    ({"lr_rule": "cosine"}, "lr_rule"),
])
def test_bad_config(changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        StaircaseConfig(**changes)
