"""The fused conv + pool layer and the Fourier correlation: equal to the plain layers, float64
gradients against central finite differences, initialisation options and bad input.

docs/architecture.md: every backward is checked against central finite differences in float64; the
bar is a relative error below 1e-6 (the finite-difference error itself is ~1e-10 at h = 1e-6).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from failgeom import nn
from failgeom.nn.fourier import FourierCorrelation
from failgeom.problems.lines import sample_line_images

TOL = 1e-6
seeds = st.integers(0, 2**32 - 1)
methods = st.sampled_from(["direct", "fourier"])
#: float64 agreement of two exact algorithms: rounding of sums of O(100) terms of size O(10)
EXACT = 1e-11


def direct_same_correlation(x, K):
    """Reference: ``y[h, w, o, n] = sum_{a, b, c} xpad[h + a, w + b, c, n] K[a, b, c, o]``."""
    H, W = x.shape[:2]
    k = K.shape[0]
    p = k // 2
    xp = np.zeros((H + 2 * p, W + 2 * p) + x.shape[2:])
    xp[p:p + H, p:p + W] = x
    return sum(np.einsum("hwcn,co->hwon", xp[a:a + H, b:b + W], K[a, b]) for a in range(k) for b in range(k))


@settings(max_examples=15)
@given(H=st.integers(1, 9), W=st.integers(1, 9), size=st.sampled_from([1, 3, 5, 7]),
       C=st.integers(1, 4), O=st.integers(1, 4), n=st.integers(1, 3), seed=seeds)
def test_fourier_correlation_is_the_same_correlation(H, W, size, C, O, n, seed):
    """Circular correlation of length H + k//2 (odd and even lengths) cropped = 'same' correlation,
    and the transposed chain is its adjoint in x and in K: <dy, y> = <dx, x> = <dK, K>."""
    rng = np.random.default_rng(seed)
    fc = FourierCorrelation(H, W, size, np.float64)
    x, K = rng.standard_normal((H, W, C, n)), rng.standard_normal((size, size, C, O))
    X, M = fc.spectrum(x), fc.mixing(K)
    y = fc.correlate(X, M)
    assert_allclose(y, direct_same_correlation(x, K), rtol=0, atol=EXACT * size * size * C)
    dy = rng.standard_normal(y.shape)
    dM, dx = fc.backward(dy, X, M)
    dK = fc.kernel_grad(dM, C, O)
    target = np.sum(dy * y)
    assert_allclose([np.sum(dx * x), np.sum(dK * K)], [target, target], rtol=1e-10, atol=1e-10)


def reference_pair(layer, params, x, dy):
    """Forward and backward of Conv2D + MaxPool2D with the same parameters."""
    ref = nn.Sequential([nn.Conv2D(layer.n_out, layer.size, bias=layer.bias), nn.MaxPool2D()])
    y, cache = ref.forward([params, {}], x)
    dx, grads = ref.backward([params, {}], cache, dy)
    return y, dx, grads[0]


@settings(max_examples=12)
@given(R=st.integers(1, 2), B=st.integers(1, 7), h=st.integers(1, 4), w=st.integers(1, 4),
       C=st.integers(1, 5), O=st.integers(1, 4), size=st.sampled_from([1, 3, 5]), bias=st.booleans(),
       method=methods, chunk=st.integers(1, 4), seed=seeds)
def test_conv_pool_equals_conv2d_then_maxpool(R, B, h, w, C, O, size, bias, method, chunk, seed):
    """Same outputs and gradients as the unfused layers, for chunks that do not divide B."""
    rng = np.random.default_rng(seed)
    layer = nn.ConvPool2D(O, size, bias=bias, method=method, chunk=chunk)
    params, out_shape = layer.init(rng, R, (2 * h, 2 * w, C), np.float64)
    if bias:
        params["b"] += rng.standard_normal(params["b"].shape)
    x = rng.standard_normal((R, B, 2 * h, 2 * w, C))
    y, cache = layer.forward(params, x)
    assert y.shape == (R, B) + out_shape
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, dy)
    y_ref, dx_ref, grads_ref = reference_pair(layer, params, x, dy)
    scale = size * size * C
    assert_allclose(y, y_ref, rtol=0, atol=EXACT * scale)
    assert_allclose(dx, dx_ref, rtol=0, atol=EXACT * scale)
    for key in grads_ref:
        assert_allclose(grads[key], grads_ref[key], rtol=0, atol=EXACT * scale * B * h * w)


@pytest.mark.parametrize("method", ["direct", "fourier"])
def test_ties_on_line_images(method):
    """Line images are mostly zero, so the conv output equals the bias on whole blocks. The
    direct kernel computes those values exactly, and routes every tie to the first maximum as
    MaxPool2D does. The Fourier kernel's rounding (~1e-7 in float32) breaks such ties at random;
    the windows of tied outputs are all zero here, so the parameter gradients are unchanged and
    only the input gradient is routed to another, equally valid, maximum (float32, R = 2)."""
    rng = np.random.default_rng(5)
    images, _ = sample_line_images(rng, (2, 6), np.float32)
    x = images[..., None]
    layer = nn.ConvPool2D(4, 5, method=method, chunk=4)
    params, _ = layer.init(rng, 2, (28, 28, 1), np.float32)
    params["b"] += np.float32(0.5)
    y, cache = layer.forward(params, x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, grads = layer.backward(params, cache, dy)
    y_ref, dx_ref, grads_ref = reference_pair(layer, params, x, dy)
    tied = y_ref == params["b"][:, None, None, None, :]
    assert np.mean(tied) > 0.5  # ties are the common case
    assert_allclose(y, y_ref, rtol=0, atol=1e-5)
    assert_allclose(grads["W"], grads_ref["W"], rtol=1e-4, atol=1e-4)
    assert_allclose(grads["b"], grads_ref["b"], rtol=1e-5, atol=1e-5)
    if method == "direct":
        np.testing.assert_array_equal(y[tied], y_ref[tied])
        assert_allclose(dx, dx_ref, rtol=0, atol=1e-5)


@settings(max_examples=10)
@given(R=st.integers(1, 2), B=st.integers(1, 2), h=st.integers(1, 3), w=st.integers(1, 2),
       C=st.integers(1, 3), O=st.integers(1, 3), size=st.sampled_from([1, 3, 5]), bias=st.booleans(),
       method=methods, seed=seeds)
def test_conv_pool_gradients(R, B, h, w, C, O, size, bias, method, seed):
    layer = nn.ConvPool2D(O, size, bias=bias, method=method, chunk=1)
    report = nn.check_layer(layer, (2 * h, 2 * w, C), R=R, batch=B, seed=seed)
    assert report.max_error < TOL, report.errors


@settings(max_examples=5)
@given(R=st.integers(1, 2), B=st.integers(1, 3), seed=seeds)
def test_stack_of_two_on_the_batch_innermost_layout(R, B, seed):
    """The Sec. 3.1 stack in miniature: the first block's batch-innermost output feeds the second
    block and Flatten + Dense (both kernels, chunk 2); gradients against finite differences."""
    model = nn.Sequential([nn.ConvPool2D(2, 3, method="direct", chunk=2),
                           nn.ConvPool2D(3, 3, method="fourier", chunk=2),
                           nn.Flatten(), nn.Dense(3), nn.ReLU(), nn.Dense(1), nn.Sigmoid()])
    report = nn.check_layer(model, (4, 4, 1), R=R, batch=B, seed=seed)
    assert report.max_error < TOL, report.errors


def test_workers_give_identical_numbers():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 8, 8, 3)).astype(np.float32)
    results = []
    for workers in (1, 3):
        layer = nn.ConvPool2D(4, 5, chunk=2, workers=workers)
        params, _ = layer.init(np.random.default_rng(1), 2, (8, 8, 3))
        y, cache = layer.forward(params, x)
        dx, grads = layer.backward(params, cache, np.ones_like(y))
        results.append((y, dx, grads["W"], grads["b"]))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_per_example_grads_sum_to_the_batch_gradient():
    rng = np.random.default_rng(4)
    layer = nn.ConvPool2D(3, 3, chunk=2)
    params, _ = layer.init(rng, 2, (4, 6, 2), np.float64)
    x = rng.standard_normal((2, 5, 4, 6, 2))
    y, cache = layer.forward(params, x)
    dy = rng.standard_normal(y.shape)
    per = layer.per_example_grads(params, cache, dy)
    _, grads = layer.backward(params, cache, dy)
    assert per["W"].shape == (2, 5, 3, 3, 2, 3) and per["b"].shape == (2, 5, 3)
    for key in grads:
        assert_allclose(per[key].sum(axis=1), grads[key], rtol=1e-12, atol=1e-12)
    _, one = layer.backward(params, layer.forward(params, x[:, 3:4])[1], dy[:, 3:4])
    assert_allclose(per["W"][:, 3], one["W"], rtol=1e-12)


@pytest.mark.parametrize("make", [lambda **kw: nn.Conv2D(8, 5, **kw), lambda **kw: nn.ConvPool2D(8, 5, **kw)])
def test_init_std_is_the_truncated_normal_std(make):
    """``init_std`` sets the std of TensorFlow's truncated normal (re-drawn outside 2 std, so
    the sample std is 0.8796 init_std); the default stays 1/sqrt(fan-in) = 1/sqrt(25 C)."""
    C = 16
    ratio = 0.87962566  # std of N(0, 1) truncated to [-2, 2]
    for kwargs, std in (({}, 1 / np.sqrt(25 * C)), ({"init_std": 0.25}, 0.25)):
        params, _ = make(**kwargs).init(np.random.default_rng(0), 2, (14, 14, C), np.float64)
        W = params["W"]
        assert np.abs(W).max() <= 2 * std
        # 2 * 25 * 16 * 8 = 6400 draws: the sample std is within 3% of its mean w.h.p.
        assert_allclose(W.std(), ratio * std, rtol=0.03)
    a = make(init_std=0.25).init(np.random.default_rng(0), 1, (14, 14, C))[0]["W"]
    b = make().init(np.random.default_rng(0), 1, (14, 14, C))[0]["W"]
    assert_allclose(a, b * np.float32(0.25 * np.sqrt(25 * C)), rtol=1e-5)  # same draws, rescaled


@pytest.mark.parametrize("bad, match", [
    (lambda: nn.ConvPool2D(2, 4), "size must be odd"),
    (lambda: nn.ConvPool2D(2, 3, method="fft"), "method must be one of"),
    (lambda: nn.ConvPool2D(2, 3, init_std=0.0), "init_std must be a positive"),
    (lambda: nn.Conv2D(2, 3, init_std=float("nan")), "init_std must be a positive"),
    (lambda: nn.ConvPool2D(2, 3, chunk=0), "chunk must be a positive integer"),
    (lambda: nn.ConvPool2D(2, 3).init(np.random.default_rng(0), 1, (5, 4, 1)), "even H and W"),
    (lambda: nn.ConvPool2D(2, 3).forward(nn.ConvPool2D(2, 3).init(np.random.default_rng(0), 1, (4, 4, 1))[0],
                                         np.zeros((1, 2, 4, 4, 3))), "x must have shape"),
])
def test_bad_arguments_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_stack_matches_torch():
    """The Sec. 3.1 N1 on ConvPool2D computes what PyTorch's Conv2d + MaxPool2d + Linear stack
    computes, and the same gradients (float64, random images so that no pooling window ties;
    only where torch is installed, it is no dependency). Weights map across layouts: a kernel
    (k, k, C, O) is torch's (O, C, k, k), and the first Dense reads (i, j, c)-ordered features
    where torch flattens (c, i, j)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    model = nn.Sequential([nn.ConvPool2D(4, 5, init_std=0.2), nn.ConvPool2D(4, 5, init_std=0.25),
                           nn.Flatten(), nn.Dense(6), nn.ReLU(), nn.Dense(1)])
    params, _ = model.init(rng, 1, (12, 12, 1), np.float64)
    for p in (params[0], params[1]):
        p["b"] += 0.1 * rng.standard_normal(p["b"].shape)
    x = rng.random((1, 5, 12, 12, 1))
    out, cache = model.forward(params, x)
    dout = rng.standard_normal(out.shape)
    _, grads = model.backward(params, cache, dout)

    T = torch.nn
    net = T.Sequential(T.Conv2d(1, 4, 5, padding=2), T.MaxPool2d(2), T.Conv2d(4, 4, 5, padding=2),
                       T.MaxPool2d(2), T.Flatten(), T.Linear(36, 6), T.ReLU(), T.Linear(6, 1)).double()
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    # Dense rows (i, j, c) -> torch's flattening (c, i, j)
    dense_rows = np.arange(36).reshape(3, 3, 4).transpose(2, 0, 1).reshape(-1)
    with torch.no_grad():
        for layer, p in ((net[0], params[0]), (net[2], params[1])):
            layer.weight.copy_(to_t(p["W"][0].transpose(3, 2, 0, 1)))
            layer.bias.copy_(to_t(p["b"][0]))
        net[5].weight.copy_(to_t(params[3]["W"][0][dense_rows].T))
        net[5].bias.copy_(to_t(params[3]["b"][0]))
        net[7].weight.copy_(to_t(params[5]["W"][0].T))
        net[7].bias.copy_(to_t(params[5]["b"][0]))
    out_t = net(to_t(x[0].transpose(0, 3, 1, 2)))
    (out_t * to_t(dout[0])).sum().backward()
    assert_allclose(out[0], out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    for layer, g in ((net[0], grads[0]), (net[2], grads[1])):
        assert_allclose(g["W"][0].transpose(3, 2, 0, 1), layer.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        assert_allclose(g["b"][0], layer.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert_allclose(grads[3]["W"][0][dense_rows].T, net[5].weight.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_pickled_layer_computes_the_same():
    import pickle

    layer = nn.ConvPool2D(3, 3)
    params, _ = layer.init(np.random.default_rng(0), 1, (6, 6, 4))
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6, 4)).astype(np.float32)
    y, _ = layer.forward(params, x)
    blob = pickle.dumps(layer)
    assert len(blob) < 2000  # the transform tables (here 20 KB) are not pickled
    np.testing.assert_array_equal(pickle.loads(blob).forward(params, x)[0], y)
