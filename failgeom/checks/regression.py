"""Checks of Appendix A.5: gradient descent on linear regression and the condition number.

Each row states its analytic margin: A.5's bounds follow from ``(1 - eta D_jj)^{t+1}`` by
``1 - x <= e^{-x}`` (upper) and Bernoulli's inequality (lower), and the row says how close the
exact error comes to the bound in the worst case (``v*`` along the smallest eigenvalue).
"""

from __future__ import annotations

import math

import numpy as np

from .. import theory as T
from . import Check, Outcome, rng


def random_spd(generator: np.random.Generator, n: int, cond: float):
    """``(C, D, Q)``: ``C = Q diag(D) Q^T`` with ``D`` geometric from ``cond`` down to 1."""
    Q, _ = np.linalg.qr(generator.standard_normal((n, n)))
    D = np.geomspace(cond, 1.0, n)
    return (Q * D) @ Q.T, D, Q


def a5_trajectory(quick: bool, formula=T.gd_regression_error_formula) -> Outcome:
    """A.5: ``||w* - w_(t+1)||^2 = sum_j ((1 - eta D_jj)^(t+1) v*_j)^2`` against GD step by step."""
    g, worst = rng("a5.trajectory"), 0.0
    for cond in (10.0, 1e3, 1e5):
        C, D, Q = random_spd(g, 20, cond)
        w_star = g.standard_normal(20)
        eta = 1.0 / D[0]
        run = T.gd_regression_errors(C, w_star, eta, 200)
        worst = max(worst, float(np.max(np.abs(run - formula(D, Q.T @ w_star, eta, np.arange(201)))) / run[0]))
    return Outcome(
        computed="200 GD steps on 0.5 E(w^T x - w*^T x)^2, n=20, cond(C) in {10, 1e3, 1e5}, vs the formula; "
        "max error / ||w*||^2",
        value=worst, passed=worst <= 1e-10, margin=f"{worst:.1e} against the 1e-10 allowed")


def a5_upper(quick: bool, sufficient=T.gd_iterations_sufficient) -> Outcome:
    """A.5: ``eta = 1/D11`` and ``t+1 >= sufficient(D11, Dnn, ||w*||, eps)`` give error <= eps."""
    g, worst, worst_aligned = rng("a5.upper-bound"), 0.0, 0.0
    for cond in (10.0, 100.0, 1e3):
        _, D, _ = random_spd(g, 20, cond)
        for aligned in (False, True):
            v_star = g.standard_normal(20)
            if aligned:  # all of w* along the smallest eigenvalue: the worst case of the bound
                v_star = np.zeros(20)
                v_star[-1] = 3.0
            for eps in (1e-1, 1e-3):
                t1 = math.ceil(sufficient(D[0], D[-1], float(np.linalg.norm(v_star)), eps))
                ratio = math.sqrt(T.gd_regression_error_formula(D, v_star, 1.0 / D[0], t1)[0]) / eps
                worst = max(worst, ratio)
                if aligned:
                    worst_aligned = max(worst_aligned, ratio)
    return Outcome(
        computed="exact error ||w* - w_(t+1)|| at t+1 = ceil((D11/Dnn) log(||w*||/eps)), eta = 1/D11, "
        "n=20, cond in {10, 100, 1e3}, eps in {0.1, 1e-3}, random v* and v* along the smallest "
        "eigenvalue; max error/eps",
        value=worst, passed=worst <= 1.0,
        margin=(f"analytic: error <= (1 - Dnn/D11)^(t+1) ||w*|| <= exp(-(t+1) Dnn/D11) ||w*|| <= eps; "
                f"the worst case (v* along the smallest eigenvalue) reaches {worst_aligned:.3f} eps, so "
                "the bound is nearly tight"))


def a5_lower(quick: bool, lower=T.gd_iterations_lower_bound, bound: float = 0.5) -> Outcome:
    """A.5 (corrected): ``v*_n = 1`` and ``t+1 < lower(D11, Dnn)`` give ``||w* - w_(t+1)|| >= bound``."""
    g, worst = rng("a5.lower-bound"), math.inf
    for cond in (10.0, 100.0, 1e3, 1e4):
        _, D, _ = random_spd(g, 20, cond)
        v_star = 0.3 * g.standard_normal(20)
        v_star[-1] = 1.0
        t1 = math.ceil(lower(D[0], D[-1])) - 1  # the largest t+1 below the bound
        for eta_scale in (0.5, 1.0):
            err = math.sqrt(T.gd_regression_error_formula(D, v_star, eta_scale / D[0], t1)[0])
            worst = min(worst, err)
    printed = T.printed_lower_bound(10.0, 1.0)
    return Outcome(
        computed="exact error at the largest t+1 < 0.5 D11/Dnn, v*_n = 1, eta in {0.5, 1}/D11, "
        f"cond in {{10, ..., 1e4}}; the printed 0.5 Dnn/D11 (= {printed:.2f} at cond 10) admits no t >= 0",
        value=worst, passed=worst >= bound,
        margin=(f"analytic: error >= (1 - eta Dnn)^(t+1) >= 1 - (t+1) Dnn/D11 > 0.5; the exact minimum "
                f"{worst:.3f} approaches exp(-1/2) = {math.exp(-0.5):.3f} as cond grows, so the "
                f"claimed {bound:g} has a margin of about {math.exp(-0.5) / bound - 1:.0%}"))


CHECKS = [
    Check("a5.trajectory", "max deviation <= 1e-10 ||w*||^2", a5_trajectory),
    Check("a5.upper-bound", "error/eps <= 1 in every case", a5_upper),
    Check("a5.lower-bound", "minimum error >= 0.5 (the corrected statement; printed upside down)", a5_lower),
]
