"""asv-style benchmarks of the sparse-parity experiments: one SGD step of the n = 50 network at
R = 1 and R = 32 (the replica axis must pay off: per replica, R = 32 at most 0.5x R = 1), the
GF(2) solve (n = 1,000 under 1 s), the exact weight-k variance, and the quick presets' times of
sparse-parity and staircase-parity (target: 60 s on 2 cores).

Run through the runner (``python -m benchmarks -k sparse``); ``FAILGEOM_BENCH_SMOKE=1`` shrinks
every size so that CI can run each benchmark once quickly.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from failgeom import gf2, nn
from failgeom.experiments import get
from failgeom.experiments.parity_models import LOSSES, init_params, sparse_network
from failgeom.experiments.sparse_parity import SparseParityConfig
from failgeom.problems.sparse_parity import k_subsets, sample_parity, sample_parity_bits
from failgeom.theory import sparse_parity_gradient_variance
from failgeom.training import train_step

from .common import median_seconds, smoke

PAPER = SparseParityConfig()  # width, batch, lr and loss of the experiment's presets


class _Step:
    def __init__(self, R: int, n: int, width: int = PAPER.width):
        self.model = sparse_network(width)
        rngs = [np.random.default_rng(r) for r in range(R)]
        self.params = init_params(self.model, rngs, n, width, PAPER.init, np.float32)
        self.rng = np.random.default_rng(R)
        self.subsets = k_subsets(self.rng.spawn(R), n, 3)
        self.opt = nn.SGD(PAPER.lr)

    def __call__(self):
        x, y = sample_parity(self.rng, self.subsets, PAPER.batch, np.float32)
        train_step(self.model, self.params, LOSSES[PAPER.loss], self.opt, x, y)


def _n() -> int:
    return 8 if smoke() else 50


class SparseParityStep:
    """One SGD step (fresh minibatch, forward, hinge, backward, update) of the n = 50 network,
    batch 32, for all R replicas at once; width 128 is the experiment's, 1000 Barak et al.'s."""

    params = [[1, 32], [128, 1000]]
    param_names = ["replicas", "width"]

    def setup(self, R, width):
        self.step = _Step(R, _n(), 16 if smoke() else width)

    def time_step(self, R, width):
        self.step()

    def track_us_per_replica_step(self, R, width):
        """Microseconds per replica-step (median of 5 repeats of 100 steps)."""
        return 1e6 * median_seconds(self.step, number=100) / R

    track_us_per_replica_step.unit = "us"


class ReplicaPayoff:
    """Time per replica-step at R = 32 over that at R = 1, both measured now (target <= 0.5).

    One step is what the experiment's training loop does per SGD update: draw a fresh minibatch
    of 32 inputs per replica, forward, hinge loss, backward, SGD update, for the n = 50 network
    of the presets' width; the ratio is (time of one R = 32 step / 32) / (time of one R = 1 step).
    It does not include the accuracy checks (a few percent of the steps).
    """

    params = [128, 1000]
    param_names = ["width"]

    def track_ratio(self, width):
        width = 16 if smoke() else width
        one, many = _Step(1, _n(), width), _Step(32, _n(), width)
        t1 = median_seconds(one, number=200)
        t32 = median_seconds(many, number=50) / 32
        return t32 / t1

    track_ratio.unit = "ratio"


class GF2Solve:
    """Gaussian elimination of n + 10 noiseless samples of a dense parity (n unknowns)."""

    params = [100, 1000, 2000]
    param_names = ["n"]

    def setup(self, n):
        n = 16 if smoke() else n
        rng = np.random.default_rng(n)
        subset = rng.random(n) < 0.5
        self.A, self.b = sample_parity_bits(rng, subset, n + 10)

    def time_solve(self, n):
        gf2.solve(self.A, self.b)

    def time_spanning_prefix(self, n):
        gf2.spanning_prefix(self.A)


class ExactVariance:
    """The exact variance over every weight-k class (k = 1..n) of one width-128 network."""

    params = [12, 16]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        self.n = 6 if smoke() else n
        model = sparse_network(PAPER.width)
        params = init_params(model, [np.random.default_rng(0)], self.n, PAPER.width, PAPER.init, np.float64)
        first, _, last = params
        self.w = {"W1": first["W"], "b1": first["b"], "W2": last["W"], "b2": last["b"]}

    def time_all_k(self, n):
        sparse_parity_gradient_variance(self.n, list(range(1, self.n + 1)), self.w, "hinge")


class QuickPreset:
    """``sparse-parity --preset quick`` run serially in this process (target: 60 s on 2 cores;
    the cells are independent, so ``--jobs 2`` may spread them over both)."""

    timeout = 900
    name = "sparse-parity"

    def setup(self):
        e = get(self.name)
        self.experiment = e
        self.config = e.tiny if smoke() else e.config("quick")

    def track_wall_s(self):
        start = time.perf_counter()
        self.experiment.run(dataclasses.replace(self.config), seed=0)
        return time.perf_counter() - start

    track_wall_s.unit = "s"

    def track_cpu_s(self):
        """CPU seconds of the same run: steadier than wall time on a shared machine."""
        start = time.process_time()
        self.experiment.run(self.config, seed=0)
        return time.process_time() - start

    track_cpu_s.unit = "s"


class StaircaseQuickPreset(QuickPreset):
    """``staircase-parity --preset quick`` run serially in this process (target: 60 s on 2 cores)."""

    name = "staircase-parity"
