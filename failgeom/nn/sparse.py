"""Layers and optimizers for one-hot inputs given as indices: a row-gather Dense and Adam by rows.

``OneHotDense`` computes ``e_a^T W + b`` as the row ``W[a] + b``; ``RowSparseAdam`` takes its
weight gradient as the rows a batch used (``OneHotDense.row_grads``) and runs
:func:`failgeom.nn.optim.adam_update` block by block, so its numbers are those of
:class:`failgeom.nn.Adam` on the dense gradient.
"""

from __future__ import annotations

import math

import numpy as np

from .utils import as_dtype, per_replica, replica_generators
from ..validation import flag, positive_int
from .layers import Layer, truncated_normal
from .optim import Adam, adam_update

__all__ = ["OneHotDense", "RowSparseAdam", "row_sparse_step"]


class OneHotDense(Layer):
    """``Dense(d -> k)`` applied to one-hot inputs ``x = e_a`` given as integer indices ``a``.

    ``forward`` returns ``W[a] + b``, which equals ``e_a^T W + b`` exactly (a row gather instead
    of a ``(B, d) x (d, k)`` product); ``backward`` scatter-adds ``dy`` into the rows that were
    used. Parameters, initialisation (truncated normal, std ``1/sqrt(d)``; zero bias) and
    gradients are those of :class:`failgeom.nn.Dense` on the one-hot vectors.

    Parameters
    ----------
    d : int
        Number of one-hot inputs (the input width of the dense layer).
    n_out : int
        Output width k.
    bias : bool
        Whether to add a bias (initialised to zero), as ``nn.Dense``.

    Raises
    ------
    TypeError, ValueError
        If ``d`` or ``n_out`` is not a positive integer.
    """

    has_params = True

    def __init__(self, d: int, n_out: int, bias: bool = True):
        self.d = positive_int(d, "d")
        self.n_out = positive_int(n_out, "n_out")
        self.bias = flag(bias, "bias")

    def init(self, rng, R, in_shape=(), dtype=np.float32):
        """Initial ``W`` (truncated normal, std ``1/sqrt(d)``) and zero ``b``.

        Parameters
        ----------
        rng, R, dtype
            As in :meth:`Layer.init`.
        in_shape : tuple of int
            ``()`` (indices) or ``(d,)`` (the one-hot shape it stands for).

        Returns
        -------
        params : dict
            ``W (R, d, k)``, with a bias ``b (R, k)``.
        out_shape : tuple of int
            ``(k,)``.

        Raises
        ------
        ValueError
            If ``in_shape`` is neither ``()`` nor ``(d,)`` (TypeError or ValueError also for a bad
            ``rng``, ``R`` or ``dtype``).
        """
        dtype = as_dtype(dtype)
        if tuple(in_shape) not in ((), (self.d,)):
            raise ValueError(f"in_shape must be () or ({self.d},), got {tuple(in_shape)}")
        rngs = replica_generators(rng, R)
        params = {"W": truncated_normal(rngs, (self.d, self.n_out), 1.0 / math.sqrt(self.d), dtype)}
        if self.bias:
            params["b"] = np.zeros((len(rngs), self.n_out), dtype=dtype)
        return params, (self.n_out,)

    def _indices(self, W, a):
        a = np.asarray(a)
        if a.ndim != 2 or a.shape[0] != W.shape[0] or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"a must be integer indices of shape (R={W.shape[0]}, B), got {a.shape} {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= self.d):
            raise ValueError(f"a must lie in 0..{self.d - 1}")
        return a

    def forward(self, params, a):
        """``y = W[a] + b``, row ``a`` of each replica's ``W``.

        Parameters
        ----------
        params : dict
            ``W (R, d, k)``, optionally ``b (R, k)``.
        a : int ndarray, shape (R, B)
            Indices in ``0..d-1``.

        Returns
        -------
        y : ndarray, shape (R, B, k)
        cache : int ndarray, ``a``

        Raises
        ------
        ValueError
            If ``a`` is not an integer ``(R, B)`` array of indices in ``0..d-1``.
        """
        W = params["W"]
        a = self._indices(W, a)
        y = W[np.arange(W.shape[0])[:, None], a]  # (R, B, k): row a of each replica's W
        if "b" in params:
            y += params["b"][:, None, :]
        return y, a

    def row_grads(self, params, cache, dy):
        """The weight gradient as its nonzero rows, and the bias gradient.

        Inputs repeated in a batch add up, as in the dense product ``x^T dy``.

        Parameters
        ----------
        params, cache
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, k)

        Returns
        -------
        rows : int ndarray, shape (n_rows,)
            Sorted unique indices into ``W.reshape(R * d, k)``.
        g_rows : ndarray, shape (n_rows, k)
        g_b : ndarray, shape (R, k), or None
            None without a bias.
        """
        a, W = cache, params["W"]
        R, d, k = W.shape
        flat = (np.arange(R)[:, None] * d + a).reshape(-1)
        dy2 = dy.reshape(-1, k)
        rows, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
        g_rows = dy2[first]  # a copy (fancy indexing)
        repeat = np.ones(flat.size, dtype=bool)
        repeat[first] = False
        if repeat.any():  # few repeats: scatter-add only those
            np.add.at(g_rows, inverse[repeat], dy2[repeat])
        return rows, g_rows, (dy.sum(axis=1) if "b" in params else None)

    def backward(self, params, cache, dy, need_dx=True):
        """Gradients of ``sum(dy * forward)``; ``dx`` is None (indices have no gradient).

        Parameters
        ----------
        params, cache, need_dx
            As in :meth:`Layer.backward` (``dx`` is never computed).
        dy : ndarray, shape (R, B, k)

        Returns
        -------
        dx : None
        grads : dict
            ``W (R, d, k)`` (dense), with a bias ``b (R, k)``.
        """
        W = params["W"]
        rows, g_rows, g_b = self.row_grads(params, cache, dy)
        gW = np.zeros((W.shape[0] * W.shape[1], W.shape[2]), dtype=dy.dtype)
        gW[rows] = g_rows
        grads = {"W": gW.reshape(W.shape)}
        if g_b is not None:
            grads["b"] = g_b
        return None, grads

    def per_example_sq_norms(self, params, dy) -> np.ndarray:
        """``||grad of example i's own term||^2`` over all parameters.

        For a one-hot input the weight gradient is ``e_a dy_i^T``, whose squared norm is
        ``||dy_i||^2``; the bias gradient is ``dy_i`` again.

        Parameters
        ----------
        params : dict
            Only whether it has ``b`` matters.
        dy : ndarray, shape (R, B, k)
            Gradient of the sum of the per-example losses.

        Returns
        -------
        ndarray, shape (R, B), float64
        """
        sq = np.sum(np.square(dy, dtype=np.float64), axis=-1)
        return 2.0 * sq if "b" in params else sq


