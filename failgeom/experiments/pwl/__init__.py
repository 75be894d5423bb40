"""Piecewise-linear curves: architecture and conditioning (paper Sec. 4.1, Figure 6; talk part 1).

A curve ``f = W p`` (``W[i, j] = [i - j + 1]_+``) is to be mapped back to its sparse kink vector
``p = U f`` with ``U = W^{-1}`` the second-difference filter ``(1, -2, 1)`` (Lemma 1). Four
learners, registered as four experiments (their descriptions and presets in the table :data:`SPECS`):

``pwl-fc`` (4.1.1)
    one linear layer ``p_hat = U_hat f`` (n x n, init 0). The Hessian is ``E[f f^T]`` (``lam W
    W^T`` for the paper's data) with condition number Omega(n^3.5) (Theorem 3): slow, misses
    the kinks.
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

The ``paper`` presets follow the original code: its data, TensorFlow's default Adam (beta1 0.9,
beta2 0.999, eps 1e-8) at its rates, batch sizes and iterations. The talk slide says "Return
``C^{1/2} x``"; regressing on ``F C^{-1/2}`` predicts ``F C^{-1/2} x``, i.e. the filter
``C^{-1/2} x``, which is what is returned here. The metrics include the condition number after
the best diagonal (Jacobi) rescaling, which bounds what a diagonal method such as Adam/AdaGrad
can do to the geometry (the talk's point).

Modules: :mod:`failgeom.experiments.pwl_models` (the models and their Hessians, shared with
``pwl-scaling``), :mod:`.config` (the config), :mod:`.specs` (the table), :mod:`.run` (training,
metrics, the cell and its merge), :mod:`.figures`.
"""

from __future__ import annotations

from .. import register
from ..base import Cell, Experiment
from ..pwl_models import (AutoencoderLearner, ConvLearner, FCLearner, Learner, PreconditionedConvLearner,
                          TARGET_FILTER, condition_summary, curve_second_moment, filter_error, make_learner,
                          reachable_inverse, sgd_step_size)
from .config import TF_ADAM, PWLConfig
from .figures import combined_figure, figure, summary
from .run import (Trained, data_distribution, default_lr, evaluate, kink_amplitude_ratio, make_optimizer, merge,
                  reconstruction_errors, rounding_errors, rounding_reference, train_cell, train_learner)
from .specs import LEARNERS, SPECS, LearnerSpec

# one cell per experiment, named by its learner; one cell function for all four (run.train_cell)


def run_learner(config: PWLConfig, cell: Cell) -> dict:
    """The cell of ``pwl-<learner>``: train that learner."""
    return train_cell(cell.experiment.removeprefix("pwl-"), config, cell)


def fc_cells(config: PWLConfig) -> list[tuple]:
    return [("fc",)]


def conv_cells(config: PWLConfig) -> list[tuple]:
    return [("conv",)]


def conv_precond_cells(config: PWLConfig) -> list[tuple]:
    return [("conv-precond",)]


def autoencoder_cells(config: PWLConfig) -> list[tuple]:
    return [("autoencoder",)]


FC = register(Experiment(
    name="pwl-fc", description=SPECS["fc"].description, presets=SPECS["fc"].presets, tiny=SPECS["fc"].tiny,
    cells=fc_cells, run_cell=run_learner, merge=merge, figure=figure, summary=summary, family=3,
    paper_ref=SPECS["fc"].paper_ref,
))

CONV = register(Experiment(
    name="pwl-conv", description=SPECS["conv"].description, presets=SPECS["conv"].presets,
    tiny=SPECS["conv"].tiny, cells=conv_cells, run_cell=run_learner, merge=merge, figure=figure, summary=summary,
    family=3, paper_ref=SPECS["conv"].paper_ref,
))

CONV_PRECOND = register(Experiment(
    name="pwl-conv-precond", description=SPECS["conv-precond"].description,
    presets=SPECS["conv-precond"].presets, tiny=SPECS["conv-precond"].tiny, cells=conv_precond_cells,
    run_cell=run_learner, merge=merge, figure=figure, summary=summary, family=3,
    paper_ref=SPECS["conv-precond"].paper_ref,
))

AUTOENCODER = register(Experiment(
    name="pwl-autoencoder", description=SPECS["autoencoder"].description, presets=SPECS["autoencoder"].presets,
    tiny=SPECS["autoencoder"].tiny, cells=autoencoder_cells, run_cell=run_learner, merge=merge,
    figure=figure, summary=summary, family=3, paper_ref=SPECS["autoencoder"].paper_ref,
))

#: the four registered experiments, by learner name
EXPERIMENTS = {"fc": FC, "conv": CONV, "conv-precond": CONV_PRECOND, "autoencoder": AUTOENCODER}

__all__ = [
    "AUTOENCODER", "AutoencoderLearner", "CONV", "CONV_PRECOND", "ConvLearner", "EXPERIMENTS", "FC", "FCLearner",
    "LEARNERS", "Learner", "LearnerSpec", "PWLConfig", "PreconditionedConvLearner", "SPECS", "TARGET_FILTER",
    "TF_ADAM", "Trained", "autoencoder_cells", "combined_figure", "condition_summary", "conv_cells",
    "conv_precond_cells", "curve_second_moment", "data_distribution", "default_lr", "evaluate", "fc_cells",
    "figure", "filter_error", "kink_amplitude_ratio", "make_learner", "make_optimizer", "merge",
    "reachable_inverse", "reconstruction_errors", "rounding_errors", "rounding_reference", "run_learner",
    "sgd_step_size", "summary", "train_cell", "train_learner",
]
