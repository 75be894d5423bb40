"""Flat activations (paper Sec. 5): per-step and test-time cost of each learner.

One training step (forward, loss, backward or forward-only update, Adam) on a fixed minibatch of
256 inputs of dimension 100, for each learner (``smooth``, ``e2e``, ``multiclass``,
``forward-only``) and R replicas; the sampler's cost (shared by all learners) separately; and
the cost of 10,000 test predictions. The paper (Sec. 5.5) expects forward-only to be the
cheapest at train and test time. Also the Appendix A.7 run (one forward-only SGD step of R
replicas, batch 1). ``FAILGEOM_BENCH_SMOKE=1`` shrinks every size.
"""

import dataclasses

import numpy as np

from failgeom.experiments import flat
from failgeom import nn
from failgeom.problems.steps import draw_targets, paper_grids, sample_steps
from failgeom.theory import flat as a7
from failgeom.training import train_step

from .common import median_seconds, smoke

#: sizes used when FAILGEOM_BENCH_SMOKE=1
SMOKE = {"batch": 16, "test_points": 200, "hidden_e2e": (8, 8, 8), "hidden_multiclass": (8, 8)}


def _config(kind):
    config = flat.PRESETS[kind]["paper"]
    if smoke() and kind in ("e2e", "multiclass"):
        config = dataclasses.replace(config, hidden=SMOKE[f"hidden_{kind.replace('-', '_')}"])
    return config


def _problem(R, batch, seed=0):
    rng = np.random.default_rng(seed)
    v_star, b_star = draw_targets(list(rng.spawn(R)), 100)
    step = paper_grids(b_star)
    return rng, v_star, b_star, step


class FlatLearnerStep:
    """One training step of each Sec. 5 learner on a fixed minibatch (sampling excluded)."""

    params = [list(flat.LEARNERS), [1, 4]]
    param_names = ["learner", "replicas"]

    def setup(self, kind, R):
        batch = SMOKE["batch"] if smoke() else 256
        rng, v_star, b_star, step = _problem(R, batch)
        config = _config(kind)
        self.learner = flat.make_learner(kind, step, config)
        self.params, _ = self.learner.model.init(rng, R, (100,), np.float32)
        self.opt = nn.Adam(config.lr, **nn.PAPER_ADAM)
        x, _, index, y = sample_steps(rng, v_star, b_star, step, batch, np.float32)
        self.x, self.target = x, (index if self.learner.classification else y)
        self.step_fn = self.learner.step_fn or train_step

    def _step(self):
        self.step_fn(self.learner.model, self.params, self.learner.loss, self.opt, self.x, self.target)

    def time_step(self, kind, R):
        """Forward, loss, backward (or forward-only update) and Adam for all replicas."""
        self._step()

    def track_us_per_replica_step(self, kind, R):
        """Microseconds per replica-step (median of 5 repeats of 50 steps)."""
        return 1e6 * median_seconds(self._step, number=50) / R

    track_us_per_replica_step.unit = "us"

    def peakmem_step(self, kind, R):
        self._step()


class FlatSampler:
    """The minibatch sampler shared by all learners: ``x = randn(100)/100``, ``y = u(v*^T x + b*)``."""

    params = [1, 4]
    param_names = ["replicas"]

    def setup(self, R):
        self.batch = SMOKE["batch"] if smoke() else 256
        self.rng, self.v_star, self.b_star, self.step = _problem(R, self.batch)

    def time_sample(self, R):
        sample_steps(self.rng, self.v_star, self.b_star, self.step, self.batch, np.float32)


class FlatPredict:
    """Test-time cost: 10,000 predictions of one trained-size model (R = 1)."""

    params = [list(flat.LEARNERS)]
    param_names = ["learner"]

    def setup(self, kind):
        n = SMOKE["test_points"] if smoke() else 10_000
        rng, v_star, b_star, step = _problem(1, n)
        self.learner = flat.make_learner(kind, step, _config(kind))
        self.params, _ = self.learner.model.init(rng, 1, (100,), np.float32)
        self.x = sample_steps(rng, v_star, b_star, step, n, np.float32)[0]

    def time_predict_10k(self, kind):
        """Predicted values (grid value of the argmax for multiclass) for 10,000 inputs."""
        self.learner.predict(self.params, self.x)

    def peakmem_predict_10k(self, kind):
        self.learner.predict(self.params, self.x)


class ForwardOnlyA7:
    """Appendix A.7's run: forward-only SGD steps of R replicas on one sample each (d = 20)."""

    params = [[1, 256, 4096]]
    param_names = ["replicas"]

    def setup(self, R):
        rng = np.random.default_rng(0)
        self.steps = 10 if smoke() else 1000
        self.v_star = 3.0 * a7.unit_sphere(rng, (R,), 20)
        self.x = a7.unit_sphere(rng, (self.steps, R), 20)
        self.w = np.zeros((R, 20))

    def track_us_per_step(self, R):
        """Microseconds per step of all R replicas (median of 5 repeats of 1,000 steps)."""
        run = lambda: a7.forward_only_updates(self.w, self.x, self.v_star, 1.0, 1.0, 0.01, "ramp")  # noqa: E731
        return 1e6 * median_seconds(run, number=1) / self.steps

    track_us_per_step.unit = "us"
