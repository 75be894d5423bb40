"""Descent on the talk's landscape (paper Sec. 2.2, talk part 4): runs, starts and success rates.

Gradient descent, exact or stochastic, from many starts at once (the starts are the replica
axis); the landscape's box-free flat radius (the distance from the optima beyond which the
gradient stays below a level) and gradient flow's reach radius; random starts from the package's
initialiser or the plateau's edge; success rates with exact binomial intervals. The experiment
that uses them is :mod:`failgeom.experiments.orthogonal_landscape`.
"""

from __future__ import annotations

import math

import numpy as np

from ..initializers import truncated_normal
from ..theory.periodic import periodic_landscape_gradient, periodic_landscape_value_and_gradient
from ..training import StopTraining, fit, null_progress

#: gradient-norm levels of the flatness profile (:func:`flat_radius`)
FLAT_LEVELS = (1e-2, 1e-4, 1e-8, 1e-16)


def _tail_bound(rho, target_norm):
    """Upper bound on ``||grad F||`` at distance ``>= rho`` from both optima, for
    ``rho >= max(1, ||b|| + 1/2)``: each well term ``(w -+ b) e^{-||w -+ b||^2/2}`` is at most
    ``rho e^{-rho^2/2}``, the bump ``2 w e^{-2||w||^2}`` at most ``2 s e^{-2 s^2}``, ``s = rho - ||b||``."""
    s = rho - target_norm
    return 2.0 * rho * math.exp(-0.5 * rho * rho) + 2.0 * s * math.exp(-2.0 * s * s)


def flat_radius(target=(2.0, 2.0), level: float = 1e-4, step: float = 0.01, angles: int = 720) -> float:
    """The distance to the nearest optimum beyond which ``||grad F|| < level`` everywhere.

    No box: the largest gradient norm at distance ``rho`` from the nearest optimum (on a circle of
    ``angles`` points around ``b``; F is even, so ``-b`` is the same) is scanned on radii ``step``
    apart up to the radius where :func:`_tail_bound` falls below ``level``; the answer is the
    smallest scanned radius from which on every scanned maximum is below ``level``.
    """
    b = np.asarray(target, dtype=np.float64)
    nb = float(np.linalg.norm(b))
    top = max(1.0, nb + 0.5)
    while _tail_bound(top, nb) >= level:
        top += step
    radii = np.arange(step, top + step, step)
    phi = np.linspace(0.0, 2 * np.pi, angles, endpoint=False)
    ring = np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    w = b + radii[:, None, None] * ring[None]  # (radii, angles, 2)
    nearest = np.linalg.norm(w + b, axis=-1) >= radii[:, None]  # b is the nearest optimum
    g = np.linalg.norm(periodic_landscape_gradient(w, b), axis=-1)
    g_max = np.where(nearest, g, 0.0).max(axis=1)
    above = np.flatnonzero(g_max >= level)
    return float(radii[above[-1] + 1]) if above.size else float(radii[0])


def flatness_profile(target=(2.0, 2.0), levels=FLAT_LEVELS) -> dict:
    """:func:`flat_radius` at each level and how it grows: the exponent ``e`` of a fit
    ``radius ~ log(1/level)^e`` (a Gaussian fall of the gradient with the distance gives about
    1/2, an exponential one about 1, a power law more)."""
    radii = [flat_radius(target, level) for level in levels]
    logs = np.log([math.log(1.0 / level) for level in levels])
    slope = float(np.polyfit(logs, np.log(radii), 1)[0])
    return {"levels": list(levels), "radius": radii, "growth_exponent": slope,
            "target_norm": float(np.linalg.norm(np.asarray(target, dtype=np.float64)))}


def reach_radius(lr: float, steps: int, inner: float = 1.0) -> float:
    """Distance to the nearest optimum from which gradient flow reaches distance ``inner`` in time
    ``lr * steps``, on the one-well model ``F ~ 1 - e^{-rho^2/2}``.

    There ``d rho / dt = -rho e^{-rho^2/2}``, so the time from ``rho0`` is
    ``(Ei(rho0^2/2) - Ei(inner^2/2)) / 2``; solve for ``rho0``. Far starts need time growing like
    ``e^{rho^2/2} / rho^2``: the reach radius grows only like ``sqrt(2 log(lr * steps))``.
    """
    from scipy.optimize import brentq
    from scipy.special import expi

    budget = 2.0 * lr * steps + expi(0.5 * inner**2)
    return float(brentq(lambda r: expi(0.5 * r * r) - budget, inner, 60.0))


