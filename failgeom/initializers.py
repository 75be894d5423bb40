"""Weight initialisers shared by :mod:`failgeom.nn` and :mod:`failgeom.theory` (NumPy only).

A neutral home below both packages, so that ``nn`` and ``theory`` draw the paper's initial
weights with the same code without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .validation import finite_float

#: truncation point in standard deviations (TensorFlow's ``truncated_normal``)
TRUNCATE_AT = 2.0


def truncated_normal(rng, shape, std: float, dtype=np.float64) -> np.ndarray:
    """Normal(0, std^2) draws, each re-drawn until within 2 std: the original code's initialiser.

    Parameters
    ----------
    rng : numpy.random.Generator or sequence of Generators
        One Generator: an array of ``shape``. A sequence of R Generators (one per replica): an
        array ``(R, *shape)`` whose slice r comes from ``rng[r]`` alone, so a replica's weights
        do not depend on R.
    shape : tuple of int
    std : float
        Standard deviation before truncation (the paper's ``1/sqrt(fan_in)``), finite and >= 0.
    dtype : float dtype
        Of the result; the draws are made in float64 and then cast.

    Returns
    -------
    ndarray ``shape`` or ``(R, *shape)``
    """
    std = finite_float(std, "std", 0.0)
    shape = tuple(int(s) for s in shape)
    if isinstance(rng, np.random.Generator):
        return (_standard_truncated(rng, shape) * std).astype(dtype)
    if not isinstance(rng, Sequence) or not all(isinstance(g, np.random.Generator) for g in rng):
        raise TypeError(f"rng must be a numpy Generator or a sequence of Generators, got {type(rng).__name__}")
    out = np.empty((len(rng),) + shape, dtype=np.float64)
    for r, g in enumerate(rng):  # init only: one draw per replica stream
        out[r] = _standard_truncated(g, shape)
    return (out * std).astype(dtype)


def _standard_truncated(rng: np.random.Generator, shape) -> np.ndarray:
    z = rng.standard_normal(shape)
    bad = np.abs(z) > TRUNCATE_AT
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > TRUNCATE_AT
    return z
