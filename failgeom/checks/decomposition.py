"""Checks of Sec. 3: the line images of Figure 2 and the second-moment analysis of Sec. 3.3.

Sec. 3.3 on the stocks problem: with ``G_i = grad_w N_w(x)_i`` the end-to-end estimator has
second moment ``E sum_i ||G_i||^2``, the decomposition estimator ``E ||G_y||^2``, about k times
less near initialisation; by Ghadimi-Lan SGD needs order ``nu^2 / eps^2`` iterations with
``nu^2 = E||g||^2 - ||grad L||^2``. The rows evaluate both exactly (``theory.stocks_second_moments``)
at the paper's initialisation (``Dense(d -> k)``: truncated normal, std ``1/sqrt(d)``, zero bias)
and along the full-gradient training path (which both estimators follow in expectation), and
check the exact moments against Monte Carlo.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .. import theory as T
from ..problems.lines import sample_line_images
from . import Check, Outcome, rng

D_STOCKS = 1000
KS = (10, 100, 1000, 2000)


def paper_init(generator: np.random.Generator, d: int, k: int) -> np.ndarray:
    """``W`` of the paper's ``Dense(d -> k)``: truncated normal (2 std), std ``1/sqrt(d)``."""
    W = generator.standard_normal((d, k))
    outside = np.abs(W) > 2.0
    while outside.any():  # redraw the values beyond 2 std (about 5% per round)
        W[outside] = generator.standard_normal(int(outside.sum()))
        outside = np.abs(W) > 2.0
    return W / math.sqrt(d)


def training_path(W: np.ndarray, labels: np.ndarray, targets, lr: float = 2.0, steps: int = 3000):
    """Weights along gradient ascent on the expected gain ``N_y`` (no bias), each row at its own rate.

    The expected gradient of both estimators is ``-G_y``; each one-hot row moves only when its
    input is drawn, so the rows are trained with the per-row gradient ``N_y (e_y - N)``. Returns
    ``[(mean N_y, W)]`` at the first step where the mean probability of the right stock reaches
    each of ``targets`` (and the start).
    """
    W = W.copy()
    rows = np.arange(W.shape[0])
    out: list[tuple[float, np.ndarray]]
    out, pending = [], list(targets)
    for _ in range(steps):
        z = W - W.max(axis=1, keepdims=True)
        N = np.exp(z)
        N /= N.sum(axis=1, keepdims=True)
        q = N[rows, labels]
        if not out:
            out.append((float(q.mean()), W.copy()))
        while pending and q.mean() >= pending[0]:
            out.append((float(q.mean()), W.copy()))
            pending.pop(0)
        if not pending:
            break
        grad = -N * q[:, None]
        grad[rows, labels] += q
        W += lr * grad
    return out


