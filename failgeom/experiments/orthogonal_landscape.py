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
grid of starting points, the starting points forming the replica axis, and from random starts
(the package's initialiser, the plateau's edge) for success rates with intervals; the descent
itself lives in :mod:`failgeom.experiments.landscape_descent`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..results import Result
from ..theory.periodic import periodic_landscape, periodic_landscape_gradient
from ..training import seed_streams
from . import register
from .landscape_descent import (distance_to_optimum, flatness_profile, fraction_by_distance, gradient_descent,
                                initialiser_starts, plateau_edge_starts, reach_radius, success)
from .base import Cell, Experiment, ExperimentConfig, param

NAME = "linear-periodic-landscape"


@dataclass(frozen=True)
class LandscapeConfig(ExperimentConfig):
    """Settings of the 2-D landscape experiment (the talk gives only F; GD settings are ours)."""

    target: tuple[float, ...] = param((2.0, 2.0), low=-20.0, high=20.0, doc="b of the target cos(b^T x)")
    extent: float = param(7.0, low=0.0, low_open=True, high=50.0, doc="half-width of the box [-extent, extent]^2")
    plot_points: int = param(281, low=3, doc="grid points per axis of the plotted gradient norm")
    critical_points_grid: int = param(401, low=3, doc="grid points per axis of the critical-point search")
    starts_per_axis: int = param(41, low=3, doc="exact GD starting points per axis")
    steps: int = param(20_000, low=1, doc="gradient steps of every run")
    lr: float = param(0.5, low=0.0, low_open=True, high=100.0,
                      doc="step size of exact GD and SGD (at most 100: the loss is bounded, so a huge step "
                          "never ends in NonFiniteLossError; it overflows the iterate instead)")
    sgd_starts_per_axis: int = param(31, low=3, doc="SGD starting points per axis")
    sgd_batch: int = param(16, low=1, doc="fresh Gaussian samples per SGD step and run")
    tolerance: float = param(0.1, low=0.0, low_open=True, high=10.0, doc="distance to +-b that counts as reached")
    distance_bin: float = param(0.5, low=1e-3, high=10.0,
                                doc="width of the starting-distance bins (at most about 1e5 bins over the box)")
    replicas: int = param(1, low=1, doc="independent SGD runs from each starting point")
    init_starts: int = param(1_000, low=10,
                             doc="random starts for the success rates of exact GD and SGD, from the package's "
                                 "initialiser (truncated normal, std 1/sqrt(2), cut at 2 std) and from the "
                                 "plateau's edge (where ||grad F|| first stays below 1e-8)")
    sweep_lrs: tuple[float, ...] = param((0.1, 0.5, 1.0), low=0.0, low_open=True, high=1.9,
                                         doc="step sizes of the lr x batch sweep (below GD's stability edge 2 at "
                                             "the optimum)")
    sweep_batches: tuple[int, ...] = param((1, 16, 64), low=1, doc="SGD batches of the lr x batch sweep")
    sweep_starts: int = param(100, low=10, doc="plateau-edge starts per point of the lr x batch sweep")
    dtype: str = param("float64", choices=("float64",), doc="closed forms are evaluated in float64")

    def check(self) -> None:
        if len(self.target) != 2:
            raise ValueError(f"target must have 2 coordinates (the talk's 2-D landscape), got {self.target!r}")
        if not any(self.target):
            raise ValueError("target must be non-zero")
        for name in ("sweep_lrs", "sweep_batches"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ValueError(f"{name} must be a non-empty tuple of distinct values, got {values!r}")

    def memory_bytes(self) -> int:
        grid = max(self.plot_points, 2 * self.critical_points_grid + 1) ** 2 * 8 * 12
        sgd_runs = self.sgd_starts_per_axis**2 * self.replicas
        init_runs = self.init_starts * max(self.sgd_batch, 1) + self.sweep_starts * max(self.sweep_batches)
        return grid + (sgd_runs * self.sgd_batch + init_runs) * 8 * 12 + self.starts_per_axis**2 * 8 * 24


PRESETS = {
    # the talk gives no optimizer settings: a wider box, finer grids, 5x the steps, 2 SGD runs per start
    "paper": LandscapeConfig(extent=8.0, plot_points=401, critical_points_grid=801, starts_per_axis=61,
                             steps=50_000, sgd_starts_per_axis=31, replicas=2, init_starts=400, sweep_starts=50),
    # 10,000 steps keep the run well under a minute; the reach radius moves only like
    # sqrt(2 log(lr * steps))
    "quick": LandscapeConfig(steps=10_000, sgd_starts_per_axis=21, init_starts=100, sweep_starts=40),
}

#: runs in about a second (stream-distinctness and merge tests)
TINY = LandscapeConfig(plot_points=41, critical_points_grid=61, starts_per_axis=5, steps=40,
                       sgd_starts_per_axis=4, sgd_batch=4, init_starts=20, sweep_lrs=(0.5,), sweep_batches=(2,),
                       sweep_starts=10)


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


# --------------------------------------------------------------------------------------------
# Gradient descent, the starting points on the replica axis


def start_grid(extent: float, per_axis: int) -> np.ndarray:
    """Starting points on a ``per_axis x per_axis`` grid over ``[-extent, extent]^2``, ``(R, 2)``."""
    axis = np.linspace(-extent, extent, per_axis)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)


