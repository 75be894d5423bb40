"""Flat activations (paper Sec. 5, Figure 7): the four learners of a step-function target.

The target is ``y = u(v*^T x + b*)`` with ``u`` a known step function (floor onto a grid around
``b*``, :mod:`failgeom.problems.steps`). Since ``u' = 0`` almost everywhere, plain gradient
methods through ``u`` cannot move. Four learners, each a registered experiment of one cell:

- ``flat-smooth`` (5.2): a linear predictor through the sum-of-sigmoids approximation of u,
  squared loss; every bias initialisation (e.g. one inside a wide flat step) trained at once as
  extra replicas on the same minibatches.
- ``flat-e2e`` (5.3): an MLP 100-100-100-1 (ReLU) regressing y.
- ``flat-multiclass`` (5.4): an MLP 100-100-#steps, softmax cross-entropy on the step index;
  predicts the grid value of the argmax.
- ``flat-forward-only`` (5.5): a linear predictor through u trained with the forward-only
  (Isotron / GLMtron) update :func:`failgeom.nn.forward_only_step`.

The four learners of one seed share the targets (each replica its own ``v*``, ``b*`` and grid),
the training minibatches and the test set (streams under the family key ``"flat"``), so their
metrics are paired. Figures: :mod:`failgeom.experiments.flat_figures`. Appendix A.7 is the
separate experiment :mod:`failgeom.experiments.flat_convergence`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np

from .. import nn
from ..problems.steps import StepFunction, draw_targets, paper_grids, sample_steps, step_metrics
from ..stats import describe
from ..training import fit, null_progress, seed_streams, train_step
from . import register
from .base import Cell, Experiment, F32_MAX, ExperimentConfig, param
from .flat_figures import figure, summary
from .flat_work import STEP_FRACTION_LEVELS, counted_work, steps_to_fraction

#: seed-stream key shared by the four learners (its problem and data streams): targets, minibatches
#: and test sets are common to them. Its value feeds every stream: changing it changes the numbers
STREAM_KEY = "flat"
LEARNERS = ("smooth", "e2e", "multiclass", "forward-only")
BIAS_INITS = ("zero", "wide-step", "target")


# --------------------------------------------------------------------------------------------
# configs and presets
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlatConfig(ExperimentConfig):
    """Shared hyperparameters of the Sec. 5 learners (defaults: the original code's)."""

    n_inputs: int = param(100, low=1, doc="input dimension N; x = randn(N) / N")
    batch: int = param(256, low=1, doc="fresh samples per replica and step")
    steps: int = param(10_000, low=1, doc="training iterations")
    lr: float = param(1e-3, low=0.0, low_open=True, high=10.0,
                      doc="Adam learning rate (beta1 0.9, beta2 0.99, eps 1e-5); at most 10: the loss through a flat or "
                          "sigmoid activation is bounded, so a huge rate never ends in NonFiniteLossError "
                          "but overflows the weights")
    eval_every: int = param(250, low=1, doc="steps between held-out evaluations")
    eval_size: int = param(1000, low=1, doc="held-out points per replica for the curves")
    test_size: int = param(10_000, low=1, doc="test points per replica for the final metrics")
    boundary_width: float = param(0.005, low=0.0, low_open=True, high=1.0,
                                  doc="a test point is 'at a boundary' when r = v*^T x + b* is this close to a jump")
    zoom: float = param(0.25, low=0.0, low_open=True, high=100.0,
                        doc="half-width of Figure 7's window around the mean of r")
    wide_step_offset: float = param(0.6, low=0.175, high=1.0, high_open=True,
                                    doc="the 'wide-step' bias init b* + offset, inside the flat step "
                                        "[b* + 0.175, b* + 1)")

    def hidden_widths(self) -> tuple[int, ...]:
        return ()

    def memory_bytes(self) -> int:
        # inputs of a step, the eval and test sets (R, points, n), the grid comparisons
        # (R, points, 52) of the test metrics, the MLP's activations; x2 for temporaries
        item = 4 if self.dtype == "float32" else 8
        R = self.replicas * len(getattr(self, "bias_inits", ("zero",)))
        points = self.batch + self.eval_size + self.test_size
        hidden = sum(self.hidden_widths()) + 60
        # the MLP's weights with their gradients and Adam's two moments (4 copies)
        widths = (self.n_inputs, *self.hidden_widths(), 60)
        weights = sum(a * b for a, b in zip(widths, widths[1:])) if self.hidden_widths() else 0
        return int(2 * R * (item * points * self.n_inputs + 8 * self.test_size * 60 * 3
                            + item * self.batch * hidden * 3) + 4 * item * R * weights)


@dataclass(frozen=True)
class SmoothConfig(FlatConfig):
    """5.2: linear predictor through the sum-of-sigmoids surrogate."""

    lr: float = param(0.01, low=0.0, low_open=True, high=10.0,
                      doc="Adam learning rate (beta1 0.9, beta2 0.99, eps 1e-5); at most 10: the loss through a flat or "
                          "sigmoid activation is bounded, so a huge rate never ends in NonFiniteLossError "
                          "but overflows the weights")
    bias_inits: tuple[str, ...] = param(("zero", "wide-step"), choices=BIAS_INITS,
                                        doc="bias initialisations, trained at once: zero (the original "
                                            "code), wide-step (b* + wide_step_offset), target (b*)")

    def check(self) -> None:
        if not self.bias_inits or len(set(self.bias_inits)) != len(self.bias_inits):
            raise ValueError(f"bias_inits must be a non-empty list of distinct values of {BIAS_INITS}, "
                             f"got {self.bias_inits!r}")


@dataclass(frozen=True)
class MLPConfig(FlatConfig):
    """5.3 / 5.4: the hidden ReLU layers of an MLP."""

    lr: float = param(1e-3, low=0.0, low_open=True, high=F32_MAX,
                      doc="Adam learning rate (beta1 0.9, beta2 0.99, eps 1e-5); at most the float32 max, "
                          "where it stays finite (a diverging rate stops the run with NonFiniteLossError)")
    hidden: tuple[int, ...] = param((100, 100, 100), low=1, doc="hidden ReLU layer widths")

    def hidden_widths(self) -> tuple[int, ...]:
        return self.hidden

    def check(self) -> None:
        if not self.hidden:
            raise ValueError("hidden must list at least one layer width, got ()")


@dataclass(frozen=True)
class ForwardOnlyConfig(FlatConfig):
    """5.5: linear predictor through u, forward-only update."""

    steps: int = param(5_000, low=1, doc="training iterations")


# The quick presets keep the paper's learning rates, batch and (forward-only) iteration count,
# with fewer replicas and fewer iterations for the slower learners.
PRESETS: dict[str, dict[str, FlatConfig]] = {
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

_TINY: dict[str, Any] = dict(replicas=2, batch=32, steps=20, eval_every=10, eval_size=100, test_size=600)
TINY = {kind: replace(PRESETS[kind]["quick"], **_TINY, **cast("dict[str, Any]", {"hidden": (8, 8)} if kind in ("e2e", "multiclass") else {}))
        for kind in LEARNERS}


# --------------------------------------------------------------------------------------------
# the learners
# --------------------------------------------------------------------------------------------

@dataclass
class FlatLearner:
    """One learner of Sec. 5: model, loss, update rule, and how to read its prediction."""

    name: str
    model: nn.Sequential
    loss: Callable
    step_fn: Callable | None
    classification: bool
    predict: Callable  # predict(params, x) -> (R, B) values
    multiply_adds: int  # per prediction, excluding the activation / argmax


def _mlp(hidden, n_out) -> nn.Sequential:
    layers = []
    for width in hidden:
        layers += [nn.Dense(width), nn.ReLU()]
    return nn.Sequential(layers + [nn.Dense(n_out)])


def _mlp_multiply_adds(n_in, hidden, n_out) -> int:
    widths = (n_in,) + tuple(hidden) + (n_out,)
    return int(sum(a * b for a, b in zip(widths[:-1], widths[1:])))


def half_squared(out, target, reduction="mean"):
    """The square loss ``0.5 (out - y)^2``: its forward-only gradient is ``(u - y) x``."""
    return nn.losses.squared(out, target, reduction=reduction, coef=0.5)


def make_learner(kind: str, step: StepFunction, config: FlatConfig) -> FlatLearner:
    """Build the model and update rule of learner ``kind`` (one of :data:`LEARNERS`)."""
    n = config.n_inputs

    def output(model):
        return lambda p, x: model.forward(p, x)[0][..., 0]

    if kind == "smooth":
        model = nn.Sequential([nn.Dense(1), nn.SmoothStep(step.smooth, name="sum of sigmoids")])
        return FlatLearner(kind, model, half_squared, None, False, output(model), n)
    if kind == "forward-only":
        model = nn.Sequential([nn.Dense(1), nn.StraightThrough(step, name="u")])
        return FlatLearner(kind, model, half_squared, nn.forward_only_step, False, output(model), n)
    if kind == "e2e":
        model = _mlp(cast(MLPConfig, config).hidden, 1)
        return FlatLearner(kind, model, half_squared, None, False, output(model),
                           _mlp_multiply_adds(n, cast(MLPConfig, config).hidden, 1))
    if kind == "multiclass":
        K = step.grid.shape[1]
        model = _mlp(cast(MLPConfig, config).hidden, K)
        valid = np.isfinite(step.grid)[:, None, :]  # padded classes are never predicted

        def predict(p, x):
            logits, _ = model.forward(p, x)
            return step.value_of(np.where(valid, logits, -np.inf).argmax(axis=-1))

        return FlatLearner(kind, model, nn.losses.softmax_cross_entropy, None, True, predict,
                           _mlp_multiply_adds(n, cast(MLPConfig, config).hidden, K))
    raise ValueError(f"learner must be one of {LEARNERS}, got {kind!r}")


def _summarize(values) -> dict:
    """Mean, std, min, max over the replicas with a value (None when no replica has one, e.g. a
    boundary error rate when no test point is near a jump), and every value (NaN for none)."""
    v = np.asarray(values, dtype=np.float64)
    return {**describe(v, finite=True), "values": v.tolist()}


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
# the shared problem and one run of one learner
# --------------------------------------------------------------------------------------------

@dataclass
class Problem:
    """The shared Sec. 5 problem of one seed: targets, grids, the fixed eval / test sets and the
    stream of the training minibatches."""

    v_star: np.ndarray
    b_star: np.ndarray
    step: StepFunction
    eval_set: tuple
    test_set: tuple
    data_stream: np.random.SeedSequence


def make_problem(config: FlatConfig, seed: int) -> Problem:
    """Targets ``v*``, ``b*`` (each replica from its own stream), grids, eval and test sets."""
    root = seed_streams(seed, STREAM_KEY, "problem")
    v_star, b_star = draw_targets(root.child("targets").generators(config.replicas), config.n_inputs)
    step = paper_grids(b_star)
    eval_set = sample_steps(np.random.default_rng(root.child("eval")), v_star, b_star, step, config.eval_size,
                            config.dtype)
    test_set = sample_steps(np.random.default_rng(root.child("test")), v_star, b_star, step, config.test_size,
                            config.dtype)
    return Problem(v_star, b_star, step, eval_set, test_set, seed_streams(seed, STREAM_KEY, "data"))


def _tile(a, m: int):
    return a if m == 1 else np.concatenate([a] * m, axis=0)


def run_learner(kind: str, config: FlatConfig, problem: Problem, seed: int, progress=null_progress,
                bias_inits: tuple[str, ...] = ("zero",), desc: str | None = None) -> dict:
    """Train learner ``kind`` on ``problem``, each bias initialisation as R more replicas.

    All ``len(bias_inits) * R`` replicas see the same minibatches and start from the same
    weights (replica r of every initialisation is the problem's replica r); only the bias
    differs. Training time is measured inside the step, sampling and update apart.

    Returns
    -------
    dict
        ``curves``, ``metrics`` and ``plot`` per bias initialisation, ``params`` (the trained
        parameter tree, ``(m R, ...)`` arrays) and ``timing``.
    """
    R, m = config.replicas, len(bias_inits)
    bad = [b for b in bias_inits if b not in BIAS_INITS]
    if m == 0 or bad:
        raise ValueError(f"bias_inits must be a non-empty list of {BIAS_INITS}, got {bias_inits!r}")
    base = problem.step
    step = base if m == 1 else StepFunction(_tile(base.grid, m))
    learner = make_learner(kind, step, config)
    params, _ = learner.model.init(seed_streams(seed, f"flat-{kind}", "init").generators(R), R,
                                   (config.n_inputs,), config.dtype)
    params = [{name: _tile(a, m) for name, a in layer.items()} for layer in params]
    offsets = {"zero": None, "wide-step": config.wide_step_offset, "target": 0.0}
    for j, init in enumerate(bias_inits):
        if offsets[init] is not None:
            params[0]["b"][j * R:(j + 1) * R, 0] = problem.b_star + offsets[init]
    optimizer = nn.Adam(config.lr, **nn.PAPER_ADAM)
    step_fn = learner.step_fn or train_step
    data_rng = np.random.default_rng(problem.data_stream)  # the same minibatches for every learner
    clock = {"sample": 0.0, "update": 0.0}

    def train(i):
        t0 = time.perf_counter()
        x, _, index, y = sample_steps(data_rng, problem.v_star, problem.b_star, base, config.batch, config.dtype)
        target = index if learner.classification else y
        x, target = _tile(x, m), _tile(target, m)
        t1 = time.perf_counter()
        loss = step_fn(learner.model, params, learner.loss, optimizer, x, target)
        clock["sample"] += t1 - t0
        clock["update"] += time.perf_counter() - t1
        return loss

    x_eval, r_eval = _tile(problem.eval_set[0], m), _tile(problem.eval_set[1], m)

    def evaluate(i):
        got = step_metrics(step, learner.predict(params, x_eval), r_eval, config.boundary_width)
        return {"test_mse": got["test_mse"], "exact_step_fraction": got["exact_step_fraction"]}

    curves = fit(train, config.steps, eval_every=config.eval_every, evaluate=evaluate, progress=progress,
                 desc=desc or f"flat {kind}", lr=config.lr)

    x, r = _tile(problem.test_set[0], m), _tile(problem.test_set[1], m)
    yhat = learner.predict(params, x)
    got = step_metrics(step, yhat, r, config.boundary_width)
    if kind == "smooth":  # the same linear predictor read through the exact u
        linear = nn.Sequential(learner.model.layers[:1]).forward(params[:1], x)[0][..., 0]
        exact = step_metrics(step, step(linear), r, config.boundary_width)
    cost = _test_cost(learner.predict, params, x)
    out: dict[str, Any] = {"curves": {}, "metrics": {}, "plot": {}, "params": params,
           "timing": {"train_wall_s": clock["sample"] + clock["update"]}}
    for j, init in enumerate(bias_inits):
        rows = slice(j * R, (j + 1) * R)
        metrics: dict[str, Any] = {key: _summarize(value[rows]) for key, value in got.items()}
        if kind == "smooth":
            metrics["test_mse_exact_u"] = _summarize(exact["test_mse"][rows])
            metrics["exact_step_fraction_exact_u"] = _summarize(exact["exact_step_fraction"][rows])
        if kind in ("smooth", "forward-only"):
            w = params[0]["W"][rows, :, 0].astype(np.float64)
            b = params[0]["b"][rows, 0].astype(np.float64)
            metrics["weight_error"] = _summarize(np.linalg.norm(w - problem.v_star, axis=1)
                                                 / np.linalg.norm(problem.v_star, axis=1))
            metrics["bias_error"] = _summarize(np.abs(b - problem.b_star))
        per = 1e3 / (config.steps * m * R)
        metrics["update_ms_per_replica_step"] = clock["update"] * per
        # wall time of a training step (sampling and update) of the run's R replicas, shared
        # among the bias initialisations trained together
        metrics["train_ms_per_step"] = 1e3 * (clock["sample"] + clock["update"]) / (config.steps * m)
        metrics["sample_ms_per_replica_step"] = clock["sample"] * per
        metrics["test_s_per_10k_predictions"] = cost
        metrics["multiply_adds_per_prediction"] = learner.multiply_adds
        out["metrics"][init] = metrics
        out["curves"][init] = {"steps": list(curves.steps),
                               **{name: [row[rows] for row in values] for name, values in curves.values.items()}}
        out["plot"][init] = plot_data(base, r[rows], yhat[rows], config, kind)
    return out


def plot_data(step: StepFunction, r, yhat, config: FlatConfig, kind: str, max_points: int = 1500) -> dict:
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


def problem_metrics(problem: Problem) -> dict:
    """The measured grid: number of steps per replica and how many the test set visits."""
    _, r, index, _ = problem.test_set
    visited = [int(np.unique(row).size) for row in index]
    return {"n_steps": problem.step.n_steps.tolist(), "n_steps_visited_by_test_set": visited,
            "b_star": problem.b_star.tolist(), "r_std": np.std(r, axis=1).tolist()}


# --------------------------------------------------------------------------------------------
# cells, merge and registration
# --------------------------------------------------------------------------------------------

#: wall-clock measurements of a run: kept by the cells, moved to the Result's ``timing`` by the
#: merge (information only: no verdict reads a time)
TIMED = ("update_ms_per_replica_step", "train_ms_per_step", "sample_ms_per_replica_step",
         "test_s_per_10k_predictions")


def _key(kind: str, init: str) -> str:
    return f"{kind} (bias {init})" if kind == "smooth" else kind


def _run(kind: str, config: FlatConfig, cell: Cell) -> dict:
    """The one cell ``(kind,)`` of ``flat-<kind>``: learner ``kind`` on the seed's shared problem
    (every bias initialisation for ``smooth``)."""
    config.validate()
    if cell.key != (kind,):
        raise ValueError(f"flat-{kind} has the one cell ({kind!r},), got {cell.key!r}")
    problem = make_problem(config, cell.seed)
    inits = cast(SmoothConfig, config).bias_inits if kind == "smooth" else ("zero",)
    run = run_learner(kind, config, problem, cell.seed, cell.progress, inits, desc=f"flat {kind}")
    return {"problem": problem_metrics(problem), "timing": run["timing"],
            **{part: {_key(kind, i): run[part][i] for i in inits} for part in ("metrics", "curves", "plot")}}


def cells_smooth(config: FlatConfig) -> list[tuple]:
    return [("smooth",)]


def cells_e2e(config: FlatConfig) -> list[tuple]:
    return [("e2e",)]


def cells_multiclass(config: FlatConfig) -> list[tuple]:
    return [("multiclass",)]


def cells_forward_only(config: FlatConfig) -> list[tuple]:
    return [("forward-only",)]


def run_cell(config: FlatConfig, cell: Cell) -> dict:
    """The cell of ``flat-<kind>``: learner ``kind`` (one function for the four experiments)."""
    return _run(cell.experiment.removeprefix("flat-"), config, cell)


def merge(config: FlatConfig, outputs: dict) -> dict:
    """The learner's metrics with its counted work and sample complexity; the measured times
    (:data:`TIMED`) go to ``timing``, information only."""
    ((kind,),) = outputs  # the one cell of flat-<kind>
    out = outputs[(kind,)]
    curves = dict(out["curves"])
    curves["figure"] = out["plot"]
    timing = {"train_wall_s": out["timing"]["train_wall_s"]}
    metrics = {"problem": out["problem"]}
    n_steps = max(out["problem"]["n_steps"])
    for key, m in out["metrics"].items():
        timing[key] = {name: m[name] for name in TIMED if name in m}
        m = {name: v for name, v in m.items() if name not in TIMED}
        m["counted_work"] = counted_work(kind, config, n_steps)
        m["steps_to_exact_step_fraction"] = {f"{q:g}": steps_to_fraction(curves[key], q)
                                             for q in STEP_FRACTION_LEVELS}
        metrics[key] = m
    return {"metrics": metrics, "curves": curves, "timing": timing}


SMOOTH = register(Experiment(
    name="flat-smooth",
    description="step target, linear predictor through a sum-of-sigmoids approximation "
                "(paper: slow, sometimes fails, sensitive to the bias init) (Sec. 5.2, Fig. 7)",
    presets=PRESETS["smooth"], cells=cells_smooth, run_cell=run_cell, merge=merge, tiny=TINY["smooth"],
    figure=figure, summary=summary, family=4, paper_ref="Sec. 5.2, Figure 7",
))

E2E = register(Experiment(
    name="flat-e2e",
    description="step target, MLP 100-100-100-1 regression (paper: imprecise at the jumps) (Sec. 5.3, Fig. 7)",
    presets=PRESETS["e2e"], cells=cells_e2e, run_cell=run_cell, merge=merge, tiny=TINY["e2e"],
    figure=figure, summary=summary, family=4, paper_ref="Sec. 5.3, Figure 7",
))

MULTICLASS = register(Experiment(
    name="flat-multiclass",
    description="step target, MLP with a softmax over the steps (paper: blurry boundaries) (Sec. 5.4, Fig. 7)",
    presets=PRESETS["multiclass"], cells=cells_multiclass, run_cell=run_cell, merge=merge,
    tiny=TINY["multiclass"], figure=figure, summary=summary, family=4, paper_ref="Sec. 5.4, Figure 7",
))

FORWARD_ONLY = register(Experiment(
    name="flat-forward-only",
    description="step target, linear predictor with the forward-only (Isotron/GLMtron) update "
                "(paper: most accurate and cheapest) (Sec. 5.5, Fig. 7)",
    presets=PRESETS["forward-only"], cells=cells_forward_only, run_cell=run_cell, merge=merge,
    tiny=TINY["forward-only"], figure=figure, summary=summary, family=4, paper_ref="Sec. 5.5, Figure 7",
))
