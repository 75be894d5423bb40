"""Sec. 2.1, Theorem 1, Lemma 3: gradient variance over orthogonal classes and parities."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import hadamard

import failgeom.theory as T
from failgeom import testing

EPS = np.finfo(np.float64).eps


@settings(deadline=None, max_examples=10)
@given(d=st.integers(0, 10), cols=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_fwht_is_sylvester_hadamard(d, cols, seed):
    a = np.random.default_rng(seed).standard_normal((2**d, cols))
    expected = hadamard(2**d) @ a
    assert_allclose(T.fwht(a.copy()), expected, atol=10 * d * EPS * np.abs(a).sum())


def test_parity_targets_are_characters_of_cube_inputs():
    d = 4
    X, H = T.cube_inputs(d), T.parity_targets(d)
    for v in range(2**d):
        members = [i for i in range(d) if v >> i & 1]
        assert_array_equal(H[v], np.prod(X[:, members], axis=1))
    assert_allclose(H @ H.T / 2**d, np.eye(2**d))  # orthonormal on the uniform cube


@settings(deadline=None, max_examples=25)
@given(H=testing.orthonormal_classes(n_max=40), P=st.integers(1, 12), seed=testing.seeds())
def test_theorem1_square_loss_bound(H, P, seed):
    # Theorem 1: Var <= G^2/|H| for any orthogonal class with E h^2 <= 1.
    rng = np.random.default_rng(seed)
    N = H.shape[1]
    testing.assert_variance_within_bound(rng.standard_normal(N), rng.standard_normal((N, P)), H, "square")


@settings(deadline=None, max_examples=25)
@given(cls=testing.parity_classes(d_max=6), P=st.integers(1, 8), loss=st.sampled_from(["hinge", "square"]),
       seed=testing.seeds())
def test_theorem1_parity_subsets(cls, P, loss, seed):
    # Theorem 1 with h in {+-1}: any subset of parities, square or hinge loss.
    rng = np.random.default_rng(seed)
    N = cls[1].shape[1]
    testing.assert_variance_within_bound(2 * rng.standard_normal(N), rng.standard_normal((N, P)), cls[1], loss)


def test_theorem1_bound_fails_for_non_orthogonal_class():
    # The bound needs orthogonality: identical targets scaled differently break the 1/|H| factor.
    rng = np.random.default_rng(0)
    N, m = 32, 16
    h = rng.choice([-1.0, 1.0], size=N)
    H = h[None, :] * np.linspace(-1, 1, m)[:, None]
    g = h[:, None] * np.ones((N, 1))
    var, bound = T.gradient_variance(np.zeros(N), g, H, "square")
    assert var > bound


@settings(deadline=None, max_examples=12)
@given(d=st.integers(1, 7), seed=st.integers(0, 2**32 - 1), loss=st.sampled_from(["square", "hinge"]))
def test_parity_wht_matches_direct_enumeration(d, seed, loss):
    # The WHT route (with the x_i-shift identity) equals the explicit sum over all 2^d targets.
    rng = np.random.default_rng(seed)
    w = T.init_parity_weights(rng, d)
    w["b1"] = 0.5 * rng.standard_normal(w["b1"].shape)
    w["b2"] = 0.5 * rng.standard_normal(1)
    fast, bound = T.parity_gradient_variance(d, w, loss)
    slow, _ = T.parity_gradient_variance(d, w, loss, method="direct")
    assert fast == pytest.approx(slow, rel=1e-10, abs=1e-300)
    # the bound G^2/2^d against G^2 = E_x ||grad p(x)||^2 from the explicit per-input gradients
    _, g = T.parity_full_gradients(w, T.cube_inputs(d))
    assert bound == pytest.approx(np.mean(np.sum(g**2, axis=1)) / 2**d, rel=1e-12)


@settings(deadline=None, max_examples=6)
@given(d=st.integers(2, 5), seed=st.integers(0, 2**32 - 1))
def test_hinge_decomposition_matches_loss_definition(d, seed):
    # r'(yhat h) h = a + b h: check the variance against grad of mean(relu(1 - h p)) by finite sums.
    rng = np.random.default_rng(seed)
    w = T.init_parity_weights(rng, d, width=3)
    X = T.cube_inputs(d)
    score, g = T.parity_full_gradients(w, X)
    H = T.parity_targets(d)
    grads = np.array([np.mean(np.where(1 - h * score > 0, -h, 0.0)[:, None] * g, axis=0) for h in H])
    expected = np.mean(np.sum((grads - grads.mean(axis=0)) ** 2, axis=1))
    var, _ = T.parity_gradient_variance(d, w, "hinge")
    assert var == pytest.approx(expected, rel=1e-10, abs=1e-300)


@settings(deadline=None, max_examples=8)
@given(d=st.integers(2, 12), seed=st.integers(0, 2**32 - 1), loss=st.sampled_from(["square", "hinge"]))
def test_parity_variance_bound_random_networks(d, seed, loss):
    # Theorem 1 for the paper's network at random weights (biases too): Var <= G^2 / 2^d.
    rng = np.random.default_rng(seed)
    w = T.init_parity_weights(rng, d)
    w["b1"] = rng.standard_normal(w["b1"].shape)
    var, bound = T.parity_gradient_variance(d, w, loss)
    assert 0 <= var <= bound * (1 + 1e-10)


def test_parity_variance_parseval_identity():
    # Exact consequence of Parseval: Var = (E||u||^2 - ||u(1)||^2 / N) / N for the square loss.
    d = 6
    w = T.init_parity_weights(np.random.default_rng(1), d)
    X = T.cube_inputs(d)
    _, g = T.parity_full_gradients(w, X)
    N = 2**d
    expected = (np.mean(np.sum(g**2, axis=1)) - np.sum(g[0] ** 2) / N) / N
    var, _ = T.parity_gradient_variance(d, w, "square")
    assert var == pytest.approx(expected, rel=1e-12)


def test_parity_variance_replica_axis_and_chunking():
    d = 6
    ws = [T.init_parity_weights(np.random.default_rng(s), d) for s in range(3)]
    stacked = {k: np.stack([w[k] for w in ws]) for k in ws[0]}
    var, bound = T.parity_gradient_variance(d, stacked, "hinge", chunk_bytes=8 * 64 * 3)
    for r, w in enumerate(ws):
        v, b = T.parity_gradient_variance(d, w, "hinge")
        assert var[r] == pytest.approx(v, rel=1e-12)
        assert bound[r] == pytest.approx(b, rel=1e-12)


def test_parity_variance_validates():
    w = T.init_parity_weights(np.random.default_rng(0), 4)
    with pytest.raises(ValueError, match="W1 must have 5 input rows"):
        T.parity_gradient_variance(5, w)
    with pytest.raises(ValueError, match="loss must be one of"):
        T.parity_gradient_variance(4, w, "logistic")
    with pytest.raises(ValueError, match="d must be a positive integer"):
        T.parity_gradient_variance(0, w)


@settings(deadline=None, max_examples=30)
@given(data=st.data(), d=st.integers(1, 12))
def test_lemma3_parity_network_is_perfect(data, d):
    # Lemma 3: width > 3d/2, exact on all of {0,1}^d.
    v = np.array(data.draw(st.lists(st.integers(0, 1), min_size=d, max_size=d)))
    net = T.parity_network(v)
    X = T.binary_cube(d)
    assert net["W1"].shape[1] > 1.5 * d
    assert_array_equal(T.two_layer_forward(net, X), (-1.0) ** (X @ v))


def test_lemma3_rejects_non_binary():
    with pytest.raises(ValueError, match="0 and 1"):
        T.parity_network([0, 2, 1])
