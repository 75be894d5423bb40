"""Iterations vs conditioning for the PWL learners (paper Sec. 4.1, Theorem 3, Appendix A.5-A.6).

For each curve length n, the SGD iterations the convolutional learner (Sec. 4.1.2) needs to bring
its filter within ``tol`` of ``(1, -2, 1)``, without and with the ``C_hat^{-1/2}`` conditioning
of Sec. 4.1.3, each at a fixed fraction of the largest stable step of its expected loss.

Which numbers are what:

* **measured SGD**: R replicas (seeds) of the learners of :mod:`failgeom.experiments.pwl`
  (their models in :mod:`failgeom.experiments.pwl_models`) trained with minibatches from fixed
  training sets (the paper text's curves); the count is the first checked step at which a
  replica's filter error is below ``tol``. Unconditioned runs only up to ``sgd_max_n`` (the
  count grows like the condition number, about 1.5e6 at n = 100).
* **exact GD**: full gradient descent on the population quadratic of the same loss (3 x 3,
  Hessian ``2 loss_coef C`` with C the exact window covariance). Plain: Appendix A.5's closed
  form (:func:`failgeom.theory.regression.gd_regression_error_formula`) at every n. Conditioned:
  the filter ``w = P x`` is not a coordinate of the whitened quadratic, so its error is stepped
  (a few steps suffice), with each replica's ``P = C_hat^{-1/2}``.

The step is ``step_fraction`` times GD's stability edge (``step_fraction = 0.5`` is Appendix
A.5's ``eta = 1 / D_11``). Exponents are fitted with :func:`failgeom.theory.scaling.fit_exponent`.

A second part checks Lemma 2 and Theorem 3 for the fully connected learner at small n: the
average of ``U_t`` over many SGD replicas (fresh curves each step) against Lemma 2's closed-form
``E U_t``, and the spectral error ``||E U_t - U||`` against Theorem 3's bound (at least 0.5 while
``t + 1 <= S11^2 / (2 Snn^2)``).

Cells: ``("n", n)`` for each n of ``ns``, ``("fc", n)`` for each n of ``fc_ns``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import nn
from ..problems.pwl import minibatch, sample_pwl_curves, sample_pwl_data
from ..results import Result
from ..theory.pwl import condition_number, expected_error_norm, expected_iterate, iteration_lower_bound, pwl_inverse
from ..theory.regression import gd_regression_error_formula
from ..theory.scaling import fit_exponent
from ..theory.windows import (jacobi_condition_number, kink_second_moment, spd_condition_number,
                              window_covariance)
from ..training import StopTraining, fit, null_progress, seed_streams, train_step
from . import register
from .base import Cell, Experiment, ExperimentConfig, param
from .pwl_models import TARGET_FILTER, ConvLearner, FCLearner, PreconditionedConvLearner, filter_error, sgd_step_size

NAME = "pwl-scaling"
#: ``||(1, -2, 1)|| = sqrt(6)``: the filter error of GD's starting point 0. A tol at or above it is
#: met in 0 iterations, which a power law cannot be fitted to.
TOL_MAX = math.sqrt(6.0)
# Below: tol under 1e-12 is beyond float64 GD on the filter (rounding near 1e-15 stalls the
# conditioned run), a step fraction under 1e-3 of the stability edge needs more than the step
# budgets, and SGD with one above 0.9 of GD's edge can diverge on its gradient noise.


@dataclass(frozen=True)
class ScalingConfig(ExperimentConfig):
    """Sizes, budgets and step sizes of the iterations-vs-conditioning experiment."""

    ns: tuple[int, ...] = param((8, 12, 16, 24, 32, 48, 64, 100, 150, 200), low=3,
                                doc="curve lengths n (exact GD and conditioned SGD at each)")
    sgd_max_n: int = param(32, low=3, doc="largest n at which plain SGD is measured")
    k: int = param(3, low=1, doc="kinks per curve (paper text's distribution)")
    batch: int = param(10, low=1, doc="curves per SGD minibatch")
    train_size: int = param(2_000, low=1, doc="fixed training curves per replica")
    step_fraction: float = param(0.5, low=1e-3, high=0.9,
                                 doc="step as a fraction of GD's stability edge")
    tol: float = param(1e-2, low=1e-12, high=TOL_MAX, high_open=True,
                       doc="filter error to reach (below the error of the zero filter, where GD starts)")
    max_steps: int = param(1_000_000, low=1, doc="SGD step budget per run")
    check_every: int = param(10, low=1, doc="steps between filter checks (after step 100)")
    fc_ns: tuple[int, ...] = param((6, 8, 12), low=3, allow_empty=False,
                                   doc="n of the Lemma 2 / Theorem 3 check")
    fc_replicas: int = param(128, low=2, doc="SGD replicas averaged for Lemma 2")
    fc_batch: int = param(10, low=1, doc="fresh curves per fc SGD step")
    fc_points: int = param(14, low=1, high=1_000, doc="checkpoints of the fc run (geometric in t)")
    fc_step_fraction: float = param(0.5, low=1e-3, high=1.0, high_open=True,
                                    doc="fc step as a fraction of Theorem 3's threshold")
    fc_t_factor: float = param(10.0, low=0.0, high=1_000.0, low_open=True,
                               doc="fc run length in units of Theorem 3's bound")

    def check(self) -> None:
        if len(set(self.ns)) < 3:
            raise ValueError(f"ns must hold at least 3 distinct sizes (for a fit), got {self.ns}")
        if self.k > min(self.ns) or self.k > min(self.fc_ns):
            raise ValueError(f"k must be at most the smallest n, got {self.k}")
        if len([n for n in self.ns if n <= self.sgd_max_n]) < 3:
            raise ValueError(f"sgd_max_n={self.sgd_max_n} must leave at least 3 sizes of ns for measured SGD")

    def memory_bytes(self) -> int:
        # the fixed training set and a minibatch; the n x n matrices of the exact GD (56 bytes per
        # entry, as failgeom.theory.pwl refuses them)
        sgd = 40 * self.replicas * (self.train_size + self.batch) * max(self.ns) + 56 * max(self.ns) ** 2
        fc = 8 * self.fc_replicas * max(self.fc_ns) * (4 * max(self.fc_ns) + 3 * self.fc_batch)
        return sgd + fc


PRESETS = {
    # measured SGD to n = 32 (about 2.8e5 steps there), exact GD to n = 200; fc SGD averages
    # to 10x Theorem 3's bound, where the error has fallen below 0.5
    "paper": ScalingConfig(),
    # measured SGD to n = 12 (about 1.6e4 steps there), exact GD to n = 64
    "quick": ScalingConfig(replicas=3, ns=(6, 8, 10, 12, 16, 24, 32, 48, 64), sgd_max_n=12, fc_ns=(8,),
                           fc_replicas=64, fc_points=10, fc_t_factor=2.0, max_steps=100_000),
}

TINY = ScalingConfig(replicas=2, ns=(4, 5, 6), sgd_max_n=6, tol=0.1, fc_ns=(4,), fc_replicas=4, fc_points=3,
                     fc_t_factor=1.0, train_size=200, max_steps=20_000)


# ---------------------------------------------------------------------------------------------
# Exact gradient descent on the 3x3 quadratic


def plain_gd_iterations(hessian, eta: float, w_star, tol: float, t_max: float = 1e15) -> int:
    """Smallest t with ``||w_t - w*|| <= tol`` for GD ``w <- w - eta H (w - w*)`` from 0.

    Appendix A.5's closed form ``||w* - w_t||^2 = sum_j ((1 - eta D_jj)^t v*_j)^2`` (theory.regression)
    with ``H = V D V^T``, ``v* = V^T w*``; bracketing by doubling, then bisection (the error is
    a sum of decaying modes, monotone in practice).
    """
    H = np.asarray(hessian, dtype=np.float64)
    D, V = np.linalg.eigh(0.5 * (H + H.T))
    if np.any(np.abs(1.0 - eta * D) >= 1.0):
        raise ValueError(f"eta={eta:g} is not stable for this quadratic (|1 - eta D| >= 1)")
    v_star = V.T @ np.asarray(w_star, dtype=np.float64)

    def err(t):
        return math.sqrt(gd_regression_error_formula(D, v_star, eta, [t])[0])

    if err(0) <= tol:
        return 0
    hi = 1
    while err(hi) > tol:
        hi *= 2
        if hi > t_max:
            raise ValueError(f"GD does not reach tol={tol:g} within {t_max:g} iterations")
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if err(mid) <= tol:
            hi = mid
        else:
            lo = mid
    return hi


def conditioned_gd_iterations(hessian, P, eta: float, w_star, tol: float, max_steps: int = 100_000) -> int:
    """Smallest t with ``||P x_t - w*|| <= tol`` for GD on ``(P x - w*)^T H (P x - w*) / 2`` from 0.

    The whitened Hessian ``P H P`` is near a multiple of I (Sec. 4.1.3), so a few steps suffice;
    they are taken one by one, since ``w = P x`` mixes the modes.
    """
    S = P @ np.asarray(hessian, dtype=np.float64) @ P
    x_star = np.linalg.solve(P, w_star)
    x = np.zeros(3)
    for t in range(max_steps + 1):
        if np.linalg.norm(P @ x - w_star) <= tol:
            return t
        x = x - eta * (S @ (x - x_star))
    raise ValueError(f"conditioned GD does not reach tol={tol:g} within {max_steps} iterations")


# ---------------------------------------------------------------------------------------------
# Measured SGD


def sgd_iterations_to_tol(learner, data, n: int, config: ScalingConfig, stream, progress=null_progress):
    """Train R replicas of a conv learner with SGD until each filter is within ``tol``.

    ``stream``: the run's seed-stream node (children ``"init"`` and ``"batches"``). Returns
    ``(counts (R,) with None for censored replicas, lr)``.
    """
    R, dtype = config.replicas, np.dtype(config.dtype)
    params = learner.init(stream.child("init"), R, n, dtype)
    lr = sgd_step_size(learner, config.step_fraction, n, config.k, "paper")
    opt = nn.SGD(lr)
    loss = functools.partial(nn.losses.squared, coef=learner.loss_coef(n))
    rng = np.random.default_rng(stream.child("batches"))
    train_f, train_p = data.train_f.astype(dtype), data.train_p.astype(dtype)
    counts = np.full(R, -1, dtype=np.int64)

    def step(i):
        fb, pb = minibatch(rng, train_f, train_p, config.batch)
        return train_step(learner.model, params, loss, opt, learner.inputs(fb), learner.target(fb, pb))

    def check(i):
        # every step early on (the conditioned runs finish within tens of steps)
        if i <= 100 or i % config.check_every == 0:
            hit = (filter_error(learner.filter(params)) < config.tol) & (counts < 0)
            counts[hit] = i
            if np.all(counts >= 0):
                raise StopTraining

    fit(step, config.max_steps, eval_every=config.max_steps, hooks=(check,),
        evaluate=lambda i: {"filter_error": filter_error(learner.filter(params))},
        progress=progress, desc=f"{NAME} {learner.name} n={n}", lr=lr)
    return [int(c) if c >= 0 else None for c in counts], lr


def size_cell(config: ScalingConfig, cell: Cell) -> dict:
    """The cell ``("n", n)``: condition numbers, exact GD and measured SGD counts, plain and
    conditioned, as ``{"row": ...}``. Streams: the cell's (``seed_streams(seed, NAME, "n", n)``)."""
    _, n = cell.key
    node, progress = cell.streams, cell.progress
    data = sample_pwl_data(node.child("data").generators(config.replicas), n, config.k, "paper",
                           config.train_size, 2)
    C = window_covariance(n, config.k, "paper", "valid")
    plain = ConvLearner()
    coef = plain.loss_coef(n)
    row: dict[str, Any] = {"window_condition_number": spd_condition_number(C), "jacobi_condition_number": jacobi_condition_number(C),
           "fc_condition_number": condition_number(n)}
    eta = sgd_step_size(plain, config.step_fraction, n, config.k, "paper")
    row["gd_plain_lr"] = eta
    row["gd_plain_iterations"] = plain_gd_iterations(2 * coef * C, eta, TARGET_FILTER, config.tol)
    pre = PreconditionedConvLearner(config.dtype)
    pre.prepare(data.train_f)
    row["sgd_precond_iterations"], row["sgd_precond_lr"] = sgd_iterations_to_tol(
        pre, data, n, config, node.child("conv-precond"), progress)
    row["gd_precond_iterations"] = [conditioned_gd_iterations(2 * coef * C, P, row["sgd_precond_lr"], TARGET_FILTER,
                                                              config.tol) for P in pre.P]
    row["preconditioned_condition_number"] = [spd_condition_number(P @ C @ P) for P in pre.P]
    if n <= config.sgd_max_n:
        row["sgd_plain_iterations"], row["sgd_plain_lr"] = sgd_iterations_to_tol(
            plain, data, n, config, node.child("conv"), progress)
    return {"row": row}