def stocks_ratio(quick: bool, moments=T.stocks_second_moments) -> Outcome:
    """Sec. 3.3: the end-to-end second moment is about k times the decomposition's near init."""
    g = rng("sec3.3.stocks-ratio")
    at_init, path = [], {}
    for k in KS:
        labels = g.integers(0, k, size=D_STOCKS)
        W = paper_init(g, D_STOCKS, k)
        at_init.append(moments(W, np.zeros(k), labels).ratio / k)
        if k in (10, 100):
            path[k] = [(q, moments(Wt, None, labels).ratio / k)
                       for q, Wt in training_path(W, labels, (2 / k, 0.5, 0.9))]
    never_below_1 = all(r * k >= 1 for k, pts in path.items() for _, r in pts)
    # Monte Carlo side of the exact moments at random (not small) weights, with a bias
    k, d = 10, 50
    labels = g.integers(0, k, size=d)
    W, b = g.standard_normal((d, k)), g.standard_normal(k)
    exact = moments(W, b, labels)
    zs = []
    for est, target in (("end_to_end", exact.end_to_end), ("decomposition", exact.decomposition)):
        norms = T.stocks_gradient_norms(W, b, labels, g, 200000, est)
        zs.append(abs(norms.mean() - target) / (norms.std(ddof=1) / math.sqrt(norms.size)))
    z_crit = float(stats.norm.ppf(1 - 0.001 / 4))
    init_ok = all(0.9 <= v <= 1.1 for v in at_init)
    along = "; ".join(f"k={k}: " + ", ".join(f"{r:.3f} at N_y={q:.2g}" for q, r in pts) for k, pts in path.items())
    return Outcome(
        computed=(f"exact E||g||^2 of both estimators, d={D_STOCKS}, k={list(KS)}, at the paper's initialisation: "
                  f"ratio/k in [{min(at_init):.4f}, {max(at_init):.4f}]; along the training path (mean probability "
                  f"N_y of the right stock from 1/k up), ratio/k = {along}; Monte Carlo of the exact moments at "
                  f"random weights: max z {max(zs):.2f} (bound {z_crit:.2f})"),
        value=min(at_init), passed=init_ok and never_below_1 and max(zs) <= z_crit,
        margin=("about k only near initialisation: once the right stock's probability has doubled "
                f"the ratio is {path[100][1][1]:.2f} k (k=100), and it falls towards 1 as the model grows "
                "confident"))


def nu2_monte_carlo(W, b, labels, generator, samples: int):
    """Ghadimi-Lan's ``nu^2`` of the end-to-end estimator from sampled gradient vectors.

    Returns ``(estimate, stderr)``: the sample variance ``sum ||g_s - g_bar||^2 / (S - 1)`` of
    the per-example gradients (rows of W and the bias), with the standard error of its terms.
    """
    d, k = W.shape
    a = generator.integers(0, d, size=samples)
    logits = W[a] + b
    N = np.exp(logits - logits.max(axis=1, keepdims=True))
    N /= N.sum(axis=1, keepdims=True)
    onehot = np.arange(k)[None, :] == labels[a][:, None]
    z = np.where(onehot, 1.0, 2.0 * generator.integers(0, 2, size=(samples, k)) - 1.0)
    g = -(N * z - N * np.sum(N * z, axis=1, keepdims=True))  # d(-z^T N)/d logits, (S, k)
    rows = np.zeros((d, k))
    np.add.at(rows, a, g)
    rows /= samples
    bias = g.mean(axis=0)
    # ||g_s - g_bar||^2 with g_s nonzero in row a_s and in the bias
    dev = 2 * np.sum(g * g, axis=1) - 2 * np.sum(g * (rows[a] + bias), axis=1) + np.sum(rows**2) + np.sum(bias**2)
    return float(dev.sum() / (samples - 1)), float(dev.std(ddof=1) / math.sqrt(samples))


def ghadimi_lan(quick: bool, moments=T.stocks_second_moments) -> Outcome:
    """Sec. 3.3: nu^2 (hence Ghadimi-Lan's nu^2/eps^2 iterations) is about k times larger end-to-end."""
    g = rng("sec3.3.ghadimi-lan")
    at_init, grad_share = [], []
    for k in KS:
        labels = g.integers(0, k, size=D_STOCKS)
        m = moments(paper_init(g, D_STOCKS, k), np.zeros(k), labels)
        eps = 0.1 * math.sqrt(m.grad_norm_sq)  # any eps: the ratio of the iteration counts is nu^2's
        at_init.append(T.ghadimi_lan_iterations(m.nu2_end_to_end, eps)
                       / T.ghadimi_lan_iterations(m.nu2_decomposition, eps) / k)
        grad_share.append(m.grad_norm_sq / m.end_to_end)
    k, d = 10, 50
    labels = g.integers(0, k, size=d)
    W, b = 0.5 * g.standard_normal((d, k)), 0.5 * g.standard_normal(k)
    exact = moments(W, b, labels).nu2_end_to_end
    est, se = nu2_monte_carlo(W, b, labels, g, 200000)
    z = abs(est - exact) / se
    z_crit = float(stats.norm.ppf(1 - 0.001 / 2))
    return Outcome(
        computed=(f"exact nu^2 = E||g||^2 - ||grad L||^2 of both estimators at the paper's initialisation, "
                  f"d={D_STOCKS}, k={list(KS)}: Ghadimi-Lan iterations (e2e / decomposition) / k in "
                  f"[{min(at_init):.4f}, {max(at_init):.4f}] (||grad L||^2 is at most {max(grad_share):.1e} of "
                  f"E||g||^2 there); nu^2 from 200000 sampled gradient vectors (d={d}, k={k}, random weights "
                  f"with bias): {est:.5g} +- {se:.2g} vs exact {exact:.5g}, z {z:.2f} (bound {z_crit:.2f})"),
        value=min(at_init), passed=all(0.9 <= v <= 1.1 for v in at_init) and z <= z_crit,
        margin="the ratio is nu^2's; Ghadimi-Lan gives an order, so the k-fold count is an upper-bound ratio")


