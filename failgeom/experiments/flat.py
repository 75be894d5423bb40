"""Flat activations (paper Sec. 5, Figure 7, Appendix A.7).

The target is ``y = u(v*^T x + b*)`` with ``u`` a known step function (floor onto a grid around
``b*``, :mod:`failgeom.problems.steps`). Since ``u' = 0`` almost everywhere, plain gradient
methods through ``u`` cannot move. Four learners, each a registered experiment:

- ``flat-smooth`` (5.2): a linear predictor through the sum-of-sigmoids approximation of u,
  squared loss; run from two bias initialisations, one inside a wide flat step.
- ``flat-e2e`` (5.3): an MLP 100-100-100-1 (ReLU) regressing y.
- ``flat-multiclass`` (5.4): an MLP 100-100-#steps, softmax cross-entropy on the step index;
  predicts the grid value of the argmax.
- ``flat-forward-only`` (5.5): a linear predictor through u trained with the forward-only
  (Isotron / GLMtron) update :func:`failgeom.nn.forward_only_step`.

and ``flat-forward-only-convergence`` (Appendix A.7): the forward-only update with plain SGD on a
Lipschitz monotone target, error against the number of iterations T, with the bound
``T = c^4 B^4 L^2 / eps^2`` of :mod:`failgeom.theory.flat`.

All four learners of one seed share the targets (each replica its own ``v*``, ``b*`` and grid),
the training minibatches and the test set, so their metrics are paired.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .. import nn
from ..problems.steps import StepFunction, clipped_ramp, draw_targets, paper_grids, sample_steps, unit_sphere
from ..results import Result
from ..theory.flat import forward_only_iterations, forward_only_step_size, lipschitz_activation
from ..training import null_progress, seed_streams, train
from . import register
from .base import Experiment, ExperimentConfig

#: seed-stream key of this family (targets, data and test sets are shared by the learners)
_FAMILY_KEY = 5
LEARNERS = ("smooth", "e2e", "multiclass", "forward-only")
BIAS_INITS = ("zero", "wide-step", "target")


# --------------------------------------------------------------------------------------------
# configs and presets
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlatConfig(ExperimentConfig):
    """Shared hyperparameters of the Sec. 5 learners (defaults: the original code's).

    ``n_inputs`` inputs ``x = randn(n) / n``, batch ``batch`` of fresh samples per step, Adam
    (beta1 0.9, beta2 0.99, eps 1e-5) with learning rate ``lr`` for ``steps`` steps. Curves are
    measured on ``eval_size`` held-out points per replica every ``eval_every`` steps, the final
    metrics on ``test_size`` points. ``boundary_width``: a test point is "at a boundary" when
    ``r = v*^T x + b*`` is within this distance of a jump. ``zoom``: half-width of Figure 7's
    window around the mean of r. ``wide_step_offset``: the "wide-step" bias initialisation
    ``b* + wide_step_offset`` (inside the flat step ``[b* + 0.175, b* + 1)``).
    """

    n_inputs: int = 100
    batch: int = 256
    steps: int = 10_000
    lr: float = 1e-3
    eval_every: int = 250
    eval_size: int = 1000
    test_size: int = 10_000
    boundary_width: float = 0.005
    zoom: float = 0.25
    wide_step_offset: float = 0.6

    positive = ("replicas", "n_inputs", "batch", "steps", "lr", "eval_every", "eval_size",
                "test_size", "boundary_width", "zoom")


@dataclass(frozen=True)
class SmoothConfig(FlatConfig):
    """5.2: linear predictor through the sum-of-sigmoids surrogate; ``bias_inits`` are run in
    turn: ``zero`` (the original code), ``wide-step`` (``b* + wide_step_offset``) or
    ``target`` (``b*``)."""

    lr: float = 0.01
    bias_inits: tuple[str, ...] = ("zero", "wide-step")

    def check(self) -> None:
        bad = [b for b in self.bias_inits if b not in BIAS_INITS]
        if not self.bias_inits or bad:
            raise ValueError(f"bias_inits must be a non-empty list of {BIAS_INITS}, got {self.bias_inits!r}")


@dataclass(frozen=True)
class MLPConfig(FlatConfig):
    """5.3 / 5.4: hidden ReLU layers of an MLP."""

    hidden: tuple[int, ...] = (100, 100, 100)
    positive = FlatConfig.positive + ("hidden",)


@dataclass(frozen=True)
class ForwardOnlyConfig(FlatConfig):
    """5.5: linear predictor through u, forward-only update."""

    steps: int = 5_000


# The quick presets keep the paper's learning rates, batch and (forward-only) iteration count,
# with fewer replicas and fewer iterations for the slower learners: on the 2-core machine the
# sampler alone costs about 0.3 ms per replica and step, an MLP step about 1.5 ms per replica.
PRESETS = {
    "smooth": {
        "paper": SmoothConfig(),
        "quick": SmoothConfig(replicas=4, steps=3_000, eval_every=150),
    },
    "e2e": {
        "paper": MLPConfig(),
        "quick": MLPConfig(replicas=3, steps=3_000, eval_every=150),
    },
    "multiclass": {
        # the notes give no learning rate for 5.4; the other MLP's 1e-3 is used
        "paper": MLPConfig(hidden=(100, 100)),
        "quick": MLPConfig(hidden=(100, 100), replicas=3, steps=3_000, eval_every=150),
    },
    "forward-only": {
        "paper": ForwardOnlyConfig(),
        "quick": ForwardOnlyConfig(replicas=4, eval_every=250),
    },
}


# --------------------------------------------------------------------------------------------
# the learners
# --------------------------------------------------------------------------------------------

class SmoothStep(nn.Layer):
    """The sum-of-sigmoids surrogate of a :class:`StepFunction` as a layer (exact gradient)."""

    def __init__(self, step: StepFunction):
        self.step = step

    def __repr__(self) -> str:
        return f"SmoothStep({self.step!r})"

    def forward(self, params, x):
        value, deriv = self.step.smooth(x)
        return value, deriv

    def backward(self, params, cache, dy, need_dx=True):
        return dy * cache, {}


@dataclass
class Learner:
    """One learner of Sec. 5: model, loss, update rule, and how to read its prediction."""

    name: str
    model: nn.Sequential
    loss: object
    step_fn: object
    classification: bool
    predict: object  # predict(params, x) -> (R, B) values
    multiply_adds: int  # per prediction, excluding the activation / argmax


def _mlp(hidden, n_out) -> nn.Sequential:
    layers = []
    for width in hidden:
        layers += [nn.Dense(width), nn.ReLU()]
    return nn.Sequential(layers + [nn.Dense(n_out)])


def _mlp_multiply_adds(n_in, hidden, n_out) -> int:
    widths = (n_in,) + tuple(hidden) + (n_out,)
    return int(sum(a * b for a, b in zip(widths[:-1], widths[1:])))


def make_learner(kind: str, step: StepFunction, config: FlatConfig) -> Learner:
    """Build the model and update rule of learner ``kind`` (one of :data:`LEARNERS`)."""
    n = config.n_inputs
    half_squared = _half_squared
    if kind == "smooth":
        model = nn.Sequential([nn.Dense(1), SmoothStep(step)])
        return Learner(kind, model, half_squared, None, False,
                       lambda p, x: model.forward(p, x)[0][..., 0], n)
    if kind == "forward-only":
        model = nn.Sequential([nn.Dense(1), nn.StraightThrough(step, name="u")])
        return Learner(kind, model, half_squared, nn.forward_only_step, False,
                       lambda p, x: model.forward(p, x)[0][..., 0], n)
    if kind == "e2e":
        model = _mlp(config.hidden, 1)
        return Learner(kind, model, half_squared, None, False,
                       lambda p, x: model.forward(p, x)[0][..., 0], _mlp_multiply_adds(n, config.hidden, 1))
    if kind == "multiclass":
        K = step.grid.shape[1]
        model = _mlp(config.hidden, K)
        valid = np.isfinite(step.grid)[:, None, :]  # padded classes are never predicted

        def predict(p, x):
            logits, _ = model.forward(p, x)
            return step.value_of(np.where(valid, logits, -np.inf).argmax(axis=-1))

        return Learner(kind, model, nn.losses.softmax_cross_entropy, None, True, predict,
                       _mlp_multiply_adds(n, config.hidden, K))
    raise ValueError(f"learner must be one of {LEARNERS}, got {kind!r}")


def _half_squared(out, target, reduction="mean"):
    """The square loss ``0.5 (out - y)^2``: its forward-only gradient is ``(u - y) x``."""
    return nn.losses.squared(out, target, reduction=reduction, coef=0.5)


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------

def step_metrics(step: StepFunction, yhat, r, boundary_width: float) -> dict:
    """Per-replica accuracy of predictions ``yhat`` ``(R, B)`` of ``u(r)``.

    Returns
    -------
    dict of (R,) arrays
        ``test_mse``: ``mean (yhat - u(r))^2``. ``exact_step_fraction``: fraction of points
        whose prediction, read as the nearest grid value, is the right step (for learners that
        output grid values, exact equality). ``boundary_error_rate``: the wrong-step fraction
        among points with ``r`` within ``boundary_width`` of a jump; ``interior_error_rate``:
        the same among the other points. ``boundary_fraction``: share of points at a boundary.
    """
    yhat = np.asarray(yhat, dtype=np.float64)
    idx = step.index(r)
    y = step.value_of(idx)
    wrong = step.nearest_index(yhat) != idx
    near = step.boundary_distance(r) < boundary_width
    n_near = near.sum(axis=1)
    n_far = (~near).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        boundary = np.where(n_near > 0, (wrong & near).sum(axis=1) / n_near, np.nan)
        interior = np.where(n_far > 0, (wrong & ~near).sum(axis=1) / n_far, np.nan)
    return {
        "test_mse": ((yhat - y) ** 2).mean(axis=1),
        "exact_step_fraction": 1.0 - wrong.mean(axis=1),
        "boundary_error_rate": boundary,
        "interior_error_rate": interior,
        "boundary_fraction": near.mean(axis=1),
    }


def _summarize(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v)), "min": float(np.nanmin(v)),
            "max": float(np.nanmax(v)), "values": v.tolist()}


def _test_cost(predict, params, x, repeats: int = 5) -> float:
    """Seconds per 10,000 predictions of one model (median over repeats, all replicas at once
    divided by R)."""
    R, n = x.shape[:2]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(params, x)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / R * (10_000 / n)


# --------------------------------------------------------------------------------------------
# one run of one learner
# --------------------------------------------------------------------------------------------

@dataclass
class Problem:
    """The shared Sec. 5 problem of one seed: targets, grids and the fixed eval / test sets."""

    v_star: np.ndarray
    b_star: np.ndarray
    step: StepFunction
    eval_set: tuple
    test_set: tuple
    data_seed: np.random.SeedSequence


def make_problem(config: FlatConfig, seed: int) -> Problem:
    """Targets ``v*``, ``b*`` (each replica from its own stream), grids, eval and test sets."""
    R = config.replicas
    target_ss, data_ss, eval_ss, test_ss = seed_streams(seed, _FAMILY_KEY).spawn(4)
    v_star, b_star = draw_targets([np.random.default_rng(s) for s in target_ss.spawn(R)], config.n_inputs)
    step = paper_grids(b_star)
    eval_set = sample_steps(np.random.default_rng(eval_ss), v_star, b_star, step, config.eval_size, config.dtype)
    test_set = sample_steps(np.random.default_rng(test_ss), v_star, b_star, step, config.test_size, config.dtype)
    return Problem(v_star, b_star, step, eval_set, test_set, data_ss)


def run_learner(kind: str, config: FlatConfig, problem: Problem, seed: int, progress=null_progress,
                bias_init: str = "zero", desc: str | None = None):
    """Train learner ``kind`` on ``problem``; returns ``(curves, metrics, plot_data, params)``."""
    R, step = config.replicas, problem.step
    learner = make_learner(kind, step, config)
    init_ss = seed_streams(seed, _FAMILY_KEY, 1 + LEARNERS.index(kind))
    params, _ = learner.model.init([np.random.default_rng(s) for s in init_ss.spawn(R)], R,
                                   (config.n_inputs,), config.dtype)
    if bias_init == "wide-step":
        params[0]["b"][:, 0] = problem.b_star + config.wide_step_offset
    elif bias_init == "target":
        params[0]["b"][:, 0] = problem.b_star
    elif bias_init != "zero":
        raise ValueError(f"bias_init must be one of {BIAS_INITS}, got {bias_init!r}")
    optimizer = nn.Adam(config.lr, **nn.PAPER_ADAM)
    data_rng = np.random.default_rng(problem.data_seed)  # same minibatches for every learner

    def sample():
        x, _, index, y = sample_steps(data_rng, problem.v_star, problem.b_star, step, config.batch, config.dtype)
        return x, (index if learner.classification else y)

    eval_time = [0.0]

    def evaluate(p):
        start = time.perf_counter()
        x, r, _, _ = problem.eval_set
        m = step_metrics(step, learner.predict(p, x), r, config.boundary_width)
        eval_time[0] += time.perf_counter() - start
        return {"test_mse": m["test_mse"], "exact_step_fraction": m["exact_step_fraction"]}

    start = time.perf_counter()
    curves = train(learner.model, params, learner.loss, optimizer, sample, config.steps,
                   eval_every=config.eval_every, evaluate=evaluate, progress=progress,
                   desc=desc or f"flat {kind}", step_fn=learner.step_fn)
    train_s = time.perf_counter() - start - eval_time[0]

    x, r, _, _ = problem.test_set
    yhat = learner.predict(params, x)
    m = step_metrics(step, yhat, r, config.boundary_width)
    metrics = {key: _summarize(value) for key, value in m.items()}
    if kind == "smooth":  # the same linear predictor read through the exact u
        lin = nn.Sequential(learner.model.layers[:1]).forward(params[:1], x)[0][..., 0]
        exact = step_metrics(step, step(lin), r, config.boundary_width)
        metrics["test_mse_exact_u"] = _summarize(exact["test_mse"])
        metrics["exact_step_fraction_exact_u"] = _summarize(exact["exact_step_fraction"])
    if kind in ("smooth", "forward-only"):
        w, b = params[0]["W"][..., 0].astype(np.float64), params[0]["b"][:, 0].astype(np.float64)
        metrics["weight_error"] = _summarize(np.linalg.norm(w - problem.v_star, axis=1)
                                             / np.linalg.norm(problem.v_star, axis=1))
        metrics["bias_error"] = _summarize(np.abs(b - problem.b_star))
    metrics["train_wall_s"] = float(train_s)
    metrics["train_ms_per_step"] = float(1e3 * train_s / config.steps)
    metrics["test_s_per_10k_predictions"] = _test_cost(learner.predict, params, x)
    metrics["multiply_adds_per_prediction"] = learner.multiply_adds
    return curves, metrics, _plot_data(step, r, yhat, config, kind), params


def _plot_data(step: StepFunction, r, yhat, config: FlatConfig, kind: str, max_points: int = 1500) -> dict:
    """Replica 0's test points in Figure 7's window (mean of r +- zoom), and u on a fine grid;
    for the smooth learner also the surrogate, for the multiclass one a boundary zoom."""
    r0, y0 = np.asarray(r[0], dtype=np.float64), np.asarray(yhat[0], dtype=np.float64)
    centre = float(r0.mean())
    lo, hi = centre - config.zoom, centre + config.zoom
    inside = np.flatnonzero((r0 >= lo) & (r0 <= hi))[:max_points]
    order = inside[np.argsort(r0[inside])]
    fine = np.linspace(lo, hi, 1201)
    single = StepFunction(step.grid[:1])
    data = {"window": [lo, hi], "r": r0[order].tolist(), "output": y0[order].tolist(),
            "fine_r": fine.tolist(), "u": single(fine[None])[0].tolist()}
    if kind == "smooth":
        data["u_smooth"] = single.smooth(fine[None])[0][0].tolist()
    if kind == "multiclass":
        grid = step.grid[0][np.isfinite(step.grid[0])]
        jumps = grid[(grid > lo) & (grid < hi)]
        if jumps.size:  # the jump nearest to the mean of r
            z = float(jumps[np.argmin(np.abs(jumps - centre))])
            half = 4 * config.boundary_width
            near = np.flatnonzero(np.abs(r0 - z) <= half)
            near = near[np.argsort(r0[near])]
            data["boundary"] = {"z": z, "window": [z - half, z + half], "r": r0[near].tolist(),
                                "output": y0[near].tolist()}
    return data


def _problem_metrics(problem: Problem) -> dict:
    """The measured grid: number of steps per replica and how many the test set visits."""
    x, r, index, _ = problem.test_set
    visited = [int(np.unique(row).size) for row in index]
    return {"n_steps": problem.step.n_steps.tolist(), "n_steps_visited_by_test_set": visited,
            "b_star": problem.b_star.tolist(), "r_std": np.std(r, axis=1).tolist()}


def run_family_member(kind: str, config: FlatConfig, seed: int = 0, progress=null_progress,
                      preset: str = "custom") -> Result:
    """Run learner ``kind`` (all bias initialisations for ``smooth``) and build the Result."""
    config.validate()
    problem = make_problem(config, seed)
    inits = config.bias_inits if kind == "smooth" else ("zero",)
    metrics, curves, plots, timing = {"problem": _problem_metrics(problem)}, {}, {}, {}
    for bias_init in inits:
        key = f"{kind} (bias {bias_init})" if kind == "smooth" else kind
        start = time.perf_counter()
        c, m, plot, _ = run_learner(kind, config, problem, seed, progress, bias_init, desc=f"flat {key}")
        timing[key] = time.perf_counter() - start
        metrics[key], curves[key], plots[key] = m, c.to_dict(), plot
    curves["figure"] = plots
    timing["total_s"] = sum(timing.values())
    return Result(experiment=f"flat-{kind}", preset=preset, config=config.to_dict(),
                  seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics,
                  curves=curves, timing=timing)


# --------------------------------------------------------------------------------------------
# figures and summaries
# --------------------------------------------------------------------------------------------

def _learner_keys(result: Result) -> list[str]:
    return [k for k in result.metrics if k != "problem"]


def _panel(ax, plot: dict, title: str) -> None:
    from .. import plotting

    ax.plot(plot["fine_r"], plot["u"], color=plotting.COLORS["green"], ls="--", lw=1.2, label="u(r)")
    if "u_smooth" in plot:
        ax.plot(plot["fine_r"], plot["u_smooth"], color=plotting.COLORS["grey"], lw=1.0,
                label="sigmoid approx.")
    ax.plot(plot["r"], plot["output"], ".", ms=1.5, color=plotting.COLORS["red"], label="learned")
    u = np.asarray(plot["u"])
    pad = 0.1 * max(u.max() - u.min(), 1e-3)
    ax.set_ylim(u.min() - pad, u.max() + pad)
    ax.set_xlim(*plot["window"])
    ax.set_title(title)
    ax.set_xlabel(r"$r = v^{*\top} x + b^*$")


def _boundary_panel(ax, boundary: dict) -> None:
    from .. import plotting

    z = boundary["z"]
    r = np.asarray(boundary["r"])
    out = np.asarray(boundary["output"])
    lo, hi = boundary["window"]
    ax.axvline(z, color=plotting.COLORS["green"], ls="--", lw=1.2, label="jump of u")
    ax.plot(r, out, ".", ms=2.5, color=plotting.COLORS["red"], label="predicted step")
    ax.set_xlim(lo, hi)
    ax.set_title("multiclass: boundary zoom")
    ax.set_xlabel(r"$r$")


def figure(result: Result):
    """One experiment's part of Figure 7: learned output (red) against u(r) (dashed green) vs r
    for replica 0, and the test MSE during training (band: min-max over replicas)."""
    from .. import plotting

    keys = _learner_keys(result)
    plots = result.curves["figure"]
    extra = 1 if any("boundary" in plots[k] for k in keys) else 0
    fig, axes = plotting.figure(1, len(keys) + extra + 1, width=3.3, height=2.8)
    axes = axes[0]
    for ax, key in zip(axes, keys):
        _panel(ax, plots[key], key)
    if extra:
        _boundary_panel(axes[len(keys)], next(plots[k]["boundary"] for k in keys if "boundary" in plots[k]))
    axes[0].set_ylabel("output")
    axes[0].legend(loc="upper left", fontsize=7, markerscale=4)
    ax = axes[-1]
    for i, key in enumerate(keys):
        c = result.curves[key]
        color = plotting.CYCLE[i % len(plotting.CYCLE)]
        plotting.band(ax, c["steps"], np.asarray(c["test_mse"]), color, label=key)
        ax.plot(c["steps"], np.asarray(c["test_mse"]), color=color, lw=0.5, alpha=0.5)  # each replica
    ax.set_yscale("log")
    ax.set_xlabel("iterations")
    ax.set_ylabel("held-out MSE (thin: each replica)")
    ax.legend(fontsize=7)
    fig.suptitle(f"{result.experiment} ({result.seeds['replicas']} seeds; scatter: replica 0)")
    fig.tight_layout()
    return fig


def figure7(results) -> object:
    """The paper's Figure 7 from the four learners' results (any order): one panel per learner
    (every smooth bias initialisation) plus the multiclass boundary zoom."""
    from .. import plotting

    panels, boundary = [], None
    by_name = {res.experiment: res for res in results}
    for kind in LEARNERS:
        res = by_name.get(f"flat-{kind}")
        if res is None:
            continue
        for key in _learner_keys(res):
            panels.append((key, res.curves["figure"][key]))
            boundary = res.curves["figure"][key].get("boundary", boundary)
    if not panels:
        raise ValueError("results must hold at least one flat-* learner result")
    n = len(panels) + (boundary is not None)
    ncols = min(n, 3)
    fig, axes = plotting.figure(math.ceil(n / ncols), ncols, width=3.2, height=2.8)
    flat_axes = list(axes.flat)
    for ax, (key, plot) in zip(flat_axes, panels):
        _panel(ax, plot, key)
    if boundary is not None:
        _boundary_panel(flat_axes[len(panels)], boundary)
    for ax in flat_axes[n:]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("output")
    flat_axes[0].legend(loc="upper left", fontsize=7, markerscale=4)
    fig.suptitle("Figure 7: learned output (red) vs u(r) (dashed green), zoomed around the mean of r "
                 "(replica 0)")
    fig.tight_layout()
    return fig


def figure7_from_dir(folder) -> object:
    """Figure 7 from ``folder/flat-*/result.json`` (as written by ``failgeom run``)."""
    from pathlib import Path

    found = [Result.load(p) for p in sorted(Path(folder).glob("flat-*/result.json"))
             if p.parent.name in {f"flat-{k}" for k in LEARNERS}]
    return figure7(found)


def summary(result: Result) -> str:
    """Per learner: test MSE, exact-step fraction, boundary error rate, train time."""
    parts = [f"steps in grid {sorted(set(result.metrics['problem']['n_steps']))}"]
    for key in _learner_keys(result):
        m = result.metrics[key]
        parts.append(
            f"{key}: MSE {m['test_mse']['mean']:.3g} ± {m['test_mse']['std']:.2g}, "
            f"exact step {m['exact_step_fraction']['mean']:.3f}, "
            f"boundary error {m['boundary_error_rate']['mean']:.3f}, train {m['train_wall_s']:.1f} s, "
            f"test {1e3 * m['test_s_per_10k_predictions']:.2f} ms/10k")
    return "; ".join(parts)


def _make_run(kind: str):
    def run(config, seed: int = 0, progress=null_progress, preset: str = "custom") -> Result:
        return run_family_member(kind, config, seed, progress, preset)

    run.__doc__ = f"Run the {kind} learner of Sec. 5 (see :func:`run_family_member`)."
    return run


_DESCRIPTIONS = {
    "smooth": ("step target, linear predictor through a sum-of-sigmoids approximation "
               "(paper: slow, sometimes fails, sensitive to the bias init) (Sec. 5.2, Fig. 7)",
               "Sec. 5.2, Figure 7"),
    "e2e": ("step target, MLP 100-100-100-1 regression (paper: imprecise at the jumps) (Sec. 5.3, Fig. 7)",
            "Sec. 5.3, Figure 7"),
    "multiclass": ("step target, MLP with a softmax over the steps (paper: blurry boundaries) "
                   "(Sec. 5.4, Fig. 7)", "Sec. 5.4, Figure 7"),
    "forward-only": ("step target, linear predictor with the forward-only (Isotron/GLMtron) update "
                     "(paper: most accurate and cheapest) (Sec. 5.5, Fig. 7)", "Sec. 5.5, Figure 7"),
}

for _kind in LEARNERS:
    register(Experiment(
        name=f"flat-{_kind}", description=_DESCRIPTIONS[_kind][0], presets=PRESETS[_kind],
        run=_make_run(_kind), figure=figure, summary=summary, family=4,
        paper_ref=_DESCRIPTIONS[_kind][1],
    ))


# --------------------------------------------------------------------------------------------
# Appendix A.7: forward-only convergence on a Lipschitz monotone target
# --------------------------------------------------------------------------------------------

ACTIVATIONS = ("ramp", "tanh")


@dataclass(frozen=True)
class ConvergenceConfig(ExperimentConfig):
    """Appendix A.7 check: forward-only with plain SGD on ``y = u(v*^T x)``.

    ``x`` uniform on the unit sphere of ``R^dim`` (``||x|| = 1``), ``||v*|| = B``, ``w_0 = 0``,
    one fresh sample per step, ``u`` the clipped ramp ``clip(L r, -c, c)`` (or ``c tanh(L r /
    c)``). For each horizon T: step ``eta = sqrt(1 / (T c^2))``, T steps; the squared error
    ``E (u(w^T x) - u(v*^T x))^2`` is compared with the bound ``eps(T) = c^2 B^2 L / sqrt(T)``
    (the inverse of ``T = c^4 B^4 L^2 / eps^2``).
    """

    horizons: tuple[int, ...] = (100, 316, 1_000, 3_162, 10_000, 31_623, 100_000)
    dim: int = 20
    B: float = 3.0
    c: float = 1.0
    L: float = 1.0
    activation: Literal["ramp", "tanh"] = "ramp"
    test_size: int = 4096

    positive = ("replicas", "horizons", "dim", "B", "c", "L", "test_size")


CONVERGENCE_PRESETS = {
    # Appendix A.7 states a bound, not an experiment: "paper" extends the range of T and the
    # replicas; one step (batch 1) costs about 0.1-0.5 ms on the 2-core machine
    "paper": ConvergenceConfig(replicas=10),
    "quick": ConvergenceConfig(horizons=(100, 316, 1_000, 3_162, 10_000, 31_623)),
}


def bound_epsilon(T, c: float, B: float, L: float) -> np.ndarray:
    """Appendix A.7's error level reached after T iterations: ``eps = c^2 B^2 L / sqrt(T)``,
    from :func:`failgeom.theory.flat.forward_only_iterations` (``T(eps) = T(1) / eps^2``)."""
    return np.sqrt(forward_only_iterations(c, B, L, 1.0) / np.asarray(T, dtype=np.float64))


def _activation(config: ConvergenceConfig):
    if config.activation == "ramp":
        return lambda r: clipped_ramp(r, config.c, config.L)
    return lambda r: lipschitz_activation(r, config.c, config.L)


def run_convergence_horizon(config: ConvergenceConfig, T: int, seed: int, progress=null_progress) -> dict:
    """Forward-only SGD for T steps with A.7's step size; per-replica errors."""
    R, d = config.replicas, config.dim
    target_ss, data_ss, test_ss = seed_streams(seed, _FAMILY_KEY, 99, T).spawn(3)
    u = _activation(config)
    directions = np.stack([unit_sphere(np.random.default_rng(s), (), d) for s in target_ss.spawn(R)])
    v_star = config.B * directions  # (R, d), ||v*|| = B
    test_x = unit_sphere(np.random.default_rng(test_ss), (R, config.test_size), d)
    test_y = u(np.einsum("rnd,rd->rn", test_x, v_star))
    model = nn.Sequential([nn.Dense(1, bias=False, init="zeros"), nn.StraightThrough(u, name=config.activation)])
    params, _ = model.init(np.random.default_rng(0), R, (d,), np.float64)  # zeros: no randomness used
    eta = forward_only_step_size(T, config.c)
    data_rng = np.random.default_rng(data_ss)

    chunk = {"x": None, "y": None, "i": 0}

    def sample():
        # one fresh point per step, drawn 1,000 steps at a time (Python overhead dominates)
        if chunk["x"] is None or chunk["i"] == chunk["x"].shape[1]:
            chunk["x"] = unit_sphere(data_rng, (R, 1000), d)
            chunk["y"] = u(np.einsum("rbd,rd->rb", chunk["x"], v_star))[..., None]
            chunk["i"] = 0
        i = chunk["i"]
        chunk["i"] += 1
        return chunk["x"][:, i:i + 1], chunk["y"][:, i:i + 1]

    def evaluate(p):
        pred = model.forward(p, test_x)[0][..., 0]
        return {"test_error": ((pred - test_y) ** 2).mean(axis=1)}

    start = time.perf_counter()
    curves = train(model, params, _half_squared, nn.SGD(eta), sample, T, eval_every=T, evaluate=evaluate,
                   progress=progress, desc=f"forward-only A.7 T={T}", step_fn=nn.forward_only_step)
    wall = time.perf_counter() - start
    # the online loss at w_t on a fresh x_t is an unbiased estimate of E err(w_t): its mean over
    # t < T estimates the average-iterate error that A.7's argument bounds
    average = 2.0 * curves.array("train_loss")[-1]
    return {"T": T, "eta": eta, "average_iterate_error": average.tolist(),
            "final_error": curves.array("test_error")[-1].tolist(),
            "initial_error": curves.array("test_error")[0].tolist(),
            "final_weight_norm": np.linalg.norm(params[0]["W"][..., 0], axis=1).tolist(),
            "wall_s": wall}


def run_convergence(config: ConvergenceConfig, seed: int = 0, progress=null_progress,
                    preset: str = "custom") -> Result:
    """Every horizon of the config; metrics compare the errors with A.7's bound."""
    config.validate()
    rows = [run_convergence_horizon(config, int(T), seed, progress) for T in config.horizons]
    T = np.array([row["T"] for row in rows], dtype=np.float64)
    avg = np.array([row["average_iterate_error"] for row in rows])  # (n_T, R)
    final = np.array([row["final_error"] for row in rows])
    bound = bound_epsilon(T, config.c, config.B, config.L)
    slope_avg = float(np.polyfit(np.log(T), np.log(avg.mean(axis=1)), 1)[0]) if len(T) > 1 else float("nan")
    slope_final = float(np.polyfit(np.log(T), np.log(final.mean(axis=1)), 1)[0]) if len(T) > 1 else float("nan")
    metrics = {
        "horizons": T.tolist(), "bound": bound.tolist(),
        "average_iterate_error_mean": avg.mean(axis=1).tolist(),
        "final_error_mean": final.mean(axis=1).tolist(),
        "max_ratio_average_to_bound": float((avg / bound[:, None]).max()),
        "max_ratio_final_to_bound": float((final / bound[:, None]).max()),
        "bound_holds_average": bool(np.all(avg <= bound[:, None])),
        "loglog_slope_average": slope_avg, "loglog_slope_final": slope_final,
        "per_horizon": rows,
    }
    curves = {"T": T.tolist(), "average_iterate_error": avg.tolist(), "final_error": final.tolist(),
              "bound": bound.tolist()}
    return Result(experiment="flat-forward-only-convergence", preset=preset, config=config.to_dict(),
                  seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics, curves=curves,
                  timing={f"T={row['T']}": row["wall_s"] for row in rows})


def figure_convergence(result: Result):
    """Error vs T on log-log axes with A.7's bound (band: min-max over replicas)."""
    from .. import plotting

    c = result.curves
    fig, axes = plotting.figure(1, 1, width=4.6, height=3.3)
    ax = axes[0, 0]
    plotting.band(ax, c["T"], np.asarray(c["average_iterate_error"]), plotting.COLORS["blue"],
                  label="average-iterate error (online)")
    plotting.band(ax, c["T"], np.asarray(c["final_error"]), plotting.COLORS["red"], label="final-iterate error (test)")
    ax.plot(c["T"], c["bound"], color="k", ls="--", lw=1.2, label=r"A.7 bound $c^2B^2L/\sqrt{T}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("iterations T (step $\\eta = 1/(c\\sqrt{T})$)")
    ax.set_ylabel("expected squared error")
    cfg = result.config
    ax.set_title(f"forward-only, {cfg['activation']} u: c={cfg['c']:g}, L={cfg['L']:g}, B={cfg['B']:g}, d={cfg['dim']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def summary_convergence(result: Result) -> str:
    m = result.metrics
    return (f"max error/bound {m['max_ratio_average_to_bound']:.3f} (average iterate), "
            f"{m['max_ratio_final_to_bound']:.3f} (final); log-log slope {m['loglog_slope_average']:.2f} "
            f"(average), {m['loglog_slope_final']:.2f} (final) vs bound -0.5")


register(Experiment(
    name="flat-forward-only-convergence",
    description="forward-only SGD on a Lipschitz monotone target: error vs T against the "
                "O(L^2/eps^2) bound (Appendix A.7)",
    presets=CONVERGENCE_PRESETS, run=run_convergence, figure=figure_convergence,
    summary=summary_convergence, family=4, paper_ref="Appendix A.7",
))
