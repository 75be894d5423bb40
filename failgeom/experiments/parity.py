"""Learning random parities (paper Sec. 2.1, Figure 1).

``x`` uniform on {±1}^d, label the parity of a random subset ``v*`` of the coordinates; a network
Dense(d -> 10d) ReLU Dense(10d -> 1) trained with the hinge loss and SGD on fresh samples. By
Theorem 1 the gradient carries almost no information about ``v*`` once d is large, so the
network learns for small d and stays at chance for d = 30. One cell per d; the network and its
trainer are :mod:`.parity_models`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..results import Result
from ..stats import describe
from ..training import first_crossing
from . import register
from .base import Cell, Experiment, F32_MAX, ExperimentConfig, param
from .parity_models import train_parity, training_memory_bytes

NAME = "parity"


@dataclass(frozen=True)
class ParityConfig(ExperimentConfig):
    """Hyperparameters of the parity experiment (defaults: the paper's and the original code's)."""

    dims: tuple[int, ...] = param((5, 10, 30), low=1, doc="input dimensions d (one cell each)")
    steps: int = param(50_000, low=1, doc="SGD steps per dimension")
    batch: int = param(128, low=1, doc="fresh training samples per step and replica")
    lr: float = param(0.01, low=0.0, low_open=True, high=F32_MAX,
                      doc="SGD learning rate (one that diverges stops the run with an error); at most the float32 max, where it stays finite")
    eval_every: int = param(100, low=1, doc="steps between evaluations")
    eval_size: int = param(500, low=1, doc="fresh samples per evaluation and replica")
    width_factor: int = param(10, low=1, doc="hidden width over d (the paper: 10)")
    subset_size: int | None = param(None, low=0,
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


PRESETS = {
    "paper": ParityConfig(),
    # the contrast already shows within 20,000 steps: d = 5 and 10 learn, d = 30 does not
    "quick": ParityConfig(steps=20_000, eval_every=250),
}

#: runs in about a second (stream-distinctness and merge tests)
TINY = ParityConfig(dims=(3, 6), steps=60, eval_every=30, eval_size=64, batch=32, replicas=2)


def cells(config: ParityConfig) -> list[tuple]:
    """One cell per dimension: ``("d", d)``."""
    return [("d", int(d)) for d in config.dims]


def run_cell(config: ParityConfig, cell: Cell) -> dict:
    """Train ``config.replicas`` networks on parities in dimension d of the cell ``("d", d)``."""
    d = int(cell.key[1])
    c, subsets = train_parity(d, cell.streams, replicas=config.replicas, steps=config.steps,
                              batch=config.batch, lr=config.lr, eval_every=config.eval_every,
                              eval_size=config.eval_size, width_factor=config.width_factor,
                              subset_size=config.subset_size, dtype=config.dtype, progress=cell.progress)
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
    return {"curves": c.to_dict(), "metrics": metrics}


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
    presets=PRESETS, cells=cells, run_cell=run_cell, tiny=TINY, figure=figure,
    summary=summary, family=1, paper_ref="Sec. 2.1, Figure 1",
))