def line_images(quick: bool, sample=sample_line_images) -> Outcome:
    """Figure 2: each image is one straight line whose slope sign is its label."""
    images, labels = sample(rng("fig2.line-images"), (4000 if quick else 40000,))
    images = np.asarray(images, dtype=np.float64)
    rows, cols = np.indices(images.shape[1:])
    mass = images.sum(axis=(1, 2))
    ok = mass >= 3
    mr = (images * rows).sum(axis=(1, 2)) / np.maximum(mass, 1)
    mc = (images * cols).sum(axis=(1, 2)) / np.maximum(mass, 1)
    cov = (images * (rows - mr[:, None, None]) * (cols - mc[:, None, None])).sum(axis=(1, 2))
    vr = (images * (rows - mr[:, None, None]) ** 2).sum(axis=(1, 2))
    vc = (images * (cols - mc[:, None, None]) ** 2).sum(axis=(1, 2))
    # a line: the pixel cloud is one-dimensional, its spread across the principal axis (the
    # smaller eigenvalue of its 2x2 covariance) is that of truncation to pixels, under half a pixel
    tr, det = vr + vc, vr * vc - cov**2
    across = 0.5 * (tr - np.sqrt(np.maximum(tr**2 - 4 * det, 0.0))) / np.maximum(mass, 1)
    slanted = ok & (vr > 0) & (vc > 0)
    straight = float(np.mean(np.sqrt(across[slanted]) < 0.5))
    agree = float(np.mean(np.sign(cov[slanted]) == np.asarray(labels)[slanted]))
    return Outcome(
        computed=(f"{images.shape[0]} images from the generator: {slanted.mean():.1%} with a slanted line of >= 3 "
                  f"pixels (the rest are axis-parallel or clipped); of those, {straight:.1%} are one straight line "
                  "(RMS distance to the principal axis < 0.5 pixel) and the fraction whose sign of corr(row, col) (row axis up) is the "
                  "label is shown"),
        value=agree, passed=agree >= 0.99 and straight >= 0.95,
        margin=f"{1 - agree:.2%} of slanted lines disagree with their label (truncation to pixels)")


CHECKS = [
    Check("fig2.line-images", "on slanted lines of >= 3 pixels: >= 95% one straight line and >= 99% with the "
          "slope sign of the label", line_images),
    Check("sec3.3.stocks-ratio", "ratio/k in [0.9, 1.1] at the paper's initialisation for every k, ratio >= 1 "
          "along training, and Monte Carlo agrees with the exact moments (Bonferroni, 0.1%)", stocks_ratio),
    Check("sec3.3.ghadimi-lan", "Ghadimi-Lan iteration ratio / k in [0.9, 1.1] at the paper's initialisation "
          "for every k, and the exact nu^2 agrees with Monte Carlo over gradient vectors (0.1%)", ghadimi_lan),
]
