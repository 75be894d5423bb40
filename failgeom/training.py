"""The training loop shared by the experiments: fresh minibatches, periodic evaluation, curves.

One call of :func:`train_step` is one batched computation over all R replicas (forward, loss,
backward, update); :func:`train` repeats it, evaluates every ``eval_every`` steps and records
per-replica curves. Randomness comes from :func:`seed_streams`, so the same config and seed give
the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; carries the step and the learning rate."""

    def __init__(self, step: int, lr, replicas):
        self.step, self.lr, self.replicas = step, lr, list(replicas)
        lr_text = np.array2string(np.asarray(lr), precision=4) if np.ndim(lr) else f"{float(lr):g}"
        super().__init__(
            f"the training loss became non-finite at step {step} (replicas {self.replicas}) "
            f"with learning rate {lr_text}; lower the learning rate"
        )


def seed_streams(seed: int, *key: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of one part of an experiment: the user's seed plus a fixed key.

    Keys name the part (for example a dimension d), so one part's numbers do not depend on
    which other parts the config runs.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))


@dataclass
class Curves:
    """Per-replica curves: ``values[name][i]`` is an (R,) list at ``steps[i]``."""

    steps: list[int] = field(default_factory=list)
    values: dict[str, list[list[float]]] = field(default_factory=dict)

    def record(self, step: int, **metrics) -> None:
        self.steps.append(int(step))
        for name, value in metrics.items():
            self.values.setdefault(name, []).append(np.asarray(value, dtype=np.float64).tolist())

    def array(self, name: str) -> np.ndarray:
        """The curve ``name`` as an array ``(n_points, R)``."""
        return np.asarray(self.values[name], dtype=np.float64)

    def to_dict(self) -> dict:
        return {"steps": list(self.steps), **{k: v for k, v in self.values.items()}}


class _NullProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def null_progress(total: int, desc: str = "") -> _NullProgress:
    """A progress factory that shows nothing (the default for library calls)."""
    return _NullProgress()


def train_step(model, params, loss, optimizer, x, target) -> np.ndarray:
    """One SGD step for all replicas at once; returns the per-replica loss ``(R,)``."""
    out, cache = model.forward(params, x)
    value, dout = loss(out, target)
    _, grads = model.backward(params, cache, dout, need_dx=False)
    optimizer.step(params, grads)
    return value


def train(model, params, loss, optimizer, sample: Callable, steps: int, *, eval_every: int,
          evaluate: Callable, progress: Callable = null_progress, desc: str = "train",
          step_fn: Callable | None = None) -> Curves:
    """Train R replicas for ``steps`` steps on fresh minibatches.

    Parameters
    ----------
    model, params, loss, optimizer
        A :mod:`failgeom.nn` model, its parameter tree (updated in place), a loss from
        :mod:`failgeom.nn.losses` and an optimizer from :mod:`failgeom.nn.optim`.
    sample : callable
        ``sample() -> (x, target)``, a fresh minibatch with the replica axis.
    steps, eval_every : int
        Number of steps and the evaluation interval; evaluation also runs at step 0 and at the
        last step.
    evaluate : callable
        ``evaluate(params) -> dict`` of per-replica ``(R,)`` metrics on held-out samples.
    progress : callable
        ``progress(total, desc)`` returning an object with ``update(n)`` and ``close()``.
    step_fn : callable, optional
        Replaces :func:`train_step` (same signature), e.g. for a non-gradient update rule.

    Returns
    -------
    Curves
        ``train_loss`` (mean training loss since the previous evaluation) and every metric of
        ``evaluate``, per replica, at the evaluation steps.

    Raises
    ------
    NonFiniteLossError
        As soon as a replica's training loss is NaN or infinite.
    """
    step_fn = step_fn or train_step
    curves = Curves()
    curves.record(0, train_loss=np.full(_replicas(params), np.nan), **evaluate(params))
    running, count = 0.0, 0
    bar = progress(steps, desc)
    try:
        for step in range(1, steps + 1):
            x, target = sample()
            value = step_fn(model, params, loss, optimizer, x, target)
            if not np.all(np.isfinite(value)):
                raise NonFiniteLossError(step, getattr(optimizer, "lr", np.nan),
                                         np.flatnonzero(~np.isfinite(value)).tolist())
            running = running + value
            count += 1
            if step % eval_every == 0 or step == steps:
                curves.record(step, train_loss=running / count, **evaluate(params))
                running, count = 0.0, 0
            bar.update(1)
    finally:
        bar.close()
    return curves


def _replicas(params) -> int:
    from .nn._util import tree_leaves

    leaves = tree_leaves(params)
    return leaves[0].shape[0] if leaves else 1
