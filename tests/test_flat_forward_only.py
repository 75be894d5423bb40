"""The forward-only (Isotron / GLMtron) update rule of Sec. 5.5 in the network core."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from failgeom import nn
from failgeom.nn import StraightThrough, forward_only_grads, forward_only_step
from failgeom.problems.steps import draw_targets, paper_grids, sample_steps
from failgeom.training import train_step


def half_squared(out, target, reduction="mean"):
    return nn.losses.squared(out, target, reduction=reduction, coef=0.5)


def linear_step_problem(seed, R=3, B=64, n=20):
    rng = np.random.default_rng(seed)
    v_star, b_star = draw_targets(list(rng.spawn(R)), n)
    step = paper_grids(b_star)
    x, r, _, y = sample_steps(rng, v_star, b_star, step, B, np.float64)
    model = nn.Sequential([nn.Dense(1), StraightThrough(step, name="u")])
    params, _ = model.init(rng, R, (n,), np.float64)
    # start near the target so that the residuals u(w^T x + b) - y are a mix of zeros and jumps
    params[0]["W"][..., 0] = v_star + 0.3 * rng.standard_normal(v_star.shape)
    params[0]["b"][:, 0] = b_star + 0.05 * rng.standard_normal(R)
    return step, model, params, x, y


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**32 - 1))
def test_forward_only_update_is_the_isotron_direction(seed):
    # Sec. 5.5: the update is E[(u(w^T x + b) - y) x] for w and E[u(w^T x + b) - y] for b
    step, model, params, x, y = linear_step_problem(seed)
    value, grads = forward_only_grads(model, params, half_squared, x, y)
    W, b = params[0]["W"][..., 0], params[0]["b"][:, 0]
    resid = step(np.einsum("rbn,rn->rb", x, W) + b[:, None]) - y[..., 0]
    assert_allclose(grads[0]["W"][..., 0], np.einsum("rb,rbn->rn", resid, x) / x.shape[1], rtol=1e-12, atol=1e-15)
    assert_allclose(grads[0]["b"][:, 0], resid.mean(axis=1), rtol=1e-12, atol=1e-15)
    assert_allclose(value, 0.5 * (resid**2).mean(axis=1), rtol=1e-12)
    assert grads[1] == {}


@settings(deadline=None, max_examples=5)
@given(seed=st.integers(0, 2**32 - 1))
def test_forward_only_equals_square_loss_gradient_with_identity_backward(seed):
    # The square loss with u replaced by the identity in the backward pass: at w0 its gradient is
    # that of F(w) = 0.5 E[(w^T x + b + c - y)^2] with c = u(r0) - r0 held fixed at w0.
    step, model, params, x, y = linear_step_problem(seed, R=2, B=32, n=6)
    _, grads = forward_only_grads(model, params, half_squared, x, y)
    W, b = params[0]["W"], params[0]["b"]
    r0 = np.einsum("rbn,rn->rb", x, W[..., 0]) + b
    c = step(r0) - r0

    def surrogate():
        r = np.einsum("rbn,rn->rb", x, W[..., 0]) + b
        return np.sum(0.5 * np.mean((r + c - y[..., 0]) ** 2, axis=1))

    # the surrogate is quadratic: central differences are exact up to rounding (~1e-16 / h)
    assert_allclose(grads[0]["W"], nn.numerical_gradient(surrogate, W, h=1e-5), rtol=1e-7, atol=1e-9)
    assert_allclose(grads[0]["b"], nn.numerical_gradient(surrogate, b, h=1e-5), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("activation", [nn.Sigmoid(), nn.ReLU()])
def test_any_monotone_layer_is_skipped_and_straight_through_agrees(activation):
    # the same update from (a) forward_only_step on an ordinary monotone layer and (b) the
    # ordinary train_step on a StraightThrough of the same function; it differs from backprop
    rng = np.random.default_rng(7)
    R, B, n = 2, 16, 5
    x = rng.standard_normal((R, B, n))
    y = rng.uniform(0, 1, size=(R, B, 1))
    model_a = nn.Sequential([nn.Dense(4), nn.ReLU(), nn.Dense(1), activation])
    fn = lambda t: activation.forward({}, t)[0]  # noqa: E731
    model_b = nn.Sequential([nn.Dense(4), nn.ReLU(), nn.Dense(1), StraightThrough(fn)])
    params_a, _ = model_a.init(np.random.default_rng(1), R, (n,), np.float64)
    params_b = [{k: v.copy() for k, v in p.items()} for p in params_a]
    params_c = [{k: v.copy() for k, v in p.items()} for p in params_a]
    va = forward_only_step(model_a, params_a, half_squared, nn.SGD(0.1), x, y)
    vb = train_step(model_b, params_b, half_squared, nn.SGD(0.1), x, y)
    train_step(model_a, params_c, half_squared, nn.SGD(0.1), x, y)  # plain backprop
    assert_allclose(va, vb, rtol=1e-14)
    for pa, pb in zip(params_a, params_b):
        for key in pa:
            assert_allclose(pa[key], pb[key], rtol=1e-13, atol=1e-15)
    assert not np.allclose(params_a[2]["W"], params_c[2]["W"])


def test_plain_gradient_through_the_step_is_zero_but_forward_only_moves():
    # u' = 0 almost everywhere: backprop through u (derivative 0) leaves w unchanged; the
    # forward-only rule moves it along E[(u - y) x]
    step, _, params, x, y = linear_step_problem(3)

    class ExactStep(nn.Layer):
        def forward(self, p, t):
            return step(t), None

        def backward(self, p, cache, dy, need_dx=True):
            return np.zeros_like(dy), {}

    model = nn.Sequential([nn.Dense(1), ExactStep()])
    _, cache = model.forward(params, x)
    out, _ = model.forward(params, x)
    _, dout = half_squared(out, y)
    _, grads = model.backward(params, cache, dout)
    assert not np.any(grads[0]["W"]) and not np.any(grads[0]["b"])
    _, fo = forward_only_grads(model, params, half_squared, x, y)
    assert np.all(np.linalg.norm(fo[0]["W"][..., 0], axis=1) > 0)


def test_forward_only_with_adam_learns_the_step_target():
    # Sec. 5.5 on a small problem: Adam with the forward-only update recovers v*, b* closely
    rng = np.random.default_rng(11)
    R, n = 3, 10
    v_star, b_star = draw_targets(list(rng.spawn(R)), n)
    step = paper_grids(b_star)
    model = nn.Sequential([nn.Dense(1), StraightThrough(step)])
    params, _ = model.init(rng, R, (n,), np.float64)
    opt = nn.Adam(0.01, **nn.PAPER_ADAM)
    for _ in range(1500):
        x, _, _, y = sample_steps(rng, v_star, b_star, step, 128, np.float64)
        forward_only_step(model, params, half_squared, opt, x, y)
    w, b = params[0]["W"][..., 0], params[0]["b"][:, 0]
    # r = v*^T x + b* has spread ||v*||/n ~ 0.3; the jumps near b* are 0.025-0.8 apart
    assert np.all(np.linalg.norm(w - v_star, axis=1) / np.linalg.norm(v_star, axis=1) < 0.1)
    assert np.all(np.abs(b - b_star) < 0.02)
    x, r, _, y = sample_steps(rng, v_star, b_star, step, 4000, np.float64)
    pred = model.forward(params, x)[0]
    assert np.all(np.mean(pred == y, axis=(1, 2)) > 0.9)


def test_bad_input():
    with pytest.raises(TypeError, match="fn"):
        StraightThrough(3)
    layer = StraightThrough(lambda t: t[..., :1])
    with pytest.raises(ValueError, match="shape"):
        layer.forward({}, np.zeros((1, 2, 3)))
    with pytest.raises(TypeError, match="Sequential"):
        forward_only_grads(nn.Dense(1), [], half_squared, np.zeros((1, 1, 1)), np.zeros((1, 1, 1)))
    with pytest.raises(ValueError, match="parameter-free"):
        forward_only_grads(nn.Sequential([nn.Dense(1), nn.Dense(1)]), [], half_squared,
                           np.zeros((1, 1, 1)), np.zeros((1, 1, 1)))
    with pytest.raises(ValueError, match="parameter-free"):
        forward_only_grads(nn.Sequential([nn.Sigmoid()]), [{}], half_squared,
                           np.zeros((1, 1, 1)), np.zeros((1, 1, 1)))


def test_straight_through_repr_and_identity_backward():
    layer = StraightThrough(np.tanh)
    assert "tanh" in repr(layer)
    x = np.linspace(-2, 2, 6).reshape(1, 2, 3)
    y, cache = layer.forward({}, x)
    assert_array_equal(y, np.tanh(x))
    dy = np.arange(6.0).reshape(1, 2, 3)
    dx, grads = layer.backward({}, cache, dy)
    assert dx is dy and grads == {}
