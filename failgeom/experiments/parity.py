"""Learning random parities (paper Sec. 2.1, Figure 1).

``x`` uniform on {±1}^d, label the parity of a random subset ``v*`` of the coordinates; a network
Dense(d -> 10d) ReLU Dense(10d -> 1) trained with the hinge loss and SGD on fresh samples. By
Theorem 1 the gradient carries almost no information about ``v*`` once d is large, so the
network learns for small d and stays at chance for d = 30. One cell per d.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..problems.parity import random_subsets, sample_parity
from ..results import Result
from ..stats import describe
from ..training import Streams, first_crossing, fit, null_progress, seed_streams, train_step
from . import register
from .base import Experiment, ExperimentConfig, param

NAME = "parity"


@dataclass(frozen=True)
class ParityConfig(ExperimentConfig):
    """Hyperparameters of the parity experiment (defaults: the paper's and the original code's)."""

    dims: tuple[int, ...] = param((5, 10, 30), low=1, high=1024, doc="input dimensions d (one cell each)")
    steps: int = param(50_000, low=1, high=10**7, doc="SGD steps per dimension")
    batch: int = param(128, low=1, high=2**20, doc="fresh training samples per step and replica")
    lr: float = param(0.01, low=0.0, low_open=True, high=1e30,
                      doc="SGD learning rate (one that diverges stops the run with an error)")
    eval_every: int = param(100, low=1, high=10**7, doc="steps between evaluations")
    eval_size: int = param(500, low=1, high=2**20, doc="fresh samples per evaluation and replica")
    width_factor: int = param(10, low=1, high=1000, doc="hidden width over d (the paper: 10)")
    subset_size: int | None = param(None, low=0, high=1024,
                                    doc="size of v*; none: each coordinate in v* with probability 1/2")

    def check(self) -> None:
        if not self.dims:
            raise ValueError("dims must name at least one dimension")
        if len(set(self.dims)) != len(self.dims):
            raise ValueError(f"dims must be distinct (one cell per d), got {self.dims!r}")
        if self.subset_size is not None and self.subset_size > min(self.dims):
            raise ValueError(f"subset_size must lie in 0..{min(self.dims)} (the smallest d), got {self.subset_size}")

    def memory_bytes(self) -> int:
        return max(training_memory_bytes(d, self.width_factor, self.replicas, max(self.batch, self.eval_size),
                                         self.dtype) for d in self.dims)


def training_memory_bytes(d: int, width_factor: int, replicas: int, batch: int, dtype: str) -> int:
    """Estimated peak bytes of training R parity networks: parameters and gradients, and a few
    ``(R, batch, width)`` activation arrays of one step."""
    item = np.dtype(dtype).itemsize
    m = width_factor * d
    params = replicas * (d * m + 2 * m + 1) * item
    activations = replicas * batch * (6 * m + 3 * d) * item
    return 3 * params + activations


PRESETS = {
    "paper": ParityConfig(),
    # the contrast already shows within 20,000 steps: d = 5 and 10 learn, d = 30 does not
    "quick": ParityConfig(steps=20_000, eval_every=250),
}

#: runs in about a second (stream-distinctness and merge tests)
TINY = ParityConfig(dims=(3, 6), steps=60, eval_every=30, eval_size=64, batch=32, replicas=2)


def parity_network(d: int, width_factor: int = 10) -> nn.Sequential:
    """The paper's network for parities: Dense(d -> width_factor * d) ReLU Dense(-> 1)."""
    return nn.Sequential([nn.Dense(width_factor * d), nn.ReLU(), nn.Dense(1)])


