"""The stocks model (paper Sec. 3.2): one-hot Dense as a row gather, its gradients, the data,
and the row-sparse Adam that must give nn.Adam's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from failgeom import nn
from failgeom.nn import OneHotDense, RowSparseAdam, row_sparse_step
from failgeom.problems.stocks import label_gains, random_gains, random_label_maps, sample_stocks
from failgeom.training import train_step

EPS64 = np.finfo(np.float64).eps


def _one_hot(a, d, dtype=np.float64):
    return (np.arange(d) == a[..., None]).astype(dtype)


def _state(seed, R, d, k, B, bias=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    layer = OneHotDense(d, k, bias=bias)
    params, _ = layer.init(rng, R, (), dtype)
    for p in params.values():  # move off the init (zero bias) so every path is exercised
        p += 0.3 * rng.standard_normal(p.shape)
    # B > d guarantees repeated inputs in the batch: the scatter must add them up
    a = rng.integers(0, d, size=(R, B))
    return rng, layer, params, a


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**31), R=st.integers(1, 3), d=st.integers(1, 6), k=st.integers(2, 5),
       B=st.integers(1, 9), bias=st.booleans())
def test_forward_and_backward_equal_dense_on_one_hot(seed, R, d, k, B, bias):
    """The row gather is exactly e_a^T W + b, and its gradients are nn.Dense's on one-hot x."""
    rng, layer, params, a = _state(seed, R, d, k, B, bias)
    dense = nn.Dense(k, bias=bias)
    x = _one_hot(a, d)
    y, cache = layer.forward(params, a)
    y_dense, cache_dense = dense.forward(params, x)
    # a one-hot product adds exact zeros: equal to the last bit
    assert_array_equal(y, y_dense)
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, dy)
    _, grads_dense = dense.backward(params, cache_dense, dy)
    assert dx is None
    # sums of at most B terms in a different order: a few ulps of the largest partial sum
    tol = 4 * B * EPS64 * np.abs(dy).sum()
    for key in params:
        assert_allclose(grads[key], grads_dense[key], rtol=0, atol=tol)


