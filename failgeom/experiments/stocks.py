"""Decomposition vs end-to-end on the "stocks" problem (paper Sec. 3.2-3.3, Figure 4).

``x = e_a`` is one of d one-hot inputs, ``N_w(x) = softmax(Dense(d -> k)(x))`` a distribution
over k stocks, and the gains ``z`` in {+-1}^k have ``z_y = 1`` for the input's fixed best stock
``y(x)``, the other coordinates iid uniform +-1. The end-to-end estimator is the gradient of
``-z^T N_w(x)``, the decomposition estimator that of ``-e_y^T N_w(x)``. Both are unbiased for
the gradient of the end-to-end objective, but (Sec. 3.3) the end-to-end estimator's second
moment ``E sum_i ||G_i||^2`` is about k times the decomposition's ``E ||G_y||^2`` near
initialisation, so (the paper's claim) end-to-end learns much more slowly and for large k does
not close the gap in reasonable time.

Both estimators are trained in one batched computation: replicas ``0..R-1`` use the end-to-end
gains and replicas ``R..2R-1`` the decomposition gains, with the same initial weights, the same
label map and the same minibatch inputs as their partner (a paired comparison).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..nn._util import as_dtype, check_positive_int, per_replica, replica_generators, tree_leaves
from ..problems.stocks import label_gains, labels_of, random_gains, random_label_maps, sample_inputs
from ..results import Result
from ..theory.decomposition import stocks_second_moments
from ..training import null_progress, seed_streams, train
from . import register
from .base import Experiment, ExperimentConfig

ESTIMATORS = ("end_to_end", "decomposition")


# --------------------------------------------------------------------------------------------
# the model: Dense(d -> k) on one-hot inputs, as a row gather
# --------------------------------------------------------------------------------------------

class OneHotDense(nn.Layer):
    """``Dense(d -> k)`` applied to one-hot inputs ``x = e_a`` given as integer indices ``a``.

    ``forward`` returns ``W[a] + b``, which equals ``e_a^T W + b`` exactly (a row gather instead
    of a ``(B, d) x (d, k)`` product); ``backward`` scatter-adds ``dy`` into the rows that were
    used. Parameters, initialisation (truncated normal, std ``1/sqrt(d)``; zero bias) and
    gradients are those of :class:`failgeom.nn.Dense` on the one-hot vectors.

    Parameters
    ----------
    d : int
        Number of one-hot inputs (the input width of the dense layer).
    n_out : int
        Output width k.
    bias : bool
        Whether to add a bias (initialised to zero), as ``nn.Dense``.
    """

    has_params = True

    def __init__(self, d: int, n_out: int, bias: bool = True):
        self.d = check_positive_int(d, "d")
        self.n_out = check_positive_int(n_out, "n_out")
        self.bias = bool(bias)

    def init(self, rng, R, in_shape=(), dtype=np.float32):
        """``in_shape`` is ``()`` (indices) or ``(d,)`` (the one-hot shape it stands for)."""
        dtype = as_dtype(dtype)
        if tuple(in_shape) not in ((), (self.d,)):
            raise ValueError(f"in_shape must be () or ({self.d},), got {tuple(in_shape)}")
        rngs = replica_generators(rng, R)
        params = {"W": nn.truncated_normal(rngs, (self.d, self.n_out), 1.0 / math.sqrt(self.d), dtype)}
        if self.bias:
            params["b"] = np.zeros((len(rngs), self.n_out), dtype=dtype)
        return params, (self.n_out,)

    def _indices(self, W, a):
        a = np.asarray(a)
        if a.ndim != 2 or a.shape[0] != W.shape[0] or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"a must be integer indices of shape (R={W.shape[0]}, B), got {a.shape} {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= self.d):
            raise ValueError(f"a must lie in 0..{self.d - 1}")
        return a

    def forward(self, params, a):
        W = params["W"]
        a = self._indices(W, a)
        y = W[np.arange(W.shape[0])[:, None], a]  # (R, B, k): row a of each replica's W
        if "b" in params:
            y += params["b"][:, None, :]
        return y, a

    def row_grads(self, params, cache, dy):
        """The weight gradient as its nonzero rows, and the bias gradient.

        Returns ``rows`` (unique indices into ``W.reshape(R * d, k)``), ``g_rows``
        ``(len(rows), k)`` and ``g_b`` ``(R, k)`` (None without a bias). Inputs repeated in a
        batch add up, as in the dense product ``x^T dy``.
        """
        a, W = cache, params["W"]
        R, d, k = W.shape
        flat = (np.arange(R)[:, None] * d + a).reshape(-1)
        dy2 = dy.reshape(-1, k)
        rows, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
        g_rows = dy2[first]  # a copy (fancy indexing)
        repeat = np.ones(flat.size, dtype=bool)
        repeat[first] = False
        if repeat.any():  # few repeats: scatter-add only those
            np.add.at(g_rows, inverse[repeat], dy2[repeat])
        return rows, g_rows, (dy.sum(axis=1) if "b" in params else None)

    def backward(self, params, cache, dy, need_dx=True):
        """Gradients of ``sum(dy * forward)``; ``dx`` is None (indices have no gradient)."""
        W = params["W"]
        rows, g_rows, g_b = self.row_grads(params, cache, dy)
        gW = np.zeros((W.shape[0] * W.shape[1], W.shape[2]), dtype=dy.dtype)
        gW[rows] = g_rows
        grads = {"W": gW.reshape(W.shape)}
        if g_b is not None:
            grads["b"] = g_b
        return None, grads

    def per_example_sq_norms(self, params, dy) -> np.ndarray:
        """``||grad of example i's own term||^2`` over all parameters, shape ``(R, B)``.

        For a one-hot input the weight gradient is ``e_a dy_i^T``, whose squared norm is
        ``||dy_i||^2``; the bias gradient is ``dy_i`` again.
        """
        sq = np.sum(np.square(dy, dtype=np.float64), axis=-1)
        return 2.0 * sq if "b" in params else sq


class RowSparseAdam(nn.Adam):
    """:class:`failgeom.nn.Adam` for :class:`OneHotDense`, fed the weight gradient by rows.

    Gives the same numbers as ``nn.Adam`` on the dense gradient, bit for bit: in a row with
    zero gradient ``m + (1 - beta1) * 0`` is ``m``, so only the gradient terms are restricted
    to the rows the batch used; the decay of the moments and the step still touch every weight
    (Adam moves weights whose gradient is zero). Preallocated scratch buffers and in-place
    ufuncs avoid the large temporaries that dominate ``nn.Adam`` at ``d x k = 1000 x 2000``, and
    the step runs over blocks of rows small enough to stay in cache.
    """

    _scratch: tuple[np.ndarray, np.ndarray] | None = None
    #: elements per block of the step (256 K: a few arrays of it stay in L2/L3 cache)
    _BLOCK = 1 << 18

    def step_rows(self, params, rows, g_rows, g_b=None):
        """One Adam step from :meth:`OneHotDense.row_grads` output (params updated in place)."""
        W = params["W"]
        R, d, k = W.shape
        if self._m is None:
            # same state layout as nn.Adam (parameter tree order: "W", then "b")
            self._m = [np.zeros_like(p) for p in tree_leaves(params)]
            self._v = [np.zeros_like(p) for p in tree_leaves(params)]
        rows_per_block = max(1, self._BLOCK // k)
        if self._scratch is None or self._scratch[0].shape != (rows_per_block, k) or self._scratch[0].dtype != W.dtype:
            self._scratch = (np.empty((rows_per_block, k), W.dtype), np.empty((rows_per_block, k), W.dtype))
        self.t += 1
        scale = math.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        lr = per_replica(self.lr, R, W.ndim, W.dtype) * scale
        lr_rows = np.repeat(lr.reshape(-1), d)[:, None] if np.ndim(lr) else None  # per row of W2
        W2, m2, v2 = (a.reshape(R * d, k) for a in (W, self._m[0], self._v[0]))
        g_m = (1.0 - self.beta1) * g_rows  # the gradient terms, only in the used rows
        g_v = (1.0 - self.beta2) * (g_rows * g_rows)
        # one pass over blocks of rows small enough to stay in cache: decay both moments, add the
        # gradient terms of the block's used rows (rows are sorted), take the step
        edges = np.searchsorted(rows, np.arange(0, R * d + rows_per_block, rows_per_block))
        for i, first in enumerate(range(0, R * d, rows_per_block)):
            block = slice(first, first + rows_per_block)
            m, v = m2[block], v2[block]
            used = slice(edges[i], edges[i + 1])
            m *= self.beta1
            m[rows[used] - first] += g_m[used]
            v *= self.beta2
            v[rows[used] - first] += g_v[used]
            step, denom = self._scratch[0][: m.shape[0]], self._scratch[1][: m.shape[0]]
            np.multiply(lr if lr_rows is None else lr_rows[block], m, out=step)
            np.sqrt(v, out=denom)
            denom += self.eps
            step /= denom
            W2[block] -= step
        if g_b is not None:  # the bias gradient is dense: nn.Adam's own update
            b, mb, vb = params["b"], self._m[1], self._v[1]
            mb *= self.beta1
            mb += (1.0 - self.beta1) * g_b
            vb *= self.beta2
            vb += (1.0 - self.beta2) * (g_b * g_b)
            lr_b = per_replica(self.lr, R, b.ndim, b.dtype) * scale
            b -= lr_b * mb / (np.sqrt(vb) + self.eps)


def row_sparse_step(model: OneHotDense, params, loss, optimizer: RowSparseAdam, x, target) -> np.ndarray:
    """:func:`failgeom.training.train_step` for the one-hot model with :class:`RowSparseAdam`."""
    out, cache = model.forward(params, x)
    value, dout = loss(out, target)
    optimizer.step_rows(params, *model.row_grads(params, cache, dout))
    return value


# --------------------------------------------------------------------------------------------
# config and presets
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StocksConfig(ExperimentConfig):
    """Hyperparameters of the stocks experiment (defaults: the paper's, Sec. 3.2)."""

    ks: tuple[int, ...] = (10, 1000, 2000)
    d: int = 1000
    steps: int = 2500
    batch: int = 100
    lr: float = 0.1
    eval_every: int = 25
    eval_size: int = 500
    #: interval of the exact second moments along training (a multiple of eval_every)
    moment_every: int = 250
    bias: bool = True
    #: per-example gradients per replica for the Monte Carlo second moments at initialisation
    moment_samples: int = 4000
    #: k values of the "ratio at initialisation vs k" curve (exact, from the theory module)
    ratio_ks: tuple[int, ...] = (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
    #: "reached" means an exact expected end-to-end loss at or below this value
    target_loss: float = -0.9

    positive = ("replicas", "ks", "d", "steps", "batch", "lr", "eval_every", "eval_size",
                "moment_every", "moment_samples", "ratio_ks")

    def check(self) -> None:
        if any(k < 2 for k in self.ks) or any(k < 2 for k in self.ratio_ks):
            raise ValueError(f"ks and ratio_ks must be at least 2 (a choice among k stocks), "
                             f"got {self.ks}, {self.ratio_ks}")
        if not -1.0 < self.target_loss < 0.0:
            raise ValueError(f"target_loss must lie in (-1, 0) (the loss runs from about -1/k to -1), "
                             f"got {self.target_loss}")
        if self.moment_every % self.eval_every:
            raise ValueError(f"moment_every must be a multiple of eval_every ({self.eval_every}), "
                             f"got {self.moment_every}")


PRESETS = {
    "paper": StocksConfig(),
    # the paper's problem and hyperparameters (d, k, batch, Adam), fewer steps and seeds; d is
    # kept because it sets how often each input's row is trained and how much the shared bias
    # can learn (with d << k most stocks are nobody's label), both of which change the curves
    "quick": StocksConfig(replicas=2, steps=800, eval_every=50, moment_every=200, moment_samples=1000),
}


# --------------------------------------------------------------------------------------------
# exact quantities at given weights
# --------------------------------------------------------------------------------------------

def expected_loss(params, labels: np.ndarray) -> np.ndarray:
    """The exact end-to-end objective ``E[-z^T N_w(x)] = -mean_a N_w(e_a)_{y(a)}`` per replica.

    ``E[z | x] = e_y``, so only the label's probability matters. ``labels`` is ``(R, d)``.
    """
    W = params["W"]
    logits = W + params["b"][:, None, :] if "b" in params else W.copy()
    logits -= logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    norm = logits.sum(axis=-1, dtype=np.float64)
    picked = np.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    return -(picked / norm).mean(axis=1)


def exact_moments(params, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per replica: both estimators' exact ``E||g||^2`` and ``||grad L||^2`` (theory module)."""
    W, b = params["W"], params.get("b")
    moments = [stocks_second_moments(W[r], None if b is None else b[r], labels[r])  # evaluation only
               for r in range(W.shape[0])]
    return {
        "m2_end_to_end": np.array([m.end_to_end for m in moments]),
        "m2_decomposition": np.array([m.decomposition for m in moments]),
        "grad_norm_sq": np.array([m.grad_norm_sq for m in moments]),
    }


def measured_moments(layer: OneHotDense, params, labels: np.ndarray, rng: np.random.Generator,
                     samples: int, chunk: int = 500) -> dict[str, np.ndarray]:
    """Monte Carlo ``E||g||^2`` of both estimators from per-example gradients of the model.

    Backpropagates ``-z^T softmax`` and ``-e_y^T softmax`` through :class:`OneHotDense` for
    ``samples`` fresh ``(x, z)`` per replica and averages the per-example squared norms.
    Returns per-replica means and their standard errors.
    """
    samples = check_positive_int(samples, "samples")
    R, k = params["W"].shape[0], layer.n_out
    dtype = params["W"].dtype
    sums = {e: np.zeros(R) for e in ESTIMATORS}
    sq_sums = {e: np.zeros(R) for e in ESTIMATORS}
    done = 0
    while done < samples:  # chunks bound the (R, chunk, k) gain arrays
        m = min(chunk, samples - done)
        a = sample_inputs(rng, R, m, layer.d)
        y = labels_of(labels, a)
        logits, _ = layer.forward(params, a)
        for e, gains in (("end_to_end", random_gains(rng, y, k, dtype)), ("decomposition", label_gains(y, k, dtype))):
            _, dout = nn.losses.expected_negative_gain(logits, gains, reduction="none")
            norms = layer.per_example_sq_norms(params, dout)
            sums[e] += norms.sum(axis=1)
            sq_sums[e] += np.square(norms).sum(axis=1)
        done += m
    out = {}
    for e in ESTIMATORS:
        mean = sums[e] / samples
        var = np.maximum(sq_sums[e] / samples - mean**2, 0.0) * samples / max(samples - 1, 1)
        out[f"m2_{e}"] = mean
        out[f"m2_{e}_stderr"] = np.sqrt(var / samples)
    return out


# --------------------------------------------------------------------------------------------
# one k: build, train both estimators, measure
# --------------------------------------------------------------------------------------------

def initial_state(config: StocksConfig, k: int, seed: int):
    """The model, the R initial parameter sets and the R label maps for one k (Sec. 3.2).

    Depends only on (seed, k), so a k's initialisation is the same in every config.
    """
    R = config.replicas
    init_ss, label_ss = seed_streams(seed, k).spawn(2)
    layer = OneHotDense(config.d, k, bias=config.bias)
    params, _ = layer.init([np.random.default_rng(s) for s in init_ss.spawn(R)], R, (), config.dtype)
    labels = random_label_maps([np.random.default_rng(s) for s in label_ss.spawn(R)], config.d, k)
    return layer, params, labels


def _pair(params, labels):
    """Stack each replica's state twice: end-to-end replicas first, then decomposition."""
    return {key: np.concatenate([v, v]) for key, v in params.items()}, np.concatenate([labels, labels])


def run_k(config: StocksConfig, k: int, seed: int, progress=null_progress):
    """Train both estimators for one k; returns (curves dict, metrics dict)."""
    R = config.replicas
    dtype = as_dtype(config.dtype)
    layer, params0, labels0 = initial_state(config, k, seed)
    data_ss, eval_ss, mc_ss = seed_streams(seed, k, 1).spawn(3)
    data_rng, eval_rng = np.random.default_rng(data_ss), np.random.default_rng(eval_ss)

    init_exact = exact_moments(params0, labels0)
    init_mc = measured_moments(layer, params0, labels0, np.random.default_rng(mc_ss), config.moment_samples)

    params, labels = _pair(params0, labels0)

    def sample():
        a = sample_inputs(data_rng, R, config.batch, config.d)
        y = labels_of(labels0, a)
        gains = np.concatenate([random_gains(data_rng, y, k, dtype), label_gains(y, k, dtype)])
        return np.concatenate([a, a]), gains

    calls = [0]
    nan = np.full(2 * R, np.nan)

    def evaluate(p):
        step = min(calls[0] * config.eval_every, config.steps)
        calls[0] += 1
        # the paper's evaluation: end-to-end loss on fresh samples (shared by each pair)
        a = sample_inputs(eval_rng, R, config.eval_size, config.d)
        z = random_gains(eval_rng, labels_of(labels0, a), k, dtype)
        logits, _ = layer.forward(p, np.concatenate([a, a]))
        value, _ = nn.losses.expected_negative_gain(logits, np.concatenate([z, z]))
        if step % config.moment_every == 0 or step == config.steps:
            moments = exact_moments(p, labels)
        else:  # the exact moments cost d x k per replica: a coarser grid
            moments = {"m2_end_to_end": nan, "m2_decomposition": nan, "grad_norm_sq": nan}
        return {"eval_loss": value, "expected_loss": expected_loss(p, labels), **moments}

    curves = train(layer, params, nn.losses.expected_negative_gain,
                   RowSparseAdam(config.lr, **nn.PAPER_ADAM), sample, config.steps,
                   eval_every=config.eval_every, evaluate=evaluate, progress=progress,
                   desc=f"stocks k={k}", step_fn=row_sparse_step)

    steps = np.asarray(curves.steps)
    has_moments = ~np.isnan(curves.array("grad_norm_sq")[:, 0])
    out_curves = {"steps": curves.steps, "moment_steps": steps[has_moments].tolist()}
    metrics = {}
    for i, e in enumerate(ESTIMATORS):
        part = slice(i * R, (i + 1) * R)
        for name in ("train_loss", "eval_loss", "expected_loss"):
            out_curves[f"{name}/{e}"] = curves.array(name)[:, part].tolist()
        for name in ("m2_end_to_end", "m2_decomposition", "grad_norm_sq"):
            out_curves[f"{name}/{e}"] = curves.array(name)[has_moments][:, part].tolist()
        exp_loss = curves.array("expected_loss")[:, part]
        reached = exp_loss <= config.target_loss
        first = [int(steps[np.argmax(col)]) if col.any() else None for col in reached.T]
        final = curves.array("eval_loss")[-1, part]
        metrics[e] = {
            "final_eval_loss_mean": float(final.mean()),
            "final_eval_loss_std": float(final.std()),
            "final_eval_loss": final.tolist(),
            "final_expected_loss": exp_loss[-1].tolist(),
            "final_expected_loss_mean": float(exp_loss[-1].mean()),
            "steps_to_target": first,
            "final_m2_own_estimator": curves.array(f"m2_{e}")[-1, part].tolist(),
            "final_grad_norm_sq": curves.array("grad_norm_sq")[-1, part].tolist(),
        }
    theory_ratio = init_exact["m2_end_to_end"] / init_exact["m2_decomposition"]
    measured_ratio = init_mc["m2_end_to_end"] / init_mc["m2_decomposition"]
    metrics["init"] = {
        "m2_end_to_end_exact": init_exact["m2_end_to_end"].tolist(),
        "m2_decomposition_exact": init_exact["m2_decomposition"].tolist(),
        "grad_norm_sq_exact": init_exact["grad_norm_sq"].tolist(),
        "m2_end_to_end_measured": init_mc["m2_end_to_end"].tolist(),
        "m2_decomposition_measured": init_mc["m2_decomposition"].tolist(),
        "m2_end_to_end_measured_stderr": init_mc["m2_end_to_end_stderr"].tolist(),
        "m2_decomposition_measured_stderr": init_mc["m2_decomposition_stderr"].tolist(),
        "ratio_exact": theory_ratio.tolist(),
        "ratio_measured": measured_ratio.tolist(),
        "ratio_exact_mean": float(theory_ratio.mean()),
        "ratio_measured_mean": float(measured_ratio.mean()),
        "ratio_over_k": float(theory_ratio.mean() / k),
        # Ghadimi-Lan: iterations scale with nu^2 = E||g||^2 - ||grad L||^2
        "nu2_ratio_exact": ((init_exact["m2_end_to_end"] - init_exact["grad_norm_sq"])
                            / (init_exact["m2_decomposition"] - init_exact["grad_norm_sq"])).tolist(),
        "max_rel_error_measured_vs_exact": float(np.max(np.abs(measured_ratio / theory_ratio - 1.0))),
    }
    metrics["final_gap"] = (metrics["end_to_end"]["final_expected_loss_mean"]
                            - metrics["decomposition"]["final_expected_loss_mean"])
    return out_curves, metrics


def ratio_at_init(config: StocksConfig, seed: int) -> dict:
    """Exact ``E||g_e2e||^2 / E||g_dec||^2`` at initialisation for every k of ``ratio_ks``."""
    ratios = []
    for k in config.ratio_ks:
        _, params, labels = initial_state(config, k, seed)
        m = exact_moments(params, labels)
        ratios.append((m["m2_end_to_end"] / m["m2_decomposition"]).tolist())
    return {"ks": list(config.ratio_ks), "ratio": ratios}


def run(config: StocksConfig, seed: int = 0, progress=null_progress, preset: str = "custom") -> Result:
    """Train both estimators for every k; metrics hold losses and second moments per k."""
    config.validate()
    curves, metrics, timing = {}, {}, {}
    for k in config.ks:
        start = time.perf_counter()
        curves[f"k={k}"], metrics[f"k={k}"] = run_k(config, k, seed, progress)
        timing[f"k={k}"] = time.perf_counter() - start
    start = time.perf_counter()
    curves["ratio_at_init"] = ratio_at_init(config, seed)
    timing["ratio_at_init"] = time.perf_counter() - start
    timing["total_s"] = sum(timing.values())
    return Result(
        experiment="stocks", preset=preset, config=config.to_dict(),
        seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics, curves=curves,
        timing=timing,
    )


# --------------------------------------------------------------------------------------------
# figures and summary
# --------------------------------------------------------------------------------------------

_COLOR = {"end_to_end": "red", "decomposition": "blue"}
_LABEL = {"end_to_end": "end-to-end", "decomposition": "decomposition"}


def _loss_panel(ax, c, k, plotting):
    for e in ESTIMATORS:
        plotting.band(ax, c["steps"], np.asarray(c[f"eval_loss/{e}"], dtype=float),
                      plotting.COLORS[_COLOR[e]], label=_LABEL[e])
    ax.axhline(-1.0, color=plotting.COLORS["grey"], ls="--", lw=0.8)
    ax.set_title(f"k = {k}")
    ax.set_xlabel("iterations")


def _moment_panel(ax, c, k, plotting):
    for e in ESTIMATORS:
        color = plotting.COLORS[_COLOR[e]]
        # each estimator's second moment along its own training trajectory
        plotting.band(ax, c["moment_steps"], np.asarray(c[f"m2_{e}/{e}"], dtype=float), color,
                      label=f"E||g||² {_LABEL[e]}")
        ax.plot(c["moment_steps"], np.nanmean(np.asarray(c[f"grad_norm_sq/{e}"], dtype=float), axis=1),
                color=color, ls=":", lw=1.0, label=f"||∇L||² ({_LABEL[e]} run)")
    ax.set_yscale("log")
    ax.set_xlabel("iterations")
    ax.set_title(f"k = {k}")


def figure(result: Result):
    """Figure 4 (top: end-to-end loss on 500 fresh samples vs iterations, one panel per k) and
    the second moments (bottom: along training per k; right: the ratio against k)."""
    from .. import plotting

    ks = result.config["ks"]
    n = len(ks)
    fig, axes = plotting.figure(2, n + 1, width=3.0, height=2.6, layout="constrained")
    for j, k in enumerate(ks):
        c = result.curves[f"k={k}"]
        _loss_panel(axes[0, j], c, k, plotting)
        _moment_panel(axes[1, j], c, k, plotting)
    axes[0, 0].set_ylabel("end-to-end loss (500 fresh samples)")
    axes[0, 0].legend(loc="upper right")
    axes[1, 0].set_ylabel("second moment (exact)")
    axes[1, 0].legend(loc="lower left", fontsize=6)
    # right column: the ratio along training (top) and at initialisation vs k (bottom)
    ax = axes[0, n]
    for j, k in enumerate(ks):
        c = result.curves[f"k={k}"]
        for e, ls in (("end_to_end", "-"), ("decomposition", "--")):
            ratio = (np.asarray(c[f"m2_end_to_end/{e}"], dtype=float)
                     / np.asarray(c[f"m2_decomposition/{e}"], dtype=float))
            ax.plot(c["moment_steps"], np.nanmean(ratio, axis=1), color=plotting.CYCLE[j + 2], ls=ls,
                    label=f"k={k}, {_LABEL[e]} run")
    ax.set_yscale("log")
    ax.set_xlabel("iterations")
    ax.set_title("E||g_e2e||² / E||g_dec||²")
    ax.legend(fontsize=6)
    ax = axes[1, n]
    grid = result.curves["ratio_at_init"]
    gk = np.asarray(grid["ks"], dtype=float)
    ax.plot(gk, gk, color=plotting.COLORS["grey"], ls="--", lw=0.8, label="ratio = k")
    ax.plot(gk, np.mean(np.asarray(grid["ratio"], dtype=float), axis=1), color=plotting.COLORS["green"],
            marker="o", ms=3, label="exact (theory)")
    mk = [k for k in ks]
    measured = [result.metrics[f"k={k}"]["init"]["ratio_measured_mean"] for k in ks]
    ax.plot(mk, measured, ls="none", marker="x", color="black", label="measured (per-example grads)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("k")
    ax.set_title("ratio at initialisation")
    ax.legend(fontsize=6)
    fig.suptitle(f"Stocks (Sec. 3.2, Fig. 4): {result.seeds['replicas']} seeds, band min-max")
    return fig


def summary(result: Result) -> str:
    """Final exact end-to-end loss per k for both estimators, and the second-moment ratio at init."""
    parts = []
    for k in result.config["ks"]:
        m = result.metrics[f"k={k}"]
        parts.append(
            f"k={k}: loss e2e {m['end_to_end']['final_expected_loss_mean']:.3f} vs dec "
            f"{m['decomposition']['final_expected_loss_mean']:.3f}, m2 ratio at init "
            f"{m['init']['ratio_exact_mean']:.1f} (measured {m['init']['ratio_measured_mean']:.1f})"
        )
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name="stocks",
    description="stocks: end-to-end vs decomposition estimator; e2e second moment ~k times larger (Sec. 3.2, Fig. 4)",
    presets=PRESETS, run=run, figure=figure, summary=summary, family=2,
    paper_ref="Sec. 3.2-3.3, Figure 4",
))
