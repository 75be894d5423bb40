"""The runner's cost per cell and its throughput on 2 workers (see docs/scaling.md).

Targets: the runner's overhead (plan, store, merge) for a trivial cell under 50 ms with the
local executor and under 0.5 s on a Dask ``LocalCluster``; CPU-bound cells at least 1.8x faster
on 2 workers than on 1, locally and on ``LocalCluster``. Pools and clusters are started before
the timed region (their start-up is reported on its own), so the numbers are the runner's.
On a shared machine the speedup is bounded by the cores the other processes leave free.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass

from .common import smoke

import numpy as np  # noqa: E402  (after common: one BLAS thread)

from failgeom import runner  # noqa: E402
from failgeom.executors import DaskExecutor, LocalExecutor, SerialExecutor, Task  # noqa: E402
from failgeom.experiments.base import Experiment, ExperimentConfig, param  # noqa: E402


@dataclass(frozen=True)
class WorkConfig(ExperimentConfig):
    cells: int = param(8, low=1, high=100_000, doc="number of cells")
    work: int = param(0, low=0, high=10**7, doc="CPU work per cell: 64 x 64 matrix products")


def _cells(config):
    return [("cell", i) for i in range(config.cells)]


def _run_cell(config, cell):
    cpu = time.process_time()
    a = np.full((64, 64), 1.0 / 64)
    b = a.copy()
    for _ in range(config.work):  # a fixed amount of work, so a shared core shows as slower
        b = a @ b
    return {"i": cell.key[1], "trace": float(np.trace(b)), "cpu_s": time.process_time() - cpu}


def _merge(config, outputs):
    return {"metrics": {"traces": [out["trace"] for out in outputs.values()],
                        "cpu_s": sum(out["cpu_s"] for out in outputs.values())}}


def _summary(result):
    return f"{len(result.metrics['traces'])} cells"


CELLS = Experiment(name="bench-cells", description="trivial or CPU-bound cells", presets={"quick": WorkConfig()},
                   figure=None, summary=_summary, family=1, cells=_cells, run_cell=_run_cell, merge=_merge)


def _warm(seconds):
    time.sleep(seconds)  # one per worker at once, so that every worker process has started
    return 0


def _started(executor):
    """Enter ``executor`` and wait until all its workers run (returns the seconds that took)."""
    start = time.perf_counter()
    executor.__enter__()
    if not getattr(executor, "in_process", False):
        list(executor.run([Task(f"warm-{i}-{time.time_ns()}", _warm, 0.2) for i in range(executor.workers)]))
    return time.perf_counter() - start


def _executor(kind: str, workers: int):
    if kind == "serial":
        return SerialExecutor()
    if kind == "local":
        return LocalExecutor(workers)
    return DaskExecutor("local", workers)


def _run(executor, config) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the cells) of one run_jobs of ``config`` on a started
    executor, into a fresh folder."""
    folder = tempfile.mkdtemp(prefix="bench-runner-")
    try:
        job = runner.Job(CELLS, config, folder, 0, "quick", plot=False)
        start = time.perf_counter()
        runner.run_jobs([job], executor=executor)
        elapsed = time.perf_counter() - start
        assert job.outcome.status == "ran", job.outcome.error
        return elapsed, job.outcome.result.metrics["cpu_s"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class RunnerOverhead:
    """Milliseconds the runner adds per trivial cell: plan, dispatch, cell record, merge."""

    params = [["serial", "local", "dask"]]
    param_names = ["executor"]

    def setup(self, kind):
        if kind != "serial" and smoke():  # worker pools take seconds to start; RunnerThroughput
            raise NotImplementedError("smoke runs start no worker pool here")  # starts one
        self.n = 4 if smoke() else (40 if kind == "dask" else 200)
        self.executor = _executor(kind, 2)
        self.startup = _started(self.executor)

    def teardown(self, kind):
        self.executor.__exit__(None, None, None)

    def track_ms_per_trivial_cell(self, kind):
        """Median over 3 runs of (wall time of n trivial cells) / n, workers already started."""
        config = WorkConfig(cells=self.n, work=0)
        return float(np.median([1e3 * _run(self.executor, config)[0] / self.n for _ in range(3)]))

    track_ms_per_trivial_cell.unit = "ms"

    def track_startup_s(self, kind):
        """Seconds to start the executor's workers (paid once per run, not per cell)."""
        return self.startup

    track_startup_s.unit = "s"


class RunnerThroughput:
    """Speedup of 2 workers over 1 on CPU-bound cells (16 cells of about 0.4 s each; the fastest
    of 3 interleaved runs of each).

    ``track_cores_obtained`` is the cells' CPU time over the wall time with 2 workers: about 2
    when the machine has two free cores; on a shared machine it shows how many it gave.
    """

    params = [["local", "dask"]]
    param_names = ["executor"]

    def setup_cache(self):
        config = WorkConfig(cells=2 if smoke() else 16, work=_calibrate(0.01 if smoke() else 0.4))
        repeats = 1 if smoke() else 3
        found = {}
        for kind in ["local"] if smoke() else ["local", "dask"]:  # LocalCluster: not in smoke runs
            executors = {workers: _executor(kind, workers) for workers in (1, 2)}
            runs = {1: [], 2: []}
            try:
                for executor in executors.values():
                    _started(executor)
                for _ in range(repeats):  # interleaved, so that a change in the machine's load hits both
                    for workers, executor in executors.items():
                        runs[workers].append(_run(executor, config))
            finally:
                for executor in executors.values():
                    executor.__exit__(None, None, None)
            found[kind] = {w: min(r, key=lambda run: run[0]) for w, r in runs.items()}  # the least disturbed
        return found

    def setup(self, found, kind):
        if kind not in found:
            raise NotImplementedError("a LocalCluster takes seconds to start")

    def track_speedup_2_vs_1_workers(self, found, kind):
        """Wall time of the cells on 1 worker over that on 2 (workers started before timing)."""
        return found[kind][1][0] / found[kind][2][0]

    track_speedup_2_vs_1_workers.unit = "x"

    def track_cores_obtained_by_2_workers(self, found, kind):
        """CPU seconds of the cells over wall seconds, with 2 workers."""
        wall, cpu = found[kind][2]
        return cpu / wall

    track_cores_obtained_by_2_workers.unit = "cores"

    def track_cores_obtained_by_1_worker(self, found, kind):
        wall, cpu = found[kind][1]
        return cpu / wall

    track_cores_obtained_by_1_worker.unit = "cores"


def _calibrate(seconds: float) -> int:
    """Matrix products that take about ``seconds`` here in one thread."""
    config = WorkConfig(cells=1, work=50)
    start = time.perf_counter()
    CELLS.compute_cell(config, 0, ("cell", 0))
    per = (time.perf_counter() - start) / 50
    return max(1, int(seconds / per))
