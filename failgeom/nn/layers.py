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
from .utils import as_dtype, replica_generators
from ..validation import positive_int


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
        return {}, tuple(in_shape)

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


def _check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return init


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
        Whether to add a bias (initialised to zero).
    init : {"truncated_normal", "zeros"}
        Weight initialisation: truncated normal with std ``1/sqrt(d_in)`` as the original code,
        or zeros (the PWL regressions of Sec. 4 start at 0).
    """

    has_params = True

    def __init__(self, n_out: int, bias: bool = True, init: str = "truncated_normal"):
        self.n_out = positive_int(n_out, "n_out")
        self.bias = bool(bias)
        self.init_method = _check_init(init)

    def init(self, rng, R, in_shape, dtype=np.float32):
        """Initial ``W`` (truncated normal, std ``1/sqrt(d_in)``, or zeros) and zero ``b``.

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
        """
        dtype = as_dtype(dtype)
        rngs = replica_generators(rng, R)
        in_shape = tuple(in_shape)
        d_in = in_shape[-1]
        params = {"W": _init_weight(self.init_method, rngs, (d_in, self.n_out), d_in, dtype)}
        if self.bias:
            params["b"] = np.zeros((len(rngs), self.n_out), dtype=dtype)
        return params, in_shape[:-1] + (self.n_out,)

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
        """
        W = params["W"]
        R = W.shape[0]
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
        """
        x, W = cache, params["W"]
        R = W.shape[0]
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
        mask = x > 0
        return x * mask, mask

    def backward(self, params, cache, dy, need_dx=True):
        """``dx = dy * (x > 0)``, even when not ``need_dx``; ``grads = {}``."""
        return dy * cache, {}


class Sigmoid(Layer):
    """Logistic function ``1 / (1 + exp(-x))``, evaluated without overflow."""

    def forward(self, params, x):
        """``y = 1 / (1 + exp(-x))`` in the dtype of ``x``, shape ``(R, B, *shape)``; cache ``y``."""
        # exp of a non-positive number never overflows
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        return y, y

    def backward(self, params, cache, dy, need_dx=True):
        """``dx = dy * y * (1 - y)``, even when not ``need_dx``; ``grads = {}``."""
        y = cache
        return dy * y * (1.0 - y), {}


class Reshape(Layer):
    """Reshape each example to ``shape`` (the replica and batch axes are kept).

    Parameters
    ----------
    shape : sequence of int
    """

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)

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
        if math.prod(in_shape) != math.prod(self.shape):
            raise ValueError(f"cannot reshape examples of shape {tuple(in_shape)} to {self.shape}")
        return {}, self.shape

    def forward(self, params, x):
        """``x (R, B, *in_shape)`` reshaped to ``(R, B, *shape)``; the cache is ``x.shape``."""
        return x.reshape(x.shape[:2] + self.shape), x.shape

    def backward(self, params, cache, dy, need_dx=True):
        """``dy (R, B, *shape)`` reshaped to ``(R, B, *in_shape)``, even when not ``need_dx``."""
        return dy.reshape(cache), {}


class Flatten(Layer):
    """Flatten each example to one axis."""

    def init(self, rng, R, in_shape, dtype=np.float32):
        """No parameters (``{}``); ``out_shape = (prod(in_shape),)``."""
        positive_int(R, "R")
        return {}, (math.prod(in_shape),)

    def forward(self, params, x):
        """``x (R, B, *in_shape)`` reshaped to ``(R, B, prod(in_shape))``; cache ``x.shape``."""
        return x.reshape(x.shape[:2] + (-1,)), x.shape

    def backward(self, params, cache, dy, need_dx=True):
        """``dy`` reshaped to ``(R, B, *in_shape)``, even when not ``need_dx``; ``grads = {}``."""
        return dy.reshape(cache), {}


class Sequential(Layer):
    """Composition of layers; params, caches and grads are lists with one entry per layer.

    Parameters
    ----------
    layers : sequence of Layer
        Applied in order.

    Raises
    ------
    TypeError
        If ``layers`` is empty or holds something other than a :class:`Layer`.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        if not self.layers or not all(isinstance(layer, Layer) for layer in self.layers):
            raise TypeError("layers must be a non-empty sequence of failgeom.nn layers")

    @property
    def has_params(self):
        """Whether any layer has trainable parameters."""
        return any(layer.has_params for layer in self.layers)

    def init(self, rng, R, in_shape, dtype=np.float32):
        """Initialise the layers in order, each on the previous layer's output shape.

        Each layer draws from its own child of each replica's Generator, so adding a layer
        never shifts another layer's initial weights.

        Parameters
        ----------
        rng : Generator, SeedSequence or sequence of R Generators
            As in :meth:`Layer.init`.
        R : int
            Number of replicas.
        in_shape : tuple of int
            One input example, without the R and B axes.
        dtype : {float32, float64}
            Dtype of the parameters.

        Returns
        -------
        params : list of dict
            One per layer, every array with leading axis R.
        out_shape : tuple of int
            One output example of the last layer.

        Raises
        ------
        TypeError, ValueError
            For a bad ``rng``, ``R`` or ``dtype``, or an ``in_shape`` a layer cannot take.
        """
        rngs = replica_generators(rng, R)
        # one child stream per layer and replica: adding a layer never shifts another's init
        per_layer = [[g.spawn(1)[0] for g in rngs] for _ in self.layers]
        params, shape = [], tuple(in_shape)
        for layer, layer_rngs in zip(self.layers, per_layer):
            p, shape = layer.init(layer_rngs, R, shape, dtype)
            params.append(p)
        return params, shape

    def forward(self, params, x):
        """Apply the layers in order.

        Parameters
        ----------
        params : list of dict, from :meth:`init`
        x : ndarray, shape (R, B, *in_shape)

        Returns
        -------
        y : ndarray, shape (R, B, *out_shape)
        cache : list, one cache per layer
        """
        caches = []
        for layer, p in zip(self.layers, params):
            x, cache = layer.forward(p, x)
            caches.append(cache)
        return x, caches

    def backward(self, params, cache, dy, need_dx=True):
        """Backpropagate ``dy`` through the layers in reverse order.

        Parameters
        ----------
        params, cache : list
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, *out_shape)
        need_dx : bool
            Whether the first layer computes ``dx`` (the others always do).

        Returns
        -------
        dx : ndarray, shape (R, B, *in_shape), or None
        grads : list of dict, mirroring ``params``
        """
        grads = [None] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            dy, grads[i] = self.layers[i].backward(params[i], cache[i], dy, need_dx=need_dx or i > 0)
        return dy, grads

    def per_example_grads(self, params, cache, dy, layer: int):
        """Per-example gradients of layer ``layer`` (index into ``layers``).

        ``dy`` must be the gradient of the *sum* of the per-example losses (``reduction="sum"``
        or ``"none"`` in :mod:`failgeom.nn.losses`), so each example's slice is the gradient of
        that example's own loss.

        Parameters
        ----------
        params, cache : list
            Given to and returned by :meth:`forward`.
        dy : ndarray, shape (R, B, *out_shape)
        layer : int
            Index of a layer with parameters, in ``0..len(layers)-1``.

        Returns
        -------
        dict
            That layer's per-example gradients: ``(R, B, ...)`` for a parameter ``(R, ...)``.

        Raises
        ------
        ValueError
            If ``layer`` is out of range or its layer has no parameters.
        """
        if not 0 <= layer < len(self.layers) or not self.layers[layer].has_params:
            raise ValueError(f"layer must index a layer with parameters, got {layer}")
        for i in range(len(self.layers) - 1, layer, -1):
            dy, _ = self.layers[i].backward(params[i], cache[i], dy)
        return self.layers[layer].per_example_grads(params[layer], cache[layer], dy)
