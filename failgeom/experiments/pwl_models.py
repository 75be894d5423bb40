"""The four PWL learners of Sec. 4.1: a model from :mod:`failgeom.nn`, how it sees a curve, its
loss, and the Hessian of its expected loss (for the SGD step size and the condition numbers).

Shared by the Figure 6 experiments (:mod:`failgeom.experiments.pwl`) and ``pwl-scaling``
(:mod:`failgeom.experiments.pwl_scaling`); it registers nothing.

A learner maps ``inputs(f)`` through ``model`` to outputs trained against ``target(f, p)`` with
the squared loss of the original code: ``mean_batch sum_coords`` for the fully connected layer,
``mean_batch mean_coords`` for the others (``loss_coef`` is 1 or ``1/n``). ``kinks(out)`` is the
kink estimate ``p_hat (R, B, n)``; ``reconstruct(out)`` the decoding ``W p_hat`` (the
autoencoder's output itself).

Convolution boundary, as the original code: the filter reads the windows ``(f[t-2], f[t-1],
f[t])`` for ``t = 2..n-1`` (``theory.windows``' ``"valid"`` windows) and predicts ``p[t]``; the
prediction is padded with two zeros in front, so ``p[0]`` and ``p[1]`` are never predicted (the
original data have no kink there; for the paper-text data a kink at 0 or 1 is missed by
construction). The two padded positions are constant in the weights and are left out of the
loss.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..problems.pwl import kink_second_moment_matrix
from ..theory.pwl import pwl_apply, pwl_inverse, pwl_matrix, second_difference_filter
from ..theory.windows import (empirical_window_covariance, inverse_sqrt, jacobi_condition_number,
                               spd_condition_number, window_covariance_of, window_matrix)

#: The second-difference filter (1, -2, 1) of Lemma 1, float (symmetric, so its orientation over
#: the window does not matter).
TARGET_FILTER = second_difference_filter().astype(np.float64)


def filter_error(K: np.ndarray) -> np.ndarray:
    """``||K - (1, -2, 1)||_2`` per replica for filters ``(R, 3)``: ``(R,)``."""
    return np.linalg.norm(np.asarray(K) - TARGET_FILTER, axis=-1)


class Learner:
    """A PWL learner (see the module docstring); subclasses set ``model`` and override the maps."""

    name = ""
    model: nn.Layer
    #: the original code's normalisation: True for ``mean_coords``, False for ``sum_coords``
    mean_over_coordinates = True

    def loss_coef(self, n: int) -> float:
        """Factor of ``sum_coords (out - target)^2`` in the loss."""
        return 1.0 / n if self.mean_over_coordinates else 1.0

    def prepare(self, train_f: np.ndarray) -> None:
        """Fit what the learner estimates from its training curves ``(R, N, n)`` (the
        preconditioner); nothing by default."""

    def inputs(self, f):
        return f

    def target(self, f, p):
        return p

    def kinks(self, out):
        return out

    def reconstruct(self, out) -> np.ndarray:
        """``W p_hat``: two cumulative sums of the predicted kink vector, float64."""
        return pwl_apply(self.kinks(out).astype(np.float64))

    def in_shape(self, n: int) -> tuple:
        return (n,)

    def init(self, rng, R: int, n: int, dtype):
        params, _ = self.model.init(rng, R, self.in_shape(n), dtype)
        return params

    def filter(self, params) -> np.ndarray | None:
        """The learned 3-tap filter ``(R, 3)`` (conv learners), else None."""
        return None

    def input_moment(self, second_moment_f: np.ndarray) -> np.ndarray | None:
        """``M = sum over outputs of E[x x^T]`` of one output unit's inputs, from ``E[f f^T]``.

        The loss's Hessian in that unit's weights is ``2 loss_coef M`` (all units alike). Returns
        ``(d, d)``, ``(R, d, d)`` for a per-replica preconditioner, or None without a linear
        model (the autoencoder).
        """
        return None


class FCLearner(Learner):
    """Sec. 4.1.1: ``p_hat = U_hat f``, one n x n linear layer without bias, init 0."""

    name = "fc"
    mean_over_coordinates = False

    def __init__(self, n: int):
        self.model = nn.Dense(n, bias=False, init="zeros")

    @staticmethod
    def u_hat(params) -> np.ndarray:
        """``U_hat (R, n, n)`` acting as ``p_hat = U_hat f`` (Dense computes ``f @ W``)."""
        return np.swapaxes(params["W"], 1, 2)

    def input_moment(self, second_moment_f):
        return np.asarray(second_moment_f, dtype=np.float64)  # E[f f^T]; Theorem 3's lam W W^T


def _pad_front(out_valid):
    """``(R, B, n - 2)`` predictions for ``p[2:]`` -> ``(R, B, n)`` with two zeros in front."""
    pad = [(0, 0)] * (out_valid.ndim - 1) + [(2, 0)]
    return np.pad(out_valid, pad)


class ConvLearner(Learner):
    """Sec. 4.1.2: ``p_hat[t] = K . (f[t-2], f[t-1], f[t])``, a 3-tap Conv1D without bias, init 0."""

    name = "conv"

    def __init__(self):
        self.model = nn.Conv1D(1, 3, bias=False, init="zeros")

    def in_shape(self, n):
        return (n, 1)

    def inputs(self, f):
        return f[..., None]

    def target(self, f, p):
        return p[..., 2:, None]

    def kinks(self, out):
        return _pad_front(out[..., 0])

    def filter(self, params):
        return params["W"][:, :, 0, 0].astype(np.float64)

    def input_moment(self, second_moment_f):
        return window_covariance_of(second_moment_f, "valid")  # Appendix A.6's C


class PreconditionedConvLearner(Learner):
    """Sec. 4.1.3: regress p on the windows times ``C_hat^{-1/2}``; the filter is ``C_hat^{-1/2} x``.

    ``C_hat`` (3 x 3, per replica) is the mean of ``F^T F`` over the replica's training curves.
    The model is a bias-free Dense(1) over the whitened windows (a convolution).
    """

    name = "conv-precond"

    def __init__(self, dtype="float32"):
        self.model = nn.Dense(1, bias=False, init="zeros")
        self.dtype = np.dtype(dtype)
        self.C_hat = None
        self.P = None

    def prepare(self, train_f):
        self.C_hat = empirical_window_covariance(train_f, "valid")  # (R, 3, 3)
        self.P = np.stack([inverse_sqrt(C) for C in self.C_hat])  # setup only

    def in_shape(self, n):
        return (n - 2, 3)

    def inputs(self, f):
        if self.P is None:
            raise ValueError("the preconditioned learner needs prepare(train_f) before use")
        # whiten in float64 (the windows are nearly collinear), then cast
        F = window_matrix(np.asarray(f, dtype=np.float64), "valid")
        R = F.shape[0]
        Z = np.matmul(F.reshape(R, -1, 3), self.P).reshape(F.shape)
        return Z.astype(self.dtype)

    def target(self, f, p):
        return p[..., 2:, None]

    def kinks(self, out):
        return _pad_front(out[..., 0])

    def filter(self, params):
        x = params["W"][:, :, 0].astype(np.float64)  # (R, 3)
        return np.einsum("rab,rb->ra", self.P, x)

    def input_moment(self, second_moment_f):
        C = window_covariance_of(second_moment_f, "valid")
        return np.einsum("rab,bc,rcd->rad", self.P, C, self.P)


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
    """The learner called ``name`` ("fc", "conv", "conv-precond", "autoencoder")."""
    if name == "fc":
        return FCLearner(n)
    if name == "conv":
        return ConvLearner()
    if name == "conv-precond":
        return PreconditionedConvLearner(dtype)
    if name == "autoencoder":
        return AutoencoderLearner(n, k, encoder_output_relu)
    raise ValueError(f"learner must be one of fc, conv, conv-precond, autoencoder, got {name!r}")


def curve_second_moment(n: int, k: int, distribution: str) -> np.ndarray:
    """Exact ``E[f f^T] = W E[p p^T] W^T`` (n x n) of a grid-kink distribution ("paper", "code")."""
    W = pwl_matrix(n, np.float64)
    return W @ kink_second_moment_matrix(n, k, distribution) @ W.T


def sgd_step_size(learner: Learner, fraction: float, n: int, k: int, distribution: str) -> float:
    """``fraction`` times the largest stable step of gradient descent on the expected loss.

    The Hessian in one output unit's weights is ``H = 2 loss_coef M`` (:meth:`Learner.input_moment`
    of the exact ``E[f f^T]``), GD is stable below ``2 / lambda_max(H)``, so the step is
    ``fraction / (loss_coef lambda_max(M))``; ``fraction = 0.5`` is Appendix A.5's ``eta = 1 / D_11``.
    For fc and the paper's data ``lambda_max(M) = lam S11^2``, Theorem 3's threshold. With a
    per-replica preconditioner the largest replica's ``lambda_max`` is used.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1) (1 is the stability edge), got {fraction!r}")
    M = learner.input_moment(curve_second_moment(n, k, distribution))
    if M is None:
        raise ValueError(f"the {learner.name} learner has no stability threshold: give its SGD rate explicitly")
    top = float(np.max(np.linalg.eigvalsh(M)))
    return fraction / (learner.loss_coef(n) * top)


