"""failgeom.nn refuses what it cannot compute with, the way the CLI does: one TypeError or
ValueError naming the argument and what is accepted, before any NumPy error or a silently wrong
number (a complex input cut to its real part, a pooling over the wrong axes, a gradient broadcast
into a parameter of another shape).

The driver crosses each part of nn with each class of bad value: a wrong type of array (complex,
integer, bool, object, a list), a wrong shape (axes, replicas, widths), bad sizes at ``init``
(zero, negative, non-integer, empty), bad dtypes (None, complex, bool, float16, object) and bad
hyperparameters (NaN, inf, subnormal, negative, strings, bools, arrays of the wrong length).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from failgeom import nn

R, B = 2, 3


def _rng():
    return np.random.default_rng(0)


def _names(message: str, arg: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(arg)}(?!\w)", message) is not None


def _refused(call, arg: str):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    message = str(info.value)
    assert _names(message, arg) and "\n" not in message, f"{info.value!r} does not name {arg}"
    return info.value


# ---------------------------------------------------------------------------------------------
# layers: (name, layer, in_shape); forward and backward with bad arrays

LAYERS = {
    "Dense": (lambda: nn.Dense(4), (3,)),
    "Conv1D": (lambda: nn.Conv1D(2, 3), (6, 2)),
    "Conv2D": (lambda: nn.Conv2D(2, 3), (4, 4, 1)),
    "MaxPool2D": (lambda: nn.MaxPool2D(), (4, 4, 2)),
    "ConvPool2D": (lambda: nn.ConvPool2D(2, 3), (4, 4, 1)),
    "ReLU": (lambda: nn.ReLU(), (3,)),
    "Sigmoid": (lambda: nn.Sigmoid(), (3,)),
    "Flatten": (lambda: nn.Flatten(), (2, 3)),
    "Reshape": (lambda: nn.Reshape((3, 2)), (6,)),
    "SmoothStep": (lambda: nn.SmoothStep(lambda x: (np.tanh(x), 1 - np.tanh(x) ** 2)), (3,)),
    "StraightThrough": (lambda: nn.StraightThrough(np.sign), (3,)),
    "Sequential": (lambda: nn.Sequential([nn.Dense(4), nn.ReLU(), nn.Dense(1)]), (3,)),
}


def _setup(name):
    make, in_shape = LAYERS[name]
    layer = make()
    params, out_shape = layer.init(_rng(), R, in_shape, np.float64)
    x = np.random.default_rng(1).standard_normal((R, B) + in_shape)
    return layer, params, x, out_shape


def _bad_inputs(x):
    """Classes of bad minibatches, each derived from a valid one."""
    bad = {"complex": x.astype(complex), "int": x.astype(np.int64), "bool": x > 0, "object": x.astype(object),
           "list": x.tolist(), "one axis": x.reshape(-1), "extra replica": np.concatenate([x, x[:1]])}
    if x.ndim >= 3:
        bad["wrong width"] = np.concatenate([x, x[..., :1]], axis=-1)
    return bad


FORWARD_CASES = [(name, kind) for name in LAYERS for kind in _bad_inputs(_setup(name)[2])]


@pytest.mark.parametrize("name, kind", FORWARD_CASES, ids=[f"{n}-{k}" for n, k in FORWARD_CASES])
def test_forward_refuses_a_bad_minibatch_naming_x(name, kind):
    layer, params, x, _ = _setup(name)
    bad = _bad_inputs(x)[kind]
    if kind in ("extra replica", "wrong width") and not layer.has_params \
            and (name, kind) != ("Reshape", "wrong width"):  # a reshape needs its examples' size
        # a layer without parameters takes any replica count and width: it must compute right
        y, _ = layer.forward(params, bad)
        assert y.shape[:2] == bad.shape[:2]
        return
    _refused(lambda: layer.forward(params, bad), "x")


BACKWARD_CASES = [(name, kind) for name in LAYERS for kind in ("complex", "wrong shape", "list")]


@pytest.mark.parametrize("name, kind", BACKWARD_CASES, ids=[f"{n}-{k}" for n, k in BACKWARD_CASES])
def test_backward_refuses_a_bad_output_gradient_naming_dy(name, kind):
    layer, params, x, _ = _setup(name)
    y, cache = layer.forward(params, x)
    dy = {"complex": y.astype(complex), "wrong shape": np.ones(y.shape[:-1] + (y.shape[-1] + 1,)),
          "list": y.tolist()}[kind]
    _refused(lambda: layer.backward(params, cache, dy), "dy")


def test_maxpool_without_a_channel_axis_is_refused_not_pooled_over_the_wrong_axes():
    _refused(lambda: nn.MaxPool2D().forward({}, np.ones((R, 3, 8, 8))), "x")


def test_dense_does_not_run_replica_0s_weights_for_every_replica():
    layer, params, x, _ = _setup("Dense")
    one = {k: v[:1] for k, v in params.items()}
    _refused(lambda: layer.forward(one, x), "x")


BAD_SHAPES = [(0,), (), (-1,), (2.5,), ("3",), None, "3", (True,)]
INIT_CASES = [(name, shape) for name in LAYERS for shape in BAD_SHAPES]


@pytest.mark.parametrize("name, shape", INIT_CASES, ids=[f"{n}-{s!r}" for n, s in INIT_CASES])
def test_init_refuses_a_bad_in_shape(name, shape):
    layer = LAYERS[name][0]()
    if shape == () and name in ("ReLU", "Sigmoid", "Flatten", "SmoothStep", "StraightThrough"):
        layer.init(_rng(), R, shape)  # a scalar example is a shape a parameter-free layer takes
        return
    _refused(lambda: layer.init(_rng(), R, shape), "in_shape")


BAD_DTYPES = [None, complex, np.complex64, bool, "float16", object, "x", np.int64]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=repr)
def test_as_dtype_takes_only_float32_and_float64(dtype):
    with pytest.raises(TypeError, match="dtype"):
        nn.as_dtype(dtype)
    with pytest.raises(TypeError, match="dtype"):
        nn.Dense(2).init(_rng(), R, (3,), dtype)


@pytest.mark.parametrize("make, arg", [
    (lambda: nn.Dense(2, bias="no"), "bias"), (lambda: nn.Dense(2, bias=1), "bias"),
    (lambda: nn.Conv1D(2, 3, bias=None), "bias"), (lambda: nn.Conv2D(2, 3, bias="yes"), "bias"),
    (lambda: nn.OneHotDense(3, 2, bias=0), "bias"), (lambda: nn.Dense(2, init=3), "init"),
    (lambda: nn.Conv2D(2, 3, init_std=5e-324), "init_std"), (lambda: nn.Conv2D(2, 3, init_std="1"), "init_std"),
    (lambda: nn.Reshape((2, 0)), "shape"), (lambda: nn.Reshape((2.5,)), "shape"),
    (lambda: nn.ConvPool2D(2, 3, method=None), "method"), (lambda: nn.Sequential(3), "layers"),
    (lambda: nn.Dense(10**6).init(_rng(), 10**4, (10**6,)), "Dense weights"),
])
def test_layer_options_are_checked_at_construction(make, arg):
    _refused(make, arg)


def test_sequential_refuses_params_that_are_not_one_entry_per_layer():
    layer, params, x, _ = _setup("Sequential")
    _refused(lambda: layer.forward(params[:2], x), "params")
    _refused(lambda: layer.forward(tuple(params), x), "params")
    y, cache = layer.forward(params, x)
    _refused(lambda: layer.backward(params, cache[:1], y), "cache")
    _refused(lambda: layer.per_example_grads(params, cache, y, "0"), "layer")


# ---------------------------------------------------------------------------------------------
# optimizers

BAD_LR = [np.nan, np.inf, -0.1, 0.0, 5e-324, "0.1", True, None, 0.1 + 0j, [[0.1]], [], [0.1, np.nan]]


@pytest.mark.parametrize("lr", BAD_LR, ids=repr)
@pytest.mark.parametrize("make", [nn.SGD, nn.Adam, lambda lr: nn.PreconditionedSGD(lr, None)],
                         ids=["SGD", "Adam", "PreconditionedSGD"])
def test_optimizers_refuse_a_bad_learning_rate(make, lr):
    _refused(lambda: make(lr), "lr")


@pytest.mark.parametrize("kwargs, arg", [
    ({"eps": np.inf}, "eps"), ({"eps": 0.0}, "eps"), ({"eps": 5e-324}, "eps"), ({"eps": "1e-8"}, "eps"),
    ({"beta1": np.nan}, "beta1"), ({"beta1": 1.0}, "beta1"), ({"beta1": "0.9"}, "beta1"),
    ({"beta2": -0.1}, "beta2"), ({"beta2": True}, "beta2"), ({"beta2": 0.99 + 0j}, "beta2"),
])
def test_adam_refuses_bad_moments_and_epsilon(kwargs, arg):
    _refused(lambda: nn.Adam(0.1, **kwargs), arg)


@pytest.mark.parametrize("P", ["x", 3, np.ones((2, 3)), np.ones((2, 2), complex), np.full((2, 2), np.nan),
                               [np.eye(2), "x"]], ids=["str", "int", "non-square", "complex", "nan", "list"])
def test_preconditioned_sgd_refuses_a_bad_preconditioner(P):
    _refused(lambda: nn.PreconditionedSGD(0.1, P), "preconditioner")


def _tree():
    params, _ = nn.Dense(2).init(_rng(), R, (3,), np.float64)
    return params


@pytest.mark.parametrize("make", [lambda: nn.SGD(0.1), lambda: nn.Adam(0.1),
                                  lambda: nn.PreconditionedSGD(0.1, {"W": None, "b": None})],
                         ids=["SGD", "Adam", "PreconditionedSGD"])
@pytest.mark.parametrize("kind, arg", [("shape", "grads"), ("complex", "grads"), ("missing", "grads"),
                                       ("read-only", "params"), ("lr length", "lr")])
def test_step_refuses_grads_that_do_not_mirror_params(make, kind, arg):
    params = _tree()
    grads = {k: np.ones_like(v) for k, v in params.items()}
    opt = make()
    if kind == "shape":
        grads["W"] = np.ones((5, 5))
    elif kind == "complex":
        grads["W"] = grads["W"].astype(complex)
    elif kind == "missing":
        del grads["b"]
    elif kind == "read-only":
        params["W"] = np.broadcast_to(params["W"], params["W"].shape)
    else:
        opt.lr = np.array([0.1, 0.1, 0.1])  # three rates for R = 2 replicas
    before = {k: v.copy() for k, v in params.items()}
    _refused(lambda: opt.step(params, grads), arg)
    for k in before:
        np.testing.assert_array_equal(params[k], before[k])  # refused before any update


# ---------------------------------------------------------------------------------------------
# losses

LOSSES = {
    "hinge": (nn.losses.hinge, "score", "y", (R, B, 1)),
    "squared": (nn.losses.squared, "out", "target", (R, B, 2)),
    "softmax_cross_entropy": (nn.losses.softmax_cross_entropy, "logits", "labels", (R, B, 3)),
    "expected_negative_gain": (nn.losses.expected_negative_gain, "logits", "z", (R, B, 3)),
}
LOSS_CASES = [(name, kind) for name in LOSSES for kind in ("out complex", "out int", "target complex",
                                                            "target strings", "reduction", "out 1-D")]


@pytest.mark.parametrize("name, kind", LOSS_CASES, ids=[f"{n}-{k}" for n, k in LOSS_CASES])
def test_losses_refuse_bad_outputs_targets_and_reductions(name, kind):
    loss, out_name, target_name, shape = LOSSES[name]
    out = np.random.default_rng(0).standard_normal(shape)
    target = np.zeros((R, B), np.int64) if name == "softmax_cross_entropy" else np.ones(shape)
    kwargs = {}
    if kind == "out complex":
        out, arg = out.astype(complex), out_name
    elif kind == "out int":
        out, arg = out.astype(np.int64), out_name
    elif kind == "out 1-D":
        out, arg = out.ravel(), out_name
    elif kind == "target complex":
        target, arg = target.astype(complex), target_name
    elif kind == "target strings":
        target, arg = target.astype(str), target_name
    else:
        kwargs, arg = {"reduction": "avg"}, "reduction"
    _refused(lambda: loss(out, target, **kwargs), arg)


@pytest.mark.parametrize("coef", [np.nan, "0.5", None, 1j])
def test_squared_refuses_a_bad_coefficient(coef):
    _refused(lambda: nn.losses.squared(np.ones((R, B)), np.ones((R, B)), coef=coef), "coef")
