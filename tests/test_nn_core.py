"""The replica axis, initialisation and optimizers of failgeom.nn (docs/architecture.md)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom import nn


def _model():
    return nn.Sequential([nn.Dense(8), nn.ReLU(), nn.Dense(1)])


@settings(max_examples=10)
@given(R=st.integers(2, 5), seed=st.integers(0, 2**32 - 1))
def test_replicas_train_as_independent_networks(R, seed):
    """R replicas in one batched computation give, per replica, exactly what one network trained
    alone on the same data gives (up to float64 rounding of the batched GEMM)."""
    rng = np.random.default_rng(seed)
    gens = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(R)]
    model = _model()
    params, _ = model.init(gens, R, (4,), dtype=np.float64)
    lr = rng.uniform(0.01, 0.1, R)
    opt = nn.SGD(lr)
    xs = rng.standard_normal((3, R, 6, 4))
    ys = rng.choice([-1.0, 1.0], (3, R, 6, 1))
    solo = []
    for r in range(R):  # the reference: one replica at a time
        p, _ = model.init([np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(R)][r:r + 1],
                          1, (4,), dtype=np.float64)
        o = nn.SGD(lr[r])
        for x, y in zip(xs, ys):
            out, cache = model.forward(p, x[r:r + 1])
            _, dout = nn.losses.hinge(out, y[r:r + 1])
            o.step(p, model.backward(p, cache, dout)[1])
        solo.append(p)
    for x, y in zip(xs, ys):
        out, cache = model.forward(params, x)
        _, dout = nn.losses.hinge(out, y)
        opt.step(params, model.backward(params, cache, dout)[1])
    for r in range(R):
        for batched, single in zip(nn.optim.tree_leaves(params), nn.optim.tree_leaves(solo[r])):
            np.testing.assert_allclose(batched[r], single[0], rtol=1e-12, atol=1e-14)


def test_shared_minibatch_broadcasts_without_copy():
    params, _ = nn.Dense(3).init(np.random.default_rng(0), 4, (2,), dtype=np.float64)
    x = np.arange(10.0).reshape(5, 2)
    xs = nn.shared(x, 4)
    assert xs.shape == (4, 5, 2) and np.shares_memory(xs, x)
    y, _ = nn.Dense(3).forward(params, xs)
    for r in range(4):
        np.testing.assert_allclose(y[r], x @ params["W"][r] + params["b"][r], rtol=1e-14)


def test_truncated_normal_matches_original_init():
    """Truncated at 2 std with std 1/sqrt(fan_in): within [-2, 2]/sqrt(fan_in), and the std of a
    normal truncated at 2 sigma is 0.8796 sigma (a standard fact of the truncated normal)."""
    fan_in = 50
    params, _ = nn.Dense(400).init(np.random.default_rng(1), 3, (fan_in,))
    W = params["W"]
    assert W.dtype == np.float32 and W.shape == (3, fan_in, 400)
    sigma = 1 / np.sqrt(fan_in)
    assert np.abs(W).max() <= 2 * sigma + 1e-7
    # 60,000 draws: the sample std's relative standard error is about 0.3%
    assert abs(W.std() / sigma - 0.8796) < 0.01
    assert np.all(params["b"] == 0)


def test_uniform_init_draws_weights_then_bias_per_replica():
    gens = [np.random.default_rng(s) for s in (3, 4)]
    params, out = nn.Dense(6, init="uniform").init(gens, 2, (5, 9), dtype=np.float64)
    assert out == (5, 6) and params["W"].shape == (2, 9, 6) and params["b"].shape == (2, 6)
    for r, g in enumerate(np.random.default_rng(s) for s in (3, 4)):
        np.testing.assert_array_equal(params["W"][r], g.uniform(-1 / 3, 1 / 3, (9, 6)))
        np.testing.assert_array_equal(params["b"][r], g.uniform(-1 / 3, 1 / 3, (6,)))
    p32, _ = nn.Dense(6, bias=False, init="uniform").init([np.random.default_rng(3)], 1, (9,))
    assert set(p32) == {"W"} and p32["W"].dtype == np.float32
    np.testing.assert_array_equal(p32["W"], params["W"][:1].astype(np.float32))
    with pytest.raises(ValueError, match="init must be one of"):
        nn.Conv1D(2, 3, init="uniform")


def test_replica_slice_takes_replicas_of_every_array():
    tree = [{"W": np.arange(12.0).reshape(3, 4), "b": np.arange(3.0)}, {}, ({"c": np.arange(6).reshape(3, 2)},)]
    got = nn.utils.replica_slice(tree, np.array([2, 0]))
    assert isinstance(got, list) and got[1] == {} and isinstance(got[2], tuple)
    np.testing.assert_array_equal(got[0]["W"], tree[0]["W"][[2, 0]])
    np.testing.assert_array_equal(got[0]["b"], [2.0, 0.0])
    np.testing.assert_array_equal(got[2][0]["c"], [[4, 5], [0, 1]])
    got[0]["W"][0, 0] = -1.0
    assert tree[0]["W"][2, 0] == 8.0  # copies
    with pytest.raises(TypeError, match="parameter trees"):
        nn.utils.replica_slice([1.0], np.array([0]))


def test_replica_init_does_not_depend_on_R():
    seq = np.random.SeedSequence(7)
    gens3 = [np.random.default_rng(s) for s in seq.spawn(3)]
    gens5 = [np.random.default_rng(s) for s in np.random.SeedSequence(7).spawn(5)]
    p3, _ = _model().init(gens3, 3, (4,))
    p5, _ = _model().init(gens5, 5, (4,))
    np.testing.assert_array_equal(p3[0]["W"], p5[0]["W"][:3])


def test_float64_on_request():
    params, _ = _model().init(np.random.default_rng(0), 2, (4,), dtype="float64")
    assert all(p.dtype == np.float64 for p in nn.optim.tree_leaves(params))


def test_adam_matches_tensorflow1_formula():
    """Two Adam steps by hand, TF1 form: lr_t = lr sqrt(1-b2^t)/(1-b1^t), m/(sqrt(v)+eps)."""
    b1, b2, eps, lr = nn.PAPER_ADAM["beta1"], nn.PAPER_ADAM["beta2"], nn.PAPER_ADAM["eps"], 0.1
    p = {"W": np.array([[1.0, -2.0]])}
    g1, g2 = np.array([[0.5, 0.1]]), np.array([[-0.3, 0.2]])
    opt = nn.Adam(lr, **nn.PAPER_ADAM)
    opt.step(p, {"W": g1.copy()})
    opt.step(p, {"W": g2.copy()})
    w = np.array([[1.0, -2.0]])
    m = v = 0
    for t, g in enumerate((g1, g2), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(p["W"], w, rtol=1e-14)


def test_sgd_per_replica_learning_rate():
    p = {"W": np.ones((3, 2, 2))}
    nn.SGD(np.array([0.1, 0.2, 0.3])).step(p, {"W": np.ones((3, 2, 2))})
    np.testing.assert_allclose(p["W"][:, 0, 0], [0.9, 0.8, 0.7])


def test_preconditioned_sgd_solves_quadratic_in_one_step():
    """With P = A^{-1}, one step of lr 1 on 0.5 w^T A w - b^T w lands on the minimiser."""
    rng = np.random.default_rng(0)
    M = rng.standard_normal((4, 4))
    A = M @ M.T + 4 * np.eye(4)
    b = rng.standard_normal(4)
    w = {"W": np.zeros((1, 4, 1))}
    grad = {"W": (A @ w["W"][0, :, 0] - b).reshape(1, 4, 1)}
    nn.PreconditionedSGD(1.0, {"W": np.linalg.inv(A)}).step(w, grad)
    np.testing.assert_allclose(w["W"][0, :, 0], np.linalg.solve(A, b), rtol=1e-12)


@pytest.mark.parametrize("bad, match", [
    (lambda: nn.Dense(0), "n_out must be a positive integer"),
    (lambda: nn.Dense(3, init="ones"), "init must be one of"),
    (lambda: nn.Conv2D(2, 4), "size must be odd"),
    (lambda: nn.SGD(-1.0), "lr must be a positive"),
    (lambda: nn.Adam(0.1, beta2=1.0), "beta2 must be a finite number in \\[0, 1\\)"),
    (lambda: nn.Dense(2).init(np.random.default_rng(0), 0, (3,)), "R must be a positive integer"),
    (lambda: nn.Dense(2).init(np.random.default_rng(0), 2, (3,), dtype="int32"), "dtype must be"),
    (lambda: nn.Reshape((4,)).init(np.random.default_rng(0), 1, (3,)), "does not hold the 4 entries"),
    (lambda: nn.MaxPool2D().init(None, 1, (3, 4, 1)), "even H and W"),
    (lambda: nn.losses.softmax_cross_entropy(np.zeros((1, 2, 3)), np.array([0, 3])), "labels must lie"),
    (lambda: nn.losses.hinge(np.zeros((1, 2)), np.ones(2), reduction="avg"), "reduction must be"),
])
def test_bad_input_gets_a_clear_error(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bad()


def test_adam_refuses_a_parameter_tree_it_does_not_hold_moments_for():
    # the moments are made on the first step; a second tree of the same length but other
    # shapes used to be updated with the first tree's moments (broadcast, or an error deep inside)
    opt = nn.Adam(1e-3)
    a = {"W": np.zeros((2, 3, 4)), "b": np.zeros((2, 4))}
    opt.step(a, {"W": np.ones((2, 3, 4)), "b": np.ones((2, 4))})
    b = {"W": np.zeros((2, 3, 1)), "b": np.zeros((2, 1))}
    with pytest.raises(ValueError, match="one Adam per parameter tree"):
        opt.step(b, {"W": np.ones((2, 3, 1)), "b": np.ones((2, 1))})
    with pytest.raises(ValueError, match="one Adam per parameter tree"):
        opt.step({k: v.astype(np.float32) for k, v in a.items()},
                 {"W": np.ones((2, 3, 4), np.float32), "b": np.ones((2, 4), np.float32)})