def condition_summary(learner: Learner, n: int, k: int, distribution: str) -> dict:
    """Condition numbers of the expected loss's Hessian, plain and Jacobi-rescaled.

    fc: ``E[f f^T]`` (Theorem 3's ``lam W W^T`` for the paper's data; for the original code's
    data of rank ``n - 6``, conditioned on its range, ``hessian_rank`` says so); conv: the
    window covariance C (Appendix A.6); conv-precond: ``C_hat^{-1/2} C C_hat^{-1/2}`` per
    replica. Empty for the autoencoder or continuous kinks.
    """
    if distribution not in ("paper", "code"):
        return {}
    E = curve_second_moment(n, k, distribution)
    M = learner.input_moment(E)
    if M is None:
        return {}
    if M.ndim == 3:
        return {"preconditioned_condition_number": [spd_condition_number(m) for m in M]}
    rank = int(np.count_nonzero(np.diag(kink_second_moment_matrix(n, k, distribution))))
    rank = min(rank, M.shape[0])
    out = {"hessian_condition_number": spd_condition_number(M, rank),
           "jacobi_condition_number": jacobi_condition_number(M, rank)}
    if isinstance(learner, FCLearner):
        out["hessian_rank"] = rank
        floor = np.abs(reachable_inverse(n, k, distribution) - pwl_inverse(n, np.float64)).max()
        out["u_max_error_floor"] = float(floor)
    return out