# --------------------------------------------------------------------------------------------


def cells(config: LandscapeConfig) -> list[tuple]:
    """The landscape's critical points and flatness, exact GD and SGD from the grid of starts,
    both from the initialiser's starts, and the lr x batch sweep (one cell per lr)."""
    rates = [(where, name) for where in ("init", "plateau") for name in ("exact", "sgd")]
    return [("landscape",), ("gd", "exact"), ("gd", "sgd"), *rates] + [("sweep", lr) for lr in config.sweep_lrs]


def _check(config: LandscapeConfig, key: tuple) -> None:
    if key not in cells(config):
        raise ValueError(f"unknown linear-periodic-landscape cell {key!r}")


def landscape_cell(config: LandscapeConfig, cell: Cell) -> dict:
    """Critical points, strict grid minima, the far plateau and the flat fraction of the box."""
    _check(config, cell.key)
    b = np.asarray(config.target, dtype=np.float64)
    crit = critical_points(b, config.extent, config.critical_points_grid)
    grid_min = grid_local_minima(b, min(config.extent, 4.5), 2 * config.critical_points_grid + 1)
    axis = np.linspace(-config.extent, config.extent, config.plot_points)
    Wp = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    gnorm = np.linalg.norm(periodic_landscape_gradient(Wp, b), axis=-1)
    return {
        "critical_points": crit,
        "critical_point_counts": {k: sum(c["kind"] == k for c in crit)
                                  for k in ("minimum", "maximum", "saddle", "degenerate")},
        "grid_local_minima": grid_min.tolist(),
        "plateau_F_far": float(periodic_landscape(np.array([config.extent, -config.extent]), b)),
        "flat_fraction": {f"grad<1e-{k}": float(np.mean(gnorm < 10.0**-k)) for k in (2, 4, 8)},
        "flatness": flatness_profile(b),
    }


