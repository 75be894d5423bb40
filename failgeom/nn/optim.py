"""Optimizers vectorized over the replica axis: each updates params in place from grads.

The learning rate is a scalar or an ``(R,)`` array (one rate per replica, e.g. a grid of rates
trained as one computation). Parameter trees are the lists/dicts of arrays that layers return.
"""

from __future__ import annotations

import math

import numpy as np

from .utils import per_replica, tree_leaves

#: Adam's moments and epsilon as the paper's original code set them (Sec. 3, 4, 5).
PAPER_ADAM = {"beta1": 0.9, "beta2": 0.99, "eps": 1e-5}


def _check_lr(lr):
    arr = np.asarray(lr, dtype=np.float64)
    if arr.ndim > 1 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"lr must be a positive scalar or a 1-D array of positive rates, got {lr!r}")
    return lr if arr.ndim == 0 and not isinstance(lr, np.ndarray) else arr


def _pairs(params, grads):
    ps, gs = tree_leaves(params), tree_leaves(grads)
    if len(ps) != len(gs):
        raise ValueError(f"grads must mirror params: {len(gs)} arrays for {len(ps)} parameters")
    return ps, gs


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
        ValueError
            If ``grads`` does not mirror ``params``.
        """
        for p, g in zip(*_pairs(params, grads)):
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
    ValueError
        If ``lr``, ``beta1``, ``beta2`` or ``eps`` is out of range.
    """

    def __init__(self, lr, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = _check_lr(lr)
        for name, value in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
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
        """
        if self._m is None:
            self._m = [np.zeros_like(p) for p in tree_leaves(params)]
            self._v = [np.zeros_like(p) for p in tree_leaves(params)]
        return self._m, self._v

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
        ValueError
            If ``grads`` does not mirror ``params``, or ``params`` is not the tree (shapes,
            dtypes) whose moments this Adam holds.
        """
        ps, gs = _pairs(params, grads)
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
    ValueError
        If ``lr`` is not positive and finite, or not a scalar or a 1-D array.
    """

    def __init__(self, lr, preconditioner):
        self.lr = _check_lr(lr)
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
            If the preconditioner tree holds something other than dicts, lists, arrays and None.
        """
        ps, gs = _pairs(params, grads)
        for p, g, P in zip(ps, gs, self._matrices(len(ps))):
            if P is not None:
                R, d = g.shape[0], g.shape[1]
                if np.shape(P)[-2:] != (d, d):
                    raise ValueError(f"preconditioner for a parameter of shape {p.shape} must be ({d}, {d})")
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