def distance_to_optimum(w, target) -> np.ndarray:
    """Distance to the nearest global minimum ``+-b``, shape ``(...)``."""
    b = np.asarray(target, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    return np.minimum(np.linalg.norm(w - b, axis=-1), np.linalg.norm(w + b, axis=-1))


def stochastic_loss_and_gradient(w, x, target):
    """Minibatch loss ``mean_B (cos(w^T x) - cos(b^T x))^2`` ``(R,)`` and its gradient
    ``mean_B 2 (p - h) (-sin(w^T x)) x`` ``(R, 2)``.

    ``w`` ``(R, 2)``, ``x`` ``(R, B, 2)`` (each replica its own samples). Unbiased estimates of
    :func:`~failgeom.theory.periodic.periodic_landscape` and its gradient.
    """
    b = np.asarray(target, dtype=w.dtype)
    wx = np.einsum("rbi,ri->rb", x, w)
    resid = np.cos(wx) - np.cos(x @ b)
    coef = -2.0 * resid * np.sin(wx)
    return np.mean(resid * resid, axis=1), np.einsum("rb,rbi->ri", coef, x) / x.shape[1]


def stochastic_gradient(w, x, target) -> np.ndarray:
    """The gradient part of :func:`stochastic_loss_and_gradient`, shape ``(R, 2)``."""
    return stochastic_loss_and_gradient(w, x, target)[1]


def gradient_descent(starts, target, lr: float, steps: int, tolerance: float, *, rng=None,
                     batch: int | None = None, progress=null_progress, desc: str = "GD",
                     stop_when_all_reached: bool = False):
    """Exact (``rng=None``) or stochastic gradient descent from every start at once, through
    :func:`failgeom.training.fit` (the starting points are the replica axis).

    Parameters
    ----------
    starts : ndarray (R, 2)
        Starting points.
    target : sequence of 2 floats
        ``b``.
    lr : float
    steps : int
    tolerance : float
        A run counts as reaching the optimum at the first step within ``tolerance`` of ``+-b``.
    rng : numpy.random.Generator, optional
        With ``batch``: fresh Gaussian samples ``(R, batch, 2)`` each step (SGD).
    stop_when_all_reached : bool
        End the run once every start has reached the optimum (only ``hit_step`` is then final).

    Returns
    -------
    final : ndarray (R, 2)
    hit_step : ndarray (R,)
        First step within ``tolerance`` of an optimum, -1 if never.
    """
    w = np.array(starts, dtype=np.float64)
    hit = np.where(distance_to_optimum(w, target) < tolerance, 0, -1)

    def step(i):
        if rng is None:
            loss, g = periodic_landscape_value_and_gradient(w, target)
        else:
            loss, g = stochastic_loss_and_gradient(w, rng.standard_normal((w.shape[0], batch, w.shape[1])), target)
        w[...] -= lr * g
        return loss

    def record_hits(i):
        newly = (hit < 0) & (distance_to_optimum(w, target) < tolerance)
        hit[newly] = i
        if stop_when_all_reached and np.all(hit >= 0):
            raise StopTraining

    fit(step, steps, eval_every=steps, evaluate=lambda i: {"distance": distance_to_optimum(w, target)},
        hooks=(record_hits,), progress=progress, desc=desc, lr=lr)
    return w, hit


def fraction_by_distance(distance, reached, bin_width: float):
    """Fraction of runs that reached the optimum per starting-distance bin: (centres, fraction, count)."""
    edges = np.arange(0.0, distance.max() + bin_width, bin_width)
    idx = np.clip(np.digitize(distance, edges) - 1, 0, len(edges) - 2)
    counts = np.bincount(idx, minlength=len(edges) - 1)
    hits = np.bincount(idx, weights=reached.astype(float), minlength=len(edges) - 1)
    keep = counts > 0
    centres = 0.5 * (edges[:-1] + edges[1:])
    return centres[keep], hits[keep] / counts[keep], counts[keep]


#: the plateau's edge for the success rates: where ||grad F|| stays below 1e-8 (chosen after
#: seeing that from the 1e-4 edge, 4.7 from the optimum, gradient descent at lr 0.5 arrives
#: within 10,000 steps: gradient flow needs a time of about e^{rho^2/2} / rho^2 from distance rho)
PLATEAU_LEVEL = 1e-8


def initialiser_starts(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` starts ``(count, 2)`` from the package's initialiser for a 2-input unit:
    truncated normal, std ``1/sqrt(2)``, cut at 2 std."""
    return truncated_normal(rng, (count, 2), 1.0 / math.sqrt(2.0))


def plateau_edge_starts(rng: np.random.Generator, target, count: int, level: float = PLATEAU_LEVEL) -> np.ndarray:
    """``count`` starts ``(count, 2)`` at the distance :func:`flat_radius` (at ``level``) from an
    optimum +-b chosen at random, in a uniformly random direction among those whose nearest
    optimum it is. Starts farther out see an even smaller gradient."""
    b = np.asarray(target, dtype=np.float64)
    radius = flat_radius(b, level)
    out = np.empty((0, 2))
    while len(out) < count:
        phi = rng.uniform(0.0, 2 * np.pi, count)
        sign = rng.choice([-1.0, 1.0], count)[:, None]
        w = sign * b + radius * np.stack([np.cos(phi), np.sin(phi)], axis=-1)
        keep = np.linalg.norm(w + sign * b, axis=1) >= radius  # the chosen optimum is the nearest
        out = np.concatenate([out, w[keep]])
    return out[:count]


def success(reached) -> dict:
    """Successes out of runs with the 95% Clopper-Pearson interval of the rate."""
    from scipy import stats

    reached = np.asarray(reached, dtype=bool)
    n, k = int(reached.size), int(reached.sum())
    lo = float(stats.beta.ppf(0.025, k, n - k + 1)) if k > 0 else 0.0
    hi = float(stats.beta.ppf(0.975, k + 1, n - k)) if k < n else 1.0
    return {"runs": n, "reached": k, "rate": k / n, "ci95": [lo, hi]}