# ---------------------------------------------------------------------------------------------
# Lemma 2 / Theorem 3 for the fully connected learner


def fc_lemma2(n: int, config: ScalingConfig, seed: int, progress=null_progress):
    """Average ``U_t`` over ``fc_replicas`` SGD runs against Lemma 2's ``E U_t`` at checkpoints.

    The learner minimises ``mean_batch ||U_hat f - p||^2`` (Hessian ``2 lam W W^T``), so SGD
    with step eta is Lemma 2's SGD on ``0.5 ||.||^2`` with step ``2 eta``; the step used is
    ``eta_lemma = 2 eta = fc_step_fraction / (lam S11^2)``, below Theorem 3's threshold
    ``1 / (lam S11^2)``, which is half of GD's stability edge (so ``eta`` is
    :func:`sgd_step_size` at ``fc_step_fraction / 2``). Curves: fresh samples of the paper's
    distribution each step (``E[p p^T] = lam I``).
    """
    R, B = config.fc_replicas, config.fc_batch
    lam = kink_second_moment(n, config.k, "paper")
    learner = FCLearner(n)
    eta = sgd_step_size(learner, 0.5 * config.fc_step_fraction, n, config.k, "paper")
    eta_lemma = 2.0 * eta
    bound = iteration_lower_bound(n)
    t_max = int(math.ceil(config.fc_t_factor * bound))
    checkpoints = set(np.unique(np.geomspace(1, t_max, config.fc_points).astype(int)).tolist())
    node = seed_streams(seed, NAME, "fc", n)
    params = learner.init(node.child("init"), R, n, np.float64)
    opt = nn.SGD(eta)
    loss = functools.partial(nn.losses.squared, coef=learner.loss_coef(n))
    rng = np.random.default_rng(node.child("curves"))
    U = pwl_inverse(n, np.float64)
    rows: dict[str, list] = {"t": [], "sgd_error_norm": [], "lemma2_error_norm": [], "max_abs_z": [], "max_abs_diff": []}

    def step(i):
        f, p = sample_pwl_curves(rng, R * B, n, config.k, "paper")
        return train_step(learner.model, params, loss, opt, f.reshape(R, B, n), p.reshape(R, B, n))

    def measure(t):
        if t not in checkpoints:
            return
        U_t = learner.u_hat(params)
        mean = U_t.mean(axis=0)
        se = U_t.std(axis=0, ddof=1) / math.sqrt(R)
        EU = expected_iterate(n, eta_lemma, lam, int(t))
        rows["t"].append(int(t))
        rows["sgd_error_norm"].append(float(np.linalg.norm(mean - U, 2)))
        rows["lemma2_error_norm"].append(expected_error_norm(n, eta_lemma, lam, int(t)))
        rows["max_abs_diff"].append(float(np.abs(mean - EU).max()))
        rows["max_abs_z"].append(float((np.abs(mean - EU) / np.maximum(se, 1e-300)).max()))

    fit(step, t_max, eval_every=t_max, evaluate=lambda i: {}, hooks=(measure,), progress=progress,
        desc=f"{NAME} fc n={n}", lr=eta)
    t_arr = np.asarray(rows["t"])
    within = t_arr + 1 <= bound
    lemma, sgd = np.asarray(rows["lemma2_error_norm"]), np.asarray(rows["sgd_error_norm"])
    return rows, {
        "eta_lemma2": eta_lemma, "lam": lam, "theorem3_bound": bound, "replicas": R, "batch": B,
        "lemma2_min_error_within_bound": float(lemma[within].min()) if within.any() else None,
        "sgd_min_error_within_bound": float(sgd[within].min()) if within.any() else None,
        "max_abs_z": float(max(rows["max_abs_z"])),
    }


