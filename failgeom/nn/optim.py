"""Optimizers vectorized over the replica axis: each updates params in place from grads.

The learning rate is a scalar or an ``(R,)`` array (one rate per replica, e.g. a grid of rates
trained as one computation). Parameter trees are the lists/dicts of arrays that layers return.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np

from .utils import per_replica, tree_leaves
from ..validation import TINY, finite_float

#: Adam's moments and epsilon as the paper's original code set them (Sec. 3, 4, 5).
PAPER_ADAM = {"beta1": 0.9, "beta2": 0.99, "eps": 1e-5}


def _check_lr(lr):
    accepted = "a positive finite number or a 1-D array of them (one per replica)"
    if isinstance(lr, (bool, np.bool_)):
        raise TypeError(f"lr must be {accepted}, got {lr!r}")
    try:
        arr = np.asarray(lr)
    except (ValueError, TypeError):
        raise TypeError(f"lr must be {accepted}, got {lr!r}") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"lr must be {accepted}, got {lr!r}")
    arr = arr.astype(np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.size == 0) or not np.all(np.isfinite(arr)) or np.any(arr < TINY):
        raise ValueError(f"lr must be {accepted} (at least {TINY:.4g}), got {lr!r}")
    return lr if arr.ndim == 0 and not isinstance(lr, np.ndarray) else arr


def _pairs(params, grads, lr=None):
    """The parameter and gradient arrays, refused in O(number of arrays) unless they pair up."""
    ps, gs = tree_leaves(params), tree_leaves(grads)
    if len(ps) != len(gs):
        raise ValueError(f"grads must mirror params: {len(gs)} arrays for {len(ps)} parameters")
    for p, g in zip(ps, gs):
        if p.shape != g.shape or g.dtype.kind != "f" or p.dtype.kind != "f" or not p.flags.writeable:
            _refuse_pair(p, g)
    if ps and isinstance(lr, np.ndarray) and lr.shape != (ps[0].shape[0],):
        per_replica(lr, ps[0].shape[0], ps[0].ndim, ps[0].dtype)  # raises, naming lr
    return ps, gs


def _refuse_pair(p, g):
    if p.dtype.kind != "f":
        raise TypeError(f"params must be arrays of real floats, got dtype {p.dtype}")
    if not p.flags.writeable:
        raise ValueError("params must be writable arrays (they are updated in place), got a read-only one")
    if g.dtype.kind != "f":
        raise TypeError(f"grads must hold real floats, got dtype {g.dtype}")
    raise ValueError(f"grads must mirror params: a gradient of shape {g.shape} for a parameter of shape {p.shape}")


class SGD:
    """Plain stochastic gradient descent ``p <- p - lr * g``.

    Parameters
    ----------
    lr : float or array of shape (R,)
        Step size, shared or one per replica.

    Raises
    ------
    ValueError
        If ``lr`` is not positive and finite, or not a scalar or a 1-D array.
    """

    def __init__(self, lr):
        self.lr = _check_lr(lr)

    def step(self, params, grads):
        """Update ``params`` in place.

        Parameters
        ----------
        params : parameter tree
            Arrays with leading replica axis R.
        grads : parameter tree
            Mirrors ``params``.

        Raises
        ------
        TypeError
            If ``params`` or ``grads`` are not arrays of real floats.
        ValueError
            If ``grads`` does not mirror ``params`` (shapes included), a parameter is read-only,
            or ``lr`` holds a number of rates other than the replicas R.
        """
        for p, g in zip(*_pairs(params, grads, self.lr)):
            p -= per_replica(self.lr, p.shape[0], p.ndim, p.dtype) * g


def adam_update(p, g, m, v, lr_t, beta1: float, beta2: float, eps: float, step, denom) -> None:
    """One Adam update of ``p`` in place: ``m, v`` decay and take in ``g``, then
    ``p -= lr_t m / (sqrt(v) + eps)``.

    Parameters
    ----------
    p, g, m, v : arrays of one shape
        Parameter, gradient and the two moments (``p``, ``m``, ``v`` updated in place; views of
        larger arrays, e.g. blocks of rows, work).
    lr_t : float or array broadcasting to ``p``
        The bias-corrected step size (see :meth:`Adam.advance`).
    beta1, beta2, eps : float
        Decay rates of the two moments and the denominator's offset.
    step, denom : arrays of ``p``'s shape
        Scratch buffers (in place through them: no temporaries of the weights' size, which
        matters for the 2e7-weight stocks model).
    """
    np.multiply(g, 1.0 - beta1, out=step)
    m *= beta1
    m += step
    np.multiply(g, g, out=step)
    step *= 1.0 - beta2
    v *= beta2
    v += step
    np.multiply(lr_t, m, out=step)
    np.sqrt(v, out=denom)
    denom += eps
    step /= denom
    p -= step


class Adam:
    """Adam as in TensorFlow 1 (the paper's original code), with the bias correction in the step.

    ``lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)``; ``p <- p - lr_t m / (sqrt(v) + eps)``.
    The paper sets ``beta1=0.9, beta2=0.99, eps=1e-5`` (:data:`PAPER_ADAM`); the defaults here
    are the usual ``0.9, 0.999, 1e-8``.

    Parameters
    ----------
    lr : float or array of shape (R,)
        Step size, shared or one per replica.
    beta1, beta2 : float
        Decay rates of the moments, in [0, 1).
    eps : float
        Positive offset of the denominator.

    Raises
    ------
    TypeError
        If one of them is not a real number (``lr``: or an array of them).
    ValueError
        If ``lr``, ``beta1``, ``beta2`` or ``eps`` is out of range or not finite (``eps`` below
        the smallest normal float included: dividing by it overflows).
    """

    def __init__(self, lr, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = _check_lr(lr)
        beta1 = finite_float(beta1, "beta1", 0.0, 1.0, high_open=True)
        beta2 = finite_float(beta2, "beta2", 0.0, 1.0, high_open=True)
        eps = finite_float(eps, "eps", TINY)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self._m: list[np.ndarray] | None = None
        self._v: list[np.ndarray] | None = None
        self._buffers: list[np.ndarray] = []

    def moments(self, params) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The first and second moments ``(m, v)``, one array per parameter (zeros at first).

        Parameters
        ----------
        params : parameter tree
            Used only on the first call, for the arrays' shapes and dtypes.

        Returns
        -------
        m, v : list of ndarray
            In :func:`~failgeom.nn.utils.tree_leaves` order, each of its parameter's shape.

        Raises
        ------
        ValueError
            On the first call, if ``eps`` is below the smallest normal number of a parameter's
            dtype (it would round to 0 there).
        """
        if self._m is None:
            for p in tree_leaves(params):  # once per moments: eps is added in the parameters' dtype
                if p.dtype.kind == "f" and self.eps < np.finfo(p.dtype).tiny:
                    raise ValueError(f"eps = {self.eps:g} is below the smallest normal {p.dtype} "
                                     f"({np.finfo(p.dtype).tiny:.3g}) of the parameters: Adam would divide "
                                     f"0 by 0; raise eps")
            self._m = [np.zeros_like(p) for p in tree_leaves(params)]
            self._v = [np.zeros_like(p) for p in tree_leaves(params)]
        return self._m, cast("list[np.ndarray]", self._v)  # set with _m

    def advance(self) -> float:
        """Count one step and return its bias-correction factor.

        Returns
        -------
        float
            ``sqrt(1 - beta2^t) / (1 - beta1^t)`` for the new step count t.
        """
        self.t += 1
        return math.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)

    def step(self, params, grads):
        """One Adam step: update ``params`` and the moments in place.

        Parameters
        ----------
        params : parameter tree
            Arrays with leading replica axis R.
        grads : parameter tree
            Mirrors ``params``.

        Raises
        ------
        TypeError
            If ``params`` or ``grads`` are not arrays of real floats.
        ValueError
            If ``grads`` does not mirror ``params``, ``params`` is not the tree (shapes,
            dtypes) whose moments this Adam holds, or ``lr`` holds a number of rates other than R.
        """
        ps, gs = _pairs(params, grads, self.lr)
        ms, vs = self.moments(params)
        if [(m.shape, m.dtype) for m in ms] != [(p.shape, p.dtype) for p in ps]:
            raise ValueError("params do not match the moments of this Adam (another parameter tree, "
                             "or another shape or dtype): use one Adam per parameter tree")
        if not self._buffers:  # scratch of the moments' shapes, made once per moments
            self._buffers = [(np.empty_like(m), np.empty_like(m)) for m in ms]
        scale = self.advance()
        for p, g, m, v, (step, denom) in zip(ps, gs, ms, vs, self._buffers):
            adam_update(p, g, m, v, per_replica(self.lr, p.shape[0], p.ndim, p.dtype) * scale,
                        self.beta1, self.beta2, self.eps, step, denom)

    def state_dict(self) -> dict:
        """The moments and step count, for checkpoints.

        Returns
        -------
        dict
            ``t`` (int) and ``m``, ``v`` (lists of arrays, or None before the first step).
        """
        return {"t": self.t, "m": self._m, "v": self._v}

    def load_state_dict(self, state: dict) -> None:
        """Restore the moments and step count of :meth:`state_dict`.

        Parameters
        ----------
        state : dict
            With keys ``t``, ``m`` and ``v``.
        """
        self.t, self._m, self._v = int(state["t"]), state["m"], state["v"]
        self._buffers = []


