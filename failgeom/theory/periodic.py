"""Linear-periodic targets (paper Sec. 2, Theorem 2 after Shamir 2016; the talk's 2-D landscape).

Targets ``h_v(x) = cos(r v^T x)`` with ``||v|| = 1`` (so ``||v*|| = r`` in the paper's notation),
inputs ``x ~ N(0, sigma^2 I_d)``. With the predictor ``p_w(x) = cos(w^T x)`` (the talk's example)
every Gaussian expectation is in closed form, from ``E[exp(i a^T x)] = exp(-sigma^2 ||a||^2 / 2)``:

- ``E[cos(a^T x) cos(b^T x)] = (exp(-s ||a - b||^2) + exp(-s ||a + b||^2)) / 2``, ``s = sigma^2/2``;
- ``E[x sin(a^T x)] = sigma^2 a exp(-sigma^2 ||a||^2 / 2)``.

All functions are vectorized over leading axes of ``w`` (many points at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import generator, positive_float, positive_int


def _sq(a):
    return np.sum(a * a, axis=-1)


def gaussian_cos_product(a, b, sigma: float = 1.0):
    """``E[cos(a^T x) cos(b^T x)]`` for ``x ~ N(0, sigma^2 I)``, broadcasting over leading axes."""
    sigma = positive_float(sigma, "sigma")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    s = 0.5 * sigma**2
    return 0.5 * (np.exp(-s * _sq(a - b)) + np.exp(-s * _sq(a + b)))


def _target(target, dim: int) -> np.ndarray:
    b = np.asarray(target, dtype=np.float64)
    if b.shape != (dim,):
        raise ValueError(f"target must have shape ({dim},) to match w, got {b.shape}")
    return b


def periodic_landscape(w, target=(2.0, 2.0), sigma: float = 1.0):
    """The talk's ``F(w) = E[(cos(w^T x) - cos(b^T x))^2]``, ``b = target``, closed form.

    ``F = E cos^2(w^T x) - 2 E cos(w^T x) cos(b^T x) + E cos^2(b^T x)``, each term from
    :func:`gaussian_cos_product`. Minimum 0 at ``w = +-b``.

    Parameters
    ----------
    w : array_like (..., dim)
        Points (dim = 2 in the talk).
    target : array_like (dim,)
        ``b``; the talk uses ``[2, 2]``.
    sigma : float
        Input scale, ``x ~ N(0, sigma^2 I)``.

    Returns
    -------
    ndarray (...)
    """
    w = np.asarray(w, dtype=np.float64)
    b = _target(target, w.shape[-1])
    cross = gaussian_cos_product(w, b, sigma)
    return gaussian_cos_product(w, w, sigma) - 2.0 * cross + gaussian_cos_product(b, b, sigma)


def periodic_landscape_gradient(w, target=(2.0, 2.0), sigma: float = 1.0):
    """Closed-form gradient of :func:`periodic_landscape`, shape (..., dim).

    ``grad F = -2 s2 w e^{-2 s2 ||w||^2} + s2 [(w - b) e^{-s2 ||w - b||^2 / 2}
    + (w + b) e^{-s2 ||w + b||^2 / 2}]`` with ``s2 = sigma^2``.
    """
    sigma = positive_float(sigma, "sigma")
    w = np.asarray(w, dtype=np.float64)
    b = _target(target, w.shape[-1])
    s2 = sigma**2
    e_self = np.exp(-2.0 * s2 * _sq(w))[..., None]
    e_minus = np.exp(-0.5 * s2 * _sq(w - b))[..., None]
    e_plus = np.exp(-0.5 * s2 * _sq(w + b))[..., None]
    return s2 * (-2.0 * w * e_self + (w - b) * e_minus + (w + b) * e_plus)


def periodic_landscape_monte_carlo(w, rng, samples: int, target=(2.0, 2.0), sigma: float = 1.0):
    """Monte Carlo estimate of :func:`periodic_landscape` at one point: ``(mean, stderr)``."""
    rng = generator(rng)
    samples = positive_int(samples, "samples")
    w = np.asarray(w, dtype=np.float64)
    b = _target(target, w.shape[-1])
    x = sigma * rng.standard_normal((samples, w.shape[-1]))
    vals = (np.cos(x @ w) - np.cos(x @ b)) ** 2
    return float(vals.mean()), float(vals.std(ddof=1) / np.sqrt(samples))


def cos_predictor_gradients(w, directions, r: float, sigma: float = 1.0):
    """``grad F_h(w)`` for ``p_w(x) = cos(w^T x)``, square loss ``0.5 (p - h)^2``,
    targets ``h(x) = cos(r v^T x)`` (Theorem 2's class), closed form.

    ``grad F_h = E[p grad p] - E[h grad p]`` with ``grad p = -sin(w^T x) x``:
    ``E[p grad p] = -sigma^2 w e^{-2 sigma^2 ||w||^2}`` and ``-E[h grad p] = (sigma^2 / 2)
    [(w + b) e^{-sigma^2 ||w + b||^2 / 2} + (w - b) e^{-sigma^2 ||w - b||^2 / 2}]``, ``b = r v``.

    Parameters
    ----------
    w : array_like (dim,)
    directions : array_like (m, dim)
        Unit vectors v (one target each).
    r : float
        Frequency ``||v*||``.
    sigma : float

    Returns
    -------
    ndarray (m, dim)
    """
    sigma, r = positive_float(sigma, "sigma"), positive_float(r, "r")
    w = np.asarray(w, dtype=np.float64)
    V = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    if V.shape[-1] != w.shape[-1]:
        raise ValueError(f"directions must have {w.shape[-1]} columns to match w, got {V.shape}")
    s2 = sigma**2
    b = r * V
    own = -s2 * w * np.exp(-2.0 * s2 * _sq(w))
    plus, minus = w + b, w - b
    e_plus = np.exp(-0.5 * s2 * _sq(plus))[:, None]
    e_minus = np.exp(-0.5 * s2 * _sq(minus))[:, None]
    target_part = 0.5 * s2 * (plus * e_plus + minus * e_minus)
    return own + target_part


def cos_predictor_gradient_bound(w, sigma: float = 1.0) -> float:
    """``G(w)^2 = E ||grad p_w(x)||^2 = E[sin^2(w^T x) ||x||^2]`` for ``p_w = cos(w^T x)``.

    ``= (sigma^2 d - (sigma^2 d - 4 sigma^4 ||w||^2) e^{-2 sigma^2 ||w||^2}) / 2``, from
    ``E[||x||^2 cos(a^T x)] = (sigma^2 d - sigma^4 ||a||^2) e^{-sigma^2 ||a||^2 / 2}``.
    """
    sigma = positive_float(sigma, "sigma")
    w = np.asarray(w, dtype=np.float64)
    s2, d, ww = sigma**2, w.shape[-1], float(_sq(w))
    return 0.5 * (s2 * d - (s2 * d - 4.0 * s2**2 * ww) * np.exp(-2.0 * s2 * ww))


@dataclass(frozen=True)
class VarianceEstimate:
    """A Monte Carlo estimate with its standard error and 95% interval."""

    value: float
    stderr: float

    @property
    def ci95(self) -> tuple[float, float]:
        return (self.value - 1.96 * self.stderr, self.value + 1.96 * self.stderr)


def sphere_directions(rng, count: int, d: int) -> np.ndarray:
    """``count`` unit vectors uniform on the sphere in R^d."""
    rng = generator(rng)
    v = rng.standard_normal((positive_int(count, "count"), positive_int(d, "d")))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def linear_periodic_variance(w, r: float, rng, targets: int = 4096, sigma: float = 1.0) -> VarianceEstimate:
    """``Var(H, F, w)`` of Theorem 2 for ``H = {cos(r v^T x): ||v|| = 1}``, v uniform on the sphere.

    The gradient for each target is exact (:func:`cos_predictor_gradients`); the expectation over
    the target direction v is Monte Carlo over ``targets`` directions. Estimate: the sample
    variance ``sum ||g_j - g_bar||^2 / (m - 1)``; standard error from the spread of
    ``||g_j - g_bar||^2`` (delta method, ignoring the O(1/m) effect of centring).
    """
    w = np.asarray(w, dtype=np.float64)
    V = sphere_directions(rng, targets, w.shape[-1])
    g = cos_predictor_gradients(w, V, r, sigma)
    m = g.shape[0]
    if m < 2:
        raise ValueError(f"targets must be at least 2, got {m}")
    dev = _sq(g - g.mean(axis=0))
    value = float(dev.sum() / (m - 1))
    return VarianceEstimate(value=value, stderr=float(dev.std(ddof=1) / np.sqrt(m)))
