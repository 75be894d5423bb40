"""Dense, activation, reshape layers and the sequential container, with hand-written gradients.

Every layer is a stateless description with three pure functions over explicit state
(docs/architecture.md, in the spirit of ``jax.example_libraries.stax``)::

    init(rng, R, in_shape, dtype) -> (params, out_shape)
    forward(params, x)            -> (y, cache)
    backward(params, cache, dy)   -> (dx, grads)          # grads mirrors params

Arrays carry a leading replica axis R and then the batch axis B: ``x`` is ``(R, B, *in_shape)``.
A minibatch shared by all replicas is passed as :func:`shared` ``(x, R)``, a broadcast view that
costs no copy. Each backward sits right below its forward.
"""

from __future__ import annotations

import abc
import math

import numpy as np

from ..initializers import truncated_normal
from .utils import as_dtype, check_batch, check_grad, replica_generators
from ..validation import fits_in_memory, flag, positive_int, shape as check_shape


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul``, with an outer product (inner size 1) done as a broadcast multiply, which
    NumPy's matmul runs several times slower.

    Parameters
    ----------
    a, b : ndarray, shapes (..., n, m) and (..., m, p)

    Returns
    -------
    ndarray, shape (..., n, p)
    """
    if a.shape[-1] == 1:
        return a * b
    return np.matmul(a, b)


def shared(x, R: int) -> np.ndarray:
    """View a minibatch ``(B, *shape)`` as ``(R, B, *shape)`` for R replicas, without copying.

    Parameters
    ----------
    x : array_like, shape (B, *shape)
    R : int
        Number of replicas (TypeError or ValueError if not a positive integer).

    Returns
    -------
    ndarray, shape (R, B, *shape)
        A read-only broadcast view of ``x``.
    """
    x = np.asarray(x)
    return np.broadcast_to(x, (positive_int(R, "R"),) + x.shape)


class Layer(abc.ABC):
    """Base class: by default a layer with no parameters whose output shape is its input shape.

    The docstrings of :meth:`init`, :meth:`forward` and :meth:`backward` are the contract every
    layer follows; a subclass's own docstring says what it computes, with its shapes.
    """

    #: whether the layer has trainable parameters (and hence per-example gradients)
    has_params = False

    def init(self, rng, R, in_shape, dtype=np.float32):
        """Initial parameters of R replicas and the shape of one output example.

        Parameters
        ----------
        rng : Generator, SeedSequence or sequence of R Generators
            One Generator per replica, used as given (replica r's weights do not depend on R),
            or one to spawn R times (:func:`failgeom.nn.utils.replica_generators`).
        R : int
            Number of replicas.
        in_shape : tuple of int
            One input example, without the R and B axes.
        dtype : {float32, float64}
            Dtype of the parameters.

        Returns
        -------
        params : dict
            Arrays with leading axis R; here ``{}``.
        out_shape : tuple of int
            One output example; here ``in_shape``.

        Raises
        ------
        TypeError, ValueError
            For a bad ``R``, ``rng`` or ``dtype``, or an ``in_shape`` the layer cannot take.
        """
        positive_int(R, "R")
        return {}, check_shape(in_shape, "in_shape")

    @abc.abstractmethod
    def forward(self, params, x):
        """Apply the layer to the minibatch of every replica.

        Parameters
        ----------
        params : dict, from :meth:`init`
        x : ndarray, shape (R, B, *in_shape)

        Returns
        -------
        y : ndarray, shape (R, B, *out_shape)
        cache
            What :meth:`backward` needs.
        """

    @abc.abstractmethod
    def backward(self, params, cache, dy, need_dx=True):
        """Backpropagate ``dy``, the gradient of a scalar with respect to ``y``.

        Parameters
        ----------
        params, cache
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, *out_shape)
        need_dx : bool
            Whether to compute ``dx`` (the first layer of a model needs no input gradient).

        Returns
        -------
        dx : ndarray, shape (R, B, *in_shape), or None
            None when not ``need_dx`` (a layer without parameters may return it anyway).
        grads : dict
            Mirrors ``params``, summed over the batch.
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


