"""The forward-only update rule (Isotron / GLMtron): backpropagate through a monotone output
activation as if it were the identity.

For a model ``out = u(g_w(x))`` with ``u`` non-decreasing and the square loss
``0.5 (out - y)^2``, the gradient ``(u(g) - y) u'(g) dg/dw`` vanishes wherever ``u`` is flat.
The forward-only update drops the ``u'`` factor: ``(u(g) - y) dg/dw``; for a linear ``g`` this
is ``E[(u(w^T x + b) - y) x]`` for ``w`` and ``E[u(w^T x + b) - y]`` for ``b`` (Kalai and Sastry
2009; Kakade, Kalai, Kanade and Shamir 2011). It converges for any non-decreasing Lipschitz
``u``, and works for step functions, whose derivative is zero almost everywhere.

Two equivalent ways to use it:

- :class:`StraightThrough` wraps any elementwise callable (for example a step function, which is
  not a layer) as a layer whose backward is the identity; ordinary
  :func:`failgeom.training.train_step` on a model ending in it is then the forward-only update.
- :func:`forward_only_step` takes any :class:`~failgeom.nn.Sequential` whose last layer is a
  parameter-free monotone activation (``Sigmoid``, ``ReLU``, a :class:`StraightThrough`...) and
  skips that layer's backward. It has the signature of ``train_step``, so it plugs into
  ``failgeom.training.train(step_fn=forward_only_step)`` with any optimizer.

Nothing checks that the activation is monotone: the update is meaningful (a descent direction
for the matching loss) only when it is.
"""

from __future__ import annotations

import numpy as np

from .layers import Layer
from .sequential import Sequential
from .utils import check_batch, check_grad


class StraightThrough(Layer):
    """Elementwise ``y = fn(x)`` in the forward pass, identity ``dx = dy`` in the backward pass.

    Parameters
    ----------
    fn : callable
        ``fn(x) -> y`` with ``y.shape == x.shape``, applied to the whole ``(R, B, ...)`` array,
        so a per-replica activation (for example a step function with one grid per replica)
        can use the leading replica axis. Meant for non-decreasing functions.
    name : str, optional
        Shown in ``repr``.

    Raises
    ------
    TypeError
        If ``fn`` is not callable.
    """

    def __init__(self, fn, name: str | None = None):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)

    def __repr__(self) -> str:
        return f"StraightThrough({self.name})"

    def forward(self, params, x):
        """``y = fn(x)`` in the dtype of ``x``.

        Parameters
        ----------
        params : dict, empty
        x : ndarray, shape (R, B, *shape)

        Returns
        -------
        y : ndarray, shape (R, B, *shape)
        cache : tuple
            ``x.shape``.

        Raises
        ------
        TypeError
            If ``x`` is not real floating, or ``fn`` returns something other than numbers.
        ValueError
            If ``x`` is not ``(R, B, ...)`` or ``fn`` changes the shape.
        """
        check_batch(x)
        y = np.asarray(self.fn(x))
        if y.dtype.kind not in "iuf":
            raise TypeError(f"fn must return real numbers, got dtype {y.dtype}")
        if y.shape != x.shape:
            raise ValueError(f"fn must keep the shape of its input: {x.shape} -> {y.shape}")
        return y.astype(x.dtype, copy=False), x.shape

    def backward(self, params, cache, dy, need_dx=True):
        """The straight-through estimate ``dx = dy`` (the activation's derivative taken as 1).

        Parameters
        ----------
        params, cache, need_dx
            As in :meth:`Layer.backward` (``dx`` is always returned).
        dy : ndarray, shape (R, B, *shape)

        Returns
        -------
        dx : ndarray, shape (R, B, *shape)
            ``dy`` itself.
        grads : dict, empty
        """
        # the straight-through estimate: treat the activation's derivative as 1
        check_grad(dy, cache)
        return dy, {}


def _check_model(model) -> Sequential:
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a failgeom.nn.Sequential, got {type(model).__name__}")
    if len(model.layers) < 2 or model.layers[-1].has_params:
        raise ValueError("model must end in a parameter-free activation layer after at least one "
                         f"other layer, got {model.layers!r}")
    return model


def forward_only_grads(model, params, loss, x, target):
    """Forward-only gradients: the loss gradient backpropagated with the last layer (the output
    activation ``u``) replaced by the identity.

    Parameters
    ----------
    model : Sequential
        Layers ``g`` followed by a parameter-free monotone activation ``u``.
    params : list
        The model's parameter tree.
    loss : callable
        A loss of :mod:`failgeom.nn.losses`, ``loss(out, target) -> (value, dout)``. With
        ``squared(coef=0.5)`` and ``reduction="mean"`` the gradient of a linear ``g`` is
        ``mean_batch (u(w^T x + b) - y) x`` (paper Sec. 5.5).
    x, target
        A minibatch ``(R, B, ...)`` and its targets.

    Returns
    -------
    value : ndarray (R,)
        The loss of the full model ``u(g(x))``.
    grads : list
        Mirrors ``params``; the activation's entry is ``{}``.

    Raises
    ------
    TypeError, ValueError
        If ``model`` is not a Sequential of at least two layers ending in one without parameters.
    """
    _check_model(model)
    out, caches = model.forward(params, x)
    value, dy = loss(out, target)
    layers = model.layers
    grads = [None] * len(layers)
    grads[-1] = {}
    for i in range(len(layers) - 2, -1, -1):  # skip the last layer: its backward is the identity
        dy, grads[i] = layers[i].backward(params[i], caches[i], dy, need_dx=i > 0)
    return value, grads


def forward_only_step(model, params, loss, optimizer, x, target) -> np.ndarray:
    """One forward-only (Isotron / GLMtron) update for all replicas.

    Same signature as :func:`failgeom.training.train_step`, so
    ``train(..., step_fn=forward_only_step)`` trains with it; any optimizer of
    :mod:`failgeom.nn.optim` applies the step (the paper's Sec. 5.5 uses Adam; Appendix A.7
    analyses plain SGD with ``eta = sqrt(1 / (T c^2))``).

    Parameters
    ----------
    model, params, loss, x, target
        As in :func:`forward_only_grads`.
    optimizer
        An optimizer of :mod:`failgeom.nn.optim`; updates ``params`` in place.

    Returns
    -------
    ndarray, shape (R,)
        The loss of each replica before the update.

    Raises
    ------
    TypeError, ValueError
        As :func:`forward_only_grads`.
    """
    value, grads = forward_only_grads(model, params, loss, x, target)
    optimizer.step(params, grads)
    return value
