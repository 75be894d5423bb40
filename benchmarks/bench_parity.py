"""One SGD step of the paper's parity network (Sec. 2.1) at d = 30, batch 128, for R replicas,
next to the same step in PyTorch eager (CPU), the reference the speed targets are stated against.

Targets: one replica-step at most 0.4x the time of the PyTorch step (:class:`TorchReference`,
same network, loss, batch and update), and with R = 8 the time per replica-step at most 0.5x
the R = 1 time. ``track_us_per_replica_step`` reports both numbers directly. The reference runs
only where torch is installed (it is no dependency of failgeom); elsewhere asv and the
standalone runner skip it.
"""

import os

import numpy as np

from failgeom import nn
from failgeom.experiments.parity_models import parity_network
from failgeom.problems.parity import random_subsets, sample_parity
from failgeom.training import train_step

from .common import Benchmark, median_seconds


class ParityStep(Benchmark):
    """failgeom: one batched step of R parity networks, each with its own fresh minibatch."""

    params = [1, 8]
    param_names = ["replicas"]
    FULL = {"d": 30, "batch": 128, "steps": 200}
    SMOKE = {"d": 8, "batch": 128, "steps": 200}

    def setup(self, R):
        super().setup(R)
        d = self.sizes["d"]
        self.model = parity_network(d)
        self.params, _ = self.model.init(np.random.default_rng(0), R, (d,))
        self.rng = np.random.default_rng(1)
        self.subsets = random_subsets(self.rng.spawn(R), d)
        self.opt = nn.SGD(0.01)

    def _step(self):
        x, y = sample_parity(self.rng, self.subsets, self.sizes["batch"])
        train_step(self.model, self.params, nn.losses.hinge, self.opt, x, y)

    def time_step(self, R):
        """Sample a fresh minibatch per replica, forward, hinge loss, backward, SGD update."""
        self._step()

    def track_us_per_replica_step(self, R):
        """Microseconds per replica-step (median of 5 repeats of 200 steps)."""
        return 1e6 * median_seconds(self._step, number=self.sizes["steps"]) / R

    track_us_per_replica_step.unit = "us"

    def peakmem_step(self, R):
        self._step()


class TorchReference(Benchmark):
    """The same step in PyTorch eager: Linear(d, 10d) ReLU Linear(10d, 1), hinge loss, SGD lr
    0.01, batch 128, fresh samples each step. R > 1 trains R networks in a Python loop, as a
    PyTorch user would. Uses torch's own thread default (one thread per core), not the one BLAS
    thread failgeom runs with: the reference runs as a torch user runs it."""

    params = [1, 8]
    param_names = ["replicas"]
    FULL = ParityStep.FULL
    SMOKE = ParityStep.SMOKE

    def setup(self, R):
        super().setup(R)
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed") from None  # asv: skip
        torch.manual_seed(0)
        torch.set_num_threads(os.cpu_count() or 1)
        d = self.sizes["d"]
        self.torch, self.d = torch, d
        self.models = [torch.nn.Sequential(torch.nn.Linear(d, 10 * d), torch.nn.ReLU(), torch.nn.Linear(10 * d, 1))
                       for _ in range(R)]
        self.opts = [torch.optim.SGD(m.parameters(), lr=0.01) for m in self.models]
        self.subsets = [torch.rand(d) < 0.5 for _ in range(R)]

    def _step(self):
        torch, B = self.torch, self.sizes["batch"]
        for model, opt, v in zip(self.models, self.opts, self.subsets):
            x = torch.where(torch.rand(B, self.d) < 0.5, -1.0, 1.0)
            y = torch.prod(torch.where(v, x, torch.ones_like(x)), dim=1, keepdim=True)
            loss = torch.relu(1 - y * model(x)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    def time_step(self, R):
        self._step()

    def track_us_per_replica_step(self, R):
        """Microseconds per replica-step (median of 5 repeats of 200 steps)."""
        return 1e6 * median_seconds(self._step, number=self.sizes["steps"]) / R

    track_us_per_replica_step.unit = "us"
