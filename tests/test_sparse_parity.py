"""sparse-parity: k-subsets, the accuracy check, censoring, the bootstrap fit, cells and merge."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom.experiments import get
from failgeom.experiments.sparse_parity import (
    FirstHit,
    SparseParityConfig,
    bootstrap_exponent,
    check_chunks,
    init_params,
    sparse_network,
)
from failgeom.problems.sparse_parity import class_size, dense_k, k_subsets, subset_indices
from failgeom.theory.orthogonal import parity_network
from failgeom.training import record_streams

EXP = get("sparse-parity")


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 60), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_k_subsets_have_exactly_k_members(n, data, seed):
    k = data.draw(st.integers(1, n))
    subsets = k_subsets(np.random.default_rng(seed).spawn(5), n, k)
    assert subsets.shape == (5, n) and np.all(subsets.sum(axis=1) == k)
    assert [len(s) for s in subset_indices(subsets)] == [k] * 5


def test_subset_sizes_and_bad_k():
    assert dense_k(16) == 8 and dense_k(3) == 1 and class_size(16, 8) == 12870
    for bad, error in ((0, ValueError), (7, ValueError), (True, TypeError), (2.0, TypeError)):
        with pytest.raises(error, match="k must"):
            k_subsets(np.random.default_rng(0).spawn(1), 6, bad)


@pytest.mark.parametrize("size", [1, 63, 64, 100, 8192, 10_000])
def test_check_chunks_cover_the_sample(size):
    chunks = check_chunks(size)
    assert sum(chunks) == size and chunks[0] == min(64, size)
    assert all(c <= max(64, sum(chunks[:i])) for i, c in enumerate(chunks))


def _pm1_parity_params(subsets, dtype=np.float32):
    """Lemma 3's exact network for each subset, rewritten for inputs in {±1} (bit = (1 - x) / 2)."""
    nets = [parity_network(s.astype(int)) for s in subsets]
    W1 = np.stack([-net["W1"] / 2 for net in nets])
    b1 = np.stack([net["b1"] + net["W1"].sum(axis=0) / 2 for net in nets])
    W2 = np.stack([net["W2"] for net in nets])
    b2 = np.stack([net["b2"] for net in nets])
    return [{"W": W1.astype(dtype), "b": b1.astype(dtype)}, {}, {"W": W2.astype(dtype), "b": b2.astype(dtype)}]


def test_first_hit_passes_exactly_the_replicas_that_are_right():
    """A perfect network passes a check of 8192 inputs; its negation and a zero network (score 0
    counts as wrong) fail at the first chunk; training stops once all have passed."""
    subsets = k_subsets(np.random.default_rng(0).spawn(4), 12, 3)
    params = _pm1_parity_params(subsets)
    params[2]["W"][1] *= -1
    params[2]["b"][1] *= -1
    params[2]["W"][2] = 0
    params[2]["b"][2] = 0
    model = sparse_network(params[0]["W"].shape[-1])
    hit = FirstHit(model, params, subsets, np.random.default_rng(1), eval_size=8192, target=1.0, growth=0.0,
                   dtype=np.float32)
    np.testing.assert_array_equal(hit.passes(np.arange(4)), [True, False, False, True])
    hit(1)
    np.testing.assert_array_equal(hit.first, [1, -1, -1, 1])
    assert FirstHit(model, params, subsets, np.random.default_rng(1), eval_size=8192, target=0.99, growth=0.0,
                    dtype=np.float32).allowed == 81


def test_uniform_init_bounds():
    rngs = [np.random.default_rng(s) for s in range(3)]
    params = init_params(sparse_network(50), rngs, 20, 50, "uniform", np.float32)
    assert params[0]["W"].shape == (3, 20, 50) and params[2]["b"].shape == (3, 1)
    assert np.abs(params[0]["W"]).max() <= 1 / np.sqrt(20) and np.abs(params[2]["W"]).max() <= 1 / np.sqrt(50)
    assert np.abs(params[0]["b"]).min() > 0  # non-zero biases, unlike the paper's init


