"""Gradient variance over linear-periodic targets (paper Sec. 2.2, Theorem 2 after Shamir 2016).

Targets ``h_v(x) = cos(r v^T x)``, ``v`` uniform on the unit sphere of R^d, inputs
``x ~ N(0, I_d)``, predictor ``p_w(x) = cos(w^T x)``, square loss ``0.5 (p - h)^2``. Theorem 2:
``Var(H, F, w) <= O(exp(-Omega(d)) + exp(-Omega(r)))`` for every ``w``.

For each v the gradient is in closed form (:func:`failgeom.theory.periodic.cos_predictor_gradients`):
the v-dependent part is ``c [w cosh(r w^T v) - r v sinh(r w^T v)]``, ``c = e^{-(|w|^2 + r^2)/2}``.
Writing ``t = w^T v / |w|`` and ``v = t w/|w| + sqrt(1 - t^2) u`` with ``u`` a unit vector
orthogonal to w,

    Var = c^2 E_t[(|w| C(t) - r t S(t) - m)^2 + r^2 (1 - t^2) S(t)^2],
    C = cosh(r |w| t), S = sinh(r |w| t), m = E_t[|w| C - r t S],

with ``t = cos(theta)``, ``theta`` of density proportional to ``sin(theta)^(d-2)`` on
``[0, pi]``: a 1-D integral, computed here by Gauss-Legendre quadrature
(:func:`exact_linear_periodic_variance`, private to this experiment: the theory module offers
a Monte Carlo estimate over v, which this module reports next to it). The variance depends on w
only through ``|w|``.

Two predictors: ``|w| = 1`` ("unit", the scale of the paper's initialisation) and ``|w| = r``
("matched", at the target's frequency, where the gradient is informative for the few v near
``w / |w|``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..results import Result
from ..theory.periodic import PROPOSALS, exact_linear_periodic_variance, linear_periodic_variance
from ..theory.scaling import fit_exponent, fit_exponential_rate
from ..training import null_progress, seed_streams
from . import register
from .base import Experiment, ExperimentConfig

PREDICTORS = ("unit", "matched")


@dataclass(frozen=True)
class PeriodicVarianceConfig(ExperimentConfig):
    """Ranges of r and d; ``replicas`` independent Monte Carlo estimates per point."""

    radii: tuple[float, ...] = tuple(float(r) for r in np.arange(1.0, 12.5, 0.5))
    radius_dim: int = 10
    dims: tuple[int, ...] = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
    dim_radii: tuple[float, ...] = (4.0, 8.0)
    mc_targets: int = 16_384
    quadrature_nodes: int = 2_000
    replicas: int = 5
    dtype: str = "float64"

    positive = ("replicas", "radii", "radius_dim", "dims", "dim_radii", "mc_targets", "quadrature_nodes")

    def check(self) -> None:
        if self.dtype != "float64":
            raise ValueError(f"dtype must be float64 (closed forms in float64), got {self.dtype!r}")
        if self.radius_dim < 2 or min(self.dims) < 2:
            raise ValueError("radius_dim and dims must be at least 2 (directions on a sphere in R^d)")
        if len(self.radii) < 3 or len(self.dims) < 3:
            raise ValueError("radii and dims must hold at least 3 values each, to fit a rate")
        if max(self.radii) > 20 or max(self.dim_radii) > 20:
            raise ValueError("radii and dim_radii must be at most 20 (the variance underflows float64 beyond)")
        if self.mc_targets < 2:
            raise ValueError(f"mc_targets must be at least 2, got {self.mc_targets}")


PRESETS = {
    "paper": PeriodicVarianceConfig(),
    "quick": PeriodicVarianceConfig(radii=tuple(float(r) for r in range(1, 11)),
                                    dims=(2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
                                    mc_targets=4096, replicas=3),
}


def _w_norm(predictor: str, r: float) -> float:
    return 1.0 if predictor == "unit" else float(r)


def _monte_carlo(w_norm: float, r: float, d: int, config, key) -> dict:
    """``replicas`` Monte Carlo estimates (theory's estimator), each with a random direction of w."""
    vals, errs = [], []
    for s in seed_streams(*key).spawn(config.replicas):  # set-up loop over a few estimates
        rng = np.random.default_rng(s)
        w = rng.standard_normal(d)
        w *= w_norm / np.linalg.norm(w)
        est = linear_periodic_variance(w, r, rng, targets=config.mc_targets)
        vals.append(est.value)
        errs.append(est.stderr)
    return {"mc": vals, "mc_stderr": errs}


def _mean_stderr(stderrs) -> np.ndarray:
    """Standard error of the mean of independent estimates ``(n, R)`` with the given errors."""
    se = np.asarray(stderrs, dtype=np.float64)
    return np.sqrt(np.sum(se**2, axis=1)) / se.shape[1]


def _fit_dict(fit) -> dict:
    return {"rate": fit.exponent, "stderr": fit.stderr, "ci95": list(fit.ci95),
            "local_rates": np.asarray(fit.local_slopes).tolist()}


def run(config: PeriodicVarianceConfig, seed: int = 0, progress=null_progress, preset: str = "custom") -> Result:
    """Exact (quadrature) and Monte Carlo variance vs r and vs d, with fitted decay rates."""
    config.validate()
    start = time.perf_counter()
    curves, metrics = {}, {"fits": {}}
    radii = np.asarray(config.radii)
    dims = np.asarray(config.dims)
    bar = progress(len(PREDICTORS) * (len(radii) + len(dims) * len(config.dim_radii)), "linear-periodic-variance")
    for pi_, pred in enumerate(PREDICTORS):
        exact, mc, err = [], [], []
        for i, r in enumerate(radii):
            wn = _w_norm(pred, r)
            exact.append(exact_linear_periodic_variance(wn, r, config.radius_dim, config.quadrature_nodes))
            est = _monte_carlo(wn, r, config.radius_dim, config, (seed, 7, 4, pi_, 0, i))
            mc.append(est["mc"])
            err.append(est["mc_stderr"])
            bar.update(1)
        exact = np.asarray(exact)
        key = f"vs_r/{pred}"
        curves[key] = {"r": radii.tolist(), "exact": exact.tolist(), "mc": mc, "mc_stderr": err,
                       "d": config.radius_dim}
        metrics["fits"][key] = {"per_r": _fit_dict(fit_exponential_rate(radii, exact)),
                                "per_r2": _fit_dict(fit_exponential_rate(radii**2, exact)),
                                "power": _fit_dict(fit_exponent(radii, exact))}
        for j, r in enumerate(config.dim_radii):
            wn = _w_norm(pred, r)
            exact, mc, err = [], [], []
            for i, d in enumerate(dims):
                exact.append(exact_linear_periodic_variance(wn, r, int(d), config.quadrature_nodes))
                est = _monte_carlo(wn, r, int(d), config, (seed, 7, 4, pi_, 1 + j, i))
                mc.append(est["mc"])
                err.append(est["mc_stderr"])
                bar.update(1)
            exact = np.asarray(exact)
            key = f"vs_d/{pred}/r={r:g}"
            curves[key] = {"d": dims.tolist(), "exact": exact.tolist(), "mc": mc, "mc_stderr": err, "r": r}
            metrics["fits"][key] = {"per_d": _fit_dict(fit_exponential_rate(dims, exact)),
                                    "power": _fit_dict(fit_exponent(dims, exact))}
    bar.close()
    # agreement of the quadrature with theory's Monte Carlo estimator: z-scores of the MC means
    # (the MC mean falls far below the exact value where rare directions v near w/|w| carry the
    # variance, and has a rounding floor near 1e-29 from centring the v-independent term)
    z = []
    for c in curves.values():
        mc = np.asarray(c["mc"])
        se = _mean_stderr(c["mc_stderr"])
        c["mc_z"] = ((mc.mean(axis=1) - np.asarray(c["exact"])) / np.maximum(se, 1e-300)).tolist()
        z.extend(c["mc_z"])
    z = np.asarray(z)
    metrics["mc_agreement"] = {"max_abs_z": float(np.abs(z).max()),
                               "fraction_abs_z_below_3": float(np.mean(np.abs(z) < 3))}
    timing = {"total_s": time.perf_counter() - start}
    return Result(experiment="linear-periodic-variance", preset=preset, config=config.to_dict(),
                  seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics, curves=curves,
                  timing=timing)


_PRED_COLORS = {"unit": "blue", "matched": "red"}


def figure(result: Result):
    """Log variance vs r (at fixed d) and vs d (at fixed r), exact lines and Monte Carlo points."""
    from .. import plotting

    fig, axes = plotting.figure(1, 2, width=4.2, height=3.3)
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
        mc = np.asarray(c["mc"])
        se = _mean_stderr(c["mc_stderr"])
        mean = mc.mean(axis=1)
        # a log axis cannot show a bar below zero: clip the lower bar at 90% of the value
        ax.errorbar(x, mean, yerr=[np.minimum(2 * se, 0.9 * mean), 2 * se], fmt="o", ms=2.5, color=col,
                    alpha=0.6, lw=0.8)
    axes[0, 0].set_xlabel("r = |v*|")
    axes[0, 0].set_title(f"d = {result.config['radius_dim']}", fontsize=8)
    axes[0, 1].set_xlabel("d")
    axes[0, 1].set_xscale("log", base=2)
    axes[0, 1].set_title("fixed r", fontsize=8)
    for ax in axes[0]:
        ax.set_yscale("log")
        ax.set_ylabel("Var over targets cos(r v^T x)")
        ax.legend(fontsize=6.5)
    fig.suptitle("Theorem 2: lines exact (quadrature), points Monte Carlo over v (+-2 s.e.)", fontsize=8)
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
    name="linear-periodic-variance",
    description="gradient variance over targets cos(r v^T x) as r and d grow (Theorem 2)",
    presets=PRESETS, run=run, figure=figure, summary=summary, family=1,
    paper_ref="Sec. 2.2, Theorem 2",
))
