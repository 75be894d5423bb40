"""Decomposition vs end-to-end on the "stocks" problem (paper Sec. 3.2-3.3, Figure 4).

``x = e_a`` is one of d one-hot inputs, ``N_w(x) = softmax(Dense(d -> k)(x))`` a distribution
over k stocks, and the gains ``z`` in {+-1}^k have ``z_y = 1`` for the input's fixed best stock
``y(x)``, the other coordinates iid uniform +-1. The end-to-end estimator is the gradient of
``-z^T N_w(x)``, the decomposition estimator that of ``-e_y^T N_w(x)``. Both are unbiased for
the gradient of the end-to-end objective, but (Sec. 3.3) the end-to-end estimator's second
moment ``E sum_i ||G_i||^2`` is about k times the decomposition's ``E ||G_y||^2`` near
initialisation, so (the paper's claim) end-to-end learns much more slowly and for large k does
not close the gap in reasonable time.

The cells are ``(k, estimator, optimizer)`` (one estimator trained with Adam as in the paper, or
with plain SGD, the setting of the Sec. 3.3 argument), ``(k, "init")`` (the second moments at
initialisation, exact and Monte Carlo) and ``("ratio_at_init",)`` (the exact ratio against k).
Every cell draws its initial weights, label maps and data from its own named seed streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..nn import OneHotDense, RowSparseAdam, as_dtype, row_sparse_step
from ..problems.stocks import label_gains, labels_of, random_gains, random_label_maps, sample_inputs
from ..results import Result
from ..theory.decomposition import stocks_second_moments
from ..training import first_crossing, fit, null_progress, seed_streams, train_step
from ..validation import positive_int
from . import register
from .base import Cell, Experiment, F32_MAX, ExperimentConfig, param

ESTIMATORS = ("end_to_end", "decomposition")
OPTIMIZERS = ("adam", "sgd")


# --------------------------------------------------------------------------------------------
# config and presets
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StocksConfig(ExperimentConfig):
    """Hyperparameters of the stocks experiment (defaults: the paper's, Sec. 3.2)."""

    ks: tuple[int, ...] = param((10, 1000, 2000), low=2, doc="numbers of stocks k trained")
    d: int = param(1000, low=1, doc="number of one-hot inputs")
    steps: int = param(2500, low=1, doc="training iterations")
    batch: int = param(100, low=1, doc="minibatch size")
    lr: float = param(0.1, low=0.0, low_open=True, high=F32_MAX, doc="Adam learning rate (the paper's); at most the float32 max, where it stays finite")
    optimizers: tuple[str, ...] = param(OPTIMIZERS, choices=OPTIMIZERS,
                                        doc="optimizers trained: Adam (the paper's) and/or plain SGD")
    sgd_lr: float = param(10.0, low=0.0, low_open=True, high=F32_MAX,
                          doc="plain SGD learning rate (not from the paper, which uses Adam); at most the float32 max, where it stays finite")
    eval_every: int = param(25, low=1, doc="evaluation interval")
    eval_size: int = param(500, low=1, doc="fresh samples per evaluation")
    moment_every: int = param(250, low=1,
                              doc="interval of the exact second moments along training (a multiple of eval_every)")
    bias: bool = param(True, doc="dense layer with a bias")
    moment_samples: int = param(4000, low=1, high=10_000_000,
                                doc="per-example gradients per replica for the Monte Carlo moments at init")
    ratio_ks: tuple[int, ...] = param((2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000), low=2,
                                      doc="k values of the exact 'ratio at initialisation vs k' curve")
    target_loss: float = param(-0.9, low=-1.0, high=0.0, low_open=True, high_open=True,
                               doc="'reached' means an exact expected end-to-end loss at or below this")

    def check(self) -> None:
        if self.moment_every % self.eval_every:
            raise ValueError(f"moment_every must be a multiple of eval_every ({self.eval_every}), "
                             f"got {self.moment_every}")
        if not self.optimizers or len(set(self.optimizers)) != len(self.optimizers):
            raise ValueError(f"optimizers must be a non-empty tuple without repeats, got {self.optimizers}")
        if len(set(self.ks)) != len(self.ks):
            raise ValueError(f"ks must not repeat a value, got {self.ks}")

    def memory_bytes(self) -> int:
        """Peak of one training cell: weights, two Adam moments and a dense SGD gradient per
        replica, float64 temporaries of the exact moments, and the gain arrays of a batch."""
        k = max(self.ks + self.ratio_ks)
        item = as_dtype(self.dtype).itemsize
        rows = max(self.batch, self.eval_size, 500)
        return int(self.replicas * self.d * k * 4 * item + 4 * self.d * k * 8
                   + 4 * self.replicas * rows * k * 8)


PRESETS = {
    "paper": StocksConfig(),
    # the paper's problem and hyperparameters (d, k, batch, Adam), fewer steps and seeds; d is
    # kept because it sets how often each input's row is trained and how much the shared bias
    # can learn (with d << k most stocks are nobody's label), both of which change the curves
    "quick": StocksConfig(replicas=2, steps=800, eval_every=50, moment_every=200, moment_samples=1000),
}

TINY = StocksConfig(replicas=2, ks=(5,), d=20, steps=20, batch=10, eval_every=5, eval_size=50,
                    moment_every=10, moment_samples=50, ratio_ks=(2, 5))


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
    samples = positive_int(samples, "samples")
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
# cells: one (k, estimator, optimizer) training run, the moments at init, the ratio vs k
# --------------------------------------------------------------------------------------------

def initial_state(config: StocksConfig, k: int, node):
    """The model, the R initial parameter sets and the R label maps for one k (Sec. 3.2),
    drawn from the ``"init"`` and ``"labels"`` children of the stream node ``node``."""
    R = config.replicas
    layer = OneHotDense(config.d, k, bias=config.bias)
    params, _ = layer.init(node.child("init").generators(R), R, (), config.dtype)
    labels = random_label_maps(node.child("labels").generators(R), config.d, k)
    return layer, params, labels


def cells(config: StocksConfig) -> list[tuple]:
    """``(k, "init")``, ``(k, estimator, optimizer)`` for every k, and ``("ratio_at_init",)``."""
    keys: list[tuple] = []
    for k in config.ks:
        keys.append((k, "init"))
        keys.extend((k, e, opt) for opt in config.optimizers for e in ESTIMATORS)
    return keys + [("ratio_at_init",)]


def train_cell(config: StocksConfig, seed: int, k: int, estimator: str, optimizer: str,
               progress=null_progress) -> dict:
    """Train one estimator with one optimizer for one k: its curves and final numbers."""
    R = config.replicas
    dtype = as_dtype(config.dtype)
    node = seed_streams(seed, "stocks", k, estimator, optimizer)
    layer, params, labels = initial_state(config, k, node)
    data_rng = np.random.default_rng(node.child("data"))
    eval_rng = np.random.default_rng(node.child("eval"))
    loss = nn.losses.expected_negative_gain
    opt: RowSparseAdam | nn.SGD
    if optimizer == "adam":
        opt, step_fn = RowSparseAdam(config.lr, **nn.PAPER_ADAM), row_sparse_step
    else:
        opt, step_fn = nn.SGD(config.sgd_lr), train_step

    def step(i):
        a = sample_inputs(data_rng, R, config.batch, config.d)
        y = labels_of(labels, a)
        gains = random_gains(data_rng, y, k, dtype) if estimator == "end_to_end" else label_gains(y, k, dtype)
        return step_fn(layer, params, loss, opt, a, gains)

    nan = np.full(R, np.nan)

    def evaluate(i):
        # the paper's evaluation: the end-to-end loss on fresh samples
        a = sample_inputs(eval_rng, R, config.eval_size, config.d)
        z = random_gains(eval_rng, labels_of(labels, a), k, dtype)
        value, _ = loss(layer.forward(params, a)[0], z)
        if i % config.moment_every == 0 or i == config.steps:
            moments = exact_moments(params, labels)
        else:  # the exact moments cost d x k per replica: a coarser grid
            moments = {"m2_end_to_end": nan, "m2_decomposition": nan, "grad_norm_sq": nan}
        return {"eval_loss": value, "expected_loss": expected_loss(params, labels), **moments}

    curves = fit(step, config.steps, eval_every=config.eval_every, evaluate=evaluate, progress=progress,
                 desc=f"stocks k={k} {estimator} {optimizer}", lr=opt.lr)
    steps = np.asarray(curves.steps)
    has_moments = ~np.isnan(curves.array("grad_norm_sq")[:, 0])
    out = {"steps": curves.steps, "moment_steps": steps[has_moments].tolist()}
    for name in ("train_loss", "eval_loss", "expected_loss"):
        out[name] = curves.array(name).tolist()
    for name in ("m2_end_to_end", "m2_decomposition", "grad_norm_sq"):
        out[name] = curves.array(name)[has_moments].tolist()
    exp_loss = curves.array("expected_loss")
    final = curves.array("eval_loss")[-1]
    out["metrics"] = {
        "final_eval_loss_mean": float(final.mean()),
        "final_eval_loss_std": float(final.std()),
        "final_eval_loss": final.tolist(),
        "final_expected_loss": exp_loss[-1].tolist(),
        "final_expected_loss_mean": float(exp_loss[-1].mean()),
        "steps_to_target": first_crossing(steps, exp_loss, config.target_loss, "<="),
        "final_m2_own_estimator": curves.array(f"m2_{estimator}")[-1].tolist(),
        "final_grad_norm_sq": curves.array("grad_norm_sq")[-1].tolist(),
    }
    return out


def init_cell(config: StocksConfig, seed: int, k: int) -> dict:
    """Both estimators' second moments at initialisation: exact, and Monte Carlo from the model."""
    node = seed_streams(seed, "stocks", k, "init-moments")
    layer, params, labels = initial_state(config, k, node)
    exact = exact_moments(params, labels)
    mc = measured_moments(layer, params, labels, np.random.default_rng(node.child("mc")), config.moment_samples)
    theory_ratio = exact["m2_end_to_end"] / exact["m2_decomposition"]
    measured_ratio = mc["m2_end_to_end"] / mc["m2_decomposition"]
    return {
        "m2_end_to_end_exact": exact["m2_end_to_end"].tolist(),
        "m2_decomposition_exact": exact["m2_decomposition"].tolist(),
        "grad_norm_sq_exact": exact["grad_norm_sq"].tolist(),
        "m2_end_to_end_measured": mc["m2_end_to_end"].tolist(),
        "m2_decomposition_measured": mc["m2_decomposition"].tolist(),
        "m2_end_to_end_measured_stderr": mc["m2_end_to_end_stderr"].tolist(),
        "m2_decomposition_measured_stderr": mc["m2_decomposition_stderr"].tolist(),
        "ratio_exact": theory_ratio.tolist(),
        "ratio_measured": measured_ratio.tolist(),
        "ratio_exact_mean": float(theory_ratio.mean()),
        "ratio_measured_mean": float(measured_ratio.mean()),
        "ratio_over_k": float(theory_ratio.mean() / k),
        # Ghadimi-Lan: iterations scale with nu^2 = E||g||^2 - ||grad L||^2
        "nu2_ratio_exact": ((exact["m2_end_to_end"] - exact["grad_norm_sq"])
                            / (exact["m2_decomposition"] - exact["grad_norm_sq"])).tolist(),
        "max_rel_error_measured_vs_exact": float(np.max(np.abs(measured_ratio / theory_ratio - 1.0))),
    }


def ratio_at_init(config: StocksConfig, seed: int) -> dict:
    """Exact ``E||g_e2e||^2 / E||g_dec||^2`` at initialisation for every k of ``ratio_ks``."""
    ratios = []
    for k in config.ratio_ks:
        _, params, labels = initial_state(config, k, seed_streams(seed, "stocks", "ratio-at-init", k))
        m = exact_moments(params, labels)
        ratios.append((m["m2_end_to_end"] / m["m2_decomposition"]).tolist())
    return {"ks": list(config.ratio_ks), "ratio": ratios}


def run_cell(config: StocksConfig, cell: Cell) -> dict:
    """The output of one cell (JSON-able). The kinds of cell differ by the key's shape, not its
    first part (``k`` leads both ``(k, "init")`` and ``(k, estimator, optimizer)``), so one
    function picks among them."""
    key = cell.key
    if key == ("ratio_at_init",):
        return ratio_at_init(config, cell.seed)
    if len(key) == 2 and key[1] == "init":
        return init_cell(config, cell.seed, key[0])
    if len(key) == 3 and key[1] in ESTIMATORS and key[2] in OPTIMIZERS:
        return train_cell(config, cell.seed, key[0], key[1], key[2], cell.progress)
    raise ValueError(f"unknown stocks cell {key!r} (known: {cells(config)})")


#: what a stored output may carry besides its numbers (the wall time older versions recorded)
_NOT_NUMBERS = ("seconds",)


def merge(config: StocksConfig, outputs: dict) -> dict:
    """Curves and metrics per k: Adam runs under ``<estimator>``, SGD runs under
    ``sgd/<estimator>``, with the gap between the estimators' final expected losses."""
    curves: dict = {}
    metrics: dict = {}
    for k in config.ks:
        c: dict = {}
        m: dict = {"init": {name: v for name, v in outputs[(k, "init")].items() if name not in _NOT_NUMBERS}}
        for opt in config.optimizers:
            for e in ESTIMATORS:
                out = outputs[(k, e, opt)]
                prefix = "" if opt == "adam" else "sgd/"
                c[f"{prefix}steps"], c[f"{prefix}moment_steps"] = out["steps"], out["moment_steps"]
                for name in ("train_loss", "eval_loss", "expected_loss", "m2_end_to_end", "m2_decomposition",
                             "grad_norm_sq"):
                    c[f"{prefix}{name}/{e}"] = out[name]
                if opt == "adam":
                    m[e] = out["metrics"]
                else:
                    m.setdefault("sgd", {})[e] = out["metrics"]
            own = m if opt == "adam" else m["sgd"]
            own["final_gap"] = (own["end_to_end"]["final_expected_loss_mean"]
                                - own["decomposition"]["final_expected_loss_mean"])
        curves[f"k={k}"], metrics[f"k={k}"] = c, m
    curves["ratio_at_init"] = {name: v for name, v in outputs[("ratio_at_init",)].items() if name not in _NOT_NUMBERS}
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------------------------
# figures and summary
# --------------------------------------------------------------------------------------------

_COLOR = {"end_to_end": "red", "decomposition": "blue"}
_LABEL = {"end_to_end": "end-to-end", "decomposition": "decomposition"}
LEGEND_PT = 8


def _loss_panel(ax, c, k, plotting):
    for e in ESTIMATORS:
        color = plotting.COLORS[_COLOR[e]]
        if f"eval_loss/{e}" in c:
            plotting.band(ax, c["steps"], np.asarray(c[f"eval_loss/{e}"], dtype=float), color,
                          label=f"{_LABEL[e]} (Adam)")
        if f"sgd/eval_loss/{e}" in c:
            ax.plot(c["sgd/steps"], np.mean(np.asarray(c[f"sgd/eval_loss/{e}"], dtype=float), axis=1),
                    color=color, ls="--", lw=1.0, label=f"{_LABEL[e]} (SGD)")
    ax.axhline(-1.0, color=plotting.COLORS["grey"], ls=":", lw=0.8)
    ax.set_title(f"k = {k}")
    ax.set_xlabel("iterations")


def _moment_panel(ax, c, k, plotting):
    for e in ESTIMATORS:
        if f"m2_{e}/{e}" not in c:
            continue
        color = plotting.COLORS[_COLOR[e]]
        # each estimator's second moment along its own (Adam) training trajectory
        plotting.band(ax, c["moment_steps"], np.asarray(c[f"m2_{e}/{e}"], dtype=float), color,
                      label=f"E||g||² {_LABEL[e]}")
        ax.plot(c["moment_steps"], np.nanmean(np.asarray(c[f"grad_norm_sq/{e}"], dtype=float), axis=1),
                color=color, ls=":", lw=1.0, label=f"||∇L||² ({_LABEL[e]} run)")
    ax.set_yscale("log")
    ax.set_xlabel("iterations")
    ax.set_title(f"k = {k}")


def figure(result: Result):
    """Figure 4 (top: end-to-end loss on fresh samples vs iterations, one panel per k, Adam
    bands and SGD means) and the second moments (bottom: along the Adam runs per k; right: the
    ratio along training and at initialisation against k)."""
    from .. import plotting

    ks = result.config["ks"]
    n = len(ks)
    fig, axes = plotting.figure(2, n + 1, width=3.0, height=2.6, layout="constrained")
    for j, k in enumerate(ks):
        c = result.curves[f"k={k}"]
        _loss_panel(axes[0, j], c, k, plotting)
        _moment_panel(axes[1, j], c, k, plotting)
    axes[0, 0].set_ylabel("loss -zᵀN_w(x): best -1 (dotted)\n"
                          f"negative by definition; {result.config['eval_size']} samples")
    axes[0, 0].legend(loc="upper right", fontsize=LEGEND_PT)
    axes[1, 0].set_ylabel("second moment (exact)")
    if axes[1, 0].get_legend_handles_labels()[0]:
        axes[1, 0].legend(loc="lower left", fontsize=LEGEND_PT)
    # right column: the ratio along training (top) and at initialisation vs k (bottom)
    ax = axes[0, n]
    for j, k in enumerate(ks):
        c = result.curves[f"k={k}"]
        for e, ls in (("end_to_end", "-"), ("decomposition", "--")):
            if f"m2_end_to_end/{e}" not in c:
                continue
            ratio = (np.asarray(c[f"m2_end_to_end/{e}"], dtype=float)
                     / np.asarray(c[f"m2_decomposition/{e}"], dtype=float))
            ax.plot(c["moment_steps"], np.nanmean(ratio, axis=1), color=plotting.CYCLE[j + 2], ls=ls,
                    label=f"k={k}, {_LABEL[e]} run")
    ax.set_yscale("log")
    ax.set_xlabel("iterations")
    ax.set_title("E||g_e2e||² / E||g_dec||²")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=LEGEND_PT)
    ax = axes[1, n]
    grid = result.curves["ratio_at_init"]
    gk = np.asarray(grid["ks"], dtype=float)
    ax.plot(gk, gk, color=plotting.COLORS["grey"], ls="--", lw=0.8, label="ratio = k")
    ax.plot(gk, np.mean(np.asarray(grid["ratio"], dtype=float), axis=1), color=plotting.COLORS["green"],
            marker="o", ms=3, label="exact (theory)")
    measured = [result.metrics[f"k={k}"]["init"]["ratio_measured_mean"] for k in ks]
    ax.plot(ks, measured, ls="none", marker="x", color="black", label="measured (per-example grads)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("k")
    ax.set_title("ratio at initialisation")
    ax.legend(fontsize=LEGEND_PT)
    fig.suptitle(f"Stocks (Sec. 3.2, Fig. 4): {result.seeds['replicas']} seeds, band min-max")
    return fig


def summary(result: Result) -> str:
    """Final exact end-to-end loss per k for both estimators, and the second-moment ratio at init."""
    parts = []
    for k in result.config["ks"]:
        m = result.metrics[f"k={k}"]
        text = f"k={k}:"
        for label, own in (("Adam", m), ("SGD", m.get("sgd", {}))):
            if "end_to_end" in own:
                text += (f" {label} loss e2e {own['end_to_end']['final_expected_loss_mean']:.3f} vs dec "
                         f"{own['decomposition']['final_expected_loss_mean']:.3f},")
        parts.append(f"{text} m2 ratio at init {m['init']['ratio_exact_mean']:.1f} "
                     f"(measured {m['init']['ratio_measured_mean']:.1f})")
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name="stocks",
    description="stocks: end-to-end vs decomposition estimator; e2e second moment ~k times larger (Sec. 3.2, Fig. 4)",
    presets=PRESETS, cells=cells, run_cell=run_cell, merge=merge, tiny=TINY, figure=figure,
    summary=summary, family=2, paper_ref="Sec. 3.2-3.3, Figure 4",
))