def reachable_inverse(n: int, k: int, distribution: str) -> np.ndarray:
    """``U Pi`` (n x n): where the fc learner's ``U_hat`` can go from 0 on this data.

    Gradients of ``||U_hat f - p||^2`` are ``(U_hat f - p) f^T``, so the rows of ``U_hat`` stay in
    the span of the curves; with ``Pi`` the projector on it the minimiser reached is ``U Pi``.
    The original code's curves vanish at ``x = 0, 1, 2`` and are straight after ``x = n - 4``
    (rank ``n - 6``), so ``U Pi`` differs from ``U`` by up to 2 (the ``-2`` of Lemma 1's first
    columns): ``max |U_hat - U|`` cannot fall below that. ``Pi = I`` for the paper's data.
    """
    E = kink_second_moment_matrix(n, k, distribution)
    rank = int(np.count_nonzero(np.diag(E)))
    U = pwl_inverse(n, np.float64)
    if rank == n:
        return U
    evals, evecs = np.linalg.eigh(curve_second_moment(n, k, distribution))
    basis = evecs[:, -rank:]
    return U @ basis @ basis.T


__all__ = [
    "AutoencoderLearner", "ConvLearner", "FCLearner", "Learner", "PreconditionedConvLearner",
    "TARGET_FILTER", "condition_summary", "curve_second_moment", "filter_error", "make_learner",
    "reachable_inverse", "sgd_step_size",
]