INITS = ("truncated_normal", "zeros")
#: :class:`Dense` also takes ``"uniform"``: weights and bias from ``U(-1/sqrt(d_in), 1/sqrt(d_in))``
DENSE_INITS = INITS + ("uniform",)


def _check_init(init: str, inits: tuple[str, ...] = INITS) -> str:
    if not isinstance(init, str):
        raise TypeError(f"init must be one of {inits}, got {init!r}")
    if init not in inits:
        raise ValueError(f"init must be one of {inits}, got {init!r}")
    return init


def check_params_fit(R: int, shape, dtype, what: str) -> None:
    """Refuse, before allocating, parameters ``(R, *shape)`` that cannot fit in memory.

    Parameters
    ----------
    R : int
    shape : tuple of int
    dtype : dtype
    what : str
        The layer and sizes, for the message.

    Raises
    ------
    ValueError
        If the array exceeds the memory available.
    """
    fits_in_memory(R * math.prod(shape) * np.dtype(dtype).itemsize, what, "choose smaller layers or fewer replicas")


def _init_weight(init: str, rngs, shape, fan_in: int, dtype):
    if _check_init(init) == "zeros":
        return np.zeros((len(rngs),) + tuple(shape), dtype=dtype)
    return truncated_normal(rngs, shape, 1.0 / math.sqrt(fan_in), dtype)


