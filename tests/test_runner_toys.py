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

from failgeom.experiments.base import Experiment, ExperimentConfig
from failgeom.results import Result
from failgeom.training import NonFiniteLossError, null_progress, seed_streams


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


def run_cell(config: ToyConfig, seed: int, key, progress=null_progress, checkpoint_dir=None) -> dict:
    _, i = key
    if config.marker_dir:
        Path(config.marker_dir, f"start-{i}-{os.getpid()}").write_text("")
    x = np.random.default_rng(seed_streams(seed, 7, i)).standard_normal(config.size)
    if config.sleep:
        time.sleep(config.sleep)
    deadline = time.perf_counter() + config.spin
    while time.perf_counter() < deadline:  # CPU-bound work for the throughput benchmark
        np.sort(np.random.default_rng(0).random(2000))
    if i == config.fail_part:
        raise NonFiniteLossError(3, 0.5, [1])
    out = {"mean": float(x.mean()), "head": x[:4].tolist(), "nan": float("nan"), "part": i}
    return {**out, "all": x.tolist()} if config.keep else out


def merge(config: ToyConfig, seed: int, outputs: dict, preset: str) -> Result:
    metrics = {f"part={k[1]}": {"mean": out["mean"], "head": out["head"]} for k, out in outputs.items()}
    curves = {f"part={k[1]}": {"steps": [0, 1], "value": [out["head"][:2], out["head"][2:]]}
              for k, out in outputs.items()}
    return Result(experiment=TOY.name, preset=preset, config=config.to_dict(),
                  seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics, curves=curves)


def run(config: ToyConfig, seed: int = 0, progress=null_progress, preset: str = "custom") -> Result:
    return merge(config, seed, {k: run_cell(config, seed, k) for k in cells(config)}, preset)


def figure(result: Result):
    from failgeom import plotting

    fig, axes = plotting.figure(1, 1, width=2.0, height=1.5)
    axes[0, 0].plot([m["mean"] for m in result.metrics.values()])
    return fig


def summary(result: Result) -> str:
    return "; ".join(f"{k}: {m['mean']:.3f}" for k, m in result.metrics.items())


@dataclass(frozen=True)
class CellExperiment(Experiment):
    """An Experiment with the cell protocol (until every experiment declares it)."""

    cells: object = None
    run_cell: object = None
    merge: object = None


TOY = CellExperiment(name="toy", description="toy cells for the runner's tests",
                     presets={"quick": ToyConfig()}, run=run, figure=figure, summary=summary, family=1,
                     cells=cells, run_cell=run_cell, merge=merge)


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
