"""Appendix A.7 as an experiment: forward-only SGD on a Lipschitz monotone target, error vs T.

For each horizon T (one cell each) the run of :func:`failgeom.theory.flat.forward_only_sgd`
(``x`` uniform on the unit sphere, ``||v*|| = B``, ``w_0 = 0``, ``eta = sqrt(1/(T c^2))``) gives
the error averaged over the iterates, which A.7's argument bounds, and the last iterate's test
error; the merge compares their means (with 95% intervals over the replicas) with the bound
``eps(T) = c^2 B^2 L / sqrt(T)``, the inverse of ``T = c^4 B^4 L^2 / eps^2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..results import Result
from ..stats import mean_interval
from ..theory.flat import ACTIVATIONS, forward_only_iterations, forward_only_sgd
from . import register
from ..validation import MAX_STEPS
from .base import Cell, Experiment, ExperimentConfig, param

NAME = "flat-forward-only-convergence"


@dataclass(frozen=True)
class ConvergenceConfig(ExperimentConfig):
    """Appendix A.7: forward-only SGD on ``y = u(v*^T x)`` for each horizon T (computed in float64)."""

    horizons: tuple[int, ...] = param((100, 316, 1_000, 3_162, 10_000, 31_623, 100_000), low=1, high=MAX_STEPS,
                                      allow_empty=False,
                                      doc="the numbers of iterations T, one run each (at most 10^9: the steps run "
                                          "one at a time, validation.MAX_STEPS)")
    dim: int = param(20, low=1, doc="input dimension; x uniform on the unit sphere")
    B: float = param(3.0, low=0.0, low_open=True, high=1e3, doc="||v*||")
    c: float = param(1.0, low=0.0, low_open=True, high=1e3, doc="the bound |u| <= c")
    L: float = param(1.0, low=0.0, low_open=True, high=1e3, doc="the Lipschitz constant of u")
    activation: str = param("ramp", choices=tuple(ACTIVATIONS),
                            doc="u: ramp clip(L r, -c, c) or tanh c tanh(L r / c)")
    test_size: int = param(4096, low=1, doc="test points per replica for the last iterate")

    def check(self) -> None:
        if len(set(self.horizons)) != len(self.horizons):
            raise ValueError(f"horizons must be distinct, got {self.horizons!r}")

    def memory_bytes(self) -> int:
        # the test set and its targets (R, test_size, dim) in float64, one chunk of samples
        return int(8 * self.replicas * (self.test_size * (self.dim + 2) + 4 * self.dim) + 3 * 8 * 2**20)


PRESETS = {
    # A.7 states a bound, not an experiment: "paper" extends the range of T; a step of all
    # replicas costs tens of microseconds, so the replicas are many
    "paper": ConvergenceConfig(replicas=256),
    "quick": ConvergenceConfig(replicas=64, horizons=(100, 316, 1_000, 3_162, 10_000, 31_623)),
}
TINY = ConvergenceConfig(replicas=4, horizons=(10, 40), dim=3, test_size=64)


def bound_epsilon(T, c: float, B: float, L: float) -> np.ndarray:
    """Appendix A.7's error level reached after T iterations: ``eps = c^2 B^2 L / sqrt(T)``
    (from ``T(eps) = T(1) / eps^2``)."""
    return np.sqrt(forward_only_iterations(c, B, L, 1.0) / np.asarray(T, dtype=np.float64))


def cells(config: ConvergenceConfig) -> list[tuple]:
    return [("T", int(T)) for T in config.horizons]


def run_cell(config: ConvergenceConfig, cell: Cell) -> dict:
    """One horizon: per-replica average-iterate error, last-iterate error, ``||w_T||``."""
    config.validate()
    name, T = cell.key
    if name != "T" or T not in config.horizons:
        raise ValueError(f"{NAME} cells are ('T', horizon) for a horizon of the config, got {cell.key!r}")
    bar = cell.progress(1, f"forward-only A.7 T={T}")
    run = forward_only_sgd(config.dim, config.c, config.B, config.L, int(T), config.replicas,
                           cell.streams, activation=config.activation,
                           test_size=config.test_size, evaluations=1)
    bar.update(1)
    bar.close()
    return {"T": int(T), "eta": run.eta, "average_iterate_error": run.average_error.tolist(),
            "initial_error": run.test_error[:, 0].tolist(), "final_error": run.test_error[:, -1].tolist(),
            "final_weight_norm": run.weight_norm.tolist()}


def _slope(T: np.ndarray, values: np.ndarray) -> float:
    return float(np.polyfit(np.log(T), np.log(values), 1)[0]) if len(T) > 1 else float("nan")


def merge(config: ConvergenceConfig, outputs: dict) -> dict:
    """Errors against A.7's bound: means with 95% intervals over replicas, log-log slopes."""
    rows = [outputs[key] for key in cells(config)]
    T = np.array([row["T"] for row in rows], dtype=np.float64)
    avg = np.array([row["average_iterate_error"] for row in rows])  # (n_T, R)
    final = np.array([row["final_error"] for row in rows])
    bound = bound_epsilon(T, config.c, config.B, config.L)
    mean, lo, hi = mean_interval(avg / bound[:, None], 0.95)
    metrics = {
        "horizons": T.tolist(), "bound": bound.tolist(),
        "average_iterate_error_mean": avg.mean(axis=1).tolist(),
        "ratio_average_to_bound_mean": mean.tolist(),
        "ratio_average_to_bound_ci95": [lo.tolist(), hi.tolist()],
        "ratio_average_to_bound_max_replica": (avg / bound[:, None]).max(axis=1).tolist(),
        "max_ratio_average_to_bound": float(mean.max()),
        # the data do not show the expected averaged error above the bound at any T
        "bound_holds_average": bool(np.all(lo <= 1.0)) if config.replicas > 1 else None,
        "final_error_mean": final.mean(axis=1).tolist(),
        "max_ratio_final_to_bound": float((final.mean(axis=1) / bound).max()),
        "loglog_slope_average": _slope(T, avg.mean(axis=1)),
        "loglog_slope_final": _slope(T, final.mean(axis=1)),
        "max_final_weight_norm": float(max(max(row["final_weight_norm"]) for row in rows)),
    }
    curves = {"T": T.tolist(), "average_iterate_error": avg.tolist(), "final_error": final.tolist(),
              "bound": bound.tolist(), "eta": [row["eta"] for row in rows]}
    return {"metrics": metrics, "curves": curves}


