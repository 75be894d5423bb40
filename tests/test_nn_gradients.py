"""Every layer and loss of failgeom.nn against central finite differences in float64.

docs/architecture.md: "Every backward is checked against central finite differences in float64."
The issue's bar is a relative error below 1e-6; with h = 1e-6 the finite-difference error itself
is O(h^2 + eps/h) ~ 1e-10 relative, so 1e-6 leaves room only for a wrong gradient to fail.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom import nn

TOL = 1e-6
seeds = st.integers(0, 2**32 - 1)
replicas = st.integers(1, 3)
batches = st.integers(1, 3)


@settings(max_examples=15)
@given(R=replicas, B=batches, d_in=st.integers(1, 5), d_out=st.integers(1, 5), bias=st.booleans(),
       extra=st.integers(0, 2), seed=seeds)
def test_dense(R, B, d_in, d_out, bias, extra, seed):
    shape = ((extra,) if extra else ()) + (d_in,)
    report = nn.check_layer(nn.Dense(d_out, bias=bias), shape, R=R, batch=B, seed=seed)
    assert report.max_error < TOL, report.errors


@settings(max_examples=15)
@given(R=replicas, B=batches, shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=seeds,
       layer=st.sampled_from([nn.ReLU, nn.Sigmoid, nn.Flatten]))
def test_elementwise_and_flatten(R, B, shape, seed, layer):
    report = nn.check_layer(layer(), tuple(shape), R=R, batch=B, seed=seed)
    assert report.max_error < TOL, report.errors


@settings(max_examples=10)
@given(R=replicas, B=batches, a=st.integers(1, 3), b=st.integers(1, 3), seed=seeds)
def test_reshape(R, B, a, b, seed):
    report = nn.check_layer(nn.Reshape((b, a)), (a * b,), R=R, batch=B, seed=seed)
    assert report.max_error < TOL, report.errors


@settings(max_examples=12)
@given(R=replicas, B=batches, L=st.integers(3, 8), c_in=st.integers(1, 3), c_out=st.integers(1, 3),
       width=st.integers(1, 3), bias=st.booleans(), seed=seeds)
def test_conv1d(R, B, L, c_in, c_out, width, bias, seed):
    report = nn.check_layer(nn.Conv1D(c_out, width, bias=bias), (L, c_in), R=R, batch=B, seed=seed)
    assert report.max_error < TOL, report.errors


@settings(max_examples=10)
@given(R=st.integers(1, 2), B=st.integers(1, 2), H=st.integers(1, 5), W=st.integers(1, 5),
       c_in=st.integers(1, 2), c_out=st.integers(1, 3), size=st.sampled_from([1, 3, 5]),
       bias=st.booleans(), seed=seeds)
def test_conv2d_same(R, B, H, W, c_in, c_out, size, bias, seed):
    report = nn.check_layer(nn.Conv2D(c_out, size, bias=bias), (H, W, c_in), R=R, batch=B, seed=seed)
    assert report.max_error < TOL, report.errors


@settings(max_examples=10)
@given(R=replicas, B=batches, h=st.integers(1, 3), w=st.integers(1, 3), C=st.integers(1, 3), seed=seeds)
def test_maxpool2d(R, B, h, w, C, seed):
    # distinct values per pooling window, so that no finite-difference step crosses a tie
    rng = np.random.default_rng(seed)
    x = rng.permutation(R * B * 4 * h * w * C).reshape(R, B, 2 * h, 2 * w, C) * 0.01
    report = nn.check_layer(nn.MaxPool2D(), (2 * h, 2 * w, C), R=R, batch=B, seed=seed, x=x)
    assert report.max_error < TOL, report.errors


@settings(max_examples=8)
@given(R=st.integers(1, 2), B=st.integers(1, 2), seed=seeds)
def test_cnn_stack(R, B, seed):
    """The LeNet-like stack of Sec. 3.1 in miniature: conv, pool, conv, pool, dense, sigmoid."""
    model = nn.Sequential([nn.Conv2D(2, 3), nn.MaxPool2D(), nn.Conv2D(2, 3), nn.MaxPool2D(),
                           nn.Flatten(), nn.Dense(3), nn.ReLU(), nn.Dense(1), nn.Sigmoid()])
    report = nn.check_layer(model, (4, 4, 1), R=R, batch=B, seed=seed)
    assert report.max_error < TOL, report.errors


shapes = st.tuples(st.integers(1, 3), st.integers(1, 4))


@settings(max_examples=15)
@given(RB=shapes, K=st.integers(1, 4), seed=seeds, reduction=st.sampled_from(["mean", "sum", "none"]),
       shared_target=st.booleans())
def test_losses(RB, K, seed, reduction, shared_target):
    rng = np.random.default_rng(seed)
    R, B = RB
    tshape = (B,) if shared_target else (R, B)
    out = rng.standard_normal((R, B, K))
    # hinge: keep margins away from the kink at 1 (its subgradient is not a derivative)
    y = rng.choice([-1.0, 1.0], size=tshape + (1,))
    score = y * (1.0 + np.sign(rng.standard_normal((R, B, 1))) * rng.uniform(0.1, 2.0, (R, B, 1)))
    errors = {
        "hinge": nn.check_loss(nn.losses.hinge, score, y, reduction=reduction),
        "squared": nn.check_loss(nn.losses.squared, out, rng.standard_normal(tshape + (K,)),
                                 reduction=reduction, coef=0.5),
        "softmax_ce": nn.check_loss(nn.losses.softmax_cross_entropy, out,
                                    rng.integers(0, K, tshape), reduction=reduction),
        "negative_gain": nn.check_loss(nn.losses.expected_negative_gain, out,
                                       rng.choice([-1.0, 1.0], tshape + (K,)), reduction=reduction),
    }
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("loss, out_shape, target_shape", [
    (nn.losses.hinge, (2, 5, 1), (5,)),             # would broadcast to (2, 5, 5)
    (nn.losses.hinge, (2, 5), (2, 5, 1)),
    (nn.losses.squared, (2, 5, 3), (5,)),
    (nn.losses.squared, (2, 5, 3), (3, 5, 3)),
    (nn.losses.expected_negative_gain, (2, 5, 3), (5, 1, 3)),
])
def test_losses_refuse_a_target_that_would_enlarge_the_output(loss, out_shape, target_shape):
    # a shared (B,) label against (R, B, 1) scores used to broadcast silently to (R, B, B)
    with pytest.raises(ValueError, match="does not broadcast"):
        loss(np.zeros(out_shape), np.ones(target_shape))


def test_softmax_cross_entropy_names_bad_shapes():
    with pytest.raises(ValueError, match="logits must have shape"):
        nn.losses.softmax_cross_entropy(np.zeros((2, 3, 4, 5)), np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="labels must have shape"):
        nn.losses.softmax_cross_entropy(np.zeros((2, 3, 4)), np.zeros((3, 2), dtype=int))


@settings(max_examples=10)
@given(R=replicas, B=st.integers(1, 4), seed=seeds, layer=st.sampled_from([0, 2]))
def test_per_example_grads_equal_single_example_grads(R, B, seed, layer):
    rng = np.random.default_rng(seed)
    model = nn.Sequential([nn.Dense(5), nn.ReLU(), nn.Dense(1)])
    params, _ = model.init(rng, R, (3,), dtype=np.float64)
    x = rng.standard_normal((R, B, 3))
    y = rng.choice([-1.0, 1.0], (R, B, 1))
    assert nn.check_per_example(model, params, x, nn.losses.squared, y, layer) < 1e-12


def test_per_example_grads_sum_to_batch_gradient():
    rng = np.random.default_rng(3)
    model = nn.Sequential([nn.Conv1D(2, 3), nn.ReLU(), nn.Flatten(), nn.Dense(1)])
    params, _ = model.init(rng, 2, (6, 1), dtype=np.float64)
    x = rng.standard_normal((2, 5, 6, 1))
    y = rng.choice([-1.0, 1.0], (2, 5, 1))
    out, cache = model.forward(params, x)
    _, dout = nn.losses.hinge(out, y, reduction="sum")
    per = model.per_example_grads(params, cache, dout, 0)
    _, grads = model.backward(params, cache, dout)
    for key in grads[0]:
        np.testing.assert_allclose(per[key].sum(axis=1), grads[0][key], rtol=1e-12, atol=1e-12)


def test_numerical_gradient_rejects_float32():
    with pytest.raises(TypeError, match="float64"):
        nn.numerical_gradient(lambda: 0.0, np.zeros(3, dtype=np.float32))


_NETWORKS = {
    "mlp": (lambda: nn.Sequential([nn.Dense(5), nn.ReLU(), nn.Dense(1)]), (3,)),
    "conv": (lambda: nn.Sequential([nn.Conv1D(2, 3), nn.Sigmoid(), nn.Flatten(), nn.Dense(2, bias=False)]), (6, 1)),
    "image": (lambda: nn.Sequential([nn.Conv2D(2, 3), nn.MaxPool2D(), nn.Flatten(), nn.Dense(1)]), (4, 4, 1)),
}


@settings(max_examples=12, deadline=None)
@given(R=replicas, B=st.integers(1, 4), seed=seeds, net=st.sampled_from(sorted(_NETWORKS)))
def test_per_example_gradients_are_each_examples_own_backward(R, B, seed, net):
    """``Sequential.per_example_gradients`` row [r, b] equals the gradient that backward gives on
    example b alone (a batch of one), raveled in tree_leaves order; the rows sum to the batch
    gradient. Both sides compute the same products in float64, so they agree to rounding."""
    rng = np.random.default_rng(seed)
    make, in_shape = _NETWORKS[net]
    model = make()
    params, out_shape = model.init(rng, R, in_shape, dtype=np.float64)
    x = rng.standard_normal((R, B) + in_shape)
    y = rng.standard_normal((R, B) + out_shape)
    out, cache = model.forward(params, x)
    _, dout = nn.losses.squared(out, y, reduction="sum")
    G = model.per_example_gradients(params, cache, dout)
    P = sum(p[0].size for p in nn.utils.tree_leaves(params))
    assert G.shape == (R, B, P)
    for b in range(B):
        ob, cb = model.forward(params, x[:, b:b + 1])
        _, db = nn.losses.squared(ob, y[:, b:b + 1], reduction="sum")
        _, grads = model.backward(params, cb, db)
        single = np.concatenate([g.reshape(R, -1) for g in nn.utils.tree_leaves(grads)], axis=1)
        np.testing.assert_allclose(G[:, b], single, rtol=1e-10, atol=1e-12)
    _, batch = model.backward(params, cache, dout)
    total = np.concatenate([g.reshape(R, -1) for g in nn.utils.tree_leaves(batch)], axis=1)
    np.testing.assert_allclose(G.sum(axis=1), total, rtol=1e-10, atol=1e-12)


def test_per_example_gradients_keep_the_replica_axis_for_one_replica():
    model = nn.Sequential([nn.Dense(2), nn.ReLU(), nn.Dense(1)])
    params, _ = model.init(np.random.default_rng(0), 1, (3,), dtype=np.float64)
    out, cache = model.forward(params, np.ones((1, 4, 3)))
    assert model.per_example_gradients(params, cache, np.ones_like(out)).shape == (1, 4, 3 * 2 + 2 + 2 + 1)
    with pytest.raises(ValueError, match="no parameters"):
        nn.Sequential([nn.ReLU()]).per_example_gradients([{}], [np.ones((1, 4, 3), bool)], np.ones((1, 4, 3)))
