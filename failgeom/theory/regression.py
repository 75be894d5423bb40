"""Gradient descent on linear regression and the condition number (paper Appendix A.5).

Realizable regression ``min_w 0.5 E (w^T x - w*^T x)^2`` with ``C = E[x x^T] = V D V^T``
(``D_11 >= ... >= D_nn > 0``), GD from ``w_0 = 0``: ``w* - w_{t+1} = (I - eta C)^{t+1} w*``, so

    ||w* - w_{t+1}||^2 = sum_j ((1 - eta D_jj)^{t+1} v*_j)^2,   v* = V^T w*.

Upper bound: with ``eta = 1/D_11``, ``t + 1 >= (D_11/D_nn) log(||w*|| / eps)`` gives error at
most eps. Lower bound: if ``v*_n = 1``, ``eta <= 1/D_11`` and ``t + 1 < 0.5 D_11/D_nn`` then
``||w* - w_{t+1}|| >= 0.5``, because ``(1 - eta D_nn)^{t+1} >= 1 - (t+1) D_nn / D_11``. The
printed paper has the ratio upside down (``0.5 D_nn / D_11``, which is below 1 and so never
satisfied by any t >= 0).
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import fits_in_memory, positive_float, real_array, step_count


def _spd(C) -> np.ndarray:
    """``C`` as a float64 symmetric matrix; ValueError unless it is square and symmetric.

    Symmetry is judged against the size of the matrix, not entry by entry: a product such as
    ``(Q * D) @ Q.T`` is symmetric only up to rounding, and its near-zero entries differ from
    their transposes by about ``n eps max|C|`` (e.g. 7e-17), which an entrywise relative test
    with no absolute part rejects. The returned matrix is the symmetric part ``(C + C^T)/2``.
    """
    C = real_array(C, "C")
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"C must be a square matrix, got shape {C.shape}")
    scale = float(np.max(np.abs(C))) if C.size else 0.0
    asym = float(np.max(np.abs(C - C.T))) if C.size else 0.0
    if not np.isfinite(scale) or asym > 1e-10 * scale:
        raise ValueError(f"C must be symmetric (finite, max |C - C^T| <= 1e-10 max |C|), "
                         f"got max |C - C^T| = {asym:.3g} with max |C| = {scale:.3g}")
    return 0.5 * (C + C.T)


def gd_regression_errors(C, w_star, eta: float, t: int) -> np.ndarray:
    """``||w* - w_s||^2`` for ``s = 0..t`` by running gradient descent step by step (Appendix A.5).

    The step is ``w <- w - eta C (w - w*)``, the exact gradient of ``0.5 E (w^T x - w*^T x)^2``,
    from ``w_0 = 0``.

    Parameters
    ----------
    C : array_like of shape (n, n)
        ``E[x x^T]``, symmetric (up to rounding).
    w_star : array_like of shape (n,)
        The target ``w*``.
    eta : float
        Step size.
    t : int
        Number of steps.

    Returns
    -------
    ndarray of shape (t + 1,)

    Raises
    ------
    ValueError
        If ``C`` is not square and symmetric, or ``w_star`` does not match it.
    """
    C = _spd(C)
    w_star = real_array(w_star, "w_star")
    if w_star.shape != (C.shape[0],):
        raise ValueError(f"w_star must have shape ({C.shape[0]},), got {w_star.shape}")
    eta, t = positive_float(eta, "eta"), step_count(t, "t")
    fits_in_memory(8 * (t + 1), f"t = {t} (t + 1 errors)", "choose a smaller t")
    w = np.zeros_like(w_star)
    out = np.empty(t + 1)
    for s in range(t + 1):
        diff = w_star - w
        out[s] = diff @ diff
        w = w - eta * (C @ (w - w_star))
    return out


def gd_regression_error_formula(D, v_star, eta: float, t) -> np.ndarray:
    """Appendix A.5's closed form ``sum_j ((1 - eta D_jj)^t v*_j)^2`` for each t in ``t``.

    Parameters
    ----------
    D : array_like of shape (n,)
        Eigenvalues of ``C = V D V^T``.
    v_star : array_like of shape (n,)
        ``V^T w*``, the target in the eigenbasis.
    eta : float
        Step size.
    t : int or array_like of int
        Step counts (non-negative).

    Returns
    -------
    ndarray of shape (len(t),)
        ``||w* - w_t||^2`` for each t (shape (1,) for a scalar ``t``).

    Raises
    ------
    TypeError
        If ``t`` is not numeric.
    ValueError
        If ``D`` and ``v_star`` are not 1-D of one length, or ``t`` is bool, NaN or negative.
    """
    D = real_array(D, "D")
    v_star = real_array(v_star, "v_star")
    if D.shape != v_star.shape or D.ndim != 1:
        raise ValueError(f"D and v_star must be 1-D of the same length, got {D.shape}, {v_star.shape}")
    eta = positive_float(eta, "eta")
    try:
        ts = np.atleast_1d(np.asarray(t, dtype=np.float64))
    except (TypeError, ValueError):
        raise TypeError(f"t must be a number of steps >= 0 or an array of them, got {t!r}") from None
    if np.asarray(t).dtype == bool or np.any(np.isnan(ts)) or np.any(ts < 0):
        raise ValueError(f"t must be a number of steps >= 0 or an array of them (not bool, not NaN), got {t!r}")
    factors = (1.0 - eta * D)[None, :] ** ts[:, None]
    return np.sum((factors * v_star[None, :]) ** 2, axis=1)


def gd_iterations_sufficient(D11: float, Dnn: float, w_norm: float, eps: float) -> float:
    """A.5's upper bound: ``t + 1 >= (D_11 / D_nn) log(||w*|| / eps)`` suffices (``eta = 1/D_11``).

    Parameters
    ----------
    D11, Dnn : float
        Largest and smallest eigenvalues of ``C = E[x x^T]``.
    w_norm : float
        ``||w*||``.
    eps : float
        Target error ``||w* - w_{t+1}||``.

    Returns
    -------
    float
        The sufficient ``t + 1`` (0 if ``||w*|| <= eps``).
    """
    D11, Dnn = positive_float(D11, "D11"), positive_float(Dnn, "Dnn")
    w_norm, eps = positive_float(w_norm, "w_norm"), positive_float(eps, "eps")
    return (D11 / Dnn) * max(math.log(w_norm / eps), 0.0)


def gd_iterations_lower_bound(D11: float, Dnn: float) -> float:
    """A.5's lower bound (corrected): while ``t + 1 < 0.5 D_11 / D_nn`` the error is >= 0.5.

    Parameters
    ----------
    D11, Dnn : float
        Largest and smallest eigenvalues of ``C = E[x x^T]``.

    Returns
    -------
    float
    """
    return 0.5 * positive_float(D11, "D11") / positive_float(Dnn, "Dnn")


def printed_lower_bound(D11: float, Dnn: float) -> float:
    """The lower bound as printed, ``0.5 D_nn / D_11`` (<= 0.5: vacuous, see module docstring).

    Parameters
    ----------
    D11, Dnn : float
        Largest and smallest eigenvalues of ``C = E[x x^T]``.

    Returns
    -------
    float
    """
    return 0.5 * positive_float(Dnn, "Dnn") / positive_float(D11, "D11")
