"""An elementwise activation given with its derivative, e.g. a smooth surrogate of a step function.

Sec. 5.2 of the paper replaces a flat step function ``u`` by a sum of sigmoids, whose derivative
is nonzero near the jumps; the layer here takes any such surrogate as a function returning its
value and derivative, so the network core needs to know nothing about step functions (those live
in :mod:`failgeom.problems.steps`).
"""

from __future__ import annotations

import numpy as np

from .layers import Layer
from .utils import check_batch, check_grad


class SmoothStep(Layer):
    """Elementwise ``y = s(x)`` with the exact gradient ``dx = s'(x) dy``.

    Parameters
    ----------
    surrogate : callable
        ``surrogate(x) -> (s(x), s'(x))``, both of the shape of ``x`` (the whole ``(R, B, ...)``
        array, so a per-replica surrogate can use the leading replica axis), for example
        :meth:`failgeom.problems.steps.StepFunction.smooth`.
    name : str, optional
        Shown in ``repr``.

    Raises
    ------
    TypeError
        If ``surrogate`` is not callable.
    """

    def __init__(self, surrogate, name: str | None = None):
        if not callable(surrogate):
            raise TypeError(f"surrogate must be callable, got {type(surrogate).__name__}")
        self.surrogate = surrogate
        self.name = name or getattr(surrogate, "__name__", type(surrogate).__name__)

    def __repr__(self) -> str:
        return f"SmoothStep({self.name})"

    def forward(self, params, x):
        """``y = s(x)`` in the dtype of ``x``; the cache is ``s'(x)``.

        Parameters
        ----------
        params : dict, empty
        x : ndarray, shape (R, B, *shape)

        Returns
        -------
        y : ndarray, shape (R, B, *shape)
        cache : ndarray, shape (R, B, *shape)
            ``s'(x)``.

        Raises
        ------
        ValueError
            If the surrogate's value or derivative does not have the shape of ``x``.
        """
        check_batch(x)
        value, deriv = self.surrogate(x)
        value, deriv = np.asarray(value), np.asarray(deriv)
        if value.shape != x.shape or deriv.shape != x.shape:
            raise ValueError(f"surrogate must return value and derivative of the input's shape {x.shape}, "
                             f"got {value.shape} and {deriv.shape}")
        return value.astype(x.dtype, copy=False), deriv.astype(x.dtype, copy=False)

    def backward(self, params, cache, dy, need_dx=True):
        """``dx = s'(x) dy``, even when not ``need_dx``.

        Parameters
        ----------
        params, cache, need_dx
            As in :meth:`Layer.backward`.
        dy : ndarray, shape (R, B, *shape)

        Returns
        -------
        dx : ndarray, shape (R, B, *shape)
        grads : dict, empty
        """
        if type(dy) is not np.ndarray or dy.dtype.kind != "f" or dy.shape != cache.shape:
            check_grad(dy, cache.shape)
        return dy * cache, {}