class PreconditionedSGD:
    """SGD with a fixed linear preconditioner: ``p <- p - lr * P g``.

    ``preconditioner`` mirrors the parameter tree, with ``None`` for parameters left alone and,
    for a parameter of shape ``(R, d, ...)``, a matrix ``(d, d)`` (shared) or ``(R, d, d)``
    applied along its first axis after the replica axis. With ``P = C^{-1}`` for the input
    covariance C, a linear regression becomes perfectly conditioned (paper Sec. 4.1.3).

    Parameters
    ----------
    lr : float or array of shape (R,)
        Step size, shared or one per replica.
    preconditioner : tree of ndarray or None
        As above.

    Raises
    ------
    TypeError
        If ``lr`` is not a number (or array of them), or the preconditioner tree holds something
        other than dicts, lists, real floating matrices and None.
    ValueError
        If ``lr`` is not positive and finite, or not a scalar or a 1-D array, or a matrix is not
        finite and square ``(d, d)`` or ``(R, d, d)``.
    """

    def __init__(self, lr, preconditioner):
        self.lr = _check_lr(lr)
        for P in _leaves_or_none(preconditioner):
            if P is None:
                continue
            if P.dtype.kind != "f":
                raise TypeError(f"preconditioner matrices must hold real floats, got dtype {P.dtype}")
            if P.ndim not in (2, 3) or P.shape[-1] != P.shape[-2]:
                raise ValueError(f"preconditioner matrices must be (d, d) or (R, d, d), got shape {P.shape}")
            if not np.all(np.isfinite(P)):
                raise ValueError("preconditioner matrices must be finite, got NaN or infinite entries")
        self.preconditioner = preconditioner

    def _matrices(self, n):
        flat = _leaves_or_none(self.preconditioner)
        if len(flat) != n:
            raise ValueError(f"preconditioner must mirror params: {len(flat)} entries for {n} parameters")
        return flat

    def step(self, params, grads):
        """Update ``params`` in place with the preconditioned gradients.

        Parameters
        ----------
        params : parameter tree
            Arrays with leading replica axis R.
        grads : parameter tree
            Mirrors ``params``.

        Raises
        ------
        ValueError
            If ``grads`` or the preconditioner does not mirror ``params``, or a matrix is not
            ``(d, d)`` for its parameter ``(R, d, ...)``.
        TypeError
            If ``params`` or ``grads`` are not arrays of real floats.
        """
        ps, gs = _pairs(params, grads, self.lr)
        for p, g, P in zip(ps, gs, self._matrices(len(ps))):
            if P is not None:
                R, d = g.shape[0], g.shape[1] if g.ndim > 1 else 1
                if g.ndim < 2 or np.shape(P)[-2:] != (d, d) or (P.ndim == 3 and P.shape[0] != R):
                    raise ValueError(f"preconditioner for a parameter of shape {p.shape} must be ({d}, {d}) "
                                     f"or ({R}, {d}, {d})")
                g = np.matmul(P, g.reshape(R, d, -1)).reshape(g.shape)
            p -= per_replica(self.lr, p.shape[0], p.ndim, p.dtype) * g


def _leaves_or_none(tree):
    if tree is None or isinstance(tree, np.ndarray):
        return [tree]
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in _leaves_or_none(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _leaves_or_none(item)]
    raise TypeError(f"preconditioner trees hold dicts, lists, arrays and None, got {type(tree).__name__}")
