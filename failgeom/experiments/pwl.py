"""Piecewise-linear curves: architecture and conditioning (paper Sec. 4.1, Figure 6; talk part 1).

A curve ``f = W p`` (``W[i, j] = [i - j + 1]_+``) is to be mapped back to its sparse kink vector
``p = U f`` with ``U = W^{-1}`` the second-difference filter ``(1, -2, 1)`` (Lemma 1). Four
learners, registered as four experiments:

``pwl-fc`` (4.1.1)
    one linear layer ``p_hat = U_hat f`` (n x n, init 0). The Hessian is ``E[f f^T] = lam W W^T``
    with condition number Omega(n^3.5) (Theorem 3): SGD is slow and misses the kinks.
``pwl-conv`` (4.1.2)
    a 3-tap filter over the windows of f (init 0). The problem lives in R^3, but the window
    covariance ``C = E[F^T F]`` still has condition number Theta(n^3) (Appendix A.6).
``pwl-conv-precond`` (4.1.3)
    the same regression on the windows times ``C_hat^{-1/2}`` (``C_hat`` estimated from the
    training windows); the learned ``x`` is returned as the filter ``C_hat^{-1/2} x``. The
    condition number is about 1, and the filter is found within a few hundred iterations.
``pwl-autoencoder`` (4.1.4)
    encoder Dense(500) ReLU Dense(100) ReLU Dense(2k) [ReLU], decoder Dense(100) ReLU Dense(100)
    ReLU Dense(n), squared reconstruction loss: fails to capture the kinks.

Convolution boundary (a choice; the paper does not say): the filter sees the windows
``(f[t-2], f[t-1], f[t])`` for ``t = 0..n-1`` of f padded with two zeros on the left, i.e. the
full convolution of Lemma 1 with zero padding at the start. The padding is exact, since a curve
vanishes left of its first kink, so the filter ``(1, -2, 1)`` reproduces every ``p[t]`` exactly
(there is no right padding, which would not be exact). The window covariance of this
convention is the theory module's ``"valid"`` one plus the two leading windows
(:func:`window_covariance_left_padded`); at n = 100 its condition number is 1.52e6 against 1.55e6.

Note on the talk slide: it says "Return ``C^{1/2} x``". Regressing on ``F C^{-1/2}`` gives the
prediction ``F C^{-1/2} x``, i.e. the filter ``C^{-1/2} x``; that is what is returned here.

Both SGD and Adam are available for every learner (``optimizer``). The original code used Adam
for every learner of this section (the ``paper`` presets); the theory speaks of SGD. The metrics
include the condition number after the best diagonal (Jacobi) rescaling, which bounds what a
diagonal method such as Adam/AdaGrad can do to the geometry (the talk's point).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import nn
from ..problems.pwl import sample_pwl_curves
from ..results import Result
from ..theory.pwl import (condition_number, paper_step_threshold, pwl_apply, pwl_inverse, pwl_inverse_apply,
                          pwl_matrix)
from ..theory.windows import inverse_sqrt, kink_second_moment, window_gram_integer
from ..training import NonFiniteLossError, Curves, null_progress, seed_streams
from . import register
from .base import Experiment, ExperimentConfig

LEARNERS = ("fc", "conv", "conv-precond", "autoencoder")

#: The second-difference filter (1, -2, 1) of Lemma 1 (symmetric, so its orientation over the
#: window (f[t-2], f[t-1], f[t]) does not matter).
TARGET_FILTER = np.array([1.0, -2.0, 1.0])

# Keys for seed_streams: one stream per part, so parts do not shift each other's numbers.
_DATA_KEY, _INIT_KEY, _BATCH_KEY = 4100, 4101, 4102


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class PWLData:
    """Per-replica fixed training and validation sets (the original code's 10,000 / 1,000).

    ``train_f``, ``train_p``: ``(R, N, n)``; ``val_f``, ``val_p``: ``(R, M, n)``;
    ``val_near_kink``: ``(R, M, n)`` bool, positions within one step of a kink. For curves with
    continuous kinks (the autoencoder's original data) ``p`` is all zeros (not on the grid).
    """

    train_f: np.ndarray
    train_p: np.ndarray
    val_f: np.ndarray
    val_p: np.ndarray
    val_near_kink: np.ndarray


def sample_continuous_kink_curves(rng: np.random.Generator, count: int, n: int = 100, k: int = 3):
    """Curves of the autoencoder's original data (Sec. 4.1.4): ``theta_r ~ U[0, n]``, ``a_r ~ U[-1, 1]``.

    ``f(x) = sum_r a_r [x - theta_r]_+`` at ``x = 0..n-1``. Kinks are off the grid, so there is no
    kink vector p. Returns ``(f (count, n), theta (count, k))``.

    (This belongs in :mod:`failgeom.problems.pwl`; it lives here until it moves there.)
    """
    theta = rng.uniform(0.0, float(n), size=(count, k))
    a = rng.uniform(-1.0, 1.0, size=(count, k))
    x = np.arange(n, dtype=np.float64)
    f = np.einsum("ck,ckx->cx", a, np.maximum(x[None, None, :] - theta[:, :, None], 0.0))
    return f, theta


def kink_positions(p: np.ndarray) -> np.ndarray:
    """Boolean ``(..., n)``: where ``p`` is non-zero (the grid kinks of ``f = W p``)."""
    return np.asarray(p) != 0


def near_kink_mask(p: np.ndarray) -> np.ndarray:
    """Positions within one step of a kink of ``f = W p``.

    With ``f_i = sum_j p_j [i - j + 1]_+`` a non-zero ``p_j`` bends f at ``x = j - 1`` (f is 0 there
    and ``p_j`` one step later), so the mask covers ``x = j - 2, j - 1, j``.
    """
    kinks = kink_positions(p)
    mask = kinks.copy()
    mask[..., :-1] |= kinks[..., 1:]
    mask[..., :-2] |= kinks[..., 2:]
    return mask


def make_data(seed: int, R: int, n: int, k: int, distribution: str, train_size: int, val_size: int,
              continuous_kinks: bool = False) -> PWLData:
    """Sample the fixed training and validation sets of each replica (one stream per replica)."""
    x = np.arange(n)
    parts = []
    for ss in seed_streams(seed, _DATA_KEY, n).spawn(R):  # setup only: one data set per replica
        rng = np.random.default_rng(ss)
        if continuous_kinks:
            f, _ = sample_continuous_kink_curves(rng, train_size, n, k)
            g, theta = sample_continuous_kink_curves(rng, val_size, n, k)
            near = np.any(np.abs(x[None, None, :] - theta[:, :, None]) <= 1.0, axis=1)
            parts.append((f, np.zeros_like(f), g, np.zeros_like(g), near))
        else:
            f, p = sample_pwl_curves(rng, train_size, n, k, distribution)
            g, q = sample_pwl_curves(rng, val_size, n, k, distribution)
            parts.append((f, p, g, q, near_kink_mask(q)))
    return PWLData(*(np.stack(arrays) for arrays in zip(*parts)))


def minibatch(rng: np.random.Generator, data_f: np.ndarray, data_p: np.ndarray, batch: int):
    """Each replica draws its own minibatch from its own training set: ``(R, B, n)`` twice.

    One fancy-indexing gather with ``(R, B)`` indices, no loop over replicas.
    """
    R, N = data_f.shape[:2]
    idx = rng.integers(0, N, size=(R, batch))
    rows = np.arange(R)[:, None]
    return data_f[rows, idx], data_p[rows, idx]


# ---------------------------------------------------------------------------------------------
# Condition numbers (what SGD sees; and what a diagonal rescaling leaves)


def window_covariance_left_padded(n: int, k: int = 3, distribution: str = "paper") -> np.ndarray:
    """Exact ``C = E[F^T F]`` for this module's windows ``(f[t-2], f[t-1], f[t])``, ``t = 0..n-1``.

    These are the theory module's ``"valid"`` windows (centred at ``1..n-2``) plus the two
    leading windows ``(0, 0, f0)`` and ``(0, f0, f1)``; with ``E[f f^T] = lam W W^T``,
    ``E f0^2 = lam``, ``E f0 f1 = 2 lam``, ``E f1^2 = 5 lam``. ``distribution`` as in
    :func:`failgeom.theory.windows.kink_second_moment` ("paper" or "pm1").
    """
    extra = np.array([[0, 0, 0], [0, 1, 2], [0, 2, 6]], dtype=np.float64)
    M = np.array(window_gram_integer(n, "valid"), dtype=np.float64) + extra
    return kink_second_moment(n, k, distribution) * M


def windows(f: np.ndarray) -> np.ndarray:
    """The windows ``(f[t-2], f[t-1], f[t])``, ``t = 0..n-1``, of f padded with two zeros on the
    left: ``(..., n) -> (..., n, 3)`` (a view of a padded copy)."""
    pad = [(0, 0)] * (f.ndim - 1) + [(2, 0)]
    return sliding_window_view(np.pad(f, pad), 3, axis=-1)


def empirical_window_covariance(f: np.ndarray) -> np.ndarray:
    """``C_hat = mean over curves of F^T F`` for curves ``(..., N, n)``: ``(..., 3, 3)``, float64."""
    F = windows(np.asarray(f, dtype=np.float64))
    return np.einsum("...cta,...ctb->...ab", F, F) / f.shape[-2]


def cond(H: np.ndarray) -> float:
    """``lambda_max / lambda_min`` of a symmetric positive definite matrix."""
    e = np.linalg.eigvalsh(0.5 * (H + H.T))
    return float(e[-1] / e[0])


def jacobi_condition_number(H: np.ndarray) -> float:
    """Condition number of ``D^{-1/2} H D^{-1/2}``, ``D = diag(H)``: the geometry after the best
    diagonal rescaling up to a factor of the dimension (van der Sluis). Adam and AdaGrad rescale
    coordinates only, so this is about the best they can reach (talk, part 1)."""
    d = 1.0 / np.sqrt(np.diag(H))
    return cond(H * d[:, None] * d[None, :])


def condition_summary(learner: str, n: int, k: int, C_hat: np.ndarray | None = None) -> dict:
    """Condition numbers of the expected loss's Hessian for a learner (paper distribution).

    fc: ``lam W W^T`` (Theorem 3); conv: the window covariance (Appendix A.6); conv-precond:
    ``C_hat^{-1/2} C C_hat^{-1/2}`` for each replica's estimate ``C_hat``.
    """
    if learner == "fc":
        W = pwl_matrix(n, np.float64)
        G = W @ W.T
        return {"hessian_condition_number": condition_number(n),
                "jacobi_condition_number": jacobi_condition_number(G)}
    if learner in ("conv", "conv-precond"):
        C = window_covariance_left_padded(n, k)
        out = {"window_condition_number": cond(C), "jacobi_condition_number": jacobi_condition_number(C)}
        if learner == "conv-precond" and C_hat is not None:
            conds = []
            for Ch in C_hat:  # 3x3 per replica
                P = inverse_sqrt(Ch)
                conds.append(cond(P @ C @ P))
            out["preconditioned_condition_number"] = conds
        return out
    return {}


# ---------------------------------------------------------------------------------------------
# Learners: a model from failgeom.nn plus how it sees the data


class Learner:
    """A PWL learner: ``model`` maps ``inputs(f)`` to ``outputs`` trained against ``target(f, p)``.

    ``kinks(params, out)`` turns outputs into a kink estimate ``p_hat (R, B, n)``;
    ``reconstruct`` gives the decoding ``W p_hat`` (or the autoencoder's output).
    """

    name = ""
    model: nn.Layer

    def prepare(self, data: PWLData) -> None:
        """Fit whatever the learner estimates from the training set (the preconditioner)."""

    def inputs(self, f):
        return f

    def target(self, f, p):
        return p

    def kinks(self, out):
        return out

    def reconstruct(self, out):
        """``W p_hat``: two cumulative sums of the predicted kink vector."""
        return pwl_apply(self.kinks(out).astype(np.float64))

    def init(self, ss, R: int, n: int, dtype):
        params, _ = self.model.init(ss, R, self.in_shape(n), dtype)
        return params

    def in_shape(self, n: int):
        return (n,)

    def filter(self, params) -> np.ndarray | None:
        """The learned 3-tap filter ``(R, 3)`` (conv learners), else None."""
        return None


class FCLearner(Learner):
    """Sec. 4.1.1: ``p_hat = U_hat f``, one n x n linear layer without bias, init 0."""

    name = "fc"

    def __init__(self, n: int):
        self.model = nn.Dense(n, bias=False, init="zeros")

    @staticmethod
    def u_hat(params) -> np.ndarray:
        """``U_hat (R, n, n)`` acting as ``p_hat = U_hat f`` (Dense computes ``f @ W``)."""
        return np.swapaxes(params["W"], 1, 2)


class ConvLearner(Learner):
    """Sec. 4.1.2: ``p_hat[t] = K . (f[t-2], f[t-1], f[t])``, a 3-tap Conv1D without bias, init 0.

    f is padded with two zeros on the left (exact, see the module docstring), so the 'valid'
    convolution returns all n positions.
    """

    name = "conv"

    def __init__(self):
        self.model = nn.Conv1D(1, 3, bias=False, init="zeros")

    def in_shape(self, n):
        return (n + 2, 1)

    def inputs(self, f):
        pad = [(0, 0)] * (f.ndim - 1) + [(2, 0)]
        return np.pad(f, pad)[..., None]

    def target(self, f, p):
        return p[..., None]

    def kinks(self, out):
        return out[..., 0]

    def filter(self, params):
        return params["W"][:, :, 0, 0].astype(np.float64)


class PreconditionedConvLearner(Learner):
    """Sec. 4.1.3: regress p on the windows times ``C_hat^{-1/2}``; the filter is ``C_hat^{-1/2} x``.

    ``C_hat`` (3 x 3, per replica) is the mean of ``F^T F`` over the replica's training curves.
    The model is a bias-free Dense(1) over the whitened windows (a convolution).
    """

    name = "conv-precond"

    def __init__(self, dtype):
        self.model = nn.Dense(1, bias=False, init="zeros")
        self.dtype = np.dtype(dtype)
        self.C_hat = None
        self.P = None

    def prepare(self, data):
        self.C_hat = empirical_window_covariance(data.train_f)  # (R, 3, 3)
        self.P = np.stack([inverse_sqrt(C) for C in self.C_hat])  # setup only

    def in_shape(self, n):
        return (n, 3)

    def inputs(self, f):
        # whiten in float64 (the windows are nearly collinear), then cast
        F = windows(np.asarray(f, dtype=np.float64))
        R = F.shape[0]
        Z = np.matmul(F.reshape(R, -1, 3), self.P).reshape(F.shape)
        return Z.astype(self.dtype)

    def target(self, f, p):
        return p[..., None]

    def kinks(self, out):
        return out[..., 0]

    def filter(self, params):
        x = params["W"][:, :, 0].astype(np.float64)  # (R, 3)
        return np.einsum("rab,rb->ra", self.P, x)


class AutoencoderLearner(Learner):
    """Sec. 4.1.4: encoder Dense(500) ReLU Dense(100) ReLU Dense(2k) [ReLU], decoder Dense(100)
    ReLU Dense(100) ReLU Dense(n); squared reconstruction loss on f. Truncated-normal init."""

    name = "autoencoder"

    def __init__(self, n: int, k: int, encoder_output_relu: bool = True):
        encoder = [nn.Dense(500), nn.ReLU(), nn.Dense(100), nn.ReLU(), nn.Dense(2 * k)]
        if encoder_output_relu:  # the original code ends the encoder with a ReLU
            encoder.append(nn.ReLU())
        decoder = [nn.Dense(100), nn.ReLU(), nn.Dense(100), nn.ReLU(), nn.Dense(n)]
        self.model = nn.Sequential(encoder + decoder)

    def target(self, f, p):
        return f

    def kinks(self, out):
        # not a missing feature: this learner has no kink vector p to return
        raise TypeError("the autoencoder has no kink vector: it reconstructs f directly")

    def reconstruct(self, out):
        return out.astype(np.float64)


def make_learner(name: str, n: int, k: int, dtype="float32", encoder_output_relu: bool = True) -> Learner:
    if name == "fc":
        return FCLearner(n)
    if name == "conv":
        return ConvLearner()
    if name == "conv-precond":
        return PreconditionedConvLearner(dtype)
    if name == "autoencoder":
        return AutoencoderLearner(n, k, encoder_output_relu)
    raise ValueError(f"learner must be one of {LEARNERS}, got {name!r}")


# ---------------------------------------------------------------------------------------------
# Config and presets


@dataclass(frozen=True)
class PWLConfig(ExperimentConfig):
    """Hyperparameters of one PWL learner (defaults: the original code's fc run, Sec. 4.1.1).

    ``lr=None`` picks a default: Adam the original code's rate for the learner, SGD
    ``sgd_step_fraction`` of the largest stable step of the expected loss (``1 / lambda_max``
    of ``E[x x^T]`` for this loss, from the theory module: Theorem 3's threshold for fc, the
    exact window covariance for conv, the whitened estimate for conv-precond; for
    ``distribution="code"`` the training set's own second moments, see :func:`default_lr`); the
    autoencoder has no such threshold and needs an explicit SGD rate.
    """

    n: int = 100
    k: int = 3
    distribution: Literal["paper", "code"] = "paper"
    train_size: int = 10_000
    val_size: int = 1_000
    steps: int = 50_000
    batch: int = 100
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float | None = None
    sgd_step_fraction: float = 0.5
    eval_every: int = 500
    snapshots: tuple[int, ...] = (500, 10_000, 50_000)
    encoder_output_relu: bool = True

    positive = ("replicas", "n", "k", "train_size", "val_size", "steps", "batch", "lr",
                "sgd_step_fraction", "eval_every", "snapshots")

    def check(self) -> None:
        if max(self.snapshots) > self.steps:
            raise ValueError(f"snapshots must not exceed steps={self.steps}, got {self.snapshots}")
        if self.k > self.n:
            raise ValueError(f"k must be at most n={self.n}, got {self.k}")
        if self.distribution == "code" and (self.k != 3 or self.n < 9):
            raise ValueError(f"distribution 'code' needs k = 3 and n >= 9, got k={self.k}, n={self.n}")
        if self.n < 3:
            raise ValueError(f"n must be at least 3 (the filter has 3 taps), got {self.n}")
        if self.val_size < 2:
            raise ValueError(f"val_size must be at least 2 (two curves are drawn), got {self.val_size}")


#: The original code's Adam rates (Sec. 4.1.1-4.1.4, paper-notes section 3).
ADAM_LR = {"fc": 1e-4, "conv": 0.05, "conv-precond": 0.99, "autoencoder": 1e-3}

PRESETS: dict[str, dict[str, PWLConfig]] = {
    "fc": {
        "paper": PWLConfig(),
        "quick": PWLConfig(replicas=3, steps=10_000, snapshots=(100, 2_000, 10_000)),
    },
    "conv": {
        "paper": PWLConfig(),
        "quick": PWLConfig(replicas=3, steps=10_000, snapshots=(100, 2_000, 10_000)),
    },
    "conv-precond": {
        # the original command: batch 10, 500 iterations, Adam lr 0.99
        "paper": PWLConfig(steps=500, batch=10, eval_every=10, snapshots=(20, 100, 500)),
        "quick": PWLConfig(replicas=3, steps=500, batch=10, eval_every=10, snapshots=(20, 100, 500)),
    },
    "autoencoder": {
        # the original code's data for 4.1.4 has continuous kinks; ``distribution`` selects
        # between the paper's grid kinks ("paper") and those ("code")
        "paper": PWLConfig(steps=10_000, snapshots=(500, 2_000, 10_000)),
        "quick": PWLConfig(replicas=2, steps=1_500, eval_every=250, train_size=5_000,
                           snapshots=(100, 500, 1_500)),
    },
}


def default_lr(learner: Learner, config: PWLConfig, data: PWLData | None = None) -> float:
    """The step size used when ``config.lr`` is None (see :class:`PWLConfig`).

    SGD, paper distribution: from the exact expected Hessian (theory module). Other
    distributions (``"code"``, whose kink coefficients are not isotropic) need ``data``: the
    threshold then comes from the training set's own second moments, which is the Hessian of
    the loss SGD actually minimises on that fixed set.
    """
    if config.lr is not None:
        return float(config.lr)
    if config.optimizer == "adam":
        return ADAM_LR[learner.name]
    if learner.name == "autoencoder":
        raise ValueError("the autoencoder has no stability threshold: set lr explicitly for optimizer=sgd")
    frac = config.sgd_step_fraction
    # The loss is mean_batch ||out - target||^2: Hessian 2 E[x x^T], GD threshold 1/lambda_max.
    if config.distribution == "paper":
        if learner.name == "fc":
            # E[f f^T] = lam W W^T; Theorem 3's 1/(lam S11^2) is exactly that threshold here
            lam = kink_second_moment(config.n, config.k, "paper")
            return frac * paper_step_threshold(config.n, lam)
        C = window_covariance_left_padded(config.n, config.k)
    else:
        if data is None:
            raise ValueError(f"distribution {config.distribution!r} needs the training data for the SGD step")
        if learner.name == "fc":
            f = data.train_f.reshape(-1, data.train_f.shape[-1])
            top = np.linalg.eigvalsh(f.T @ f / f.shape[0])[-1]
            return frac / float(top)
        C = empirical_window_covariance(data.train_f.reshape(-1, data.train_f.shape[-1]))
    if learner.name == "conv":
        return frac / float(np.linalg.eigvalsh(C)[-1])
    tops = [np.linalg.eigvalsh(P @ C @ P)[-1] for P in learner.P]  # conv-precond
    return frac / float(max(tops))


def make_optimizer(config: PWLConfig, lr: float):
    if config.optimizer == "adam":
        return nn.Adam(lr, **nn.PAPER_ADAM)
    return nn.SGD(lr)


# ---------------------------------------------------------------------------------------------
# Training and metrics


def filter_error(K: np.ndarray) -> np.ndarray:
    """``||K - (1, -2, 1)||_2`` per replica for filters ``(R, 3)``."""
    return np.linalg.norm(K - TARGET_FILTER, axis=-1)


def reconstruction_errors(rec: np.ndarray, f: np.ndarray, near: np.ndarray) -> dict:
    """RMS of ``rec - f`` per replica overall, within one step of a kink, and away from kinks."""
    err2 = (rec - f) ** 2
    near = near.astype(np.float64)
    far = 1.0 - near
    return {
        "recon_rmse": np.sqrt(err2.mean(axis=(1, 2))),
        "recon_rmse_near_kinks": np.sqrt((err2 * near).sum(axis=(1, 2)) / near.sum(axis=(1, 2))),
        "recon_rmse_away": np.sqrt((err2 * far).sum(axis=(1, 2)) / far.sum(axis=(1, 2))),
    }


def kink_amplitude_ratio(rec: np.ndarray, p: np.ndarray) -> np.ndarray:
    """How much of each kink a reconstruction keeps: ``sum_kinks p_hat a / sum_kinks a^2`` per
    replica, with ``p_hat = U rec`` (Lemma 1: the second difference of the reconstruction).

    1 when every kink is reproduced; near 0 when the reconstruction is smooth at the kinks. For
    the linear learners ``U W p_hat`` is their own kink prediction.
    """
    p_hat = pwl_inverse_apply(rec)
    kinks = p != 0
    return (p_hat * p * kinks).sum(axis=(1, 2)) / (p * p).sum(axis=(1, 2))


def evaluate(learner: Learner, params, data: PWLData, dtype) -> dict:
    """Validation metrics per replica: loss, reconstruction errors, filter/U errors."""
    f = data.val_f.astype(dtype)
    out, _ = learner.model.forward(params, learner.inputs(f))
    target = learner.target(f, data.val_p.astype(dtype))
    loss, _ = nn.losses.squared(out.astype(np.float64), target.astype(np.float64))
    metrics = {"val_loss": loss}
    rec = learner.reconstruct(out)
    metrics.update(reconstruction_errors(rec, data.val_f, data.val_near_kink))
    if np.any(data.val_p != 0):  # grid kinks only (continuous kinks have no kink vector)
        metrics["kink_amplitude_ratio"] = kink_amplitude_ratio(rec, data.val_p)
    K = learner.filter(params)
    if K is not None:
        metrics["filter_error"] = filter_error(K)
    if isinstance(learner, FCLearner):
        n = data.val_f.shape[-1]
        metrics["u_max_error"] = np.abs(learner.u_hat(params) - pwl_inverse(n, np.float64)).max(axis=(1, 2))
    return metrics


def train_learner(name: str, config: PWLConfig, seed: int = 0, progress=null_progress):
    """Train ``config.replicas`` copies of learner ``name`` on their fixed training sets.

    Returns ``(curves, snapshots, learner, params, data, lr)``: per-replica validation curves,
    the decodings of replica 0's first two validation curves at ``config.snapshots``, and the
    final state.
    """
    config.validate()
    R, dtype = config.replicas, np.dtype(config.dtype)
    continuous = name == "autoencoder" and config.distribution == "code"
    data = make_data(seed, R, config.n, config.k, config.distribution, config.train_size,
                     config.val_size, continuous_kinks=continuous)
    learner = make_learner(name, config.n, config.k, dtype, config.encoder_output_relu)
    learner.prepare(data)
    params = learner.init(seed_streams(seed, _INIT_KEY, config.n), R, config.n, dtype)
    lr = default_lr(learner, config, data)
    optimizer = make_optimizer(config, lr)
    rng = np.random.default_rng(seed_streams(seed, _BATCH_KEY, config.n))
    train_f, train_p = data.train_f.astype(dtype), data.train_p.astype(dtype)
    shown = data.val_f[0, :2]
    snapshots = {"steps": [], "decodings": [], "filters": [], "curves": shown.tolist()}
    snap_steps = set(config.snapshots)

    def snapshot(step):
        x = learner.inputs(np.broadcast_to(shown.astype(dtype), (R, 2, config.n)))
        out, _ = learner.model.forward(params, x)
        snapshots["steps"].append(step)
        snapshots["decodings"].append(learner.reconstruct(out)[0].tolist())
        K = learner.filter(params)
        snapshots["filters"].append(None if K is None else K[0].tolist())

    curves = Curves()
    curves.record(0, train_loss=np.full(R, np.nan), **evaluate(learner, params, data, dtype))
    running, count = np.zeros(R), 0
    bar = progress(config.steps, f"pwl-{name}")
    try:
        for step in range(1, config.steps + 1):
            fb, pb = minibatch(rng, train_f, train_p, config.batch)
            value = nn_train_step(learner, params, optimizer, fb, pb)
            if not np.all(np.isfinite(value)):
                raise NonFiniteLossError(step, lr, np.flatnonzero(~np.isfinite(value)).tolist())
            running += value
            count += 1
            if step % config.eval_every == 0 or step == config.steps:
                curves.record(step, train_loss=running / count, **evaluate(learner, params, data, dtype))
                running[:], count = 0.0, 0
            if step in snap_steps:
                snapshot(step)
            bar.update(1)
    finally:
        bar.close()
    return curves, snapshots, learner, params, data, lr


def nn_train_step(learner: Learner, params, optimizer, f, p) -> np.ndarray:
    """One step for all replicas: forward, squared loss, backward, update; loss ``(R,)``."""
    out, cache = learner.model.forward(params, learner.inputs(f))
    value, dout = nn.losses.squared(out, learner.target(f, p))
    _, grads = learner.model.backward(params, cache, dout, need_dx=False)
    optimizer.step(params, grads)
    return value


def _first_step_below(steps, values: np.ndarray, threshold: float) -> list:
    """Per replica, the first evaluation step with value below ``threshold`` (None if never)."""
    out = []
    for r in range(values.shape[1]):
        below = np.flatnonzero(values[:, r] < threshold)
        out.append(int(steps[below[0]]) if below.size else None)
    return out


def _stats(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max()),
            "per_replica": v.tolist()}


def run_learner(name: str, config: PWLConfig, seed: int = 0, progress=null_progress,
                preset: str = "custom") -> Result:
    """Run one learner; metrics hold final validation numbers, condition numbers, timings."""
    start = time.perf_counter()
    curves, snapshots, learner, params, data, lr = train_learner(name, config, seed, progress)
    train_s = time.perf_counter() - start
    final = {key: np.asarray(vals[-1]) for key, vals in curves.values.items()}
    metrics = {"lr": lr, "optimizer": config.optimizer}
    for key in ("val_loss", "recon_rmse", "recon_rmse_near_kinks", "recon_rmse_away",
                "kink_amplitude_ratio", "filter_error", "u_max_error"):
        if key in final:
            metrics[key] = _stats(final[key])
    if "filter_error" in curves.values:
        fe = curves.array("filter_error")
        for thr in (1e-1, 1e-2, 1e-3):
            metrics[f"first_step_filter_error_below_{thr:g}"] = _first_step_below(curves.steps, fe, thr)
        metrics["final_filter"] = learner.filter(params).tolist()
    C_hat = getattr(learner, "C_hat", None)
    if config.distribution == "paper":
        metrics["conditioning"] = condition_summary(name, config.n, config.k, C_hat)
    away = np.maximum(final["recon_rmse_away"], 1e-300)
    metrics["kink_error_ratio"] = _stats(final["recon_rmse_near_kinks"] / away)
    return Result(
        experiment=f"pwl-{name}", preset=preset, config=config.to_dict(),
        seeds={"seed": seed, "replicas": config.replicas}, metrics=metrics,
        curves={"validation": curves.to_dict(), "snapshots": snapshots},
        timing={"train_s": train_s, "per_step_ms": 1e3 * train_s / config.steps},
    )


# ---------------------------------------------------------------------------------------------
# Figures (Figure 6)


TITLES = {"fc": "fully connected (4.1.1)", "conv": "convolution (4.1.2)",
          "conv-precond": "convolution + conditioning (4.1.3)", "autoencoder": "autoencoder (4.1.4)"}


def _snapshot_row(axes, result: Result, with_metric: bool = True):
    from .. import plotting

    snaps = result.curves["snapshots"]
    f = np.asarray(snaps["curves"])
    x = np.arange(f.shape[1])
    name = result.experiment.removeprefix("pwl-")
    red_label = "reconstruction" if name == "autoencoder" else "decoding W p_hat"
    for ax, step, dec in zip(axes, snaps["steps"], snaps["decodings"]):
        dec = np.asarray(dec)
        for i in range(f.shape[0]):
            ax.plot(x, f[i], color=plotting.COLORS["blue"], lw=1.2, label="curve f" if i == 0 else None)
            ax.plot(x, dec[i], color=plotting.COLORS["red"], lw=1.0, ls="--",
                    label=red_label if i == 0 else None)
        ax.set_title(f"{name}: {step:,} iterations", fontsize=8)
        lo, hi = f.min(), f.max()
        pad = 0.25 * (hi - lo + 1e-9)
        ax.set_ylim(lo - pad, hi + pad)  # a diverging decoding must not hide the curve
    axes[0].legend(fontsize=7, loc="best")
    if with_metric and len(axes) > len(snaps["steps"]):
        ax = axes[-1]
        c = result.curves["validation"]
        key = next(k for k in ("filter_error", "u_max_error", "recon_rmse") if k in c)
        labels = {"filter_error": "||K - (1,-2,1)||", "u_max_error": "max |U_hat - U|",
                  "recon_rmse": "reconstruction RMSE, all"}
        steps = np.asarray(c["steps"])
        vals = np.asarray(c[key], dtype=float)
        plotting.band(ax, steps[1:], vals[1:], plotting.COLORS["green"], label=labels[key])
        near = np.asarray(c["recon_rmse_near_kinks"], dtype=float)
        what = "RMSE" if name == "autoencoder" else "decoding RMSE"
        plotting.band(ax, steps[1:], near[1:], plotting.COLORS["red"], label=f"{what} within 1 of a kink")
        away = np.asarray(c["recon_rmse_away"], dtype=float)
        plotting.band(ax, steps[1:], away[1:], plotting.COLORS["blue"], label=f"{what} elsewhere")
        ax.set_yscale("log")
        ax.set_xlabel("iterations")
        ax.set_title(f"validation ({result.seeds['replicas']} seeds; band min-max)", fontsize=8)
        ax.legend(fontsize=6, loc="best")


def figure(result: Result):
    """One learner's row of Figure 6: two held-out curves (blue) and their decodings (red) at the
    preset's snapshot iterations, and the validation metric over iterations (band: min-max)."""
    from .. import plotting

    ncols = len(result.curves["snapshots"]["steps"]) + 1
    fig, axes = plotting.figure(1, ncols, width=3.0, height=2.4)
    _snapshot_row(axes[0], result)
    name = result.experiment.removeprefix("pwl-")
    cfg = result.config
    fig.suptitle(f"Figure 6, {TITLES.get(name, name)}: n={cfg['n']}, {cfg['optimizer']} "
                 f"lr={result.metrics['lr']:.3g}, batch {cfg['batch']}", y=1.03, fontsize=9)
    return fig


def combined_figure(results: dict):
    """Figure 6 with one row per learner (``results``: learner name -> Result)."""
    from .. import plotting

    order = [n for n in LEARNERS if n in results]
    ncols = max(len(results[n].curves["snapshots"]["steps"]) for n in order) + 1
    fig, axes = plotting.figure(len(order), ncols, width=2.8, height=2.1)
    for row, name in zip(axes, order):
        _snapshot_row(row, results[name])
    fig.suptitle("Figure 6: held-out curves (blue) and their decodings (red)", y=1.01, fontsize=10)
    fig.tight_layout()
    return fig


def summary(result: Result) -> str:
    m = result.metrics
    parts = [f"val loss {m['val_loss']['mean']:.3g}",
             f"recon RMSE {m['recon_rmse']['mean']:.3g} "
             f"(near kinks {m['recon_rmse_near_kinks']['mean']:.3g})"]
    if "filter_error" in m:
        parts.append(f"filter error {m['filter_error']['mean']:.2e}")
    if "u_max_error" in m:
        parts.append(f"max|U_hat-U| {m['u_max_error']['mean']:.3g}")
    if "kink_amplitude_ratio" in m:
        parts.append(f"kink amplitude kept {m['kink_amplitude_ratio']['mean']:.3g}")
    return "; ".join(parts)


def _runner(name: str):
    def run(config: PWLConfig, seed: int = 0, progress=null_progress, preset: str = "custom") -> Result:
        return run_learner(name, config, seed, progress, preset)

    run.__doc__ = f"Run the {TITLES[name]} learner (see :func:`run_learner`)."
    return run


_DESCRIPTIONS = {
    "fc": "PWL curves, one linear n x n layer: slow, misses the kinks (Sec. 4.1.1, Fig. 6)",
    "conv": "PWL curves, 3-tap convolution: better but slow, cond Theta(n^3) (Sec. 4.1.2, Fig. 6)",
    "conv-precond": "PWL curves, convolution + C^{-1/2} conditioning: filter found fast (Sec. 4.1.3, Fig. 6)",
    "autoencoder": "PWL curves, deep autoencoder: misses the kinks (Sec. 4.1.4, Fig. 6)",
}

EXPERIMENTS = {
    name: register(Experiment(
        name=f"pwl-{name}", description=_DESCRIPTIONS[name], presets=PRESETS[name], run=_runner(name),
        figure=figure, summary=summary, family=3, paper_ref=f"Sec. 4.1, Figure 6 ({TITLES[name]})",
    ))
    for name in LEARNERS
}


def main(results_dir: str | None = None, out: str = "docs/figures", seed: int = 0) -> dict:
    """Save each learner's Figure 6 row and the combined Figure 6 as ``out/pwl-*.png``.

    ``results_dir``: a ``failgeom run --out`` folder holding ``pwl-<learner>/result.json`` for
    the four learners; without it the four quick presets are run here.
    Usage: ``python -m failgeom.experiments.pwl [RESULTS_DIR]``.
    """
    from pathlib import Path

    from .. import plotting
    from ..results import atomic_savefig

    results = {}
    for name in LEARNERS:
        if results_dir is not None:
            results[name] = Result.load(Path(results_dir) / f"pwl-{name}")
        else:
            start = time.perf_counter()
            results[name] = run_learner(name, PRESETS[name]["quick"], seed, preset="quick")
            print(f"pwl-{name}: {time.perf_counter() - start:.1f} s; {summary(results[name])}")
        fig = figure(results[name])
        atomic_savefig(fig, Path(out) / f"pwl-{name}.png")
        plotting.close(fig)
    fig = combined_figure(results)
    atomic_savefig(fig, Path(out) / "pwl-figure6.png", dpi=80)  # keeps the PNG under 200 KB
    plotting.close(fig)
    return results


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else None)
