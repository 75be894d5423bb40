"""Decomposition vs end-to-end on the "stocks" problem (paper Sec. 3.2-3.3).

Model ``N_w(x) = softmax(x W + b)`` with one-hot ``x = e_a``, ``a`` uniform in ``[d]``, fixed
labels ``y(a)`` in ``[k]``; given x, ``z`` in {+-1}^k has ``z_y = 1`` and the other coordinates
iid uniform. With ``G_i = grad_w N_w(x)_i``, the end-to-end estimator ``-z^T grad N`` has second
moment ``E sum_i ||G_i||^2`` (cross terms cancel since ``E z_i z_j = 0`` unless ``i = j`` or both
equal y), the decomposition estimator ``-grad N_y`` has ``E ||G_y||^2``; both are unbiased for
``grad L = -E G_y``. Near initialization the ratio is about k (exactly k at ``W = 0, b = 0``).
Ghadimi-Lan: SGD needs order ``nu^2 / eps^2`` iterations, ``nu^2 = E||g||^2 - ||grad L||^2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import finite_float, fits_in_memory, generator, positive_float, positive_int, real_array


@dataclass(frozen=True)
class StocksMoments:
    """Exact second moments of the two gradient estimators at given weights (Sec. 3.3).

    Attributes
    ----------
    end_to_end : float
        ``E||g||^2`` of the end-to-end estimator ``-z^T grad N``.
    decomposition : float
        ``E||g||^2`` of the decomposition estimator ``-grad N_y``.
    grad_norm_sq : float
        ``||grad L||^2``, the squared norm of the mean both estimate.
    """

    end_to_end: float
    decomposition: float
    grad_norm_sq: float

    @property
    def ratio(self) -> float:
        """``E||g_e2e||^2 / E||g_dec||^2`` (about k near initialization)."""
        return self.end_to_end / self.decomposition

    @property
    def nu2_end_to_end(self) -> float:
        """Ghadimi-Lan's ``nu^2 = E||g||^2 - ||grad L||^2`` for the end-to-end estimator."""
        return self.end_to_end - self.grad_norm_sq

    @property
    def nu2_decomposition(self) -> float:
        """Ghadimi-Lan's ``nu^2`` for the decomposition estimator."""
        return self.decomposition - self.grad_norm_sq


def _check(W, b, labels):
    W = real_array(W, "W")
    if W.ndim != 2:
        raise ValueError(f"W must have shape (d, k), got {W.shape}")
    d, k = W.shape
    if b is not None:
        b = real_array(b, "b")
        if b.shape != (k,):
            raise ValueError(f"b must have shape ({k},) or be None, got {b.shape}")
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be {d} integers (one per input), got dtype {labels.dtype}")
    if labels.shape != (d,):
        raise ValueError(f"labels must be {d} integers (one per input), got shape {labels.shape}")
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must lie in 0..{k - 1}")
    return W, b, labels


def _softmax_jacobians(W, b):
    """``N`` (d, k) and, per input, ``J[a, i, j] = d N_i / d logit_j = N_i (delta_ij - N_j)``."""
    logits = W if b is None else W + b
    z = logits - logits.max(axis=1, keepdims=True)
    N = np.exp(z)
    N /= N.sum(axis=1, keepdims=True)
    return N


