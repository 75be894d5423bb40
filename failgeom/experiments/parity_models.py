"""The networks and trainers shared by the parity experiments (registers no experiment).

The paper's parity network and its trainer (:mod:`.parity`, :mod:`.orthogonal_parity`); the
elimination learner's trials over random parities (:mod:`.parity_gf2`, :mod:`.sparse_parity`);
the sparse-parity network, its initialisation and its trainer with the first-learned-step hook
(:mod:`.sparse_parity`, :mod:`.sparse_parity_variance`, :mod:`.staircase_parity`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import gf2, nn
from ..problems.parity import random_subsets, sample_parity
from ..problems.sparse_parity import k_subsets, sample_parity_bits
from ..training import StopTraining, Streams, fit, null_progress, train, train_step

# ---------------------------------------------------------------------------------------------
# the paper's parity network (Sec. 2.1)


def training_memory_bytes(d: int, width_factor: int, replicas: int, batch: int, dtype: str) -> int:
    """Estimated peak bytes of training R parity networks: parameters and gradients, and a few
    ``(R, batch, width)`` activation arrays of one step."""
    item = np.dtype(dtype).itemsize
    m = width_factor * d
    params = replicas * (d * m + 2 * m + 1) * item
    activations = replicas * batch * (6 * m + 3 * d) * item
    return 3 * params + activations



def parity_network(d: int, width_factor: int = 10) -> nn.Sequential:
    """The paper's network for parities: Dense(d -> width_factor * d) ReLU Dense(-> 1)."""
    return nn.Sequential([nn.Dense(width_factor * d), nn.ReLU(), nn.Dense(1)])


