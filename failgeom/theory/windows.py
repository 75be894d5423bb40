"""The convolutional formulation of Sec. 4.1.2-4.1.3 and its conditioning (Appendix A.6).

A 3-tap filter regresses on the windows ``(f[t-1], f[t], f[t+1])`` of a curve; ``F`` stacks
them as rows. Appendix A.6: the condition number of ``C = E[F^T F]`` grows like n^3, while
regressing on ``F C^{-1/2}`` has condition number 1 (Sec. 4.1.3). The condition numbers of the
Sec. 4 learners' Hessians, plain and after the best diagonal rescaling (the talk's point about
Adam), are computed here too.

Boundary convention (it matters): ``padding="valid"`` keeps the ``n - 2`` windows that lie inside
the curve (``t = 1..n-2``); these are the original code's rows (it predicts ``p[t + 1]`` from the
window centred at t and pads the prediction with two zeros in front), and the experiments use
them. ``padding="zero"`` keeps all ``n`` windows with ``f[-1] = f[n] = 0`` (TensorFlow's
``'SAME'``). The left zero is exact (the curve vanishes left of its first kink), but ``f[n] = 0``
is not, and that last window alone makes the second-difference direction carry energy of order
``n^2``: with zero padding the condition number grows only like ``n^2``.
"""

from __future__ import annotations

import numpy as np

from ..validation import choice, positive_int, real_array

PADDINGS = ("valid", "zero")
DISTRIBUTIONS = ("paper", "pm1")


def window_matrix(f, padding: str = "valid") -> np.ndarray:
    """Stack the windows ``(f[t-1], f[t], f[t+1])`` of curves as rows (Sec. 4.1.2).

    Parameters
    ----------
    f : array_like, shape (..., n)
        Curves sampled at ``x = 0..n-1``.
    padding : {"valid", "zero"}
        ``"valid"``: rows ``t = 1..n-2`` (requires n >= 3). ``"zero"``: rows ``t = 0..n-1`` with
        ``f[-1] = f[n] = 0``.

    Returns
    -------
    ndarray, shape (..., n - 2, 3) or (..., n, 3)

    Raises
    ------
    ValueError
        If ``f`` is a scalar, or ``padding="valid"`` with fewer than 3 points.
    """
    f = real_array(f, "f")
    padding = choice(padding, "padding", PADDINGS)
    if f.ndim < 1:
        raise ValueError("f must have at least one axis (the curve), got a scalar")
    n = f.shape[-1]
    if padding == "zero":
        pad = [(0, 0)] * (f.ndim - 1) + [(1, 1)]
        f = np.pad(f, pad)
    elif n < 3:
        raise ValueError(f"f must have at least 3 points for valid windows, got {n}")
    return np.stack([f[..., :-2], f[..., 1:-1], f[..., 2:]], axis=-1)


def _prefix(m: int, delta: int) -> int:
    """``sum_{i<m} G[i, i+delta]`` for ``G = W W^T``, exactly (Python integers).

    ``G[i, i+delta] = sum_{u=1}^{i+1} u (u + delta) = S2(i+1) + delta S1(i+1)``, and summing the
    Faulhaber polynomials over i gives ``m (m+1)^2 (m+2) / 12 + delta m (m+1) (m+2) / 6``.
    """
    if m <= 0:
        return 0
    return m * (m + 1) ** 2 * (m + 2) // 12 + delta * m * (m + 1) * (m + 2) // 6


def window_gram_integer(n: int, padding: str = "valid") -> list[list[int]]:
    """``sum_t G[t+a-1, t+b-1]`` for ``G = W W^T`` over the windows kept: exact integers.

    ``E[F^T F] = lam`` times this when ``E[p p^T] = lam I``.

    Parameters
    ----------
    n : int
        Curve length.
    padding : {"valid", "zero"}
        Which windows are kept, as in :func:`window_matrix`.

    Returns
    -------
    list of 3 lists of 3 int
        The symmetric 3 x 3 matrix, in Python integers (no rounding at any n).

    Raises
    ------
    ValueError
        If ``padding="valid"`` and ``n < 3``.
    """
    n = positive_int(n, "n")
    padding = choice(padding, "padding", PADDINGS)
    t_lo, t_hi = (1, n - 2) if padding == "valid" else (0, n - 1)
    if padding == "valid" and n < 3:
        raise ValueError(f"n must be at least 3 for valid windows, got {n}")
    M = [[0] * 3 for _ in range(3)]
    for a in range(3):
        for b in range(a, 3):
            delta = b - a
            lo = max(t_lo + a - 1, 0)
            hi = min(t_hi + a - 1, n - 1 - delta)
            M[a][b] = M[b][a] = _prefix(hi + 1, delta) - _prefix(lo, delta) if hi >= lo else 0
    return M


