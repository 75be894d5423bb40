"""Linear-periodic targets (paper Sec. 2, Theorem 2 after Shamir 2016; the talk's 2-D landscape).

Targets ``h_v(x) = cos(r v^T x)`` with ``||v|| = 1`` (so ``||v*|| = r`` in the paper's notation),
inputs ``x ~ N(0, sigma^2 I_d)``. With the predictor ``p_w(x) = cos(w^T x)`` (the talk's example)
every Gaussian expectation is in closed form, from ``E[exp(i a^T x)] = exp(-sigma^2 ||a||^2 / 2)``:

- ``E[cos(a^T x) cos(b^T x)] = (exp(-s ||a - b||^2) + exp(-s ||a + b||^2)) / 2``, ``s = sigma^2/2``;
- ``E[x sin(a^T x)] = sigma^2 a exp(-sigma^2 ||a||^2 / 2)``.

On top of these: the talk's landscape and its gradient; the gradient for every target of
Theorem 2's class; the variance over the class exactly (a 1-D quadrature,
:func:`exact_linear_periodic_variance`) and by Monte Carlo over the direction v
(:func:`linear_periodic_variance`, plain or importance-sampled with von Mises-Fisher draws).
The landscape functions are vectorized over leading axes of ``w`` (many points at once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..validation import choice, finite_float, fits_in_memory, generator, positive_float, positive_int, real_array


def _sq(a):
    return np.sum(a * a, axis=-1)


def gaussian_cos_product(a, b, sigma: float = 1.0):
    """``E[cos(a^T x) cos(b^T x)]`` for ``x ~ N(0, sigma^2 I)``, broadcasting over leading axes.

    Parameters
    ----------
    a, b : array_like (..., dim)
        Frequency vectors.
    sigma : float
        Input scale.

    Returns
    -------
    ndarray (...)
        ``(exp(-s ||a - b||^2) + exp(-s ||a + b||^2)) / 2`` with ``s = sigma^2 / 2``.
    """
    sigma = positive_float(sigma, "sigma")
    a, b = real_array(a, "a"), real_array(b, "b")
    s = 0.5 * sigma**2
    return 0.5 * (np.exp(-s * _sq(a - b)) + np.exp(-s * _sq(a + b)))


def _target(target, dim: int) -> np.ndarray:
    b = real_array(target, "target")
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
    w = real_array(w, "w")
    b = _target(target, w.shape[-1])
    cross = gaussian_cos_product(w, b, sigma)
    return gaussian_cos_product(w, w, sigma) - 2.0 * cross + gaussian_cos_product(b, b, sigma)


def periodic_landscape_gradient(w, target=(2.0, 2.0), sigma: float = 1.0):
    """Closed-form gradient of :func:`periodic_landscape`.

    ``grad F = -2 s2 w e^{-2 s2 ||w||^2} + s2 [(w - b) e^{-s2 ||w - b||^2 / 2}
    + (w + b) e^{-s2 ||w + b||^2 / 2}]`` with ``s2 = sigma^2``.

    Parameters
    ----------
    w : array_like (..., dim)
        Points.
    target : array_like (dim,)
        ``b``; the talk uses ``[2, 2]``.
    sigma : float
        Input scale, ``x ~ N(0, sigma^2 I)``.

    Returns
    -------
    ndarray (..., dim)
    """
    sigma = positive_float(sigma, "sigma")
    w = real_array(w, "w")
    b = _target(target, w.shape[-1])
    s2 = sigma**2
    e_self = np.exp(-2.0 * s2 * _sq(w))[..., None]
    e_minus = np.exp(-0.5 * s2 * _sq(w - b))[..., None]
    e_plus = np.exp(-0.5 * s2 * _sq(w + b))[..., None]
    return s2 * (-2.0 * w * e_self + (w - b) * e_minus + (w + b) * e_plus)


def periodic_landscape_value_and_gradient(w, target=(2.0, 2.0), sigma: float = 1.0):
    """:func:`periodic_landscape` and :func:`periodic_landscape_gradient` at once.

    Both come from the same three exponentials (what a gradient-descent step that also reports F
    needs): ``F = 1 + e_self / 2 + e^{-2 s2 ||b||^2} / 2 - e_minus - e_plus`` with ``e_self =
    e^{-2 s2 ||w||^2}``, ``e_-+ = e^{-s2 ||w -+ b||^2 / 2}``, ``s2 = sigma^2``.

    Parameters
    ----------
    w : array_like (..., dim)
        Points.
    target : array_like (dim,)
        ``b``; the talk uses ``[2, 2]``.
    sigma : float
        Input scale, ``x ~ N(0, sigma^2 I)``.

    Returns
    -------
    F : ndarray (...)
    grad : ndarray (..., dim)
    """
    sigma = positive_float(sigma, "sigma")
    w = real_array(w, "w")
    b = _target(target, w.shape[-1])
    s2 = sigma**2
    e_self = np.exp(-2.0 * s2 * _sq(w))
    e_minus = np.exp(-0.5 * s2 * _sq(w - b))
    e_plus = np.exp(-0.5 * s2 * _sq(w + b))
    F = 1.0 + 0.5 * e_self + 0.5 * np.exp(-2.0 * s2 * float(b @ b)) - e_minus - e_plus
    grad = s2 * (-2.0 * w * e_self[..., None] + (w - b) * e_minus[..., None] + (w + b) * e_plus[..., None])
    return F, grad


def periodic_landscape_monte_carlo(w, rng, samples: int, target=(2.0, 2.0), sigma: float = 1.0):
    """Monte Carlo estimate of :func:`periodic_landscape` at one point.

    Parameters
    ----------
    w : array_like (dim,)
        The point.
    rng : Generator, SeedSequence or seed
        Source of the inputs.
    samples : int
        Number of inputs ``x ~ N(0, sigma^2 I)``, at least 2 for a standard error.
    target : array_like (dim,)
        ``b``; the talk uses ``[2, 2]``.
    sigma : float
        Input scale.

    Returns
    -------
    mean : float
    stderr : float
    """
    rng = generator(rng)
    samples, sigma = positive_int(samples, "samples"), positive_float(sigma, "sigma")
    w = real_array(w, "w")
    b = _target(target, w.shape[-1])
    fits_in_memory(16 * samples * (w.shape[-1] + 4), f"samples = {samples} (samples x {w.shape[-1]} inputs)",
                   "choose fewer samples")
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

    Raises
    ------
    ValueError
        If ``directions`` do not have as many columns as ``w`` has entries.
    """
    sigma, r = positive_float(sigma, "sigma"), positive_float(r, "r")
    w = real_array(w, "w")
    V = np.atleast_2d(real_array(directions, "directions"))
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
    ``E[||x||^2 cos(a^T x)] = (sigma^2 d - sigma^4 ||a||^2) e^{-sigma^2 ||a||^2 / 2}``. Theorem 2
    bounds the variance by ``G(w)^2`` times a factor exponentially small in ``r``.

    Parameters
    ----------
    w : array_like (d,)
        The predictor's weights.
    sigma : float
        Input scale, ``x ~ N(0, sigma^2 I)``.

    Returns
    -------
    float
    """
    sigma = positive_float(sigma, "sigma")
    w = real_array(w, "w")
    s2, d, ww = sigma**2, w.shape[-1], float(_sq(w))
    return 0.5 * (s2 * d - (s2 * d - 4.0 * s2**2 * ww) * np.exp(-2.0 * s2 * ww))


@dataclass(frozen=True)
class VarianceEstimate:
    """A Monte Carlo estimate with its standard error and 95% interval.

    Attributes
    ----------
    value : float
        The estimate.
    stderr : float
        Its standard error.
    """

    value: float
    stderr: float

    @property
    def ci95(self) -> tuple[float, float]:
        """Normal 95% interval ``(value - 1.96 stderr, value + 1.96 stderr)``."""
        return (self.value - 1.96 * self.stderr, self.value + 1.96 * self.stderr)


def sphere_directions(rng, count: int, d: int) -> np.ndarray:
    """Unit vectors uniform on the sphere in R^d (the direction v of Theorem 2's targets).

    Parameters
    ----------
    rng : Generator, SeedSequence or seed
        Source of the directions.
    count : int
        Number of vectors.
    d : int
        Dimension.

    Returns
    -------
    ndarray (count, d)
    """
    rng = generator(rng)
    count, d = positive_int(count, "count"), positive_int(d, "d")
    fits_in_memory(24 * count * d, f"count = {count}, d = {d} (count x d directions)", "choose a smaller count or d")
    v = rng.standard_normal((count, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def von_mises_fisher_directions(rng, count: int, mean, kappa: float) -> np.ndarray:
    """``count`` unit vectors from the von Mises-Fisher law ``∝ exp(kappa mean^T v)`` on the
    sphere of R^d (Wood 1994: rejection sampling of ``t = mean^T v``, then a uniform direction
    orthogonal to ``mean``).

    Parameters
    ----------
    rng : Generator, SeedSequence or seed
    count : int
    mean : array_like (d,)
        Unit vector (normalized here), d >= 2.
    kappa : float
        Concentration, > 0.

    Returns
    -------
    ndarray (count, d)
        Unit rows: ``| ||v|| - 1 |`` is a few float64 eps at every d and kappa.

    Raises
    ------
    ValueError
        If ``mean`` is not a finite non-zero 1-D vector of length at least 2.
    """
    rng = generator(rng)
    count, kappa = positive_int(count, "count"), positive_float(kappa, "kappa")
    mu = real_array(mean, "mean")
    if mu.ndim != 1 or mu.size < 2 or not np.all(np.isfinite(mu)) or not np.any(mu):
        raise ValueError(f"mean must be a finite non-zero vector of length >= 2, got shape {mu.shape}")
    fits_in_memory(8 * count * (3 * mu.size + 8), f"count = {count} (count x {mu.size} directions)",
                   "choose a smaller count")
    mu = mu / np.linalg.norm(mu)
    p1 = mu.size - 1.0
    b = p1 / (2.0 * kappa + np.sqrt(4.0 * kappa**2 + p1**2))  # Wood's b, in its cancellation-free form
    x0 = (1.0 - b) / (1.0 + b)
    c = kappa * x0 + p1 * np.log1p(-x0 * x0)
    t = np.empty(count)
    todo = np.arange(count)
    while todo.size:  # acceptance probability is above 1/2 for every d and kappa
        z = rng.beta(0.5 * p1, 0.5 * p1, size=todo.size)
        cand = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z)
        ok = kappa * cand + p1 * np.log1p(-x0 * cand) - c >= np.log(rng.random(todo.size))
        t[todo[ok]] = cand[ok]
        todo = todo[~ok]
    u = rng.standard_normal((count, mu.size))
    # Projecting off mu once leaves a mu-component of order eps |u| / |u_perp| when u is nearly
    # parallel to mu (then |v| misses 1 by ~1e-12); a second projection removes it (Gram-Schmidt
    # twice is enough), so mu^T u is a few eps after normalising and |v| = 1 to rounding.
    for _ in range(2):
        u -= np.outer(u @ mu, mu)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return t[:, None] * mu + np.sqrt(np.clip(1.0 - t * t, 0.0, None))[:, None] * u


def _log_mean_exp_tilt(kappa: float, d: int) -> float:
    """``log E_v[exp(kappa t)]``, ``t = mu^T v``, v uniform on the sphere of R^d:
    ``log(Gamma(d/2) (2/kappa)^(d/2 - 1) I_{d/2 - 1}(kappa))``."""
    from scipy.special import gammaln, ive

    nu = 0.5 * d - 1.0
    return float(gammaln(0.5 * d) + nu * np.log(2.0 / kappa) + np.log(ive(nu, kappa)) + kappa)


PROPOSALS = ("tilted", "uniform")


def linear_periodic_variance(w, r: float, rng, targets: int = 4096, sigma: float = 1.0,
                             proposal: str = "uniform") -> VarianceEstimate:
    """Monte Carlo estimate of ``Var(H, F, w)`` of Theorem 2 for ``H = {cos(r v^T x): ||v|| = 1}``,
    v uniform on the sphere, square loss, predictor ``cos(w^T x)``.

    The gradient for each target is exact (:func:`cos_predictor_gradients`); the expectation over
    the direction v is Monte Carlo over ``targets`` directions. Only the v-dependent part of the
    gradient, ``s2 c u(v)`` with ``u = w cosh(a) - r v sinh(a)``, ``a = s2 r w^T v``,
    ``c = e^{-s2 (||w||^2 + r^2) / 2}``, ``s2 = sigma^2``, is centred, and ``(s2 c)^2`` is applied
    at the end: centring the whole gradient would leave a rounding floor of order
    ``(eps ||w|| e^{-2 s2 ||w||^2})^2`` (about 3e-29 at ``||w|| = 1``) under the true value.

    ``||u||^2`` grows like ``e^{2 |a|}``, so when ``r ||w||`` is large the variance is carried by
    the few directions near ``+-w / ||w||``, which uniform sampling rarely draws (its mean then
    falls orders of magnitude below the true value). ``proposal="tilted"`` draws v from the
    defensive mixture ``q = 0.1 uniform + 0.45 vMF(w/||w||, kappa) + 0.45 vMF(-w/||w||, kappa)``,
    ``kappa = 2 s2 r ||w||`` (the tilt of ``||u||^2``), and weights each draw by the density ratio
    ``p/q <= 10``: use it whenever ``r ||w||`` is more than a few. ``"uniform"`` (the default, plain
    Monte Carlo) samples v uniformly with :func:`sphere_directions`.

    Estimate: ``A - (||B||^2 - S/m)`` with ``A = mean(omega ||u||^2)``, ``B = mean(omega u)`` and
    ``S`` the sample variance of ``omega u`` (unbiased; for the uniform proposal it is the usual
    sample variance with ``m - 1``), times ``(s2 c)^2``. Standard error from the delta method,
    the spread of ``omega ||u||^2 - 2 B^T (omega u)``.

    Parameters
    ----------
    w : array_like (d,)
        The predictor's weights, d >= 2 for ``"tilted"``.
    r : float
        Frequency ``||v*||``, > 0.
    rng : Generator, SeedSequence or seed
    targets : int
        Number of directions m, at least 2.
    sigma : float
        Input scale, ``x ~ N(0, sigma^2 I)``.
    proposal : {"tilted", "uniform"}

    Returns
    -------
    VarianceEstimate

    Raises
    ------
    ValueError
        If ``targets < 2``, ``w`` is not a finite vector, or ``w`` has fewer than 2 coordinates
        with ``proposal="tilted"``.
    """
    rng = generator(rng)
    r, sigma = positive_float(r, "r"), positive_float(sigma, "sigma")
    m = positive_int(targets, "targets")
    choice(proposal, "proposal", PROPOSALS)
    if m < 2:
        raise ValueError(f"targets must be at least 2, got {m}")
    w = real_array(w, "w")
    if w.ndim != 1 or not np.all(np.isfinite(w)):
        raise ValueError(f"w must be a finite vector (d,), got shape {w.shape}")
    fits_in_memory(8 * m * (6 * w.size + 10), f"targets = {m} (targets x {w.size} directions and gradients)",
                   "choose fewer targets")
    d, s2, w_norm = w.size, sigma**2, float(np.linalg.norm(w))
    kappa = 2.0 * s2 * r * w_norm
    if proposal == "tilted" and kappa > 1e-8:
        if d < 2:
            raise ValueError(f"w must have at least 2 coordinates for the tilted proposal, got {d}")
        mu = w / w_norm
        n_uniform = rng.binomial(m, 0.1)
        signs = np.where(rng.random(m - n_uniform) < 0.5, 1.0, -1.0)
        V = np.concatenate([sphere_directions(rng, n_uniform, d) if n_uniform else np.empty((0, d)),
                            signs[:, None] * von_mises_fisher_directions(rng, m - n_uniform, mu, kappa)])
        t = V @ mu
        log_norm = _log_mean_exp_tilt(kappa, d)
        # q / p = 0.1 + 0.9 cosh(kappa t) / E[exp(kappa t)]
        tilt = 0.5 * (np.exp(kappa * t - log_norm) + np.exp(-kappa * t - log_norm))
        omega = 1.0 / (0.1 + 0.9 * tilt)
    else:
        V = sphere_directions(rng, m, d)
        omega = np.ones(m)
    # u times e^{-h}, h = s2 r ||w|| >= |a|: cosh and sinh of |a| up to a few hundred stay finite
    a, h = s2 * r * (V @ w), 0.5 * kappa
    ep, em = np.exp(a - h), np.exp(-a - h)
    u = w[None, :] * (0.5 * (ep + em))[:, None] - r * V * (0.5 * (ep - em))[:, None]
    wu = omega[:, None] * u
    A = np.mean(omega * _sq(u))
    B = wu.mean(axis=0)
    S = float(_sq(wu - B).sum() / (m - 1))
    value = A - (float(B @ B) - S / m)
    influence = omega * _sq(u) - 2.0 * (wu @ B)
    scale = (s2 * np.exp(-0.5 * s2 * (w_norm**2 + r * r) + h)) ** 2
    return VarianceEstimate(value=float(scale * value), stderr=float(scale * influence.std(ddof=1) / np.sqrt(m)))


@lru_cache(maxsize=8)
def _angle_nodes(n: int):
    from scipy.special import roots_legendre

    x, wt = roots_legendre(n)
    return 0.5 * np.pi * (x + 1.0), 0.5 * np.pi * wt


def exact_linear_periodic_variance(w_norm: float, r: float, d: int, nodes: int = 2000,
                                   sigma: float = 1.0, harmonics: dict | None = None) -> float:
    """``Var(H, F, w)`` of Theorem 2 over ``h_v = psi(r v^T x)``, v uniform on the sphere of R^d,
    predictor ``cos(w^T x)``, ``x ~ N(0, sigma^2 I)``, square loss: exact up to quadrature.

    ``psi = cos`` by default, or the even periodic ``psi(z) = sum_m c_m cos(m z)`` given as
    ``harmonics = {m: c_m}``. For one harmonic the v-dependent part of the gradient is
    ``c_m s2 e_m [w cosh(a_m) - m r v sinh(a_m)]`` with ``a_m = s2 m r w^T v``,
    ``e_m = e^{-s2 (|w|^2 + m^2 r^2) / 2}``, ``s2 = sigma^2``. Writing ``t = w^T v / |w|`` and
    ``v = t w/|w| + sqrt(1 - t^2) u``, ``u`` a unit vector orthogonal to w, the component along
    w is ``A(t) = sum_m c_m s2 e_m (|w| C_m - m r t S_m)`` and the orthogonal one has norm
    ``P(t) = sum_m c_m s2 e_m m r sqrt(1 - t^2) S_m`` (``C_m, S_m = cosh, sinh(s2 m r |w| t)``), so

        Var = E_t[(A - E_t A)^2 + P^2],

    with ``t = cos(theta)``, ``theta`` of density proportional to ``sin(theta)^(d-2)`` on
    ``[0, pi]``: a 1-D integral, by Gauss-Legendre quadrature in ``theta``. The variance depends
    on w only through ``|w|``. :func:`linear_periodic_variance` is the Monte Carlo estimate of
    the same quantity (``psi = cos``) from full gradient vectors.

    Parameters
    ----------
    w_norm : float
        ``|w|`` of the predictor, > 0.
    r : float
        Target frequency ``|v*|``, > 0.
    d : int
        Dimension, at least 2.
    nodes : int
        Gauss-Legendre nodes on ``theta``, at least ``8 sqrt(d)`` (necessary to resolve the density).
    sigma : float
        Input scale.
    harmonics : dict {int: float}, optional
        Cosine coefficients ``{m: c_m}`` of psi (positive integers m, finite non-zero c_m);
        default ``{1: 1.0}``.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``harmonics`` is not a non-empty dict.
    ValueError
        If ``d < 2``, ``nodes < 8 sqrt(d)``, or a coefficient ``c_m`` is zero.
    """
    w_norm, r = positive_float(w_norm, "w_norm"), positive_float(r, "r")
    d, nodes = positive_int(d, "d"), positive_int(nodes, "nodes")
    sigma = positive_float(sigma, "sigma")
    if d < 2:
        raise ValueError(f"d must be at least 2 (directions on a sphere in R^d), got {d}")
    if nodes < 8 * math.sqrt(d):  # the density's peak at theta = pi/2 has width ~ 1/sqrt(d)
        raise ValueError(f"nodes must be at least 8 sqrt(d) = {math.ceil(8 * math.sqrt(d)):.4g} for d = {d}: "
                         f"fewer do not resolve the density sin(theta)^(d-2) (at 4 sqrt(d) the result is off "
                         f"by 1e-4 relative), got {nodes}")
    fits_in_memory(8 * 16 * nodes, f"nodes = {nodes} (about 16 arrays of nodes floats)", "choose fewer nodes")
    harmonics = {1: 1.0} if harmonics is None else harmonics
    if not isinstance(harmonics, dict) or not harmonics:
        raise TypeError(f"harmonics must be a non-empty dict {{m: c_m}}, got {harmonics!r}")
    for m, c in harmonics.items():
        positive_int(m, "every harmonic m")
        if finite_float(c, "every coefficient c_m") == 0:
            raise ValueError(f"every coefficient c_m must be a finite non-zero number, got {c!r} for m = {m}")
    theta, wt = _angle_nodes(nodes)
    t = np.cos(theta)
    dens = wt * np.sin(theta) ** (d - 2)
    dens = dens / dens.sum()
    s2 = sigma**2
    along, perp = np.zeros_like(t), np.zeros_like(t)
    for m, c in harmonics.items():
        # c s2 e cosh and c s2 e sinh from exponentials of the summed exponents: no overflow
        base = -0.5 * s2 * (w_norm**2 + (m * r) ** 2) + np.log(s2 * abs(c))
        a = s2 * m * r * w_norm * t
        ep, em = np.exp(base + a), np.exp(base - a)
        cC, cS = np.copysign(0.5, c) * (ep + em), np.copysign(0.5, c) * (ep - em)
        along += w_norm * cC - m * r * t * cS
        perp += m * r * np.sqrt(1.0 - t * t) * cS
    mean = dens @ along
    return float(dens @ ((along - mean) ** 2 + perp**2))