def test_bootstrap_recovers_a_known_exponent():
    """Steps ~ 3 n^1.5 with lognormal replica noise (sigma 0.2, 32 replicas): the fit is within
    0.1 of 1.5 and the 95% interval holds it (a fixed seed; the interval half-width is ~0.05)."""
    rng = np.random.default_rng(7)
    ns = np.array([10, 20, 40, 80])
    steps = 3 * ns[:, None] ** 1.5 * np.exp(0.2 * rng.standard_normal((4, 32)))
    fit = bootstrap_exponent(ns, steps, np.random.default_rng(8), 2000)
    assert abs(fit["exponent"] - 1.5) < 0.1
    assert fit["ci95"][0] <= 1.5 <= fit["ci95"][1] and fit["ci95"][1] - fit["ci95"][0] < 0.3
    exact = bootstrap_exponent(ns, np.repeat((5 * ns**2.0)[:, None], 8, axis=1), np.random.default_rng(0), 200)
    np.testing.assert_allclose([exact["exponent"], *exact["ci95"]], 2.0, rtol=1e-12)


def test_censored_median_is_reported_not_dropped():
    """Three of four replicas censored at n = 40: the median is censored, so is the exponent;
    only the ~5% of resamples with three copies of the finite replica have a finite median
    there, so the interval's upper end is unbounded (None = +inf)."""
    ns = np.array([10, 20, 40])
    steps = np.array([[100.0] * 4, [300.0] * 4, [np.inf] * 3 + [900.0]])
    fit = bootstrap_exponent(ns, steps, np.random.default_rng(0), 500)
    assert fit["exponent"] is None and fit["median_steps"][2] is None
    assert fit["ci95"][1] is None and 0.9 < fit["bootstrap_censored_fraction"] < 0.99
    steps[2] = np.inf
    fit = bootstrap_exponent(ns, steps, np.random.default_rng(0), 500)
    assert fit["ci95"] == [None, None] and fit["bootstrap_censored_fraction"] == 1.0


def _tiny(**changes):
    return dataclasses.replace(EXP.tiny, **changes)


def test_tiny_run_is_deterministic_and_merge_equals_serial():
    config = EXP.tiny
    a = EXP.run(config, seed=3)
    keys = EXP.cell_keys(config)
    outputs = {key: EXP.compute_cell(config, 3, key) for key in reversed(keys)}
    b = EXP.merge_cells(config, 3, outputs)
    np.testing.assert_equal(b.metrics, a.metrics)  # NaN-aware, recursive
    np.testing.assert_equal(b.curves, a.curves)
    assert EXP.run(config, seed=4).metrics != a.metrics


def test_step_limit_censors_every_replica_and_says_so():
    result = EXP.run(_tiny(max_steps=1, ns_dense=()), seed=0)
    row = result.metrics["k=2"]
    assert row["censored"] == [2, 2, 2] and row["median_steps"] == [None] * 3
    assert row["exponent"] is None and not row["consistent_leap"] and not row["consistent_sq"]
    assert "censored" in EXP.summary(result)


def test_the_largest_n_get_a_fit_of_their_own():
    result = EXP.run(_tiny(ns_k2=(4, 5, 6, 7), tail_points=3, ns_dense=()), seed=0)
    tail = result.metrics["k=2"]["tail"]
    assert tail["ns"] == [5, 6, 7] and result.metrics["table"][0]["tail"] == tail


def test_sgd_learns_sparse_parities_and_not_a_dense_one():
    """k = 2 at n = 8..12 is learned by every replica within 3,000 steps (about 150 are needed);
    the dense parity at n = 24 (k = 12, C(24, 12) = 2.7e6 targets) is not learned in 300 steps."""
    config = _tiny(replicas=4, ns_k2=(8, 10, 12), ns_dense=(24,), width=64, max_steps=3000, dense_max_steps=300,
                   eval_size=1024)
    result = EXP.run(config, seed=1)
    assert result.metrics["k=2"]["censored"] == [0, 0, 0]
    assert result.metrics["dense"]["censored"] == [4]
    assert result.metrics["gf2"]["successes_with_n_plus_10"] == result.metrics["gf2"]["total_trials"]


def test_streams_are_distinct():
    with record_streams() as streams:
        EXP.run(EXP.tiny, seed=0)
    assert len(streams) == len(set(streams)) > 0


@pytest.mark.parametrize("changes, match", [
    ({"ns_k2": (), "ns_k3": (), "ns_k4": ()}, "at least one"),
    ({"ns_k2": (10, 20)}, "at least 3"),
    ({"ns_k3": (3, 5, 6)}, "ns_k3"),
    ({"width": 0}, "width"),
    ({"loss": "logistic"}, "loss"),
    ({"lr": 0.0}, "lr"),
    ({"target_accuracy": 0.5}, "target_accuracy"),
])
def test_bad_config(changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SparseParityConfig(**changes)