def kink_second_moment(n: int, k: int = 3, distribution: str = "paper") -> float:
    """``lam`` with ``E[p p^T] = lam I`` for the paper's curve distribution (Sec. 4.1).

    ``k`` kinks uniform without replacement in ``{0..n-1}`` and iid zero-mean coefficients:
    cross terms vanish, so ``lam = k E[a^2] / n`` with ``E[a^2] = 1/3`` for ``a ~ U[-1, 1]``
    (``"paper"``) and 1 for ``a = +-1`` (``"pm1"``).

    Parameters
    ----------
    n : int
        Curve length.
    k : int
        Number of kinks, at most n.
    distribution : {"paper", "pm1"}
        Law of the kink coefficients.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``k > n``.
    """
    n, k = positive_int(n, "n"), positive_int(k, "k")
    distribution = choice(distribution, "distribution", DISTRIBUTIONS)
    if k > n:
        raise ValueError(f"k must be at most n={n} (kinks without replacement), got {k}")
    second = 1.0 / 3.0 if distribution == "paper" else 1.0
    return k * second / n


def window_covariance(n: int, k: int = 3, distribution: str = "paper", padding: str = "valid") -> np.ndarray:
    """Exact ``C = E[F^T F]`` (3 x 3) for the paper's PWL curve distribution (Appendix A.6).

    ``E[f f^T] = lam W W^T`` (see :func:`kink_second_moment`), so ``C`` is ``lam`` times the
    integer matrix of :func:`window_gram_integer`; no sampling.

    Parameters
    ----------
    n : int
        Curve length.
    k : int
        Number of kinks, at most n.
    distribution : {"paper", "pm1"}
        Law of the kink coefficients (see :func:`kink_second_moment`).
    padding : {"valid", "zero"}
        Which windows are kept, as in :func:`window_matrix`.

    Returns
    -------
    ndarray of shape (3, 3), float64
        Entries are rounded to float64 once; near-singular for large n (use
        :func:`window_condition_number` for the condition number, which is exact).
    """
    lam = kink_second_moment(n, k, distribution)
    return lam * np.array(window_gram_integer(n, padding), dtype=np.float64)


def window_condition_number(n: int, padding: str = "valid") -> float:
    """Condition number of ``C = E[F^T F]`` (Appendix A.6), from exact integers.

    The scale ``lam`` cancels, so the result is the same for every isotropic kink distribution
    (``"paper"``, ``"pm1"``). The 3x3 eigenvalues are computed with mpmath at enough digits to
    survive the ``n^3`` cancellation.

    Parameters
    ----------
    n : int
        Curve length (at least 3 for ``padding="valid"``).
    padding : {"valid", "zero"}
        Which windows are kept, as in :func:`window_matrix`.

    Returns
    -------
    float
    """
    import mpmath

    M = window_gram_integer(n, padding)
    with mpmath.workdps(40 + 2 * len(str(max(max(r) for r in M)))):
        e = mpmath.eigsy(mpmath.matrix(M), eigvals_only=True)
        return float(max(e) / min(e))


def window_covariance_of(second_moment, padding: str = "valid") -> np.ndarray:
    """``C = E[F^T F]`` (3 x 3) of curves with any second moment ``E[f f^T]`` (Appendix A.6).

    ``C[a, b] = sum_t E[f[t+a-1] f[t+b-1]]`` over the windows kept, for distributions that are
    not isotropic in the kinks (the original code's, see
    :func:`failgeom.problems.pwl.code_kink_second_moment`): pass ``W E[p p^T] W^T``.

    Parameters
    ----------
    second_moment : array_like, shape (n, n)
        ``E[f f^T]``, symmetric.
    padding : {"valid", "zero"}
        As in :func:`window_matrix`.

    Returns
    -------
    ndarray of shape (3, 3), float64
    """
    G = real_array(second_moment, "second_moment")
    padding = choice(padding, "padding", PADDINGS)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise ValueError(f"second_moment must be a square (n, n) matrix, got shape {G.shape}")
    n = G.shape[0]
    if padding == "zero":
        G = np.pad(G, 1)
    elif n < 3:
        raise ValueError(f"second_moment must be at least 3 x 3 for valid windows, got {n}")
    rows = G.shape[0] - 2  # windows kept
    C = np.empty((3, 3))
    for a in range(3):
        for b in range(3):
            C[a, b] = np.trace(G[a:a + rows, b:b + rows])
    return C


