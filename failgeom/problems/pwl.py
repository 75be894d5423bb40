"""Piecewise-linear curves of Sec. 4.1 and their training sets: samplers and exact moments.

A curve ``f(x) = sum_r a_r [x - theta_r]_+`` sampled at ``x = 0..n-1`` comes with its sparse kink
vector ``p`` (``a_r`` at index ``theta_r``), so that ``f = W p`` with ``W[i, j] = [i - j + 1]_+``
(two cumulative sums). Three distributions:

``"paper"`` (the paper's text)
    kinks uniform without replacement from ``{0..n-1}``, ``a_r`` iid ``U[-1, 1]``.
``"code"`` (the original code of Sec. 4.1.1-4.1.3; k = 3 only)
    kinks ``3 + sorted sample without replacement from {0..n-7}``, slopes one of
    :data:`CODE_SLOPE_PATTERNS` uniformly, ``a`` their successive differences.
``"continuous"`` (the original code of Sec. 4.1.4, the autoencoder)
    kinks ``theta_r ~ U[0, n]`` off the grid, ``a_r ~ U[-1, 1]``: there is no kink vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..validation import integer

DISTRIBUTIONS = ("paper", "code", "continuous")

#: Slope patterns of the original code for 4.1.1-4.1.3; the kink coefficients are their
#: successive differences (slope 0 before the first kink).
CODE_SLOPE_PATTERNS = np.array([[1, -1, 1], [1, -2, 1], [-2, 1, -1], [1, -1, 2]], dtype=np.float64)

#: The original code's kinks lie in ``3..n-4``: ``3 +`` a sample from ``{0..n-7}``.
CODE_KINK_OFFSET = 3


def _check_distribution(distribution: str, n: int, k: int) -> str:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if distribution == "paper" and k > n:
        raise ValueError(f"k must be at most n={n} for the paper's distribution, got {k}")
    if distribution == "code":
        if k != 3:
            raise ValueError(f"k must be 3 for the code distribution (fixed slope patterns), got {k}")
        if n < 9:
            raise ValueError(f"n must be at least 9 for the code distribution, got {n}")
    return distribution


def _kinks_without_replacement(rng, count: int, m: int, k: int) -> np.ndarray:
    """``count`` rows of k distinct values from ``{0..m-1}``, sorted; vectorized over rows."""
    keys = rng.random((count, m))
    return np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1)


def sample_pwl_curves(rng, count: int, n: int = 100, k: int = 3, distribution: str = "paper"):
    """Sample PWL curves with grid kinks and their kink vectors (Sec. 4.1).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of all randomness.
    count : int
        Number of curves.
    n : int
        Sample points ``x = 0..n-1`` (paper: 100).
    k : int
        Number of kinks (paper: 3).
    distribution : {"paper", "code"}
        See the module docstring.

    Returns
    -------
    f : ndarray (count, n), float64
        The curves.
    p : ndarray (count, n), float64
        Kink vectors, ``f = W p``.

    Raises
    ------
    TypeError
        If ``rng`` is not a Generator or ``count``, ``n``, ``k`` are not integers.
    ValueError
        If ``count``, ``n`` or ``k`` is below 1, ``distribution`` is unknown or "continuous", or
        ``n`` and ``k`` do not suit it (``k <= n`` for "paper"; ``k = 3``, ``n >= 9`` for "code").
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    count = integer(count, "count", low=1)
    n = integer(n, "n", low=1)
    k = integer(k, "k", low=1)
    if distribution == "continuous":
        raise ValueError("distribution 'continuous' has no kink vector: use sample_continuous_kink_curves")
    _check_distribution(distribution, n, k)
    p = np.zeros((count, n))
    rows = np.arange(count)[:, None]
    if distribution == "paper":
        theta = _kinks_without_replacement(rng, count, n, k)
        a = rng.uniform(-1.0, 1.0, size=(count, k))
    else:
        theta = CODE_KINK_OFFSET + _kinks_without_replacement(rng, count, n - 2 * CODE_KINK_OFFSET, k)
        slopes = CODE_SLOPE_PATTERNS[rng.integers(0, len(CODE_SLOPE_PATTERNS), size=count)]
        a = np.diff(slopes, axis=1, prepend=0.0)
    p[rows, theta] = a
    f = np.cumsum(np.cumsum(p, axis=1), axis=1)
    return f, p


