"""Checkpoints inside a long cell: an interrupted cell resumes from its checkpoint with the
numbers of an uninterrupted run, and a damaged, reshaped or foreign checkpoint is refused in
one line that gives the exact command to start that cell over."""

import shutil

import numpy as np
import pytest
import test_runner_toys as toys
from test_runner_toys import TRAIN, TrainConfig, numbers

from failgeom import experiments, runner
from failgeom.executors import SerialExecutor
from failgeom.store import CellStore
from failgeom.training import Checkpointer


def run_train(folder):
    job = runner.Job(TRAIN, TrainConfig(), folder, 0, "quick", plot=False)
    stats = runner.run_jobs([job], executor=SerialExecutor())
    return job, stats


@pytest.fixture
def interrupted(tmp_path, monkeypatch):
    """A run whose cells stopped after step 5: each left a checkpoint of step 4."""
    folder = tmp_path / TRAIN.name
    monkeypatch.setattr(toys, "ABORT_AT", 5)
    job, stats = run_train(folder)
    assert job.outcome.status == "failed" and "aborted after step 5" in job.outcome.error
    monkeypatch.setattr(toys, "ABORT_AT", None)
    return folder, CellStore(folder, TRAIN.name, TrainConfig(), 0)


def test_an_interrupted_cell_resumes_with_the_numbers_of_an_uninterrupted_run(interrupted):
    folder, store = interrupted
    assert (store.checkpoint_dir(("part", 0)) / "state.npz").is_file()
    job, stats = run_train(folder)
    assert job.outcome.status == "ran" and stats.cells_run == 2
    assert numbers(job.outcome.result) == numbers(TRAIN.run(TrainConfig(), 0, preset="quick"))
    assert not store.checkpoint_dir(("part", 0)).exists()  # the record holds it all now


def _reshaped(path):
    """A checkpoint with a valid checksum whose parameter array is (1, 1) instead of (2, 3)."""
    ck = Checkpointer(path, header={"config": TrainConfig().to_dict(), "seed": 0, "key": ["part", 0]},
                      state=lambda: ({"w": np.zeros((1, 1))}, {"noise": None}), restore=None, every=2)
    from failgeom.training import Curves

    curves = Curves()
    curves.record(0, train_loss=[np.nan, np.nan], norm=[1.0, 1.0])
    ck.save(4, curves)


def _foreign(path):
    ck = Checkpointer(path, header={"config": TrainConfig().to_dict(), "seed": 1, "key": ["part", 0]},
                      state=lambda: ({"w": np.zeros((2, 3))}, {"noise": None}), restore=None, every=2)
    from failgeom.training import Curves

    ck.save(4, Curves())


DAMAGE = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "cannot be read"),
    "zero-byte": (lambda p: p.write_bytes(b""), "cannot be read"),
    "garbled": (lambda p: p.write_bytes(p.read_bytes()[:200] + bytes(64) + p.read_bytes()[264:]), "checkpoint"),
    "reshaped": (_reshaped, "holds w of shape (1, 1)"),
    "foreign": (_foreign, "belongs to another config, seed or version"),
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_checkpoint_is_refused_with_the_command_to_start_over(how, interrupted, monkeypatch, capsys):
    from failgeom.cli import main

    folder, store = interrupted
    ckpt = store.checkpoint_dir(("part", 0))
    damage, reason = DAMAGE[how]
    damage(ckpt / "state.npz")
    monkeypatch.setitem(experiments.REGISTRY, TRAIN.name, TRAIN)
    argv = ["run", TRAIN.name, "--out", str(folder.parent), "--jobs", "1", "--no-plot"]
    capsys.readouterr()
    assert main(argv) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"failgeom: {TRAIN.name} part=0: CheckpointError: checkpoint {ckpt / 'state.npz'}")
    assert reason in line and line.endswith(f"to start this cell over: rm -r {ckpt}")
    assert (ckpt / "state.npz").exists()  # refused, not silently replaced
    shutil.rmtree(ckpt)  # the command the line gives
    assert main(argv) == 0
    result = runner.reusable(folder, TrainConfig(), "quick", 0, need_figure=False)[0]
    assert numbers(result) == numbers(TRAIN.run(TrainConfig(), 0, preset="quick"))
