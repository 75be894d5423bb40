"""Learning random parities (paper Sec. 2.1, Figure 1).

``x`` uniform on {±1}^d, label the parity of a random subset ``v*`` of the coordinates; a network
Dense(d -> 10d) ReLU Dense(10d -> 1) trained with the hinge loss and SGD on fresh samples. By
Theorem 1 the gradient carries almost no information about ``v*`` once d is large, so the
network learns for small d and stays at chance for d = 30.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..problems.parity import random_subsets, sample_parity
from ..results import Result
from ..training import null_progress, seed_streams, train
from . import register
from .base import Experiment, ExperimentConfig


@dataclass(frozen=True)
class ParityConfig(ExperimentConfig):
    """Hyperparameters of the parity experiment (defaults: the paper's)."""

    dims: tuple[int, ...] = (5, 10, 30)
    steps: int = 50_000
    batch: int = 128
    lr: float = 0.01
    eval_every: int = 100
    eval_size: int = 500
    width_factor: int = 10
    subset_size: int | None = None

    positive = ("replicas", "dims", "steps", "batch", "lr", "eval_every", "eval_size", "width_factor")

    def check(self) -> None:
        if self.subset_size is not None and not 0 <= self.subset_size <= min(self.dims):
            raise ValueError(f"subset_size must lie in 0..{min(self.dims)} (the smallest d), got {self.subset_size}")


PRESETS = {
    "paper": ParityConfig(),
    # the contrast already shows within 20,000 steps: d = 5 and 10 learn, d = 30 does not
    "quick": ParityConfig(steps=20_000, eval_every=250),
}


def parity_network(d: int, width_factor: int = 10) -> nn.Sequential:
    """The paper's network for parities: Dense(d -> width_factor * d) ReLU Dense(-> 1)."""
    return nn.Sequential([nn.Dense(width_factor * d), nn.ReLU(), nn.Dense(1)])


def accuracy(score: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-replica fraction of ``y * score > 0`` (the paper's accuracy)."""
    return np.mean(y * score > 0, axis=(1, 2))


def train_parity(d: int, streams: np.random.SeedSequence, *, replicas: int, steps: int, batch: int,
                 lr: float, eval_every: int, eval_size: int, width_factor: int = 10,
                 subset_size: int | None = None, dtype="float32", extra_metrics=None,
                 progress=null_progress, desc: str = ""):
    """Train ``replicas`` parity networks in dimension d with hinge loss and SGD (Sec. 2.1).

    ``streams`` feeds, through four children, the initial weights and the target subsets (one
    stream per replica each), the training minibatches and the evaluation samples.
    ``extra_metrics(params) -> dict`` adds per-replica metrics at each evaluation. Returns
    ``(Curves, subsets)``.
    """
    R = replicas
    init_ss, target_ss, data_ss, eval_ss = streams.spawn(4)
    subsets = random_subsets([np.random.default_rng(s) for s in target_ss.spawn(R)], d, subset_size)
    model = parity_network(d, width_factor)
    params, _ = model.init([np.random.default_rng(s) for s in init_ss.spawn(R)], R, (d,), dtype)
    data_rng, eval_rng = np.random.default_rng(data_ss), np.random.default_rng(eval_ss)

    def sample():
        return sample_parity(data_rng, subsets, batch, dtype)

    def evaluate(p):
        x, y = sample_parity(eval_rng, subsets, eval_size, dtype)
        score, _ = model.forward(p, x)
        loss, _ = nn.losses.hinge(score, y)
        metrics = {"accuracy": accuracy(score, y), "eval_loss": loss}
        if extra_metrics is not None:
            metrics.update(extra_metrics(p))
        return metrics

    curves = train(model, params, nn.losses.hinge, nn.SGD(lr), sample, steps, eval_every=eval_every,
                   evaluate=evaluate, progress=progress, desc=desc or f"parity d={d}")
    return curves, subsets


def run_dimension(config: ParityConfig, d: int, seed: int, progress=null_progress):
    """Train ``config.replicas`` networks on parities in dimension d; returns (Curves, subsets)."""
    return train_parity(d, seed_streams(seed, d), replicas=config.replicas, steps=config.steps,
                        batch=config.batch, lr=config.lr, eval_every=config.eval_every,
                        eval_size=config.eval_size, width_factor=config.width_factor,
                        subset_size=config.subset_size, dtype=config.dtype, progress=progress)


def run(config: ParityConfig, seed: int = 0, progress=null_progress, preset: str = "custom") -> Result:
    """Run every d of the config; metrics hold the final accuracy per d over the replicas."""
    config.validate()
    curves, metrics, timing = {}, {}, {}
    for d in config.dims:
        start = time.perf_counter()
        c, subsets = run_dimension(config, d, seed, progress)
        timing[f"d={d}"] = time.perf_counter() - start
        acc = c.array("accuracy")
        final = acc[-1]
        curves[f"d={d}"] = c.to_dict()
        metrics[f"d={d}"] = {
            "final_accuracy_mean": float(final.mean()),
            "final_accuracy_std": float(final.std()),
            "final_accuracy_min": float(final.min()),
            "final_accuracy_max": float(final.max()),
            "final_accuracy": final.tolist(),
            "max_accuracy_over_run": float(acc[1:].max()),
            "max_abs_deviation_from_chance": float(np.abs(acc[1:] - 0.5).max()),
            # the seed mean at each evaluation: its sampling noise at chance is 0.5/sqrt(500 R)
            "max_abs_deviation_of_seed_mean_from_chance": float(np.abs(acc[1:].mean(axis=1) - 0.5).max()),
            "steps_to_accuracy_0.95": [
                int(c.steps[1:][np.argmax(col >= 0.95)]) if (col >= 0.95).any() else None
                for col in acc[1:].T
            ],
            "subset_sizes": subsets.sum(axis=1).tolist(),
        }
    timing["total_s"] = sum(timing.values())
    return Result(
        experiment="parity", preset=preset, config=config.to_dict(),
        seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics, curves=curves,
        timing=timing,
    )


def figure(result: Result):
    """The paper's Figure 1: accuracy vs iterations for each d, band = min-max over replicas."""
    from .. import plotting

    dims = result.config["dims"]
    fig, axes = plotting.figure(1, len(dims), width=3.2, height=2.7, sharey=True)
    for ax, d in zip(axes[0], dims):
        c = result.curves[f"d={d}"]
        plotting.band(ax, c["steps"], np.asarray(c["accuracy"]), plotting.COLORS["blue"])
        ax.axhline(0.5, color=plotting.COLORS["grey"], ls="--", lw=0.8)
        ax.set_title(f"d = {d}")
        ax.set_xlabel("iterations")
        ax.set_ylim(0.35, 1.02)
    axes[0, 0].set_ylabel("accuracy (500 fresh samples)")
    fig.suptitle(f"Random parities ({result.seeds['replicas']} seeds; band: min-max)", y=1.02)
    return fig


def summary(result: Result) -> str:
    """Final accuracy per d, mean ± std over the replicas."""
    return "; ".join(
        f"{key}: accuracy {m['final_accuracy_mean']:.3f} ± {m['final_accuracy_std']:.3f}"
        for key, m in result.metrics.items()
    )


EXPERIMENT = register(Experiment(
    name="parity",
    description="random parities: small d is learned, d = 30 stays at chance (Sec. 2.1, Fig. 1)",
    presets=PRESETS, run=run, figure=figure, summary=summary, family=1,
    paper_ref="Sec. 2.1, Figure 1",
))
