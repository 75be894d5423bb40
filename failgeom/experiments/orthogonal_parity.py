"""Gradient variance over all parities against Theorem 1's bound (paper Sec. 2.1-2.2, Theorem 1).

For the paper's network Dense(d -> 10d) ReLU Dense(-> 1) at random initialisation, the exact
variance over all ``2^d`` parity targets,

    Var(H, F, w) = E_h || grad F_h(w) - E_h' grad F_h'(w) ||^2,

computed with the fast Walsh-Hadamard transform by
:func:`failgeom.theory.orthogonal.parity_gradient_variance`, against Theorem 1's bound
``G(w)^2 / 2^d``, for the square and the hinge loss. The variance, hence the information the
gradient carries about which parity is the target, shrinks like ``2^{-d}`` (up to the slow growth
of ``G^2``). The same quantity is also followed along a training run of the parity experiment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..results import Result
from ..theory.orthogonal import LOSSES, parity_gradient_variance
from ..theory.scaling import fit_exponential_rate
from ..training import null_progress, seed_streams
from . import register
from .base import Experiment, ExperimentConfig
from .parity import parity_network, train_parity


@dataclass(frozen=True)
class ParityVarianceConfig(ExperimentConfig):
    """Dimensions, losses and the training run (defaults: the paper's network and SGD settings)."""

    dims: tuple[int, ...] = tuple(range(2, 17))
    width_factor: int = 10
    losses: tuple[str, ...] = LOSSES
    train_dims: tuple[int, ...] = (5, 10, 14)
    train_steps: int = 50_000
    train_eval_every: int = 2_500
    batch: int = 128
    lr: float = 0.01
    eval_size: int = 500
    replicas: int = 10

    positive = ("replicas", "dims", "width_factor", "train_steps", "train_eval_every", "batch", "lr",
                "eval_size")

    def check(self) -> None:
        if len(self.dims) < 3:
            raise ValueError(f"dims must hold at least 3 dimensions to fit a decay rate, got {self.dims!r}")
        if max(self.dims) > 20:
            raise ValueError(f"dims must be at most 20 (all 2^d inputs are enumerated), got {max(self.dims)}")
        if self.train_dims and (min(self.train_dims) <= 0 or max(self.train_dims) > 20):
            raise ValueError(f"train_dims must lie in 1..20, got {self.train_dims!r}")
        for loss in self.losses:
            if loss not in LOSSES:
                raise ValueError(f"losses must be drawn from {LOSSES}, got {loss!r}")
        if not self.losses:
            raise ValueError("losses must name at least one loss")


PRESETS = {
    "paper": ParityVarianceConfig(),
    # d up to 14 and a short training run keep this under a minute on 2 cores
    "quick": ParityVarianceConfig(dims=tuple(range(2, 15)), replicas=5, train_dims=(5, 10),
                                  train_steps=6_000, train_eval_every=500),
}


def theory_weights(params) -> dict:
    """The parity network's ``nn`` parameters as :mod:`failgeom.theory.orthogonal` weights
    ``{"W1": (R, d, m), "b1": (R, m), "W2": (R, m, 1), "b2": (R, 1)}`` in float64."""
    first, _, last = params
    return {"W1": first["W"].astype(np.float64), "b1": first["b"].astype(np.float64),
            "W2": last["W"].astype(np.float64), "b2": last["b"].astype(np.float64)}


def variance_at_init(config: ParityVarianceConfig, d: int, seed: int) -> dict:
    """Exact variance over all parities and the bound, per replica, at a random initialisation."""
    model = parity_network(d, config.width_factor)
    rngs = [np.random.default_rng(s) for s in seed_streams(seed, 7, 1, d).spawn(config.replicas)]
    params, _ = model.init(rngs, config.replicas, (d,), config.dtype)
    w = theory_weights(params)
    out = {}
    for loss in config.losses:
        var, bound = parity_gradient_variance(d, w, loss)
        out[loss] = var
        out["bound"] = bound
    return out


def fit_decay(dims, values):
    """Exponential fit of ``values`` ``(len(dims), R)`` in d over all replicas (pooled points).

    Returns a dict: ``rate`` (per unit d, natural log), ``stderr``, ``ci95``, ``rate_log2``
    (``rate / ln 2``; Theorem 1's bound decays at -1 in these units up to ``G^2``) and the
    local slopes of the replica mean.
    """
    dims = np.asarray(dims, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    xs = np.repeat(dims, values.shape[1])
    fit = fit_exponential_rate(xs, values.ravel())
    local = np.diff(np.log(values.mean(axis=1))) / np.diff(dims)
    return {"rate": fit.exponent, "stderr": fit.stderr, "ci95": list(fit.ci95),
            "rate_log2": fit.exponent / np.log(2.0), "ci95_log2": [c / np.log(2.0) for c in fit.ci95],
            "local_rates": local.tolist()}


def training_run(config: ParityVarianceConfig, d: int, seed: int, progress=null_progress):
    """Train the parity network (hinge loss, SGD, fresh samples) and record, every
    ``train_eval_every`` steps, the exact variance over all parities at the current weights."""

    def variances(p):
        metrics, w = {}, theory_weights(p)
        for loss in config.losses:
            metrics[f"variance_{loss}"], metrics["bound"] = parity_gradient_variance(d, w, loss)
        return metrics

    curves, _ = train_parity(d, seed_streams(seed, 7, 3, d), replicas=config.replicas,
                             steps=config.train_steps, batch=config.batch, lr=config.lr,
                             eval_every=config.train_eval_every, eval_size=config.eval_size,
                             width_factor=config.width_factor, dtype=config.dtype,
                             extra_metrics=variances, progress=progress,
                             desc=f"parity-variance training d={d}")
    return curves


def run(config: ParityVarianceConfig, seed: int = 0, progress=null_progress, preset: str = "custom") -> Result:
    """Variance and bound for every d at initialisation; fitted decay rates; training runs."""
    config.validate()
    timing, metrics, curves = {}, {}, {}
    start = time.perf_counter()
    at_init = {}
    bar = progress(len(config.dims), "parity-variance at init")
    for d in config.dims:
        at_init[d] = variance_at_init(config, d, seed)
        bar.update(1)
    bar.close()
    timing["at_init_s"] = time.perf_counter() - start
    init_curves = {"dims": list(config.dims)}
    for key in (*config.losses, "bound"):
        init_curves[key] = [np.asarray(at_init[d][key]).tolist() for d in config.dims]
    curves["at_init"] = init_curves
    bound = np.asarray(init_curves["bound"])
    # 2^d bound = G^2: dividing by it isolates the 2^-d factor of Theorem 1
    metrics["fits"] = {"bound": fit_decay(config.dims, bound),
                       "G2": fit_decay(config.dims, bound * 2.0 ** np.asarray(config.dims)[:, None])}
    for loss in config.losses:
        var = np.asarray(init_curves[loss])
        ratio = var / bound
        metrics["fits"][loss] = fit_decay(config.dims, var)
        # Var / G^2: Theorem 1 says at most 2^-d, i.e. a log2-rate of -1
        G2 = bound * 2.0 ** np.asarray(config.dims)[:, None]
        metrics["fits"][f"{loss}_over_G2"] = fit_decay(config.dims, var / G2)
        metrics[loss] = {
            "max_ratio_to_bound": float(ratio.max()),
            "min_ratio_to_bound": float(ratio.min()),
            "ratio_to_bound_mean_per_d": ratio.mean(axis=1).tolist(),
            "variance_mean_per_d": var.mean(axis=1).tolist(),
            "all_below_bound": bool(np.all(var <= bound * (1 + 1e-9))),
        }
    for d in config.train_dims:
        start = time.perf_counter()
        c = training_run(config, d, seed, progress)
        timing[f"train_d={d}_s"] = time.perf_counter() - start
        curves[f"train_d={d}"] = c.to_dict()
        entry = {"final_accuracy_mean": float(c.array("accuracy")[-1].mean())}
        for loss in config.losses:
            r = c.array(f"variance_{loss}") / c.array("bound")
            entry[f"ratio_{loss}_min"] = float(r.min())
            entry[f"ratio_{loss}_max"] = float(r.max())
            entry[f"variance_{loss}_init_mean"] = float(c.array(f"variance_{loss}")[0].mean())
            entry[f"variance_{loss}_final_mean"] = float(c.array(f"variance_{loss}")[-1].mean())
        entry["bound_init_mean"] = float(c.array("bound")[0].mean())
        entry["bound_final_mean"] = float(c.array("bound")[-1].mean())
        metrics[f"train_d={d}"] = entry
    timing["total_s"] = sum(timing.values())
    return Result(experiment="parity-variance", preset=preset, config=config.to_dict(),
                  seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics, curves=curves,
                  timing=timing)


_LOSS_COLORS = {"square": "blue", "hinge": "red"}


def figure(result: Result):
    """(a) variance and bound vs d (log scale) with fitted rates; (b) ratio to the bound;
    (c) the ratio along training; (d) accuracy along training."""
    from .. import plotting

    fig, axes = plotting.figure(1, 4, width=3.3, height=2.9)
    init = result.curves["at_init"]
    dims = np.asarray(init["dims"])
    fits = result.metrics["fits"]
    bound = np.asarray(init["bound"])
    ax = axes[0, 0]
    plotting.band(ax, dims, bound, plotting.COLORS["grey"], label="bound G^2/2^d")
    for i, loss in enumerate(result.config["losses"]):
        var = np.asarray(init[loss])
        col = plotting.COLORS[_LOSS_COLORS.get(loss, "green")]
        f = fits[loss]
        ax.plot(dims + 0.12 * (i - 0.5), var, ".", color=col, ms=3, alpha=0.6)
        ax.plot(dims, var.mean(axis=1), "-", color=col, lw=1,
                label=f"{loss}: rate {f['rate_log2']:.3f} [{f['ci95_log2'][0]:.3f}, {f['ci95_log2'][1]:.3f}]")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("d")
    ax.set_ylabel("Var(H, F, w) over all 2^d parities")
    ax.set_title("fitted rate: log2 Var per unit d", fontsize=8)
    ax.legend(fontsize=6.5)

    ax = axes[0, 1]
    for loss in result.config["losses"]:
        col = plotting.COLORS[_LOSS_COLORS.get(loss, "green")]
        plotting.band(ax, dims, np.asarray(init[loss]) / bound, col, label=loss)
    ax.axhline(1.0, color=plotting.COLORS["grey"], ls="--", lw=0.8)
    ax.set_xlabel("d")
    ax.set_ylabel("Var / (G^2 / 2^d)")
    ax.set_ylim(0, 1.1)
    ax.set_title(f"at init ({result.seeds['replicas']} seeds, band min-max)", fontsize=8)
    ax.legend(fontsize=7)

    train_keys = [k for k in result.curves if k.startswith("train_d=")]
    styles = ["-", "--", ":", "-."]
    for j, key in enumerate(train_keys):
        c = result.curves[key]
        steps = np.asarray(c["steps"])
        b = np.asarray(c["bound"])
        for loss in result.config["losses"]:
            col = plotting.COLORS[_LOSS_COLORS.get(loss, "green")]
            plotting.band(axes[0, 2], steps, np.asarray(c[f"variance_{loss}"]) / b, col,
                          label=f"{key[6:]} {loss}")
            axes[0, 2].lines[-1].set_linestyle(styles[j % 4])
        # dimension colours distinct from the loss colours of panel (c)
        plotting.band(axes[0, 3], steps, np.asarray(c["accuracy"]), plotting.CYCLE[2 + j % 4], label=key[6:])
    # hinge: Var / bound = E[c^2 ||grad p||^2] / E||grad p||^2 with c^2 in [1/4, 1]
    axes[0, 2].axhline(0.25, color=plotting.COLORS["grey"], ls=":", lw=0.8)
    axes[0, 2].set_ylim(0, 1.08)
    axes[0, 2].set_xlabel("training step (hinge, SGD)")
    axes[0, 2].set_ylabel("Var / (G(w_t)^2 / 2^d)")
    axes[0, 2].set_title("along training", fontsize=8)
    axes[0, 2].legend(fontsize=6)
    axes[0, 3].axhline(0.5, color=plotting.COLORS["grey"], ls="--", lw=0.8)
    axes[0, 3].set_xlabel("training step")
    axes[0, 3].set_ylabel("accuracy")
    axes[0, 3].set_ylim(0.35, 1.02)
    axes[0, 3].legend(fontsize=7)
    fig.tight_layout()
    return fig


def summary(result: Result) -> str:
    parts = []
    for loss in result.config["losses"]:
        f = result.metrics["fits"][loss]
        m = result.metrics[loss]
        parts.append(f"{loss}: log2-rate {f['rate_log2']:.3f} [{f['ci95_log2'][0]:.3f}, {f['ci95_log2'][1]:.3f}] "
                     f"per d, Var/bound in [{m['min_ratio_to_bound']:.3f}, {m['max_ratio_to_bound']:.3f}]")
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name="parity-variance",
    description="exact gradient variance over all 2^d parities vs Theorem 1's bound G^2/2^d (Sec. 2.1)",
    presets=PRESETS, run=run, figure=figure, summary=summary, family=1,
    paper_ref="Sec. 2.1, Theorem 1",
))
