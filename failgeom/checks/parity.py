"""Checks of Sec. 2.1: Theorem 1 (gradient variance over an orthogonal class), parities, Lemma 3.

``thm1.parity-decay`` asserts what the theorem is used for, the decay of the exact variance with
d at the paper's initialisation (fitted rate with its interval, against the rate the bound
implies); the bound ``Var <= G^2 / 2^d`` itself is a cross-check in the same row, since for the
square loss it is Parseval's identity and cannot fail on a correct computation.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import hadamard

from .. import theory as T
from . import Check, Outcome, rng

LN2 = math.log(2.0)


def orthogonal_class(generator: np.random.Generator, N: int, m: int) -> np.ndarray:
    """m rows orthogonal on a uniform domain of N points, ``E h^2 <= 1`` (Theorem 1's class)."""
    Q, _ = np.linalg.qr(generator.standard_normal((N, N)))
    return math.sqrt(N) * Q[:, :m].T * generator.uniform(0.2, 1.0, size=(m, 1))


def variance_bound(quick: bool, make_class=orthogonal_class) -> Outcome:
    """Theorem 1: ``Var(H, F, w) <= G^2/|H|`` for random classes ``make_class(rng, N, m)``."""
    g, worst = rng("thm1.variance-bound"), 0.0
    for _ in range(20 if quick else 100):
        N = int(g.integers(4, 64))
        m = int(g.integers(2, N + 1))
        P = int(g.integers(1, 20))
        H = make_class(g, N, m)
        var, bound = T.gradient_variance(g.standard_normal(N), g.standard_normal((N, P)), H, "square")
        worst = max(worst, var / bound)
        Nh = 2 ** int(g.integers(2, 7))
        Hpm = hadamard(Nh)[g.choice(Nh, size=int(g.integers(1, Nh + 1)), replace=False)]
        var, bound = T.gradient_variance(g.standard_normal(Nh), g.standard_normal((Nh, P)), Hpm, "hinge")
        worst = max(worst, var / bound)
    return Outcome(
        computed="random orthogonal classes (square loss) and random subsets of parities (hinge) with random "
        "predictions and gradients; max Var / (G^2/|H|)",
        value=worst, passed=worst <= 1 + 1e-12,
        margin=f"largest ratio {worst:.3f}: the bound holds with {1 - worst:.0%} to spare in the worst case")


def direct_variance(d: int, w: dict, loss: str) -> float:
    """The variance over all 2^d parities by an explicit sum over targets and parameters."""
    return T.parity_gradient_variance(d, w, loss, method="direct")[0]


def parity_exact(quick: bool, direct=direct_variance) -> Outcome:
    """Sec. 2.1: the Walsh-Hadamard variance equals the explicit sum over all 2^d targets."""
    worst = 0.0
    top = 6 if quick else 8
    for d in range(2, top + 1):
        w = T.init_parity_weights(rng("thm1.parity-exact", d, "weights"), d)
        w["b1"] = 0.3 * rng("thm1.parity-exact", d, "bias").standard_normal(w["b1"].shape)  # exercise the bias gradient
        for loss in ("square", "hinge"):
            fast, _ = T.parity_gradient_variance(d, w, loss)
            worst = max(worst, abs(fast / direct(d, w, loss) - 1))
    return Outcome(
        computed="Walsh-Hadamard variance vs an explicit sum over all 2^d targets and all parameters, paper "
        f"network (width 10d), d=2..{top}, square and hinge; max relative difference",
        value=worst, passed=worst <= 1e-10, margin=f"{worst:.1e} against the 1e-10 allowed")


def parity_decay(quick: bool, variance=T.parity_gradient_variance) -> Outcome:
    """Theorem 1 for parities: the exact variance decays like G^2 2^-d (rate fitted in d)."""
    ds = list(range(4, 13 if quick else 17))
    var: dict[str, list[float]] = {"square": [], "hinge": []}
    G2, ratios = [], []
    for d in ds:
        w = T.init_parity_weights(rng("thm1.parity-decay", d), d)
        for loss in var:
            v, bound = variance(d, w, loss)
            var[loss].append(v)
            ratios.append(v / bound)
        G2.append(bound * 2.0**d)
    g_rate = T.fit_exponential_rate(ds, G2).exponent / LN2
    predicted = -1.0 + g_rate  # log2 of G^2 2^-d per unit d
    fits = {loss: T.fit_exponential_rate(ds, v) for loss, v in var.items()}
    rates = {loss: f.exponent / LN2 for loss, f in fits.items()}
    cis = {loss: (f.ci95[0] / LN2, f.ci95[1] / LN2) for loss, f in fits.items()}
    decays = all(hi < 0 for _, hi in cis.values())
    at_bound_rate = all(r <= predicted + 0.05 for r in rates.values())
    bound_ok = max(ratios) <= 1 + 1e-12
    text = "; ".join(f"{loss}: {rates[loss]:.3f} [{cis[loss][0]:.3f}, {cis[loss][1]:.3f}]" for loss in var)
    return Outcome(
        computed=(f"exact variance over all 2^d parities at the paper's initialisation (width 10d, truncated "
                  f"normal 1/sqrt(fan_in)), d={ds[0]}..{ds[-1]}; fitted log2 Var per unit d: {text}; "
                  f"log2 G^2 grows by {g_rate:.3f}, so G^2 2^-d falls by {predicted:.3f}; cross-check: "
                  f"max Var/(G^2/2^d) = {max(ratios):.5f}"),
        value=rates["square"], interval=cis["square"], passed=decays and at_bound_rate and bound_ok,
        margin=(f"Var falls by {-rates['square']:.2f} (square) and {-rates['hinge']:.2f} (hinge) bits per unit "
                f"d; the bound's rate is {-predicted:.2f}; for the square loss the bound is tight "
                "(Var = G^2/2^d - ||u(1)||^2/4^d)"))


def lemma3(quick: bool, network=T.parity_network) -> Outcome:
    """Lemma 3: ``network(v)`` realizes the parity ``(-1)^<x, v>`` on all of {0,1}^d, width > 3d/2."""
    g = rng("lemma3.parity-network")
    ok, tried, wrong = True, 0, 0
    for d in range(1, 13):
        X = T.binary_cube(d)
        if d <= (6 if quick else 8):
            vs = T.binary_cube(d).astype(int)
        else:
            vs = g.integers(0, 2, size=(10 if quick else 40, d))
        for v in vs:
            weights = network(v)
            exact = bool(np.array_equal(T.two_layer_forward(weights, X), (-1.0) ** (X @ v)))
            wide = weights["W1"].shape[1] > 1.5 * d
            ok &= exact and wide
            wrong += not (exact and wide)
            tried += 1
    return Outcome(
        computed=f"{tried} parities, d=1..12 (all v up to d={6 if quick else 8}), outputs on all of "
        f"{{0,1}}^d; {wrong} not exact or too narrow",
        value=float(ok), passed=ok, margin="exact (float equality on every input)")


def sparse_variance(quick: bool, variance=T.sparse_parity_gradient_variance) -> Outcome:
    """Theorem 1 for the C(n, k) weight-k parities: the Walsh-Hadamard variance equals the
    enumeration over the class and stays below G^2 / C(n, k), for every k, square and hinge."""
    n, trials = (8, 2) if quick else (10, 3)
    generator, width, ks = rng("beyond.sparse-variance"), 3 * n, list(range(1, n + 1))
    worst_ratio, worst_diff = 0.0, 0.0
    for loss in ("square", "hinge"):
        for _ in range(trials):
            w = {"W1": generator.standard_normal((n, width)) / math.sqrt(n), "b1": 0.1 * generator.standard_normal(width),
                 "W2": generator.standard_normal((width, 1)) / math.sqrt(width), "b2": np.zeros(1)}
            v, bound = variance(n, ks, w, loss)
            direct, _ = T.sparse_parity_gradient_variance(n, ks, w, loss, method="direct")
            worst_ratio = max(worst_ratio, float(np.max(np.asarray(v) / bound)))
            worst_diff = max(worst_diff, float(np.max(np.abs(np.asarray(v) - direct) / bound)))
    return Outcome(
        computed=(f"n = {n}, k = 1..{n}, {trials} random two-layer ReLU networks (width {width}) per loss (square, "
                  f"hinge): exact Var over all C(n, k) weight-k parities from the weight-k Walsh-Hadamard "
                  f"coefficients, against the enumeration of the class (difference {worst_diff:.1e} of the bound) "
                  f"and the bound G^2/C(n, k)"),
        value=worst_ratio, passed=worst_ratio <= 1 + 1e-9 and worst_diff <= 1e-9,
        margin=f"the largest Var is {worst_ratio:.3f} of the bound")


CHECKS = [
    Check("thm1.variance-bound", "Var/bound <= 1 (+1e-12 rounding) in every case", variance_bound),
    Check("thm1.parity-exact", "relative difference <= 1e-10", parity_exact),
    Check("thm1.parity-decay", "the fitted log2-rate of Var in d has a 95% interval below 0 and is at most "
          "0.05 above the rate of G^2 2^-d, for square and hinge; and Var <= G^2/2^d at every d", parity_decay),
    Check("lemma3.parity-network", "exact output (-1)^<x,v> on every input, width > 3d/2", lemma3),
    Check("beyond.sparse-variance", "Var/(G^2/C(n,k)) <= 1 and the transform equals the enumeration (1e-9 of "
          "the bound) for every k", sparse_variance),
]