def stocks_second_moments(W, b, labels) -> StocksMoments:
    """Exact ``E||g||^2`` of both estimators and ``||grad L||^2`` (expectation over x and z).

    ``G_i(a)`` is nonzero only in row a of W (and in b), where it equals
    ``J_i = N_i (e_i - N)``; so ``||G_i||^2 = c N_i^2 ||e_i - N||^2`` with ``c = 2`` with a bias,
    1 without.

    Parameters
    ----------
    W : array_like (d, k)
    b : array_like (k,) or None
    labels : int array (d,)
        ``y(a)`` for each one-hot input a.

    Returns
    -------
    StocksMoments

    Raises
    ------
    TypeError
        If ``labels`` are not integers.
    ValueError
        If the shapes do not fit or a label is outside ``0..k-1``.
    """
    W, b, labels = _check(W, b, labels)
    d, k = W.shape
    N = _softmax_jacobians(W, b)
    c = 1.0 if b is None else 2.0
    norm_sq = np.sum(N * N, axis=1, keepdims=True)  # ||N||^2 per input
    gi_sq = N**2 * (1.0 - 2.0 * N + norm_sq)  # ||e_i - N||^2 = 1 - 2 N_i + ||N||^2
    e2e = c * float(gi_sq.sum(axis=1).mean())
    rows = np.arange(d)
    dec = c * float(gi_sq[rows, labels].mean())
    Ny = N[rows, labels]
    J_y = Ny[:, None] * ((np.arange(k)[None, :] == labels[:, None]) - N)  # (d, k)
    grad_sq = float(np.sum(J_y**2)) / d**2
    if b is not None:
        grad_sq += float(np.sum(J_y.mean(axis=0) ** 2))
    return StocksMoments(end_to_end=e2e, decomposition=dec, grad_norm_sq=grad_sq)


def stocks_gradient_norms(W, b, labels, rng, samples: int, estimator: str = "end_to_end") -> np.ndarray:
    """``||g||^2`` of sampled per-example gradients (the Monte Carlo side of the exact moments).

    Parameters
    ----------
    W : array_like (d, k)
        Weights of the softmax model.
    b : array_like (k,) or None
        Bias, or None for a model without one.
    labels : int array (d,)
        ``y(a)`` for each one-hot input a, in ``0..k-1``.
    rng : Generator, SeedSequence or seed
        Source of the inputs a and the signs z.
    samples : int
        Number of per-example gradients.
    estimator : {"end_to_end", "decomposition"}
        ``-z^T grad N`` or ``-grad N_y``.

    Returns
    -------
    ndarray (samples,)
        Their mean estimates the matching field of :func:`stocks_second_moments`.

    Raises
    ------
    TypeError
        If ``labels`` are not integers.
    ValueError
        If ``estimator`` is unknown or the shapes or labels do not fit ``W``.
    """
    W, b, labels = _check(W, b, labels)
    rng = generator(rng)
    samples = positive_int(samples, "samples")
    if estimator not in ("end_to_end", "decomposition"):
        raise ValueError(f"estimator must be 'end_to_end' or 'decomposition', got {estimator!r}")
    d, k = W.shape
    fits_in_memory(8 * samples * (6 * k + 2), f"samples = {samples} (samples x {k} softmax outputs and signs)",
                   "choose fewer samples")
    a = rng.integers(0, d, size=samples)
    N = _softmax_jacobians(W, b)[a]
    y = labels[a]
    onehot_y = np.arange(k)[None, :] == y[:, None]
    if estimator == "end_to_end":
        z = np.where(onehot_y, 1.0, 2.0 * rng.integers(0, 2, size=(samples, k)) - 1.0)
    else:
        z = onehot_y.astype(np.float64)
    # g_logits = -J^T z with J = diag(N) - N N^T (symmetric): -(N * z - N (N . z))
    g = -(N * z - N * np.sum(N * z, axis=1, keepdims=True))
    c = 1.0 if b is None else 2.0
    return c * np.sum(g * g, axis=1)


def ghadimi_lan_iterations(nu2: float, eps: float) -> float:
    """Order of SGD iterations by Ghadimi-Lan for stochastic-gradient noise ``nu^2``: ``nu^2 / eps^2``.

    Parameters
    ----------
    nu2 : float
        ``nu^2 = E||g||^2 - ||grad L||^2``, >= 0 (e.g. :attr:`StocksMoments.nu2_end_to_end`).
    eps : float
        Target accuracy.

    Returns
    -------
    float
    """
    nu2, eps = finite_float(nu2, "nu2", low=0), positive_float(eps, "eps")
    return nu2 / eps**2