def accuracy(score: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-replica fraction of ``y * score > 0`` (the paper's accuracy), shape ``(R,)``."""
    return np.mean(y * score > 0, axis=(1, 2))


def train_parity(d: int, streams: Streams, *, replicas: int, steps: int, batch: int, lr: float,
                 eval_every: int, eval_size: int, width_factor: int = 10, subset_size: int | None = None,
                 dtype="float32", extra_metrics=None, progress=null_progress, desc: str = ""):
    """Train ``replicas`` parity networks in dimension d with hinge loss and SGD (Sec. 2.1).

    Parameters
    ----------
    d : int
    streams : training.Streams
        The run's stream node; its children ``"target"`` and ``"init"`` give one stream per
        replica, ``"data"`` and ``"eval"`` one stream each for the training and evaluation
        samples ``(R, B, d)``.
    replicas, steps, batch, lr, eval_every, eval_size, width_factor, subset_size, dtype
        As :class:`ParityConfig`.
    extra_metrics : callable, optional
        ``extra_metrics(params) -> dict`` of per-replica ``(R,)`` metrics added at each evaluation.

    Returns
    -------
    curves : training.Curves
        ``train_loss``, ``accuracy``, ``eval_loss`` (and the extra metrics) per replica.
    subsets : ndarray (R, d) of bool
        The target subsets ``v*``.
    """
    R = replicas
    subsets = random_subsets(streams.child("target").generators(R), d, subset_size)
    model = parity_network(d, width_factor)
    params, _ = model.init(streams.child("init").generators(R), R, (d,), dtype)
    data_rng = np.random.default_rng(streams.child("data"))
    eval_rng = np.random.default_rng(streams.child("eval"))
    optimizer = nn.SGD(lr)

    def step(i):
        x, y = sample_parity(data_rng, subsets, batch, dtype)
        return train_step(model, params, nn.losses.hinge, optimizer, x, y)

    def evaluate(i):
        x, y = sample_parity(eval_rng, subsets, eval_size, dtype)
        score, _ = model.forward(params, x)
        loss, _ = nn.losses.hinge(score, y)
        metrics = {"accuracy": accuracy(score, y), "eval_loss": loss}
        if extra_metrics is not None:
            metrics.update(extra_metrics(params))
        return metrics

    curves = fit(step, steps, eval_every=eval_every, evaluate=evaluate, progress=progress,
                 desc=desc or f"parity d={d}", lr=lr)
    return curves, subsets



# ---------------------------------------------------------------------------------------------
# Gaussian elimination over GF(2) on random parities


def recover_parities(n: int, streams, trials: int, *, k: int | None = None, extra: int = 10,
                     max_extra: int = 64, noise: float = 0.0) -> dict:
    """Draw ``trials`` random parities of n bits and learn each by elimination.

    Parameters
    ----------
    n : int
        Number of bits.
    streams : Streams
        Seed-stream node of this set of trials (children "target", "data", "noise").
    trials : int
        Number of random parities.
    k : int, optional
        Subset size; None draws every coordinate with probability 1/2 (the paper's dense case).
    extra, max_extra : int
        The fixed budget is n + ``extra`` samples; ``n + max_extra`` are drawn to count the
        samples needed to reach rank n.
    noise : float
        Probability that a label is flipped (independently).

    Returns
    -------
    dict
        Per trial: ``samples_needed`` (None if n + max_extra did not span), ``weights`` (subset
        sizes), ``outcome`` of the fixed-budget solve ("correct"; "inconsistent": no subset fits
        every label; "rank_deficient": several fit; "wrong": one fits and it is not the target),
        ``correct_at_needed`` (the solve with exactly ``samples_needed`` samples), and the wall
        seconds of the two solves (``seconds_budget``, ``seconds_needed``).
    """
    target = streams.child("target").generators(trials)
    subsets = random_subsets(target, n) if k is None else k_subsets(target, n, k)
    data = np.random.default_rng(streams.child("data"))
    flips = np.random.default_rng(streams.child("noise"))
    out = {"samples_needed": [], "weights": subsets.sum(axis=1).tolist(), "outcome": [],
           "correct_at_needed": [], "seconds_budget": [], "seconds_needed": []}
    for subset in subsets:  # one whole solve per trial
        A, b = sample_parity_bits(data, subset, n + max_extra)
        if noise > 0:
            b = b ^ (flips.random(b.size) < noise).astype(np.uint8)
        truth = subset.astype(np.uint8)
        start = time.perf_counter()
        needed = gf2.spanning_prefix(A)
        if needed is not None:
            at_needed = gf2.solve(A[:needed], b[:needed])
            out["correct_at_needed"].append(bool(at_needed.unique and np.array_equal(at_needed.solution, truth)))
        else:
            out["correct_at_needed"].append(False)
        out["seconds_needed"].append(time.perf_counter() - start)
        start = time.perf_counter()
        sol = gf2.solve(A[: n + extra], b[: n + extra])
        out["seconds_budget"].append(time.perf_counter() - start)
        out["samples_needed"].append(needed)
        if not sol.consistent:
            out["outcome"].append("inconsistent")
        elif not sol.unique:
            out["outcome"].append("rank_deficient")
        else:
            out["outcome"].append("correct" if np.array_equal(sol.solution, truth) else "wrong")
    return out



# ---------------------------------------------------------------------------------------------
# the sparse-parity network and its training


#: the training losses of the sparse-parity network: hinge, and the square loss 0.5 (out - y)^2
LOSSES = {"hinge": nn.losses.hinge, "square": lambda out, y: nn.losses.squared(out, y, coef=0.5)}


def sparse_network(width: int, init: str = "truncated_normal") -> nn.Sequential:
    """Dense(n -> width) ReLU Dense(width -> 1), the Dense layers initialised by ``init``."""
    return nn.Sequential([nn.Dense(width, init=init), nn.ReLU(), nn.Dense(1, init=init)])


def init_params(model: nn.Sequential, rngs, n: int, width: int, init: str, dtype) -> list:
    """Initial parameters, one generator per replica. ``"uniform"`` draws every weight and bias
    from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (:class:`nn.Dense`'s ``init="uniform"``);
    ``"truncated_normal"`` is :class:`nn.Dense`'s default."""
    R = len(rngs)
    if init == "truncated_normal":
        params, _ = model.init(rngs, R, (n,), dtype)
        return params
    # the layers draw in turn from each replica's own generator (W1, b1, W2, b2), not from the
    # per-layer children of Sequential.init: the stored runs' initial weights
    params, shape = [], (n,)
    for layer in sparse_network(width, "uniform").layers:
        p, shape = layer.init(rngs, R, shape, dtype)
        params.append(p)
    return params


def check_chunks(eval_size: int, first: int = 64) -> list[int]:
    """Chunk sizes of one accuracy check: ``first``, then doubling the total, summing to eval_size."""
    sizes, total = [], 0
    while total < eval_size:
        sizes.append(min(max(first, total), eval_size - total))
        total += sizes[-1]
    return sizes


def support_ratio(W1: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """Per replica, the mean |weight| of the first layer's rows on the support over that off it.

    ``W1`` is ``(R, n, width)`` and ``subsets`` ``(R, n)`` boolean; about 1 at initialisation, it
    grows as SGD concentrates the first layer on the k relevant bits (the hidden progress of
    Barak et al. 2022, visible before the accuracy moves).
    """
    mass = np.abs(W1).mean(axis=2)
    on = (mass * subsets).sum(axis=1) / subsets.sum(axis=1)
    off = (mass * ~subsets).sum(axis=1) / np.maximum((~subsets).sum(axis=1), 1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zeroed (diverged) replica: NaN
        return on / off


class FirstHit:
    """A :func:`failgeom.training.fit` hook: the first checked step at which each replica's accuracy
    on a fresh sample of ``eval_size`` inputs is at least ``target``.

    The check draws the sample in chunks (64 inputs, then doubling) and drops a replica as soon
    as its errors exceed ``floor((1 - target) eval_size)``, so the outcome is exactly that of the
    whole sample while a replica at chance costs only the first chunk. Checks run at step 1 and
    then at ``i + max(1, floor(growth i))``; learned replicas are no longer checked. Training stops
    (unless ``stop`` is false) once, in some group of ``groups`` (one label per replica; default
    one group), a fraction ``stop_fraction`` of the replicas has learned; the others are then
    right-censored at that step (with several groups, once one group has learned entirely; see
    :meth:`done`). Replicas marked in ``diverged`` are never checked again (a
    non-finite network would compare as right). With ``watch`` (``(ratio_fn, threshold)``) the first check at
    which ``ratio_fn() >= threshold`` is recorded per replica in ``progress`` (-1 if never).
    """

    def __init__(self, model, params, subsets, rng, *, eval_size: int, target: float, growth: float, dtype,
                 stop: bool = True, groups=None, stop_fraction: float = 1.0, watch=None):
        self.model, self.params, self.subsets, self.rng, self.dtype = model, params, subsets, rng, dtype
        self.stop, self.stop_fraction, self.watch = stop, stop_fraction, watch
        R = subsets.shape[0]
        self.groups = np.zeros(R, dtype=np.int64) if groups is None else np.asarray(groups)
        self.chunks = check_chunks(eval_size)
        self.allowed = int(np.floor((1.0 - target) * eval_size + 1e-9))
        self.growth = growth
        self.first = np.full(R, -1, dtype=np.int64)
        self.progress = np.full(R, -1, dtype=np.int64)
        self.diverged = np.zeros(R, dtype=bool)  # never checked again, never learned
        self.next_check = 1

    def passes(self, idx: np.ndarray) -> np.ndarray:
        """Which of the replicas ``idx`` reach the target on one fresh check sample."""
        errors = np.zeros(idx.size, dtype=np.int64)
        alive = np.arange(idx.size)
        for size in self.chunks:
            sub = idx[alive]
            x, y = sample_parity(self.rng, self.subsets[sub], size, self.dtype)
            score, _ = self.model.forward(nn.utils.replica_slice(self.params, sub), x)
            errors[alive] += np.sum(y * score <= 0, axis=(1, 2))
            alive = alive[errors[alive] <= self.allowed]
            if alive.size == 0:
                break
        return errors <= self.allowed

    def done(self) -> bool:
        """Whether the run may stop: with one group, ``stop_fraction`` of it learned; with several
        (a grid of learning rates), one group learned entirely, so that the smallest of the
        groups' medians and its bootstrap are fully observed."""
        learned = self.first >= 0
        labels = np.unique(self.groups)
        fraction = self.stop_fraction if labels.size == 1 else 1.0
        return any(learned[self.groups == g].mean() >= fraction - 1e-12 for g in labels)

    def __call__(self, i: int) -> None:
        if i < self.next_check:
            return
        self.next_check = i + max(1, int(self.growth * i))
        if self.watch is not None:
            ratio_fn, threshold = self.watch
            self.progress[(self.progress < 0) & (ratio_fn() >= threshold)] = i
        todo = np.flatnonzero((self.first < 0) & ~self.diverged)
        if todo.size:
            self.first[todo[self.passes(todo)]] = i
        if self.stop and self.done():
            raise StopTraining


@dataclass(frozen=True)
class SparseTraining:
    """The settings of :func:`train_parity_cell`: the network, SGD, the first-learned check and
    the recorded curve (the meanings are :class:`.sparse_parity.SparseParityConfig`'s fields of
    the same names, and so are the defaults of the check and the curve)."""

    replicas: int
    width: int
    init: str
    batch: int
    lr: float
    loss: str
    eval_every: int
    dtype: str
    eval_size: int = 8192
    target_accuracy: float = 1.0
    check_growth: float = 0.02
    curve_size: int = 512
    stop_fraction: float = 1.0
    progress_ratio: float = 1.5


def train_sparse_parity(config: SparseTraining, n: int, k: int, streams, max_steps: int, *,
                        extra_metrics=None, stop_when_learned: bool = True, progress=null_progress):
    """Train ``config.replicas`` networks at ``config.batch`` and ``config.lr`` on random
    k-parities of n bits until each has learned (:func:`train_parity_cell` with its defaults).

    Returns ``(first, curves, subsets)``: the first learned step per replica (-1 if censored at
    ``max_steps``), the accuracy curve, the subsets.
    """
    hit, curves, subsets = train_parity_cell(config, n, k, streams, max_steps, extra_metrics=extra_metrics,
                                             stop_when_learned=stop_when_learned, progress=progress)
    return hit.first, curves, subsets


def train_parity_cell(config: SparseTraining, n: int, k: int, streams, max_steps: int, *,
                      extra_metrics=None, stop_when_learned: bool = True, progress=null_progress,
                      setting: dict | None = None, hidden_progress: bool = False):
    """Train networks on random k-parities of n bits until each has learned.

    ``streams`` feeds the targets and initial weights (one child per replica each), the training
    minibatches, the check samples and the curve samples. ``setting`` (from
    :meth:`.sparse_parity.SparseParityConfig.protocol`) gives the replicas, batch, per-replica learning rates
    and lr groups; by default ``config.replicas`` replicas at ``config.batch`` and ``config.lr``.
    ``extra_metrics(params) -> dict`` adds per-replica metrics to the curve; with
    ``stop_when_learned`` training ends at the rule of :class:`FirstHit` (``config.stop_fraction``
    of a group learned). ``hidden_progress`` adds the support ratio (:func:`support_ratio`) and
    ``||W1_t - W1_0||_inf`` to the curve and records when the ratio first reaches
    ``config.progress_ratio``. Returns ``(hit, curves, subsets)``: the :class:`FirstHit` hook
    (``hit.first``: the first learned step per replica, -1 if censored where the run stopped;
    ``hit.progress``: the hidden-progress step, -1 if never or not watched), the curves, the
    subsets.
    """
    dtype = config.dtype
    if setting is None:
        R, batch, lr, groups, fraction = config.replicas, config.batch, config.lr, None, 1.0
    else:
        R, batch, lr, groups = setting["replicas"], setting["batch"], setting["lr"], setting["groups"]
        fraction = config.stop_fraction
    subsets = k_subsets(streams.child("target").generators(R), n, k)
    model = sparse_network(config.width)
    params = init_params(model, streams.child("init").generators(R), n, config.width, config.init, dtype)
    data_rng = np.random.default_rng(streams.child("data"))
    curve_rng = np.random.default_rng(streams.child("curve"))
    W1_0 = params[0]["W"].copy() if hidden_progress else None
    watch = ((lambda: support_ratio(params[0]["W"], subsets)), config.progress_ratio) if hidden_progress else None
    hit = FirstHit(model, params, subsets, np.random.default_rng(streams.child("check")),
                   eval_size=config.eval_size, target=config.target_accuracy, growth=config.check_growth,
                   dtype=dtype, stop=stop_when_learned, groups=groups, stop_fraction=fraction, watch=watch)

    def evaluate(p):
        x, y = sample_parity(curve_rng, subsets, config.curve_size, dtype)
        score, _ = model.forward(p, x)
        metrics = {"accuracy": accuracy(score, y)}
        if hidden_progress:
            metrics["support_ratio"] = support_ratio(p[0]["W"], subsets)
            metrics["w1_change_inf"] = np.abs(p[0]["W"] - W1_0).max(axis=(1, 2))
        if extra_metrics is not None:
            metrics.update(extra_metrics(p))
        return metrics

    optimizer = nn.SGD(lr)
    step_fn = None if setting is None else _freezing_step(hit, optimizer)
    curves = train(model, params, LOSSES[config.loss], optimizer,
                   lambda: sample_parity(data_rng, subsets, batch, dtype), max_steps,
                   eval_every=config.eval_every, evaluate=evaluate, hooks=[hit], progress=progress,
                   desc=f"sparse-parity k={k} n={n}", step_fn=step_fn)
    return hit, curves, subsets


def _freezing_step(hit: FirstHit, optimizer: nn.SGD):
    """A train step that, where a replica's loss turns non-finite (a learning rate of the grid too
    large for n), zeroes that replica's parameters and learning rate and marks it diverged in
    ``hit``: it never learns, so it stays right-censored where the cell stops, instead of ending
    the whole cell."""
    def step(model, params, loss, opt, x, target):
        value = train_step(model, params, loss, opt, x, target)
        bad = ~np.isfinite(value)
        if bad.any():
            hit.diverged |= bad
            optimizer.lr = np.where(hit.diverged, 0.0, np.broadcast_to(optimizer.lr, bad.shape))
            for layer in params:
                for a in layer.values():
                    a[bad] = 0
            value = np.where(bad, 0.0, value)
        return value
    return step

