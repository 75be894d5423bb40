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

from dataclasses import dataclass

import numpy as np

from ..results import Result
from ..theory.orthogonal import LOSSES, parity_gradient_variance
from ..theory.scaling import fit_exponential_rate
from . import register
from .base import Cell, Experiment, F32_MAX, ExperimentConfig, param
from .parity_models import parity_network, train_parity, training_memory_bytes

NAME = "parity-variance"
#: peak bytes of the chunked Walsh-Hadamard evaluation beyond its inputs (a few chunks)
_WHT_CHUNK_BYTES = 2**24


@dataclass(frozen=True)
class ParityVarianceConfig(ExperimentConfig):
    """Dimensions, losses and the training run (defaults: the paper's network and SGD settings)."""

    dims: tuple[int, ...] = param(tuple(range(2, 17)), low=1, high=20,
                                  doc="dimensions d of the exact variance at init (all 2^d inputs enumerated)")
    width_factor: int = param(10, low=1, doc="hidden width over d (the paper: 10)")
    losses: tuple[str, ...] = param(LOSSES, choices=LOSSES, doc="losses whose gradient variance is computed")
    train_dims: tuple[int, ...] = param((5, 10, 14), low=1, high=20,
                                        doc="dimensions of the training runs followed by the exact variance")
    train_steps: int = param(50_000, low=1, doc="SGD steps of each training run")
    train_eval_every: int = param(2_500, low=1, doc="steps between exact-variance evaluations")
    batch: int = param(128, low=1, doc="fresh training samples per step and replica")
    lr: float = param(0.01, low=0.0, low_open=True, high=F32_MAX,
                      doc="SGD learning rate (one that diverges stops the run with an error); at most the float32 max, where it stays finite")
    eval_size: int = param(500, low=1, doc="fresh samples per accuracy evaluation and replica")
    replicas: int = param(10, low=1, doc="independent initialisations (seeds) per d")

    def check(self) -> None:
        if len(self.dims) < 3:
            raise ValueError(f"dims must hold at least 3 dimensions to fit a decay rate, got {self.dims!r}")
        for name in ("dims", "train_dims", "losses"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be distinct (one cell or curve each), got {values!r}")
        if not self.losses:
            raise ValueError("losses must name at least one loss")

    def memory_bytes(self) -> int:
        dims = self.dims + self.train_dims
        wht = max(8 * 2**d * (d + 8) for d in dims) + 6 * _WHT_CHUNK_BYTES
        train = max((training_memory_bytes(d, self.width_factor, self.replicas, max(self.batch, self.eval_size),
                                           self.dtype) for d in self.train_dims), default=0)
        return wht + train


PRESETS = {
    "paper": ParityVarianceConfig(),
    # d up to 14 and a short training run keep this under a minute on 2 cores
    "quick": ParityVarianceConfig(dims=tuple(range(2, 15)), replicas=5, train_dims=(5, 10),
                                  train_steps=6_000, train_eval_every=500),
}

#: runs in about a second (stream-distinctness and merge tests)
TINY = ParityVarianceConfig(dims=(2, 3, 4), replicas=2, train_dims=(3,), train_steps=40, train_eval_every=20,
                            eval_size=64, batch=32)


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
    out = fit.to_dict(rate=True)
    del out["local_rates"]  # the slopes of the replica mean replace those of the pooled fit
    return {**out, "rate_log2": fit.exponent / np.log(2.0), "ci95_log2": [c / np.log(2.0) for c in fit.ci95],
            "local_rates": local.tolist()}


def cells(config: ParityVarianceConfig) -> list[tuple]:
    """``("init", d)`` for every d of ``dims``, then ``("train", d)`` for every training run."""
    return [("init", int(d)) for d in config.dims] + [("train", int(d)) for d in config.train_dims]


def init_cell(config: ParityVarianceConfig, cell: Cell) -> dict:
    """("init", d): the exact variance over all parities (per loss) and the bound, per replica
    ``(R,)`` lists, at a random initialisation of the paper's network."""
    d = int(cell.key[1])
    model = parity_network(d, config.width_factor)
    params, _ = model.init(cell.streams.generators(config.replicas), config.replicas, (d,), config.dtype)
    out = {}
    for loss in config.losses:
        var, bound = parity_gradient_variance(d, params, loss, chunk_bytes=_WHT_CHUNK_BYTES)
        out[loss] = np.asarray(var).tolist()
        out["bound"] = np.asarray(bound).tolist()
    return {"at_init": out}


def train_cell(config: ParityVarianceConfig, cell: Cell) -> dict:
    """("train", d): train the parity network (hinge loss, SGD, fresh samples) and record, every
    ``train_eval_every`` steps, the exact variance over all parities at the current weights; the
    curves and their summary."""
    d = int(cell.key[1])

    def variances(p):
        metrics = {}
        for loss in config.losses:
            metrics[f"variance_{loss}"], metrics["bound"] = parity_gradient_variance(
                d, p, loss, chunk_bytes=_WHT_CHUNK_BYTES)
        return metrics

    c, _ = train_parity(d, cell.streams, replicas=config.replicas, steps=config.train_steps, batch=config.batch,
                        lr=config.lr, eval_every=config.train_eval_every, eval_size=config.eval_size,
                        width_factor=config.width_factor, dtype=config.dtype, extra_metrics=variances,
                        progress=cell.progress, desc=f"parity-variance training d={d}")
    entry = {"final_accuracy_mean": float(c.array("accuracy")[-1].mean())}
    for loss in config.losses:
        var = c.array(f"variance_{loss}")
        r = var / c.array("bound")
        entry[f"ratio_{loss}_min"] = float(r.min())
        entry[f"ratio_{loss}_max"] = float(r.max())
        entry[f"variance_{loss}_init_mean"] = float(var[0].mean())
        entry[f"variance_{loss}_final_mean"] = float(var[-1].mean())
    entry["bound_init_mean"] = float(c.array("bound")[0].mean())
    entry["bound_final_mean"] = float(c.array("bound")[-1].mean())
    return {"curves": c.to_dict(), "metrics": entry}


def merge(config: ParityVarianceConfig, outputs: dict) -> dict:
    """Variances and bound vs d with the fitted decay rates, and the training runs."""
    dims = np.asarray(config.dims)
    metrics, curves = {}, {}
    init_curves = {"dims": dims.tolist()}
    for key in (*config.losses, "bound"):
        init_curves[key] = [outputs[("init", int(d))]["at_init"][key] for d in dims]
    curves["at_init"] = init_curves
    bound = np.asarray(init_curves["bound"])
    G2 = bound * 2.0 ** dims[:, None]  # 2^d bound = G^2: dividing by it isolates Theorem 1's 2^-d
    metrics["fits"] = {"bound": fit_decay(dims, bound), "G2": fit_decay(dims, G2)}
    for loss in config.losses:
        var = np.asarray(init_curves[loss])
        ratio = var / bound
        metrics["fits"][loss] = fit_decay(dims, var)
        # Var / G^2: Theorem 1 says at most 2^-d, i.e. a log2-rate of -1
        metrics["fits"][f"{loss}_over_G2"] = fit_decay(dims, var / G2)
        metrics[loss] = {
            "max_ratio_to_bound": float(ratio.max()),
            "min_ratio_to_bound": float(ratio.min()),
            "ratio_to_bound_mean_per_d": ratio.mean(axis=1).tolist(),
            "variance_mean_per_d": var.mean(axis=1).tolist(),
            "all_below_bound": bool(np.all(var <= bound * (1 + 1e-9))),
        }
    for d in config.train_dims:
        out = outputs[("train", int(d))]
        curves[f"train_d={d}"], metrics[f"train_d={d}"] = out["curves"], out["metrics"]
    return {"metrics": metrics, "curves": curves}


_LOSS_COLORS = {"square": "blue", "hinge": "red"}


def figure(result: Result):
    """(a) variance and bound vs d (log scale) with fitted rates; (b) ratio to the bound at init;
    (c) the ratio along training; (d) accuracy along training."""
    from .. import plotting

    fig, axes = plotting.figure(2, 2, width=4.6, height=3.3)
    init = result.curves["at_init"]
    dims = np.asarray(init["dims"])
    fits = result.metrics["fits"]
    bound = np.asarray(init["bound"])
    seeds = result.seeds["replicas"]
    ax = axes[0, 0]
    plotting.band(ax, dims, bound, plotting.COLORS["grey"], label="bound G^2/2^d")
    for i, loss in enumerate(result.config["losses"]):
        var = np.asarray(init[loss])
        col = plotting.COLORS[_LOSS_COLORS.get(loss, "green")]
        f = fits[loss]
        ax.plot(dims + 0.12 * (i - 0.5), var, ".", color=col, ms=3, alpha=0.6)
        ax.plot(dims, var.mean(axis=1), "-", color=col, lw=1,
                label=f"{loss}: {f['rate_log2']:.3f} [{f['ci95_log2'][0]:.3f}, {f['ci95_log2'][1]:.3f}]")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("d")
    ax.set_ylabel("Var(H, F, w) over all 2^d parities")
    ax.set_title("(a) at init; fitted log2 Var per unit d [95% CI]")
    ax.legend(loc="lower left")

    ax = axes[0, 1]
    for loss in result.config["losses"]:
        col = plotting.COLORS[_LOSS_COLORS.get(loss, "green")]
        plotting.band(ax, dims, np.asarray(init[loss]) / bound, col, label=loss)
    ax.axhline(1.0, color=plotting.COLORS["grey"], ls="--", lw=0.8)
    ax.set_xlabel("d")
    ax.set_ylabel("Var / (G^2 / 2^d)")
    ax.set_ylim(0, 1.1)
    ax.set_title(f"(b) ratio to the bound at init ({seeds} seeds, band min-max)")
    ax.legend(loc="lower right")
    for a in (axes[0, 0], axes[0, 1]):
        plotting.integer_ticks(a, "x")

    train_keys = [k for k in result.curves if k.startswith("train_d=")]
    styles = ["-", "--", ":", "-."]
    for j, key in enumerate(train_keys):
        c = result.curves[key]
        steps = np.asarray(c["steps"])
        b = np.asarray(c["bound"])
        for loss in result.config["losses"]:
            col = plotting.COLORS[_LOSS_COLORS.get(loss, "green")]
            plotting.band(axes[1, 0], steps, np.asarray(c[f"variance_{loss}"]) / b, col,
                          label=f"{key[6:]} {loss}")
            axes[1, 0].lines[-1].set_linestyle(styles[j % 4])
        # dimension colours distinct from the loss colours of panel (c)
        plotting.band(axes[1, 1], steps, np.asarray(c["accuracy"]), plotting.CYCLE[2 + j % 4], label=key[6:])
    # hinge: Var / bound = E[c^2 ||grad p||^2] / E||grad p||^2 with c^2 in [1/4, 1]
    axes[1, 0].axhline(0.25, color=plotting.COLORS["grey"], ls=":", lw=0.8)
    axes[1, 0].set_ylim(0, 1.08)
    axes[1, 0].set_xlabel("training step (hinge loss, SGD)")
    axes[1, 0].set_ylabel("Var / (G(w_t)^2 / 2^d)")
    axes[1, 0].set_title("(c) ratio to the bound along training")
    plotting.accuracy_axes(axes[1, 1], "training step", "accuracy")
    axes[1, 1].set_title("(d) accuracy along training")
    if train_keys:
        axes[1, 0].legend(loc="center right", ncol=2)
        axes[1, 1].legend(loc="lower right")
    fig.suptitle("Theorem 1: gradient variance over all 2^d parity targets vs the bound G(w)^2 / 2^d")
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
    name=NAME,
    description="exact gradient variance over all 2^d parities vs Theorem 1's bound G^2/2^d (Sec. 2.1)",
    presets=PRESETS, cells=cells, run_cell={"init": init_cell, "train": train_cell}, merge=merge, tiny=TINY,
    figure=figure,
    summary=summary, family=1, paper_ref="Sec. 2.1, Theorem 1",
))
