"""Staircase vs parity: a leap-1 target against a leap-k one on the same support (beyond the paper).

The staircase ``x_{s1} + x_{s1} x_{s2} + ... + x_{s1} ... x_{sk}`` and the k-parity
``x_{s1} ... x_{sk}`` of a random ordered k-subset s of n bits, learned by the same two-layer ReLU
network with the same SGD (square loss, both targets being real-valued), the same step-size rule
and the same n grid. The leap analysis (Abbe, Boix-Adsera, Misiakiewicz 2023) predicts about
n^max(Leap - 1, 1) fresh samples up to logs: about n for the staircase (leap 1, each monomial
adds one new coordinate to the previous one, so the gradient finds the support one bit at a
time) against about n^(k-1) for the parity (leap k). A replica has learned once its mean squared
error on a fresh sample is at most ``target_rel_mse`` times the target's variance (k for the
staircase, 1 for the parity); the threshold lies below 1/k so that the staircase's last
monomial, which carries 1/k of its variance, must be learned too. Times are right-censored at
the step where a cell stops and summarised as in :mod:`.sparse_parity` (Kaplan-Meier medians,
local slopes with bootstrap intervals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import nn
from ..problems.sparse_parity import k_subsets, sample_parity
from ..results import Result
from ..stats import bootstrap_quantiles, kaplan_meier_quantile, log_slopes, percentile_interval, windowed_slopes
from ..training import StopTraining, seed_streams, train
from . import register
from .base import Cell, Experiment, F32_MAX, ExperimentConfig, param
from .parity_models import LOSSES, init_params, sparse_network
from .sparse_parity_analysis import interval_text

NAME = "staircase-parity"
TARGETS = ("staircase", "parity")


@dataclass(frozen=True)
class StaircaseConfig(ExperimentConfig):
    """The support size, the n grid, the network and SGD shared by both targets."""

    replicas: int = param(32, low=1, doc="replicas per (target, n), trained as one batched computation")
    k: int = param(3, low=2, high=8, doc="support size: staircase of k monomials vs the k-parity")
    ns: tuple[int, ...] = param((10, 20, 40, 80, 160), low=3, doc="n grid (both targets)")
    width: int = param(128, low=1, doc="hidden ReLU units (fixed across n)")
    batch: int = param(32, low=1, doc="fresh samples per SGD step")
    lr: float = param(0.1, low=0.0, low_open=True, high=F32_MAX, doc="SGD learning rate (at n = lr_ref_n if scaled); sparse-parity's; at most the float32 max, where it stays finite")
    lr_rule: str = param("fixed", choices=("fixed", "scaled"), doc="fixed lr, or lr * lr_ref_n / n")
    lr_ref_n: int = param(20, low=1, doc="lr_rule scaled: the n at which the rate is lr")
    init: str = param("uniform", choices=("uniform", "truncated_normal"), doc="as sparse-parity's init")
    max_steps: int = param(100_000, low=1, doc="step limit (censoring)")
    stop_fraction: float = param(0.75, low=0.0, low_open=True, high=1.0,
                                 doc="a cell stops once this fraction of its replicas has learned; the rest are "
                                     "censored there")
    target_rel_mse: float = param(0.1, low=0.0, low_open=True, high=1.0,
                                  doc="learned: mean squared error at most this times the target's variance "
                                      "(must lie below 1/k)")
    eval_size: int = param(1024, low=16, doc="fresh inputs of each check")
    check_growth: float = param(0.02, low=0.0, high=1.0,
                                doc="a check at step i is followed by one at i + max(1, floor(growth i))")
    eval_every: int = param(200, low=1, doc="interval of the recorded error curve")
    bootstrap: int = param(2000, low=100, doc="bootstrap resamples of the replicas")
    slope_window: int = param(3, low=2, high=100, doc="consecutive n per local slope")

    def check(self) -> None:
        if len(self.ns) < self.slope_window or list(self.ns) != sorted(set(self.ns)):
            raise ValueError(f"ns must hold at least slope_window = {self.slope_window} increasing sizes, got {self.ns!r}")
        if min(self.ns) <= self.k:
            raise ValueError(f"every element of ns must exceed k = {self.k}, got {self.ns!r}")
        if self.target_rel_mse >= 1.0 / self.k:
            raise ValueError(f"target_rel_mse must lie below 1/k = {1 / self.k:.3g} (the staircase's last monomial), "
                             f"got {self.target_rel_mse}")

    def memory_bytes(self) -> int:
        rows = max(self.batch, self.eval_size)
        # and the bootstrap's (resamples, replicas) int64 indices with a copy
        return (4 * self.replicas * (3 * max(self.ns) * self.width + 4 * rows * (max(self.ns) + 3 * self.width))
                + 16 * self.bootstrap * self.replicas)

    def rate(self, n: int) -> float:
        """The learning rate at n."""
        return self.lr if self.lr_rule == "fixed" else self.lr * self.lr_ref_n / n


PRESETS = {
    # k = 3 to n = 160 for both targets: 88.5 s of CPU, 4 min wall at load 15 on two cores (docs/sparse-parity.md)
    "paper": StaircaseConfig(),
    # k = 3 at n = 10, 20, 40: within a minute on two cores
    "quick": StaircaseConfig(replicas=16, ns=(10, 20, 40), max_steps=20_000, eval_size=512, eval_every=100,
                             bootstrap=1000),
}
TINY = StaircaseConfig(replicas=2, k=2, ns=(4, 5, 6), width=16, max_steps=100, eval_size=64, eval_every=50,
                       bootstrap=100, target_rel_mse=0.3)


def staircase_values(x: np.ndarray, order: np.ndarray, target: str) -> np.ndarray:
    """The target on inputs ``x`` (R, B, n) for ordered supports ``order`` (R, k): the staircase
    ``sum_j prod_{i <= j} x_{order_i}`` or the parity ``prod_i x_{order_i}``, as (R, B, 1)."""
    R, B, _ = x.shape
    picked = x[np.arange(R)[:, None, None], np.arange(B)[None, :, None], order[:, None, :]]
    prefix = np.cumprod(picked, axis=-1)
    value = prefix.sum(axis=-1) if target == "staircase" else prefix[..., -1]
    return value[..., None]


def ordered_supports(rngs, n: int, k: int) -> np.ndarray:
    """One random k-subset of 0..n-1 per generator, in a random order: (R, k) indices."""
    subsets = k_subsets(rngs, n, k)
    out = np.empty((len(rngs), k), dtype=np.int64)
    for r, rng in enumerate(rngs):  # set-up only
        out[r] = rng.permutation(np.flatnonzero(subsets[r]))
    return out


class RelMseHit:
    """Hook: the first checked step at which each replica's mean squared error on a fresh sample
    of ``eval_size`` inputs is at most ``threshold`` times the target's variance; stops training
    once a ``stop_fraction`` of the replicas has learned. Checks at step 1, then geometric."""

    def __init__(self, model, params, draw, variance: float, *, threshold: float, growth: float,
                 stop_fraction: float):
        self.model, self.params, self.draw = model, params, draw
        self.limit = threshold * variance
        self.growth, self.stop_fraction = growth, stop_fraction
        self.first = np.full(params[0]["W"].shape[0], -1, dtype=np.int64)
        self.next_check = 1

    def __call__(self, i: int) -> None:
        if i < self.next_check:
            return
        self.next_check = i + max(1, int(self.growth * i))
        x, y = self.draw()
        out, _ = self.model.forward(self.params, x)
        mse = np.mean((out - y) ** 2, axis=(1, 2))
        self.first[(self.first < 0) & (mse <= self.limit)] = i
        if np.mean(self.first >= 0) >= self.stop_fraction - 1e-12:
            raise StopTraining


def cells(config: StaircaseConfig) -> list[tuple]:
    return [(target, n) for target in TARGETS for n in config.ns]


def run_cell(config: StaircaseConfig, cell: Cell) -> dict:
    """(target, n): the first learned step of each replica (None where censored)."""
    target, n = str(cell.key[0]), int(cell.key[1])
    if target not in TARGETS:
        raise ValueError(f"unknown {NAME} cell {cell.key!r}")
    streams = cell.streams
    R, k, dtype = config.replicas, config.k, config.dtype
    order = ordered_supports(streams.child("target").generators(R), n, k)
    mask = np.zeros((R, n), dtype=bool)
    mask[np.arange(R)[:, None], order] = True
    model = sparse_network(config.width)
    params = init_params(model, streams.child("init").generators(R), n, config.width, config.init, dtype)

    def sampler(rng, size):
        def draw():
            x, y = sample_parity(rng, mask, size, dtype)
            return x, (y if target == "parity" else staircase_values(x, order, target).astype(dtype))
        return draw

    variance = float(k) if target == "staircase" else 1.0
    check = sampler(np.random.default_rng(streams.child("check")), config.eval_size)
    hit = RelMseHit(model, params, check, variance, threshold=config.target_rel_mse, growth=config.check_growth,
                    stop_fraction=config.stop_fraction)
    curve_draw = sampler(np.random.default_rng(streams.child("curve")), config.eval_size)

    def evaluate(p):
        x, y = curve_draw()
        out, _ = model.forward(p, x)
        return {"rel_mse": np.mean((out - y) ** 2, axis=(1, 2)) / variance}

    curves = train(model, params, LOSSES["square"], nn.SGD(config.rate(n)),
                   sampler(np.random.default_rng(streams.child("data")), config.batch), config.max_steps,
                   eval_every=config.eval_every, evaluate=evaluate, hooks=[hit], progress=cell.progress,
                   desc=f"{NAME} {target} n={n}")
    return {"target": target, "n": n, "k": k, "batch": config.batch, "lr": config.rate(n),
            "steps": [int(s) if s >= 0 else None for s in hit.first], "censored": int(np.sum(hit.first < 0)),
            "steps_run": int(curves.steps[-1]), "supports": order.tolist(), "curve": curves.to_dict()}


def _opt(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def merge(config: StaircaseConfig, outputs: dict, *, seed: int) -> dict:
    """Per target: Kaplan-Meier median samples per n, local slopes, the tail; the difference of
    the tail slopes (parity minus staircase) over the same window, with a bootstrap interval
    (stream ``staircase-parity / bootstrap / target`` of ``seed``)."""
    metrics: dict[str, Any]
    metrics, curves, boots = {}, {}, {}
    for target in TARGETS:
        outs = [outputs[(target, n)] for n in config.ns]
        rng = np.random.default_rng(seed_streams(seed, NAME, "bootstrap", target))
        point, boot = [], []
        for o in outs:
            t = np.array([o["steps_run"] if s is None else s for s in o["steps"]], dtype=float) * o["batch"]
            e = np.array([s is not None for s in o["steps"]])
            point.append(kaplan_meier_quantile(t, e))
            boot.append(bootstrap_quantiles(t, e, rng, config.bootstrap))
        boots[target] = np.stack(boot, axis=1)
        windows = windowed_slopes(config.ns, point, boots[target], config.slope_window)
        fitted = [w for w in windows if w["slope"] is not None]
        metrics[target] = {"ns": list(config.ns), "median_samples": [_opt(v) for v in point],
                           "converged": [len(o["steps"]) - o["censored"] for o in outs],
                           "total": [len(o["steps"]) for o in outs], "stopped_at_steps": [o["steps_run"] for o in outs],
                           "windows": windows, "tail": fitted[-1] if fitted else None}
        curves[target] = {"ns": list(config.ns), "steps": [o["steps"] for o in outs]}
        curves[f"{target} n={config.ns[-1]}"] = outs[-1]["curve"]
    metrics["prediction"] = {"staircase": 1, "parity": config.k - 1}
    # parity minus staircase over the last window where both medians are observed
    metrics["difference"] = None
    w = config.slope_window
    for j in range(len(config.ns) - w, -1, -1):
        sl = slice(j, j + w)
        pts = [metrics[t]["median_samples"][sl] for t in TARGETS]
        if any(v is None for p in pts for v in p):
            continue
        ns = config.ns[sl]
        s = [float(log_slopes(ns, np.array(p, dtype=float))) for p in pts]
        b = log_slopes(ns, boots["parity"][:, sl]) - log_slopes(ns, boots["staircase"][:, sl])
        metrics["difference"] = {"ns": list(ns), "staircase": s[0], "parity": s[1], "difference": s[1] - s[0],
                                 "ci": percentile_interval(b)}
        break
    return {"metrics": metrics, "curves": curves}


def figure(result: Result):
    """(a) median samples vs n for both targets; (b) local slopes with 95% intervals against the
    predictions 1 and k - 1; (c) relative error along training at the largest n."""
    from .. import plotting

    fig, axes = plotting.figure(1, 3, width=3.4, height=3.2)
    ax, bx, cx = axes[0]
    pred = result.metrics["prediction"]
    for j, target in enumerate(TARGETS):
        m, col = result.metrics[target], plotting.CYCLE[j]
        ns = np.asarray(m["ns"], dtype=float)
        med = np.array([np.nan if v is None else v for v in m["median_samples"]])
        ax.plot(ns, med, "o-", color=col, ms=3.5, lw=1.2, label=f"{target} ({sum(m['converged'])}/{sum(m['total'])} learned)")
        for w in m["windows"]:
            if w["slope"] is None:
                continue
            lo, hi = (w["slope"] if v is None else v for v in w["ci"])
            x = float(np.exp(np.mean(np.log(w["ns"])))) * (1 + 0.04 * j)
            bx.errorbar([x], [w["slope"]], yerr=[[max(w["slope"] - lo, 0.0)], [max(hi - w["slope"], 0.0)]], fmt="o",
                        color=col, ms=3.5, capsize=2, lw=0.9)
        bx.axhline(pred[target], color=col, ls="--", lw=0.8, label=f"{target}: {pred[target]}")
        c = result.curves[f"{target} n={result.config['ns'][-1]}"]
        plotting.band(cx, c["steps"], np.asarray(c["rel_mse"]), col, label=target)
    ax.set_yscale("log")
    ax.set_xlabel("n (bits)")
    ax.set_ylabel(f"median samples to rel. MSE {result.config['target_rel_mse']:g}")
    ax.set_title(f"k = {result.config['k']}, Kaplan-Meier medians", fontsize=7.5)
    ax.legend(fontsize=6.5)
    bx.set_xlabel("n (window centre)")
    bx.set_ylabel("local slope")
    bx.set_title("95% bootstrap; dashed: leap prediction", fontsize=7.5)
    bx.legend(fontsize=6.5)
    for a in (ax, bx):
        plotting.log_n_axis(a, result.config["ns"])
    cx.axhline(result.config["target_rel_mse"], color=plotting.COLORS["grey"], ls=":", lw=0.8)
    cx.set_yscale("log")
    cx.set_xlabel("SGD step")
    cx.set_ylabel("MSE / Var(target)")
    cx.set_title(f"n = {result.config['ns'][-1]}, band min-max", fontsize=7.5)
    cx.legend(fontsize=6.5)
    fig.tight_layout()
    return fig


def summary(result: Result) -> str:
    parts = []
    for target in TARGETS:
        m = result.metrics[target]
        t = m["tail"]
        tail = "no window observed" if t is None else f"{t['slope']:.2f} {interval_text(t['ci'])} at n={t['ns'][0]}-{t['ns'][-1]}"
        parts.append(f"{target}: tail slope {tail} vs {result.metrics['prediction'][target]} "
                     f"({sum(m['converged'])}/{sum(m['total'])} learned)")
    d = result.metrics["difference"]
    if d is not None:
        parts.append(f"parity - staircase {d['difference']:.2f} {interval_text(d['ci'])}")
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name=NAME,
    description="staircase (leap 1) vs k-parity (leap k): samples to learn vs n, same network and SGD",
    presets=PRESETS, figure=figure, summary=summary, family=1, cells=cells, run_cell=run_cell,
    merge=merge, tiny=TINY, paper_ref="beyond the paper (leap complexity)",
))