class Dense(Layer):
    """Affine map ``y = x W + b`` over the last axis; W is ``(R, d_in, d_out)``, b is ``(R, d_out)``.

    Parameters
    ----------
    n_out : int
        Output width.
    bias : bool
        Whether to add a bias (initialised to zero, except with ``init="uniform"``).
    init : {"truncated_normal", "zeros", "uniform"}
        Weight initialisation: truncated normal with std ``1/sqrt(d_in)`` as the original code,
        zeros (the PWL regressions of Sec. 4 start at 0), or weights and bias both drawn from
        ``U(-1/sqrt(d_in), 1/sqrt(d_in))`` (PyTorch's default, the sparse-parity networks').
    """

    has_params = True

    def __init__(self, n_out: int, bias: bool = True, init: str = "truncated_normal"):
        self.n_out = positive_int(n_out, "n_out")
        self.bias = flag(bias, "bias")
        self.init_method = _check_init(init, DENSE_INITS)

    def init(self, rng, R, in_shape, dtype=np.float32):
        """Initial ``W`` (truncated normal, std ``1/sqrt(d_in)``, or zeros) and zero ``b``; with
        ``init="uniform"`` each replica's generator draws ``W`` then ``b`` from
        ``U(-1/sqrt(d_in), 1/sqrt(d_in))`` in float64, cast to ``dtype``.

        Parameters
        ----------
        rng, R, dtype
            As in :meth:`Layer.init` (TypeError or ValueError if bad).
        in_shape : tuple of int
            ``(..., d_in)``.

        Returns
        -------
        params : dict
            ``W (R, d_in, n_out)``, with a bias ``b (R, n_out)``.
        out_shape : tuple of int
            ``in_shape[:-1] + (n_out,)``.

        Raises
        ------
        TypeError, ValueError
            For a bad ``rng``, ``R`` or ``dtype``, an ``in_shape`` that is not a non-empty tuple of
            positive integers, or a weight matrix too large for the memory available.
        """
        dtype = as_dtype(dtype)
        rngs = replica_generators(rng, R)
        in_shape = check_shape(in_shape, "in_shape", min_ndim=1)
        d_in = in_shape[-1]
        check_params_fit(len(rngs), (d_in, self.n_out), dtype, f"Dense weights (R={len(rngs)}, {d_in}, {self.n_out})")
        if self.init_method == "uniform":
            return self._uniform(rngs, d_in, dtype), in_shape[:-1] + (self.n_out,)
        params = {"W": _init_weight(self.init_method, rngs, (d_in, self.n_out), d_in, dtype)}
        if self.bias:
            params["b"] = np.zeros((len(rngs), self.n_out), dtype=dtype)
        return params, in_shape[:-1] + (self.n_out,)

    def _uniform(self, rngs, d_in: int, dtype) -> dict:
        bound = 1.0 / np.sqrt(d_in)
        shapes = {"W": (d_in, self.n_out), **({"b": (self.n_out,)} if self.bias else {})}
        arrays = {name: np.empty((len(rngs),) + shape) for name, shape in shapes.items()}
        for r, g in enumerate(rngs):  # set-up only: W then b from each replica's generator
            for name, shape in shapes.items():
                arrays[name][r] = g.uniform(-bound, bound, shape)
        return {name: a.astype(dtype) for name, a in arrays.items()}

    def forward(self, params, x):
        """``y = x W + b`` over the last axis, per replica.

        Parameters
        ----------
        params : dict
            ``W (R, d_in, d_out)``, optionally ``b (R, d_out)``.
        x : ndarray, shape (R, B, ..., d_in)

        Returns
        -------
        y : ndarray, shape (R, B, ..., d_out)
        cache : ndarray, ``x``

        Raises
        ------
        TypeError, ValueError
            If ``x`` is not a real floating array ``(R, B, ..., d_in)`` for these parameters.
        """
        W = params["W"]
        R = W.shape[0]
        if type(x) is not np.ndarray or x.dtype.kind != "f" or x.ndim < 3 or x.shape[0] != R \
                or x.shape[-1] != W.shape[1]:
            check_batch(x, "x", R=R, last=W.shape[1], expected=f"(R={R}, B, ..., d_in={W.shape[1]})")
            if x.ndim < 3:
                raise ValueError(f"x must have shape (R={R}, B, ..., d_in={W.shape[1]}), got {x.shape}")
        x3 = x.reshape(R, -1, x.shape[-1]) if x.ndim != 3 else x
        y = np.matmul(x3, W)
        if "b" in params:
            y += params["b"][:, None, :]
        return y.reshape(x.shape[:-1] + (W.shape[-1],)), x

    def backward(self, params, cache, dy, need_dx=True):
        """Gradients of ``sum(dy * y)``.

        Parameters
        ----------
        params, cache, need_dx
            As in :meth:`Layer.backward`.
        dy : ndarray, shape (R, B, ..., d_out)

        Returns
        -------
        dx : ndarray, shape (R, B, ..., d_in), or None
        grads : dict
            ``W (R, d_in, d_out)``, with a bias ``b (R, d_out)``.

        Raises
        ------
        TypeError, ValueError
            If ``dy`` is not a real floating array of the output's shape.
        """
        x, W = cache, params["W"]
        R = W.shape[0]
        if type(dy) is not np.ndarray or dy.dtype.kind != "f" or dy.shape[:-1] != x.shape[:-1] \
                or dy.shape[-1] != W.shape[-1]:
            check_grad(dy, x.shape[:-1] + (W.shape[-1],))
        x3 = x.reshape(R, -1, x.shape[-1])
        dy3 = dy.reshape(R, -1, dy.shape[-1])
        grads = {"W": np.matmul(np.swapaxes(x3, 1, 2), dy3)}
        if "b" in params:
            grads["b"] = dy3.sum(axis=1)
        if not need_dx:
            return None, grads
        return matmul(dy3, np.swapaxes(W, 1, 2)).reshape(x.shape), grads

    def per_example_grads(self, params, cache, dy):
        """Gradients of each example's own term (the batch sum left out).

        Parameters
        ----------
        params, cache
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, ..., d_out)

        Returns
        -------
        dict
            ``W (R, B, d_in, d_out)``, with a bias ``b (R, B, d_out)``.
        """
        x = cache
        check_grad(dy, x.shape[:-1] + (params["W"].shape[-1],))
        R, B = dy.shape[:2]
        x4 = x.reshape(R, B, -1, x.shape[-1])
        dy4 = dy.reshape(R, B, -1, dy.shape[-1])
        grads = {"W": np.matmul(np.swapaxes(x4, 2, 3), dy4)}
        if "b" in params:
            grads["b"] = dy4.sum(axis=2)
        return grads