def figure(result: Result):
    """Error vs T on log-log axes with A.7's bound (band: min-max over replicas); a note names
    the horizons where the mean average-iterate error is above the bound."""
    from .. import plotting

    c, m, cfg = result.curves, result.metrics, result.config
    fig, axes = plotting.figure(1, 1, width=5.0, height=3.6)
    ax = axes[0, 0]
    plotting.band(ax, c["T"], np.asarray(c["average_iterate_error"]), plotting.COLORS["blue"],
                  label="error averaged over iterates (A.7's quantity)")
    plotting.band(ax, c["T"], np.asarray(c["final_error"]), plotting.COLORS["red"], label="last iterate (test)")
    ax.plot(c["T"], c["bound"], color="k", ls="--", lw=1.2, label=r"A.7 bound $c^2B^2L/\sqrt{T}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"iterations T (step $\eta = 1/(c\sqrt{T})$)")
    ax.set_ylabel("expected squared error")
    ax.set_title(f"forward-only SGD, {cfg['activation']} u: c={cfg['c']:g}, L={cfg['L']:g}, B={cfg['B']:g},\n"
                 f"x on the unit sphere of R^{cfg['dim']}, {result.seeds['replicas']} replicas")
    above = [int(T) for T, lo in zip(c["T"], m["ratio_average_to_bound_ci95"][0]) if lo > 1.0]
    if above:
        ax.text(0.98, 0.97, "averaged error above the bound\n(95% interval) at T = " + ", ".join(map(str, above)),
                transform=ax.transAxes, fontsize=8, va="top", ha="right",
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#bbbbbb"})
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def summary(result: Result) -> str:
    m = result.metrics
    return (f"average-iterate error / bound: mean up to {m['max_ratio_average_to_bound']:.3f} "
            f"(bound holds in expectation: {m['bound_holds_average']}); last iterate up to "
            f"{m['max_ratio_final_to_bound']:.3f}; log-log slope {m['loglog_slope_average']:.2f} (average), "
            f"{m['loglog_slope_final']:.2f} (last) vs bound -0.5")


EXPERIMENT = register(Experiment(
    name=NAME,
    description="forward-only SGD on a Lipschitz monotone target: error vs T against the "
                "O(L^2/eps^2) bound (Appendix A.7)",
    presets=PRESETS, cells=cells, run_cell=run_cell, merge=merge, tiny=TINY, figure=figure,
    summary=summary, family=4, paper_ref="Appendix A.7",
))
