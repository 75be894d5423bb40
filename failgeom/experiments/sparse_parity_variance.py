"""Theorem 1 over the k-sparse parities: exact gradient variance against ``G^2 / C(n, k)``.

For the sparse-parity network (:mod:`.parity_models`, as :mod:`.sparse_parity`'s) on {±1}^n, the variance of the gradient
over the choice of target among all ``C(n, k)`` weight-k parities, for every k = 1..n, computed
exactly from the weight-k Walsh-Hadamard coefficients
(:func:`failgeom.theory.sparse_parity.sparse_parity_gradient_variance`), at initialisation (square
and hinge loss) and along an SGD run on a random ``train_k``-parity (the training loss). Theorem
1 (paper Sec. 2.1) bounds it by ``G(w)^2 / C(n, k)``: the larger the class, the less the gradient
says about which member is the target, and the dense class (k = n / 2) is the largest. A check
cell compares the transform with brute-force enumeration of the class at a small n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..results import Result
from ..theory.orthogonal import LOSSES
from ..theory.scaling import fit_exponent
from ..theory.sparse_parity import MAX_N, sparse_parity_gradient_variance
from . import register
from .base import Cell, Experiment, F32_MAX, ExperimentConfig, param
from .parity_models import SparseTraining, init_params, sparse_network, train_sparse_parity

NAME = "sparse-parity-variance"


@dataclass(frozen=True)
class SparseVarianceConfig(ExperimentConfig):
    """The cube size, the network (as sparse-parity's) and the training run."""

    replicas: int = param(4, low=1, doc="networks (seeds)")
    n: int = param(16, low=2, high=MAX_N, doc="bits; all 2^n inputs are enumerated")
    width: int = param(128, low=1, doc="hidden ReLU units")
    init: str = param("uniform", choices=("uniform", "truncated_normal"), doc="as sparse-parity's init")
    losses: tuple[str, ...] = param(LOSSES, choices=LOSSES, doc="losses of the variance at initialisation")
    train_k: int = param(3, low=1, doc="subset size of the target of the SGD run")
    train_steps: int = param(5000, low=1, doc="SGD steps of the run")
    variance_every: int = param(1000, low=1, doc="steps between exact variances along the run")
    batch: int = param(32, low=1, doc="SGD minibatch")
    lr: float = param(0.1, low=0.0, low_open=True, high=F32_MAX, doc="SGD learning rate; at most the float32 max, where it stays finite")
    loss: str = param("hinge", choices=LOSSES, doc="training loss (and loss of the variance along the run)")
    check_n: int = param(6, low=2, high=10, doc="n of the brute-force check of the transform")
    check_networks: int = param(8, low=1, doc="random networks of the brute-force check")

    def check(self) -> None:
        if self.train_k > self.n:
            raise ValueError(f"train_k must be at most n = {self.n}, got {self.train_k}")

    def memory_bytes(self) -> int:
        # the cube, the subset-membership matrix and its integer source (2^n x n each), the
        # chunk of transformed columns and its copies (2^25 bytes each)
        # chunk of transformed columns and its copies (2^25 bytes each); the networks (weights,
        # gradients, SGD temporaries) and a minibatch's inputs and activations, in float64 at most
        nets = 8 * self.replicas * (4 * self.width * (self.n + 2) + 4 * self.batch * (self.n + 3 * self.width))
        return 8 * 2**self.n * 3 * self.n + 6 * 2**25 + nets

    def training(self) -> SparseTraining:
        """The settings of the SGD run (the check and the curve: sparse-parity's defaults)."""
        return SparseTraining(replicas=self.replicas, width=self.width, init=self.init, batch=self.batch,
                              lr=self.lr, loss=self.loss, eval_every=self.variance_every, dtype=self.dtype)


PRESETS = {
    "paper": SparseVarianceConfig(),
    "quick": SparseVarianceConfig(n=12, replicas=3, train_steps=3000, variance_every=500),
}
TINY = SparseVarianceConfig(n=5, replicas=2, width=8, train_k=2, train_steps=20, variance_every=10,
                            check_n=4, check_networks=2)


def _ks(n: int) -> list[int]:
    return list(range(1, n + 1))


def cells(config: SparseVarianceConfig) -> list[tuple]:
    return [("init",), ("train",), ("check",)]


def init_cell(config: SparseVarianceConfig, cell: Cell) -> dict:
    """("init",): the variance per k and loss, and the bound, at initialisation."""
    n, ks = config.n, _ks(config.n)
    params = init_params(sparse_network(config.width), cell.streams.generators(config.replicas), n,
                         config.width, config.init, config.dtype)
    out = {}
    for loss in config.losses:
        var, bound = sparse_parity_gradient_variance(n, ks, params, loss)
        out[loss] = {"variance": var.tolist(), "bound": bound.tolist()}
    return out


def train_cell(config: SparseVarianceConfig, cell: Cell) -> dict:
    """("train",): the variance per k, and the bound, along SGD on a ``train_k``-parity (curves)."""
    n, ks = config.n, _ks(config.n)

    def variances(p):
        var, bound = sparse_parity_gradient_variance(n, ks, p, config.loss)
        return {**{f"variance_k{k}": var[:, j] for j, k in enumerate(ks)},
                **{f"bound_k{k}": bound[:, j] for j, k in enumerate(ks)}}

    _, curves, _ = train_sparse_parity(config.training(), n, config.train_k, cell.streams, config.train_steps,
                                       extra_metrics=variances, stop_when_learned=False, progress=cell.progress)
    return curves.to_dict()


def check_cell(config: SparseVarianceConfig, cell: Cell) -> dict:
    """("check",): the transform against enumeration on random networks at ``check_n``."""
    rng = np.random.default_rng(cell.streams)
    m, worst = config.check_n, 0.0
    for _ in range(config.check_networks):  # random networks with non-zero biases
        width = int(rng.integers(1, 9))
        w = {"W1": rng.normal(size=(m, width)), "b1": rng.normal(size=width), "W2": rng.normal(size=(width, 1)),
             "b2": rng.normal(size=1)}
        for loss in LOSSES:
            fast, bound = sparse_parity_gradient_variance(m, _ks(m), w, loss)
            slow, _ = sparse_parity_gradient_variance(m, _ks(m), w, loss, method="direct")
            G2 = bound[0] * m  # bound = G^2 / C(m, k), and C(m, 1) = m
            worst = max(worst, float(np.max(np.abs(fast - slow)) / G2))
    return {"n": m, "networks": config.check_networks, "max_abs_difference_over_G2": worst}


def merge(config: SparseVarianceConfig, outputs: dict) -> dict:
    """Ratios to the bound at init and along training; the fitted slope of variance vs C(n, k)."""
    n, ks = config.n, _ks(config.n)
    sizes = np.array([math.comb(n, k) for k in ks], dtype=float)
    half = (np.array(ks) <= n // 2) & (np.array(ks) < n)  # C(n, k) increasing in k on this side
    metrics = {"class_sizes": sizes.tolist(), "ks": ks}
    init = outputs[("init",)]
    for loss in config.losses:
        var, bound = np.asarray(init[loss]["variance"]), np.asarray(init[loss]["bound"])
        ratio = var / bound
        entry = {"max_ratio_to_bound": float(ratio.max()), "all_below_bound": bool(np.all(var <= bound * (1 + 1e-9))),
                 "ratio_mean_per_k": ratio.mean(axis=0).tolist(), "variance_mean_per_k": var.mean(axis=0).tolist(),
                 "bound_mean_per_k": bound.mean(axis=0).tolist()}
        if half.sum() >= 3 and np.all(var[:, half] > 0):
            fit = fit_exponent(np.repeat(sizes[half][None, :], var.shape[0], axis=0).ravel(), var[:, half].ravel())
            entry["slope_vs_class_size"] = fit.exponent
            entry["slope_ci95"] = list(fit.ci95)
        metrics[f"init_{loss}"] = entry
    train = outputs[("train",)]
    var = np.stack([np.asarray(train[f"variance_k{k}"]) for k in ks], axis=-1)  # (points, R, K)
    bound = np.stack([np.asarray(train[f"bound_k{k}"]) for k in ks], axis=-1)
    metrics["train"] = {
        "loss": config.loss, "k": config.train_k, "steps": train["steps"],
        "max_ratio_to_bound": float((var / bound).max()),
        "all_below_bound": bool(np.all(var <= bound * (1 + 1e-9))),
        "final_accuracy_mean": float(np.mean(train["accuracy"][-1])),
        "ratio_dense_k_per_step": (var / bound)[:, :, n // 2 - 1].mean(axis=1).tolist() if n >= 2 else [],
    }
    metrics["check"] = outputs[("check",)]
    return {"metrics": metrics, "curves": {"init": init, "train": train}}


def figure(result: Result):
    """(a) variance vs C(n, k) at init with the bound; (b) the same along SGD; (c) ratio to the
    bound along SGD for a few k."""
    from .. import plotting

    fig, axes = plotting.figure(1, 3, width=3.5, height=3.0)
    n = result.config["n"]
    ks = [k for k in result.metrics["ks"] if k < n]  # k = n: one target, no variance to show
    sizes = np.asarray(result.metrics["class_sizes"])[: len(ks)]
    order = np.argsort(sizes, kind="stable")
    ax = axes[0, 0]
    for j, loss in enumerate(result.config["losses"]):
        c = result.curves["init"][loss]
        var, bound = np.asarray(c["variance"])[:, : len(ks)], np.asarray(c["bound"])[:, : len(ks)]
        col: Any = plotting.CYCLE[j]
        m = result.metrics[f"init_{loss}"]
        label = f"{loss}" + (f": slope {m['slope_vs_class_size']:.2f}" if "slope_vs_class_size" in m else "")
        ax.plot(np.repeat(sizes[None, :], var.shape[0], axis=0).ravel(), var.ravel(), "o" if j == 0 else ".",
                mfc="none" if j == 0 else col, color=col, ms=4 if j == 0 else 2.5, alpha=0.7, label=label)
        if j == 0:
            ax.plot(sizes[order], bound.mean(axis=0)[order], "--", color=plotting.COLORS["grey"], lw=1,
                    label="bound G^2 / C(n,k)")
    _class_size_axes(ax, n, "Var over the weight-k parities",
                     f"at initialisation (n = {n}, k = 1..{n - 1}, {result.seeds['replicas']} networks)")
    train = result.curves["train"]
    steps = train["steps"]
    bx, cx = axes[0, 1], axes[0, 2]
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    for t, step in enumerate(steps):
        var = np.array([np.mean(train[f"variance_k{k}"][t]) for k in ks])
        bound = np.array([np.mean(train[f"bound_k{k}"][t]) for k in ks])
        col = cmap(0.9 * t / max(1, len(steps) - 1))
        bx.plot(sizes, var, "o", color=col, ms=2.5, label=f"step {step}" if t in (0, len(steps) - 1) else None)
        bx.plot(sizes[order], bound[order], "--", color=col, lw=0.7)
    _class_size_axes(bx, n, "Var (points) and bound (dashed)",
                     f"along SGD on a {result.config['train_k']}-parity ({result.config['loss']})")
    for j, k in enumerate(sorted({1, result.config["train_k"], max(1, n // 2)})):
        ratio = np.asarray(train[f"variance_k{k}"]) / np.asarray(train[f"bound_k{k}"])
        plotting.band(cx, steps, ratio, plotting.CYCLE[j], label=f"k = {k}")
    cx.axhline(1.0, color=plotting.COLORS["grey"], ls="--", lw=0.8)
    cx.set_ylim(0, 1.1)
    cx.set_xlabel("SGD step")
    cx.set_ylabel("Var / (G(w_t)^2 / C(n, k))")
    acc = np.mean(train["accuracy"][-1])
    cx.set_title(f"ratio to the bound (final accuracy {acc:.2f})", fontsize=8)
    cx.legend(fontsize=6.5)
    fig.tight_layout()
    return fig


def _class_size_axes(ax, n: int, ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"class size C({n}, k)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6.5)


def summary(result: Result) -> str:
    parts = [f"{loss}: max Var/bound {result.metrics[f'init_{loss}']['max_ratio_to_bound']:.3f} at init"
             for loss in result.config["losses"]]
    parts.append(f"along SGD max {result.metrics['train']['max_ratio_to_bound']:.3f}")
    parts.append(f"transform vs enumeration {result.metrics['check']['max_abs_difference_over_G2']:.1e} of G^2")
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name=NAME,
    description="exact gradient variance over the C(n,k) weight-k parities vs Theorem 1's G^2/C(n,k)",
    presets=PRESETS, figure=figure, summary=summary, family=1, cells=cells,
    run_cell={"init": init_cell, "train": train_cell, "check": check_cell}, merge=merge, tiny=TINY, paper_ref="Sec. 2.1, Theorem 1 (sparse classes)",
))
