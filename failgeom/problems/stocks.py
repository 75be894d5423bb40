"""The "stocks" problem (paper Sec. 3.2): one-hot inputs, a fixed label map, random gains.

``x = e_a`` with ``a`` uniform in ``[d]``; each input has a fixed label ``y(a)`` uniform in
``[k]`` (the best stock for that input). Given x, the gain vector ``z`` in {+-1}^k has
``z_y = 1`` and every other coordinate iid uniform +-1, so ``E[z | x] = e_y``: the end-to-end
estimator (gains ``z``) and the decomposition estimator (gains ``e_y``) have the same mean.

Inputs are returned as indices ``a`` rather than one-hot vectors: the model's first layer
gathers row ``a`` of its weight matrix, which is exactly ``e_a^T W``.
"""

from __future__ import annotations

import numpy as np

from ..nn.utils import as_dtype
from ..validation import positive_int

ESTIMATORS = ("end_to_end", "decomposition")


def random_label_maps(rngs, d: int, k: int) -> np.ndarray:
    """One label map ``y(a)``, ``a`` in ``[d]``, per replica generator: int array ``(R, d)``.

    Each ``y(a)`` is uniform in ``0..k-1``, independently (paper Sec. 3.2).

    Parameters
    ----------
    rngs : sequence of R Generators
        Replica r's map is drawn from ``rngs[r]`` alone.
    d, k : int
        Number of inputs and of labels (stocks).

    Returns
    -------
    int64 ndarray, shape (R, d)

    Raises
    ------
    TypeError
        If ``rngs`` is not a non-empty sequence of Generators (TypeError or ValueError also if
        ``d`` or ``k`` is not a positive integer).
    """
    d = positive_int(d, "d")
    k = positive_int(k, "k")
    if len(rngs) == 0 or not all(isinstance(g, np.random.Generator) for g in rngs):
        raise TypeError("rngs must be a non-empty sequence of numpy Generators (one per replica)")
    # set-up only: one draw per replica stream, so replica r's map does not depend on R
    return np.stack([g.integers(0, k, size=d) for g in rngs]).astype(np.int64)


def sample_inputs(rng: np.random.Generator, R: int, batch: int, d: int) -> np.ndarray:
    """Input indices ``a`` uniform in ``[d]``, shape ``(R, batch)`` (x = e_a).

    Parameters
    ----------
    rng : numpy.random.Generator
    R, batch, d : int
        Replicas, examples per replica and number of inputs.

    Returns
    -------
    int ndarray, shape (R, batch)

    Raises
    ------
    TypeError, ValueError
        If ``R``, ``batch`` or ``d`` is not a positive integer.
    """
    R = positive_int(R, "R")
    batch = positive_int(batch, "batch")
    d = positive_int(d, "d")
    return rng.integers(0, d, size=(R, batch))


def labels_of(labels: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``y(a)`` per replica: ``labels`` ``(R, d)``, ``a`` ``(R, B)`` -> ``(R, B)``.

    Parameters
    ----------
    labels : int array_like, shape (R, d)
        Each replica's label map.
    a : int array_like, shape (R, B)
        Input indices.

    Returns
    -------
    int ndarray, shape (R, B)

    Raises
    ------
    ValueError
        If the shapes are not ``(R, d)`` and ``(R, B)`` with the same R.
    """
    labels = np.asarray(labels)
    a = np.asarray(a)
    if labels.ndim != 2 or a.ndim != 2 or a.shape[0] != labels.shape[0]:
        raise ValueError(f"labels must be (R, d) and a (R, B) with the same R, got {labels.shape} and {a.shape}")
    return np.take_along_axis(labels, a, axis=1)


def random_gains(rng: np.random.Generator, y: np.ndarray, k: int, dtype=np.float32) -> np.ndarray:
    """End-to-end gains: ``z`` ``(R, B, k)`` in {+-1} with ``z_y = 1``, the rest iid uniform +-1.

    Drawn from random bytes (one bit per coordinate), several times faster than drawing floats.

    Parameters
    ----------
    rng : numpy.random.Generator
    y : int array_like, shape (R, B)
        Labels in ``0..k-1``.
    k : int
        Number of stocks.
    dtype : {float32, float64}

    Returns
    -------
    ndarray, shape (R, B, k), dtype

    Raises
    ------
    ValueError
        If ``y`` is not an integer ``(R, B)`` array (TypeError or ValueError also for a bad
        ``k`` or ``dtype``).
    """
    y = np.asarray(y)
    k = positive_int(k, "k")
    dtype = as_dtype(dtype)
    if y.ndim != 2 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be an integer array (R, B), got shape {y.shape} and dtype {y.dtype}")
    n = y.size * k
    bits = np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8), count=n)
    z = (1 - 2 * bits.astype(np.int8)).astype(dtype).reshape(y.shape + (k,))
    np.put_along_axis(z, y[..., None], 1, axis=-1)
    return z


def label_gains(y: np.ndarray, k: int, dtype=np.float32) -> np.ndarray:
    """Decomposition gains: ``e_y`` ``(R, B, k)``, the conditional mean of :func:`random_gains`.

    Parameters
    ----------
    y : int array_like, shape (R, B)
        Labels in ``0..k-1``.
    k : int
        Number of stocks.
    dtype : {float32, float64}

    Returns
    -------
    ndarray, shape (R, B, k), dtype

    Raises
    ------
    ValueError
        If ``y`` is not an integer ``(R, B)`` array (TypeError or ValueError also for a bad
        ``k`` or ``dtype``).
    """
    y = np.asarray(y)
    k = positive_int(k, "k")
    if y.ndim != 2 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be an integer array (R, B), got shape {y.shape} and dtype {y.dtype}")
    return (np.arange(k) == y[..., None]).astype(as_dtype(dtype))


def sample_stocks(rng: np.random.Generator, labels: np.ndarray, k: int, batch: int,
                  estimator: str = "end_to_end", dtype=np.float32):
    """A fresh minibatch per replica: indices ``a`` ``(R, B)``, labels ``y`` ``(R, B)`` and gains.

    ``estimator="end_to_end"`` gives the random gains ``z``; ``"decomposition"`` gives ``e_y``.

    Parameters
    ----------
    rng : numpy.random.Generator
    labels : int array_like, shape (R, d)
        Each replica's label map (:func:`random_label_maps`).
    k : int
        Number of stocks.
    batch : int
        Examples per replica, B.
    estimator : {"end_to_end", "decomposition"}
    dtype : {float32, float64}

    Returns
    -------
    a : int ndarray, shape (R, B)
    y : int ndarray, shape (R, B)
    gains : ndarray, shape (R, B, k), dtype

    Raises
    ------
    ValueError
        If ``estimator`` is unknown or ``labels`` is not 2-D (TypeError or ValueError also for a
        bad ``k``, ``batch`` or ``dtype``).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must have shape (R, d), got {labels.shape}")
    R, d = labels.shape
    a = sample_inputs(rng, R, batch, d)
    y = labels_of(labels, a)
    gains = random_gains(rng, y, k, dtype) if estimator == "end_to_end" else label_gains(y, k, dtype)
    return a, y, gains