def accuracy(score: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-replica fraction of ``y * score > 0`` (the paper's accuracy), shape ``(R,)``."""
    return np.mean(y * score > 0, axis=(1, 2))


def train_parity(d: int, streams: Streams, *, replicas: int, steps: int, batch: int, lr: float,
                 eval_every: int, eval_size: int, width_factor: int = 10, subset_size: int | None = None,
                 dtype="float32", extra_metrics=None, progress=null_progress, desc: str = ""):
    """Train ``replicas`` parity networks in dimension d with hinge loss and SGD (Sec. 2.1).

    Parameters
    ----------
    d : int
    streams : training.Streams
        The run's stream node; its children ``"target"`` and ``"init"`` give one stream per
        replica, ``"data"`` and ``"eval"`` one stream each for the training and evaluation
        samples ``(R, B, d)``.
    replicas, steps, batch, lr, eval_every, eval_size, width_factor, subset_size, dtype
        As :class:`ParityConfig`.
    extra_metrics : callable, optional
        ``extra_metrics(params) -> dict`` of per-replica ``(R,)`` metrics added at each evaluation.

    Returns
    -------
    curves : training.Curves
        ``train_loss``, ``accuracy``, ``eval_loss`` (and the extra metrics) per replica.
    subsets : ndarray (R, d) of bool
        The target subsets ``v*``.
    """
    R = replicas
    subsets = random_subsets(streams.child("target").generators(R), d, subset_size)
    model = parity_network(d, width_factor)
    params, _ = model.init(streams.child("init").generators(R), R, (d,), dtype)
    data_rng = np.random.default_rng(streams.child("data"))
    eval_rng = np.random.default_rng(streams.child("eval"))
    optimizer = nn.SGD(lr)

    def step(i):
        x, y = sample_parity(data_rng, subsets, batch, dtype)
        return train_step(model, params, nn.losses.hinge, optimizer, x, y)

    def evaluate(i):
        x, y = sample_parity(eval_rng, subsets, eval_size, dtype)
        score, _ = model.forward(params, x)
        loss, _ = nn.losses.hinge(score, y)
        metrics = {"accuracy": accuracy(score, y), "eval_loss": loss}
        if extra_metrics is not None:
            metrics.update(extra_metrics(params))
        return metrics

    curves = fit(step, steps, eval_every=eval_every, evaluate=evaluate, progress=progress,
                 desc=desc or f"parity d={d}", lr=lr)
    return curves, subsets


def cells(config: ParityConfig) -> list[tuple]:
    """One cell per dimension: ``("d", d)``."""
    return [("d", int(d)) for d in config.dims]


def run_cell(config: ParityConfig, seed: int, key: tuple, progress=null_progress) -> dict:
    """Train ``config.replicas`` networks on parities in dimension ``key[1]``."""
    d = int(key[1])
    start = time.perf_counter()
    c, subsets = train_parity(d, seed_streams(seed, NAME, "d", d), replicas=config.replicas, steps=config.steps,
                              batch=config.batch, lr=config.lr, eval_every=config.eval_every,
                              eval_size=config.eval_size, width_factor=config.width_factor,
                              subset_size=config.subset_size, dtype=config.dtype, progress=progress)
    acc = c.array("accuracy")
    final = acc[-1]
    metrics = {
        **describe(final, prefix="final_accuracy_"),
        "final_accuracy": final.tolist(),
        "max_accuracy_over_run": float(acc[1:].max()),
        "max_abs_deviation_from_chance": float(np.abs(acc[1:] - 0.5).max()),
        # the seed mean at each evaluation: its sampling noise at chance is 0.5/sqrt(eval_size R)
        "max_abs_deviation_of_seed_mean_from_chance": float(np.abs(acc[1:].mean(axis=1) - 0.5).max()),
        "steps_to_accuracy_0.95": first_crossing(c.steps[1:], acc[1:], 0.95, ">="),
        "subset_sizes": subsets.sum(axis=1).tolist(),
    }
    return {"curves": c.to_dict(), "metrics": metrics, "seconds": time.perf_counter() - start}


def merge(config: ParityConfig, seed: int, outputs: dict, preset: str = "custom") -> Result:
    """The per-d outputs as one Result: metrics and curves keyed ``d=<d>``."""
    curves, metrics, timing = {}, {}, {}
    for _, d in cells(config):
        out = outputs[("d", d)]
        curves[f"d={d}"], metrics[f"d={d}"], timing[f"d={d}"] = out["curves"], out["metrics"], out["seconds"]
    timing["total_s"] = sum(timing.values())
    return Result(experiment=NAME, preset=preset, config=config.to_dict(),
                  seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics, curves=curves, timing=timing)


def figure(result: Result):
    """The paper's Figure 1: accuracy vs iterations for each d, band = min-max over replicas."""
    from .. import plotting

    dims = result.config["dims"]
    fig, axes = plotting.figure(1, len(dims), width=3.2, height=2.7, sharey=True)
    for ax, d in zip(axes[0], dims):
        c = result.curves[f"d={d}"]
        plotting.band(ax, c["steps"], np.asarray(c["accuracy"]), plotting.COLORS["blue"])
        plotting.accuracy_axes(ax)
        ax.set_title(f"d = {d}")
    axes[0, 0].set_ylabel(f"accuracy ({result.config['eval_size']} fresh samples)")
    fig.suptitle(f"Random parities ({result.seeds['replicas']} seeds; band: min-max)", y=1.02)
    return fig


def summary(result: Result) -> str:
    """Final accuracy per d, mean ± std over the replicas."""
    return "; ".join(
        f"{key}: accuracy {m['final_accuracy_mean']:.3f} ± {m['final_accuracy_std']:.3f}"
        for key, m in result.metrics.items()
    )


EXPERIMENT = register(Experiment(
    name=NAME,
    description="random parities: small d is learned, d = 30 stays at chance (Sec. 2.1, Fig. 1)",
    presets=PRESETS, cells=cells, run_cell=run_cell, merge=merge, tiny=TINY, figure=figure,
    summary=summary, family=1, paper_ref="Sec. 2.1, Figure 1",
))