# ---------------------------------------------------------------------------------------------
# The experiment: cells and merge


def cells(config: ScalingConfig) -> list[tuple]:
    return [("n", n) for n in config.ns] + [("fc", n) for n in config.fc_ns]


def fc_cell(config: ScalingConfig, cell: Cell) -> dict:
    """The cell ``("fc", n)``: :func:`fc_lemma2`'s rows and metrics."""
    _, n = cell.key
    rows, metrics = fc_lemma2(n, config, cell.seed, cell.progress)
    return {"rows": rows, "metrics": metrics}


def _median(counts):
    c = [x for x in counts if x is not None]
    return float(np.median(c)) if len(c) == len(counts) else None


def _fit_dict(ns, values):
    return fit_exponent(ns, values).to_dict()


def merge(config: ScalingConfig, outputs: dict) -> dict:
    """Per-n rows, their fitted exponents, and the fc check (a stored cell's ``"seconds"``, from
    before the framework timed the cells, is not read)."""
    per_n = {str(n): outputs[("n", n)]["row"] for n in config.ns}
    ns = np.asarray(config.ns, dtype=float)
    rows = [per_n[str(n)] for n in config.ns]
    metrics: dict[str, Any] = {"per_n": per_n}
    fits = {
        "window_condition_number": _fit_dict(ns, [r["window_condition_number"] for r in rows]),
        "jacobi_condition_number": _fit_dict(ns, [r["jacobi_condition_number"] for r in rows]),
        "gd_plain_iterations": _fit_dict(ns, [r["gd_plain_iterations"] for r in rows]),
        "gd_precond_iterations": _fit_dict(ns, [np.median(r["gd_precond_iterations"]) for r in rows]),
    }
    pre_med = [_median(r["sgd_precond_iterations"]) for r in rows]
    if all(m is not None for m in pre_med):
        fits["sgd_precond_iterations"] = _fit_dict(ns, pre_med)
    sgd_ns = [n for n in config.ns if "sgd_plain_iterations" in per_n[str(n)]]
    sgd_med = [_median(per_n[str(n)]["sgd_plain_iterations"]) for n in sgd_ns]
    done = [(n, m) for n, m in zip(sgd_ns, sgd_med) if m is not None]
    if len(done) >= 3:
        fits["sgd_plain_iterations"] = _fit_dict([n for n, _ in done], [m for _, m in done])
        # the condition number over the same sizes, for a like-for-like comparison
        fits["window_condition_number_sgd_range"] = _fit_dict(
            [n for n, _ in done], [per_n[str(n)]["window_condition_number"] for n, _ in done])
        metrics["sgd_over_gd_plain"] = [m / per_n[str(n)]["gd_plain_iterations"] for n, m in done]
    metrics["fits"] = fits
    metrics["censored_sgd_plain"] = {str(n): sum(c is None for c in per_n[str(n)]["sgd_plain_iterations"])
                                     for n in sgd_ns}
    metrics["fc_lemma2"] = {str(n): outputs[("fc", n)]["metrics"] for n in config.fc_ns}
    return {"metrics": metrics, "curves": {"fc_lemma2": {str(n): outputs[("fc", n)]["rows"] for n in config.fc_ns}}}


