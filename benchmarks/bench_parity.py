"""One SGD step of the paper's parity network (Sec. 2.1) at d = 30, batch 128, for R replicas.

Target (issue 2): one replica-step at most 0.4x the time of ../shared/bench/torch_parity.py
(PyTorch eager, CPU, same network and batch), and with R = 8 the time per replica-step at most
0.5x the R = 1 time. ``track_us_per_replica_step`` reports the second number directly.
"""

import os

import numpy as np

from failgeom import nn
from failgeom.experiments.parity import parity_network
from failgeom.problems.parity import random_subsets, sample_parity
from failgeom.training import train_step

from .common import median_seconds, smoke


class ParityStep:
    params = [1, 8]
    param_names = ["replicas"]

    def setup(self, R):
        d = 8 if smoke() else 30
        self.model = parity_network(d)
        self.params, _ = self.model.init(np.random.default_rng(0), R, (d,))
        self.rng = np.random.default_rng(1)
        self.subsets = random_subsets(self.rng.spawn(R), d)
        self.opt = nn.SGD(0.01)

    def _step(self):
        x, y = sample_parity(self.rng, self.subsets, 128)
        train_step(self.model, self.params, nn.losses.hinge, self.opt, x, y)

    def time_step(self, R):
        """Sample a fresh minibatch per replica, forward, hinge loss, backward, SGD update."""
        self._step()

    def track_us_per_replica_step(self, R):
        """Microseconds per replica-step (median of 5 repeats of 200 steps)."""
        return 1e6 * median_seconds(self._step, number=200) / R

    track_us_per_replica_step.unit = "us"

    def peakmem_step(self, R):
        self._step()


class TorchReference:
    """The same step in PyTorch eager (only where torch is installed; it is no dependency)."""

    params = [1]
    param_names = ["replicas"]

    def setup(self, R):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed")  # asv: skip
        torch.manual_seed(0)
        # torch's own default (one thread per core), not the one-BLAS-thread setting that
        # failgeom.runtime puts in OMP_NUM_THREADS: the reference runs as a torch user runs it
        torch.set_num_threads(os.cpu_count() or 1)
        d = 8 if smoke() else 30
        self.torch = torch
        self.model = torch.nn.Sequential(torch.nn.Linear(d, 10 * d), torch.nn.ReLU(), torch.nn.Linear(10 * d, 1))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01)
        self.v = torch.rand(d) < 0.5
        self.d = d

    def _step(self):
        torch = self.torch
        x = torch.where(torch.rand(128, self.d) < 0.5, -1.0, 1.0)
        y = torch.prod(torch.where(self.v, x, torch.ones_like(x)), dim=1, keepdim=True)
        loss = torch.relu(1 - y * self.model(x)).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def track_us_per_replica_step(self, R):
        return 1e6 * median_seconds(self._step, number=200)

    track_us_per_replica_step.unit = "us"
