"""Linear algebra over GF(2) on bit-packed rows: the non-gradient learner of parities.

A parity ``y = <s, x> mod 2`` of n bits is a linear equation over GF(2) in the unknown subset
``s``; m noiseless samples give the system ``A s = b`` with ``A`` the ``(m, n)`` sample bits and
``b`` the label bits, and Gaussian elimination recovers ``s`` as soon as ``A`` has rank n. For
uniform samples that takes n + O(1) of them (the expected excess is about 1.61), whatever the
size of ``s``: sparse and dense parities are the same to this learner, which is why the failure
of gradient methods on dense parities (paper Sec. 2.1) is the gradient's, not learnability's.

Rows are packed 64 columns to a ``uint64`` word (column j is bit ``j % 64`` of word ``j // 64``).
Elimination loops over the pivot columns only; each step finds the pivot with one vectorized
scan of a word column and clears that column from every other row with one vectorized XOR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORD = 64


def _as_bit_matrix(bits, name: str, ndim: int = 2) -> np.ndarray:
    arr = np.asarray(bits)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array of 0/1 values, got shape {arr.shape}")
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers or booleans (0/1 bits), got dtype {arr.dtype}")
    if arr.dtype != bool and arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must hold only 0 and 1")
    return arr.astype(np.uint8, copy=False)


def pack_rows(bits) -> np.ndarray:
    """Pack a 0/1 matrix ``(m, c)`` into words ``(m, ceil(c / 64))`` of dtype uint64.

    Column j lands in bit ``j % 64`` of word ``j // 64``; the padding bits are zero.
    """
    bits = _as_bit_matrix(bits, "bits")
    m, c = bits.shape
    words = max(1, -(-c // WORD))
    packed = np.packbits(bits, axis=1, bitorder="little")
    out = np.zeros((m, words * 8), dtype=np.uint8)
    out[:, : packed.shape[1]] = packed
    return out.view("<u8").astype(np.uint64, copy=False)


def unpack_rows(words, ncols: int) -> np.ndarray:
    """The inverse of :func:`pack_rows`: words ``(m, W)`` to a 0/1 uint8 matrix ``(m, ncols)``."""
    words = np.ascontiguousarray(words, dtype=np.uint64)
    if words.ndim != 2 or not 0 <= ncols <= WORD * words.shape[1]:
        raise ValueError(f"words must be (m, W) with ncols <= 64 W, got {words.shape} and ncols={ncols}")
    raw = words.astype("<u8", copy=False).view(np.uint8)
    return np.unpackbits(raw, axis=1, count=ncols, bitorder="little")


def eliminate(words: np.ndarray, ncols: int, stop_rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jordan elimination of packed rows over GF(2), in place, column by column.

    For each column c (in order) the pivot is the first row not yet a pivot row that has bit c
    set; bit c is then cleared from every other row by XOR with the pivot row. Only the words
    from ``c // 64`` on are touched: a pivot row is zero in every earlier column (earlier pivot
    columns were cleared from it; a free column is zero in all rows that were not pivots yet).

    Parameters
    ----------
    words : ndarray (m, W) of uint64
        Packed rows (see :func:`pack_rows`); overwritten with the reduced rows.
    ncols : int
        Number of columns to eliminate (``<= 64 W``; later columns, e.g. a right-hand side,
        ride along).
    stop_rank : int, optional
        Stop as soon as this many pivots are found.

    Returns
    -------
    pivot_rows, pivot_cols : ndarray of int
        The pivots in column order: row ``pivot_rows[i]`` holds the only 1 of column
        ``pivot_cols[i]``. The pivot columns are the first linearly independent columns.
    """
    if words.dtype != np.uint64 or words.ndim != 2:
        raise TypeError(f"words must be a 2-D uint64 array, got {words.dtype} {words.shape}")
    m, W = words.shape
    if not 0 <= ncols <= WORD * W:
        raise ValueError(f"ncols must lie in 0..{WORD * W} for {W} words per row, got {ncols}")
    # word-major copy (W, m): a word column is contiguous, so the scan and the XOR run over rows
    wt = np.ascontiguousarray(words.T)
    scratch = np.empty_like(wt)
    free = np.ones(m, dtype=bool)  # rows that are not pivot rows yet
    pivot_rows: list[int]
    pivot_cols: list[int]
    pivot_rows, pivot_cols = [], []
    one = np.uint64(1)
    for c in range(ncols):  # loop over pivot columns; every step is vectorized over the rows
        if stop_rank is not None and len(pivot_cols) >= stop_rank:
            break
        w, s = divmod(c, WORD)
        bit = (wt[w] >> np.uint64(s)) & one
        candidates = bit.astype(bool) & free
        if not candidates.any():
            continue
        r = int(np.argmax(candidates))
        free[r] = False
        bit[r] = 0
        pivot = wt[w:, r].copy()
        # rows with bit c get the pivot row XORed in: mask = 0 or all ones per row
        tmp = scratch[w:]
        np.bitwise_and(pivot[:, None], np.negative(bit)[None, :], out=tmp)
        wt[w:] ^= tmp
        pivot_rows.append(r)
        pivot_cols.append(c)
    words[...] = wt.T
    return np.asarray(pivot_rows, dtype=np.int64), np.asarray(pivot_cols, dtype=np.int64)


