"""The talk's linear-periodic landscape and gradient descent on it (paper Sec. 2.2, talk part 4).

``F(w) = E_x[(cos(w^T x) - cos(b^T x))^2]`` in 2-D, ``b = [2, 2]``, ``x ~ N(0, I)``. The closed
form (:func:`failgeom.theory.periodic.periodic_landscape`) is

    F(w) = 1 + e^{-16}/2 + e^{-2||w||^2}/2 - e^{-||w - b||^2/2} - e^{-||w + b||^2/2},

a plateau at height about 1 with two narrow Gaussian wells at ``+-b`` and a bump at the origin.
Away from the wells the gradient decays like ``rho e^{-rho^2/2}`` with the distance ``rho`` to
the nearest optimum, so gradient descent from a far start does not move in any practical number
of steps, and stochastic gradients there are pure noise.

This module finds the landscape's critical points (Newton on the closed-form gradient from every
local minimum of ``||grad F||`` on a grid), and runs exact and stochastic gradient descent from a
grid of starting points, the starting points forming the replica axis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..results import Result
from ..theory.periodic import periodic_landscape, periodic_landscape_gradient
from ..training import null_progress, seed_streams
from . import register
from .base import Experiment, ExperimentConfig


@dataclass(frozen=True)
class LandscapeConfig(ExperimentConfig):
    """Settings of the 2-D landscape experiment (the talk gives only F; GD settings are ours).

    ``replicas`` is the number of independent stochastic-gradient runs from each starting point.
    """

    target: tuple[float, ...] = (2.0, 2.0)
    extent: float = 7.0
    plot_points: int = 281
    critical_points_grid: int = 401
    starts_per_axis: int = 41
    steps: int = 20_000
    lr: float = 0.5
    sgd_starts_per_axis: int = 31
    sgd_batch: int = 16
    tolerance: float = 0.1
    distance_bin: float = 0.5
    replicas: int = 1
    dtype: str = "float64"

    positive = ("replicas", "extent", "plot_points", "critical_points_grid", "starts_per_axis",
                "steps", "lr", "sgd_starts_per_axis", "sgd_batch", "tolerance", "distance_bin")

    def check(self) -> None:
        if self.dtype != "float64":
            raise ValueError(f"dtype must be float64 (closed forms in float64), got {self.dtype!r}")
        if len(self.target) != 2:
            raise ValueError(f"target must have 2 coordinates (the talk's 2-D landscape), got {self.target!r}")
        if not any(self.target):
            raise ValueError("target must be non-zero")
        for name in ("plot_points", "critical_points_grid", "starts_per_axis", "sgd_starts_per_axis"):
            if getattr(self, name) < 3:
                raise ValueError(f"{name} must be at least 3, got {getattr(self, name)}")


PRESETS = {
    # the talk gives no optimizer settings: a wider box, finer grids, 5x the steps, 2 SGD runs per start
    "paper": LandscapeConfig(extent=8.0, plot_points=401, critical_points_grid=801, starts_per_axis=61,
                             steps=50_000, sgd_starts_per_axis=31, replicas=2),
    # 10,000 steps keep the run well under a minute; the reach radius moves only like
    # sqrt(2 log(lr * steps))
    "quick": LandscapeConfig(steps=10_000, sgd_starts_per_axis=21),
}


# --------------------------------------------------------------------------------------------
# Critical points


def landscape_hessian(w, target=(2.0, 2.0), h: float = 1e-5) -> np.ndarray:
    """Hessian of F at points ``w`` ``(..., 2)`` by central differences of the closed-form gradient."""
    w = np.asarray(w, dtype=np.float64)
    cols = []
    for i in range(w.shape[-1]):
        e = np.zeros(w.shape[-1])
        e[i] = h
        cols.append((periodic_landscape_gradient(w + e, target) - periodic_landscape_gradient(w - e, target)) / (2 * h))
    H = np.stack(cols, axis=-1)
    return 0.5 * (H + np.swapaxes(H, -1, -2))


def critical_points(target=(2.0, 2.0), extent: float = 7.0, points: int = 401, *, tol: float = 1e-11):
    """All critical points of F inside ``[-extent, extent]^2`` that a grid of that size resolves.

    Candidates are the interior grid points where ``||grad F||`` is a local minimum over the 8
    neighbours; each is refined by Newton's method on the closed-form gradient, kept if it
    converges inside the box to ``||grad F|| < tol``, and classified by the Hessian's eigenvalues.

    Returns
    -------
    list of dict
        ``{"w": [w1, w2], "F": F(w), "grad_norm": ..., "hessian_eigenvalues": [l1, l2],
        "kind": "minimum" | "maximum" | "saddle" | "degenerate"}``, sorted by F.
    """
    axis = np.linspace(-extent, extent, points)
    W = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    g = np.linalg.norm(periodic_landscape_gradient(W, target), axis=-1)
    centre = g[1:-1, 1:-1]
    is_min = np.ones_like(centre, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                is_min &= centre <= g[1 + di : points - 1 + di, 1 + dj : points - 1 + dj]
    cand = W[1:-1, 1:-1][is_min]
    found: list[np.ndarray] = []
    for w in cand:  # a handful of candidates; Newton per point is set-up work, not training
        for _ in range(100):
            step = np.linalg.lstsq(landscape_hessian(w, target), periodic_landscape_gradient(w, target), rcond=None)[0]
            w = w - step
            if not np.all(np.isfinite(w)) or np.abs(w).max() > extent:
                break
            if np.linalg.norm(step) < 1e-14:
                break
        if np.all(np.isfinite(w)) and np.abs(w).max() <= extent \
                and np.linalg.norm(periodic_landscape_gradient(w, target)) < tol \
                and not any(np.linalg.norm(w - f) < 1e-6 for f in found):
            found.append(w)
    out = []
    for w in found:
        eig = np.linalg.eigvalsh(landscape_hessian(w, target))
        if np.all(np.abs(eig) > 1e-8):
            kind = "minimum" if eig.min() > 0 else "maximum" if eig.max() < 0 else "saddle"
        else:
            kind = "degenerate"
        out.append({"w": w.tolist(), "F": float(periodic_landscape(w, target)),
                    "grad_norm": float(np.linalg.norm(periodic_landscape_gradient(w, target))),
                    "hessian_eigenvalues": eig.tolist(), "kind": kind})
    return sorted(out, key=lambda c: c["F"])


def grid_local_minima(target=(2.0, 2.0), extent: float = 4.5, points: int = 901) -> np.ndarray:
    """Interior grid points where F is strictly below all 8 neighbours, shape ``(k, 2)``.

    Keep ``extent`` where float64 resolves F (within about 8 of an optimum: beyond that
    ``e^{-rho^2/2}`` is below the rounding of F near 1 and neighbours tie).
    """
    axis = np.linspace(-extent, extent, points)
    W = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    F = periodic_landscape(W, target)
    c = F[1:-1, 1:-1]
    strict = np.ones_like(c, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                strict &= c < F[1 + di : points - 1 + di, 1 + dj : points - 1 + dj]
    return W[1:-1, 1:-1][strict]


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


# --------------------------------------------------------------------------------------------
# Gradient descent, the starting points on the replica axis


def start_grid(extent: float, per_axis: int) -> np.ndarray:
    """Starting points on a ``per_axis x per_axis`` grid over ``[-extent, extent]^2``, ``(R, 2)``."""
    axis = np.linspace(-extent, extent, per_axis)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)


def distance_to_optimum(w, target) -> np.ndarray:
    """Distance to the nearest global minimum ``+-b``, shape ``(...)``."""
    b = np.asarray(target, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    return np.minimum(np.linalg.norm(w - b, axis=-1), np.linalg.norm(w + b, axis=-1))


def stochastic_gradient(w, x, target) -> np.ndarray:
    """Minibatch gradient of ``(cos(w^T x) - cos(b^T x))^2``: ``mean_B 2 (p - h) (-sin(w^T x)) x``.

    ``w`` ``(R, 2)``, ``x`` ``(R, B, 2)`` (each replica its own samples); returns ``(R, 2)``.
    An unbiased estimate of :func:`~failgeom.theory.periodic.periodic_landscape_gradient`.
    """
    b = np.asarray(target, dtype=w.dtype)
    wx = np.einsum("rbi,ri->rb", x, w)
    coef = -2.0 * (np.cos(wx) - np.cos(x @ b)) * np.sin(wx)
    return np.einsum("rb,rbi->ri", coef, x) / x.shape[1]


def gradient_descent(starts, target, lr: float, steps: int, tolerance: float, *, rng=None,
                     batch: int | None = None, progress=null_progress, desc: str = "GD"):
    """Exact (``rng=None``) or stochastic gradient descent from every start at once.

    Parameters
    ----------
    starts : ndarray (R, 2)
        Starting points (the replica axis).
    target : sequence of 2 floats
        ``b``.
    lr : float
    steps : int
    tolerance : float
        A run counts as reaching the optimum at the first step within ``tolerance`` of ``+-b``.
    rng : numpy.random.Generator, optional
        With ``batch``: fresh Gaussian samples ``(R, batch, 2)`` each step (SGD).

    Returns
    -------
    final : ndarray (R, 2)
    hit_step : ndarray (R,)
        First step within ``tolerance`` of an optimum, -1 if never.
    """
    w = np.array(starts, dtype=np.float64)
    hit = np.where(distance_to_optimum(w, target) < tolerance, 0, -1)
    bar = progress(steps, desc)
    try:
        for step in range(1, steps + 1):
            if rng is None:
                g = periodic_landscape_gradient(w, target)
            else:
                g = stochastic_gradient(w, rng.standard_normal((w.shape[0], batch, w.shape[1])), target)
            w -= lr * g
            newly = (hit < 0) & (distance_to_optimum(w, target) < tolerance)
            hit[newly] = step
            bar.update(1)
    finally:
        bar.close()
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


# --------------------------------------------------------------------------------------------


def run(config: LandscapeConfig, seed: int = 0, progress=null_progress, preset: str = "custom") -> Result:
    """Critical points, flatness, and exact/stochastic GD success vs starting distance."""
    config.validate()
    b = np.asarray(config.target, dtype=np.float64)
    timing, metrics, curves = {}, {}, {}

    start = time.perf_counter()
    crit = critical_points(b, config.extent, config.critical_points_grid)
    grid_min = grid_local_minima(b, min(config.extent, 4.5), 2 * config.critical_points_grid + 1)
    axis = np.linspace(-config.extent, config.extent, config.plot_points)
    Wp = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    gnorm = np.linalg.norm(periodic_landscape_gradient(Wp, b), axis=-1)
    metrics["critical_points"] = crit
    metrics["critical_point_counts"] = {k: sum(c["kind"] == k for c in crit)
                                        for k in ("minimum", "maximum", "saddle", "degenerate")}
    metrics["grid_local_minima"] = grid_min.tolist()
    metrics["plateau_F_far"] = float(periodic_landscape(np.array([config.extent, -config.extent]), b))
    metrics["flat_fraction"] = {f"grad<1e-{k}": float(np.mean(gnorm < 10.0**-k)) for k in (2, 4, 8)}
    timing["landscape_s"] = time.perf_counter() - start

    gd_ss, sgd_ss = seed_streams(seed, 7, 2).spawn(2)
    reach = reach_radius(config.lr, config.steps)
    metrics["predicted_reach_radius"] = reach
    for name, per_axis, rng, batch, reps in (
        ("exact", config.starts_per_axis, None, None, 1),
        ("sgd", config.sgd_starts_per_axis, np.random.default_rng(sgd_ss), config.sgd_batch, config.replicas),
    ):
        start = time.perf_counter()
        starts = np.tile(start_grid(config.extent, per_axis), (reps, 1))
        final, hit = gradient_descent(starts, b, config.lr, config.steps, config.tolerance, rng=rng,
                                      batch=batch, progress=progress, desc=f"landscape {name} GD")
        dist0 = distance_to_optimum(starts, b)
        reached = hit >= 0
        centres, frac, counts = fraction_by_distance(dist0, reached, config.distance_bin)
        curves[name] = {"distance": centres.tolist(), "fraction_reached": frac.tolist(), "count": counts.tolist()}
        moved = np.linalg.norm(final - starts, axis=1)
        reached_d = dist0[reached]
        failed_d = dist0[~reached]
        metrics[name] = {
            "starts": int(starts.shape[0]),
            "fraction_reached": float(reached.mean()),
            "max_start_distance_reached": float(reached_d.max()) if reached_d.size else None,
            "min_start_distance_failed": float(failed_d.min()) if failed_d.size else None,
            "fraction_final_within_tolerance": float(np.mean(distance_to_optimum(final, b) < config.tolerance)),
            "median_hit_step": float(np.median(hit[reached])) if reached.any() else None,
            "median_movement_of_failed": float(np.median(moved[~reached])) if (~reached).any() else None,
            "final_F_failed_median": (float(np.median(periodic_landscape(final[~reached], b)))
                                      if (~reached).any() else None),
        }
        timing[f"{name}_s"] = time.perf_counter() - start
    timing["total_s"] = sum(timing.values())
    return Result(experiment="linear-periodic-landscape", preset=preset, config=config.to_dict(),
                  seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics, curves=curves,
                  timing=timing)


def figure(result: Result):
    """Left: log10 ||grad F|| with contours of F and the critical points; right: fraction of
    exact/stochastic GD runs reaching the optimum vs the starting distance."""
    from matplotlib.colors import LogNorm

    from .. import plotting

    fig, axes = plotting.figure(1, 2, width=4.3, height=3.6)
    ax = axes[0, 0]
    cfg = result.config
    # the closed form is cheap: recompute the plotted grid rather than storing it in the result
    axis = np.linspace(-cfg["extent"], cfg["extent"], cfg["plot_points"])
    Wp = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    F = periodic_landscape(Wp, cfg["target"])
    g = np.maximum(np.linalg.norm(periodic_landscape_gradient(Wp, cfg["target"]), axis=-1), 1e-300)
    mesh = ax.pcolormesh(axis, axis, g.T, norm=LogNorm(vmin=max(g.min(), 1e-20), vmax=g.max()),
                         cmap="viridis", shading="auto", rasterized=True)
    fig.colorbar(mesh, ax=ax, label="||grad F(w)||", fraction=0.046, pad=0.03)
    ax.contour(axis, axis, F.T, levels=[0.2, 0.6, 0.9, 0.99, 1.1, 1.3],
               colors="white", linewidths=0.5)
    markers = {"minimum": ("*", "#ffffff"), "saddle": ("x", "#ff6f61"), "maximum": ("^", "#ffcc00"),
               "degenerate": ("o", "#ff00ff")}
    for kind, (mk, col) in markers.items():
        pts = np.array([c["w"] for c in result.metrics["critical_points"] if c["kind"] == kind]).reshape(-1, 2)
        if pts.size:
            ax.scatter(pts[:, 0], pts[:, 1], marker=mk, color=col, s=40, label=kind, zorder=3)
    ax.legend(loc="lower right", fontsize=7, facecolor="#333333", framealpha=0.6, frameon=True, labelcolor="white")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    ax.set_aspect("equal")
    ax.grid(False)
    ax.set_title("F(w) = E[(cos(w^T x) - cos([2,2]^T x))^2]", fontsize=8)

    ax = axes[0, 1]
    for name, col, label in (("exact", plotting.COLORS["blue"], "exact GD"),
                             ("sgd", plotting.COLORS["red"], f"SGD (batch {cfg['sgd_batch']})")):
        c = result.curves[name]
        ax.plot(c["distance"], c["fraction_reached"], "o-", ms=3, color=col, label=label)
    ax.axvline(result.metrics["predicted_reach_radius"], color=plotting.COLORS["grey"], ls="--", lw=0.9,
               label="reach radius (gradient flow)")
    ax.set_xlabel("starting distance to the nearest optimum +-b")
    ax.set_ylabel(f"fraction within {cfg['tolerance']} of +-b")
    ax.set_title(f"{cfg['steps']:,} steps, lr {cfg['lr']}", fontsize=8)
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def summary(result: Result) -> str:
    m = result.metrics
    counts = m["critical_point_counts"]
    return (f"critical points: {counts['minimum']} minima, {counts['saddle']} saddles, "
            f"{counts['maximum']} maxima; exact GD reached from {m['exact']['fraction_reached']:.2f} "
            f"of starts (farthest {m['exact']['max_start_distance_reached']}), SGD "
            f"{m['sgd']['fraction_reached']:.2f}; predicted reach radius {m['predicted_reach_radius']:.2f}")


EXPERIMENT = register(Experiment(
    name="linear-periodic-landscape",
    description="talk's 2-D landscape cos(w^T x) vs cos([2,2]^T x): flat plateau, narrow wells; GD from far fails",
    presets=PRESETS, run=run, figure=figure, summary=summary, family=1,
    paper_ref="Sec. 2.2, talk part 4",
))
