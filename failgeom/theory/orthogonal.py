"""Non-informative gradients for orthogonal target classes (paper Sec. 2.1, Theorem 1, Lemma 3).

Theorem 1: for a class ``H`` with ``E h^2 <= 1`` and ``E h h' = 0`` (distinct members), the
variance of the gradient over the choice of target,

    Var(H, F, w) = E_h || grad F_h(w) - E_h' grad F_h'(w) ||^2,

is at most ``G(w)^2 / |H|`` with ``G(w)^2 = E_x ||d p_w(x) / dw||^2``, for the square loss
``0.5 (yhat - y)^2`` and for losses ``r(yhat y)`` with ``r`` 1-Lipschitz and ``h`` in {+-1}.

For the square loss ``grad F_h = E[p_w grad p_w] - E[h grad p_w]``. For ``r(yhat y)`` with ``h``
in {+-1}, write ``r'(yhat h) h = a(x) + b(x) h`` with ``a = (r'(yhat) - r'(-yhat)) / 2`` and
``b = (r'(yhat) + r'(-yhat)) / 2`` (check at ``h = +1`` and ``h = -1``): ``grad F_h =
E[a grad p] + E[b h grad p]``. In both cases the target enters only through the coefficients
``E[h u]`` of ``u = c grad p_w`` (``c = 1`` or ``c = b``, ``|b| <= 1``) on the class; for all
``2^d`` parities on the cube those coefficients are the Walsh-Hadamard transform of ``u``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..initializers import truncated_normal
from ..validation import choice, fits_in_memory, generator, integer, positive_int, real_array

LOSSES = ("square", "hinge")


def hinge_derivative(z):
    """``r'(z)`` for the hinge ``r(z) = max(0, 1 - z)``: -1 for ``z < 1``, else 0 (0 at the kink).

    Parameters
    ----------
    z : array_like
        Margins ``yhat y``.

    Returns
    -------
    ndarray of the shape of ``z``
    """
    z = real_array(z, "z")
    return np.where(z < 1.0, -1.0, 0.0)


def _loss_derivative(loss) -> Callable | None:
    if callable(loss):
        return loss
    choice(loss, "loss", LOSSES)
    return None if loss == "square" else hinge_derivative


# --------------------------------------------------------------------------------------------
# A finite class on a finite, uniformly weighted domain


def gradient_variance(values, grads, targets, loss="square"):
    """``Var(H, F, w)`` of Theorem 1 for a finite class on a finite uniform domain, exactly.

    Parameters
    ----------
    values : array_like (N,)
        Predictions ``p_w(x)`` at the N domain points.
    grads : array_like (N, P)
        Gradients ``d p_w(x) / dw`` at the domain points.
    targets : array_like (m, N)
        The class H: row i is ``h_i(x)`` at the domain points. Theorem 1 asks for
        ``E h^2 <= 1`` and ``E h h' = 0``; for ``loss`` other than "square", values in {+-1}.
    loss : "square", "hinge" or callable
        Square loss ``0.5 (yhat - y)^2``, hinge ``max(0, 1 - yhat y)``, or the derivative
        ``r'`` of a 1-Lipschitz ``r`` for the loss ``r(yhat y)``.

    Returns
    -------
    variance : float
        ``E_h || grad F_h - E_h' grad F_h' ||^2`` with h uniform over the m rows.
    bound : float
        Theorem 1's ``G(w)^2 / |H|`` with ``G^2 = E_x ||grad p_w(x)||^2``.

    Raises
    ------
    ValueError
        If the shapes of ``values``, ``grads`` and ``targets`` do not fit together.
    """
    p = real_array(values, "values")
    g = real_array(grads, "grads")
    H = real_array(targets, "targets")
    if p.ndim != 1:
        raise ValueError(f"values must have shape (N,), got {p.shape}")
    if g.ndim != 2 or g.shape[0] != p.shape[0]:
        raise ValueError(f"grads must have shape (N, P) with N={p.shape[0]}, got {g.shape}")
    if H.ndim != 2 or H.shape[1] != p.shape[0]:
        raise ValueError(f"targets must have shape (m, N) with N={p.shape[0]}, got {H.shape}")
    r_prime = _loss_derivative(loss)
    N = p.shape[0]
    if r_prime is None:
        coef = p[None, :] - H  # d/dyhat of 0.5 (yhat - h)^2
    else:
        coef = r_prime(p[None, :] * H) * H
    per_target = coef @ g / N  # (m, P): grad F_h for each h
    centred = per_target - per_target.mean(axis=0)
    variance = float(np.mean(np.sum(centred**2, axis=1)))
    bound = float(np.mean(np.sum(g**2, axis=1))) / H.shape[0]
    return variance, bound


# --------------------------------------------------------------------------------------------
# Parities on the cube


def fwht(a: np.ndarray) -> np.ndarray:
    """Unnormalized fast Walsh-Hadamard transform along axis 0, in place; returns ``a``.

    ``out[v] = sum_x a[x] (-1)^{popcount(v & x)}`` (Sylvester order, as
    ``scipy.linalg.hadamard``). With ``x_i = (-1)^{bit i of x}`` the character
    ``(-1)^{popcount(v & x)}`` is the parity ``prod_{i in v} x_i``.

    Parameters
    ----------
    a : ndarray of shape (N, ...), real floats
        Values at the ``N = 2^d`` points of the cube; other axes are transformed independently.

    Returns
    -------
    ndarray
        ``a`` itself, overwritten by its transform.

    Raises
    ------
    TypeError
        If ``a`` is not a NumPy array of real floats.
    ValueError
        If ``a`` is a scalar or its length along axis 0 is not a power of two.
    """
    if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
        raise TypeError(f"a must be a NumPy array of real floats (transformed in place), got "
                        f"{getattr(a, 'dtype', type(a).__name__)}")
    if a.ndim == 0:
        raise ValueError("a must have at least one axis, got a scalar")
    N = a.shape[0]
    if N & (N - 1):
        raise ValueError(f"a must have a power-of-two length along axis 0, got {N}")
    flat = a.reshape(N, -1)
    c = flat.shape[1]
    h = 1
    while h < N:
        view = flat.reshape(N // (2 * h), 2, h * c)
        tmp = view[:, 1].copy()
        np.subtract(view[:, 0], tmp, out=view[:, 1])
        view[:, 0] += tmp
        h *= 2
    return a


def _cube_dimension(d, bytes_needed, what: str) -> int:
    """``d`` as an int from 1 to 62 (``2^d`` indexed by int64), refused in one line if
    ``bytes_needed(d)`` bytes (the peak of ``what``) exceed the memory available."""
    d = integer(d, "d", 1, 62)
    fits_in_memory(bytes_needed(d), f"d = {d} ({what})", "choose a smaller d")
    return d


def cube_inputs(d: int) -> np.ndarray:
    """All ``2^d`` points of ``{+-1}^d``; row x has ``x_i = (-1)^{bit i of x}``.

    Parameters
    ----------
    d : int
        Dimension, 1 to 62 (and ``2^d`` rows must fit in memory).

    Returns
    -------
    ndarray of shape (2^d, d), float64
    """
    d = _cube_dimension(d, lambda d: 8 * (3 * d + 1) * 2**d, "2^d points of d coordinates and temporaries")
    idx = np.arange(2**d)
    return 1.0 - 2.0 * ((idx[:, None] >> np.arange(d)[None, :]) & 1)


def parity_targets(d: int, inputs: str = "pm1") -> np.ndarray:
    """All ``2^d`` parities as rows: ``h_v(x) = prod_{i in v} x_i`` on :func:`cube_inputs`.

    Row v is the parity of the subset with bits of v (the Sylvester Hadamard matrix).

    Parameters
    ----------
    d : int
        Dimension.
    inputs : {"pm1"}
        Input encoding; only ``{+-1}^d`` (the order of :func:`cube_inputs`).

    Returns
    -------
    ndarray of shape (2^d, 2^d), float64
    """
    from scipy.linalg import hadamard

    d = _cube_dimension(d, lambda d: 16 * 4**d, "the 2^d x 2^d Hadamard matrix, int64 and float64")
    choice(inputs, "inputs", ("pm1",))
    return hadamard(2**d).astype(np.float64)


def init_parity_weights(rng, d: int, width: int | None = None) -> dict:
    """The paper's parity network at initialization (Sec. 2.1): Dense(d -> 10d) ReLU Dense(-> 1).

    Weights truncated normal with std ``1/sqrt(fan_in)``, biases zero.

    Parameters
    ----------
    rng : Generator, SeedSequence or int
        Source of the weights.
    d : int
        Input dimension.
    width : int, optional
        Hidden units m (default ``10 d``, the paper's).

    Returns
    -------
    dict
        ``{"W1": (d, width), "b1": (width,), "W2": (width, 1), "b2": (1,)}``, float64.
    """
    rng = generator(rng)
    d = positive_int(d, "d")
    width = 10 * d if width is None else positive_int(width, "width")
    fits_in_memory(32 * (d + 1) * width, f"d = {d}, width = {width} (W1 is d x width, drawn in float64)",
                   "choose a smaller d or width")
    return {
        "W1": truncated_normal(rng, (d, width), 1.0 / math.sqrt(d)),
        "b1": np.zeros(width),
        "W2": truncated_normal(rng, (width, 1), 1.0 / math.sqrt(width)),
        "b2": np.zeros(1),
    }


def network_weights(params) -> dict:
    """The parameters of an :mod:`failgeom.nn` network Dense ReLU Dense, ``[{"W", "b"}, {},
    {"W", "b"}]`` (for example the parity experiments' networks), as the weights every function
    here takes: ``{"W1", "b1", "W2", "b2"}`` in float64, with the replica axis if they have one.

    Parameters
    ----------
    params : sequence of 3 dicts
        The layers' parameters: ``W`` (R, d, m) and ``b`` (R, m) of the first Dense layer,
        nothing for the ReLU, ``W`` (R, m, 1) and ``b`` (R, 1) of the last (R optional).

    Returns
    -------
    dict

    Raises
    ------
    TypeError
        If ``params`` is not a sequence of 3 dicts.
    ValueError
        If a Dense layer's dict lacks ``W`` or ``b``.
    """
    if not (isinstance(params, Sequence) and len(params) == 3 and all(isinstance(p, Mapping) for p in params)):
        raise TypeError("params must be the 3 layers' parameters of Dense ReLU Dense, [{'W', 'b'}, {}, {'W', 'b'}]")
    first, _, last = params
    try:
        return {"W1": np.asarray(first["W"]).astype(np.float64), "b1": np.asarray(first["b"]).astype(np.float64),
                "W2": np.asarray(last["W"]).astype(np.float64), "b2": np.asarray(last["b"]).astype(np.float64)}
    except KeyError as exc:
        raise ValueError(f"params of a Dense layer must have keys W and b; missing {exc}") from None


def _unpack(weights, d: int | None = None):
    """``(W1, b1, W2, b2)`` with a leading replica axis, from a dict, a 4-sequence or the
    parameters of an nn Dense ReLU Dense network (:func:`network_weights`)."""
    if isinstance(weights, Sequence) and len(weights) == 3 and all(isinstance(p, Mapping) for p in weights):
        weights = network_weights(weights)
    if isinstance(weights, Mapping):
        try:
            arrays = [weights[k] for k in ("W1", "b1", "W2", "b2")]
        except KeyError as exc:
            raise ValueError(f"weights must have keys W1, b1, W2, b2; missing {exc}") from None
    elif isinstance(weights, Sequence) and len(weights) == 4:
        arrays = list(weights)
    else:
        raise TypeError("weights must be a dict with W1, b1, W2, b2, a sequence of those 4 arrays or the "
                        "parameters of an nn Dense ReLU Dense network")
    W1, b1, W2, b2 = (real_array(a, f"weights {key}") for a, key in zip(arrays, ("W1", "b1", "W2", "b2")))
    batched = W1.ndim == 3
    if not batched:
        W1, b1, W2, b2 = W1[None], b1[None], W2[None], b2[None]
    R, din, m = W1.shape
    if d is not None and din != d:
        raise ValueError(f"W1 must have {d} input rows for d={d}, got shape {W1.shape[-2:]}")
    W2 = W2.reshape(R, m, -1)
    if b1.shape != (R, m) or W2.shape != (R, m, 1) or b2.reshape(R, -1).shape != (R, 1):
        raise ValueError(
            f"weights must be W1 (d, m), b1 (m,), W2 (m, 1), b2 (1,) (optionally with a leading "
            f"replica axis); got {W1.shape}, {b1.shape}, {W2.shape}, {b2.shape}"
        )
    return W1, b1, W2[..., 0], b2.reshape(R), batched


def two_layer_forward(weights, X) -> np.ndarray:
    """Scores ``relu(X W1 + b1) W2 + b2`` of a one-hidden-layer ReLU network.

    Parameters
    ----------
    weights : dict or sequence
        ``W1 (d, m), b1 (m,), W2 (m, 1), b2 (1,)`` (optionally with a leading replica axis R),
        the 4 arrays in that order, or the parameters of an nn Dense ReLU Dense network
        (:func:`network_weights`).
    X : array_like of shape (N, d)
        Inputs.

    Returns
    -------
    ndarray of shape (N,), or (R, N) with a replica axis
    """
    W1, b1, W2, b2, batched = _unpack(weights)
    X = real_array(X, "X")
    hidden = np.maximum(X @ W1 + b1[:, None, :], 0.0)
    out = np.einsum("rnm,rm->rn", hidden, W2) + b2[:, None]
    return out if batched else out[0]


def _hinge_coefficient(score, loss) -> np.ndarray:
    """``c(x)``: 1 for the square loss, ``b = (r'(p) + r'(-p)) / 2`` for ``r(yhat y)``."""
    r_prime = _loss_derivative(loss)
    return np.ones_like(score) if r_prime is None else 0.5 * (r_prime(score) + r_prime(-score))


def _wht_column_variance(cols: np.ndarray) -> np.ndarray:
    """Per column, the variance over all parities v of ``u_hat_v = (H u)_v / N``."""
    N = cols.shape[0]
    coeffs = fwht(np.array(cols, dtype=np.float64, order="C")) / N
    return np.mean(coeffs**2, axis=0) - np.mean(coeffs, axis=0) ** 2


def _parity_variance_one(X, W1, b1, W2, b2, loss, chunk_cols: int):
    """Exact variance and ``G^2 / 2^d`` for one network, in chunks of hidden units.

    Per input, ``grad p`` has blocks W1 (``x_i q_k``), b1 (``q_k = 1[pre_k > 0] W2_k``),
    W2 (``relu(pre_k)``), b2 (1); the target enters through ``u = c grad p``. Two passes over
    the hidden units: the first accumulates the score (``c`` needs it) and ``G^2``; the second
    transforms ``c q`` and ``c relu(pre)``. The W1 block's variance is d times the b1 block's
    (``x_i h_v = h_{v xor {i}}`` only re-indexes the transform).
    """
    N, d = X.shape
    m = W1.shape[1]
    chunks = [slice(k, min(k + chunk_cols, m)) for k in range(0, m, chunk_cols)]
    score = np.full(N, float(b2))
    grad_sq = np.ones(N)
    for ch in chunks:
        pre = X @ W1[:, ch] + b1[ch]
        active = pre > 0.0  # ReLU gradient 0 at 0, as in failgeom.nn
        hidden = np.where(active, pre, 0.0)
        score += hidden @ W2[ch]
        grad_sq += (d + 1) * ((active * W2[ch]) ** 2).sum(axis=1) + (hidden**2).sum(axis=1)
    c = _hinge_coefficient(score, loss)
    variance = float(_wht_column_variance(c[:, None]).sum())
    for ch in chunks:
        pre = X @ W1[:, ch] + b1[ch]
        active = pre > 0.0
        q = (active * W2[ch]) * c[:, None]
        hidden = np.where(active, pre, 0.0) * c[:, None]
        variance += (d + 1) * float(_wht_column_variance(q).sum()) + float(_wht_column_variance(hidden).sum())
    return variance, float(grad_sq.mean()) / N


def parity_gradient_variance(d: int, weights, loss="square", *, method: str = "wht", chunk_bytes: int = 2**24):
    """Exact ``Var(H, F, w)`` over all ``2^d`` parities on ``{+-1}^d`` (Theorem 1, Sec. 2.1).

    The network is ``p_w(x) = relu(x W1 + b1) W2 + b2`` (the paper's Dense(d -> 10d) ReLU
    Dense(10d -> 1)); inputs uniform on the cube; target ``h_v(x) = prod_{i in v} x_i`` with v
    uniform over all ``2^d`` subsets (including the empty one). No sampling.

    ``method="wht"``: the per-input gradient coefficients on every parity come from the fast
    Walsh-Hadamard transform, in column chunks of at most ``chunk_bytes``. Only the ``2 m + 1``
    columns of the b1, W2, b2 blocks are transformed: the W1 block's column ``(i, k)`` is
    ``x_i`` times b1's column k, whose transform is b1's transform re-indexed by
    ``v -> v xor {i}`` (``x_i h_v = h_{v xor {i}}``), with the same variance over v.
    ``method="direct"``: every ``grad F_h`` by an explicit sum over the domain, all parameters
    (O(4^d P), for checking small d); its bound comes from the same full per-input gradients,
    so both returned numbers are computed independently of the WHT route.

    Parameters
    ----------
    d : int
        Input dimension (``2^d`` inputs and targets; exact up to d = 16 in seconds).
    weights : dict or sequence
        ``W1 (d, m), b1 (m,), W2 (m, 1), b2 (1,)``, optionally with a leading replica axis R.
    loss : "square", "hinge" or callable ``r'``
        As :func:`gradient_variance`.
    method : {"wht", "direct"}
    chunk_bytes : int
        Size of one ``(2^d, chunk)`` block of hidden units; peak memory is a small multiple.

    Returns
    -------
    variance : float or ndarray (R,)
    bound : float or ndarray (R,)
        ``G(w)^2 / 2^d`` with ``G^2 = E_x ||grad p_w(x)||^2`` over all parameters.

    Raises
    ------
    ValueError
        If ``d > 24``, or ``weights`` do not have the shapes above.
    """
    d = positive_int(d, "d")
    choice(method, "method", ("wht", "direct"))
    chunk_bytes = positive_int(chunk_bytes, "chunk_bytes")
    if d > 24:
        raise ValueError(f"d must be at most 24 (2^d inputs are enumerated), got {d}")
    _loss_derivative(loss)
    W1, b1, W2, b2, batched = _unpack(weights, d)
    X = cube_inputs(d)
    N = X.shape[0]
    chunk_cols = max(1, chunk_bytes // (8 * N))  # hidden units per chunk: a few N x chunk arrays
    variances, bounds = [], []
    for r in range(W1.shape[0]):  # exact evaluation, one replica at a time (not training)
        if method == "direct":  # both numbers from the full gradients, independently of the WHT route
            var, bound = _direct_variance(X, W1[r], b1[r], W2[r], b2[r], loss)
        else:
            var, bound = _parity_variance_one(X, W1[r], b1[r], W2[r], b2[r], loss, chunk_cols)
        variances.append(var)
        bounds.append(bound)
    if batched:
        return np.array(variances), np.array(bounds)
    return variances[0], bounds[0]


def parity_full_gradients(weights, X) -> tuple[np.ndarray, np.ndarray]:
    """Scores and the full per-input gradients ``d p_w(x) / dw`` of one two-layer network.

    Parameter order of the gradient columns: W1 (row-major), b1, W2, b2.

    Parameters
    ----------
    weights : dict or sequence
        As :func:`parity_gradient_variance`, without a replica axis.
    X : array_like of shape (N, d)
        Inputs.

    Returns
    -------
    score : ndarray of shape (N,)
    grads : ndarray of shape (N, P)
        ``P = d m + 2 m + 1``.

    Raises
    ------
    ValueError
        If ``weights`` has a replica axis.
    """
    W1, b1, W2, b2, batched = _unpack(weights)
    if batched:
        raise ValueError("weights must not have a replica axis here")
    return _full_gradients(real_array(X, "X"), W1[0], b1[0], W2[0], b2[0])


def _full_gradients(X, W1, b1, W2, b2):
    pre = X @ W1 + b1
    active = pre > 0.0
    hidden = np.where(active, pre, 0.0)
    score = hidden @ W2 + b2
    q = active * W2
    gW1 = (X[:, :, None] * q[:, None, :]).reshape(X.shape[0], -1)
    return score, np.column_stack([gW1, q, hidden, np.ones(X.shape[0])])


def _direct_variance(X, W1, b1, W2, b2, loss) -> tuple[float, float]:
    score, g = _full_gradients(X, W1, b1, W2, b2)
    return gradient_variance(score, g, parity_targets(X.shape[1]), loss)


# --------------------------------------------------------------------------------------------
# Lemma 3: a parity is realized by one hidden ReLU layer


def parity_network(v) -> dict:
    """Lemma 3's exact ReLU network for the parity ``(-1)^{<x, v>}`` on inputs ``x`` in {0,1}^d.

    For every even number ``2i`` in ``0..d``, a triad of hidden units with weight vector ``v``,
    biases ``-(2i - 1/2), -2i, -(2i + 1/2)`` and output weights ``1, -2, 1`` forms a hat of height
    1/2 at ``<x, v> = 2i``; the sum is 1/2 exactly when ``<x, v>`` is even. Output
    ``4 * sum - 1``. Width ``3 (floor(d/2) + 1) > 3d/2``.

    Parameters
    ----------
    v : array_like of 0/1, shape (d,)
        The subset defining the parity.

    Returns
    -------
    dict
        ``{"W1": (d, width), "b1": (width,), "W2": (width, 1), "b2": (1,)}``, float64; evaluate
        with :func:`two_layer_forward`.

    Raises
    ------
    TypeError
        If ``v`` is not numeric or bool.
    ValueError
        If ``v`` is not a non-empty 1-D vector of 0s and 1s.
    """
    v = np.asarray(v)
    if v.dtype.kind not in "biuf":
        raise TypeError(f"v must be a 0/1 vector of numbers or bools, got dtype {v.dtype}")
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"v must be a non-empty 1-D 0/1 vector, got shape {v.shape}")
    if not np.all((v == 0) | (v == 1)):
        raise ValueError("v must contain only 0 and 1")
    d = v.size
    evens = 2.0 * np.arange(d // 2 + 1)
    offsets = np.array([-0.5, 0.0, 0.5])
    biases = -(evens[:, None] + offsets[None, :]).ravel()
    width = biases.size
    return {
        "W1": np.repeat(v.astype(np.float64)[:, None], width, axis=1),
        "b1": biases,
        "W2": (4.0 * np.tile([1.0, -2.0, 1.0], evens.size))[:, None],
        "b2": np.array([-1.0]),
    }


def binary_cube(d: int) -> np.ndarray:
    """All ``2^d`` points of ``{0,1}^d`` (the input domain of Lemma 3).

    Parameters
    ----------
    d : int
        Dimension, 1 to 62 (and ``2^d`` rows must fit in memory).

    Returns
    -------
    ndarray of shape (2^d, d), float64
    """
    d = _cube_dimension(d, lambda d: 8 * (3 * d + 1) * 2**d, "2^d points of d coordinates and temporaries")
    idx = np.arange(2**d)
    return ((idx[:, None] >> np.arange(d)[None, :]) & 1).astype(np.float64)
