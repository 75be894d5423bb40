"""Signal-to-noise ratio of the gradient at random initialisation (paper Sec. 3.1, Figure 5).

For the k-tuples of line images (:mod:`failgeom.experiments.tuple_lines_model`), ``g`` is the
gradient of one tuple's loss with respect to the weights of N1's score layer
(``Dense(100 -> 1)``: 100 weights; the original takes no bias) at one random initialisation of
N1, with a fresh N2 per k. End-to-end: the tuple hinge, as in training. Decomposition (as in
the original SNR script): the hinge of the *first* image of each tuple against its label, so
its SNR cannot depend on k. Signal ``||E g||^2``, noise ``E ||g - E g||^2``, SNR their ratio.

The estimator resolves SNRs far below ``1/M`` for M image forwards: N1's features ``h`` and
score ``s`` depend on one image only, so they are computed once for a pool of images; the pool
is cut into G disjoint blocks, and within each block many tuples are formed from random
permutations of its images (every image used equally often). A tuple's gradient
``sum_i h_i dL/ds_i`` needs only N2 on k scalars, thousands of times cheaper than N1. Each
block's mean gradient is an unbiased estimate of ``E g`` and the blocks are independent, so
:func:`failgeom.stats.block_snr` gives an unbiased signal and an interval. A block's sum of
gradients is ``H^T c`` with ``c_j`` the summed ``dL/ds`` of image j over its tuples, so the
tuples' gradients are never formed except for the second moment, which the first
``sq_rounds`` rounds estimate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..problems.lines import LineParams, line_labels, render_lines, sample_line_params
from ..results import Result
from ..training import null_progress, seed_streams
from ..stats import SNREstimate, block_snr
from . import register
from .base import Cell, Experiment, ExperimentConfig, param
from .tuple_lines_model import APPROACHES, CONV_INITS, TupleModel, end_to_end_score_grads, tuple_losses

#: float32 machine epsilon, the paper's "float32 precision" (dashed line of Figure 5)
FLOAT32_EPS = float(np.finfo(np.float32).eps)
DECOMPOSITION_LOSSES = ("first", "all")


# --------------------------------------------------------------------------------------------
# exact per-tuple gradients of the score layer from the images (the reference the pool
# computation is tested against)


def score_layer_grads(model: TupleModel, params, images, image_labels, labels, approach: str,
                      decomposition_loss: str = "all") -> np.ndarray:
    """Per-tuple gradients of one tuple's loss w.r.t. N1's score layer, ``(R, B, H + 1)``.

    Columns ``0..H-1`` are the weight gradient ``sum_i h_i dL/ds_i``, column ``H`` the bias
    gradient ``sum_i dL/ds_i`` (the layer is shared by the k images). ``decomposition_loss``:
    ``"all"`` is the training loss with the per-image hinge summed over the tuple, ``"first"``
    the original SNR script's hinge of the first image only.
    """
    out, scores, cache = model.forward(params, images)
    h = cache[0][-1]  # the score layer's (N1's last layer's) input per image, (R, B*k, H)
    ds = tuple_score_grads(model, params, scores, image_labels, labels, approach, decomposition_loss,
                           out=out, cache2=cache[1])
    R, B, k = ds.shape
    g_w = np.einsum("rbkh,rbk->rbh", h.reshape(R, B, k, -1), ds)
    return np.concatenate([g_w, ds.sum(axis=2, keepdims=True)], axis=2)


def score_layer_grads_all(model: TupleModel, params, images, image_labels, labels,
                          approaches=APPROACHES) -> dict[str, np.ndarray]:
    """:func:`score_layer_grads` of several approaches (the training losses, ``"all"``)."""
    return {a: score_layer_grads(model, params, images, image_labels, labels, a) for a in approaches}


def tuple_score_grads(model: TupleModel, params, scores, image_labels, labels, approach: str,
                      decomposition_loss: str = "first", out=None, cache2=None) -> np.ndarray:
    """``d L_t / d s_{t,i}`` for every tuple t and image i, ``(R, T, k)``, from the k image
    scores ``(R, T, k)`` alone (N2's forward and backward)."""
    if decomposition_loss not in DECOMPOSITION_LOSSES:
        raise ValueError(f"decomposition_loss must be one of {DECOMPOSITION_LOSSES}, got "
                         f"{decomposition_loss!r}")
    if approach == "decomposition" and decomposition_loss == "first":
        y0 = np.asarray(image_labels[..., 0], dtype=scores.dtype)
        ds = np.zeros_like(scores)
        ds[..., 0] = np.where(y0 * scores[..., 0] < 1.0, -y0, 0.0)
        return ds
    if out is None:
        out, cache2 = model.n2.forward(params[1], scores)
    _, dout, dscores = tuple_losses(out, scores, image_labels, labels, approach, image_loss="sum",
                                    reduction="sum")
    ds, _ = model.n2.backward(params[1], cache2, dout)
    return ds if dscores is None else ds + dscores


# --------------------------------------------------------------------------------------------
# config


@dataclass(frozen=True)
class TupleLinesSNRConfig(ExperimentConfig):
    """Pool, blocks and tuples of the SNR estimate; ``replicas`` = initialisations of N1."""

    ks: tuple[int, ...] = param((1, 2, 3, 4), low=1, allow_empty=False, doc="images per tuple")
    pool: int = param(100_000, low=6, doc="images whose N1 features are computed once")
    blocks: int = param(50, low=3, doc="disjoint blocks of the pool (independent estimates)")
    tuples: int = param(160_000_000, low=1,
                        doc="tuples formed per k >= 2 (whole rounds: random permutations of each "
                            "block cut into tuples)")
    sq_rounds: int = param(2, low=1, doc="rounds whose tuples' squared gradient norms are formed")
    chunk: int = param(250, low=1, doc="images per N1 forward pass")
    tuple_chunk: int = param(50_000, low=1, doc="tuples per N2 pass")
    level: float = param(0.95, low=0.0, high=1.0, low_open=True, high_open=True, doc="confidence level")
    decomposition_loss: str = param("first", choices=DECOMPOSITION_LOSSES,
                                    doc="first: hinge of the first image only (the original SNR "
                                        "script); all: the training loss summed over the k images")
    bias: bool = param(False, doc="include the score layer's bias in the gradient (the original does not)")
    conv_init: str = param("original", choices=CONV_INITS, doc="conv init std (see tuple-lines)")
    replicas: int = param(1, low=1, doc="initialisations of N1")
    dtype: str = param("float32", choices=("float32", "float64"), doc="float type of the N1 pass")

    def check(self) -> None:
        if self.pool // self.blocks < 2 * max(self.ks):
            raise ValueError(f"pool / blocks must hold at least two tuples of the largest k, got "
                             f"pool={self.pool}, blocks={self.blocks}, ks={self.ks}")
        if len(set(self.ks)) != len(self.ks):
            raise ValueError(f"ks must not repeat a value, got {self.ks}")

    def memory_bytes(self) -> int:
        """The pool's features and the largest N2 pass."""
        return int(self.replicas * (self.pool * 110 * 8 + self.tuple_chunk * max(self.ks) * 6 * 100 * 8)
                   + self.chunk * 40_000 * self.replicas)

    def rounds(self, k: int) -> int:
        """Permutation rounds at k: enough for ``tuples`` tuples; one at k = 1, where every
        round forms the same tuples."""
        per_round = self.blocks * ((self.pool // self.blocks) // k)
        return 1 if k == 1 else -(-self.tuples // per_round)

    def tuples_formed(self, k: int) -> int:
        """Tuples formed at k: ``rounds(k) * blocks * floor(pool / blocks / k)``."""
        return self.rounds(k) * self.blocks * ((self.pool // self.blocks) // k)


PRESETS = {
    # 160 million tuples per k >= 2 from 100,000 images (80 million left the k = 3 upper bound at
    # 1.35e-7, above float32's 1.2e-7; docs/e2e-vs-decomposition.md); two initialisations of N1,
    # so that "the decomposition's SNR does not depend on k" is decided per initialisation and
    # seen across two (one took 3.5 min on 2 free cores; the cost grows linearly with them)
    "paper": TupleLinesSNRConfig(replicas=2),
    # a pool of 20,000 images and 2 million tuples resolve the end-to-end SNR at k = 1 for both
    # initialisations and put the k >= 3 upper bounds below it (8,000 and 400,000 did not)
    "quick": TupleLinesSNRConfig(pool=20_000, blocks=40, tuples=2_000_000, chunk=200, replicas=2),
}

TINY = TupleLinesSNRConfig(ks=(1, 3), pool=48, blocks=4, tuples=100, sq_rounds=1, chunk=16, tuple_chunk=8)


# --------------------------------------------------------------------------------------------
# the pool: N1's score-layer input and score for every image, once per run


@dataclass(frozen=True)
class Pool:
    """Score-layer inputs ``h (R, P, H)`` (float64), scores ``(R, P)`` and labels ``(P,)``."""

    h: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def pool_features(config: TupleLinesSNRConfig, seed: int, progress=null_progress) -> Pool:
    """Draw the pool's images and pass them through the R initial N1 networks, in chunks."""
    R, P = config.replicas, config.pool
    n1 = TupleModel(1, conv_init=config.conv_init).n1
    p1, _ = n1.init(seed_streams(seed, "tuple-lines-snr", "n1").generators(R), R, (28, 28, 1), config.dtype)
    rng = np.random.default_rng(seed_streams(seed, "tuple-lines-snr", "pool"))
    params = sample_line_params(rng, (P,))  # images are rendered chunk by chunk
    labels = line_labels(params.theta)
    h: Any = None
    scores: Any = None
    bar = progress(P, "tuple-lines-snr N1 features")
    try:
        for lo in range(0, P, config.chunk):
            sl = slice(lo, lo + config.chunk)
            x = render_lines(LineParams(params.theta[sl], params.length[sl], params.centre[sl]), config.dtype)
            x = np.broadcast_to(x[None, ..., None], (R,) + x.shape + (1,))
            s, cache = n1.forward(p1, x)
            feat = cache[-1]  # the score layer's input
            if h is None:
                H = feat.shape[-1]
                h, scores = np.empty((R, P, H)), np.empty((R, P))
            h[:, lo:lo + len(s[0])] = feat
            scores[:, lo:lo + len(s[0])] = s[..., 0]
            bar.update(x.shape[1])
    finally:
        bar.close()
    return Pool(h, scores, labels)


# --------------------------------------------------------------------------------------------
# one cell: one k, both approaches


def block_statistics(config: TupleLinesSNRConfig, pool: Pool, k: int, seed: int, progress=null_progress):
    """Per block and approach: the mean score-layer gradient ``(R, G, D)`` over the block's
    tuples and the mean squared norm ``(R, G)`` over its first ``sq_rounds`` rounds' tuples
    (D = 100, or 101 with the bias).

    Round r cuts a fresh random permutation of each block's ``n_b`` images into
    ``floor(n_b / k)`` tuples of distinct images, so every tuple's images are iid and each
    block's mean is unbiased for ``E g``.
    """
    R, G = config.replicas, config.blocks
    model = TupleModel(k)
    p2, _ = model.n2.init(seed_streams(seed, "tuple-lines-snr", k, "n2").generators(R), R, (k,), np.float64)
    params = [None, p2]
    rng = np.random.default_rng(seed_streams(seed, "tuple-lines-snr", k, "tuples"))
    n_b = config.pool // G
    P = G * n_b  # pool images in use
    per_round = n_b // k
    n_rounds = config.rounds(k)
    n_sq_rounds = min(config.sq_rounds, n_rounds)
    round_tuples = G * per_round
    H = pool.h.shape[-1]
    c = {a: np.zeros((R, P)) for a in APPROACHES}  # summed dL/ds per image
    sq = {a: np.zeros((R, G)) for a in APPROACHES}
    offsets = (np.arange(G, dtype=np.int64) * n_b)[None, :, None]
    rows = max(1, config.tuple_chunk // round_tuples)  # rounds drawn at once
    bar = progress(n_rounds, f"tuple-lines-snr k={k}")
    try:
        for r0 in range(0, n_rounds, rows):
            n_r = min(rows, n_rounds - r0)
            perm = rng.permuted(np.broadcast_to(np.arange(n_b, dtype=np.int64), (n_r, G, n_b)), axis=2)
            idx = (perm[..., :per_round * k] + offsets).reshape(n_r * round_tuples, k)
            for lo in range(0, len(idx), config.tuple_chunk):
                sub = idx[lo:lo + config.tuple_chunk]
                y_img = pool.labels[sub]
                y = np.prod(y_img, axis=1, dtype=np.int8)
                scores = pool.scores[:, sub]  # (R, T, k)
                # tuples of the first n_sq_rounds rounds also get their explicit gradient norm
                n_sq = int(np.clip((n_sq_rounds - r0) * round_tuples - lo, 0, len(sub)))
                for a in APPROACHES:
                    if a == "end_to_end":
                        ds = end_to_end_score_grads(p2, scores, y)
                    else:
                        ds = tuple_score_grads(model, params, scores, y_img[None], y[None], a,
                                               config.decomposition_loss)
                    for rep in range(R):
                        c[a][rep] += np.bincount(sub.ravel(), weights=ds[rep].ravel(), minlength=P)
                    if n_sq:
                        g = np.einsum("rtkh,rtk->rth", pool.h[:, sub[:n_sq]], ds[:, :n_sq])
                        norm2 = np.sum(g * g, axis=2)
                        if config.bias:
                            norm2 = norm2 + ds[:, :n_sq].sum(axis=2) ** 2
                        block = sub[:n_sq, 0] // n_b
                        for rep in range(R):
                            sq[a][rep] += np.bincount(block, weights=norm2[rep], minlength=G)
            bar.update(n_r)
    finally:
        bar.close()
    D = H + int(config.bias)
    means = {a: np.zeros((R, G, D)) for a in APPROACHES}
    second = {a: sq[a] / (n_sq_rounds * per_round) for a in APPROACHES}
    hb = pool.h[:, :P].reshape(R, G, n_b, H)
    for a in APPROACHES:
        cb = c[a].reshape(R, G, n_b)
        means[a][..., :H] = np.einsum("rgjh,rgj->rgh", hb, cb) / (n_rounds * per_round)
        if config.bias:
            means[a][..., H] = cb.sum(axis=2) / (n_rounds * per_round)
    return means, second


def cells(config: TupleLinesSNRConfig) -> list[tuple]:
    return [(k,) for k in config.ks]


#: the last pool computed in this process, so the cells of one run share it
_POOL_CACHE: dict = {}


def shared_pool(config: TupleLinesSNRConfig, seed: int, progress=null_progress) -> Pool:
    """The pool of this config and seed, computed once per process."""
    key = json.dumps([seed] + [getattr(config, n) for n in ("pool", "chunk", "conv_init", "replicas", "dtype")])
    if key not in _POOL_CACHE:
        pool = pool_features(config, seed, progress)
        _POOL_CACHE.clear()
        _POOL_CACHE[key] = pool
    return _POOL_CACHE[key]


def run_cell(config: TupleLinesSNRConfig, cell: Cell) -> dict:
    """SNR estimates for one k: ``{approach: [estimate dict per initialisation], ...}`` and the
    number of tuples formed."""
    config.validate()
    (k,) = cell.key
    pool = shared_pool(config, cell.seed, cell.progress)
    means, second = block_statistics(config, pool, k, cell.seed, cell.progress)
    out: dict[str, Any] = {a: [block_snr(means[a][r], second[a][r], config.level).to_dict()
               for r in range(config.replicas)] for a in APPROACHES}
    out["tuples"] = config.tuples_formed(k)
    return out


def merge(config: TupleLinesSNRConfig, outputs: dict) -> dict:
    """Each k's estimates under ``k=<k>/<approach>`` and its tuple count under ``k=<k>/tuples``."""
    metrics = {}
    for (k,) in cells(config):
        o = outputs[(k,)]
        for a in APPROACHES:
            metrics[f"k={k}/{a}"] = o[a]
        metrics[f"k={k}/tuples"] = o["tuples"]
    return {"metrics": metrics, "curves": {}}


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
                text = None if kind in labelled else (label if s["resolved"] else label + ": 95% upper bound")
                labelled.add(kind)
                if s["resolved"]:
                    ax.errorbar([x], [s["snr"]], yerr=[[s["snr"] - s["snr_low"]], [s["snr_high"] - s["snr"]]],
                                fmt="o", ms=3.5, color=col, lw=0.8, label=text)
                else:
                    ax.plot([x], [s["upper_bound"]], marker="v", ls="none", ms=5, color=col,
                            mfc="none", label=text)
        pts = [(k, np.median([s["snr"] for s in result.metrics[f"k={k}/{a}"]])) for k in ks
               if all(s["resolved"] for s in result.metrics[f"k={k}/{a}"])]
        if pts:
            ax.plot(*zip(*pts), color=col, lw=0.8, alpha=0.6)
    ax.axhline(FLOAT32_EPS, color=plotting.COLORS["grey"], ls="--", lw=0.8)
    ax.text(ks[0] - 0.2, FLOAT32_EPS * 1.6, "float32 machine epsilon", color=plotting.COLORS["grey"],
            fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(ks)
    ax.set_xlabel("k")
    ax.set_ylabel("SNR of the score-layer gradient")
    ax.legend(fontsize=7, loc="center right")
    c = result.config
    ax.set_title(f"Gradient SNR at initialisation (pool {c['pool']:,} images, {c['blocks']} blocks, "
                 f"{int(100 * c['level'])}% CI)", fontsize=8)
    return fig


def format_snr(s: dict) -> str:
    """``SNR [low, high]``, or ``< upper bound`` when the interval includes 0."""
    if s["resolved"]:
        return f"{s['snr']:.2e} [{s['snr_low']:.1e}, {s['snr_high']:.1e}]"
    return f"< {s['upper_bound']:.1e} (estimate {s['snr']:.1e})"


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
    presets=PRESETS, figure=figure, summary=summary, family=2, cells=cells, run_cell=run_cell,
    merge=merge, tiny=TINY, paper_ref="Sec. 3.1, Figure 5",
))

__all__ = ["SNREstimate", "TupleLinesSNRConfig", "score_layer_grads", "tuple_score_grads"]
