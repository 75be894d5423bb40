"""asv benchmarks for the PWL learners (paper Sec. 4.1): per-step time and the scaling exponent.

``FAILGEOM_BENCH_SMOKE=1`` shrinks the sizes so CI can run every benchmark once quickly; the
same sizes are in :data:`SMOKE`.
"""

import dataclasses
import functools
import os

import numpy as np

from failgeom import nn
from failgeom.experiments import get, pwl
from failgeom.problems.pwl import minibatch, sample_pwl_data
from failgeom.training import train_step

#: reduced sizes used when FAILGEOM_BENCH_SMOKE=1
SMOKE = {"n": 20, "replicas": 2, "batch": 10, "train_size": 200, "ns": (5, 6, 7, 8), "sgd_max_n": 7}
FULL = {"n": 100, "replicas": 5, "batch": 100, "train_size": 2_000,
        "ns": (6, 8, 10, 12, 16, 24, 32, 48, 64), "sgd_max_n": 10}


def sizes() -> dict:
    """The sizes in force, read at setup time (the runner may set the variable after import)."""
    return SMOKE if os.environ.get("FAILGEOM_BENCH_SMOKE") == "1" else FULL


class PWLTrainStep:
    """One training step (all replicas) of each learner at the paper's n and batch."""

    params = (list(pwl.LEARNERS), ["sgd", "adam"])
    param_names = ["learner", "optimizer"]

    def setup(self, learner, optimizer):
        size = sizes()
        n, R, B = size["n"], size["replicas"], size["batch"]
        if learner == "conv-precond":
            B = min(B, 10)  # the original command's batch
        rngs = [np.random.default_rng([0, r]) for r in range(R)]
        data = sample_pwl_data(rngs, n, 3, pwl.data_distribution(learner, pwl.PWLConfig()), size["train_size"], 2)
        self.learner = pwl.make_learner(learner, n, 3, "float32")
        self.learner.prepare(data.train_f)
        self.params = self.learner.init(np.random.default_rng(0), R, n, np.float32)
        cfg = pwl.PWLConfig(n=n, optimizer=optimizer, lr=1e-9 if learner == "autoencoder" else None)
        self.opt = pwl.make_optimizer(cfg, pwl.default_lr(self.learner, cfg))
        self.loss = functools.partial(nn.losses.squared, coef=self.learner.loss_coef(n))
        self.rng = np.random.default_rng(1)
        self.f, self.p = data.train_f.astype(np.float32), data.train_p.astype(np.float32)
        self.B = B

    def _step(self):
        fb, pb = minibatch(self.rng, self.f, self.p, self.B)
        L = self.learner
        train_step(L.model, self.params, self.loss, self.opt, L.inputs(fb), L.target(fb, pb))

    def time_step(self, learner, optimizer):
        self._step()

    def peakmem_step(self, learner, optimizer):
        self._step()


class PWLIterationExponent:
    """Fitted exponent of iterations-to-tolerance vs n (pwl-scaling): it should match cond(C)'s
    (about 3, Appendix A.6) without conditioning and be about 0 with it."""

    timeout = 600

    def setup_cache(self):
        size = sizes()
        exp = get("pwl-scaling")
        cfg = dataclasses.replace(exp.presets["quick"], replicas=2, ns=size["ns"], sgd_max_n=size["sgd_max_n"],
                                  fc_ns=(5,), fc_replicas=4, fc_points=3, train_size=500)
        return exp.run(cfg, seed=0).metrics["fits"]

    def track_sgd_plain_exponent(self, fits):
        return fits["sgd_plain_iterations"]["exponent"]

    def track_gd_plain_exponent(self, fits):
        return fits["gd_plain_iterations"]["exponent"]

    def track_window_condition_exponent(self, fits):
        return fits["window_condition_number"]["exponent"]

    def track_sgd_precond_exponent(self, fits):
        return fits["sgd_precond_iterations"]["exponent"]

    track_sgd_plain_exponent.unit = "exponent"
    track_gd_plain_exponent.unit = "exponent"
    track_window_condition_exponent.unit = "exponent"
    track_sgd_precond_exponent.unit = "exponent"
