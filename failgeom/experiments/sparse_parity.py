"""Sparse parities: how SGD's steps to learn a k-parity of n bits grow with n (beyond the paper).

``x`` uniform on {±1}^n, target ``prod_{i in v} x_i`` for a random k-subset v; a two-layer ReLU
network of fixed width, hinge loss, online SGD on fresh minibatches (batch 32, lr 0.1: the
standard configuration of Barak et al. 2022). For every (k, n) cell, R replicas train as one
batched computation; a replica's time is the first step at which its accuracy on a fresh sample
of ``eval_size`` inputs reaches ``target_accuracy``, checked at steps spaced by a relative
``check_growth``; a replica that never gets there within ``max_steps`` is censored, and kept as
such. Per k, the exponent of the median steps in n is fitted on log-log axes, with a bootstrap
interval over replicas, and put next to the leap-complexity prediction max(k - 1, 1) and the
statistical-query order k. A dense column (k = n // 2, the paper's case, Sec. 2.1) shows where
SGD stops at the step limit, and GF(2) elimination (:mod:`.parity_gf2`) learns the same parities
from n + O(1) samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..problems.sparse_parity import class_size, dense_k, k_subsets, sample_parity, subset_indices
from ..results import Result
from ..theory.scaling import fit_exponent
from ..training import StopTraining, null_progress, seed_streams, train
from . import register
from .base import Experiment, ExperimentConfig, param
from .parity import accuracy
from .parity_gf2 import recover_parities

NAME = "sparse-parity"
KS = (2, 3, 4)
#: The largest n of the dense column: its class size C(n, n // 2) is stored as a float, which
#: overflows from n = 1030 on.
DENSE_N_MAX = 1029
LOSSES = {"hinge": nn.losses.hinge, "square": lambda out, y: nn.losses.squared(out, y, coef=0.5)}


@dataclass(frozen=True)
class SparseParityConfig(ExperimentConfig):
    """The n grid per k, the network and SGD (defaults: Barak et al.'s batch, rate and loss)."""

    replicas: int = param(32, low=1, high=4096, doc="replicas per (k, n), trained as one batched computation")
    ns_k2: tuple[int, ...] = param((10, 20, 40, 80, 160, 320, 640, 1280), low=3, high=4096,
                                   doc="n grid for k = 2")
    ns_k3: tuple[int, ...] = param((10, 15, 20, 30, 40, 60, 80, 120), low=4, high=4096,
                                   doc="n grid for k = 3")
    ns_k4: tuple[int, ...] = param((8, 12, 16, 24, 32, 48, 64), low=5, high=4096,
                                   doc="n grid for k = 4")
    ns_dense: tuple[int, ...] = param((8, 10, 12, 16, 20, 30), low=2, high=DENSE_N_MAX,
                                      doc="n grid of the dense column, k = n // 2")
    width: int = param(128, low=1, high=65_536, doc="hidden ReLU units (fixed across n)")
    batch: int = param(32, low=1, high=65_536, doc="fresh samples per SGD step")
    lr: float = param(0.1, low=0.0, low_open=True, high=100.0, doc="SGD learning rate")
    loss: str = param("hinge", choices=tuple(LOSSES), doc="training loss")
    init: str = param("uniform", choices=("uniform", "truncated_normal"),
                      doc="uniform: weights and biases U(+-1/sqrt(fan_in)) (PyTorch's default, as Barak "
                          "et al.); truncated_normal: the paper's, std 1/sqrt(fan_in), zero biases")
    max_steps: int = param(200_000, low=1, high=10**9, doc="step limit of the sparse cells (censoring)")
    dense_max_steps: int = param(50_000, low=1, high=10**9, doc="step limit of the dense column")
    eval_size: int = param(8192, low=1, high=2**20, doc="fresh inputs of each accuracy check")
    target_accuracy: float = param(1.0, low=0.5, low_open=True, high=1.0,
                                   doc="accuracy on the check sample that counts as learned")
    check_growth: float = param(0.02, low=0.0, high=1.0,
                                doc="a check at step i is followed by one at i + max(1, floor(growth i))")
    eval_every: int = param(200, low=1, high=10**9, doc="interval of the recorded accuracy curve")
    curve_size: int = param(512, low=1, high=2**20, doc="fresh inputs per point of the accuracy curve")
    bootstrap: int = param(2000, low=100, high=10**6, doc="bootstrap resamples of the replicas")
    tail_points: int = param(4, low=3, high=100,
                             doc="the largest n of each grid also get a fit of their own (drift of the exponent)")
    gf2_trials: int = param(32, low=1, high=10_000, doc="GF(2) elimination trials per n (beside SGD)")

    def grids(self) -> dict[int, tuple[int, ...]]:
        """``{k: ns}`` for the sparse k that have a grid."""
        return {k: ns for k, ns in zip(KS, (self.ns_k2, self.ns_k3, self.ns_k4)) if ns}

    def check(self) -> None:
        grids = self.grids()
        if not grids:
            raise ValueError("at least one of ns_k2, ns_k3, ns_k4 must hold sizes")
        for k, ns in grids.items():
            if len(set(ns)) < 3:
                raise ValueError(f"ns_k{k} must hold at least 3 distinct sizes for the exponent fit, got {ns!r}")
            if min(ns) <= k:
                raise ValueError(f"every element of ns_k{k} must exceed k = {k}, got {ns!r}")

    def memory_bytes(self) -> int:
        n = max(max(ns) for ns in (self.ns_k2, self.ns_k3, self.ns_k4, self.ns_dense) if ns)
        rows = max(self.batch, min(self.eval_size, 4096), self.curve_size)
        # parameters, gradients and SGD temporaries; inputs and hidden activations of one pass
        return 4 * self.replicas * (3 * n * self.width + 4 * rows * (n + 3 * self.width))


PRESETS = {
    # Barak et al.'s batch, rate and loss; n grids as far as a few minutes per cell on one core
    "paper": SparseParityConfig(),
    # k = 2, 3 with four n each and a short dense column: about a minute on 2 cores
    "quick": SparseParityConfig(ns_k2=(10, 20, 40, 80), ns_k3=(10, 15, 20, 30), ns_k4=(),
                                ns_dense=(8, 16), max_steps=30_000, dense_max_steps=3000, eval_every=100,
                                bootstrap=1000),
}
TINY = SparseParityConfig(replicas=2, ns_k2=(4, 5, 6), ns_k3=(), ns_k4=(), ns_dense=(4,), width=16,
                          max_steps=200, dense_max_steps=20, eval_size=256, eval_every=50, curve_size=64,
                          bootstrap=100, gf2_trials=2)


# ---------------------------------------------------------------------------------------------
# the network and its training


def sparse_network(width: int) -> nn.Sequential:
    """Dense(n -> width) ReLU Dense(width -> 1)."""
    return nn.Sequential([nn.Dense(width), nn.ReLU(), nn.Dense(1)])


def init_params(model: nn.Sequential, rngs, n: int, width: int, init: str, dtype) -> list:
    """Initial parameters, one generator per replica. ``"uniform"`` draws every weight and bias
    from U(-1/sqrt(fan_in), 1/sqrt(fan_in)); ``"truncated_normal"`` is :class:`nn.Dense`'s own."""
    R = len(rngs)
    if init == "truncated_normal":
        params, _ = model.init(rngs, R, (n,), dtype)
        return params
    shapes = [(n, width), (width,), (width, 1), (1,)]
    arrays = [np.empty((R,) + s) for s in shapes]
    for r, rng in enumerate(rngs):  # set-up only: one draw per replica stream
        for a, shape, fan_in in zip(arrays, shapes, (n, n, width, width)):
            bound = 1.0 / np.sqrt(fan_in)
            a[r] = rng.uniform(-bound, bound, shape)
    W1, b1, W2, b2 = (a.astype(dtype) for a in arrays)
    return [{"W": W1, "b": b1}, {}, {"W": W2, "b": b2}]


def replica_slice(params: list, idx: np.ndarray) -> list:
    """The parameters of the replicas ``idx`` (copies), in the same layout."""
    return [{name: a[idx] for name, a in layer.items()} for layer in params]


def check_chunks(eval_size: int, first: int = 64) -> list[int]:
    """Chunk sizes of one accuracy check: ``first``, then doubling the total, summing to eval_size."""
    sizes, total = [], 0
    while total < eval_size:
        sizes.append(min(max(first, total), eval_size - total))
        total += sizes[-1]
    return sizes


class FirstHit:
    """A :func:`failgeom.training.fit` hook: the first checked step at which each replica's accuracy
    on a fresh sample of ``eval_size`` inputs is at least ``target``.

    The check draws the sample in chunks (64 inputs, then doubling) and drops a replica as soon
    as its errors exceed ``floor((1 - target) eval_size)``, so the outcome is exactly that of the
    whole sample while a replica at chance costs only the first chunk. Checks run at step 1 and
    then at ``i + max(1, floor(growth i))``; learned replicas are no longer checked, and training
    stops when every replica has learned (unless ``stop`` is false).
    """

    def __init__(self, model, params, subsets, rng, *, eval_size: int, target: float, growth: float, dtype,
                 stop: bool = True):
        self.model, self.params, self.subsets, self.rng, self.dtype = model, params, subsets, rng, dtype
        self.stop = stop
        self.chunks = check_chunks(eval_size)
        self.allowed = int(np.floor((1.0 - target) * eval_size + 1e-9))
        self.growth = growth
        self.first = np.full(subsets.shape[0], -1, dtype=np.int64)
        self.next_check = 1

    def passes(self, idx: np.ndarray) -> np.ndarray:
        """Which of the replicas ``idx`` reach the target on one fresh check sample."""
        errors = np.zeros(idx.size, dtype=np.int64)
        alive = np.arange(idx.size)
        for size in self.chunks:
            sub = idx[alive]
            x, y = sample_parity(self.rng, self.subsets[sub], size, self.dtype)
            score, _ = self.model.forward(replica_slice(self.params, sub), x)
            errors[alive] += np.sum(y * score <= 0, axis=(1, 2))
            alive = alive[errors[alive] <= self.allowed]
            if alive.size == 0:
                break
        return errors <= self.allowed

    def __call__(self, i: int) -> None:
        if i < self.next_check:
            return
        self.next_check = i + max(1, int(self.growth * i))
        todo = np.flatnonzero(self.first < 0)
        self.first[todo[self.passes(todo)]] = i
        if self.stop and np.all(self.first >= 0):
            raise StopTraining


def train_sparse_parity(config: SparseParityConfig, n: int, k: int, streams, max_steps: int, *,
                        extra_metrics=None, stop_when_learned: bool = True, progress=null_progress):
    """Train ``config.replicas`` networks on random k-parities of n bits until each has learned.

    ``streams`` feeds the targets and initial weights (one child per replica each), the training
    minibatches, the check samples and the curve samples. ``extra_metrics(params) -> dict``
    adds per-replica metrics to the curve; with ``stop_when_learned`` training ends once every
    replica has learned. Returns ``(first, curves, subsets)``: the first
    learned step per replica (-1 if censored at ``max_steps``), the accuracy curve, the subsets.
    """
    R, dtype = config.replicas, config.dtype
    subsets = k_subsets(streams.child("target").generators(R), n, k)
    model = sparse_network(config.width)
    params = init_params(model, streams.child("init").generators(R), n, config.width, config.init, dtype)
    data_rng = np.random.default_rng(streams.child("data"))
    curve_rng = np.random.default_rng(streams.child("curve"))
    hit = FirstHit(model, params, subsets, np.random.default_rng(streams.child("check")),
                   eval_size=config.eval_size, target=config.target_accuracy, growth=config.check_growth,
                   dtype=dtype, stop=stop_when_learned)

    def evaluate(p):
        x, y = sample_parity(curve_rng, subsets, config.curve_size, dtype)
        score, _ = model.forward(p, x)
        metrics = {"accuracy": accuracy(score, y)}
        if extra_metrics is not None:
            metrics.update(extra_metrics(p))
        return metrics

    curves = train(model, params, LOSSES[config.loss], nn.SGD(config.lr),
                   lambda: sample_parity(data_rng, subsets, config.batch, dtype), max_steps,
                   eval_every=config.eval_every, evaluate=evaluate, hooks=[hit], progress=progress,
                   desc=f"{NAME} k={k} n={n}")
    return hit.first, curves, subsets


# ---------------------------------------------------------------------------------------------
# cells


def cells(config: SparseParityConfig) -> list[tuple]:
    keys = [("sparse", k, n) for k, ns in config.grids().items() for n in ns]
    keys += [("dense", n) for n in config.ns_dense]
    all_ns = sorted({n for ns in config.grids().values() for n in ns} | set(config.ns_dense))
    return keys + [("gf2", n) for n in all_ns]


def run_cell(config: SparseParityConfig, seed: int, key: tuple, progress=null_progress) -> dict:
    """("sparse", k, n) and ("dense", n): SGD steps per replica; ("gf2", n): elimination samples."""
    start = time.perf_counter()
    if key[0] == "gf2":
        n = int(key[1])
        out = recover_parities(n, seed_streams(seed, NAME, "gf2", n), config.gf2_trials)
        return {"n": n, "samples_needed": out["samples_needed"], "outcome": out["outcome"],
                "seconds": time.perf_counter() - start}
    if key[0] == "sparse":
        k, n, limit = int(key[1]), int(key[2]), config.max_steps
    elif key[0] == "dense":
        n = int(key[1])
        k, limit = dense_k(n), config.dense_max_steps
    else:
        raise ValueError(f"unknown {NAME} cell {key!r}")
    first, curves, subsets = train_sparse_parity(config, n, k, seed_streams(seed, NAME, *key), limit,
                                                 progress=progress)
    return {"k": k, "n": n, "max_steps": limit, "steps": [int(s) if s >= 0 else None for s in first],
            "censored": int(np.sum(first < 0)), "steps_run": int(curves.steps[-1]),
            "subsets": subset_indices(subsets), "curve": curves.to_dict(),
            "seconds": time.perf_counter() - start}


def steps_matrix(outputs: list[dict]) -> np.ndarray:
    """Per-replica steps ``(len(outputs), R)``, censored replicas as +inf."""
    return np.array([[np.inf if s is None else s for s in o["steps"]] for o in outputs], dtype=np.float64)


def bootstrap_exponent(ns, steps: np.ndarray, rng: np.random.Generator, resamples: int) -> dict:
    """Exponent of the median steps in n, with a percentile bootstrap over replicas.

    Replicas are resampled independently per n (each n is its own run). A resample whose median
    is censored at some n gets the exponent +inf (the steps there are at least the limit), so a
    censored median shows as an unbounded end (None, meaning +inf), never as a dropped point.
    ``exponent`` is None when the median itself is censored at some n.
    """
    ns = np.asarray(ns, dtype=np.float64)
    L, R = steps.shape
    median = np.median(steps, axis=1)
    out = {"ns": ns.astype(int).tolist(), "median_steps": [None if not np.isfinite(m) else float(m) for m in median],
           "exponent": None, "local_slopes": None}
    if np.all(np.isfinite(median)):
        fit = fit_exponent(ns, median)
        out["exponent"], out["local_slopes"] = fit.exponent, fit.local_slopes.tolist()
    idx = rng.integers(0, R, size=(resamples, L, R))
    boot = np.median(steps[np.arange(L)[None, :, None], idx], axis=2)
    finite = np.all(np.isfinite(boot), axis=1)
    x = np.log(ns) - np.log(ns).mean()
    logs = np.log(np.where(finite[:, None], boot, 1.0))
    slopes = np.where(finite, (logs - logs.mean(axis=1, keepdims=True)) @ x / (x @ x), np.inf)
    slopes.sort()
    lo, hi = slopes[int(np.floor(0.025 * (resamples - 1)))], slopes[int(np.ceil(0.975 * (resamples - 1)))]
    out["ci95"] = [float(lo) if np.isfinite(lo) else None, float(hi) if np.isfinite(hi) else None]
    out["bootstrap_censored_fraction"] = float(1.0 - finite.mean())
    return out


def _within(value: float, ci: list) -> bool:
    """Whether ``value`` lies in the interval; an end given as None is +inf (censored resamples)."""
    lo, hi = ci
    return lo is not None and value >= lo and (hi is None or value <= hi)


def merge(config: SparseParityConfig, seed: int, outputs: dict, preset: str = "custom") -> Result:
    """Per k: the exponent table row; per dense n: censoring; per n: GF(2) samples."""
    metrics, curves, timing = {}, {}, {}
    for key, out in outputs.items():
        timing[" ".join(map(str, key))] = out["seconds"]
    table = []
    for k, ns in config.grids().items():
        outs = [outputs[("sparse", k, n)] for n in ns]
        steps = steps_matrix(outs)
        fit = bootstrap_exponent(ns, steps, np.random.default_rng(seed_streams(seed, NAME, "bootstrap", k)),
                                 config.bootstrap)
        leap, sq = max(k - 1, 1), k
        row = {"k": k, **fit, "censored": [o["censored"] for o in outs], "replicas": config.replicas,
               "max_steps": config.max_steps, "prediction_leap": leap, "prediction_sq": sq,
               "consistent_leap": _within(leap, fit["ci95"]), "consistent_sq": _within(sq, fit["ci95"]),
               "steps_q25": np.percentile(steps, 25, axis=1, method="inverted_cdf").tolist(),
               "steps_q75": np.percentile(steps, 75, axis=1, method="inverted_cdf").tolist()}
        if len(ns) > config.tail_points:
            t = config.tail_points
            tail = bootstrap_exponent(ns[-t:], steps[-t:], np.random.default_rng(
                seed_streams(seed, NAME, "bootstrap-tail", k)), config.bootstrap)
            row["tail"] = {"ns": tail["ns"], "exponent": tail["exponent"], "ci95": tail["ci95"],
                           "consistent_leap": _within(leap, tail["ci95"]), "consistent_sq": _within(sq, tail["ci95"])}
        metrics[f"k={k}"] = row
        table.append({**{name: row[name] for name in ("k", "exponent", "ci95", "prediction_leap", "consistent_leap",
                                                      "prediction_sq", "consistent_sq")},
                      "tail": row.get("tail")})
        curves[f"k={k}"] = {"ns": list(ns), "steps": [o["steps"] for o in outs]}
        curves[f"k={k} n={ns[-1]} accuracy"] = outs[-1]["curve"]
    metrics["table"] = table
    if config.ns_dense:
        outs = [outputs[("dense", n)] for n in config.ns_dense]
        steps = steps_matrix(outs)
        metrics["dense"] = {
            "ns": list(config.ns_dense), "k": [o["k"] for o in outs],
            "class_size": [float(class_size(o["n"], o["k"])) for o in outs],
            "censored": [o["censored"] for o in outs], "replicas": config.replicas,
            "max_steps": config.dense_max_steps,
            "median_steps": [None if not np.isfinite(m) else float(m) for m in np.median(steps, axis=1)],
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
    timing["total_s"] = float(sum(v for v in timing.values()))
    return Result(experiment=NAME, preset=preset, config=config.to_dict(),
                  seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics, curves=curves,
                  timing=timing)


# ---------------------------------------------------------------------------------------------
# figure and summary


def figure(result: Result):
    """(a) median steps to learn vs n, log-log, per k, with the dense column at its limit;
    (b) samples (steps x batch) next to GF(2)'s; (c) accuracy along training."""
    from .. import plotting

    fig, axes = plotting.figure(1, 3, width=3.6, height=3.4)
    ax, bx, cx = axes[0]
    batch = result.config["batch"]
    for j, row in enumerate(result.metrics["table"]):
        m = result.metrics[f"k={row['k']}"]
        col = plotting.CYCLE[j]
        ns = np.asarray(m["ns"], dtype=float)
        med = np.array([np.nan if v is None else v for v in m["median_steps"]])
        q25, q75 = (np.array([np.inf if v is None else v for v in m[q]]) for q in ("steps_q25", "steps_q75"))
        err = np.abs(np.vstack([med - q25, np.where(np.isfinite(q75), q75, med) - med]))
        ci = _interval_text(m["ci95"])
        exp = "censored" if m["exponent"] is None else f"{m['exponent']:.2f}"
        if m.get("tail") and m["tail"]["exponent"] is not None:
            ci += f"; largest {len(m['tail']['ns'])}: {m['tail']['exponent']:.2f} {_interval_text(m['tail']['ci95'])}"
        ax.errorbar(ns, med, yerr=err, fmt="o-", color=col, ms=3.5, lw=1.2, capsize=2,
                    label=f"k={row['k']}: {exp} {ci}")
        for slope, style in ((row["prediction_leap"], "--"), (row["prediction_sq"], ":")):
            ax.plot(ns, med[0] * (ns / ns[0]) ** slope, style, color=col, lw=0.8, alpha=0.7)
        bx.loglog(ns, med * batch, "o-", color=col, ms=3, lw=1, label=f"SGD k={row['k']}")
    if "dense" in result.metrics:
        d = result.metrics["dense"]
        ns = np.asarray(d["ns"], dtype=float)
        med = np.array([d["max_steps"] if v is None else v for v in d["median_steps"]], dtype=float)
        censored = np.array([v is None for v in d["median_steps"]])
        ax.plot(ns, med, "-", color=plotting.COLORS["grey"], lw=1)
        ax.plot(ns[~censored], med[~censored], "s", color=plotting.COLORS["grey"], ms=4, label="dense k=n/2")
        ax.plot(ns[censored], med[censored], "^", color=plotting.COLORS["grey"], ms=6,
                label=f"dense: median censored at {d['max_steps']}")
    ax.set_yscale("log")
    ax.set_xlabel("n (bits)")
    ax.set_ylabel(f"median steps to accuracy {result.config['target_accuracy']:g}")
    ax.set_title("exponent [95% bootstrap]; dashed max(k-1,1), dotted k", fontsize=7.5)
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(0.0, -0.2), frameon=False)
    g = result.metrics["gf2"]
    bx.loglog(g["ns"], g["median_samples_needed"], "k.-", ms=4, lw=1, label="GF(2) elimination")
    bx.set_xlabel("n (bits)")
    bx.set_ylabel("samples to learn (median)")
    bx.set_title(f"SGD: steps x batch {batch}; GF(2): samples to rank n", fontsize=7.5)
    bx.legend(fontsize=6.5)
    for j, name in enumerate(k for k in result.curves if k.endswith("accuracy")):
        c = result.curves[name]
        plotting.band(cx, c["steps"], np.asarray(c["accuracy"]), plotting.CYCLE[j % len(plotting.CYCLE)],
                      label=name.replace(" accuracy", ""))
    all_ns = sorted({n for row in result.metrics["table"] for n in result.metrics[f"k={row['k']}"]["ns"]}
                    | set(result.metrics.get("dense", {}).get("ns", [])))
    for a in (ax, bx):
        _log_n_axis(a, all_ns)
    cx.axhline(0.5, color=plotting.COLORS["grey"], ls="--", lw=0.8)
    cx.set_xscale("symlog", linthresh=100, linscale=0.5)
    cx.set_xlim(left=0)
    cx.set_xlabel("SGD step")
    cx.set_ylabel(f"accuracy ({result.config['curve_size']} fresh inputs)")
    cx.set_title(f"{result.seeds['replicas']} replicas, band min-max", fontsize=7.5)
    cx.legend(fontsize=6.5)
    fig.tight_layout()
    return fig


def _interval_text(ci) -> str:
    return "[" + ", ".join("inf" if v is None else f"{v:.2f}" for v in ci) + "]"


def _log_n_axis(ax, ns) -> None:
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    nice = [t for t in (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if min(ns) <= t <= max(ns)]
    ax.xaxis.set_major_locator(FixedLocator(nice if len(nice) >= 2 else sorted({min(ns), max(ns)})))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def summary(result: Result) -> str:
    parts = []
    for row in result.metrics["table"]:
        exp = "censored" if row["exponent"] is None else f"{row['exponent']:.2f}"
        ci = _interval_text(row["ci95"])
        verdict = lambda ok: "consistent" if ok else "not consistent"  # noqa: E731
        text = (f"k={row['k']}: exponent {exp} {ci} vs leap {row['prediction_leap']} "
                f"({verdict(row['consistent_leap'])}), SQ {row['prediction_sq']} ({verdict(row['consistent_sq'])})")
        tail = row.get("tail")
        if tail:
            exp = "censored" if tail["exponent"] is None else f"{tail['exponent']:.2f}"
            text += f", largest {len(tail['ns'])} n: {exp} {_interval_text(tail['ci95'])}"
        parts.append(text)
    if "dense" in result.metrics:
        d = result.metrics["dense"]
        parts.append("dense censored " + ", ".join(f"n={n}: {c}/{d['replicas']}" for n, c in zip(d["ns"], d["censored"])))
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name=NAME,
    description="k-sparse parities: fitted exponent of SGD's steps in n vs max(k-1,1) and k, dense column, GF(2)",
    presets=PRESETS, figure=figure, summary=summary, family=1, cells=cells, run_cell=run_cell,
    merge=merge, tiny=TINY, paper_ref="Sec. 2.1, Theorem 1 (beyond the paper)",
))