def rank(bits) -> int:
    """Rank over GF(2) of a 0/1 matrix ``(m, n)``."""
    bits = _as_bit_matrix(bits, "bits")
    _, cols = eliminate(pack_rows(bits), bits.shape[1], stop_rank=min(bits.shape))
    return int(cols.size)


def spanning_prefix(bits) -> int | None:
    """The smallest m' such that the first m' rows of ``bits`` ``(m, n)`` have rank n.

    The rows that raise the rank of their prefix are the pivot columns of the transpose, so this
    is one elimination of ``bits.T`` (n rows, m packed columns) that stops at rank n. Returns
    None if all m rows together have rank below n.
    """
    bits = _as_bit_matrix(bits, "bits")
    m, n = bits.shape
    _, cols = eliminate(pack_rows(bits.T), m, stop_rank=n)
    return int(cols[-1]) + 1 if cols.size == n else None


@dataclass(frozen=True)
class GF2Solution:
    """A solution of ``A s = b`` over GF(2).

    Attributes
    ----------
    solution : ndarray (n,) of uint8
        One solution (the free variables set to 0); meaningful only when ``consistent``.
    rank : int
        Rank of ``A``.
    consistent : bool
        Whether the system has a solution at all (it may not with noisy labels).
    unique : bool
        ``consistent`` and ``rank == n``: the solution is the only one.
    """

    solution: np.ndarray
    rank: int
    consistent: bool
    unique: bool


def solve(A, b) -> GF2Solution:
    """Solve ``A s = b`` over GF(2) by Gauss-Jordan elimination of the packed ``[A | b]``.

    Parameters
    ----------
    A : array_like (m, n) of 0/1
        One sample's bits per row.
    b : array_like (m,) of 0/1
        The label bits (``y = (-1)^b``).

    Returns
    -------
    GF2Solution
    """
    A = _as_bit_matrix(A, "A")
    b = _as_bit_matrix(b, "b", ndim=1)
    m, n = A.shape
    if b.shape != (m,):
        raise ValueError(f"b must have shape ({m},) to match A {A.shape}, got {b.shape}")
    words = pack_rows(np.column_stack([A, b]))
    rows, cols = eliminate(words, n)
    w, s = divmod(n, WORD)
    rhs = ((words[:, w] >> np.uint64(s)) & np.uint64(1)).astype(np.uint8)
    solution = np.zeros(n, dtype=np.uint8)
    solution[cols] = rhs[rows]
    # after full reduction a non-pivot row is zero on A's columns: a 1 in b there is 0 = 1
    nonpivot = np.ones(m, dtype=bool)
    nonpivot[rows] = False
    consistent = not bool(rhs[nonpivot].any())
    return GF2Solution(solution=solution, rank=int(cols.size), consistent=consistent,
                       unique=consistent and cols.size == n)