@settings(deadline=None, max_examples=8)
@given(seed=st.integers(0, 2**31), bias=st.booleans())
def test_gradient_matches_finite_differences(seed, bias):
    """Backward of the model plus the stocks loss against central differences (float64)."""
    rng, layer, params, a = _state(seed, 2, 4, 3, 7, bias)
    z = random_gains(rng, rng.integers(0, 3, size=a.shape), 3, np.float64)

    def objective():
        logits, _ = layer.forward(params, a)
        return float(np.sum(nn.losses.expected_negative_gain(logits, z)[0]))

    logits, cache = layer.forward(params, a)
    _, dout = nn.losses.expected_negative_gain(logits, z)
    _, grads = layer.backward(params, cache, dout)
    for key, p in params.items():
        numeric = nn.numerical_gradient(objective, p)
        # central differences with h = 1e-6: O(h^2) truncation, O(eps/h) rounding
        assert_allclose(grads[key], numeric, rtol=1e-7, atol=1e-9)


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31), B=st.integers(1, 8), bias=st.booleans())
def test_per_example_sq_norms_match_dense_per_example_grads(seed, B, bias):
    rng, layer, params, a = _state(seed, 2, 5, 4, B, bias)
    dy = rng.standard_normal((2, B, 4))
    seq = nn.Sequential([nn.Dense(4, bias=bias)])
    _, cache = seq.forward([params], _one_hot(a, 5))
    per = seq.per_example_grads([params], cache, dy, 0)
    expected = sum(np.sum(g.reshape(2, B, -1) ** 2, axis=2) for g in per.values())
    assert_allclose(layer.per_example_sq_norms(params, dy), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lr", [0.1, np.array([0.1, 0.03, 0.2])])
@pytest.mark.parametrize("block_rows", [None, 1, 7])
def test_row_sparse_adam_gives_nn_adams_numbers_bit_for_bit(dtype, lr, block_rows):
    """RowSparseAdam on the rows == nn.Adam on the dense gradient, after many steps."""
    R, d, k, B = 3, 20, 6, 8
    rng = np.random.default_rng(3)
    layer = OneHotDense(d, k)
    params, _ = layer.init(rng, R, (), dtype)
    dense = {key: v.copy() for key, v in params.items()}
    start = {key: v.copy() for key, v in params.items()}
    labels = random_label_maps(list(rng.spawn(R)), d, k)
    ref, fast = nn.Adam(lr, **nn.PAPER_ADAM), RowSparseAdam(lr, **nn.PAPER_ADAM)
    if block_rows is not None:  # many blocks, some not aligned with the replicas' rows
        fast.BLOCK = block_rows * k
    loss = nn.losses.expected_negative_gain
    for _ in range(30):
        a, _, z = sample_stocks(rng, labels, k, B, "end_to_end", dtype)
        train_step(layer, dense, loss, ref, a, z)
        row_sparse_step(layer, params, loss, fast, a, z)
    for key in params:
        assert_array_equal(params[key], dense[key])
        # not vacuous: every weight moved (Adam moves zero-gradient weights through momentum)
        assert np.all(params[key] != start[key])
    # the optimizer state is the same too (checkpoints of either load into the other)
    for m_fast, m_ref in zip(fast.state_dict()["m"] + fast.state_dict()["v"], ref.state_dict()["m"] + ref.state_dict()["v"]):
        assert_array_equal(m_fast, m_ref)


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31), k=st.integers(2, 40))
def test_gains_have_z_y_one_and_fair_signs_elsewhere(seed, k):
    """z_y = 1, z in {+-1}, and E[z | x] = e_y (Sec. 3.2): the other coordinates average 0."""
    rng = np.random.default_rng(seed)
    labels = random_label_maps(list(rng.spawn(2)), 50, k)
    a, y, z = sample_stocks(rng, labels, k, 4000, "end_to_end")
    assert_array_equal(y, np.take_along_axis(labels, a, 1))
    assert set(np.unique(z)) <= {-1.0, 1.0}
    assert_array_equal(np.take_along_axis(z, y[..., None], -1), 1.0)
    off = z[np.arange(k) != y[..., None]]
    # mean of n fair signs: std 1/sqrt(n); 5 sigma
    assert abs(off.mean()) < 5 / np.sqrt(off.size)
    _, y2, e = sample_stocks(rng, labels, k, 10, "decomposition")
    assert_array_equal(e, label_gains(y2, k))
    assert_array_equal(e.sum(-1), 1.0)


def test_label_maps_are_uniform_and_replica_independent():
    rngs = [np.random.default_rng(s) for s in range(4)]
    labels = random_label_maps(rngs, 20000, 10)
    counts = np.stack([np.bincount(row, minlength=10) for row in labels])
    # multinomial counts: std sqrt(n p (1-p)) = 42.4; 5 sigma
    assert np.abs(counts - 2000).max() < 5 * np.sqrt(20000 * 0.1 * 0.9)
    assert not np.array_equal(labels[0], labels[1])
    # replica r's map depends on its own generator only
    again = random_label_maps([np.random.default_rng(2)], 20000, 10)
    assert_array_equal(again[0], labels[2])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="estimator"):
        sample_stocks(np.random.default_rng(0), np.zeros((1, 3), int), 2, 4, "both")
    layer = OneHotDense(5, 3)
    params, _ = layer.init(np.random.default_rng(0), 2)
    with pytest.raises(ValueError, match="a must"):
        layer.forward(params, np.array([[5, 0], [0, 0]]))
    with pytest.raises(ValueError, match="a must"):
        layer.forward(params, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="in_shape"):
        layer.init(np.random.default_rng(0), 2, (4,))
    with pytest.raises(TypeError, match="k"):
        random_label_maps([np.random.default_rng(0)], 5, 2.5)
