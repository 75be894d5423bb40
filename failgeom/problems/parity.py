"""Random parities on the cube (paper Sec. 2.1): ``x`` uniform on {±1}^d, ``y = prod_{i in v*} x_i``."""

from __future__ import annotations

import numpy as np

from ..nn.utils import as_dtype
from ..validation import integer, positive_int


def random_subsets(rngs, d: int, subset_size: int | None = None) -> np.ndarray:
    """One target subset ``v*`` per replica generator, as a boolean array ``(R, d)``.

    With ``subset_size=None`` each coordinate is included with probability 1/2 (the original
    code's default); otherwise exactly ``subset_size`` coordinates, uniformly.

    Parameters
    ----------
    rngs : sequence of R Generators
        Replica r's subset is drawn from ``rngs[r]`` alone.
    d : int
        Number of coordinates.
    subset_size : int, optional
        In ``0..d``.

    Returns
    -------
    ndarray of bool, shape (R, d)

    Raises
    ------
    TypeError, ValueError
        If ``d`` is not a positive integer or ``subset_size`` not an integer in ``0..d``.
    """
    d = positive_int(d, "d")
    if subset_size is not None:
        subset_size = integer(subset_size, "subset_size", 0, d)
    out = np.zeros((len(rngs), d), dtype=bool)
    for r, rng in enumerate(rngs):  # set-up only: one draw per replica stream
        if subset_size is None:
            out[r] = rng.random(d) < 0.5
        else:
            out[r, rng.choice(d, size=subset_size, replace=False)] = True
    return out


def parity_labels(bits: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """``(-1)^(number of ones of bits inside the subset)`` for bits ``(R, B, d)`` in {0, 1}.

    Parameters
    ----------
    bits : integer ndarray, shape (R, B, d)
        Values in {0, 1}.
    subsets : bool ndarray, shape (R, d)

    Returns
    -------
    integer ndarray, shape (R, B)
        Labels in {-1, +1}.
    """
    count = np.bitwise_and(bits, subsets[:, None, :]).sum(axis=-1, dtype=np.int32)
    return 1 - 2 * (count & 1)


def sample_parity(rng: np.random.Generator, subsets: np.ndarray, batch: int, dtype=np.float32):
    """A fresh minibatch for every replica: ``x`` ``(R, B, d)`` in {±1} and ``y`` ``(R, B, 1)``.

    Coordinate value -1 encodes bit 1, so ``y = prod_{i in v*} x_i``. Drawn from random bytes
    (one bit per coordinate), which is several times faster than drawing floats.

    Parameters
    ----------
    rng : numpy.random.Generator
    subsets : bool ndarray, shape (R, d)
        Each replica's target subset.
    batch : int
        Examples per replica, B.
    dtype : {float32, float64}

    Returns
    -------
    x : ndarray, shape (R, B, d), dtype
    y : ndarray, shape (R, B, 1), dtype

    Raises
    ------
    TypeError, ValueError
        If ``batch`` is not a positive integer or ``dtype`` is not a float dtype.
    """
    R, d = subsets.shape
    batch = positive_int(batch, "batch")
    dtype = as_dtype(dtype)
    n = R * batch * d
    raw = np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8)
    bits = np.unpackbits(raw, count=n).reshape(R, batch, d)
    x = (1 - 2 * bits.astype(np.int8)).astype(dtype)
    y = parity_labels(bits, subsets).astype(dtype)[..., None]
    return x, y
