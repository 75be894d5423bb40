"""Piecewise-linear curves of Sec. 4.1: ``f(x) = sum_r a_r [x - theta_r]_+`` at ``x = 0..n-1``.

A curve is returned with its sparse kink vector ``p`` (``a_r`` at index ``theta_r``), so that
``f = W p`` with ``W[i, j] = [i - j + 1]_+`` (two cumulative sums).
"""

from __future__ import annotations

import numpy as np

DISTRIBUTIONS = ("paper", "code")

#: Slope patterns of the original code for 4.1.1-4.1.3; the kink coefficients are their
#: successive differences (slope 0 before the first kink).
CODE_SLOPE_PATTERNS = np.array([[1, -1, 1], [1, -2, 1], [-2, 1, -1], [1, -1, 2]], dtype=np.float64)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _kinks_without_replacement(rng, count: int, m: int, k: int) -> np.ndarray:
    """``count`` rows of k distinct values from ``{0..m-1}``, sorted; vectorized over rows."""
    keys = rng.random((count, m))
    return np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1)


def sample_pwl_curves(rng, count: int, n: int = 100, k: int = 3, distribution: str = "paper"):
    """Sample PWL curves and their kink vectors (Sec. 4.1).

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
        ``"paper"`` (the paper's text): kinks uniform without replacement from ``{0..n-1}``,
        coefficients ``a_r`` iid ``U[-1, 1]``. ``"code"`` (original code of 4.1.1-4.1.3, k = 3
        only): kinks ``3 + sorted sample without replacement from {0..n-7}``, slopes one of
        :data:`CODE_SLOPE_PATTERNS` uniformly, ``a`` their successive differences.

    Returns
    -------
    f : ndarray (count, n), float64
        The curves.
    p : ndarray (count, n), float64
        Kink vectors, ``f = W p``.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    count = _check_int(count, "count", 1)
    n = _check_int(n, "n", 1)
    k = _check_int(k, "k", 1)
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    p = np.zeros((count, n))
    rows = np.arange(count)[:, None]
    if distribution == "paper":
        if k > n:
            raise ValueError(f"k must be at most n={n} for the paper's distribution, got {k}")
        theta = _kinks_without_replacement(rng, count, n, k)
        a = rng.uniform(-1.0, 1.0, size=(count, k))
    else:
        if k != 3:
            raise ValueError(f"k must be 3 for the code distribution (fixed slope patterns), got {k}")
        if n < 9:
            raise ValueError(f"n must be at least 9 for the code distribution, got {n}")
        theta = 3 + _kinks_without_replacement(rng, count, n - 6, k)
        slopes = CODE_SLOPE_PATTERNS[rng.integers(0, len(CODE_SLOPE_PATTERNS), size=count)]
        a = np.diff(slopes, axis=1, prepend=0.0)
    p[rows, theta] = a
    f = np.cumsum(np.cumsum(p, axis=1), axis=1)
    return f, p
