"""Signal-to-noise ratio of the gradient at random initialisation (paper Sec. 3.1, Figure 5).

For the k-tuples of line images (:mod:`failgeom.experiments.tuple_lines`), ``g`` is the gradient
of one tuple's loss with respect to the score layer of N1 (``Dense(100 -> 1)``: 100 weights and a
bias), at the initial weights. Signal ``||E g||^2``, noise ``E ||g - E g||^2`` (the trace of the
covariance), SNR = signal / noise, for the end-to-end and the decomposition loss. The paper
reports that the end-to-end SNR falls quickly with k, below float32 precision for k >= 3, while
the decomposition SNR does not depend on k.

Per-sample gradients are exact (float64): the score layer's gradient for a tuple is
``sum_i h_i dL/ds_i`` (weights) and ``sum_i dL/ds_i`` (bias), with ``h_i`` the layer's input for
image i and ``dL/ds_i`` the tuple loss's derivative with respect to image i's score.

The plain ``||mean g||^2`` overestimates the signal by ``tr(Cov)/M``, which dominates when the
true signal is tiny; :func:`snr_statistics` uses the unbiased U-statistic
``(||sum g||^2 - sum ||g||^2) / (M (M - 1))`` and a delete-a-group jackknife for the confidence
interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..problems.lines import sample_tuples
from ..results import Result
from ..training import null_progress, seed_streams
from . import register
from .base import Experiment, ExperimentConfig
from .tuple_lines import APPROACHES, TupleModel, initial_params, tuple_losses

#: index of the score layer ``Dense(100 -> 1)`` in N1
SCORE_LAYER = 9
#: float32 machine epsilon, drawn in Figure 5 for reference
FLOAT32_EPS = float(np.finfo(np.float32).eps)


# --------------------------------------------------------------------------------------------
# the estimator


@dataclass(frozen=True)
class SNRStatistics:
    """Estimates for one set of per-sample gradients, with a two-sided confidence interval."""

    samples: int
    signal: float          # unbiased estimate of ||E g||^2 (may be negative)
    noise: float           # unbiased estimate of E ||g - E g||^2
    snr: float             # signal / noise
    snr_low: float
    snr_high: float
    signal_low: float
    signal_high: float
    naive_signal: float    # ||mean g||^2, biased upward by noise / M
    level: float

    @property
    def resolved(self) -> bool:
        """Whether the interval excludes 0 (else only an upper bound is meaningful)."""
        return self.snr_low > 0.0

    @property
    def upper_bound(self) -> float:
        """The interval's upper end, but never below its half-width: the true SNR is >= 0, so
        an interval lying below 0 says only that the SNR is under the resolution."""
        return max(self.snr_high, 0.5 * (self.snr_high - self.snr_low))

    def to_dict(self) -> dict:
        return {**{name: getattr(self, name) for name in self.__dataclass_fields__},
                "resolved": self.resolved, "upper_bound": self.upper_bound}


def _estimates(S, Q, M):
    """Unbiased signal and noise from the sum ``S`` (..., D), the sum of squared norms ``Q`` and
    the count ``M`` of per-sample gradients."""
    SS = np.sum(S * S, axis=-1)
    signal = (SS - Q) / (M * (M - 1.0))
    noise = (Q - SS / M) / (M - 1.0)
    return signal, noise


def snr_statistics(group_sums, group_sq_norms, group_counts, level: float = 0.95) -> SNRStatistics:
    """Signal, noise and SNR from per-group sufficient statistics, with a jackknife interval.

    Parameters
    ----------
    group_sums : array (G, D)
        ``sum_{t in group} g_t`` for G disjoint groups of samples.
    group_sq_norms : array (G,)
        ``sum_{t in group} ||g_t||^2``.
    group_counts : array (G,)
        Samples per group.
    level : float
        Confidence level of the intervals (delete-a-group jackknife, Student t with G-1 degrees
        of freedom).

    Notes
    -----
    With ``S = sum_t g_t``, ``Q = sum_t ||g_t||^2`` over M samples,
    ``E[||S||^2 - Q] = M (M - 1) ||E g||^2`` exactly, so ``(||S||^2 - Q) / (M (M-1))`` is
    unbiased for the signal, and ``(Q - ||S||^2 / M) / (M - 1)`` for the noise.
    """
    S_g = np.asarray(group_sums, dtype=np.float64)
    Q_g = np.asarray(group_sq_norms, dtype=np.float64)
    n_g = np.asarray(group_counts, dtype=np.float64)
    if S_g.ndim != 2 or Q_g.shape != S_g.shape[:1] or n_g.shape != S_g.shape[:1]:
        raise ValueError(f"group_sums must be (G, D) with group_sq_norms and group_counts (G,), got "
                         f"{S_g.shape}, {Q_g.shape}, {n_g.shape}")
    G = S_g.shape[0]
    if G < 2 or np.any(n_g < 1):
        raise ValueError("need at least 2 non-empty groups for the jackknife")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    S, Q, M = S_g.sum(axis=0), Q_g.sum(), n_g.sum()
    if M < 3:
        raise ValueError(f"need at least 3 samples, got {M:g}")
    signal, noise = _estimates(S, Q, M)
    # leave one group out at a time
    sig_j, noise_j = _estimates(S[None] - S_g, Q - Q_g, M - n_g)
    snr_j = sig_j / noise_j
    t = stats.t.ppf(0.5 + level / 2.0, G - 1)

    def interval(full, jack):
        se = np.sqrt((G - 1.0) / G * np.sum((jack - jack.mean()) ** 2))
        return full - t * se, full + t * se

    snr = signal / noise
    snr_low, snr_high = interval(snr, snr_j)
    signal_low, signal_high = interval(signal, sig_j)
    naive = float(np.sum((S / M) ** 2))
    return SNRStatistics(int(M), float(signal), float(noise), float(snr), float(snr_low),
                         float(snr_high), float(signal_low), float(signal_high), naive, level)


# --------------------------------------------------------------------------------------------
# exact per-sample gradients of the score layer


def score_layer_grads(model: TupleModel, params, images, image_labels, labels, approach: str) -> np.ndarray:
    """Per-tuple gradients of the tuple's loss w.r.t. N1's score layer, ``(R, B, 101)``.

    Columns 0..99 are the weight gradient ``sum_i h_i dL/ds_i``, column 100 the bias gradient
    ``sum_i dL/ds_i`` (the layer is shared by the k images, so a tuple's gradient sums them).
    """
    return score_layer_grads_all(model, params, images, image_labels, labels, (approach,))[approach]


def score_layer_grads_all(model: TupleModel, params, images, image_labels, labels,
                          approaches=APPROACHES) -> dict[str, np.ndarray]:
    """:func:`score_layer_grads` for several approaches from one forward pass of N1."""
    out, scores, cache = model.forward(params, images)
    h = cache[0][SCORE_LAYER]  # the score layer's input per image, (R, B*k, 100)
    grads = {}
    for approach in approaches:
        _, dout, dscores = tuple_losses(out, scores, image_labels, labels, approach, reduction="sum")
        ds, _ = model.backward(params, cache, dout, dscores, need_n1=False)  # (R, B, k)
        R, B, k = ds.shape
        g_w = np.einsum("rbkh,rbk->rbh", h.reshape(R, B, k, -1), ds)
        grads[approach] = np.concatenate([g_w, ds.sum(axis=2, keepdims=True)], axis=2)
    return grads


# --------------------------------------------------------------------------------------------
# config, run


@dataclass(frozen=True)
class TupleLinesSNRConfig(ExperimentConfig):
    """Sample sizes of the SNR estimate; ``replicas`` is the number of random initialisations."""

    ks: tuple[int, ...] = (1, 2, 3, 4)
    samples: int = 500_000
    groups: int = 50
    chunk: int = 500
    level: float = 0.95
    replicas: int = 5
    dtype: str = "float64"

    positive = ("replicas", "ks", "samples", "groups", "chunk", "level")

    def check(self) -> None:
        if self.dtype != "float64":
            raise ValueError(f"dtype must be float64 (the SNR is below float32 precision), "
                             f"got {self.dtype!r}")
        if self.groups < 2 or self.samples < 2 * self.groups:
            raise ValueError(f"groups must be at least 2 and samples at least 2 * groups, got "
                             f"groups={self.groups}, samples={self.samples}")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must lie in (0, 1), got {self.level!r}")
        if len(set(self.ks)) != len(self.ks):
            raise ValueError(f"ks must not repeat a value, got {self.ks}")


PRESETS = {
    # the original estimated from 500,000 tuples per k
    "paper": TupleLinesSNRConfig(),
    "quick": TupleLinesSNRConfig(samples=2_000, groups=20, chunk=100, replicas=3),
}


def measure_k(config: TupleLinesSNRConfig, k: int, seed: int, progress=null_progress) -> dict:
    """Group statistics of the per-sample score-layer gradients for both approaches at k.

    Both approaches see the same tuples and the same R initial networks (those of
    ``tuple-lines`` with the same seed). Returns ``{approach: [SNRStatistics per replica]}``.
    """
    R, M, G = config.replicas, config.samples, config.groups
    model = TupleModel(k)
    params = initial_params(model, seed, R, config.dtype)
    rng = np.random.default_rng(seed_streams(seed, k, 3))
    sums = {a: np.zeros((R, G, 101)) for a in APPROACHES}
    sq = {a: np.zeros((R, G)) for a in APPROACHES}
    counts = np.zeros(G)
    # sample t goes to group t * G // M: contiguous, near-equal groups
    bar = progress(M, f"tuple-lines-snr k={k}")
    try:
        for lo in range(0, M, config.chunk):
            n = min(config.chunk, M - lo)
            images, image_labels, labels = sample_tuples(rng, (R, n), k, config.dtype)
            group = (np.arange(lo, lo + n) * G) // M
            counts += np.bincount(group, minlength=G)
            per_sample = score_layer_grads_all(model, params, images, image_labels, labels)
            for a in APPROACHES:
                g = per_sample[a]
                for r in range(R):  # statistics only (the gradients are batched over R)
                    np.add.at(sums[a][r], group, g[r])
                np.add.at(sq[a], (slice(None), group), np.sum(g * g, axis=2))
            bar.update(n)
    finally:
        bar.close()
    return {a: [snr_statistics(sums[a][r], sq[a][r], counts, config.level) for r in range(R)]
            for a in APPROACHES}


def run(config: TupleLinesSNRConfig, seed: int = 0, progress=null_progress, preset: str = "custom") -> Result:
    """SNR per k, approach and initialisation; metrics hold every estimate and interval."""
    config.validate()
    metrics, timing = {}, {}
    for k in config.ks:
        start = time.perf_counter()
        per = measure_k(config, k, seed, progress)
        timing[f"k={k}"] = time.perf_counter() - start
        for a in APPROACHES:
            metrics[f"k={k}/{a}"] = [s.to_dict() for s in per[a]]
    timing["total_s"] = sum(timing.values())
    return Result(experiment="tuple-lines-snr", preset=preset, config=config.to_dict(),
                  seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics, curves={},
                  timing=timing)


# --------------------------------------------------------------------------------------------
# figure, summary


def figure(result: Result):
    """The paper's Figure 5: SNR vs k for both approaches (log scale), one marker per
    initialisation with its interval; an open downward triangle at the upper bound where the
    interval includes 0; the float32 machine epsilon for reference."""
    from .. import plotting

    ks = result.config["ks"]
    fig, axes = plotting.figure(1, 1, width=4.6, height=3.2)
    ax = axes[0, 0]
    for a, color, label, shift in (("end_to_end", "red", "end-to-end", -0.06),
                                   ("decomposition", "blue", "decomposition", 0.06)):
        col = plotting.COLORS[color]
        labelled = set()  # one legend entry per kind of marker
        for k in ks:
            items = result.metrics[f"k={k}/{a}"]
            for i, s in enumerate(items):
                x = k + shift + 0.03 * (i - (len(items) - 1) / 2)
                kind = "resolved" if s["resolved"] else "bound"
                text = None if kind in labelled else (label if s["resolved"] else label + ": upper bound")
                labelled.add(kind)
                if s["resolved"]:
                    ax.errorbar([x], [s["snr"]], yerr=[[s["snr"] - s["snr_low"]], [s["snr_high"] - s["snr"]]],
                                fmt="o", ms=3.5, color=col, lw=0.8, label=text)
                else:
                    ax.plot([x], [s["upper_bound"]], marker="v", ls="none", ms=5, color=col,
                            mfc="none", label=text)
        # a line through the median estimate only where most initialisations resolve the SNR
        per_k = {k: result.metrics[f"k={k}/{a}"] for k in ks}
        pts = [(k, np.median([s["snr"] for s in items])) for k, items in per_k.items()
               if 2 * sum(s["resolved"] for s in items) > len(items)]
        if pts:
            ax.plot(*zip(*pts), color=col, lw=0.8, alpha=0.6)
    ax.axhline(FLOAT32_EPS, color=plotting.COLORS["grey"], ls="--", lw=0.8)
    ax.text(ks[0] - 0.2, FLOAT32_EPS * 1.6, "float32 machine epsilon", color=plotting.COLORS["grey"],
            fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(bottom=FLOAT32_EPS / 30)
    ax.set_xticks(ks)
    ax.set_xlabel("k")
    ax.set_ylabel("SNR of the score-layer gradient")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"Gradient SNR at initialisation ({result.config['samples']:,} tuples, "
                 f"{result.seeds['replicas']} init{'s' if result.seeds['replicas'] != 1 else ''}, "
                 f"{int(100 * result.config['level'])}% CI)", fontsize=8)
    return fig


def format_snr(s: dict) -> str:
    """``SNR [low, high]``, or ``< upper bound`` when the interval includes 0."""
    if s["resolved"]:
        return f"{s['snr']:.2e} [{s['snr_low']:.1e}, {s['snr_high']:.1e}]"
    return f"< {s['upper_bound']:.1e}"


def summary(result: Result) -> str:
    """Per k: the SNR (median over inits) or the largest upper bound when unresolved."""
    parts = []
    for k in result.config["ks"]:
        texts = []
        for a, name in (("end_to_end", "e2e"), ("decomposition", "dec")):
            items = result.metrics[f"k={k}/{a}"]
            if all(s["resolved"] for s in items):
                texts.append(f"{name} {np.median([s['snr'] for s in items]):.2e}")
            else:
                n_res = sum(s["resolved"] for s in items)
                texts.append(f"{name} < {max(s['upper_bound'] for s in items):.1e} "
                             f"({n_res}/{len(items)} resolved)")
        parts.append(f"k={k}: " + ", ".join(texts))
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name="tuple-lines-snr",
    description="gradient SNR at init for k-tuples of lines: end-to-end falls with k, decomposition "
                "does not (Sec. 3.1, Fig. 5)",
    presets=PRESETS, run=run, figure=figure, summary=summary, family=2,
    paper_ref="Sec. 3.1, Figure 5",
))
