"""Sparse parities: ``x`` uniform on {±1}^n, target the product of the bits of a random k-subset.

The class of k-sparse parities of n bits has ``C(n, k)`` members; ``k = n // 2`` is the dense
case of the paper (Sec. 2.1), whose class is the largest. Minibatches in {±1} come from
:func:`failgeom.problems.parity.sample_parity` (the subsets are boolean masks ``(R, n)``); the
non-gradient learner (:mod:`failgeom.gf2`) reads the same samples as bits through
:func:`sample_parity_bits`.
"""

from __future__ import annotations

import math

import numpy as np

from .parity import parity_labels, random_subsets, sample_parity
from ..validation import integer, positive_int

__all__ = ["dense_k", "k_subsets", "class_size", "sample_parity", "sample_parity_bits", "subset_indices"]


def _check_k(n: int, k) -> int:
    if not 1 <= integer(k, "k") <= n:
        raise ValueError(f"k must lie in 1..{n} (n = {n}), got {k}")
    return int(k)


def dense_k(n: int) -> int:
    """The subset size of the dense column, ``n // 2`` (the size of the largest class C(n, k)).

    Parameters
    ----------
    n : int
        Number of bits.

    Returns
    -------
    int
        ``max(1, n // 2)``.

    Raises
    ------
    TypeError, ValueError
        If ``n`` is not a positive integer.
    """
    return max(1, positive_int(n, "n") // 2)


def class_size(n: int, k: int) -> int:
    """``C(n, k)``, the number of k-sparse parities of n bits.

    Parameters
    ----------
    n : int
        Number of bits.
    k : int
        Subset size, in ``1..n``.

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        If ``n`` is not a positive integer or ``k`` not an integer in ``1..n``.
    """
    n = positive_int(n, "n")
    return math.comb(n, _check_k(n, k))


def k_subsets(rngs, n: int, k: int) -> np.ndarray:
    """One uniformly random k-subset of ``0..n-1`` per generator, as a boolean array ``(R, n)``.

    Parameters
    ----------
    rngs : sequence of R Generators
    n : int
        Number of bits.
    k : int
        Subset size, in ``1..n``.

    Returns
    -------
    ndarray of bool, shape (R, n)

    Raises
    ------
    TypeError, ValueError
        If ``n`` is not a positive integer or ``k`` not an integer in ``1..n``.
    """
    n = positive_int(n, "n")
    return random_subsets(rngs, n, _check_k(n, k))


def subset_indices(subsets: np.ndarray) -> list[list[int]]:
    """The subsets ``(R, n)`` as sorted index lists (for results on disk).

    Parameters
    ----------
    subsets : bool array_like, shape (R, n)

    Returns
    -------
    list of R lists of int

    Raises
    ------
    ValueError
        If ``subsets`` is not 2-D.
    """
    subsets = np.asarray(subsets, dtype=bool)
    if subsets.ndim != 2:
        raise ValueError(f"subsets must have shape (R, n), got {subsets.shape}")
    return [np.flatnonzero(row).tolist() for row in subsets]


def sample_parity_bits(rng: np.random.Generator, subset, m: int) -> tuple[np.ndarray, np.ndarray]:
    """m fresh samples of one parity as bits: ``A`` ``(m, n)`` and labels ``b`` ``(m,)``, uint8.

    Bit 1 stands for the coordinate value -1, so ``b = sum_{i in subset} A_i mod 2`` and the
    label in {±1} is ``(-1)^b``: the samples of :func:`sample_parity`, in the form
    :func:`failgeom.gf2.solve` reads.

    Parameters
    ----------
    rng : numpy.random.Generator
    subset : bool array_like, shape (n,)
        The parity's subset.
    m : int
        Number of samples.

    Returns
    -------
    A : uint8 ndarray, shape (m, n)
    b : uint8 ndarray, shape (m,)

    Raises
    ------
    ValueError
        If ``subset`` is not a non-empty 1-D vector (TypeError or ValueError also if ``m`` is
        not a positive integer).
    """
    subset = np.asarray(subset, dtype=bool)
    if subset.ndim != 1 or subset.size == 0:
        raise ValueError(f"subset must be a non-empty boolean vector (n,), got shape {subset.shape}")
    m = positive_int(m, "m")
    n = subset.size
    raw = np.frombuffer(rng.bytes(m * ((n + 7) // 8)), dtype=np.uint8).reshape(m, -1)
    bits = np.unpackbits(raw, axis=1, count=n)
    labels = (1 - parity_labels(bits[None], subset[None])[0]) // 2
    return bits, labels.astype(np.uint8)
