"""Piecewise-linear curves (paper Sec. 4.1, Lemma 1, Lemma 2, Theorem 3).

A curve ``f(x) = sum_r a_r [x - theta_r]_+`` sampled at ``x = 0..n-1`` is ``f = W p`` with the
sparse kink vector ``p`` (``a_r`` at index ``theta_r``) and ``W[i, j] = [i - j + 1]_+``, the
lower-triangular Toeplitz matrix with first column ``1, 2, 3, ...``. Products with ``W`` are two
cumulative sums; ``W^{-1} = U`` is the second-difference filter ``(1, -2, 1)`` (Lemma 1). Both
facts make the extreme singular values of ``W`` computable in O(n) per iteration, which is what
:func:`condition_number` does for large ``n``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.linalg import cho_solve_banded, cholesky_banded

from ..validation import (
    choice, finite_float, fits_in_memory, integer, nonnegative_int, positive_float, positive_int, real_array,
    step_count,
)

METHODS = ("auto", "structured", "dense", "mpmath")

#: Largest n for which ``method="auto"`` uses the dense SVD (beyond it: "structured").
AUTO_DENSE_MAX = 400

#: Most decimal digits ``method="mpmath"`` accepts (float64 needs 17; the default is ~30-50).
MAX_DPS = 10_000


def _size(n, bytes_per_n2: int, what: str, bytes_per_n: int = 0) -> int:
    """``n`` as a positive int, refused in one line if ``bytes_per_n2 n^2 + bytes_per_n n`` bytes
    (the peak of ``what``) exceed the memory available."""
    n = positive_int(n, "n")
    fits_in_memory(bytes_per_n2 * n * n + bytes_per_n * n, f"n = {n} ({what})", "choose a smaller n")
    return n


# --------------------------------------------------------------------------------------------
# The matrices of Lemma 1


def pwl_matrix(n: int, dtype=np.int64) -> np.ndarray:
    """The PWL encoding matrix ``W[i, j] = [i - j + 1]_+`` (Sec. 4.1), so that ``f = W p``.

    Parameters
    ----------
    n : int
        Number of sample points ``x = 0..n-1``.
    dtype : numpy dtype
        Integer by default, so identities such as ``W @ U == I`` hold exactly.

    Returns
    -------
    ndarray of shape (n, n)
        Lower-triangular Toeplitz with first column ``1, 2, ..., n``.
    """
    n = _size(n, 16 + np.dtype(dtype).itemsize, "W and two int64 temporaries, n x n")
    i = np.arange(n)
    return np.maximum(i[:, None] - i[None, :] + 1, 0).astype(dtype)


def second_difference_filter() -> np.ndarray:
    """The filter ``(1, -2, 1)`` whose convolution is ``W^{-1}`` (Lemma 1)."""
    return np.array([1, -2, 1], dtype=np.int64)


def pwl_inverse(n: int, dtype=np.int64) -> np.ndarray:
    """Lemma 1's inverse ``U = W^{-1}``: ``U[i,i] = U[i+2,i] = 1``, ``U[i+1,i] = -2``.

    Parameters
    ----------
    n : int
        Matrix size.
    dtype : numpy dtype
        Integer by default (the inverse is an integer matrix).

    Returns
    -------
    ndarray of shape (n, n)
        The banded lower-triangular second-difference matrix.
    """
    n = _size(n, np.dtype(dtype).itemsize, "U, n x n")
    U = np.zeros((n, n), dtype=dtype)
    for offset, coef in enumerate(second_difference_filter()):
        idx = np.arange(n - offset)
        U[idx + offset, idx] = coef
    return U


def symbolic_pwl_inverse(n: int):
    """``W^{-1}`` computed by sympy in exact rational arithmetic (Lemma 1's ground truth).

    Parameters
    ----------
    n : int
        Matrix size (sympy's exact inversion is slow beyond a few dozen).

    Returns
    -------
    sympy.Matrix of shape (n, n)
    """
    import sympy
    from sympy.polys.matrices import DomainMatrix

    n = _size(n, 256, "n^2 sympy rationals")
    W = sympy.Matrix(n, n, lambda i, j: max(i - j + 1, 0))
    # Exact inversion over the rationals QQ (sympy's DomainMatrix: fast, no floating point).
    return DomainMatrix.from_Matrix(W).convert_to(sympy.QQ).inv().to_Matrix()


def lemma1_holds(n: int) -> bool:
    """Whether the exact symbolic inverse of ``W`` equals Lemma 1's banded ``U`` entry by entry.

    Parameters
    ----------
    n : int
        Matrix size (exact sympy inversion: a few dozen at most in practice).

    Returns
    -------
    bool
    """
    import sympy

    return symbolic_pwl_inverse(n) == sympy.Matrix(pwl_inverse(n).tolist())


def pwl_apply(p: np.ndarray) -> np.ndarray:
    """``W p`` along the last axis: two cumulative sums, O(n) (Sec. 4.1).

    Parameters
    ----------
    p : array_like of shape (..., n)
        Kink vectors (``a_r`` at index ``theta_r``); leading axes are batch axes.

    Returns
    -------
    ndarray of shape (..., n)
        The curves ``f = W p`` sampled at ``x = 0..n-1``.
    """
    p = real_array(p, "p", finite=False, dtype=None)
    return np.cumsum(np.cumsum(p, axis=-1), axis=-1)


def pwl_apply_transpose(q: np.ndarray) -> np.ndarray:
    """``W^T q`` along the last axis: two reversed cumulative sums, O(n).

    Parameters
    ----------
    q : array_like of shape (..., n)
        Vectors to multiply; leading axes are batch axes.

    Returns
    -------
    ndarray of shape (..., n)
    """
    q = real_array(q, "q", finite=False, dtype=None)[..., ::-1]
    return np.cumsum(np.cumsum(q, axis=-1), axis=-1)[..., ::-1]


def pwl_inverse_apply(f: np.ndarray) -> np.ndarray:
    """``U f = W^{-1} f`` along the last axis: ``f[i] - 2 f[i-1] + f[i-2]`` with zeros before 0.

    Parameters
    ----------
    f : array_like of shape (..., n)
        Sampled curves; leading axes are batch axes.

    Returns
    -------
    ndarray of shape (..., n)
        Their kink vectors ``p`` (Lemma 1).
    """
    f = real_array(f, "f", finite=False, dtype=None)
    out = f.copy()
    out[..., 1:] -= 2 * f[..., :-1]
    out[..., 2:] += f[..., :-2]
    return out


# --------------------------------------------------------------------------------------------
# Condition number of W^T W (Theorem 3)


def pwl_singular_values(n: int) -> np.ndarray:
    """Singular values of ``W`` from numpy's SVD of ``W`` itself, not ``W^T W``.

    Parameters
    ----------
    n : int
        Matrix size (a dense SVD: n up to a few thousand).

    Returns
    -------
    ndarray of shape (n,)
        ``S11 >= ... >= Snn``, descending.
    """
    n = _size(n, 24, "a dense SVD of the n x n W")
    return np.linalg.svd(pwl_matrix(n, np.float64), compute_uv=False)


def _gram_band_inverse(n: int) -> np.ndarray:
    """``U^T U`` in LAPACK upper banded storage ``ab[2 + i - j, j] = (U^T U)[i, j]``."""
    j = np.arange(n)
    ab = np.zeros((3, n))
    # (U^T U)[j, j+m] = sum_i U[i, j] U[i, j+m]; U's column j holds 1, -2, 1 at rows j, j+1, j+2.
    ab[2] = 1.0 + 4.0 * (j + 1 <= n - 1) + 1.0 * (j + 2 <= n - 1)
    ab[1, 1:] = -2.0 * (j[:-1] + 1 <= n - 1) - 2.0 * (j[:-1] + 2 <= n - 1)
    ab[0, 2:] = 1.0
    return ab


def _banded_matvec(ab: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Symmetric banded (bandwidth 2, upper storage) matrix times vector."""
    y = ab[2] * x
    y[:-1] += ab[1, 1:] * x[1:]
    y[1:] += ab[1, 1:] * x[:-1]
    y[:-2] += ab[0, 2:] * x[2:]
    y[2:] += ab[0, 2:] * x[:-2]
    return y


class ConvergenceWarning(RuntimeWarning):
    """An iterative eigenvalue computation stopped before reaching its tolerance."""


def _top_eig_wtw(n: int, rtol: float, max_iter: int) -> tuple[float, bool]:
    """``lambda_max(W^T W)`` by power iteration with O(n) cumulative-sum products.

    The top singular value of W is well separated (``s1/s2 ~ 6.3``), so the Rayleigh quotient
    gains a factor ~40 per step. The start vector is positive, and by Perron-Frobenius (``W^T W``
    is entrywise positive) so is the top eigenvector: the overlap is never zero.
    """
    x = np.ones(n) / math.sqrt(n)
    theta_old = 0.0
    for _ in range(max_iter):
        y = pwl_apply_transpose(pwl_apply(x))
        theta = float(x @ y)
        x = y / np.linalg.norm(y)
        if abs(theta - theta_old) <= rtol * theta:
            return theta, True
        theta_old = theta
    return theta, False


def _top_eig_utu(n: int, rtol: float, max_iter: int) -> tuple[float, bool]:
    """``lambda_max(U^T U) = ||U||^2`` by inverse iteration on ``B = 16 I - U^T U``.

    ``||U|| <= ||first difference||^2 < 4``, so B is positive definite and its smallest eigenvalue
    ``16 - lambda_max`` is well separated from the next (ratio about 4, Toeplitz symbol
    ``16 sin^4(theta/2)`` near ``theta = pi``): inverse iteration with a banded Cholesky factor,
    O(n) per step, converges in a few dozen steps at any n. The start vector alternates in sign;
    conjugating U^T U by ``diag((-1)^i)`` makes it entrywise non-negative, so by Perron-Frobenius
    the top eigenvector has the same sign pattern and the overlap is never zero.
    """
    ab = -_gram_band_inverse(n)
    ab[2] += 16.0
    chol = cholesky_banded(ab, lower=False)
    x = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) / math.sqrt(n)
    lam_old = 0.0
    for _ in range(max_iter):
        y = cho_solve_banded((chol, False), x)
        x = y / np.linalg.norm(y)
        mu = float(x @ _banded_matvec(ab, x))  # Rayleigh quotient of B
        lam = 16.0 - mu
        if abs(lam - lam_old) <= rtol * lam:
            return lam, True
        lam_old = lam
    return lam, False


def pwl_extreme_eigenvalues(n: int, *, rtol: float = 1e-13, max_iter: int = 500):
    """``(lambda_max(W^T W), lambda_min(W^T W))`` matrix-free, O(n) memory and time per step.

    ``lambda_max`` comes from power iteration on ``W^T W`` (products are cumulative sums);
    ``lambda_min = 1 / ||U||^2`` with Lemma 1's banded ``U = W^{-1}``, ``||U||^2`` from inverse
    iteration with a banded Cholesky factor of ``16 I - U^T U``.

    Parameters
    ----------
    n : int
        Matrix size.
    rtol : float
        Stop when successive eigenvalue estimates differ by at most ``rtol`` relative, in (0, 1).
    max_iter : int
        Iteration cap per eigenvalue; a :class:`ConvergenceWarning` is issued if it is reached.

    Returns
    -------
    (float, float)
    """
    n = _size(n, 0, "about 16 vectors of n floats", bytes_per_n=128)
    rtol = finite_float(rtol, "rtol", 0, 1, low_open=True, high_open=True)
    max_iter = positive_int(max_iter, "max_iter")
    lam_max, ok_max = _top_eig_wtw(n, rtol, max_iter)
    u_norm2, ok_min = _top_eig_utu(n, rtol, max_iter)
    if not (ok_max and ok_min):
        warnings.warn(
            f"structured eigenvalues for n={n} did not reach rtol={rtol} in {max_iter} iterations",
            ConvergenceWarning,
            stacklevel=2,
        )
    return lam_max, 1.0 / u_norm2


def _condition_mpmath(n: int, dps: int | None) -> float:
    import mpmath

    W = pwl_matrix(n).tolist()
    U = pwl_inverse(n).tolist()
    # cond <= ~2 n^4: relative accuracy 1e-20 needs about 20 + 4 log10(n) digits.
    digits = dps if dps is not None else 30 + int(4 * math.log10(n + 1))
    with mpmath.workdps(digits):
        Wm, Um = mpmath.matrix(W), mpmath.matrix(U)
        top_w = max(mpmath.eigsy(Wm.T * Wm, eigvals_only=True))
        top_u = max(mpmath.eigsy(Um.T * Um, eigvals_only=True))
        return float(top_w * top_u)


def condition_number(n: int, method: str = "auto", *, rtol: float = 1e-13, dps: int | None = None) -> float:
    """Condition number ``lambda_max(W^T W) / lambda_min(W^T W) = S11^2 / Snn^2`` (Theorem 3).

    The paper proves it is Omega(n^3.5); see ``docs/theory.md`` for the measured growth.

    Parameters
    ----------
    n : int
        Size of the PWL matrix W.
    method : {"auto", "structured", "dense", "mpmath"}
        ``"mpmath"``: high-precision eigenvalues of the integer matrices ``W^T W`` and ``U^T U``
        (ground truth, practical up to n ~ 60). ``"dense"``: numpy SVD of W (n up to a few
        thousand). ``"structured"``: matrix-free, O(n) per iteration (see
        :func:`pwl_extreme_eigenvalues`); n = 10^6 takes about a second. ``"auto"``: dense up to
        ``AUTO_DENSE_MAX``, structured beyond.
    rtol : float
        Convergence tolerance of the structured iterations, in (0, 1).
    dps : int, optional
        Decimal digits for ``"mpmath"``, at most ``MAX_DPS`` (default ``30 + 4 log10(n)``).

    Returns
    -------
    float
    """
    n = positive_int(n, "n")
    method = choice(method, "method", METHODS)
    finite_float(rtol, "rtol", 0, 1, low_open=True, high_open=True)
    if dps is not None:
        integer(dps, "dps", 1, MAX_DPS)
    if method == "auto":
        method = "dense" if n <= AUTO_DENSE_MAX else "structured"
    if method == "dense":
        s = pwl_singular_values(n)
        return float((s[0] / s[-1]) ** 2)
    if method == "mpmath":
        return _condition_mpmath(n, dps)
    lam_max, lam_min = pwl_extreme_eigenvalues(n, rtol=rtol)
    return lam_max / lam_min


# --------------------------------------------------------------------------------------------
# Lemma 2 and Theorem 3: SGD on 0.5 E||U_hat f - p||^2 with E[p p^T] = lambda I


def _finite(n: int, eta: float, lam: float, t: int, *arrays):
    """``arrays`` if all their entries are finite, else the ValueError of a diverging step size:
    above :func:`divergence_threshold` is a valid input, but float64 cannot hold the result."""
    if all(np.all(np.isfinite(a)) for a in arrays):
        return arrays if len(arrays) > 1 else arrays[0]
    x = eta * lam * pwl_extreme_eigenvalues(n)[0]
    raise ValueError(f"eta = {eta:g} with lam = {lam:g} (eta lam S11^2 = {x:.3g}; E U_t diverges above 2) gives "
                     f"values beyond float64 at t = {t}; choose a smaller eta or t (expected_error_norm: exact growth)")


def _svd_w(n: int):
    n = _size(n, 64, "the dense SVD of W with its factors, n x n each")
    Q, s, Vt = np.linalg.svd(pwl_matrix(n, np.float64))
    return Q, s, Vt


def _one_minus_power(x: np.ndarray, t: int) -> np.ndarray:
    """``1 - (1 - x)^t`` without cancellation for small x (log1p/expm1 where 1 - x > 0)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = x < 1.0
    out[small] = -np.expm1(t * np.log1p(-x[small]))
    with np.errstate(over="ignore"):  # |1 - x| > 1 with huge t: the iterate really diverges
        out[~small] = 1.0 - (1.0 - x[~small]) ** t
    return out


def expected_iterate(n: int, eta: float, lam: float, t: int) -> np.ndarray:
    """Lemma 2's ``E U_t = eta lam W^T sum_{i<t} (I - eta lam W W^T)^i`` in stable closed form.

    With ``W = Q S V^T`` and ``x_j = eta lam S_jj^2``, the geometric sum gives
    ``E U_t = V diag((1 - (1 - x_j)^t) / S_jj) Q^T``; ``1 - (1-x)^t`` is evaluated with
    ``expm1``/``log1p``, so tiny ``x`` and huge ``t`` lose no digits.

    Parameters
    ----------
    n : int
        Curve length.
    eta : float
        SGD step size.
    lam : float
        ``E[p p^T] = lam I`` (Lemma 2's assumption ``E[U f f^T U^T] = lam I``).
    t : int
        Number of SGD steps from ``U_0 = 0``.

    Returns
    -------
    ndarray of shape (n, n)

    Raises
    ------
    ValueError
        If a diverging step size takes the iterate beyond float64 (see :func:`divergence_threshold`).
    """
    n = positive_int(n, "n")
    eta, lam = positive_float(eta, "eta"), positive_float(lam, "lam")
    t = nonnegative_int(t, "t")
    Q, s, Vt = _svd_w(n)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging step: refused by _finite
        coef = _one_minus_power(eta * lam * s**2, t) / s
        return _finite(n, eta, lam, t, (Vt.T * coef) @ Q.T)


def expected_iterate_recursion(n: int, eta: float, lam: float, t: int) -> np.ndarray:
    """``E U_t`` by the recursion ``E U_{t+1} = E U_t (I - eta lam W W^T) + eta lam W^T``.

    The expected SGD step (a fresh sample each step, so ``U_t`` is independent of it); a direct
    check of Lemma 2's sum, O(t n^3).

    Parameters
    ----------
    n : int
        Curve length.
    eta : float
        SGD step size.
    lam : float
        ``E[p p^T] = lam I``.
    t : int
        Number of steps from ``U_0 = 0``.

    Returns
    -------
    ndarray of shape (n, n)

    Raises
    ------
    ValueError
        If a diverging step size takes the iterate beyond float64 within ``t`` steps.
    """
    n = _size(n, 56, "W, W W^T, the step and the iterate, n x n each")
    eta, lam = positive_float(eta, "eta"), positive_float(lam, "lam")
    t = step_count(t, "t")
    W = pwl_matrix(n, np.float64)
    step = np.eye(n) - eta * lam * (W @ W.T)
    U = np.zeros((n, n))
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging step: refused by _finite
        for _ in range(t):
            U = U @ step + eta * lam * W.T
    return _finite(n, eta, lam, t, U)


def expected_error_norm(n: int, eta: float, lam: float, t: int) -> float:
    """Spectral norm ``||E U_t - U||`` (Theorem 3), exact: ``max_j |1 - x_j|^t / S_jj``.

    ``E U_t - U = -V diag((1 - x_j)^t / S_jj) Q^T`` with ``x_j = eta lam S_jj^2``; the power is
    taken in log space so ``t`` may be astronomically large.

    Parameters
    ----------
    n : int
        Curve length.
    eta : float
        SGD step size.
    lam : float
        ``E[p p^T] = lam I``.
    t : int
        Number of steps from ``U_0 = 0``.

    Returns
    -------
    float
        ``inf`` if a diverging step size overflows float64.
    """
    n = positive_int(n, "n")
    eta, lam = positive_float(eta, "eta"), positive_float(lam, "lam")
    t = nonnegative_int(t, "t")
    s = pwl_singular_values(n)
    base = np.abs(1.0 - eta * lam * s**2)
    with np.errstate(divide="ignore", over="ignore"):
        logs = t * np.log(base) - np.log(s)
    return float(np.exp(np.max(logs)))


def divergence_threshold(n: int, lam: float) -> float:
    """Step size above which ``E U_t`` diverges: ``eta > 2 / (lam S11^2)`` (from Lemma 2).

    Lemma 2's closed form has the factor ``(1 - eta lam S11^2)^t``, which stays bounded for
    ``eta lam S11^2 <= 2`` and converges (to U) for ``eta lam S11^2 < 2``. Theorem 3 as printed
    says divergence already at ``eta lam S11^2 >= 1``; for ``1 <= eta lam S11^2 < 2`` the
    iterates oscillate but converge. ``1 / (lam S11^2)`` is the largest step without
    oscillation, returned by :func:`paper_step_threshold`.

    Parameters
    ----------
    n : int
        Curve length.
    lam : float
        ``E[p p^T] = lam I``.

    Returns
    -------
    float
    """
    n = positive_int(n, "n")
    lam = positive_float(lam, "lam")
    return 2.0 / (lam * pwl_singular_values(n)[0] ** 2)


def paper_step_threshold(n: int, lam: float) -> float:
    """Theorem 3's printed threshold ``1 / (lam S11^2)`` (the paper: "diverges" for eta above it).

    Parameters
    ----------
    n : int
        Curve length.
    lam : float
        ``E[p p^T] = lam I``.

    Returns
    -------
    float
    """
    n = positive_int(n, "n")
    lam = positive_float(lam, "lam")
    return 1.0 / (lam * pwl_singular_values(n)[0] ** 2)


def iteration_lower_bound(n: int, method: str = "auto") -> float:
    """Theorem 3's bound ``S11^2 / (2 Snn^2)``.

    While ``t + 1`` is at most this, ``||E U_{t+1} - U|| >= 0.5`` for every step size
    ``eta < 1 / (lam S11^2)``.

    Parameters
    ----------
    n : int
        Curve length.
    method : {"auto", "structured", "dense", "mpmath"}
        How the condition number is computed (see :func:`condition_number`).

    Returns
    -------
    float
    """
    return 0.5 * condition_number(n, method)


def sgd_mean_iterate(n: int, eta: float, lam: float, t: int, replicas: int, seed, *, batch: int = 1):
    """Mean and standard error of ``U_t`` over independent SGD runs (Lemma 2's empirical side).

    Each replica trains the linear map ``U_hat`` (init 0) on ``0.5 ||U_hat f - p||^2`` with
    fresh kink vectors ``p`` whose entries are iid ``+-sqrt(lam)`` (so ``E[p p^T] = lam I``) and
    ``f = W p``. All replicas train as one batched computation through ``failgeom.nn``
    (a ``Dense`` layer without bias, the square loss with coefficient 0.5, plain SGD).

    Parameters
    ----------
    n : int
        Curve length.
    eta, lam : float
        Step size and ``E[p p^T] = lam I``.
    t : int
        SGD steps.
    replicas : int
        Independent runs R (the replica axis).
    seed : int or SeedSequence
        Source of all randomness.
    batch : int
        Samples per step (the batch gradient is a mean, so Lemma 2 holds for any batch).

    A step size above :func:`divergence_threshold` is accepted (the runs diverge, as Theorem 3
    says); if ``U_t`` or its spread overflows float64 within the t steps, a ValueError naming eta
    says so instead of returning inf and nan (the same for :func:`expected_iterate`).

    Returns
    -------
    mean : ndarray (n, n)
        Mean of ``U_t`` over replicas (``U_t`` acts as ``p_hat = U_t f``).
    stderr : ndarray (n, n)
        Standard error of that mean, entrywise.

    Raises
    ------
    ValueError
        If ``replicas < 2``, or if a diverging step size overflows float64 within ``t`` steps.
    """
    from ..nn import Dense, losses, optim

    n, R, batch = positive_int(n, "n"), positive_int(replicas, "replicas"), positive_int(batch, "batch")
    eta, lam = positive_float(eta, "eta"), positive_float(lam, "lam")
    t = step_count(t, "t")
    if R < 2:
        raise ValueError(f"replicas must be at least 2 for a standard error, got {R}")
    fits_in_memory(8 * R * (3 * n * n + 8 * batch * n), f"n = {n}, replicas = {R}, batch = {batch} "
                   "(R n x n weights and their gradients)", "choose smaller sizes")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    init_ss, data_ss = ss.spawn(2)
    layer = Dense(n, bias=False, init="zeros")
    params, _ = layer.init(init_ss, R, (n,), dtype=np.float64)
    opt = optim.SGD(eta)
    rng = np.random.default_rng(data_ss)
    amp = math.sqrt(lam)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging step: refused by _finite
        for _ in range(t):
            p = amp * (2.0 * rng.integers(0, 2, size=(R, batch, n)) - 1.0)
            f = pwl_apply(p)
            out, cache = layer.forward(params, f)
            _, dout = losses.squared(out, p, reduction="mean", coef=0.5)
            _, grads = layer.backward(params, cache, dout)
            opt.step(params, grads)
        U = np.swapaxes(params["W"], 1, 2)  # Dense computes f @ W, so U_hat = W^T
        return _finite(n, eta, lam, t, U.mean(axis=0), U.std(axis=0, ddof=1) / math.sqrt(R))
