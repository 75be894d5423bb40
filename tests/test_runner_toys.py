"""Toy experiments for the runner's tests: cells that are cheap, slow on purpose, or fail.

A toy cell draws numbers from its own seed stream (so its output depends only on config, seed
and key), may sleep or spin the CPU, may write a marker file with its pid when it starts (for the
kill tests) and may diverge. The tests import this module; worker processes import it too
(pickled references), so everything here is module level.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from failgeom.experiments.base import Cell, Experiment, ExperimentConfig
from failgeom.results import Result
from failgeom.training import NonFiniteLossError, seed_streams


@dataclass(frozen=True)
class ToyConfig(ExperimentConfig):
    parts: int = 4
    size: int = 64
    sleep: float = 0.0
    spin: float = 0.0
    fail_part: int = -1
    marker_dir: str = ""
    keep: bool = False  # the output holds all `size` numbers (large cell records)
    replicas: int = 2


def cells(config: ToyConfig):
    return [("part", i) for i in range(config.parts)]


def run_cell(config: ToyConfig, cell: Cell) -> dict:
    _, i = cell.key
    if config.marker_dir:
        Path(config.marker_dir, f"start-{i}-{os.getpid()}").write_text("")
    x = np.random.default_rng(seed_streams(cell.seed, 7, i)).standard_normal(config.size)
    if config.sleep:
        time.sleep(config.sleep)
    deadline = time.perf_counter() + config.spin
    while time.perf_counter() < deadline:  # CPU-bound work for the throughput benchmark
        np.sort(np.random.default_rng(0).random(2000))
    if i == config.fail_part:
        raise NonFiniteLossError(3, 0.5, [1])
    out = {"mean": float(x.mean()), "head": x[:4].tolist(), "nan": float("nan"), "part": i}
    return {**out, "all": x.tolist()} if config.keep else out


def merge(config: ToyConfig, outputs: dict) -> dict:
    metrics = {f"part={k[1]}": {"mean": out["mean"], "head": out["head"]} for k, out in outputs.items()}
    curves = {f"part={k[1]}": {"steps": [0, 1], "value": [out["head"][:2], out["head"][2:]]}
              for k, out in outputs.items()}
    return {"metrics": metrics, "curves": curves}


def figure(result: Result):
    from failgeom import plotting

    fig, axes = plotting.figure(1, 1, width=2.0, height=1.5)
    axes[0, 0].plot([m["mean"] for m in result.metrics.values()])
    return fig


def summary(result: Result) -> str:
    return "; ".join(f"{k}: {m['mean']:.3f}" for k, m in result.metrics.items())


TOY = Experiment(name="toy", description="toy cells for the runner's tests", presets={"quick": ToyConfig()},
                 figure=figure, summary=summary, family=1, cells=cells, run_cell=run_cell, merge=merge,
                 tiny=ToyConfig(parts=2))


@dataclass
class Row:
    """A stand-in for a ``failgeom verify`` row (what the report reads of one)."""

    id: str
    passed: bool
    statement: str = "a claim"
    computed: str = "computed"
    value: float = 0.5
    interval: tuple | None = None
    criterion: str = "a criterion"
    seconds: float = 0.0


def fake_verify(quick: bool) -> list[Row]:
    """Two verify rows of family 1 (theorem 1), one FAIL; runs anywhere in no time."""
    return [Row("thm1.toy-pass", True), Row("thm1.toy-fail", False, value=float(quick))]


def numbers(result: Result) -> dict:
    """Everything of a result that the computation decides (not timing, environment, files)."""
    data = result.to_dict()
    return {k: v for k, v in data.items() if k not in ("timing", "environment", "files")}


# --------------------------------------------------------------------------------------------
# a resumable toy: each cell is a short training run that checkpoints every 2 steps

#: abort a checkpointing cell after this step (in-process runs only; None: run to the end)
ABORT_AT = None


@dataclass(frozen=True)
class TrainConfig(ExperimentConfig):
    parts: int = 2
    steps: int = 8
    replicas: int = 2


def train_cells(config: TrainConfig):
    return [("part", i) for i in range(config.parts)]


def train_cell(config: TrainConfig, cell: Cell) -> dict:
    from failgeom.training import Checkpointer, copy_checked, fit

    seed, key, checkpoint_dir = cell.seed, cell.key, cell.checkpoint_dir
    _, i = key
    w = np.random.default_rng(seed_streams(seed, "toy-train", i, "init")).standard_normal((config.replicas, 3))
    noise = np.random.default_rng(seed_streams(seed, "toy-train", i, "noise"))

    def step(j):
        if ABORT_AT is not None and j > ABORT_AT:
            raise RuntimeError(f"aborted after step {ABORT_AT}")
        w[...] -= 0.1 * (w + 0.1 * noise.standard_normal(w.shape))
        return 0.5 * (w**2).sum(axis=1)

    def restore(arrays, meta):
        copy_checked(w, arrays["w"], "w")
        noise.bit_generator.state = meta["noise"]

    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = Checkpointer(Path(checkpoint_dir) / "state.npz", every=2, restore=restore,
                                  header={"config": config.to_dict(), "seed": seed, "key": list(key)},
                                  state=lambda: ({"w": w}, {"noise": noise.bit_generator.state}))
    curves = fit(step, config.steps, eval_every=2, evaluate=lambda j: {"norm": np.linalg.norm(w, axis=1)},
                 checkpoint=checkpoint, resume=True, progress=cell.progress)
    return {"curves": curves.to_dict()}


def train_merge(config: TrainConfig, outputs: dict) -> dict:
    curves = {f"part={k[1]}": out["curves"] for k, out in outputs.items()}
    metrics = {name: {"final_norm": c["norm"][-1]} for name, c in curves.items()}
    return {"metrics": metrics, "curves": curves}


TRAIN = Experiment(name="toy-train", description="checkpointing toy cells", presets={"quick": TrainConfig()},
                   figure=figure, summary=lambda r: "trained", family=1, cells=train_cells, run_cell=train_cell,
                   merge=train_merge, tiny=TrainConfig())