class ReLU(Layer):
    """Rectified linear unit ``max(x, 0)``; the gradient at 0 is taken as 0."""

    def forward(self, params, x):
        """``y = max(x, 0)``, shape ``(R, B, *shape)``; the cache is the mask ``x > 0``."""
        if type(x) is not np.ndarray or x.dtype.kind != "f" or x.ndim < 2:
            check_batch(x)
        mask = x > 0
        return x * mask, mask

    def backward(self, params, cache, dy, need_dx=True):
        """``dx = dy * (x > 0)``, even when not ``need_dx``; ``grads = {}``."""
        if type(dy) is not np.ndarray or dy.dtype.kind != "f" or dy.shape != cache.shape:
            check_grad(dy, cache.shape)
        return dy * cache, {}


class Sigmoid(Layer):
    """Logistic function ``1 / (1 + exp(-x))``, evaluated without overflow."""

    def forward(self, params, x):
        """``y = 1 / (1 + exp(-x))`` in the dtype of ``x``, shape ``(R, B, *shape)``; cache ``y``."""
        if type(x) is not np.ndarray or x.dtype.kind != "f" or x.ndim < 2:
            check_batch(x)
        # exp of a non-positive number never overflows
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        return y, y

    def backward(self, params, cache, dy, need_dx=True):
        """``dx = dy * y * (1 - y)``, even when not ``need_dx``; ``grads = {}``."""
        y = cache
        if type(dy) is not np.ndarray or dy.dtype.kind != "f" or dy.shape != y.shape:
            check_grad(dy, y.shape)
        return dy * y * (1.0 - y), {}


class Reshape(Layer):
    """Reshape each example to ``shape`` (the replica and batch axes are kept).

    Parameters
    ----------
    shape : sequence of int
        Positive sizes (TypeError or ValueError otherwise).
    """

    def __init__(self, shape):
        self.shape = check_shape(shape, "shape")

    def init(self, rng, R, in_shape, dtype=np.float32):
        """No parameters; the output shape is ``shape``.

        Parameters
        ----------
        rng, R, dtype
            As in :meth:`Layer.init` (``rng`` and ``dtype`` unused).
        in_shape : tuple of int
            Of the same size as ``shape``.

        Returns
        -------
        params : dict, empty
        out_shape : tuple of int, ``shape``

        Raises
        ------
        ValueError
            If ``in_shape`` and ``shape`` differ in size.
        """
        positive_int(R, "R")
        in_shape = check_shape(in_shape, "in_shape")
        if math.prod(in_shape) != math.prod(self.shape):
            raise ValueError(f"in_shape {in_shape} does not hold the {math.prod(self.shape)} entries of {self.shape}")
        return {}, self.shape

    def forward(self, params, x):
        """``x (R, B, *in_shape)`` reshaped to ``(R, B, *shape)``; the cache is ``x.shape``.

        Raises
        ------
        TypeError, ValueError
            If ``x`` is not a real floating array whose examples hold ``prod(shape)`` entries.
        """
        check_batch(x)
        if math.prod(x.shape[2:]) != math.prod(self.shape):
            raise ValueError(f"x must hold examples of {math.prod(self.shape)} entries to reshape to "
                             f"{self.shape}, got shape {x.shape}")
        return x.reshape(x.shape[:2] + self.shape), x.shape

    def backward(self, params, cache, dy, need_dx=True):
        """``dy (R, B, *shape)`` reshaped to ``(R, B, *in_shape)``, even when not ``need_dx``."""
        check_grad(dy, cache[:2] + self.shape)
        return dy.reshape(cache), {}


class Flatten(Layer):
    """Flatten each example to one axis."""

    def init(self, rng, R, in_shape, dtype=np.float32):
        """No parameters (``{}``); ``out_shape = (prod(in_shape),)``."""
        positive_int(R, "R")
        return {}, (math.prod(check_shape(in_shape, "in_shape")),)

    def forward(self, params, x):
        """``x (R, B, *in_shape)`` reshaped to ``(R, B, prod(in_shape))``; cache ``x.shape``."""
        check_batch(x)
        return x.reshape(x.shape[:2] + (-1,)), x.shape

    def backward(self, params, cache, dy, need_dx=True):
        """``dy`` reshaped to ``(R, B, *in_shape)``, even when not ``need_dx``; ``grads = {}``."""
        check_grad(dy, cache[:2] + (math.prod(cache[2:]),))
        return dy.reshape(cache), {}