def empirical_window_covariance(f, padding: str = "valid") -> np.ndarray:
    """``C_hat = mean over curves of F^T F`` (Sec. 4.1.3's estimate).

    Parameters
    ----------
    f : array_like, shape (..., count, n)
        Sampled curves; leading axes (for example replicas) are kept.
    padding : {"valid", "zero"}
        As in :func:`window_matrix`.

    Returns
    -------
    ndarray of shape (..., 3, 3), float64

    Raises
    ------
    ValueError
        If ``f`` has fewer than 2 axes.
    """
    f = real_array(f, "f")
    if f.ndim < 2:
        raise ValueError(f"f must have shape (..., count, n), got {f.shape}")
    F = window_matrix(f, padding)
    return np.einsum("...cta,...ctb->...ab", F, F) / f.shape[-2]


def inverse_sqrt(C) -> np.ndarray:
    """``C^{-1/2}`` of a symmetric positive definite matrix (the Sec. 4.1.3 preconditioner).

    Parameters
    ----------
    C : array_like of shape (d, d)
        Symmetric positive definite (only its lower triangle is read, by ``numpy.linalg.eigh``).

    Returns
    -------
    ndarray of shape (d, d)

    Raises
    ------
    ValueError
        If the smallest eigenvalue of ``C`` is not positive.
    """
    C = real_array(C, "C")
    evals, evecs = np.linalg.eigh(C)
    if evals[0] <= 0:
        raise ValueError(f"C must be positive definite, smallest eigenvalue {evals[0]:.3g}")
    return (evecs / np.sqrt(evals)) @ evecs.T


def preconditioned_condition_number(C_hat, C) -> float:
    """Condition number of ``E[(F C_hat^{-1/2})^T (F C_hat^{-1/2})] = C_hat^{-1/2} C C_hat^{-1/2}``.

    Equals 1 when ``C_hat = C``.

    Parameters
    ----------
    C_hat : array_like of shape (3, 3)
        The estimate used to precondition (Sec. 4.1.3), symmetric positive definite.
    C : array_like of shape (3, 3)
        The covariance the preconditioned regression actually sees (exact, or from fresh curves).

    Returns
    -------
    float
    """
    P = inverse_sqrt(real_array(C_hat, "C_hat"))
    A = P @ real_array(C, "C") @ P
    evals = np.linalg.eigvalsh(0.5 * (A + A.T))
    return float(evals[-1] / evals[0])


def _square(H) -> np.ndarray:
    H = real_array(H, "H")
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix, got shape {H.shape}")
    return H


def spd_condition_number(H, rank: int | None = None) -> float:
    """``lambda_1 / lambda_rank`` of a symmetric positive semi-definite matrix (eigenvalues sorted
    in decreasing order; ``rank=None``: all of them, ``lambda_max / lambda_min``).

    A Hessian that is singular because the data never excite some directions (the original
    code's curves vanish at ``x = 0, 1, 2``, so ``E[f f^T]`` has rank ``n - 6``) is conditioned
    on its range: pass that rank.

    Parameters
    ----------
    H : array_like, shape (d, d)
    rank : int, optional
        Number of leading eigenvalues that span the range, at most d.

    Returns
    -------
    float
    """
    H = _square(H)
    d = H.shape[0]
    rank = d if rank is None else positive_int(rank, "rank")
    if rank > d:
        raise ValueError(f"rank must be at most {d}, got {rank}")
    e = np.linalg.eigvalsh(0.5 * (H + H.T))[::-1]
    if e[rank - 1] <= 0:
        raise ValueError(f"H has a non-positive eigenvalue {e[rank - 1]:.3g} within the first {rank}")
    return float(e[0] / e[rank - 1])


def jacobi_condition_number(H, rank: int | None = None) -> float:
    """Condition number of ``D^{-1/2} H D^{-1/2}``, ``D = diag(H)`` (talk, part 1).

    The geometry after the best diagonal rescaling up to a factor of the dimension (van der
    Sluis): Adam and AdaGrad rescale coordinates only, so this is about the best they can reach.
    Coordinates with ``H_ii = 0`` (never excited) are left out, and ``rank`` is then the rank of
    what remains, as in :func:`spd_condition_number`.

    Parameters and return value as :func:`spd_condition_number`.
    """
    H = _square(H)
    keep = np.diag(H) > 0
    Hk = H[np.ix_(keep, keep)]
    d = 1.0 / np.sqrt(np.diag(Hk))
    if rank is not None:
        rank = min(positive_int(rank, "rank"), int(keep.sum()))
    return spd_condition_number(Hk * d[:, None] * d[None, :], rank)


__all__ = [
    "PADDINGS", "empirical_window_covariance", "inverse_sqrt", "jacobi_condition_number", "kink_second_moment",
    "preconditioned_condition_number", "spd_condition_number", "window_condition_number", "window_covariance",
    "window_covariance_of", "window_gram_integer", "window_matrix",
]
