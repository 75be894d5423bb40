"""Losses over a replica axis: each returns ``(value, d value / d out)``.

``out`` is ``(R, B, ...)``; a target may carry the replica axis or be shared, ``(B, ...)``, and is
broadcast. ``reduction`` is ``"mean"`` over the batch (value ``(R,)``, the training loss),
``"sum"`` (value ``(R,)``) or ``"none"`` (value ``(R, B)``); with ``"sum"`` and ``"none"`` the
gradient's slice for example i is the gradient of example i's own loss, which is what
per-example gradients need.
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import choice, finite_float

REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_example: np.ndarray, grad: np.ndarray, reduction: str):
    if reduction == "mean":
        B = per_example.shape[1]
        return per_example.mean(axis=1), grad / np.asarray(B, dtype=grad.dtype)
    if reduction == "sum":
        return per_example.sum(axis=1), grad
    if reduction == "none":
        return per_example, grad
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_out(out, min_ndim: int = 2, name: str = "out", reduction: str = "mean") -> np.ndarray:
    """``out`` as a real floating array with at least ``min_ndim`` axes; ``reduction`` known."""
    if reduction not in REDUCTIONS:
        choice(reduction, "reduction", REDUCTIONS)
    out = np.asarray(out)
    if out.dtype.kind != "f":
        raise TypeError(f"{name} must hold real floats (float32 or float64), got dtype {out.dtype}")
    if out.ndim < min_ndim:
        raise ValueError(f"{name} must have shape (R, B, ...), got {out.shape}")
    return out


def _check_target(target, out: np.ndarray, name: str):
    """``target`` must hold real numbers and broadcast to ``out``'s shape without enlarging it
    (no silent (R, B, B))."""
    kind = target.dtype.kind if isinstance(target, np.ndarray) else np.asarray(target).dtype.kind
    if kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got {type(target).__name__}"
                        + (f" of dtype {target.dtype}" if isinstance(target, np.ndarray) else ""))
    shape = np.shape(target)
    try:
        ok = np.broadcast_shapes(out.shape, shape) == out.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {shape} does not broadcast to the output's shape {out.shape} "
                         f"(give (R, B, ...) or a shared (B, ...) with the output's trailing axes)")
    return target


def hinge(score, y, reduction: str = "mean"):
    """Hinge loss ``max(0, 1 - y * score)`` with labels ``y`` in {-1, +1} (paper Sec. 2.1, 3.1).

    The subgradient at the hinge point is taken as 0.

    Parameters
    ----------
    score : ndarray, shape (R, B) or (R, B, 1)
        Trailing axes beyond B are summed per example.
    y : array_like
        Labels in {-1, +1}, broadcasting against ``score`` (e.g. ``(R, B, 1)`` or ``(B, 1)``).
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    value : ndarray, shape (R,), or (R, B) for "none"
    grad : ndarray, shape of ``score``
        ``d value / d score``.

    Raises
    ------
    TypeError
        If ``score`` is not real floating or ``y`` not real.
    ValueError
        If ``score`` has fewer than 2 axes, ``y`` does not broadcast to its shape, or
        ``reduction`` is unknown.
    """
    score = _check_out(score, name="score", reduction=reduction)
    y = _check_target(y, score, "y")
    margin = 1.0 - y * score
    active = margin > 0
    per = np.maximum(margin, 0).astype(score.dtype, copy=False)  # propagates NaN
    grad = np.where(active, -y, 0).astype(score.dtype, copy=False)
    per = per.reshape(per.shape[:2] + (-1,)).sum(axis=2) if per.ndim > 2 else per
    return _reduce(per, grad, reduction)


def squared(out, target, reduction: str = "mean", coef: float = 1.0):
    """Squared error ``coef * sum_coords (out - target)^2`` per example.

    ``coef=1`` is the PWL regression loss of Sec. 4 (``mean_batch sum_coords``); ``coef=0.5`` is
    Theorem 1's square loss ``0.5 (yhat - y)^2``.

    Parameters
    ----------
    out : ndarray, shape (R, B, ...)
    target : array_like
        Broadcasting against ``out``: ``(R, B, ...)`` or shared ``(B, ...)``.
    reduction : {"mean", "sum", "none"}
    coef : float

    Returns
    -------
    value : ndarray, shape (R,), or (R, B) for "none"
    grad : ndarray, shape of ``out``
        ``d value / d out``.

    Raises
    ------
    TypeError
        If ``out`` is not real floating, ``target`` not real or ``coef`` not a number.
    ValueError
        If ``out`` has fewer than 2 axes, ``target`` does not broadcast to its shape,
        ``reduction`` is unknown or ``coef`` is not finite.
    """
    if type(coef) is not float or not math.isfinite(coef):
        finite_float(coef, "coef")  # checked, not converted: a NumPy scalar keeps its dtype
    out = _check_out(out, reduction=reduction)
    diff = out - _check_target(target, out, "target")
    per = coef * (diff * diff)
    per = per.reshape(per.shape[:2] + (-1,)).sum(axis=2) if per.ndim > 2 else per
    grad = (2.0 * coef) * diff
    return _reduce(per, grad.astype(out.dtype, copy=False), reduction)


def softmax(logits, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``, shifted by the max so that it never overflows.

    Parameters
    ----------
    logits : ndarray
    axis : int

    Returns
    -------
    ndarray, shape of ``logits``
    """
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def softmax_cross_entropy(logits, labels, reduction: str = "mean"):
    """Cross-entropy of ``softmax(logits)`` against integer class ``labels``.

    Parameters
    ----------
    logits : ndarray, shape (R, B, K)
    labels : int array_like, shape (R, B) or (B,)
        Values in ``0..K-1``.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    value : ndarray, shape (R,), or (R, B) for "none"
    grad : ndarray, shape (R, B, K)
        ``d value / d logits``.

    Raises
    ------
    TypeError
        If ``logits`` are not real floats or ``labels`` are not integers.
    ValueError
        If ``logits`` is not 3-D, ``labels`` is not ``(R, B)`` or ``(B,)``, a label is outside ``0..K-1`` or ``reduction`` is
        unknown.
    """
    logits = _check_out(logits, 3, name="logits", reduction=reduction)
    if logits.ndim != 3:
        raise ValueError(f"logits must have shape (R, B, K), got {logits.shape}")
    R, B, K = logits.shape
    labels = np.asarray(labels)
    if labels.shape not in ((R, B), (B,)):
        raise ValueError(f"labels must have shape (R, B) = {(R, B)} or ({B},), got {labels.shape}")
    labels = np.broadcast_to(labels, (R, B))
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"labels must lie in 0..{K - 1}")
    z = logits - logits.max(axis=-1, keepdims=True)
    logsum = np.log(np.exp(z).sum(axis=-1))
    picked = np.take_along_axis(z, labels[..., None], axis=-1)[..., 0]
    per = logsum - picked
    grad = np.exp(z - logsum[..., None])
    np.put_along_axis(grad, labels[..., None], np.take_along_axis(grad, labels[..., None], -1) - 1, -1)
    return _reduce(per.astype(logits.dtype, copy=False), grad.astype(logits.dtype, copy=False), reduction)


def expected_negative_gain(logits, z, reduction: str = "mean"):
    """Negative expected gain ``-z^T softmax(logits)`` (the stocks objective, paper Sec. 3.2).

    With ``z = e_y`` this is the decomposition estimator's loss ``-e_y^T N_w(x)``.

    Parameters
    ----------
    logits : ndarray, shape (R, B, K)
    z : array_like
        Gains, broadcasting against ``logits`` (e.g. ``(R, B, K)``).
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    value : ndarray, shape (R,), or (R, B) for "none"
    grad : ndarray, shape (R, B, K)
        ``d value / d logits``.

    Raises
    ------
    TypeError
        If ``logits`` are not real floats or ``z`` not real.
    ValueError
        If ``logits`` has fewer than 3 axes, ``z`` does not broadcast to its shape, or
        ``reduction`` is unknown.
    """
    logits = _check_out(logits, 3, name="logits", reduction=reduction)
    z = _check_target(z, logits, "z")
    p = softmax(logits)
    pz = p * z
    gain = pz.sum(axis=-1)
    grad = -(pz - p * gain[..., None])
    return _reduce((-gain).astype(logits.dtype, copy=False), grad.astype(logits.dtype, copy=False), reduction)
