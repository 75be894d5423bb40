"""Training one PWL learner over its replicas with :func:`failgeom.training.fit`, its validation
metrics, and the experiment's one cell (one learner per registered experiment) and its merge."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import cast

import numpy as np

from ... import nn
from ...problems.pwl import PWLData, minibatch, sample_pwl_data
from ...results import jsonable
from ...stats import describe
from ...theory.pwl import pwl_inverse, pwl_inverse_apply
from ...training import Curves, first_crossing, fit, null_progress, seed_streams, train_step
from ..base import Cell
from ..pwl_models import (FCLearner, Learner, condition_summary, filter_error, make_learner, reachable_inverse,
                          sgd_step_size)
from .config import PWLConfig
from .specs import SPECS

#: the filter-error thresholds whose first crossing is reported
FILTER_THRESHOLDS = (1e-1, 1e-2, 1e-3)


def data_distribution(name: str, config: PWLConfig) -> str:
    """The distribution a learner trains on: ``config.distribution``, where ``"code"`` means the
    original code's data for that learner (continuous kinks for the autoencoder)."""
    return SPECS[name].code_data if config.distribution == "code" else "paper"


def default_lr(learner: Learner, config: PWLConfig) -> float:
    """The step size used when ``config.lr`` is None (see :class:`PWLConfig`)."""
    if config.lr is not None:
        return float(config.lr)
    if config.optimizer == "adam":
        return SPECS[learner.name].adam_lr
    if learner.name == "autoencoder":
        raise ValueError("the autoencoder has no stability threshold: set lr explicitly for optimizer=sgd")
    return sgd_step_size(learner, config.sgd_step_fraction, config.n, config.k, config.distribution)


def make_optimizer(config: PWLConfig, lr: float):
    """Adam with the config's constants (TensorFlow's defaults in the presets), or plain SGD."""
    if config.optimizer == "adam":
        return nn.Adam(lr, config.adam_beta1, config.adam_beta2, config.adam_eps)
    return nn.SGD(lr)


# ---------------------------------------------------------------------------------------------
# metrics


