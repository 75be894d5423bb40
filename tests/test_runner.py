"""The runner: cells merged from any executor equal a serial run, reuse of cells and results,
failures, progress over cells, grids, and every registered experiment through the runner."""

import dataclasses
import json

import pytest
from test_runner_toys import TOY, ToyConfig, numbers

from failgeom import runner
from failgeom.executors import LocalExecutor, SerialExecutor
from failgeom.results import Result
from failgeom.store import CellStore


def run_toy(folder, config=None, seed=0, executor=None, plot=False, say=None, progress=None):
    job = runner.Job(TOY, config or ToyConfig(), folder, seed, "quick", plot)
    stats = runner.run_jobs([job], executor=executor or SerialExecutor(), say=say, progress=progress)
    return job, stats


@pytest.mark.parametrize("executor", [SerialExecutor, lambda: LocalExecutor(2)], ids=["serial", "local-2"])
def test_merged_cells_equal_the_serial_run(tmp_path, executor):
    config = ToyConfig(parts=5)
    job, stats = run_toy(tmp_path, config, seed=3, executor=executor())
    assert job.outcome.status == "ran" and (stats.cells_run, stats.cells_reused) == (5, 0)
    serial = TOY.run(config, 3, preset="quick")
    assert numbers(job.outcome.result) == numbers(serial)
    # the committed file is the same record
    assert numbers(Result.load(tmp_path)) == numbers(serial)
    assert set(job.outcome.result.timing["cells_s"]) == {p.stem for p in job.store.dir.glob("*.json")}


def test_rerun_reuses_the_result_then_the_cells(tmp_path):
    first, _ = run_toy(tmp_path)
    again, stats = run_toy(tmp_path)
    assert again.outcome.status == "skipped" and stats.cells_run == 0
    (tmp_path / "result.json").unlink()
    merged, stats = run_toy(tmp_path)
    assert merged.outcome.status == "ran" and (stats.cells_run, stats.cells_reused) == (0, 4)
    assert numbers(merged.outcome.result) == numbers(first.outcome.result)


def test_a_changed_config_or_seed_gets_its_own_cells(tmp_path):
    run_toy(tmp_path)
    job, stats = run_toy(tmp_path, ToyConfig(size=65))
    assert stats.cells_run == 4 and "config changed (size)" in job.outcome.reason
    job, stats = run_toy(tmp_path, ToyConfig(size=65), seed=1)
    assert stats.cells_run == 4 and "seed" in job.outcome.reason
    assert len(list((tmp_path / "cells").iterdir())) == 3  # nothing of the others was replaced
    job, stats = run_toy(tmp_path)  # back to the first: only merged again
    assert stats.cells_run == 0 and stats.cells_reused == 4


def test_a_failed_cell_fails_its_job_and_the_other_cells_are_kept(tmp_path):
    messages = []
    job, stats = run_toy(tmp_path, ToyConfig(fail_part=2), executor=LocalExecutor(2), say=messages.append)
    assert job.outcome.status == "failed" and (stats.cells_run, stats.cells_failed) == (3, 1)
    assert job.outcome.error.startswith("toy part=2: NonFiniteLossError: the training loss became non-finite")
    assert messages == [f"failed {job.outcome.error}"]
    assert not (tmp_path / "result.json").exists()
    assert len(list(job.store.dir.glob("*.json"))) == 3


def test_a_failing_merge_or_figure_fails_the_job_and_keeps_the_cells(tmp_path):
    def broken(result):
        raise KeyError("curves")

    job = runner.Job(dataclasses.replace(TOY, figure=broken), ToyConfig(parts=2), tmp_path, plot=True)
    stats = runner.run_jobs([job], executor=SerialExecutor())
    assert job.outcome.status == "failed" and job.outcome.error == "toy: figure: KeyError: 'curves'"
    assert stats.cells_run == 2 and not (tmp_path / "result.json").exists()
    job, stats = run_toy(tmp_path, ToyConfig(parts=2))  # a working figure: the cells are reused
    assert job.outcome.status == "ran" and stats.cells_reused == 2


