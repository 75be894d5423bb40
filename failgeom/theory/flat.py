"""Appendix A.7: the forward-only (Isotron / GLMtron) update on a Lipschitz monotone target.

For an L-Lipschitz non-decreasing ``u`` with ``|u| <= c``, inputs ``||x|| <= 1`` and
``||w||, ||v*|| <= B``, the update ``w <- w - eta (u(w^T x) - y) x`` (backprop through u replaced
by the identity) with ``T = c^4 B^4 L^2 / eps^2`` iterations and ``eta = sqrt(1 / (T c^2))``
reaches expected squared error at most eps: O(L^2 / eps^2) iterations, no dependence on u'.

The argument behind it (a potential ``||w_t - v*||^2`` summed over the T updates) bounds the
error averaged over the iterates ``w_0 .. w_{T-1}``. This module holds the one implementation
of that run (:func:`forward_only_sgd`, all replicas as one batched computation), the quantity
A.7 bounds with its confidence interval (:func:`forward_only_average_error`), and the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..validation import (
    MAX_STEPS, choice, finite_float, fits_in_memory, generator, nonnegative_int, positive_float, positive_int,
    real_array, step_count,
)

#: Largest number of sample coordinates drawn at once (8 MB of float64): memory stays bounded
#: for any T; the numbers do not depend on it (a Generator fills arrays in order).
_CHUNK_VALUES = 1 << 20


def forward_only_iterations(c: float, B: float, L: float, eps: float) -> float:
    """Appendix A.7's iteration count ``T = c^4 B^4 L^2 / eps^2`` (a real number).

    Parameters
    ----------
    c : float
        Bound ``|u| <= c`` of the activation.
    B : float
        Norm bound ``||w||, ||v*|| <= B``.
    L : float
        Lipschitz constant of ``u``.
    eps : float
        Target expected squared error.

    Returns
    -------
    float
    """
    c, B = positive_float(c, "c"), positive_float(B, "B")
    L, eps = positive_float(L, "L"), positive_float(eps, "eps")
    return c**4 * B**4 * L**2 / eps**2


def forward_only_horizon(c: float, B: float, L: float, eps: float) -> int:
    """A.7's ``T`` as a whole number of iterations: ``ceil(c^4 B^4 L^2 / eps^2)``.

    A value within 1e-9 (relative) of an integer is that integer, so that float rounding of
    ``c^4 B^4 L^2 / eps^2`` (for example ``100.00000000000001``) does not add an iteration.

    Parameters
    ----------
    c, B, L, eps : float
        As in :func:`forward_only_iterations`.

    Returns
    -------
    int
        At least 1.
    """
    value = forward_only_iterations(c, B, L, eps)
    nearest = round(value)
    if nearest >= 1 and abs(value - nearest) <= 1e-9 * value:
        return int(nearest)
    return max(1, int(math.ceil(value)))


def _runnable_horizon(c, B, L, eps) -> int:
    """:func:`forward_only_horizon`, refused naming eps if a run of that many steps is too long."""
    T = forward_only_horizon(c, B, L, eps)
    if T > MAX_STEPS:
        raise ValueError(f"eps = {eps:g} needs T = c^4 B^4 L^2 / eps^2 = {T:.3g} steps, more than the 10^9 a run "
                         "can take; choose a larger eps (or smaller c, B, L)")
    return T


def forward_only_step_size(T: float, c: float) -> float:
    """Appendix A.7's step size ``eta = sqrt(1 / (T c^2))``.

    Parameters
    ----------
    T : float
        Number of iterations.
    c : float
        Bound ``|u| <= c`` of the activation.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``T c^2`` underflows to 0 or overflows float64.
    """
    T, c = positive_float(T, "T"), positive_float(c, "c")
    if not 0.0 < T * c * c < math.inf:
        raise ValueError(f"T c^2 = {T:g} * {c:g}^2 is not a positive finite float64: choose c and T "
                         f"with T c^2 between 1e-300 and 1e300")
    return math.sqrt(1.0 / (T * c * c))


def lipschitz_activation(r, c: float = 1.0, L: float = 1.0) -> np.ndarray:
    """A non-decreasing, L-Lipschitz activation bounded by c: ``c tanh(L r / c)``.

    Parameters
    ----------
    r : array_like
        Pre-activations ``w^T x``.
    c : float
        Bound ``|u| <= c``.
    L : float
        Lipschitz constant (the slope at 0).

    Returns
    -------
    ndarray of the shape of ``r``
    """
    c, L = positive_float(c, "c"), positive_float(L, "L")
    return c * np.tanh(L * real_array(r, "r", finite=False) / c)


def clipped_ramp(r, c: float = 1.0, L: float = 1.0) -> np.ndarray:
    """``clip(L r, -c, c)``: non-decreasing, L-Lipschitz, bounded by c.

    Parameters
    ----------
    r : array_like
        Pre-activations ``w^T x``.
    c : float
        Bound ``|u| <= c``.
    L : float
        Lipschitz constant (the slope between the clips).

    Returns
    -------
    ndarray of the shape of ``r``
    """
    c, L = positive_float(c, "c"), positive_float(L, "L")
    return np.clip(L * real_array(r, "r", finite=False), -c, c)


#: The activations of the A.7 runs, by name: ``u(r, c, L)``.
ACTIVATIONS = {"tanh": lipschitz_activation, "ramp": clipped_ramp}


def forward_only_updates(w: np.ndarray, x: np.ndarray, v_star: np.ndarray, c: float, L: float,
                         eta: float, activation: str = "tanh") -> np.ndarray:
    """Apply ``k`` forward-only SGD steps to ``w`` in place; return each step's squared error.

    Step ``t`` sees one sample ``x_t`` per replica and does
    ``w <- w - eta (u(w^T x_t) - u(v*^T x_t)) x_t``.

    Parameters
    ----------
    w : ndarray (R, d), float64
        The iterates of R replicas; updated in place.
    x : ndarray (k, R, d)
        The samples of ``k`` consecutive steps.
    v_star : ndarray (R, d)
        The targets.
    c, L : float
        Bound and Lipschitz constant of ``u``.
    eta : float
        Step size.
    activation : {"tanh", "ramp"}
        ``u`` (see :data:`ACTIVATIONS`).

    Returns
    -------
    ndarray (k, R)
        ``(u(w_t^T x_t) - u(v*^T x_t))^2`` with ``w_t`` the iterate *before* step t: since
        ``x_t`` is independent of ``w_t``, an unbiased estimate of the error of ``w_t``.

    Raises
    ------
    TypeError
        If ``w``, ``x`` or ``v_star`` is not an array of real floats (checked in O(1): a NaN
        in them gives NaN errors, not a number).
    ValueError
        If their shapes do not fit, or ``w`` is read-only.
    """
    u = ACTIVATIONS[choice(activation, "activation", tuple(ACTIVATIONS))]
    c, L, eta = positive_float(c, "c"), positive_float(L, "L"), positive_float(eta, "eta")
    for name, arr in (("w", w), ("x", x), ("v_star", v_star)):
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
            raise TypeError(f"{name} must be a NumPy array of real floats, got {getattr(arr, 'dtype', type(arr).__name__)}")
    if not w.flags.writeable:
        raise ValueError("w must be writable (it is updated in place)")
    if w.ndim != 2 or x.ndim != 3 or x.shape[1:] != w.shape or v_star.shape != w.shape:
        raise ValueError(f"need w (R, d), x (k, R, d), v_star (R, d); got {w.shape}, {x.shape}, {v_star.shape}")
    y = u(np.einsum("krd,rd->kr", x, v_star), c, L)
    sq = np.empty(x.shape[:2])
    for t in range(x.shape[0]):
        resid = u(np.einsum("rd,rd->r", x[t], w), c, L) - y[t]
        sq[t] = resid * resid
        w -= (eta * resid)[:, None] * x[t]
    return sq


@dataclass(frozen=True)
class ForwardOnlyRun:
    """What :func:`forward_only_sgd` measured.

    Attributes
    ----------
    T : int
        Number of updates.
    eta : float
        Step size ``sqrt(1 / (T c^2))``.
    average_error : ndarray (R,)
        Per replica, ``(1/T) sum_{t<T} (u(w_t^T x_t) - u(v*^T x_t))^2``: an unbiased estimate of
        the error averaged over the iterates ``w_0 .. w_{T-1}``, the quantity A.7's argument
        bounds. Replicas are independent, so their mean estimates its expectation.
    steps : ndarray (E,), int
        The iterates evaluated on the test set (0 .. T; empty if ``test_size`` is 0).
    test_error : ndarray (R, E)
        ``mean_test (u(w_t^T x) - u(v*^T x))^2`` at those iterates.
    weight_norm : ndarray (R,)
        ``||w_T||``.
    """

    T: int
    eta: float
    average_error: np.ndarray
    steps: np.ndarray
    test_error: np.ndarray
    weight_norm: np.ndarray


def unit_sphere(rng: np.random.Generator, shape, dim: int) -> np.ndarray:
    """Points uniform on the unit sphere of ``R^dim`` (``||x|| = 1``), shape ``(*shape, dim)``."""
    x = generator(rng).standard_normal(tuple(shape) + (positive_int(dim, "dim"),))
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def forward_only_sgd(dim: int, c: float, B: float, L: float, T: int, replicas: int, rng, *,
                     activation: str = "tanh", test_size: int = 1024, evaluations: int = 200) -> ForwardOnlyRun:
    """Forward-only SGD for T steps with A.7's step size, R replicas as one batched computation.

    Inputs uniform on the unit sphere of ``R^dim`` (``||x|| = 1``), a target ``v*`` of norm B in
    a uniformly random direction per replica, ``w_0 = 0``, one fresh sample per step,
    ``eta = sqrt(1 / (T c^2))``, ``u`` = ``c tanh(L r / c)`` or ``clip(L r, -c, c)``.

    Parameters
    ----------
    dim : int
        Input dimension d.
    c, B, L : float
        Bound of ``u``, norm of ``v*``, Lipschitz constant of ``u``.
    T : int
        Number of updates.
    replicas : int
        R, independent runs.
    rng : Generator, SeedSequence or int
        The only source of randomness (``v*``, then the test set, then the samples).
    activation : {"tanh", "ramp"}
    test_size : int, >= 0
        Test points per replica for the iterate errors (0: none, only the online estimate).
    evaluations : int
        About this many evenly spaced iterates are evaluated on the test set (every iterate if
        T is smaller), always including 0 and T.

    Returns
    -------
    ForwardOnlyRun
    """
    dim, R = positive_int(dim, "dim"), positive_int(replicas, "replicas")
    T = step_count(T, "T", low=1)
    c, B, L = positive_float(c, "c"), positive_float(B, "B"), positive_float(L, "L")
    choice(activation, "activation", tuple(ACTIVATIONS))
    test_size = nonnegative_int(test_size, "test_size")
    evaluations = positive_int(evaluations, "evaluations")
    fits_in_memory(8 * (3 * R * test_size * dim + 3 * max(_CHUNK_VALUES, R * dim) + 4 * R * dim),
                   f"replicas = {R}, test_size = {test_size}, dim = {dim} (the test set and a chunk of samples)",
                   "lower replicas, test_size or dim")
    u = ACTIVATIONS[activation]
    rng = generator(rng)
    eta = forward_only_step_size(T, c)
    v_star = B * unit_sphere(rng, (R,), dim)
    x_test = unit_sphere(rng, (R, test_size), dim)
    y_test = u(np.einsum("rnd,rd->rn", x_test, v_star), c, L)
    stride = max(1, T // evaluations)
    steps = np.unique(np.append(np.arange(0, T + 1, stride), T)) if test_size else np.zeros(0, dtype=np.int64)
    test_error = np.empty((R, steps.size))

    def evaluate(w, t):
        (i,) = np.flatnonzero(steps == t)
        pred = u(np.einsum("rnd,rd->rn", x_test, w), c, L)
        test_error[:, i] = np.mean((pred - y_test) ** 2, axis=1)

    w = np.zeros((R, dim))
    total = np.zeros(R)
    chunk = max(1, min(T, _CHUNK_VALUES // (R * dim)))
    # evaluate at the test iterates: split the chunks there
    marks = np.union1d(np.arange(0, T, chunk), steps[steps < T]).astype(np.int64)
    bounds = np.append(marks, T)
    for t0, t1 in zip(bounds[:-1], bounds[1:]):
        if t0 in steps:
            evaluate(w, t0)
        x = unit_sphere(rng, (t1 - t0, R), dim)
        for sq in forward_only_updates(w, x, v_star, c, L, eta, activation):
            total += sq  # one step at a time: the sum does not depend on the chunks
    if T in steps:
        evaluate(w, T)
    return ForwardOnlyRun(T=T, eta=eta, average_error=total / T, steps=steps, test_error=test_error,
                          weight_norm=np.linalg.norm(w, axis=1))


def forward_only_run(dim: int, c: float, B: float, L: float, eps: float, replicas: int, seed,
                     test_size: int = 1024, evaluations: int = 200, activation: str = "tanh"):
    """:func:`forward_only_sgd` for A.7's ``T`` (:func:`forward_only_horizon`) at error level eps.

    Parameters
    ----------
    dim : int
        Input dimension d.
    c, B, L, eps : float
        As in :func:`forward_only_iterations`; they fix ``T`` and ``eta``.
    replicas : int
        R, independent runs.
    seed : Generator, SeedSequence or int
        The only source of randomness.
    test_size : int, >= 1
        Test points per replica.
    evaluations : int
        About this many evenly spaced iterates are evaluated (always 0 and T).
    activation : {"tanh", "ramp"}
        ``u``: :func:`lipschitz_activation` or :func:`clipped_ramp`.

    Returns
    -------
    errors : ndarray (R, E)
        Test squared error ``E (u(w_t^T x) - u(v*^T x))^2`` at the iterates ``steps``.
    steps : ndarray (E,)
        The iterate indices evaluated (0 .. T).
    T : int

    Raises
    ------
    ValueError
        If ``T`` exceeds the 10^9 steps a run can take.
    """
    T = _runnable_horizon(c, B, L, eps)
    run = forward_only_sgd(dim, c, B, L, T, replicas, seed, activation=activation,
                           test_size=positive_int(test_size, "test_size"), evaluations=evaluations)
    return run.test_error, run.steps, T


def forward_only_linear_average_error(dim: int, B: float, L: float, eta: float, T: int) -> float:
    """Exact ``E[(1/T) sum_{t<T} err(w_t)]`` when ``u`` is linear, ``u(r) = L r``, on the path.

    That is the clipped ramp ``clip(L r, -c, c)`` whenever ``L |w_t^T x| <= c`` along the run,
    for example with ``L B <= c`` in one dimension (``x = +-1``, ``w_t`` moves from 0 to
    ``v*``). With ``x`` uniform on the unit sphere of ``R^dim``, ``E[x x^T] = I / dim`` and
    ``||x|| = 1``, so ``e_t = w_t - v*`` obeys ``E||e_{t+1}||^2 = rho E||e_t||^2`` with
    ``rho = 1 - (2 eta L - eta^2 L^2) / dim``, and ``err(w) = L^2 ||w - v*||^2 / dim``:

        E[(1/T) sum_{t<T} err(w_t)] = L^2 B^2 (1 - rho^T) / (T (2 eta L - eta^2 L^2)).

    At A.7's ``T`` and ``eta`` this tends to ``eps / (2 c)`` as T grows: above eps for c < 1/2.

    Parameters
    ----------
    dim : int
    B, L, eta : float
        ``||v*||``, the slope of u, the step size (``eta L < 2``).
    T : int

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``eta L >= 2`` (the iterates do not converge).
    """
    dim, T = positive_int(dim, "dim"), positive_int(T, "T")
    B, L, eta = positive_float(B, "B"), positive_float(L, "L"), positive_float(eta, "eta")
    gain = 2.0 * eta * L - (eta * L) ** 2
    if not gain > 0:
        raise ValueError(f"eta * L must be below 2 for the iterates to converge, got {eta * L}")
    rho = 1.0 - gain / dim  # in [0, 1): gain <= 1
    return L**2 * B**2 * (1.0 - rho**T) / (T * gain)


@dataclass(frozen=True)
class AverageError:
    """The error averaged over the iterates after A.7's T steps, relative to eps.

    Attributes
    ----------
    ratio : float
        Mean over replicas of the per-replica average-iterate error, divided by eps: the
        estimate of ``E[(1/T) sum_{t<T} err(w_t)] / eps``. A.7 states that this is at most 1.
    ci : tuple of float
        Two-sided confidence interval for that ratio (Student t over the replicas).
    confidence : float
    stderr : float
        Standard error of ``ratio``.
    max_replica_ratio : float
        The largest single replica's value / eps (a spread, not what A.7 bounds).
    T : int
    eta : float
    eps : float
    replicas : int
    """

    ratio: float
    ci: tuple[float, float]
    confidence: float
    stderr: float
    max_replica_ratio: float
    T: int
    eta: float
    eps: float
    replicas: int

    def __str__(self) -> str:
        lo, hi = self.ci
        return (f"{self.ratio:.4f} eps [{lo:.4f}, {hi:.4f}] ({100 * self.confidence:g}%, "
                f"{self.replicas} replicas, T = {self.T})")


def forward_only_average_error(dim: int, c: float, B: float, L: float, eps: float, replicas: int, seed, *,
                               activation: str = "tanh", confidence: float = 0.95) -> AverageError:
    """What Appendix A.7 bounds, measured: the expected average-iterate error after its T steps.

    Runs :func:`forward_only_sgd` for ``T = ceil(c^4 B^4 L^2 / eps^2)`` steps with
    ``eta = sqrt(1/(T c^2))`` and estimates ``E[(1/T) sum_{t<T} err(w_t)]`` by the mean over
    replicas of the online errors (each unbiased), with a Student-t interval.

    Parameters
    ----------
    dim, c, B, L, eps : as in :func:`forward_only_sgd` and :func:`forward_only_iterations`
    replicas : int, >= 2
    seed : Generator, SeedSequence or int
    activation : {"tanh", "ramp"}
    confidence : float in (0, 1)

    Returns
    -------
    AverageError

    Raises
    ------
    ValueError
        If ``replicas < 2``, or A.7's ``T`` exceeds the 10^9 steps a run can take.
    """
    R = positive_int(replicas, "replicas")
    if R < 2:
        raise ValueError(f"replicas must be at least 2 for an interval, got {R}")
    confidence = finite_float(confidence, "confidence", 0, 1, low_open=True, high_open=True)
    eps = positive_float(eps, "eps")
    T = _runnable_horizon(c, B, L, eps)
    run = forward_only_sgd(dim, c, B, L, T, R, seed, activation=activation, test_size=0)
    values = run.average_error / eps
    mean = float(values.mean())
    stderr = float(values.std(ddof=1) / math.sqrt(R))
    half = float(stats.t.ppf(0.5 + confidence / 2, R - 1)) * stderr
    return AverageError(ratio=mean, ci=(mean - half, mean + half), confidence=confidence, stderr=stderr,
                        max_replica_ratio=float(values.max()), T=T, eta=run.eta, eps=eps, replicas=R)
