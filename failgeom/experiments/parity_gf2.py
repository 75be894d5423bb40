"""Parities learned without gradients: Gaussian elimination over GF(2) (beyond the paper).

The paper's dense parities (Sec. 2.1) defeat SGD because the gradient carries almost no
information about the target (Theorem 1), not because the class is hard to learn: a parity is a
linear function over GF(2), and elimination recovers it, sparse or dense, from the first n + O(1)
noiseless samples that span {0,1}^n (:mod:`failgeom.gf2`). For each n this experiment draws
``trials`` random parities of each kind (every coordinate in the subset with probability 1/2,
the paper's dense case, and a random k-subset), counts the samples needed until the sample bits
have rank n, checks the recovered subset with exactly n + ``extra`` samples, and times both
solves. With label noise the linear system is wrong as soon as one label used is flipped; a
separate cell measures what elimination then returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from ..results import Result
from ..theory.scaling import fit_exponent
from ..training import seed_streams
from . import register
from .base import Cell, Experiment, ExperimentConfig, param
from .parity_models import recover_parities

NAME = "parity-gf2"
KINDS = ("dense", "sparse")
OUTCOMES = ("correct", "inconsistent", "rank_deficient", "wrong")

#: expected number of extra uniform vectors beyond n to span GF(2)^n, sum_j 1/(2^j - 1) for n -> inf
EXCESS_LIMIT = float(sum(1.0 / (2.0**j - 1.0) for j in range(1, 64)))


@dataclass(frozen=True)
class ParityGF2Config(ExperimentConfig):
    """Sizes, trials and noise levels of the elimination learner."""

    ns: tuple[int, ...] = param((10, 20, 50, 100, 200, 500, 1000, 2000), low=2, allow_empty=False,
                                doc="numbers of bits n")
    replicas: int = param(20, low=1, doc="trials (random parities) per n and kind")
    sparse_k: int = param(3, low=1, doc="subset size of the sparse kind (at most the smallest n)")
    extra: int = param(10, low=0, doc="samples beyond n for the fixed-budget solve (n + extra)")
    max_extra: int = param(64, low=1,
                           doc="samples drawn beyond n when counting how many are needed to reach rank n")
    noise_n: int = param(100, low=2, doc="n of the label-noise cell")
    noise_rates: tuple[float, ...] = param((0.001, 0.01, 0.05), low=0.0, high=0.5,
                                           doc="label flip probabilities of the noise cells")
    noise_trials: int = param(200, low=1, doc="trials per noise rate")

    def check(self) -> None:
        if self.sparse_k > min(self.ns):
            raise ValueError(f"sparse_k must be at most the smallest n ({min(self.ns)}), got {self.sparse_k}")
        if self.max_extra < self.extra:
            raise ValueError(f"max_extra must be at least extra ({self.extra}), got {self.max_extra}")
        if len(set(self.ns)) < 3:
            raise ValueError(f"ns must hold at least 3 distinct sizes for the time fit, got {self.ns!r}")

    def memory_bytes(self) -> int:
        n = max(max(self.ns), self.noise_n)
        # sample bits, packed words and their scratch copy; one Generator per trial (with its
        # PCG64 state, about 2 KiB) and its results
        return 8 * n * (n + self.max_extra) + 2048 * max(self.replicas, self.noise_trials)


PRESETS = {
    "paper": ParityGF2Config(),
    "quick": ParityGF2Config(ns=(10, 20, 50, 100, 200, 500, 1000), replicas=10, noise_trials=100),
}
TINY = ParityGF2Config(ns=(4, 8, 16), replicas=2, noise_n=8, noise_rates=(0.1,), noise_trials=3)


def cells(config: ParityGF2Config) -> list[tuple]:
    return [("n", n) for n in config.ns] + [("noise", float(rate)) for rate in config.noise_rates]


def n_cell(config: ParityGF2Config, cell: Cell) -> dict:
    """("n", n): both kinds of parity at n (streams ``parity-gf2 / n / n / kind``)."""
    n = int(cell.key[1])
    return {kind_name: recover_parities(n, cell.streams.child(kind_name), config.replicas,
                                        k=None if kind_name == "dense" else config.sparse_k,
                                        extra=config.extra, max_extra=config.max_extra)
            for kind_name in KINDS}


def noise_cell(config: ParityGF2Config, cell: Cell) -> dict:
    """("noise", rate): dense parities at ``noise_n`` with labels flipped at that rate."""
    rate = float(cell.key[1])
    # the rate in parts per million names the stream (key parts are integers or names)
    streams = seed_streams(cell.seed, NAME, "noise", int(round(rate * 1e6)))
    return recover_parities(config.noise_n, streams, config.noise_trials, extra=config.extra,
                            max_extra=config.max_extra, noise=rate)


def _timing_of(out: dict) -> dict:
    return {"seconds_budget": out.pop("seconds_budget"), "seconds_needed": out.pop("seconds_needed")}


def merge(config: ParityGF2Config, outputs: dict) -> dict:
    """Samples needed, success counts and the time fit per kind; outcome counts per noise rate;
    the solve times measured inside the cells under ``timing``."""
    metrics: dict[str, Any]
    curves: dict[str, Any]
    timing: dict[str, Any]
    metrics, curves, timing = {}, {"ns": list(config.ns)}, {}
    # a fixed budget of n + extra uniform samples misses rank n with probability
    # 1 - prod_{j = extra + 1}^{n + extra} (1 - 2^-j) < 2^-extra (the infinite product bounds it)
    fail_p = float(1 - np.prod(1 - 0.5 ** np.arange(config.extra + 1, config.extra + 200)))
    for kind in KINDS:
        needed, success_budget, success_needed, seconds, trials = [], 0, 0, [], 0
        outcome_counts = dict.fromkeys(OUTCOMES, 0)
        for n in config.ns:
            out = dict(outputs[("n", n)][kind])
            t = _timing_of(out)
            seconds.append(float(np.median(t["seconds_budget"])))
            spans = [s for s in out["samples_needed"] if s is not None]
            needed.append([None if s is None else s - n for s in out["samples_needed"]])
            success_budget += out["outcome"].count("correct")
            for name in OUTCOMES:
                outcome_counts[name] += out["outcome"].count(name)
            success_needed += sum(out["correct_at_needed"])
            trials += len(out["outcome"])
            curves.setdefault(f"{kind}_excess", []).append(needed[-1])
            curves.setdefault(f"{kind}_weights", []).append(out["weights"])
            if not spans:
                raise ValueError(f"{NAME}: no trial at n={n} reached rank n within n + {config.max_extra} samples")
        excess = np.array([e for row in needed for e in row if e is not None], dtype=float)
        timing[f"{kind}_median_solve_s"] = seconds
        fit = fit_exponent(config.ns, seconds)
        metrics[kind] = {
            "trials": trials,
            "successes_with_n_plus_extra": success_budget,
            "successes_with_samples_needed": success_needed,
            "all_correct_with_n_plus_extra": success_budget == trials,
            "outcomes_with_n_plus_extra": outcome_counts,
            "never_spanned": int(sum(e is None for row in needed for e in row)),
            "excess_mean": float(excess.mean()),
            "excess_max": int(excess.max()),
            "excess_limit": EXCESS_LIMIT,
            "failure_probability_bound": fail_p,
            "expected_failures_with_n_plus_extra": trials * fail_p,
            # chance of at least this many failures if each trial fails with fail_p
            "failures_binomial_p_value": float(stats.binom.sf(trials - success_budget - 1, trials, fail_p)),
        }
        timing[f"{kind}_seconds_exponent"] = fit.exponent
        timing[f"{kind}_largest_n_median_solve_s"] = seconds[-1]
    m = config.noise_n + config.extra
    noise = {}
    for rate in config.noise_rates:
        out = dict(outputs[("noise", float(rate))])
        _timing_of(out)
        noise[f"{rate:g}"] = {
            "rate": float(rate), "n": config.noise_n, "samples": m, "trials": len(out["outcome"]),
            **{name: out["outcome"].count(name) for name in OUTCOMES},
            # correct iff no label among the n + extra used is flipped (then the system is exact)
            "expected_correct_fraction": float((1 - rate) ** m),
        }
    metrics["noise"] = noise
    return {"metrics": metrics, "curves": curves, "timing": timing}


def figure(result: Result):
    """(a) samples needed beyond n; (b) seconds of one solve vs n; (c) label noise."""
    from .. import plotting

    fig, axes = plotting.figure(1, 3, width=3.4, height=2.9)
    ns = np.asarray(result.curves["ns"], dtype=float)
    for j, kind in enumerate(KINDS):
        col = plotting.CYCLE[j]
        excess = [np.array([e for e in row if e is not None], dtype=float) for row in result.curves[f"{kind}_excess"]]
        shift = 1.0 + 0.04 * (j - 0.5)
        axes[0, 0].errorbar(ns * shift, [e.mean() for e in excess],
                            yerr=[[e.mean() - e.min() for e in excess], [e.max() - e.mean() for e in excess]],
                            fmt="o-", color=col, ms=3, lw=1, capsize=2, label=kind)
        secs = result.timing.get(f"{kind}_median_solve_s")
        if secs:
            axes[0, 1].loglog(ns, secs, "o-", color=col, ms=3, lw=1,
                              label=f"{kind}: slope {result.timing[f'{kind}_seconds_exponent']:.2f}")
    axes[0, 0].axhline(EXCESS_LIMIT, color=plotting.COLORS["grey"], ls="--", lw=0.8, label="limit 1.61")
    axes[0, 0].set_xscale("log")
    axes[0, 0].set_xlabel("n (bits)")
    axes[0, 0].set_ylabel("samples needed for rank n, minus n")
    axes[0, 0].set_title(f"mean and range over {result.seeds['replicas']} parities", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].set_xlabel("n (bits)")
    axes[0, 1].set_ylabel(f"seconds per solve (n + {result.config['extra']} samples)")
    axes[0, 1].set_title("median wall time of one elimination", fontsize=8)
    axes[0, 1].legend(fontsize=7)
    noise = result.metrics["noise"]
    rates = np.array([v["rate"] for v in noise.values()])
    if rates.size:
        ax = axes[0, 2]
        for name, col in (("correct", "green"), ("inconsistent", "grey"), ("wrong", "red"),
                          ("rank_deficient", "blue")):
            ax.plot(rates, [v[name] / v["trials"] for v in noise.values()], "o-", color=plotting.COLORS[col],
                    ms=3, lw=1, label=name)
        grid = np.geomspace(rates.min(), rates.max(), 50)
        m = next(iter(noise.values()))["samples"]
        ax.plot(grid, (1 - grid) ** m, ":", color=plotting.COLORS["green"], lw=1, label=f"(1-rate)^{m}")
        ax.set_xscale("log")
        ax.set_xlabel("label flip probability")
        ax.set_ylabel("fraction of trials")
        ax.set_title(f"label noise, n = {result.config['noise_n']}", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def summary(result: Result) -> str:
    parts = []
    for kind in KINDS:
        m = result.metrics[kind]
        parts.append(f"{kind}: {m['successes_with_n_plus_extra']}/{m['trials']} recovered with n+"
                     f"{result.config['extra']} samples, mean excess {m['excess_mean']:.2f}")
    ns = result.curves["ns"]
    secs = result.timing.get("dense_median_solve_s")
    if secs:
        parts.append(f"solve at n={ns[-1]}: {secs[-1] * 1e3:.0f} ms")
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name=NAME,
    description="Gaussian elimination over GF(2) learns any parity from n + O(1) samples (beyond the paper)",
    presets=PRESETS, figure=figure, summary=summary, family=1, cells=cells,
    run_cell={"n": n_cell, "noise": noise_cell}, merge=merge, tiny=TINY, paper_ref="Sec. 2.1 (beyond the paper)",
))
