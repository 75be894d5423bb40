"""Sparse parities: how many fresh samples SGD needs to learn a k-parity of n bits (beyond the paper).

``x`` uniform on {±1}^n, target ``prod_{i in v} x_i`` for a random k-subset v; a two-layer ReLU
network of fixed width, hinge loss, online SGD on fresh minibatches (batch 32, lr 0.1: the
standard configuration of Barak et al. 2022). For every (protocol, k, n) cell, R replicas train
as one batched computation; a replica's time is the first step at which its accuracy on a fresh
sample of ``eval_size`` inputs reaches ``target_accuracy``, checked at steps spaced by a relative
``check_growth``. A replica not learned when its cell stops (at ``max_steps``, or once a
``stop_fraction`` of the replicas has learned) is right-censored at that step, never counted as
converged. The samples to learn (steps x batch) are summarised per cell by their Kaplan-Meier
median, and their growth in n by local slopes on log-log axes over windows of consecutive n,
with bootstrap intervals over replicas; a window holding an unobserved median is not fitted.

The step-size rule is a studied variable (``protocols``): ``fixed`` (the same lr at every n),
``scaled`` (lr proportional to 1/n), ``best`` (per (k, n), the best of a log grid of learning
rates, trained side by side on the replica axis: the envelope) and ``batch`` (a smaller batch at
the same lr per sample, so that samples = steps x batch can be compared across batches). The
leap analysis (Abbe, Boix-Adsera, Misiakiewicz 2023) puts the samples at about n^(k-1) up to
logs; the claim ``beyond.sparse-exponent`` reads the tail slopes of all protocols against it.
Alongside, a hidden-progress measure (the first-layer weight mass on the support over that off
it) says when the search phase ends. A dense column (k = n // 2, the paper's case, Sec. 2.1)
shows where SGD stops at the step limit, and GF(2) elimination (:mod:`.parity_gf2`) learns the
same parities from n + O(1) samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..problems.sparse_parity import class_size, dense_k, subset_indices
from ..stats import kaplan_meier_quantile, percentile_interval
from ..training import seed_streams
from . import register
from .base import Cell, Experiment, F32_MAX, ExperimentConfig, param
from .parity_models import LOSSES, SparseTraining, recover_parities, train_parity_cell, train_sparse_parity
from .sparse_parity_analysis import censored_series, figure, k_difference, opt, summary

NAME = "sparse-parity"
KS = (2, 3, 4)
#: The largest n of the dense column: its class size C(n, n // 2) is stored as a float, which
#: overflows from n = 1030 on.
DENSE_N_MAX = 1029
PROTOCOLS = ("fixed", "scaled", "best", "batch")


@dataclass(frozen=True)
class SparseParityConfig(ExperimentConfig):
    """The n grid per k, the network, SGD (defaults: Barak et al.'s batch, rate and loss) and the
    step-size protocols compared."""

    replicas: int = param(32, low=1, doc="replicas per (protocol, k, n), trained as one batched computation")
    ns_k2: tuple[int, ...] = param((10, 20, 40, 80, 160, 320, 640, 1280), low=3, doc="n grid for k = 2")
    ns_k3: tuple[int, ...] = param((10, 15, 20, 30, 40, 60, 80, 120), low=4, doc="n grid for k = 3")
    ns_k4: tuple[int, ...] = param((8, 12, 16, 24, 32, 48, 64), low=5, doc="n grid for k = 4")
    ns_dense: tuple[int, ...] = param((8, 10, 12, 16, 20, 30), low=2, high=DENSE_N_MAX,
                                      doc="n grid of the dense column, k = n // 2")
    width: int = param(128, low=1, doc="hidden ReLU units (fixed across n)")
    batch: int = param(32, low=1, doc="fresh samples per SGD step")
    lr: float = param(0.1, low=0.0, low_open=True, high=F32_MAX, doc="SGD learning rate (protocol fixed; the base of the others); at most the float32 max, where it stays finite")
    loss: str = param("hinge", choices=tuple(LOSSES), doc="training loss")
    init: str = param("uniform", choices=("uniform", "truncated_normal"),
                      doc="uniform: weights and biases U(+-1/sqrt(fan_in)) (PyTorch's default, as Barak "
                          "et al.); truncated_normal: the paper's, std 1/sqrt(fan_in), zero biases")
    protocols: tuple[str, ...] = param(PROTOCOLS, choices=PROTOCOLS,
                                       doc="step-size protocols: fixed lr; scaled lr * lr_ref_n / n; best of "
                                           "lr * lr_grid per (k, n); batch: batch_alt at lr * batch_alt / batch")
    lr_ref_n: int = param(20, low=1, doc="protocol scaled: the n at which its lr equals lr")
    lr_grid: tuple[float, ...] = param((0.25, 1.0, 4.0, 16.0), low=0.0, low_open=True, high=1000.0,
                                       doc="protocol best: multipliers of lr, one group of grid_replicas each")
    grid_replicas: int = param(8, low=1, doc="protocol best: replicas per learning rate of the grid")
    batch_alt: int = param(8, low=1, doc="protocol batch: its batch (lr scaled by batch_alt / batch)")
    max_steps: int = param(200_000, low=1,
                           doc="step limit of the sparse cells at batch `batch` (censoring); protocol batch "
                               "gets the same number of samples")
    stop_fraction: float = param(1.0, low=0.0, low_open=True, high=1.0,
                                 doc="a cell stops once this fraction of its replicas has learned (protocol best: "
                                     "once one learning rate's have all learned); the others are censored there")
    dense_max_steps: int = param(50_000, low=1, doc="step limit of the dense column")
    eval_size: int = param(8192, low=1, doc="fresh inputs of each accuracy check")
    target_accuracy: float = param(1.0, low=0.5, low_open=True, high=1.0,
                                   doc="accuracy on the check sample that counts as learned")
    check_growth: float = param(0.02, low=0.0, high=1.0,
                                doc="a check at step i is followed by one at i + max(1, floor(growth i))")
    eval_every: int = param(200, low=1, doc="interval of the recorded accuracy curve")
    curve_size: int = param(512, low=1, doc="fresh inputs per point of the accuracy curve")
    progress_ratio: float = param(1.5, low=1.0, low_open=True, high=1e6,
                                  doc="hidden progress: the first check at which the mean |first-layer weight| "
                                      "on the support exceeds this multiple of that off it")
    bootstrap: int = param(2000, low=100, doc="bootstrap resamples of the replicas")
    slope_window: int = param(3, low=2, high=100, doc="consecutive n per local slope")
    gf2_trials: int = param(32, low=1, doc="GF(2) elimination trials per n (beside SGD)")

    def grids(self) -> dict[int, tuple[int, ...]]:
        """``{k: ns}`` for the sparse k that have a grid."""
        return {k: ns for k, ns in zip(KS, (self.ns_k2, self.ns_k3, self.ns_k4)) if ns}

    def check(self) -> None:
        grids = self.grids()
        if not grids:
            raise ValueError("at least one of ns_k2, ns_k3, ns_k4 must hold sizes")
        for k, ns in grids.items():
            if len(set(ns)) < self.slope_window or list(ns) != sorted(set(ns)):
                raise ValueError(f"ns_k{k} must hold at least slope_window = {self.slope_window} increasing sizes, "
                                 f"got {ns!r}")
            if min(ns) <= k:
                raise ValueError(f"every element of ns_k{k} must exceed k = {k}, got {ns!r}")
        if not self.protocols or len(set(self.protocols)) != len(self.protocols):
            raise ValueError(f"protocols must name distinct protocols, got {self.protocols!r}")
        if "best" in self.protocols and len(set(self.lr_grid)) < 2:
            raise ValueError(f"lr_grid must hold at least 2 distinct multipliers for protocol best, got {self.lr_grid!r}")

    def memory_bytes(self) -> int:
        n = max(max(ns) for ns in (self.ns_k2, self.ns_k3, self.ns_k4, self.ns_dense) if ns)
        R = max(self.replicas, len(self.lr_grid) * self.grid_replicas)
        rows = max(self.batch, self.batch_alt, min(self.eval_size, 4096), self.curve_size)
        # parameters, initial first layer, gradients and SGD temporaries; inputs and hidden activations
        # and the bootstrap's (resamples, replicas) int64 indices with a copy
        return 4 * R * (4 * n * self.width + 4 * rows * (n + 3 * self.width)) + 16 * self.bootstrap * R

    def training(self) -> SparseTraining:
        """The settings of the network, SGD, the check and the curve."""
        return SparseTraining(replicas=self.replicas, width=self.width, init=self.init, batch=self.batch, lr=self.lr,
                              loss=self.loss, eval_every=self.eval_every, dtype=self.dtype, eval_size=self.eval_size,
                              target_accuracy=self.target_accuracy, check_growth=self.check_growth,
                              curve_size=self.curve_size, stop_fraction=self.stop_fraction,
                              progress_ratio=self.progress_ratio)

    def protocol(self, name: str, n: int) -> dict:
        """The replicas, batch, per-replica learning rates, lr groups and step limit of ``name`` at n."""
        if name == "best":
            lrs = np.repeat(self.lr * np.asarray(self.lr_grid, dtype=np.float64), self.grid_replicas)
            groups = np.repeat(np.arange(len(self.lr_grid)), self.grid_replicas)
            return {"replicas": lrs.size, "batch": self.batch, "lr": lrs, "groups": groups,
                    "max_steps": self.max_steps}
        R, batch, limit = self.replicas, self.batch, self.max_steps
        if name == "fixed":
            lr = self.lr
        elif name == "scaled":
            lr = self.lr * self.lr_ref_n / n
        elif name == "batch":
            lr, batch = self.lr * self.batch_alt / self.batch, self.batch_alt
            limit = max(1, self.max_steps * self.batch // self.batch_alt)
        else:
            raise ValueError(f"unknown protocol {name!r} (known: {', '.join(PROTOCOLS)})")
        return {"replicas": R, "batch": batch, "lr": np.full(R, lr), "groups": np.zeros(R, dtype=np.int64),
                "max_steps": limit}


PRESETS = {
    # Barak et al.'s batch, rate and loss, every protocol; n grids doubling and shared between k
    # so that slopes can be compared at equal n (time estimated in docs/sparse-parity.md)
    "paper": SparseParityConfig(ns_k2=(10, 20, 40, 80, 160, 320, 640, 1280), ns_k3=(10, 20, 40, 80, 160),
                                ns_k4=(10, 20, 40, 80), stop_fraction=0.75),
    # k = 2, 3 on a shared doubling grid, every protocol; a short dense column
    "quick": SparseParityConfig(replicas=16, ns_k2=(10, 20, 40, 80), ns_k3=(10, 20, 40), ns_k4=(),
                                ns_dense=(8, 16), lr_grid=(1.0, 4.0, 16.0), max_steps=20_000,
                                stop_fraction=0.9, dense_max_steps=3000, eval_size=2048, eval_every=100,
                                bootstrap=1000, gf2_trials=8),
}
TINY = SparseParityConfig(replicas=2, ns_k2=(4, 5, 6), ns_k3=(), ns_k4=(), ns_dense=(4,), width=16,
                          max_steps=200, dense_max_steps=20, eval_size=256, eval_every=50, curve_size=64,
                          bootstrap=100, gf2_trials=2, lr_grid=(0.5, 2.0), grid_replicas=1, batch_alt=8)


# ---------------------------------------------------------------------------------------------
# cells


def cells(config: SparseParityConfig) -> list[tuple]:
    keys: list[tuple] = [("sparse", p, k, n) for p in config.protocols for k, ns in config.grids().items() for n in ns]
    keys += [("dense", n) for n in config.ns_dense]
    all_ns = sorted({n for ns in config.grids().values() for n in ns} | set(config.ns_dense))
    return keys + [("gf2", n) for n in all_ns]


def _steps_list(first: np.ndarray) -> list:
    return [int(s) if s >= 0 else None for s in first]


def sparse_cell(config: SparseParityConfig, cell: Cell) -> dict:
    """("sparse", protocol, k, n): the first learned step per replica under the protocol, with
    hidden progress, the subsets and the accuracy curve."""
    protocol, k, n = str(cell.key[1]), int(cell.key[2]), int(cell.key[3])
    setting = config.protocol(protocol, n)
    hit, curves, subsets = train_parity_cell(config.training(), n, k, cell.streams, setting["max_steps"],
                                             progress=cell.progress, setting=setting, hidden_progress=True)
    return {"protocol": protocol, "k": k, "n": n, "batch": setting["batch"], "lr": setting["lr"].tolist(),
            "groups": setting["groups"].tolist(), "max_steps": setting["max_steps"],
            "steps": _steps_list(hit.first), "censored": int(np.sum(hit.first < 0)),
            "diverged": int(hit.diverged.sum()),
            "steps_run": int(curves.steps[-1]), "progress_steps": _steps_list(hit.progress),
            "subsets": subset_indices(subsets), "curve": curves.to_dict()}


def dense_cell(config: SparseParityConfig, cell: Cell) -> dict:
    """("dense", n): the first learned step per replica on k = n // 2 parities."""
    n = int(cell.key[1])
    k, limit = dense_k(n), config.dense_max_steps
    first, curves, subsets = train_sparse_parity(config.training(), n, k, cell.streams, limit, progress=cell.progress)
    return {"k": k, "n": n, "max_steps": limit, "steps": _steps_list(first),
            "censored": int(np.sum(first < 0)), "steps_run": int(curves.steps[-1]),
            "subsets": subset_indices(subsets), "curve": curves.to_dict()}


def gf2_cell(config: SparseParityConfig, cell: Cell) -> dict:
    """("gf2", n): samples needed by GF(2) elimination, per trial."""
    n = int(cell.key[1])
    out = recover_parities(n, cell.streams, config.gf2_trials)
    return {"n": n, "samples_needed": out["samples_needed"], "outcome": out["outcome"]}


def merge(config: SparseParityConfig, outputs: dict, *, seed: int) -> dict:
    """Per (protocol, k): Kaplan-Meier medians of the samples, local slopes, the tail; per k: the
    table row the claim reads; the k differences, the batch check, the dense column, GF(2).
    The bootstrap draws from the stream ``sparse-parity / bootstrap / protocol / k`` of ``seed``."""
    metrics: dict[str, Any]
    metrics, curves = {}, {}
    rows, boots = {}, {}
    for protocol in config.protocols:
        for k, ns in config.grids().items():
            outs = [outputs[("sparse", protocol, k, n)] for n in ns]
            rng = np.random.default_rng(seed_streams(seed, NAME, "bootstrap", protocol, k))
            rows[(protocol, k)], boots[(protocol, k)] = censored_series(
                outs, protocol, k, rng, config.bootstrap, config.slope_window, len(config.protocols))
            metrics[f"{protocol} k={k}"] = rows[(protocol, k)]
            curves[f"{protocol} k={k}"] = {"ns": list(ns), "steps": [o["steps"] for o in outs]}
            if protocol == config.protocols[0]:
                curves[f"k={k} n={ns[-1]} {protocol}"] = outs[-1]["curve"]
    table = []
    for k in config.grids():
        protos = {}
        for protocol in config.protocols:
            r = rows[(protocol, k)]
            protos[protocol] = {"tail": r["tail"], "converged": int(sum(r["converged"])), "total": int(sum(r["total"])),
                                "last_median_observed_n": max((n for n, m in zip(r["ns"], r["median_samples"])
                                                               if m is not None), default=None)}
        tails = [p["tail"] for p in protos.values() if p["tail"] is not None]
        slopes = [t["slope"] for t in tails]
        lows = [t["ci"][0] for t in tails]
        highs = [t["ci"][1] for t in tails]
        table.append({"k": k, "prediction": max(k - 1, 1), "protocols": protos,
                      "spread": float(max(slopes) - min(slopes)) if slopes else None,
                      "envelope": [None if not lows or any(v is None for v in lows) else float(min(lows)),
                                   None if not highs or any(v is None for v in highs) else float(max(highs))]})
    metrics["table"] = table
    ks = list(config.grids())
    metrics["k_differences"] = [d for p in config.protocols for k1, k2 in zip(ks, ks[1:])
                                if (d := k_difference(rows, boots, p, k1, k2, config.slope_window)) is not None]
    if "batch" in config.protocols and "fixed" in config.protocols:
        check = []
        for k in ks:
            a, b = rows[("fixed", k)], rows[("batch", k)]
            for i, n in enumerate(a["ns"]):
                if a["median_samples"][i] is None or b["median_samples"][i] is None:
                    continue
                with np.errstate(divide="ignore", invalid="ignore"):
                    logr = np.log(boots[("batch", k)][:, i]) - np.log(boots[("fixed", k)][:, i])
                check.append({"k": k, "n": n, "batch": a["batch"], "batch_alt": b["batch"],
                              "ratio": b["median_samples"][i] / a["median_samples"][i],
                              "ratio_ci": [None if v is None else float(np.exp(v)) for v in percentile_interval(logr)]})
        metrics["batch_check"] = check
    if config.ns_dense:
        outs = [outputs[("dense", n)] for n in config.ns_dense]
        metrics["dense"] = {
            "ns": list(config.ns_dense), "k": [o["k"] for o in outs],
            "class_size": [float(class_size(o["n"], o["k"])) for o in outs],
            "censored": [o["censored"] for o in outs], "replicas": config.replicas,
            "max_steps": config.dense_max_steps,
            "median_steps": [opt(kaplan_meier_quantile([config.dense_max_steps if s is None else s for s in o["steps"]],
                                                        [s is not None for s in o["steps"]])) for o in outs],
        }
        curves["dense"] = {"ns": list(config.ns_dense), "steps": [o["steps"] for o in outs]}
        curves[f"dense n={config.ns_dense[-1]} accuracy"] = outs[-1]["curve"]
    gf2_keys = sorted(k for k in outputs if k[0] == "gf2")
    needed = [outputs[k]["samples_needed"] for k in gf2_keys]
    metrics["gf2"] = {
        "ns": [k[1] for k in gf2_keys], "trials": config.gf2_trials,
        "median_samples_needed": [float(np.median([s for s in row if s is not None])) for row in needed],
        "successes_with_n_plus_10": sum(outputs[k]["outcome"].count("correct") for k in gf2_keys),
        "total_trials": config.gf2_trials * len(gf2_keys),
    }
    return {"metrics": metrics, "curves": curves}


EXPERIMENT = register(Experiment(
    name=NAME,
    description="k-sparse parities: samples to learn vs n per step-size protocol (Kaplan-Meier medians, "
                "local slopes) against k-1, hidden progress, dense column, GF(2)",
    presets=PRESETS, figure=figure, summary=summary, family=1, cells=cells,
    run_cell={"sparse": sparse_cell, "dense": dense_cell, "gf2": gf2_cell}, merge=merge, tiny=TINY,
    paper_ref="Sec. 2.1, Theorem 1 (beyond the paper)",
))
