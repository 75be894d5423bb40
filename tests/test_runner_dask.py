"""Cells on a real Dask ``LocalCluster`` (worker processes, no dashboard, started and stopped
here): the same numbers as a serial run, ``--scheduler``/``$DASK_SCHEDULER_ADDRESS`` from the
command line, ``reproduce`` with verify on the cluster, and a worker killed with SIGKILL while it
runs a cell: the cell is recomputed elsewhere and the numbers do not change."""

import os
import signal
import threading
import time

import pytest
from test_runner_toys import TOY, ToyConfig, numbers

from failgeom import experiments, reproduction, runner
from failgeom.executors import ENV_SCHEDULER, DaskExecutor, make_executor
from failgeom.results import Result

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        yield cluster


def test_cells_on_a_cluster_give_the_serial_numbers(cluster, tmp_path):
    config = ToyConfig(parts=6)
    job = runner.Job(TOY, config, tmp_path, 2, "quick", plot=False)
    stats = runner.run_jobs([job], executor=DaskExecutor(cluster.scheduler_address))
    assert job.outcome.status == "ran" and stats.cells_run == 6
    assert stats.executor == f"on the Dask cluster at {cluster.scheduler_address}"
    assert numbers(job.outcome.result) == numbers(TOY.run(config, 2, preset="quick"))
    pids = {int(w.rsplit(":", 1)[1]) for w in _workers(job)}
    assert pids and os.getpid() not in pids  # computed in the cluster's worker processes


def _workers(job):
    import json

    return [json.loads(p.read_text())["worker"] for p in job.store.dir.glob("*.json")]


def test_a_worker_killed_mid_cell_is_replaced_and_the_numbers_do_not_change(cluster, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    config = ToyConfig(parts=2, sleep=1.5, marker_dir=str(marks))
    job = runner.Job(TOY, config, tmp_path / "out", 0, "quick", plot=False)
    errors = []

    def drive():
        try:
            runner.run_jobs([job], executor=DaskExecutor(cluster.scheduler_address))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=drive)
    thread.start()
    deadline = time.monotonic() + 60
    while not list(marks.glob("start-0-*")):
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    victim = int(next(marks.glob("start-0-*")).name.split("-")[2])
    assert victim != os.getpid()
    os.kill(victim, signal.SIGKILL)  # the worker process running cell 0
    thread.join(120)
    assert not thread.is_alive() and errors == []
    assert job.outcome.status == "ran", job.outcome.error
    starts = sorted(p.name for p in marks.glob("start-0-*"))
    assert len(starts) == 2 and f"start-0-{victim}" in starts  # run again, in another process
    assert numbers(job.outcome.result) == numbers(TOY.run(config, 0, preset="quick"))


def test_the_scheduler_address_comes_from_the_environment(cluster, tmp_path, monkeypatch, capsys):
    from failgeom.cli import main

    monkeypatch.setenv(ENV_SCHEDULER, cluster.scheduler_address)
    assert isinstance(make_executor(2), DaskExecutor)
    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    assert main(["run", "toy", "--out", str(tmp_path), "--no-plot", "--set", "parts=3"]) == 0
    assert f"3 cells run, 0 reused, 0 failed on the Dask cluster at {cluster.scheduler_address}" in \
        capsys.readouterr().out
    monkeypatch.delenv(ENV_SCHEDULER)
    assert not isinstance(make_executor(2), DaskExecutor)


def test_reproduce_on_the_cluster_runs_verify_there_too(cluster, tmp_path, monkeypatch):
    from test_runner_toys import fake_verify

    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    status = reproduction.reproduce("quick", tmp_path, ["toy"], 2, 0, True, configs={"toy": ToyConfig(parts=3)},
                              verify=fake_verify, scheduler=cluster.scheduler_address)
    assert status == 0
    text = (tmp_path / "report.md").read_text()
    assert "`thm1.toy-fail`" in text and "**FAIL**" in text and "| `toy` | ran |" in text
    where = Result.load(tmp_path / "toy").environment["executor"]
    assert where == f"on the Dask cluster at {cluster.scheduler_address}"


def test_scheduler_local_starts_and_stops_its_own_cluster(tmp_path, monkeypatch, capsys):
    from failgeom.cli import main

    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    argv = ["run", "toy", "--out", str(tmp_path), "--scheduler", "local", "--jobs", "1", "--set", "parts=3"]
    assert main(argv) == 0
    assert "3 cells run, 0 reused, 0 failed on a Dask LocalCluster of 1 worker process" in capsys.readouterr().out
    assert numbers(Result.load(tmp_path / "toy")) == numbers(TOY.run(ToyConfig(parts=3), 0, preset="custom"))


def test_an_unreachable_scheduler_is_one_line(tmp_path, monkeypatch, capsys):
    from failgeom.cli import main

    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    monkeypatch.setattr(DaskExecutor, "timeout", "1s", raising=False)
    assert main(["run", "toy", "--out", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("failgeom: error: --scheduler tcp://127.0.0.1:9: cannot connect") and err.count("\n") == 1
