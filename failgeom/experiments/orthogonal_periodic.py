"""Gradient variance over linear-periodic targets (paper Sec. 2.2, Theorem 2 after Shamir 2016).

Targets ``h_v(x) = cos(r v^T x)``, ``v`` uniform on the unit sphere of R^d, inputs
``x ~ N(0, I_d)``, predictor ``p_w(x) = cos(w^T x)``, square loss ``0.5 (p - h)^2``. Theorem 2:
``Var(H, F, w) <= O(exp(-Omega(d)) + exp(-Omega(r)))`` for every ``w``.

Each point is computed twice: exactly, by a 1-D quadrature over the angle between v and w
(:func:`failgeom.theory.periodic.exact_linear_periodic_variance`), and by Monte Carlo over v from
full gradient vectors (:func:`failgeom.theory.periodic.linear_periodic_variance`, importance
sampled towards ``+-w/|w|`` by default, where the variance sits when ``r |w|`` is large). The
variance depends on w only through ``|w|``. Two predictors: ``|w| = 1`` ("unit", the scale of the
paper's initialisation) and ``|w| = r`` ("matched", at the target's frequency, where the gradient
is informative for the few v near ``w / |w|``). Cells: one curve each (vs r at fixed d, vs d at
each fixed r), per predictor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..results import Result
from ..theory.periodic import PROPOSALS, exact_linear_periodic_variance, linear_periodic_variance
from ..theory.scaling import fit_exponent, fit_exponential_rate
from ..training import seed_streams
from . import register
from .base import Cell, Experiment, ExperimentConfig, param

PREDICTORS = ("unit", "matched")
NAME = "linear-periodic-variance"
#: Smallest frequency r: below about 1e-8 the variance's closed form cancels to 0 in float64
#: (``1 - e^{-r^2 ...}``), and the rate fits need positive values and distinct abscissae.
R_MIN = 1e-6


@dataclass(frozen=True)
class PeriodicVarianceConfig(ExperimentConfig):
    """Ranges of r and d; ``replicas`` independent Monte Carlo estimates per point."""

    radii: tuple[float, ...] = param(tuple(float(r) for r in np.arange(1.0, 12.5, 0.5)), low=R_MIN,
                                     high=20.0, doc="frequencies r of the curve vs r (float64 underflows beyond 20)")
    radius_dim: int = param(10, low=2, doc="dimension d of the curve vs r")
    dims: tuple[int, ...] = param((2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128), low=2,
                                  doc="dimensions d of the curves vs d")
    dim_radii: tuple[float, ...] = param((4.0, 8.0), low=R_MIN, high=20.0,
                                         doc="frequencies r of the curves vs d (one curve each)")
    mc_targets: int = param(16_384, low=2, doc="directions v per Monte Carlo estimate")
    mc_proposal: str = param("tilted", choices=PROPOSALS,
                             doc="how the Monte Carlo draws v: tilted towards +-w/|w| (importance sampling) or uniform")
    quadrature_nodes: int = param(2_000, low=16, doc="Gauss-Legendre nodes of the exact variance")
    replicas: int = param(5, low=1, doc="independent Monte Carlo estimates per point")
    dtype: str = param("float64", choices=("float64",), doc="closed forms are evaluated in float64")

    def check(self) -> None:
        if len(self.radii) < 3 or len(self.dims) < 3:
            raise ValueError("radii and dims must hold at least 3 values each, to fit a rate")
        for name in ("radii", "dims", "dim_radii"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be distinct, got {values!r}")
        d = max(self.radius_dim, *self.dims)
        if self.quadrature_nodes < 8 * math.sqrt(d):  # what exact_linear_periodic_variance needs
            raise ValueError(f"quadrature_nodes must be at least 8 sqrt(d) = {math.ceil(8 * math.sqrt(d))} "
                             f"for the largest d = {d}, got {self.quadrature_nodes}")

    def memory_bytes(self) -> int:
        # and one Generator per replica (with its PCG64 state, about 2 KiB)
        return (10 * 8 * self.mc_targets * max(self.radius_dim, *self.dims) + 8 * 8 * self.quadrature_nodes
                + 2048 * self.replicas)


PRESETS = {
    "paper": PeriodicVarianceConfig(),
    "quick": PeriodicVarianceConfig(radii=tuple(float(r) for r in range(1, 11)),
                                    dims=(2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
                                    mc_targets=4096, replicas=3),
}

#: runs in about a second (stream-distinctness and merge tests)
TINY = PeriodicVarianceConfig(radii=(1.0, 2.0, 3.0), dims=(2, 4, 8), dim_radii=(4.0,), mc_targets=256,
                              replicas=2, quadrature_nodes=200)


def _w_norm(predictor: str, r: float) -> float:
    return 1.0 if predictor == "unit" else float(r)


def monte_carlo_estimates(w_norm: float, r: float, d: int, config: PeriodicVarianceConfig, streams) -> dict:
    """``config.replicas`` Monte Carlo estimates, one Generator each from ``streams``: a random
    direction of w of norm ``w_norm``, then :func:`linear_periodic_variance`."""
    vals, errs = [], []
    for rng in streams.generators(config.replicas):  # set-up loop over a few estimates
        w = rng.standard_normal(d)
        w *= w_norm / np.linalg.norm(w)
        est = linear_periodic_variance(w, r, rng, targets=config.mc_targets, proposal=config.mc_proposal)
        vals.append(est.value)
        errs.append(est.stderr)
    return {"mc": vals, "mc_stderr": errs}


def mean_stderr(stderrs) -> np.ndarray:
    """Standard error of the mean of independent estimates ``(n, R)`` with the given errors, ``(n,)``."""
    se = np.asarray(stderrs, dtype=np.float64)
    return np.sqrt(np.sum(se**2, axis=1)) / se.shape[1]


def _r_key(r: float) -> str:
    return f"r={float(r)!r}"


def cells(config: PeriodicVarianceConfig) -> list[tuple]:
    """Per predictor: the curve vs r, ``("vs_r", predictor)``, and one curve vs d per fixed r,
    ``("vs_d", predictor, "r=<r>")``."""
    out: list[tuple] = []
    for pred in PREDICTORS:
        out.append(("vs_r", pred))
        out += [("vs_d", pred, _r_key(r)) for r in config.dim_radii]
    return out


def _curve(config: PeriodicVarianceConfig, cell: Cell, points: list[tuple[int, float]]) -> dict:
    """Exact and Monte Carlo variance at each ``(d, r)`` of one curve; streams keyed by the point."""
    kind, pred = cell.key[0], cell.key[1]
    if pred not in PREDICTORS:
        raise ValueError(f"unknown linear-periodic-variance cell {cell.key!r}")
    exact, mc, err = [], [], []
    bar = cell.progress(len(points), f"{NAME} {' '.join(cell.key)}")
    for d, r in points:
        wn = _w_norm(pred, r)
        exact.append(exact_linear_periodic_variance(wn, r, d, config.quadrature_nodes))
        est = monte_carlo_estimates(wn, r, d, config, seed_streams(cell.seed, NAME, kind, pred, f"d={d}", _r_key(r)))
        mc.append(est["mc"])
        err.append(est["mc_stderr"])
        bar.update(1)
    bar.close()
    return {"exact": exact, "mc": mc, "mc_stderr": err}


def run_vs_r(config: PeriodicVarianceConfig, cell: Cell) -> dict:
    """The curve vs r at ``d = radius_dim`` of one predictor."""
    points = [(config.radius_dim, float(r)) for r in config.radii]
    out: dict[str, Any] = _curve(config, cell, points)
    out.update(r=[r for _, r in points], d=config.radius_dim)
    return out


def run_vs_d(config: PeriodicVarianceConfig, cell: Cell) -> dict:
    """The curve vs d at one fixed r of one predictor."""
    (r,) = [r for r in config.dim_radii if _r_key(r) == cell.key[2]]
    points = [(int(d), float(r)) for d in config.dims]
    out: dict[str, Any] = _curve(config, cell, points)
    out.update(d=[d for d, _ in points], r=points[0][1])
    return out


def merge(config: PeriodicVarianceConfig, outputs: dict) -> dict:
    """The curves with fitted decay rates and the agreement of Monte Carlo with the exact values."""
    metrics: dict[str, Any]
    curves, metrics = {}, {"fits": {}}
    for key in cells(config):
        c = dict(outputs[key])
        c.pop("seconds", None)  # written by cells of an earlier version
        exact = np.asarray(c["exact"])
        if key[0] == "vs_r":
            name, radii = f"vs_r/{key[1]}", np.asarray(c["r"])
            metrics["fits"][name] = {"per_r": fit_exponential_rate(radii, exact).to_dict(rate=True),
                                     "per_r2": fit_exponential_rate(radii**2, exact).to_dict(rate=True),
                                     "power": fit_exponent(radii, exact).to_dict(rate=True)}
        else:
            name, dims = f"vs_d/{key[1]}/r={c['r']:g}", np.asarray(c["d"])
            metrics["fits"][name] = {"per_d": fit_exponential_rate(dims, exact).to_dict(rate=True),
                                     "power": fit_exponent(dims, exact).to_dict(rate=True)}
        se = mean_stderr(c["mc_stderr"])
        c["mc_z"] = ((np.asarray(c["mc"]).mean(axis=1) - exact) / np.maximum(se, 1e-300)).tolist()
        curves[name] = c
    z = np.concatenate([np.asarray(c["mc_z"]) for c in curves.values()])
    metrics["mc_agreement"] = {"proposal": config.mc_proposal, "points": int(z.size),
                               "max_abs_z": float(np.abs(z).max()),
                               "fraction_abs_z_below_3": float(np.mean(np.abs(z) < 3))}
    return {"metrics": metrics, "curves": curves}


_PRED_COLORS = {"unit": "blue", "matched": "red"}


def figure(result: Result):
    """Log variance vs r (at fixed d) and vs d (at fixed r): exact lines, Monte Carlo points
    (mean of the replicas, +-2 s.e.), and a note on how well the two agree."""
    from .. import plotting

    fig, axes = plotting.figure(1, 2, width=4.6, height=3.9)
    fits = result.metrics["fits"]
    styles = ["-", "--", ":"]
    for key, c in result.curves.items():
        kind, pred = key.split("/")[:2]
        ax = axes[0, 0] if kind == "vs_r" else axes[0, 1]
        x = np.asarray(c["r"] if kind == "vs_r" else c["d"], dtype=float)
        col = plotting.COLORS[_PRED_COLORS[pred]]
        label_w = "|w|=1" if pred == "unit" else "|w|=r"
        if kind == "vs_r":
            # |w| = 1 decays like e^{-r^2}: its rate is shown per unit r^2
            unit = "r^2" if pred == "unit" else "r"
            f = fits[key]["per_r2" if pred == "unit" else "per_r"]
            label = f"{label_w}: rate/{unit} {f['rate']:.2f} [{f['ci95'][0]:.2f}, {f['ci95'][1]:.2f}]"
            ls = "-"
        else:
            f = fits[key]["per_d"]
            j = result.config["dim_radii"].index(c["r"])
            ls = styles[j % 3]
            label = f"{label_w}, r={c['r']:g}: rate/d {f['rate']:.2f} [{f['ci95'][0]:.2f}, {f['ci95'][1]:.2f}]"
        ax.plot(x, c["exact"], ls, color=col, lw=1.2, label=label)
        se = mean_stderr(c["mc_stderr"])
        mean = np.asarray(c["mc"]).mean(axis=1)
        # a log axis cannot show a bar below zero: clip the lower bar at 90% of the value
        ax.errorbar(x, mean, yerr=[np.minimum(2 * se, 0.9 * np.abs(mean)), 2 * se], fmt="o", ms=2.5, color=col,
                    alpha=0.6, lw=0.8)
    axes[0, 0].set_xlabel("r = |v*|")
    axes[0, 0].set_title(f"vs r at d = {result.config['radius_dim']}")
    axes[0, 1].set_xlabel("d")
    axes[0, 1].set_xscale("log", base=2)
    axes[0, 1].set_title("vs d at fixed r")
    for ax in axes[0]:
        ax.set_yscale("log")
        ax.set_ylabel("Var over targets cos(r v^T x)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    agree = result.metrics["mc_agreement"]
    n = agree["points"]
    off = round((1 - agree["fraction_abs_z_below_3"]) * n)
    chance = n * 0.0027  # P(|z| > 3) for a normal z
    how = "v tilted towards +-w/|w|" if agree["proposal"] == "tilted" else "v uniform"
    text = (f"Monte Carlo ({how}): {off} of {n} points\nbeyond 3 s.e. of the exact line "
            f"(chance alone: {chance:.1f});\nmax |z| {agree['max_abs_z']:.3g}")
    disagrees = off > chance + 3 * np.sqrt(chance) + 1
    if disagrees and agree["proposal"] == "uniform":
        text += "; uniform v misses the rare\ndirections near +-w/|w| that carry Var"
    plotting.note(axes[0, 0], text, loc="lower left", color=plotting.COLORS["red"] if disagrees else "#333333")
    fig.suptitle(f"Theorem 2: lines exact (quadrature), points Monte Carlo over v "
                 f"(mean of {result.seeds['replicas']}, +-2 s.e.)")
    fig.tight_layout()
    return fig


def summary(result: Result) -> str:
    f = result.metrics["fits"]
    parts = [f"unit |w|: rate per r^2 {f['vs_r/unit']['per_r2']['rate']:.3f}"]
    for r in result.config["dim_radii"]:
        g = f[f"vs_d/matched/r={r:g}"]["per_d"]
        parts.append(f"matched r={r:g}: rate per d {g['rate']:.3f} [{g['ci95'][0]:.3f}, {g['ci95'][1]:.3f}]")
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name=NAME,
    description="gradient variance over targets cos(r v^T x) as r and d grow (Theorem 2)",
    presets=PRESETS, cells=cells, run_cell={"vs_r": run_vs_r, "vs_d": run_vs_d}, merge=merge, tiny=TINY, figure=figure,
    summary=summary, family=1, paper_ref="Sec. 2.2, Theorem 2",
))