def test_one_overall_bar_over_the_cells_with_their_names(tmp_path):
    class Bar:
        def __init__(self, total):
            self.total, self.n, self.labels, self.closed = total, 0, [], False

        def update(self, n=1):
            self.n += n

        def set_description_str(self, text, refresh=True):
            self.labels.append(text)

        def close(self):
            self.closed = True

    bars = []

    def factory(total, desc=""):
        return Bar(total)

    factory.overall = lambda total: bars.append(Bar(total)) or bars[-1]
    run_toy(tmp_path / "a", ToyConfig(parts=3), progress=factory)
    (bar,) = bars
    assert (bar.total, bar.n, bar.closed) == (3, 3, True)
    assert bar.labels == ["3 cells to run", "toy part=0", "toy part=1", "toy part=2"]
    (tmp_path / "a" / "result.json").unlink()
    run_toy(tmp_path / "a", ToyConfig(parts=3), progress=factory)
    assert (bars[-1].total, bars[-1].n) == (3, 3)  # reused cells count from the start
    assert bars[-1].labels == ["0 cells to run, 3 reused"]


def test_cell_outputs_must_be_plain_json(tmp_path, monkeypatch):
    import numpy as np

    import test_runner_toys as toys

    real = toys.run_cell
    monkeypatch.setattr(toys, "run_cell", lambda *a, **k: {**real(*a, **k), "array": np.zeros(2)})
    job = runner.Job(dataclasses.replace(TOY, run_cell=toys.run_cell), ToyConfig(parts=1), tmp_path, plot=False)
    runner.run_jobs([job], executor=SerialExecutor())
    assert job.outcome.status == "failed"
    assert "toy part=0: run_cell returned a ndarray" in job.outcome.error and "JSON-able" in job.outcome.error


def test_a_merge_that_returns_no_metrics_fails_its_job_with_one_line(tmp_path):
    broken = dataclasses.replace(TOY, merge=lambda config, outputs: {"curves": {}})
    job = runner.Job(broken, ToyConfig(parts=1), tmp_path, plot=False)
    runner.run_jobs([job], executor=SerialExecutor())
    assert job.outcome.status == "failed" and "merge must return a dict with 'metrics'" in job.outcome.error


def test_the_default_merge_nests_each_cells_numbers_under_its_label():
    plain = dataclasses.replace(TOY, merge=None, run_cell=lambda config, cell: {"metrics": {"i": cell.key[1]},
                                                                                   "curves": {"seed": cell.seed}})
    result = plain.run(ToyConfig(parts=2), 4)
    assert result.metrics == {"part=0": {"i": 0}, "part=1": {"i": 1}}
    assert result.curves == {"part=0": {"seed": 4}, "part=1": {"seed": 4}}
    assert result.seeds == {"seed": 4, "replicas": 2} and result.experiment == "toy"
    assert set(result.timing) == {"wall_s", "cpu_s", "cells_s", "cells_cpu_s"}


def test_one_function_per_kind_of_cell():
    kinds = dataclasses.replace(TOY, merge=None, cells=lambda config: [("a", 1), ("b", 2)],
                                run_cell={"a": lambda config, cell: {"metrics": "A"},
                                          "b": lambda config, cell: {"metrics": "B"}})
    assert kinds.run(ToyConfig()).metrics == {"a=1": "A", "b=2": "B"}
    with pytest.raises(ValueError, match="no function for the cell"):
        kinds.compute_cell(ToyConfig(), 0, ("c", 3))


def test_cell_labels_and_keys():
    assert runner.cell_label("tuple-lines", ("k", 3, "decomposition")) == "tuple-lines k=3 decomposition"
    assert runner.cell_label("stocks", (3, "end_to_end")) == "stocks 3 end-to-end"
    assert runner.cell_keys(TOY, ToyConfig(parts=2)) == [("part", 0), ("part", 1)]
    with pytest.raises(TypeError, match="cells must be a function"):
        dataclasses.replace(TOY, cells=None)


def test_grid_points_labels_and_bounds():
    grid = runner.parse_grid(["dims=5,10", "lr=0.1,0.2,0.3"])
    points = runner.grid_points(grid)
    assert len(points) == 6 and points[1] == {"dims": "5", "lr": "0.2"}
    assert runner.grid_label(points[1]) == "dims=5,lr=0.2"
    for bad, message in [(["dims"], "--grid expects key=v1,v2"), (["dims="], "--grid expects"),
                         (["a=1", "a=2"], "given twice"),
                         ([f"k{i}=1,2,3,4" for i in range(7)], "16384 points; at most 4096")]:
        with pytest.raises(ValueError, match=message):
            runner.parse_grid(bad)


