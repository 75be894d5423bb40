"""The trainer (curves, non-finite stop, determinism) and Result records on disk."""

import json
import os

import numpy as np
import pytest

from failgeom import nn
from failgeom import results
from failgeom.results import SCHEMA_VERSION, Result, atomic_write_text, check_writable
from failgeom.training import NonFiniteLossError, seed_streams, train


def _setup(lr, seed=0):
    R = 2
    model = nn.Sequential([nn.Dense(4), nn.ReLU(), nn.Dense(1)])
    params, _ = model.init(np.random.default_rng(seed), R, (3,), dtype=np.float64)
    data = np.random.default_rng(seed + 1)

    def sample():
        x = data.standard_normal((R, 8, 3)) * 100.0
        return x, x.sum(axis=-1, keepdims=True)

    def evaluate(p):
        x, y = sample()
        return {"eval_loss": nn.losses.squared(model.forward(p, x)[0], y)[0]}

    return model, params, sample, evaluate


def test_train_records_curves_at_eval_steps():
    model, params, sample, evaluate = _setup(1e-6)
    curves = train(model, params, nn.losses.squared, nn.SGD(1e-6), sample, 10, eval_every=4, evaluate=evaluate)
    assert curves.steps == [0, 4, 8, 10]
    assert curves.array("eval_loss").shape == (4, 2)
    assert np.isnan(curves.array("train_loss")[0]).all() and np.isfinite(curves.array("train_loss")[1:]).all()


def test_non_finite_loss_stops_with_step_and_lr():
    model, params, sample, evaluate = _setup(1.0)
    with pytest.raises(NonFiniteLossError, match=r"non-finite at step \d+ .*learning rate 10"):
        with np.errstate(all="ignore"):
            train(model, params, nn.losses.squared, nn.SGD(10.0), sample, 200, eval_every=50, evaluate=evaluate)


def test_seed_streams_are_reproducible_and_keyed():
    a = np.random.default_rng(seed_streams(3, 5)).random(4)
    b = np.random.default_rng(seed_streams(3, 5)).random(4)
    c = np.random.default_rng(seed_streams(3, 6)).random(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        seed_streams(-1)


def _result():
    return Result(experiment="x", preset="quick", config={"a": 1}, seeds={"seed": 0, "replicas": 2},
                  metrics={"m": np.float64(0.5), "nan": float("nan")}, curves={"steps": np.arange(3)})


def test_result_round_trip_has_no_nan(tmp_path):
    path = _result().save(tmp_path)
    text = path.read_text()
    assert "NaN" not in text
    loaded = Result.load(tmp_path)
    assert loaded.metrics == {"m": 0.5, "nan": None} and loaded.curves["steps"] == [0, 1, 2]
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION
    assert {"failgeom", "numpy", "python", "blas", "cpu", "date"} <= set(loaded.environment)


def test_failed_atomic_write_leaves_old_file_intact(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")

    class Boom(str):
        def encode(self, *a):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_text(target, Boom("new"))
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


def test_check_writable_rejects_a_file_path(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="not writable"):
        check_writable(f / "sub")


@pytest.mark.parametrize("edit, message", [
    (lambda d: [d], "the top level is a list, not an object"),
    (lambda d: {**d, "config": [1]}, "field 'config' is list, not dict"),
    (lambda d: {**d, "metrics": None}, "field 'metrics' is NoneType, not dict"),
    (lambda d: {**d, "curves": None}, "field 'curves' is NoneType, not dict"),
    (lambda d: {k: v for k, v in d.items() if k != "seeds"}, "field 'seeds' is missing"),
    (lambda d: {**d, "extra": 1}, "unknown field(s) 'extra'"),
    (lambda d: {**d, "schema_version": 1}, "schema_version 1 is not"),
    (lambda d: {**d, "metrics": {"m": 0.6, "nan": None}}, "checksum mismatch"),
])
def test_result_json_is_validated(edit, message):
    data = json.loads(_result().to_json())
    with pytest.raises(ValueError) as exc:
        Result.from_json(json.dumps(edit(data)))
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("text", [b"", b'{"experiment": "x", "pre', b"\x89PNG\x00\xff garbage"])
def test_truncated_or_garbled_result_json_is_one_value_error(text):
    with pytest.raises(ValueError, match="not valid JSON"):
        Result.from_json(text)


def test_a_failed_write_names_the_target_and_removes_its_temporary(tmp_path, monkeypatch):
    import errno

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results, "_write_all", full)
    with pytest.raises(OSError) as exc:
        atomic_write_text(tmp_path / "result.json", "x")
    assert exc.value.filename == str(tmp_path / "result.json") and exc.value.strerror == "No space left on device"
    assert os.listdir(tmp_path) == []


def test_first_crossing_per_replica():
    from failgeom.training import first_crossing

    values = np.array([[0.1, 0.5, np.nan], [0.6, 0.4, np.nan], [0.9, 0.95, np.nan]])
    steps = [0, 10, 20]
    assert first_crossing(steps, values, 0.5, ">=") == [10, 0, None]
    assert first_crossing(steps, values, 0.5, ">") == [10, 20, None]
    assert first_crossing(steps, values, 0.5, "<") == [0, 10, None]
    assert first_crossing(steps, values, 0.1, "<=") == [0, None, None]
    assert all(type(s) is int for s in first_crossing(np.array(steps), values, 0.0) if s is not None)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"compare": "=="}, ValueError, "compare"),
    ({"values": np.zeros(3)}, ValueError, "values must be 2-D"),
    ({"steps": [0, 1]}, ValueError, "one row per step"),
])
def test_first_crossing_bad_arguments(kwargs, error, match):
    from failgeom.training import first_crossing

    args = {"steps": [0, 1, 2], "values": np.zeros((3, 2)), "threshold": 0.5, **kwargs}
    with pytest.raises(error, match=match):
        first_crossing(**args)
