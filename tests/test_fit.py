"""The one training loop (training.fit), its hooks and its checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from failgeom import nn
from failgeom.training import (CheckpointError, Checkpointer, NonFiniteLossError, StopTraining,
                               copy_checked, fit, seed_streams)


class _Run:
    """A tiny quadratic problem with noisy gradients: params w (R, 3) move towards 0."""

    def __init__(self, seed=0, R=4):
        rng = np.random.default_rng(seed_streams(seed, "test-fit", "init"))
        self.w = rng.standard_normal((R, 3))
        self.rng = np.random.default_rng(seed_streams(seed, "test-fit", "noise"))
        self.opt = nn.Adam(0.05)

    def step(self, i):
        noise = self.rng.standard_normal(self.w.shape)
        params, grads = {"w": self.w}, {"w": self.w + 0.1 * noise}
        self.opt.step(params, grads)
        return 0.5 * (self.w**2).sum(axis=1)

    def evaluate(self, i):
        return {"norm": np.linalg.norm(self.w, axis=1)}

    def state(self):
        opt = self.opt.state_dict()
        arrays = {"w": self.w}
        if opt["m"] is not None:
            arrays.update({"m0": opt["m"][0], "v0": opt["v"][0]})
        return arrays, {"t": opt["t"], "rng": self.rng.bit_generator.state}

    def restore(self, arrays, meta):
        copy_checked(self.w, arrays["w"], "w")
        if meta["t"]:
            self.opt.load_state_dict({"t": meta["t"], "m": [arrays["m0"].copy()], "v": [arrays["v0"].copy()]})
        self.rng.bit_generator.state = meta["rng"]

    def checkpointer(self, path, every=10):
        return Checkpointer(path, header={"test": 1}, state=self.state, restore=self.restore, every=every)


def test_fit_evaluates_at_zero_every_n_and_last():
    run = _Run()
    curves = fit(run.step, 25, eval_every=10, evaluate=run.evaluate)
    assert curves.steps == [0, 10, 20, 25]
    assert np.isnan(curves.array("train_loss")[0]).all()
    # Adam on a quadratic shrinks every replica's parameters
    norms = curves.array("norm")
    assert (norms[-1] < norms[0]).all()


def test_hook_runs_after_every_step_and_can_stop():
    run, seen = _Run(), []

    def hook(i):
        seen.append(i)
        if i == 7:
            raise StopTraining

    curves = fit(run.step, 50, eval_every=5, evaluate=run.evaluate, hooks=[hook])
    assert seen == list(range(1, 8))
    assert curves.steps == [0, 5, 7]


def test_non_finite_loss_names_the_step():
    def step(i):
        return np.array([1.0, np.nan if i == 3 else 1.0])

    with pytest.raises(NonFiniteLossError, match="step 3 .*replicas \\[1\\]"):
        fit(step, 10, eval_every=5, evaluate=lambda i: {"x": np.zeros(2)}, lr=0.1)


def test_resume_gives_the_numbers_of_an_uninterrupted_run(tmp_path):
    whole = _Run()
    expected = fit(whole.step, 40, eval_every=10, evaluate=whole.evaluate)

    first = _Run()
    stop_at_25 = [lambda i: (_ for _ in ()).throw(KeyboardInterrupt) if i == 25 else None]
    with pytest.raises(KeyboardInterrupt):
        fit(first.step, 40, eval_every=10, evaluate=first.evaluate, hooks=stop_at_25,
            checkpoint=first.checkpointer(tmp_path / "c.npz"))
    second = _Run(seed=0)
    second.w[:] = 99.0  # restore must overwrite everything
    resumed = fit(second.step, 40, eval_every=10, evaluate=second.evaluate,
                  checkpoint=second.checkpointer(tmp_path / "c.npz"), resume=True)
    assert resumed.steps == expected.steps
    np.testing.assert_array_equal(resumed.array("norm"), expected.array("norm"))
    np.testing.assert_array_equal(second.w, whole.w)


def _saved(tmp_path):
    run = _Run()
    path = tmp_path / "c.npz"
    fit(run.step, 30, eval_every=10, evaluate=run.evaluate, checkpoint=run.checkpointer(path))
    return path


@pytest.mark.parametrize("damage", ["truncate", "empty", "garble", "flip"])
def test_damaged_checkpoint_is_one_clear_error(tmp_path, damage):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    elif damage == "garble":
        data = bytearray(b"not a zip file at all" * 10)
    else:  # one byte inside an array: only the checksum can tell
        data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    run = _Run()
    with pytest.raises(CheckpointError, match=f"checkpoint {path}.*delete the checkpoint"):
        fit(run.step, 30, eval_every=10, evaluate=run.evaluate, checkpoint=run.checkpointer(path), resume=True)


def test_checkpoint_of_other_shapes_or_run_is_refused(tmp_path):
    path = _saved(tmp_path)
    other = _Run(R=2)  # same header, arrays of another shape: never broadcast
    with pytest.raises(CheckpointError, match="shape"):
        fit(other.step, 30, eval_every=10, evaluate=other.evaluate, checkpoint=other.checkpointer(path), resume=True)
    run = _Run()
    foreign = Checkpointer(path, header={"test": 2}, state=run.state, restore=run.restore, every=10)
    with pytest.raises(CheckpointError, match="another config"):
        fit(run.step, 30, eval_every=10, evaluate=run.evaluate, checkpoint=foreign, resume=True)


def test_checkpoint_interval_must_be_a_multiple_of_eval_every(tmp_path):
    run = _Run()
    with pytest.raises(ValueError, match="multiple of eval_every"):
        fit(run.step, 30, eval_every=10, evaluate=run.evaluate, checkpoint=run.checkpointer(tmp_path / "c", every=15))
