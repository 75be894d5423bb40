"""Iterations vs conditioning for the PWL learners (paper Sec. 4.1, Theorem 3, Appendix A.5-A.6).

For each curve length n, the SGD iterations the convolutional learner (Sec. 4.1.2) needs to bring
its filter within ``tol`` of ``(1, -2, 1)``, without and with the ``C_hat^{-1/2}`` conditioning
of Sec. 4.1.3, each at a fixed fraction of the largest stable step of its expected loss.

Which numbers are what:

* **measured SGD**: R replicas (seeds) of the learners of :mod:`failgeom.experiments.pwl`
  trained with minibatches from fixed training sets; the count is the first checked step at
  which a replica's filter error is below ``tol``. Unconditioned runs only up to
  ``sgd_max_n`` (the count grows like the condition number, about 1.5e6 at n = 100).
* **exact GD**: the trajectory of full gradient descent on the population quadratic
  ``(w - w*)^T C (w - w*)`` (3 x 3; C the exact window covariance), in closed form from its
  eigendecomposition, ``w_t - w* = V diag((1 - 2 eta D)^t) V^T (w_0 - w*)``, at every n (with
  conditioning: ``C`` replaced by ``P C P``, ``P = C_hat^{-1/2}`` of each replica).

The loss is ``mean_batch sum_t (K . window_t - p_t)^2`` (Hessian ``2C``), so the largest stable
step of GD is ``1 / lambda_max(C)`` and the step used is ``step_fraction`` times that
(``step_fraction = 0.5`` is Appendix A.5's ``eta = 1 / D_11`` for this loss). Exponents are fitted
with :func:`failgeom.theory.scaling.fit_exponent`.

A second part checks Lemma 2 and Theorem 3 for the fully connected learner at small n: the
average of ``U_t`` over many SGD replicas (fresh curves each step) against Lemma 2's closed-form
``E U_t``, and the spectral error ``||E U_t - U||`` against Theorem 3's bound (at least 0.5 while
``t + 1 <= S11^2 / (2 Snn^2)``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..problems.pwl import sample_pwl_curves
from ..results import Result
from ..theory.pwl import (condition_number, expected_error_norm, expected_iterate, iteration_lower_bound,
                          paper_step_threshold, pwl_inverse)
from ..theory.scaling import fit_exponent
from ..theory.windows import kink_second_moment
from ..training import NonFiniteLossError, null_progress, seed_streams
from . import register
from .base import Experiment, ExperimentConfig
from .pwl import (TARGET_FILTER, ConvLearner, FCLearner, PreconditionedConvLearner, cond, filter_error,
                  jacobi_condition_number, make_data, minibatch, nn_train_step, window_covariance_left_padded)

_SCALING_KEY, _FC_KEY = 4200, 4201


@dataclass(frozen=True)
class ScalingConfig(ExperimentConfig):
    """Sizes, budgets and step sizes of the iterations-vs-conditioning experiment."""

    ns: tuple[int, ...] = (8, 12, 16, 24, 32, 48, 64, 100, 150, 200)
    sgd_max_n: int = 32
    k: int = 3
    batch: int = 10
    train_size: int = 2_000
    step_fraction: float = 0.5
    tol: float = 1e-2
    max_steps: int = 1_000_000
    check_every: int = 10
    fc_ns: tuple[int, ...] = (6, 8, 12)
    fc_replicas: int = 128
    fc_batch: int = 10
    fc_points: int = 14
    fc_step_fraction: float = 0.5
    fc_t_factor: float = 10.0

    positive = ("replicas", "ns", "sgd_max_n", "k", "batch", "train_size", "step_fraction", "tol",
                "max_steps", "check_every", "fc_ns", "fc_replicas", "fc_batch", "fc_points",
                "fc_step_fraction", "fc_t_factor")

    def check(self) -> None:
        if len(set(self.ns)) < 3:
            raise ValueError(f"ns must hold at least 3 distinct sizes (for a fit), got {self.ns}")
        if min(self.ns) < 3 or min(self.fc_ns) < 3:
            raise ValueError(f"ns and fc_ns must be at least 3, got {self.ns}, {self.fc_ns}")
        if max(self.ns) > 2000:
            raise ValueError(f"ns must be at most 2000 (dense window sums), got {max(self.ns)}")
        if self.k > min(self.ns) or self.k > min(self.fc_ns):
            raise ValueError(f"k must be at most the smallest n, got {self.k}")
        if len([n for n in self.ns if n <= self.sgd_max_n]) < 3:
            raise ValueError(f"sgd_max_n={self.sgd_max_n} must leave at least 3 sizes of ns for measured SGD")
        if not self.step_fraction < 1 or not self.fc_step_fraction < 1:
            raise ValueError("step_fraction and fc_step_fraction must be below 1 (1 is the stability edge)")
        if self.fc_replicas < 2:
            raise ValueError(f"fc_replicas must be at least 2 (a standard error), got {self.fc_replicas}")


PRESETS = {
    # measured SGD to n = 32 (about 2.8e5 steps there), exact GD to n = 200; fc SGD averages
    # to 10x Theorem 3's bound, where the error has fallen below 0.5
    "paper": ScalingConfig(),
    # measured SGD to n = 12 (about 1.6e4 steps there), exact GD to n = 64
    "quick": ScalingConfig(replicas=3, ns=(6, 8, 10, 12, 16, 24, 32, 48, 64), sgd_max_n=12, fc_ns=(8,),
                           fc_replicas=64, fc_points=10, fc_t_factor=2.0, max_steps=100_000),
}


# ---------------------------------------------------------------------------------------------
# Exact gradient descent on the 3x3 quadratic


def gd_filter_errors(C, P, eta: float, w_star, ts) -> np.ndarray:
    """Filter errors ``||w_t - w*||`` of exact GD on ``x -> (P x - w*)^T C (P x - w*)`` from 0.

    The learner regresses on the windows times ``P`` (``P = I``: the plain filter; ``P =
    C_hat^{-1/2}``: Sec. 4.1.3) and returns ``w = P x``. The Hessian in x is ``2 S``,
    ``S = P C P = V D V^T``, so ``x_t - x* = V diag((1 - 2 eta D)^t) V^T (-x*)`` with
    ``x* = P^{-1} w*``; powers are taken as ``exp(t log|1 - 2 eta D|)`` with the sign kept, so t
    may be huge without losing the slow mode's digits.

    Parameters
    ----------
    C, P : ndarray (3, 3)
        Window covariance and (symmetric) preconditioner.
    eta : float
        Step size.
    w_star : ndarray (3,)
        Target filter.
    ts : array_like of non-negative numbers
        Iteration counts.

    Returns
    -------
    ndarray, shape (len(ts),)
    """
    S = P @ C @ P
    D, V = np.linalg.eigh(0.5 * (S + S.T))
    rho = 1.0 - 2.0 * eta * D
    if np.any(np.abs(rho) >= 1.0):
        raise ValueError(f"eta={eta:g} is not stable for this quadratic (|1 - 2 eta D| >= 1)")
    x_star = np.linalg.solve(P, w_star)
    c = V.T @ (-x_star)
    ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        mags = np.exp(ts[:, None] * np.log(np.abs(rho))[None, :])
    mags = np.where(ts[:, None] == 0, 1.0, np.nan_to_num(mags, nan=0.0))  # 0^0 = 1, 0^t = 0
    powers = np.sign(rho)[None, :] ** np.round(ts)[:, None] * mags
    err = (powers * c[None, :]) @ V.T @ P.T
    return np.linalg.norm(err, axis=1)


def gd_iterations_to_tol(C, P, eta: float, w_star, tol: float, t_max: float = 1e15) -> int:
    """Smallest t with ``gd_filter_errors(...) <= tol`` (bracketing by doubling, then bisection;
    the error is a sum of decaying modes, monotone in practice)."""
    def err(t):
        return gd_filter_errors(C, P, eta, w_star, [t])[0]

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


# ---------------------------------------------------------------------------------------------
# Measured SGD


def sgd_iterations_to_tol(learner_name: str, n: int, config: ScalingConfig, seed: int,
                          progress=null_progress):
    """Train R replicas of the conv learner (plain or conditioned) with SGD until each filter is
    within ``tol``; returns ``(counts (R,) with None for censored replicas, lr, learner)``."""
    R, dtype = config.replicas, np.dtype(config.dtype)
    data = make_data(seed, R, n, config.k, "paper", config.train_size, 2)
    learner = ConvLearner() if learner_name == "conv" else PreconditionedConvLearner(dtype)
    learner.prepare(data)
    params = learner.init(seed_streams(seed, _SCALING_KEY, n, 1), R, n, dtype)
    C = window_covariance_left_padded(n, config.k)
    if learner_name == "conv":
        top = float(np.linalg.eigvalsh(C)[-1])
    else:
        top = max(float(np.linalg.eigvalsh(P @ C @ P)[-1]) for P in learner.P)
    lr = config.step_fraction / top
    opt = nn.SGD(lr)
    rng = np.random.default_rng(seed_streams(seed, _SCALING_KEY, n, 2))
    train_f, train_p = data.train_f.astype(dtype), data.train_p.astype(dtype)
    counts = np.full(R, -1, dtype=np.int64)
    bar = progress(config.max_steps, f"pwl-scaling {learner_name} n={n}")
    try:
        for step in range(1, config.max_steps + 1):
            fb, pb = minibatch(rng, train_f, train_p, config.batch)
            value = nn_train_step(learner, params, opt, fb, pb)
            # every step early on (the conditioned runs finish within tens of steps)
            if step <= 100 or step % config.check_every == 0:
                if not np.all(np.isfinite(value)):
                    raise NonFiniteLossError(step, lr, np.flatnonzero(~np.isfinite(value)).tolist())
                hit = (filter_error(learner.filter(params)) < config.tol) & (counts < 0)
                counts[hit] = step
                if np.all(counts >= 0):
                    break
            bar.update(1)
    finally:
        bar.close()
    return [int(c) if c >= 0 else None for c in counts], lr, learner


# ---------------------------------------------------------------------------------------------
# Lemma 2 / Theorem 3 for the fully connected learner


def fc_lemma2(n: int, config: ScalingConfig, seed: int):
    """Average ``U_t`` over ``fc_replicas`` SGD runs against Lemma 2's ``E U_t`` at checkpoints.

    The learner minimises ``mean_batch ||U_hat f - p||^2`` (Hessian ``2 lam W W^T``), so SGD
    with step eta is Lemma 2's SGD on ``0.5 ||.||^2`` with step ``2 eta``; the step used is
    ``eta_lemma = 2 eta = fc_step_fraction / (lam S11^2)``, below Theorem 3's threshold.
    Curves: fresh samples of the paper's distribution each step (``E[p p^T] = lam I``).
    """
    R, B = config.fc_replicas, config.fc_batch
    lam = kink_second_moment(n, config.k, "paper")
    eta_lemma = config.fc_step_fraction * paper_step_threshold(n, lam)
    bound = iteration_lower_bound(n)
    t_max = int(math.ceil(config.fc_t_factor * bound))
    checkpoints = np.unique(np.geomspace(1, t_max, config.fc_points).astype(int))
    learner = FCLearner(n)
    params = learner.init(seed_streams(seed, _FC_KEY, n, 1), R, n, np.float64)
    opt = nn.SGD(0.5 * eta_lemma)
    rng = np.random.default_rng(seed_streams(seed, _FC_KEY, n, 2))
    U = pwl_inverse(n, np.float64)
    rows = {"t": [], "sgd_error_norm": [], "lemma2_error_norm": [], "max_abs_z": [], "max_abs_diff": []}
    step = 0
    for t in checkpoints:
        while step < t:
            f, p = sample_pwl_curves(rng, R * B, n, config.k, "paper")
            nn_train_step(learner, params, opt, f.reshape(R, B, n), p.reshape(R, B, n))
            step += 1
        U_t = learner.u_hat(params)
        mean = U_t.mean(axis=0)
        se = U_t.std(axis=0, ddof=1) / math.sqrt(R)
        EU = expected_iterate(n, eta_lemma, lam, int(t))
        rows["t"].append(int(t))
        rows["sgd_error_norm"].append(float(np.linalg.norm(mean - U, 2)))
        rows["lemma2_error_norm"].append(expected_error_norm(n, eta_lemma, lam, int(t)))
        rows["max_abs_diff"].append(float(np.abs(mean - EU).max()))
        rows["max_abs_z"].append(float((np.abs(mean - EU) / np.maximum(se, 1e-300)).max()))
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
# The experiment


def _median(counts):
    c = [x for x in counts if x is not None]
    return float(np.median(c)) if len(c) == len(counts) else None


def _fit_dict(ns, values):
    fit = fit_exponent(ns, values)
    return {"exponent": fit.exponent, "stderr": fit.stderr, "ci95": list(fit.ci95),
            "prefactor": fit.prefactor, "local_slopes": fit.local_slopes.tolist(),
            "ns": fit.ns.tolist(), "values": fit.values.tolist()}


def run(config: ScalingConfig, seed: int = 0, progress=null_progress, preset: str = "custom") -> Result:
    """Measured SGD and exact GD iteration counts per n, their fitted exponents, and the fc check."""
    config.validate()
    start = time.perf_counter()
    w_star = TARGET_FILTER
    per_n = {}
    timing = {}
    for n in config.ns:
        t0 = time.perf_counter()
        C = window_covariance_left_padded(n, config.k)
        row = {"window_condition_number": cond(C), "jacobi_condition_number": jacobi_condition_number(C),
               "fc_condition_number": condition_number(n)}
        eta = config.step_fraction / float(np.linalg.eigvalsh(C)[-1])
        row["gd_plain_lr"] = eta
        row["gd_plain_iterations"] = gd_iterations_to_tol(C, np.eye(3), eta, w_star, config.tol)
        pre_counts, pre_lr, pre = sgd_iterations_to_tol("conv-precond", n, config, seed, progress)
        row["sgd_precond_iterations"] = pre_counts
        row["sgd_precond_lr"] = pre_lr
        gd_pre = [gd_iterations_to_tol(C, P, pre_lr, w_star, config.tol) for P in pre.P]
        row["gd_precond_iterations"] = gd_pre
        row["preconditioned_condition_number"] = [cond(P @ C @ P) for P in pre.P]
        if n <= config.sgd_max_n:
            counts, lr, _ = sgd_iterations_to_tol("conv", n, config, seed, progress)
            row["sgd_plain_iterations"] = counts
            row["sgd_plain_lr"] = lr
        per_n[str(n)] = row
        timing[f"n={n}"] = time.perf_counter() - t0

    ns = np.asarray(config.ns, dtype=float)
    rows = [per_n[str(n)] for n in config.ns]
    metrics = {"per_n": per_n}
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

    t0 = time.perf_counter()
    fc_rows, fc_metrics = {}, {}
    for n in config.fc_ns:
        fc_rows[str(n)], fc_metrics[str(n)] = fc_lemma2(n, config, seed)
    timing["fc_lemma2"] = time.perf_counter() - t0
    metrics["fc_lemma2"] = fc_metrics
    timing["total_s"] = time.perf_counter() - start
    return Result(
        experiment="pwl-scaling", preset=preset, config=config.to_dict(),
        seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics,
        curves={"fc_lemma2": fc_rows}, timing=timing,
    )


def figure(result: Result):
    """Iterations vs n (log-log) with fitted lines and the condition number; Lemma 2 / Theorem 3."""
    from .. import plotting

    m, cfg = result.metrics, result.config
    fig, axes = plotting.figure(1, 2, width=4.6, height=3.4)
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
                        fontsize=7, color=color, xytext=(3, 0), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [int(n) for n in ns if n in (8, 16, 32, 64, 100, 200) or n in (ns[0], ns[-1])]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("curve length n")
    ax.set_ylabel(f"iterations to filter error < {cfg['tol']:g}")
    ax.set_title(f"conv learner, step {cfg['step_fraction']:g} x largest stable", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")

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
    ax.set_ylabel("spectral norm of error")
    ax.set_title("fc learner: Lemma 2 vs SGD; dotted: Theorem 3 bound", fontsize=9)
    ax.legend(fontsize=6, loc="lower left")
    fig.suptitle("PWL curves: iterations grow with the condition number; conditioning makes them flat",
                 y=1.02, fontsize=9)
    return fig


def summary(result: Result) -> str:
    f = result.metrics["fits"]
    parts = []
    for key, label in (("sgd_plain_iterations", "SGD plain"), ("gd_plain_iterations", "GD plain"),
                       ("window_condition_number", "cond(C)"), ("sgd_precond_iterations", "SGD conditioned")):
        if key in f:
            lo, hi = f[key]["ci95"]
            parts.append(f"{label} exponent {f[key]['exponent']:.2f} [{lo:.2f}, {hi:.2f}]")
    return "; ".join(parts)


EXPERIMENT = register(Experiment(
    name="pwl-scaling",
    description="PWL curves: SGD iterations vs n track cond(C) ~ n^3; conditioned: flat (Sec. 4.1, Thm 3)",
    presets=PRESETS, run=run, figure=figure, summary=summary, family=3,
    paper_ref="Sec. 4.1.2-4.1.3, Theorem 3, Lemma 2, Appendix A.5-A.6",
))
