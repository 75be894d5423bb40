"""Theorem 1 for the k-sparse parities: the exact gradient variance over all C(n, k) targets.

The class ``H_k = {h_v : |v| = k}`` of weight-k parities on the uniform cube {±1}^n is
orthonormal with ``C(n, k)`` members, so Theorem 1 (paper Sec. 2.1) bounds the variance of the
gradient over the choice of target by ``G(w)^2 / C(n, k)``. As for all ``2^n`` parities
(:func:`failgeom.theory.orthogonal.parity_gradient_variance`), the target enters the gradient
only through the coefficients ``E[h_v u]`` of ``u = c grad p_w`` (``c = 1`` for the square loss,
``c = (r'(p) + r'(-p)) / 2`` for ``r(yhat y)``); here they are the Walsh-Hadamard coefficients of
weight k, read off the fast transform exactly, without sampling.

The W1 block needs no transform of its own: its column ``(i, j)`` is ``x_i`` times the b1
column j, whose coefficient at v is the b1 coefficient at ``v xor {i}``. For ``|v| = k`` that is
a coefficient of weight ``k - 1`` (``i in v``) or ``k + 1`` (``i not in v``), so the sums of
squares over the class come from the weight-``k +- 1`` sums of the b1 spectrum, and the sums of
the coefficients from one product with the subset-membership matrix per weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..validation import integer, positive_int
from .orthogonal import (
    _hinge_coefficient,
    _loss_derivative,
    _unpack,
    cube_inputs,
    fwht,
    gradient_variance,
    parity_full_gradients,
    parity_targets,
)

MAX_N = 20
MAX_N_DIRECT = 12


def _check_ks(k, n: int) -> tuple[tuple[int, ...], bool]:
    scalar = not isinstance(k, (Sequence, np.ndarray))
    ks = [k] if scalar else list(np.asarray(k).ravel().tolist() if isinstance(k, np.ndarray) else k)
    if not ks:
        raise ValueError("k must name at least one subset size")
    for value in ks:
        if not 1 <= integer(value, "k") <= n:
            raise ValueError(f"k must lie in 1..{n} (n = {n}), got {value}")
    return tuple(int(v) for v in ks), scalar


def subset_weights(n: int) -> np.ndarray:
    """``|v|`` for every subset v of ``0..n-1`` in the transform's (Sylvester) order, shape (2^n,)."""
    n = positive_int(n, "n")
    return np.bitwise_count(np.arange(2**n, dtype=np.uint64)).astype(np.int64)


class _WeightSpectrum:
    """Per-weight sums of Walsh-Hadamard coefficients over the rows of a cube array."""

    def __init__(self, n: int):
        self.n = n
        weights = subset_weights(n)
        self.order = np.argsort(weights, kind="stable")
        counts = np.bincount(weights, minlength=n + 1)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
        self.member = bits[self.order].astype(np.float64)  # (2^n, n), rows sorted by weight

    def group(self, w: int) -> slice:
        return slice(self.starts[w], self.starts[w + 1])

    def transform(self, cols: np.ndarray) -> np.ndarray:
        """Coefficients ``E[h_v u]`` of each column, rows sorted by ``|v|``."""
        N = cols.shape[0]
        return (fwht(np.array(cols, dtype=np.float64, order="C")) / N)[self.order]

    def sums(self, coeffs: np.ndarray, weights) -> tuple[np.ndarray, np.ndarray]:
        """``sum_{|v| = w} coeff_v`` and ``sum_{|v| = w} coeff_v^2`` per column, for each w in
        ``weights`` (zero for w outside ``0..n``); two arrays of shape (len(weights), cols)."""
        s1 = np.zeros((len(weights), coeffs.shape[1]))
        s2 = np.zeros_like(s1)
        for t, w in enumerate(weights):  # one contiguous block of rows per weight
            if 0 <= w <= self.n:
                block = coeffs[self.group(w)]
                s1[t] = block.sum(axis=0)
                s2[t] = np.einsum("ij,ij->j", block, block)
        return s1, s2

    def member_sums(self, coeffs: np.ndarray, w: int) -> np.ndarray:
        """``sum_{|v| = w, i in v} coeff_v`` per coordinate i and column, shape (n, cols)."""
        if not 0 <= w <= self.n:
            return np.zeros((self.n, coeffs.shape[1]))
        g = self.group(w)
        return self.member[g].T @ coeffs[g]


