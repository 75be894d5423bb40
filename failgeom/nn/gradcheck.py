"""Central finite differences in float64, to hold every hand-written backward to its forward."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np

from .utils import tree_leaves
from .layers import Layer


def numerical_gradient(fn, array: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Gradient of the scalar ``fn()`` with respect to ``array`` (perturbed in place, restored).

    Central differences ``(f(a + h e_i) - f(a - h e_i)) / 2h``; ``array`` must be float64 so
    that the O(eps/h) rounding error stays far below the O(h^2) truncation error.

    Parameters
    ----------
    fn : callable
        ``fn() -> float``, reading ``array``.
    array : ndarray, float64
        Contiguous, of any shape.
    h : float
        Step size.

    Returns
    -------
    ndarray, shape of ``array``, float64

    Raises
    ------
    TypeError
        If ``array`` is not float64.
    ValueError
        If ``array`` is not contiguous.
    """
    if array.dtype != np.float64:
        raise TypeError(f"array must be float64 for finite differences, got {array.dtype}")
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, array):
        raise ValueError("array must be contiguous so that it can be perturbed in place")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = float(fn())
        flat[i] = old - h
        down = float(fn())
        flat[i] = old
        gflat[i] = (up - down) / (2.0 * h)
    return grad


def relative_error(analytic, numeric, floor: float = 1e-3) -> float:
    """``||a - n|| / max(||a||, ||n||, floor)``.

    The floor keeps a gradient that is exactly zero (where finite differences return rounding
    noise of order ``eps |f| / h``, about 1e-10) from reading as a 100% error; below it the
    comparison is absolute, at 1e-3 times the tolerance.

    Parameters
    ----------
    analytic, numeric : array_like
        Of one shape.
    floor : float

    Returns
    -------
    float
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    scale = cast(float, max(np.linalg.norm(a), np.linalg.norm(n), floor))
    return float(np.linalg.norm(a - n) / scale)


@dataclass
class GradcheckReport:
    """Relative errors of the analytic gradient, per checked array.

    Parameters
    ----------
    errors : dict of str to float
        ``"x"`` (the input gradient) and ``"param0"``, ``"param1"``, ... (parameters in
        :func:`~failgeom.nn.utils.tree_leaves` order).
    """

    errors: dict[str, float] = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        """The largest relative error (0.0 if none was checked)."""
        return max(self.errors.values(), default=0.0)


def check_layer(layer: Layer, in_shape, R: int = 2, batch: int = 3, seed: int = 0,
                h: float = 1e-6, x: np.ndarray | None = None) -> GradcheckReport:
    """Compare ``layer.backward`` with finite differences of ``sum(c * forward(x))``.

    Checks the input gradient and every parameter gradient, in float64, for a random input
    ``(R, batch, *in_shape)`` (or the given ``x``) and random output weights ``c``.

    Parameters
    ----------
    layer : Layer
    in_shape : tuple of int
        One input example.
    R, batch : int
        Replicas and batch size of the random input.
    seed : int
        Seeds the parameters (perturbed from their initial values), the input and ``c``.
    h : float
        Finite-difference step.
    x : ndarray, shape (R, B, *in_shape), optional
        The input, instead of a random one.

    Returns
    -------
    GradcheckReport
    """
    rng = np.random.default_rng(seed)
    params, out_shape = layer.init(rng, R, tuple(in_shape), dtype=np.float64)
    # perturb the initial parameters (biases and zero-initialised weights included) so that every
    # path is exercised, keeping the init's scale so that sigmoids do not saturate
    for p in tree_leaves(params):
        p += 0.3 * rng.standard_normal(p.shape)
    if x is None:
        x = rng.standard_normal((R, batch) + tuple(in_shape))
    x = np.ascontiguousarray(x, dtype=np.float64)
    c = rng.standard_normal((R, x.shape[1]) + tuple(out_shape))

    def objective():
        return float(np.sum(c * layer.forward(params, x)[0]))

    y, cache = layer.forward(params, x)
    dx, grads = layer.backward(params, cache, c)
    report = GradcheckReport()
    report.errors["x"] = relative_error(dx, numerical_gradient(objective, x, h))
    for i, (p, g) in enumerate(zip(tree_leaves(params), tree_leaves(grads))):
        report.errors[f"param{i}"] = relative_error(g, numerical_gradient(objective, p, h))
    return report


def check_loss(loss, out: np.ndarray, target, h: float = 1e-6, **kwargs) -> float:
    """Relative error of a loss's ``d value / d out`` against finite differences of its sum.

    Parameters
    ----------
    loss : callable
        A loss of :mod:`failgeom.nn.losses`.
    out : ndarray, shape (R, B, ...)
        Converted to float64.
    target
        The loss's second argument.
    h : float
        Finite-difference step.
    **kwargs
        More arguments of ``loss`` (``reduction``, ...).

    Returns
    -------
    float
    """
    out = np.ascontiguousarray(out, dtype=np.float64)

    def objective():
        return float(np.sum(loss(out, target, **kwargs)[0]))

    _, grad = loss(out, target, **kwargs)
    return relative_error(grad, numerical_gradient(objective, out, h))


def check_per_example(model, params, x: np.ndarray, loss, target, layer: int) -> float:
    """Largest relative error between per-example gradients of ``model.layers[layer]`` and the
    ordinary gradient computed on each example alone (batch of one).

    Parameters
    ----------
    model : Sequential
    params : list
        The model's parameter tree.
    x : ndarray, shape (R, B, *in_shape)
    loss : callable
        A loss of :mod:`failgeom.nn.losses` (called with ``reduction="sum"``).
    target : ndarray, shape (R, B, ...), or a scalar
        Sliced per example along axis 1.
    layer : int
        Index of a layer with parameters.

    Returns
    -------
    float
    """
    out, cache = model.forward(params, x)
    _, dout = loss(out, target, reduction="sum")
    per = model.per_example_grads(params, cache, dout, layer)
    worst = 0.0
    target = np.broadcast_to(target, out.shape[:2] + np.shape(target)[2:]) if np.ndim(target) >= 2 else target
    for b in range(x.shape[1]):
        xb = x[:, b:b + 1]
        tb = target[:, b:b + 1] if np.ndim(target) >= 2 else target
        ob, cb = model.forward(params, xb)
        _, db = loss(ob, tb, reduction="sum")
        _, grads = model.backward(params, cb, db)
        for key, g in grads[layer].items():
            worst = max(worst, relative_error(per[key][:, b], g))
    return worst