def summary(result: Result) -> str:
    f = result.metrics["fits"]
    parts = []
    for key, label in (("sgd_plain_iterations", "SGD plain"), ("gd_plain_iterations", "GD plain"),
                       ("window_condition_number", "cond(C)"), ("sgd_precond_iterations", "SGD conditioned")):
        if key in f:
            lo, hi = f[key]["ci95"]
            parts.append(f"{label} exponent {f[key]['exponent']:.2f} [{lo:.2f}, {hi:.2f}]")
    return "; ".join(parts)


def figure(result: Result):
    """Iterations vs n (log-log) with fitted lines and the condition number; Lemma 2 / Theorem 3."""
    from .. import plotting

    m, cfg = result.metrics, result.config
    fig, axes = plotting.figure(1, 2, width=4.8, height=3.6)
    ax = axes[0, 0]
    ns = np.asarray(cfg["ns"], dtype=float)
    per = [m["per_n"][str(int(n))] for n in ns]
    C = plotting.COLORS
    ax.plot(ns, [r["window_condition_number"] for r in per], color=C["grey"], lw=1, ls=":",
            label="cond(C), window covariance")
    ax.plot(ns, [r["gd_plain_iterations"] for r in per], color=C["red"], lw=1.2, label="exact GD, plain")
    sgd = [(n, r["sgd_plain_iterations"]) for n, r in zip(ns, per) if "sgd_plain_iterations" in r]
    if sgd:
        xs = np.array([n for n, _ in sgd])
        vals = [np.array([c for c in cs if c is not None], dtype=float) for _, cs in sgd]
        ok = [v.size > 0 for v in vals]
        med = np.array([np.median(v) for v, o in zip(vals, ok) if o])
        lo = np.array([v.min() for v, o in zip(vals, ok) if o])
        hi = np.array([v.max() for v, o in zip(vals, ok) if o])
        ax.errorbar(xs[ok], med, yerr=[med - lo, hi - med], fmt="o", color=C["red"], ms=4, capsize=2,
                    label="measured SGD, plain")
    pre = np.array([np.median([c for c in r["sgd_precond_iterations"] if c is not None] or [np.nan])
                    for r in per])
    ax.plot(ns, pre, "s", color=C["blue"], ms=4, label="measured SGD, conditioned")
    ax.plot(ns, [np.median(r["gd_precond_iterations"]) for r in per], color=C["blue"], lw=1.2,
            label="exact GD, conditioned")
    for key, color in (("sgd_plain_iterations", C["red"]), ("gd_plain_iterations", C["red"]),
                       ("sgd_precond_iterations", C["blue"])):
        fit = m["fits"].get(key)
        if fit:
            x = np.array([min(fit["ns"]), max(fit["ns"])])
            ax.plot(x, fit["prefactor"] * x ** fit["exponent"], color=color, ls="--", lw=0.8)
            ax.annotate(f"{fit['exponent']:.2f}", (x[-1], fit["prefactor"] * x[-1] ** fit["exponent"]),
                        fontsize=8, color=color, xytext=(3, 0), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [int(n) for n in ns if n in (8, 16, 32, 64, 100, 200) or n in (ns[0], ns[-1])]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("curve length n")
    ax.set_ylabel(f"iterations to filter error < {cfg['tol']:g}")
    ax.set_title(f"conv learner, step {cfg['step_fraction']:g} x stability edge", fontsize=9)
    ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 0.1))  # between the two families of counts

    ax = axes[0, 1]
    for i, (n, rows) in enumerate(result.curves["fc_lemma2"].items()):
        color = plotting.CYCLE[i % len(plotting.CYCLE)]
        t = np.asarray(rows["t"])
        ax.plot(t, rows["lemma2_error_norm"], color=color, lw=1.2, label=f"n={n}: Lemma 2, ||E U_t - U||")
        ax.plot(t, rows["sgd_error_norm"], "o", color=color, ms=3,
                label=f"n={n}: SGD mean of {cfg['fc_replicas']}")
        ax.axvline(m["fc_lemma2"][n]["theorem3_bound"], color=color, ls=":", lw=1)
    ax.axhline(0.5, color=C["grey"], lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("SGD iterations t")
    ax.set_ylabel("spectral norm of the error")
    ax.set_title("fc learner: Lemma 2 vs SGD; dotted: Theorem 3 bound", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    fig.suptitle("PWL curves: iterations grow with the condition number; conditioning makes them flat",
                 y=1.02, fontsize=10)
    return fig


EXPERIMENT = register(Experiment(
    name=NAME,
    description="PWL curves: SGD iterations vs n track cond(C) ~ n^3; conditioned: flat (Sec. 4.1, Thm 3)",
    presets=PRESETS, figure=figure, summary=summary, family=3, tiny=TINY, cells=cells,
    run_cell={"n": size_cell, "fc": fc_cell}, merge=merge, paper_ref="Sec. 4.1.2-4.1.3, Theorem 3, Lemma 2, Appendix A.5-A.6",
))
