"""The two-network model of Sec. 3.1 (N1 shared over the k images, sigmoid junction, N2):
gradients of both losses, and exact per-sample gradients of the score layer (Figure 5)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom import nn
from failgeom.experiments import tuple_lines as tl
from failgeom.experiments import tuple_lines_snr as snr
from failgeom.nn.gradcheck import numerical_gradient, relative_error
from failgeom.nn.utils import tree_leaves

# float64 central differences with h = 1e-6: truncation O(h^2), rounding O(eps / h) ~ 1e-10
TOL = 1e-6


def tiny_model(k):
    """The same two-network structure on 8x8 images (so that every parameter can be checked)."""
    n1 = nn.Sequential([nn.Conv2D(2, 3), nn.MaxPool2D(), nn.Conv2D(2, 3), nn.MaxPool2D(),
                        nn.Flatten(), nn.Dense(4), nn.ReLU(), nn.Dense(3), nn.ReLU(), nn.Dense(1)])
    n2 = nn.Sequential([nn.Sigmoid(), nn.Dense(5), nn.ReLU(), nn.Dense(1)])
    return tl.TupleModel(k, n1, n2)


def tiny_batch(rng, R, B, k, size=8):
    images = rng.standard_normal((R, B, k, size, size))
    image_labels = rng.choice([-1, 1], (R, B, k)).astype(np.int8)
    return images, image_labels, np.prod(image_labels, axis=-1)


@settings(deadline=None, max_examples=6)
@given(k=st.integers(1, 3), R=st.integers(1, 2), B=st.integers(1, 3),
       approach=st.sampled_from(tl.APPROACHES), seed=st.integers(0, 2**32 - 1))
def test_whole_model_gradient_both_losses(k, R, B, approach, seed):
    rng = np.random.default_rng(seed)
    model = tiny_model(k)
    params = model.init(list(rng.spawn(R)), R, np.float64, image_size=8)
    for p in tree_leaves(params):  # move biases off zero so every path is exercised
        p += 0.3 * rng.standard_normal(p.shape)
    images, image_labels, labels = tiny_batch(rng, R, B, k)
    _, grads = tl.loss_and_grads(model, params, images, image_labels, labels, approach)

    def objective():
        out, scores, _ = model.forward(params, images)
        return float(np.sum(tl.tuple_losses(out, scores, image_labels, labels, approach)[0]))

    for i, (p, g) in enumerate(zip(tree_leaves(params), tree_leaves(grads))):
        err = relative_error(g, numerical_gradient(objective, p))
        assert err < TOL, (i, p.shape, err)


@pytest.mark.parametrize("approach", tl.APPROACHES)
def test_full_size_model_directional_derivative(approach):
    """The real 28x28 network: analytic gradient against a central difference along a random
    direction of all parameters (one objective pair instead of 51,000)."""
    rng = np.random.default_rng(3)
    k, R = 2, 2
    model = tl.TupleModel(k)
    params = tl.initial_params(model, 0, range(R), np.float64)
    # continuous pixels: binary line images leave exact ties in the max-pools (flat zero regions),
    # where the loss is not differentiable and a central difference sees a kink
    images, image_labels, labels = tiny_batch(rng, R, 3, k, size=28)
    _, grads = tl.loss_and_grads(model, params, images, image_labels, labels, approach)
    leaves = tree_leaves(params)
    direction = [rng.standard_normal(p.shape) for p in leaves]
    # a unit direction, so that the step h moves the parameters by h and crosses no kink
    norm = np.sqrt(sum(float(np.sum(d * d)) for d in direction))
    direction = [d / norm for d in direction]
    analytic = sum(float(np.sum(g * d)) for g, d in zip(tree_leaves(grads), direction))
    h = 1e-6

    def objective(sign):
        for p, d in zip(leaves, direction):
            p += sign * h * d
        out, scores, _ = model.forward(params, images)
        value = float(np.sum(tl.tuple_losses(out, scores, image_labels, labels, approach)[0]))
        for p, d in zip(leaves, direction):
            p -= sign * h * d
        return value

    numeric = (objective(1) - objective(-1)) / (2 * h)
    assert abs(analytic - numeric) <= TOL * max(1.0, abs(analytic)), (analytic, numeric)


@pytest.mark.parametrize("approach", tl.APPROACHES)
def test_score_layer_per_sample_grads_are_exact(approach):
    """Each tuple's row equals the ordinary gradient of that tuple alone (batch of one)."""
    rng = np.random.default_rng(4)
    k, R, B = 3, 2, 4
    model = tiny_model(k)
    params = model.init(list(rng.spawn(R)), R, np.float64, image_size=8)
    images, image_labels, labels = tiny_batch(rng, R, B, k)
    per = snr.score_layer_grads(model, params, images, image_labels, labels, approach)
    assert per.shape == (R, B, 4)  # the tiny score layer: 3 weights + bias
    for b in range(B):
        sl = slice(b, b + 1)
        out, scores, cache = model.forward(params, images[:, sl])
        _, dout, dscores = tl.tuple_losses(out, scores, image_labels[:, sl], labels[:, sl], approach,
                                           image_loss="sum", reduction="sum")
        _, grads = model.backward(params, cache, dout, dscores)
        g = grads[0][-1]
        np.testing.assert_allclose(per[:, b, :3], g["W"][:, :, 0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(per[:, b, 3], g["b"][:, 0], rtol=1e-12, atol=1e-14)


def test_score_layer_grads_agree_with_sequential_per_example():
    """Summing N1's per-image gradients (``Sequential.per_example_grads``) over the k images of
    a tuple gives the tuple's gradient."""
    rng = np.random.default_rng(6)
    k, R, B = 2, 1, 5
    model = tiny_model(k)
    params = model.init(list(rng.spawn(R)), R, np.float64, image_size=8)
    images, image_labels, labels = tiny_batch(rng, R, B, k)
    per = snr.score_layer_grads(model, params, images, image_labels, labels, "decomposition")
    out, scores, cache = model.forward(params, images)
    _, dout, dscores = tl.tuple_losses(out, scores, image_labels, labels, "decomposition",
                                       image_loss="sum", reduction="sum")
    ds, _ = model.backward(params, cache, dout, dscores, need_n1=False)
    per_image = model.n1.per_example_grads(params[0], cache[0], ds.reshape(R, B * k, 1), len(model.n1.layers) - 1)
    W = per_image["W"].reshape(R, B, k, 3).sum(axis=2)
    np.testing.assert_allclose(per[..., :3], W, rtol=1e-12, atol=1e-14)


def test_both_approaches_start_from_the_same_networks_and_data():
    cfg = tl.TupleLinesConfig(ks=(2,), batch=2, train_size=5, eval_size=4, eval_chunk=4, replicas=2)
    a = tl.Training(cfg, 2, "end_to_end", 7, 0)
    b = tl.Training(cfg, 2, "decomposition", 7, 0)
    for p, q in zip(tree_leaves(a.params), tree_leaves(b.params)):
        np.testing.assert_array_equal(p, q)
    # the fixed training set and the held-out set are shared; the seeds' sets differ
    np.testing.assert_array_equal(a.train_set.params, b.train_set.params)
    np.testing.assert_array_equal(a.eval_images, b.eval_images)
    other = tl.Training(cfg, 2, "end_to_end", 7, 1)
    assert not np.array_equal(a.train_set.params, other.train_set.params)
    # fresh data: each approach and seed has its own stream
    fresh = tl.TupleLinesConfig(**{**cfg.to_dict(), "data": "fresh"})
    c, d = tl.Training(fresh, 2, "end_to_end", 7, 0), tl.Training(fresh, 2, "decomposition", 7, 0)
    assert not np.array_equal(c.batch(1)[0], d.batch(1)[0])


def test_fixed_training_set_is_read_in_order_and_wraps():
    cfg = tl.TupleLinesConfig(ks=(1,), batch=3, train_size=7, eval_size=2, eval_chunk=2, replicas=1)
    cell = tl.Training(cfg, 1, "decomposition", 0)
    everything = cell.train_set.take(np.arange(7))[0]
    rows = [0, 1, 2, 3, 4, 5, 6, 0, 1]
    got = np.concatenate([cell.batch(i)[0] for i in (1, 2, 3)], axis=1)
    np.testing.assert_array_equal(got, everything[:, rows])


def test_original_conv_init_and_image_loss():
    """The original code's conv stds 1/sqrt(28) and 1/4 (truncated at 2 std) and the image
    hinge averaged over all B*k images."""
    model = tl.TupleModel(2)
    params = tl.initial_params(model, 0, (0,), np.float64)
    for layer, std in ((0, 1 / np.sqrt(28)), (1, 1 / 4)):
        W = params[0][layer]["W"]
        assert np.max(np.abs(W)) <= 2 * std + 1e-12
        assert abs(W.std() / (std * 0.88) - 1) < 0.1  # a 2-std truncated normal has std 0.88 std
    rng = np.random.default_rng(0)
    out, scores = rng.standard_normal((1, 5, 1)), rng.standard_normal((1, 5, 2))
    yi = rng.choice([-1, 1], (1, 5, 2)).astype(np.int8)
    y = yi.prod(axis=-1)
    mean, _, ds_mean = tl.tuple_losses(out, scores, yi, y, "decomposition", image_loss="mean")
    summed, _, ds_sum = tl.tuple_losses(out, scores, yi, y, "decomposition", image_loss="sum")
    tuple_part, _, _ = tl.tuple_losses(out, scores, yi, y, "end_to_end")
    img = np.maximum(0, 1 - yi * scores)
    np.testing.assert_allclose(mean - tuple_part, img.mean(axis=(1, 2)))
    np.testing.assert_allclose(summed - tuple_part, img.sum(axis=2).mean(axis=1))
    np.testing.assert_allclose(ds_sum, 2 * ds_mean)


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), C=st.integers(1, 3))
def test_maxpool_ties_go_to_the_first_maximum(seed, C):
    """Binary line images leave many exact ties in a 2x2 block; the gradient goes to the first
    maximum in row-major block order (the reference: reshape + argmax)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (2, 3, 4, 6, C)).astype(np.float64)
    pool = nn.MaxPool2D()
    y, cache = pool.forward({}, x)
    dy = rng.standard_normal(y.shape)
    dx, _ = pool.backward({}, cache, dy)
    blocks = x.reshape(2, 3, 2, 2, 3, 2, C).transpose(0, 1, 2, 4, 6, 3, 5).reshape(2, 3, 2, 3, C, 4)
    np.testing.assert_array_equal(y, blocks.max(axis=-1))
    ref = np.zeros_like(blocks)
    np.put_along_axis(ref, blocks.argmax(axis=-1)[..., None], dy[..., None], axis=-1)
    ref = ref.reshape(2, 3, 2, 3, C, 2, 2).transpose(0, 1, 2, 5, 3, 6, 4).reshape(x.shape)
    np.testing.assert_array_equal(dx, ref)


def test_fused_end_to_end_pass_equals_the_network():
    """end_to_end_score_grads is N2's nn.Sequential forward and backward of the summed tuple hinge,
    chunked (77 does not divide 500), in float64 to rounding and in float32 to float32 precision."""
    from failgeom.experiments.tuple_lines_model import end_to_end_score_grads, n2_network

    rng = np.random.default_rng(0)
    n2 = n2_network()
    p2, _ = n2.init(list(rng.spawn(2)), 2, (3,), np.float64)
    s = rng.standard_normal((2, 500, 3))
    y = rng.choice([-1, 1], (2, 500)).astype(np.int8)
    out, cache = n2.forward(p2, s)
    _, dout = nn.losses.hinge(out, y[..., None].astype(np.float64), reduction="sum")
    ref, _ = n2.backward(p2, cache, dout)
    np.testing.assert_allclose(end_to_end_score_grads(p2, s, y, chunk=77, dtype=np.float64), ref,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(end_to_end_score_grads(p2, s, y, chunk=77), ref, rtol=0, atol=1e-6)
    assert end_to_end_score_grads(p2, s, y).dtype == np.float32
    # labels (T,) shared by the replicas
    np.testing.assert_array_equal(end_to_end_score_grads(p2, s[:1], y[0], dtype=np.float64),
                                  end_to_end_score_grads(p2, s[:1], y[:1], dtype=np.float64)[:1])
