"""sparse-parity: k-subsets, the accuracy check, censoring, the protocols, hidden progress, cells
and merge."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom.experiments import get
from failgeom.experiments.parity_models import FirstHit, check_chunks, init_params, sparse_network, support_ratio
from failgeom.experiments.sparse_parity import SparseParityConfig
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


def test_uniform_init_draws_as_the_stored_runs():
    """nn.Dense(init="uniform") layer by layer on the replicas' own generators gives the draws of
    the hand-written initialiser the stored runs used (W1, b1, W2, b2 from each generator)."""
    n, width, R = 7, 5, 3
    params = init_params(sparse_network(width), [np.random.default_rng(s) for s in range(R)], n, width,
                         "uniform", np.float32)
    shapes = [(n, width), (width,), (width, 1), (1,)]
    ref = [np.empty((R,) + s) for s in shapes]
    for r, rng in enumerate(np.random.default_rng(s) for s in range(R)):
        for a, shape, fan_in in zip(ref, shapes, (n, n, width, width)):
            a[r] = rng.uniform(-1.0 / np.sqrt(fan_in), 1.0 / np.sqrt(fan_in), shape)
    got = [params[0]["W"], params[0]["b"], params[2]["W"], params[2]["b"]]
    assert params[1] == {}
    for g, a in zip(got, ref):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, a.astype(np.float32))


def test_stop_fraction_and_groups():
    """Four replicas in two groups; the check passes replicas 0 and 1 (perfect networks) only.
    With stop_fraction 1 training stops once group 0 = {0, 1} has all learned; with one group it
    does not (half learned), and at stop_fraction 0.5 it does."""
    subsets = k_subsets(np.random.default_rng(0).spawn(4), 12, 3)
    params = _pm1_parity_params(subsets)
    params[2]["W"][2:] = 0
    params[2]["b"][2:] = 0
    model = sparse_network(params[0]["W"].shape[-1])

    def hook(**kw):
        return FirstHit(model, params, subsets, np.random.default_rng(1), eval_size=512, target=1.0, growth=0.0,
                        dtype=np.float32, **kw)

    from failgeom.training import StopTraining
    with pytest.raises(StopTraining):
        hook(groups=[0, 0, 1, 1])(1)
    one = hook()
    one(1)
    np.testing.assert_array_equal(one.first, [1, 1, -1, -1])
    with pytest.raises(StopTraining):
        hook(stop_fraction=0.5)(1)


def test_support_ratio_and_the_watch():
    """Rows of the support scaled by 3: the ratio is 3 exactly; the watch records the check at
    which the ratio first reaches its threshold."""
    rng = np.random.default_rng(0)
    subsets = k_subsets(rng.spawn(3), 10, 2)
    W1 = rng.uniform(-1, 1, (3, 10, 8))
    W1 = np.sign(W1)  # every |w| = 1
    W1[subsets] *= 3
    np.testing.assert_allclose(support_ratio(W1, subsets), 3.0)
    params = _pm1_parity_params(subsets)
    model = sparse_network(params[0]["W"].shape[-1])
    values = iter([np.array([1.0, 2.0, 1.0]), np.array([2.0, 2.0, 1.2])])
    hit = FirstHit(model, params, subsets, np.random.default_rng(1), eval_size=64, target=1.0, growth=0.0,
                   dtype=np.float32, stop=False, watch=(lambda: next(values), 1.5))
    hit(1)
    hit(2)
    np.testing.assert_array_equal(hit.progress, [2, 1, -1])


def test_protocol_settings():
    c = SparseParityConfig(lr=0.1, lr_ref_n=20, lr_grid=(0.5, 2.0), grid_replicas=3, batch=32, batch_alt=8,
                           replicas=4, max_steps=1000)
    fixed, scaled = c.protocol("fixed", 80), c.protocol("scaled", 80)
    np.testing.assert_allclose(fixed["lr"], 0.1)
    np.testing.assert_allclose(scaled["lr"], 0.025)  # proportional to 1/n, equal to lr at n = 20
    best = c.protocol("best", 80)
    np.testing.assert_allclose(best["lr"], [0.05] * 3 + [0.2] * 3)
    assert best["groups"].tolist() == [0, 0, 0, 1, 1, 1] and best["replicas"] == 6
    small = c.protocol("batch", 80)
    # the same lr per sample and the same sample budget
    assert small["batch"] == 8 and small["max_steps"] == 4000
    np.testing.assert_allclose(small["lr"] / small["batch"], fixed["lr"] / fixed["batch"])
    with pytest.raises(ValueError, match="unknown protocol"):
        c.protocol("adam", 80)


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


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_learning_rate_freezes_its_replicas_and_not_the_cell():
    """lr 0.1 x 1000 in the grid overflows within a few steps: those replicas are marked diverged,
    never learned (censored where the cell stops), and the others still learn."""
    config = _tiny(replicas=2, ns_k2=(6, 7, 8), ns_dense=(), protocols=("best",), lr_grid=(1.0, 1000.0),
                   grid_replicas=3, max_steps=2000, width=32, eval_size=512)
    out = EXP.compute_cell(config, 0, ("sparse", "best", 2, 8))
    assert out["diverged"] == 3 and all(s is None for s in out["steps"][3:])
    assert all(s is not None for s in out["steps"][:3])
    row = EXP.run(config, seed=0).metrics["best k=2"]
    assert row["diverged"] == [3, 3, 3] and row["best_lr"] == [0.1] * 3


def test_step_limit_censors_every_replica_and_says_so():
    result = EXP.run(_tiny(max_steps=1, ns_dense=()), seed=0)
    for protocol in EXP.tiny.protocols:
        row = result.metrics[f"{protocol} k=2"]
        assert row["converged"] == [0, 0, 0] and row["median_samples"] == [None] * 3
        assert row["tail"] is None and all(w["slope"] is None for w in row["windows"])
    assert "no window observed" in EXP.summary(result)
    assert result.metrics["table"][0]["spread"] is None


def test_sgd_learns_sparse_parities_and_not_a_dense_one():
    """k = 2 at n = 8..12 is learned by every replica within 3,000 steps (about 150 are needed);
    the dense parity at n = 24 (k = 12, C(24, 12) = 2.7e6 targets) is not learned in 300 steps;
    the first layer concentrates on the support (hidden progress) in the k = 2 runs."""
    config = _tiny(replicas=4, ns_k2=(8, 10, 12), ns_dense=(24,), width=64, max_steps=3000, dense_max_steps=300,
                   eval_size=1024, protocols=("fixed",))
    result = EXP.run(config, seed=1)
    row = result.metrics["fixed k=2"]
    assert row["converged"] == [4, 4, 4] and row["tail"]["slope"] is not None
    assert result.metrics["dense"]["censored"] == [4]
    assert result.metrics["gf2"]["successes_with_n_plus_10"] == result.metrics["gf2"]["total_trials"]
    assert all(h["progress_seen"] >= 1 for h in row["hidden_progress"])
    curve = result.curves["k=2 n=12 fixed"]
    assert np.mean(curve["support_ratio"][-1]) > np.mean(curve["support_ratio"][0])


def test_streams_are_distinct():
    with record_streams() as streams:
        EXP.run(EXP.tiny, seed=0)
    assert len(streams) == len(set(streams)) > 0


@pytest.mark.parametrize("changes, match", [
    ({"ns_k2": (), "ns_k3": (), "ns_k4": ()}, "at least one"),
    ({"ns_k2": (10, 20)}, "at least slope_window"),
    ({"ns_k2": (40, 20, 10)}, "increasing"),
    ({"protocols": ("fixed", "fixed")}, "distinct"),
    ({"protocols": ("sgd",)}, "protocols"),
    ({"lr_grid": (1.0, 1.0)}, "lr_grid"),
    ({"ns_k3": (3, 5, 6)}, "ns_k3"),
    ({"width": 0}, "width"),
    ({"loss": "logistic"}, "loss"),
    ({"lr": 0.0}, "lr"),
    ({"target_accuracy": 0.5}, "target_accuracy"),
])
def test_bad_config(changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SparseParityConfig(**changes)