def test_cli_grid_writes_one_folder_per_point_and_a_summary(tmp_path, monkeypatch, capsys):
    from failgeom import experiments
    from failgeom.cli import main

    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    argv = ["run", "toy", "--out", str(tmp_path), "--grid", "size=8,9", "--grid", "parts=1,2", "--jobs", "2",
            "--no-plot"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    folders = sorted(p.name for p in (tmp_path / "toy").iterdir() if p.is_dir())
    assert folders == ["size=8,parts=1", "size=8,parts=2", "size=9,parts=1", "size=9,parts=2"]
    assert json.loads((tmp_path / "toy" / "size=9,parts=2" / "result.json").read_text())["config"]["size"] == 9
    table = (tmp_path / "toy" / "grid.md").read_text()
    assert "| size | parts | status | summary | folder |" in table and table.count("| ran |") == 4
    assert "6 cells run, 0 reused, 0 failed on 2 local worker processes" in out
    # every point is its own config: the same numbers as a run of that config alone
    alone = TOY.run(ToyConfig(size=9, parts=2), 0, preset="custom")  # a grid point is custom
    assert numbers(Result.load(tmp_path / "toy" / "size=9,parts=2")) == numbers(alone)
    assert main([*argv[:4], "--grid", "size=8,x"]) == 2
    assert "--set size: expected an integer, got 'x'" in capsys.readouterr().err


class ReversedSerial(SerialExecutor):
    """This process, the cells in reverse order: a cell that leaned on an earlier one would show."""

    def run(self, tasks):
        return super().run(list(tasks)[::-1])


def _registered():
    from failgeom.experiments import names

    return names()


@pytest.mark.parametrize("name", _registered())
def test_every_registered_experiment_merges_to_its_serial_run(name, tmp_path):
    """The experiment's cells, computed in reverse order, stored as cell records and merged, give
    exactly the numbers of its serial run (``experiment.run``) at its tiny config. (Other
    processes and Dask give the same cell outputs: see the toy and test_report tests.)"""
    from failgeom.experiments import get

    experiment = get(name)
    if experiment.tiny is None:
        pytest.skip(f"{name} declares no tiny config yet")
    job = runner.Job(experiment, experiment.tiny, tmp_path, 0, "tiny", plot=False)
    stats = runner.run_jobs([job], executor=ReversedSerial())
    assert job.outcome.status == "ran", job.outcome.error
    assert stats.cells_run == len(experiment.cell_keys(experiment.tiny))
    serial = experiment.run(experiment.tiny, 0, preset="tiny")
    assert untimed(numbers(job.outcome.result)) == untimed(numbers(serial))


def untimed(data):
    """A record without wall-clock measurements (some experiments report their cost as a metric)."""
    import re

    time_key = re.compile(r"(^|_)(wall|ms|s|seconds|time|elapsed)(_|$)")
    if isinstance(data, dict):
        return {k: untimed(v) for k, v in data.items() if not time_key.search(str(k))}
    if isinstance(data, list):
        return [untimed(v) for v in data]
    return data


def test_store_reads_back_what_it_wrote(tmp_path):
    store = CellStore(tmp_path, "toy", ToyConfig(), 0)
    text = '{"a":[1.5,null,NaN],"b":"x"}'
    out = store.save(("part", 0), text, 0.25, 0.125, "host:1")
    loaded, times, why = store.load(("part", 0))
    assert why == "" and times == {"wall_s": 0.25, "cpu_s": 0.125} and loaded["b"] == "x"
    assert loaded["a"][:2] == [1.5, None]
    assert out["a"][2] != out["a"][2]  # NaN survives the cell record
    assert store.load(("part", 1)) == (None, {}, "")


def test_toy_cells_depend_only_on_their_key():
    from failgeom.training import NonFiniteLossError

    config = ToyConfig(parts=3)
    alone = TOY.compute_cell(config, 5, ("part", 2))
    assert TOY.run(config, 5).metrics["part=2"]["mean"] == alone["mean"]
    assert TOY.compute_cell(config, 6, ("part", 2))["mean"] != alone["mean"]
    with pytest.raises(NonFiniteLossError):
        TOY.compute_cell(ToyConfig(fail_part=1), 0, ("part", 1))


def test_a_merge_that_draws_its_own_numbers_gets_the_seed():
    def merge(config, outputs, *, seed):
        return {"metrics": {"seed": seed, "parts": len(outputs)}}

    seeded = dataclasses.replace(TOY, merge=merge)
    assert seeded.run(ToyConfig(parts=2), 7).metrics == {"seed": 7, "parts": 2}
