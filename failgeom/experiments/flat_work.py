"""Counted work and sample complexity of the Sec. 5 learners (paper Figure 7).

The cost claims of Sec. 5 are decided on operations counted from a run's shapes, not on the
clock (:func:`counted_work`), and the sample complexity on the steps a learner needs to put a
given share of the held-out points on the right step (:func:`steps_to_fraction`). The learners
themselves are in :mod:`failgeom.experiments.flat`.
"""

from __future__ import annotations

import numpy as np

from ..training import first_crossing

#: the learners of :mod:`failgeom.experiments.flat`
_LEARNERS = ("smooth", "e2e", "multiclass", "forward-only")

#: exact-step fractions whose first crossing during training is reported (sample complexity)
STEP_FRACTION_LEVELS = (0.5, 0.9, 0.99)
#: operations an Adam update costs per parameter: two moment updates, a square root, a division
#: and the step
ADAM_OPS_PER_PARAMETER = 8


def counted_work(kind: str, config, n_steps: int) -> dict:
    """Operations of one replica of learner ``kind``, counted from the shapes (no clock).

    One operation is a multiply-add or one elementwise evaluation (a normal draw, a comparison
    with a grid value, a ReLU, a sigmoid or its derivative, an exponential). Sampling a training
    point costs ``n`` normal draws, ``n`` multiply-adds for ``r = v*^T x`` and ``n_steps``
    comparisons for ``u(r)``. A dense layer ``a -> b`` costs ``a b`` forward and ``a b`` for its
    weight gradient, plus ``a b`` for its input gradient except in the first layer. A step adds
    :data:`ADAM_OPS_PER_PARAMETER` per parameter.

    Returns
    -------
    dict
        ``per_prediction``, ``per_training_sample`` (sampling, forward, backward),
        ``per_training_step`` (``batch`` samples and the update) and ``parameters``.
    """
    n, K = config.n_inputs, int(n_steps)
    sample = 2 * n + K
    if kind in ("smooth", "forward-only"):
        params = n + 1
        predict = n + K  # the dot product, then K sigmoids (smooth) or K comparisons (u)
        backward = n + (K if kind == "smooth" else 0)  # weight gradient; the surrogate's derivative
    elif kind in ("e2e", "multiclass"):
        out = 1 if kind == "e2e" else K
        widths = (n,) + tuple(config.hidden) + (out,)
        macs = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        relus = sum(config.hidden)
        params = macs + sum(widths[1:])
        predict = macs + relus + (K if kind == "multiclass" else 0)  # argmax over the classes
        backward = 2 * macs - n * widths[1] + relus + (K if kind == "multiclass" else 0)  # softmax
    else:
        raise ValueError(f"learner must be one of {_LEARNERS}, got {kind!r}")
    per_sample = sample + predict + backward
    return {"per_prediction": int(predict), "per_training_sample": int(per_sample),
            "per_training_step": int(config.batch * per_sample + ADAM_OPS_PER_PARAMETER * params),
            "parameters": int(params)}


def steps_to_fraction(curves: dict, level: float) -> list:
    """Per replica, the first evaluation step whose exact-step fraction is at least ``level``
    (None if none was)."""
    values = np.asarray(curves["exact_step_fraction"], dtype=np.float64)  # (evaluations, R)
    return first_crossing(curves["steps"], values, level, ">=")