def sample_continuous_kink_curves(rng, count: int, n: int = 100, k: int = 3):
    """Curves of the autoencoder's original data (Sec. 4.1.4): ``theta_r ~ U[0, n]``, ``a_r ~ U[-1, 1]``.

    Parameters
    ----------
    rng : numpy.random.Generator
    count, n, k : int
        Number of curves, sample points ``x = 0..n-1``, kinks per curve.

    Returns
    -------
    f : ndarray (count, n), float64
        ``f(x) = sum_r a_r [x - theta_r]_+``.
    theta : ndarray (count, k), float64
        The kinks (off the grid, so there is no kink vector p).

    Raises
    ------
    TypeError
        If ``rng`` is not a Generator or ``count``, ``n``, ``k`` are not integers.
    ValueError
        If ``count``, ``n`` or ``k`` is below 1.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    count, n, k = integer(count, "count", low=1), integer(n, "n", low=1), integer(k, "k", low=1)
    theta = rng.uniform(0.0, float(n), size=(count, k))
    a = rng.uniform(-1.0, 1.0, size=(count, k))
    x = np.arange(n, dtype=np.float64)
    f = np.einsum("ck,ckx->cx", a, np.maximum(x[None, None, :] - theta[:, :, None], 0.0))
    return f, theta


def near_kink_mask(p: np.ndarray) -> np.ndarray:
    """Positions within one step of a kink of ``f = W p``.

    With ``f_i = sum_j p_j [i - j + 1]_+`` a non-zero ``p_j`` bends f at ``x = j - 1`` (f is 0 there
    and ``p_j`` one step later), so the mask covers ``x = j - 2, j - 1, j``.

    Parameters
    ----------
    p : array_like, shape (..., n)
        Kink vectors.

    Returns
    -------
    bool ndarray, shape (..., n)
    """
    kinks = np.asarray(p) != 0
    mask = kinks.copy()
    mask[..., :-1] |= kinks[..., 1:]
    mask[..., :-2] |= kinks[..., 2:]
    return mask


def code_kink_second_moment(n: int) -> np.ndarray:
    """Exact ``E[p p^T]`` (n x n) of the original code's distribution (k = 3), in closed form.

    ``p = sum_r a_r e_{theta_r}`` with the kinks ``theta_1 < theta_2 < theta_3`` the order
    statistics of a uniform 3-subset of ``{3..n-4}`` (``m = n - 6`` values) and ``a`` independent
    of them, so ``E[p p^T] = sum_{r,s} E[a_r a_s] P(theta_r = i, theta_s = j)``. With ``N =
    C(m, 3)`` and offsets ``u < v`` into the subset range: ``P(theta_1 = u) = C(m-1-u, 2) / N``,
    ``P(theta_2 = u) = u (m-1-u) / N``, ``P(theta_3 = u) = C(u, 2) / N``, ``P(theta_1 = u,
    theta_2 = v) = (m-1-v) / N``, ``P(theta_1 = u, theta_3 = v) = (v-u-1) / N``, ``P(theta_2 = u,
    theta_3 = v) = u / N``.

    Parameters
    ----------
    n : int
        Curve length, at least 9.

    Returns
    -------
    ndarray of shape (n, n), float64
        Zero outside rows and columns ``3..n-4``; not a multiple of the identity.
    """
    n = integer(n, "n", low=9)
    m = n - 2 * CODE_KINK_OFFSET
    total = math.comb(m, 3)
    a = np.diff(CODE_SLOPE_PATTERNS, axis=1, prepend=0.0)
    Eaa = a.T @ a / len(a)  # (3, 3): E[a_r a_s]
    u = np.arange(m, dtype=np.float64)
    marginal = [(m - 1 - u) * (m - 2 - u) / 2, u * (m - 1 - u), u * (u - 1) / 2]
    U, V = np.meshgrid(u, u, indexing="ij")  # U: row offset, V: column offset
    upper = U < V
    pair = {(0, 1): np.where(upper, m - 1 - V, 0.0), (0, 2): np.where(upper, V - U - 1, 0.0),
            (1, 2): np.where(upper, U, 0.0)}
    block = np.zeros((m, m))
    for r in range(3):
        block += Eaa[r, r] * np.diag(marginal[r])
    for (r, s), P in pair.items():  # theta_r = row < theta_s = column, and its mirror
        block += Eaa[r, s] * (P + P.T)
    out = np.zeros((n, n))
    out[CODE_KINK_OFFSET:CODE_KINK_OFFSET + m, CODE_KINK_OFFSET:CODE_KINK_OFFSET + m] = block / total
    return out


def kink_second_moment_matrix(n: int, k: int = 3, distribution: str = "paper") -> np.ndarray:
    """Exact ``E[p p^T]`` (n x n) of a grid-kink distribution: ``(k / 3n) I`` for ``"paper"``
    (kinks without replacement, iid zero-mean ``a`` with ``E a^2 = 1/3``), the closed form of
    :func:`code_kink_second_moment` for ``"code"``.

    Parameters
    ----------
    n, k : int
        Curve length and kinks per curve.
    distribution : {"paper", "code"}

    Returns
    -------
    ndarray, shape (n, n), float64

    Raises
    ------
    TypeError, ValueError
        If ``n`` or ``k`` is not a positive integer, ``distribution`` is unknown or "continuous",
        or ``n`` and ``k`` do not suit it.
    """
    n, k = integer(n, "n", low=1), integer(k, "k", low=1)
    if distribution == "continuous":
        raise ValueError("distribution 'continuous' has no kink vector and so no E[p p^T]")
    _check_distribution(distribution, n, k)
    if distribution == "paper":
        return (k / (3.0 * n)) * np.eye(n)
    return code_kink_second_moment(n)


@dataclass
class PWLData:
    """Per-replica fixed training and validation sets (the original code's 10,000 / 1,000).

    For curves with continuous kinks ``p`` is all zeros (there is no kink vector).

    Parameters
    ----------
    train_f, train_p : ndarray, shape (R, N, n)
        Training curves and their kink vectors.
    val_f, val_p : ndarray, shape (R, M, n)
        Validation curves and their kink vectors.
    val_near_kink : bool ndarray, shape (R, M, n)
        Validation positions within one step of a kink.
    """

    train_f: np.ndarray
    train_p: np.ndarray
    val_f: np.ndarray
    val_p: np.ndarray
    val_near_kink: np.ndarray

    @property
    def has_kink_vectors(self) -> bool:
        """Whether ``p`` is the curves' kink vector (grid kinks) rather than a zero placeholder."""
        return bool(np.any(self.val_p != 0))


def sample_pwl_data(rngs: Sequence[np.random.Generator], n: int, k: int, distribution: str,
                    train_size: int, val_size: int) -> PWLData:
    """Each replica's fixed training and validation sets, replica r from ``rngs[r]`` alone.

    Parameters
    ----------
    rngs : sequence of numpy.random.Generator
        One per replica (R in all); each draws the training set, then the validation set.
    n, k : int
        Curve length and kinks per curve.
    distribution : {"paper", "code", "continuous"}
        See the module docstring.
    train_size, val_size : int
        Curves per replica.

    Returns
    -------
    PWLData
        Arrays of shape ``(R, train_size, n)`` and ``(R, val_size, n)``, float64.

    Raises
    ------
    ValueError
        If ``rngs`` is empty, or (with TypeError) for bad sizes or distribution, as
        :func:`sample_pwl_curves`.
    """
    if len(rngs) == 0:
        raise ValueError("rngs must hold one Generator per replica, got none")
    n, k = integer(n, "n", low=1), integer(k, "k", low=1)
    _check_distribution(distribution, n, k)
    x = np.arange(n)
    parts = []
    for rng in rngs:
        if distribution == "continuous":
            f, _ = sample_continuous_kink_curves(rng, train_size, n, k)
            g, theta = sample_continuous_kink_curves(rng, val_size, n, k)
            near = np.any(np.abs(x[None, None, :] - theta[:, :, None]) <= 1.0, axis=1)
            parts.append((f, np.zeros_like(f), g, np.zeros_like(g), near))
        else:
            f, p = sample_pwl_curves(rng, train_size, n, k, distribution)
            g, q = sample_pwl_curves(rng, val_size, n, k, distribution)
            parts.append((f, p, g, q, near_kink_mask(q)))
    return PWLData(*(np.stack(arrays) for arrays in zip(*parts)))


def minibatch(rng: np.random.Generator, data_f: np.ndarray, data_p: np.ndarray, batch: int):
    """Each replica draws its own minibatch (with replacement) from its own training set.

    Parameters
    ----------
    rng : numpy.random.Generator
    data_f, data_p : ndarray (R, N, n)
        Training curves and kink vectors.
    batch : int

    Returns
    -------
    f, p : ndarray (R, batch, n)
        One fancy-indexing gather with ``(R, batch)`` indices, no loop over replicas.
    """
    R, N = data_f.shape[:2]
    idx = rng.integers(0, N, size=(R, batch))
    rows = np.arange(R)[:, None]
    return data_f[rows, idx], data_p[rows, idx]


__all__ = [
    "CODE_KINK_OFFSET", "CODE_SLOPE_PATTERNS", "DISTRIBUTIONS", "PWLData", "code_kink_second_moment",
    "kink_second_moment_matrix", "minibatch", "near_kink_mask", "sample_continuous_kink_curves",
    "sample_pwl_curves", "sample_pwl_data",
]