def reconstruction_errors(rec: np.ndarray, f: np.ndarray, near: np.ndarray) -> dict:
    """RMS of ``rec - f`` per replica, overall, within one step of a kink, and away from kinks.

    ``rec``, ``f``, ``near``: ``(R, M, n)``; returns three ``(R,)`` arrays.
    """
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

    ``rec``, ``p``: ``(R, M, n)``; returns ``(R,)``. 1 when every kink is reproduced; near 0 when
    the reconstruction is smooth at the kinks. For the linear learners ``U W p_hat`` is their own
    kink prediction.
    """
    p_hat = pwl_inverse_apply(rec)
    kinks = p != 0
    return (p_hat * p * kinks).sum(axis=(1, 2)) / (p * p).sum(axis=(1, 2))


def evaluate(learner: Learner, params, data: PWLData, dtype, u_reachable: np.ndarray | None = None) -> dict:
    """Validation metrics per replica ``(R,)``: the loss, reconstruction errors, filter/U errors.

    ``u_reachable``: the fc learner's reachable target ``U Pi`` (:func:`reachable_inverse`), for
    ``u_reachable_max_error = max |U_hat - U Pi|`` beside the original's ``max |U_hat - U|``.
    """
    f = data.val_f.astype(dtype)
    n = f.shape[-1]
    out, _ = learner.model.forward(params, learner.inputs(f))
    target = learner.target(f, data.val_p.astype(dtype))
    loss, _ = nn.losses.squared(out.astype(np.float64), target.astype(np.float64), coef=learner.loss_coef(n))
    metrics = {"val_loss": loss}
    rec = learner.reconstruct(out)
    metrics.update(reconstruction_errors(rec, data.val_f, data.val_near_kink))
    if data.has_kink_vectors:
        metrics["kink_amplitude_ratio"] = kink_amplitude_ratio(rec, data.val_p)
    K = learner.filter(params)
    if K is not None:
        metrics["filter_error"] = filter_error(K)
    if isinstance(learner, FCLearner):
        U_hat = learner.u_hat(params)
        metrics["u_max_error"] = np.abs(U_hat - pwl_inverse(n, np.float64)).max(axis=(1, 2))
        if u_reachable is not None:
            metrics["u_reachable_max_error"] = np.abs(U_hat - u_reachable).max(axis=(1, 2))
    return metrics


# ---------------------------------------------------------------------------------------------
# training


@dataclass
class Trained:
    """What :func:`train_learner` returns: curves, the Figure 6 snapshots and the final state."""

    curves: Curves
    snapshots: dict
    learner: Learner
    params: dict
    data: PWLData
    lr: float


def train_learner(name: str, config: PWLConfig, seed: int = 0, progress=null_progress) -> Trained:
    """Train ``config.replicas`` copies of learner ``name`` on their own fixed training sets.

    Streams (keys start with the experiment name): ``"data"`` (one child per replica),
    ``"init"`` and ``"batches"``.
    """
    config.validate()
    R, n, dtype = config.replicas, config.n, np.dtype(config.dtype)
    experiment = f"pwl-{name}"
    data = sample_pwl_data(seed_streams(seed, experiment, "data").generators(R), n, config.k,
                           data_distribution(name, config), config.train_size, config.val_size)
    learner = make_learner(name, n, config.k, dtype, config.encoder_output_relu)
    learner.prepare(data.train_f)
    params = learner.init(seed_streams(seed, experiment, "init"), R, n, dtype)
    lr = default_lr(learner, config)
    optimizer = make_optimizer(config, lr)
    loss = functools.partial(nn.losses.squared, coef=learner.loss_coef(n))
    rng = np.random.default_rng(seed_streams(seed, experiment, "batches"))
    train_f, train_p = data.train_f.astype(dtype), data.train_p.astype(dtype)
    shown = data.val_f[0, :2]  # replica 0's first two validation curves (Figure 6)
    snapshots = {"steps": [], "decodings": [], "filters": [], "curves": shown.tolist()}
    snap_steps = set(config.snapshots)

    def step(i):
        fb, pb = minibatch(rng, train_f, train_p, config.batch)
        return train_step(learner.model, params, loss, optimizer, learner.inputs(fb), learner.target(fb, pb))

    def snapshot(i):
        if i not in snap_steps:
            return
        out, _ = learner.model.forward(params, learner.inputs(np.broadcast_to(shown.astype(dtype), (R, 2, n))))
        snapshots["steps"].append(i)
        snapshots["decodings"].append(learner.reconstruct(out)[0].tolist())
        K = learner.filter(params)
        snapshots["filters"].append(None if K is None else K[0].tolist())

    u_reachable = None
    if isinstance(learner, FCLearner) and data.has_kink_vectors:
        u_reachable = reachable_inverse(n, config.k, data_distribution(name, config))

    curves = fit(step, config.steps, eval_every=config.eval_every,
                 evaluate=lambda i: evaluate(learner, params, data, dtype, u_reachable), hooks=(snapshot,),
                 progress=progress, desc=experiment, lr=lr)
    return Trained(curves, snapshots, learner, params, data, lr)


# ---------------------------------------------------------------------------------------------
# the cell and the merge


def _stats(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {**describe(v), "per_replica": v.tolist()}


def train_cell(name: str, config: PWLConfig, cell: Cell) -> dict:
    """The experiment's one cell ``(learner,)``: final validation metrics, condition numbers and,
    for the autoencoder, the rounding reference (:func:`rounding_errors`); the validation
    curves and the Figure 6 snapshots. In JSON types (non-finite floats as None).

    The streams are :func:`train_learner`'s, ``seed_streams(cell.seed, "pwl-<name>", ...)``.
    """
    if tuple(cell.key) != (name,):
        raise ValueError(f"pwl-{name} has the one cell ({name!r},), got {cell.key!r}")
    run = train_learner(name, config, cell.seed, cell.progress)
    curves = run.curves
    final = {k: np.asarray(v[-1]) for k, v in curves.values.items()}
    distribution = data_distribution(name, config)
    metrics = {"lr": run.lr, "optimizer": config.optimizer, "data_distribution": distribution}
    for k in ("val_loss", "recon_rmse", "recon_rmse_near_kinks", "recon_rmse_away",
              "kink_amplitude_ratio", "filter_error", "u_max_error", "u_reachable_max_error"):
        if k in final:
            metrics[k] = _stats(final[k])
    if "filter_error" in curves.values:
        fe = curves.array("filter_error")
        for thr in FILTER_THRESHOLDS:
            metrics[f"first_step_filter_error_below_{thr:g}"] = first_crossing(curves.steps, fe, thr, "<")
        metrics["final_filter"] = cast(np.ndarray, run.learner.filter(run.params)).tolist()
    metrics["conditioning"] = condition_summary(run.learner, config.n, config.k, distribution)
    away = np.maximum(final["recon_rmse_away"], 1e-300)
    metrics["kink_error_ratio"] = _stats(final["recon_rmse_near_kinks"] / away)
    if name == "autoencoder":
        metrics["rounding_reference"] = rounding_errors(run.data)
    return jsonable({"metrics": metrics, "curves": {"validation": curves.to_dict(), "snapshots": run.snapshots}})


def rounding_errors(data: PWLData) -> dict:
    """The decoding errors of a reference that rounds every kink off over one step, on the
    validation curves of ``data``: the 3-point moving average of f (f at the two ends).

    A moving average reproduces a linear piece exactly, so its error is zero away from the
    kinks and, within one step of a kink, what rounding the kink costs.
    """
    f = data.val_f
    rounded = f.copy()
    rounded[..., 1:-1] = (f[..., :-2] + f[..., 1:-1] + f[..., 2:]) / 3.0
    errors = reconstruction_errors(rounded, f, data.val_near_kink)
    return {key: _stats(errors[key]) for key in ("recon_rmse_near_kinks", "recon_rmse_away")}


def rounding_reference(name: str, config: PWLConfig, seed: int) -> dict:
    """:func:`rounding_errors` on the learner's own validation curves, drawn again from the
    cell's ``"data"`` stream (so they are the ones the cell evaluated on); the cell itself
    computes it on the curves it drew."""
    data = sample_pwl_data(seed_streams(seed, f"pwl-{name}", "data").generators(config.replicas), config.n,
                           config.k, data_distribution(name, config), config.train_size, config.val_size)
    return rounding_errors(data)


def merge(config: PWLConfig, outputs: dict) -> dict:
    """The one cell's metrics and curves as the experiment's (the learner is the cell key).

    A cell record written before the cells took this shape holds a whole Result (its seed under
    ``"seeds"``, timing the framework now measures) whose merge added the autoencoder's
    rounding reference; that reference is computed here from the record's seed.
    """
    ((name,), output), = outputs.items()
    metrics = output["metrics"]
    if name == "autoencoder" and "rounding_reference" not in metrics:
        metrics = {**metrics, "rounding_reference": rounding_reference(name, config, output["seeds"]["seed"])}
    return {"metrics": metrics, "curves": output["curves"]}


__all__ = [
    "FILTER_THRESHOLDS", "Trained", "data_distribution", "default_lr", "evaluate", "kink_amplitude_ratio",
    "make_optimizer", "merge", "reconstruction_errors", "rounding_errors", "rounding_reference", "train_cell",
    "train_learner",
]