def descent_cell(config: LandscapeConfig, cell: Cell) -> dict:
    """Exact GD (``("gd", "exact")``) or SGD (``("gd", "sgd")``, stream
    ``linear-periodic-landscape / sgd``) from the grid of starts: success by starting distance and
    summary metrics."""
    _check(config, cell.key)
    _, name = cell.key
    b = np.asarray(config.target, dtype=np.float64)
    if name == "exact":
        per_axis, rng, batch, reps = config.starts_per_axis, None, None, 1
    else:
        per_axis, batch, reps = config.sgd_starts_per_axis, config.sgd_batch, config.replicas
        rng = np.random.default_rng(seed_streams(cell.seed, NAME, "sgd"))
    starts = np.tile(start_grid(config.extent, per_axis), (reps, 1))
    final, hit = gradient_descent(starts, b, config.lr, config.steps, config.tolerance, rng=rng,
                                  batch=batch, progress=cell.progress, desc=f"landscape {name} GD")
    dist0 = distance_to_optimum(starts, b)
    reached = hit >= 0
    centres, frac, counts = fraction_by_distance(dist0, reached, config.distance_bin)
    moved = np.linalg.norm(final - starts, axis=1)
    reached_d, failed_d = dist0[reached], dist0[~reached]
    metrics = {
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
    curve = {"distance": centres.tolist(), "fraction_reached": frac.tolist(), "count": counts.tolist()}
    return {"curve": curve, "metrics": metrics}


def rate_cell(config: LandscapeConfig, cell: Cell) -> dict:
    """Exact GD or SGD (``(where, "exact" | "sgd")``, the config's lr and batch) from
    ``init_starts`` random starts of the initialiser (``where="init"``) or of the plateau's edge
    (``"plateau"``), each cell its own starts: the success rate with its interval."""
    _check(config, cell.key)
    where, name = cell.key
    seed = cell.seed
    b = np.asarray(config.target, dtype=np.float64)
    rng = np.random.default_rng(seed_streams(seed, NAME, f"{where}-starts", name))
    starts = (initialiser_starts(rng, config.init_starts) if where == "init"
              else plateau_edge_starts(rng, b, config.init_starts))
    sgd_rng, batch = None, None
    if name == "sgd":
        sgd_rng, batch = np.random.default_rng(seed_streams(seed, NAME, f"{where}-sgd")), config.sgd_batch
    _, hit = gradient_descent(starts, b, config.lr, config.steps, config.tolerance, rng=sgd_rng, batch=batch,
                              progress=cell.progress, desc=f"landscape {name} GD from the {where}",
                              stop_when_all_reached=True)
    out = success(hit >= 0)
    out["lr"], out["batch"] = config.lr, batch
    out["start_distance"] = float(np.median(distance_to_optimum(starts, b)))
    return out


def sweep_cell(config: LandscapeConfig, cell: Cell) -> dict:
    """At one step size (``("sweep", lr)``): exact GD and SGD at every batch of ``sweep_batches``
    from the same ``sweep_starts`` starts at the plateau's edge (one run per start and setting)."""
    _check(config, cell.key)
    _, lr = cell.key
    seed, progress = cell.seed, cell.progress
    b = np.asarray(config.target, dtype=np.float64)
    rng = np.random.default_rng(seed_streams(seed, NAME, "sweep-starts", f"lr={lr!r}"))
    starts = plateau_edge_starts(rng, b, config.sweep_starts)
    _, hit = gradient_descent(starts, b, lr, config.steps, config.tolerance, progress=progress,
                              desc=f"landscape sweep lr={lr:g} exact", stop_when_all_reached=True)
    out: dict[str, Any] = {"lr": lr, "exact": success(hit >= 0), "sgd": {}}
    for batch in config.sweep_batches:
        sgd_rng = np.random.default_rng(seed_streams(seed, NAME, "sweep", f"lr={lr!r}", batch))
        _, hit = gradient_descent(starts, b, lr, config.steps, config.tolerance, rng=sgd_rng, batch=batch,
                                  progress=progress, desc=f"landscape sweep lr={lr:g} batch {batch}",
                                  stop_when_all_reached=True)
        out["sgd"][str(batch)] = success(hit >= 0)
    return out


def merge(config: LandscapeConfig, outputs: dict) -> dict:
    """Critical points, flatness, and exact/stochastic GD success vs starting distance."""
    def cell(key):  # "seconds": written by cells of an earlier version
        return {k: v for k, v in outputs[key].items() if k != "seconds"}

    metrics, curves = cell(("landscape",)), {}
    metrics["predicted_reach_radius"] = reach_radius(config.lr, config.steps)
    for name in ("exact", "sgd"):
        out = outputs[("gd", name)]
        curves[name], metrics[name] = out["curve"], out["metrics"]
        for where in ("init", "plateau"):
            metrics.setdefault(f"from_{where}", {})[name] = cell((where, name))
    metrics["sweep"] = [cell(("sweep", lr)) for lr in config.sweep_lrs]
    return {"metrics": metrics, "curves": curves}


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
    ax.legend(loc="lower right", facecolor="#333333", framealpha=0.6, frameon=True, labelcolor="white")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    ax.set_aspect("equal")
    ax.grid(False)
    b = cfg["target"]
    ax.set_title(f"F(w) = E[(cos(w^T x) - cos([{b[0]:g},{b[1]:g}]^T x))^2]")

    ax = axes[0, 1]
    for name, col, label in (("exact", plotting.COLORS["blue"], "exact GD"),
                             ("sgd", plotting.COLORS["red"], f"SGD (batch {cfg['sgd_batch']})")):
        c = result.curves[name]
        ax.plot(c["distance"], c["fraction_reached"], "o-", ms=3, color=col, label=label)
    ax.axvline(result.metrics["predicted_reach_radius"], color=plotting.COLORS["grey"], ls="--", lw=0.9,
               label="reach radius (gradient flow)")
    ax.set_xlabel("starting distance to the nearest optimum +-b")
    ax.set_ylabel(f"fraction within {cfg['tolerance']} of +-b")
    ax.set_title(f"{cfg['steps']:,} steps, lr {cfg['lr']}")
    ax.set_ylim(-0.03, 1.03)
    ax.legend()
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
    name=NAME,
    description="talk's 2-D landscape cos(w^T x) vs cos([2,2]^T x): flat plateau, narrow wells; GD from far fails",
    presets=PRESETS, cells=cells, merge=merge,
    run_cell={"landscape": landscape_cell, "gd": descent_cell, "init": rate_cell, "plateau": rate_cell,
              "sweep": sweep_cell}, tiny=TINY, figure=figure,
    summary=summary, family=1, paper_ref="Sec. 2.2, talk part 4",
))