class RowSparseAdam(Adam):
    """:class:`failgeom.nn.Adam` for :class:`OneHotDense`, fed the weight gradient by rows.

    The same numbers as ``Adam`` on the dense gradient, bit for bit: each block of rows small
    enough to stay in cache gets a dense gradient block (zeros except the rows the batch used)
    and the shared :func:`failgeom.nn.optim.adam_update`; the moments' decay and the step touch
    every weight (Adam moves weights whose gradient is zero). This avoids the ``(R, d, k)``
    dense gradient and the large temporaries at ``d x k = 1000 x 2000``.

    Parameters
    ----------
    lr, beta1, beta2, eps
        As :class:`failgeom.nn.Adam`.

    Raises
    ------
    ValueError
        If one is out of range.
    """

    #: elements per block of the step (256 K: a few arrays of it stay in L2/L3 cache)
    BLOCK = 1 << 18

    def __init__(self, lr, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr, beta1, beta2, eps)
        self.scratch: tuple[np.ndarray, ...] | None = None

    def step_rows(self, params, rows, g_rows, g_b=None):
        """One Adam step from :meth:`OneHotDense.row_grads` output (params updated in place).

        Parameters
        ----------
        params : dict
            ``W (R, d, k)``, optionally ``b (R, k)``.
        rows : int ndarray, shape (n_rows,)
            Sorted unique indices into ``W.reshape(R * d, k)``.
        g_rows : ndarray, shape (n_rows, k)
            Their gradients.
        g_b : ndarray, shape (R, k), optional
            The bias gradient (None without a bias).
        """
        W = params["W"]
        R, d, k = W.shape
        (m_W, *m_rest), (v_W, *v_rest) = self.moments(params)  # tree order: "W", then "b"
        n = max(1, self.BLOCK // k)
        if self.scratch is None or self.scratch[0].shape != (n, k) or self.scratch[0].dtype != W.dtype:
            self.scratch = tuple(np.empty((n, k), W.dtype) for _ in range(3))
        scale = self.advance()
        lr = per_replica(self.lr, R, W.ndim, W.dtype) * scale
        lr_rows = np.repeat(np.reshape(lr, -1), d)[:, None] if np.ndim(lr) else None  # per row of W2
        W2, m2, v2 = (x.reshape(R * d, k) for x in (W, m_W, v_W))
        edges = np.searchsorted(rows, np.arange(0, R * d + n, n))
        for i, first in enumerate(range(0, R * d, n)):
            block = slice(first, first + n)
            size = W2[block].shape[0]
            g, step, denom = (s[:size] for s in self.scratch)
            g[...] = 0
            used = slice(edges[i], edges[i + 1])
            g[rows[used] - first] = g_rows[used]
            adam_update(W2[block], g, m2[block], v2[block], lr if lr_rows is None else lr_rows[block],
                        self.beta1, self.beta2, self.eps, step, denom)
        if g_b is not None:  # the bias gradient is dense
            b = params["b"]
            adam_update(b, g_b, m_rest[0], v_rest[0], per_replica(self.lr, R, b.ndim, b.dtype) * scale,
                        self.beta1, self.beta2, self.eps, np.empty_like(b), np.empty_like(b))


def row_sparse_step(model: OneHotDense, params, loss, optimizer: RowSparseAdam, x, target) -> np.ndarray:
    """:func:`failgeom.training.train_step` for the one-hot model with :class:`RowSparseAdam`.

    Parameters
    ----------
    model : OneHotDense
    params : dict
        Updated in place.
    loss : callable
        A loss of :mod:`failgeom.nn.losses`.
    optimizer : RowSparseAdam
    x : int ndarray, shape (R, B)
        Input indices.
    target
        The loss's second argument, e.g. gains ``(R, B, k)``.

    Returns
    -------
    ndarray, shape (R,)
        The loss of each replica before the update.
    """
    out, cache = model.forward(params, x)
    value, dout = loss(out, target)
    optimizer.step_rows(params, *model.row_grads(params, cache, dout))
    return value