def _variance_one(X, W1, b1, W2, b2, loss, ks, chunk_cols: int, spectrum: _WeightSpectrum):
    """Exact variance over each weight class in ``ks`` and ``G^2``, for one network."""
    N, n = X.shape
    m = W1.shape[1]
    chunks = [slice(j, min(j + chunk_cols, m)) for j in range(0, m, chunk_cols)]

    def hidden_units():  # (units, ReLU gradient, ReLU output) per chunk; the gradient is 0 at 0
        for ch in chunks:
            pre = X @ W1[:, ch] + b1[ch]
            yield ch, pre > 0.0, np.maximum(pre, 0.0)

    # first pass: the score (the hinge's c needs it) and G^2 = E ||grad p||^2
    score, grad_sq = np.full(N, float(b2)), np.ones(N)
    for ch, active, relu in hidden_units():
        score += relu @ W2[ch]
        grad_sq += (n + 1) * ((active * W2[ch]) ** 2).sum(axis=1) + (relu**2).sum(axis=1)
    c = _hinge_coefficient(score, loss)
    sizes = np.array([math.comb(n, k) for k in ks], dtype=np.float64)

    def plain_block(coeffs):  # sum over columns of the variance over each class
        s1, s2 = spectrum.sums(coeffs, ks)
        return (s2 / sizes[:, None] - (s1 / sizes[:, None]) ** 2).sum(axis=1)

    variance = plain_block(spectrum.transform(c[:, None]))  # b2
    for ch, active, relu in hidden_units():
        q = spectrum.transform((active * W2[ch]) * c[:, None])  # b1 block
        variance += plain_block(q)
        variance += plain_block(spectrum.transform(relu * c[:, None]))  # W2
        # W1 block, column (i, j): coefficient at v is q_j's at v xor {i}, of weight k -+ 1
        below, above = spectrum.sums(q, [k - 1 for k in ks]), spectrum.sums(q, [k + 1 for k in ks])
        for t, (k, size) in enumerate(zip(ks, sizes)):
            squares = ((n - k + 1) * below[1][t] + (k + 1) * above[1][t]).sum() / size
            totals = below[0][t][None, :] - spectrum.member_sums(q, k - 1) + spectrum.member_sums(q, k + 1)
            variance[t] += squares - float(((totals / size) ** 2).sum())
    return variance, float(grad_sq.mean())


def sparse_parity_gradient_variance(n: int, k, weights, loss="square", *, method: str = "wht",
                                    chunk_bytes: int = 2**25):
    """Exact ``Var(H_k, F, w)`` over all ``C(n, k)`` weight-k parities on {±1}^n (Theorem 1).

    The network is ``p_w(x) = relu(x W1 + b1) W2 + b2``, inputs uniform on the cube, the target
    ``h_v(x) = prod_{i in v} x_i`` with v uniform over the k-subsets of ``0..n-1``.

    Parameters
    ----------
    n : int
        Number of bits, at most 20 (all ``2^n`` inputs are enumerated).
    k : int or sequence of int
        Subset size(s) in ``1..n``; one transform serves every k asked for.
    weights : dict or sequence
        ``W1 (n, m), b1 (m,), W2 (m, 1), b2 (1,)``, optionally with a leading replica axis R.
    loss : "square", "hinge" or callable ``r'``
        As :func:`failgeom.theory.orthogonal.gradient_variance`.
    method : {"wht", "direct"}
        ``"wht"``: from the weight-k Walsh-Hadamard coefficients (see the module docstring).
        ``"direct"``: every ``grad F_h`` by an explicit sum over the cube and all parameters,
        over the enumerated class (O(C(n, k) 2^n P), for checking n <= 12).
    chunk_bytes : int
        Size of one ``(2^n, chunk)`` block of hidden units.

    Returns
    -------
    variance : float, or ndarray of shape (K,), (R,) or (R, K)
        Axes: replicas (if the weights have them), then k (if k is a sequence).
    bound : same shape
        ``G(w)^2 / C(n, k)`` with ``G^2 = E_x ||grad p_w(x)||^2`` over all parameters.

    Raises
    ------
    ValueError
        If ``n > 20``, ``k`` is empty or outside ``1..n``, ``method`` is unknown, or ``method="direct"``
        with ``n > 12``.
    """
    n = positive_int(n, "n")
    if n > MAX_N:
        raise ValueError(f"n must be at most {MAX_N} (2^n inputs are enumerated), got {n}")
    ks, scalar = _check_ks(k, n)
    if method not in ("wht", "direct"):
        raise ValueError(f"method must be one of ('wht', 'direct'), got {method!r}")
    if method == "direct" and n > MAX_N_DIRECT:
        raise ValueError(f"method='direct' enumerates a 2^n x 2^n matrix: n must be at most {MAX_N_DIRECT}, got {n}")
    chunk_bytes = positive_int(chunk_bytes, "chunk_bytes")
    _loss_derivative(loss)
    W1, b1, W2, b2, batched = _unpack(weights, n)
    X = cube_inputs(n)
    chunk_cols = max(1, chunk_bytes // (8 * X.shape[0]))
    spectrum = _WeightSpectrum(n)
    sizes = np.array([math.comb(n, kk) for kk in ks], dtype=np.float64)
    variances, bounds = [], []
    for r in range(W1.shape[0]):  # exact evaluation, one replica at a time (not training)
        if method == "wht":
            var, G2 = _variance_one(X, W1[r], b1[r], W2[r], b2[r], loss, ks, chunk_cols, spectrum)
        else:
            var, G2 = _direct(X, {"W1": W1[r], "b1": b1[r], "W2": W2[r][:, None], "b2": b2[r:r + 1]}, ks, loss)
        variances.append(var)
        bounds.append(G2 / sizes)
    variance, bound = np.array(variances), np.array(bounds)
    if scalar:
        variance, bound = variance[:, 0], bound[:, 0]
    if not batched:
        variance, bound = variance[0], bound[0]
    if np.ndim(variance) == 0:
        return float(variance), float(bound)
    return variance, bound


def _direct(X, weights, ks, loss):
    score, grads = parity_full_gradients(weights, X)
    weight_of = subset_weights(X.shape[1])
    H = parity_targets(X.shape[1])
    var = np.array([gradient_variance(score, grads, H[weight_of == k], loss)[0] for k in ks])
    return var, float(np.mean(np.sum(grads**2, axis=1)))
