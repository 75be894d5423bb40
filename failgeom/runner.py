"""Runs experiments as cells: plans them, skips complete ones, executes the rest, merges, stores.

A **cell** is one independent part of an experiment (parity at one d, tuple-lines at one
(k, approach)): ``experiment.cells(config)`` lists their keys, ``experiment.run_cell(config,
seed, key, progress, checkpoint_dir)`` computes one as a JSON-able dict that depends only on
(config, seed, key), and ``experiment.merge(config, seed, outputs, preset)`` turns all of them
into the experiment's :class:`~failgeom.results.Result`. An experiment without cells is one
cell, ``("all",)``, holding its whole run (see :mod:`failgeom.experiments.base`).

:func:`run_jobs` takes :class:`Job` s (an experiment at one config and seed, and the folder its
result goes to), locks the folders, reuses every complete result and every valid cell record
(:mod:`failgeom.store`), sends the missing cells to an executor (:mod:`failgeom.executors`:
this process, ``--jobs N`` local processes, or Dask), writes each cell's record as it arrives,
and merges, draws and commits a job as soon as its last cell is in. A cell's outputs pass
through the same canonical JSON whichever executor ran it, so the merged result is the same bit
for bit. :mod:`failgeom.reproduction` runs every experiment and ``failgeom verify`` this way.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import pickle
import shlex
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .executors import Task, make_executor
from .results import Result, figure_bytes
from .store import (CellStore, FolderLock, canonical_output, cell_name, clean_temporaries,
                    commit_result, config_json, digest, load_result)

ALL = ("all",)
MAX_GRID_POINTS = 4096


# --------------------------------------------------------------------------------------------
# the cell protocol (failgeom.experiments.base.Experiment)


def cell_keys(experiment, config) -> list[tuple]:
    """The keys of the config's cells, in the experiment's order (``[("all",)]`` without cells)."""
    keys = experiment.cell_keys(config)
    if not keys:
        raise ValueError(f"experiment {experiment.name!r} declares no cells for this config")
    return keys


def run_cell(experiment, config, seed: int, key: tuple, progress, checkpoint_dir=None) -> dict:
    """One cell's output (a JSON-able dict); a resumable cell continues from its checkpoint."""
    return experiment.compute_cell(config, seed, key, progress, checkpoint_dir, resume=True)


def merge(experiment, config, seed: int, outputs: dict, preset: str) -> Result:
    """The experiment's Result from ``{key: output}`` of every cell."""
    return experiment.merge_cells(config, seed, outputs, preset)


def cell_label(experiment_name: str, key: tuple) -> str:
    """``tuple-lines k=3 decomposition`` for the key ``("k", 3, "decomposition")`` and alike."""
    if tuple(key) == ALL:
        return experiment_name
    parts, rest = [], list(key)
    while rest:
        part = rest.pop(0)
        if isinstance(part, str) and rest and not isinstance(rest[0], str):
            parts.append(f"{part}={rest.pop(0)}")
        else:
            parts.append(str(part).replace("_", "-"))
    return f"{experiment_name} {' '.join(parts)}"


@dataclass(frozen=True)
class CellTask:
    """What a worker needs for one cell; ``experiment`` is the spec itself or its registry name."""

    experiment: object
    config: object
    seed: int
    key: tuple
    label: str
    checkpoint_dir: str | None = None
    progress: object = None  # a progress factory, only when the cell runs in this process


@dataclass(frozen=True)
class _Spec:
    """An experiment spec rebuilt in the worker from its fields (its derived ``run`` is a closure)."""

    cls: type
    fields: dict


def _resolve(ref):
    if isinstance(ref, str):
        from .experiments import get

        return get(ref)
    if isinstance(ref, _Spec):
        return ref.cls(**ref.fields)
    return ref


def _pickles(obj) -> bool:
    try:
        pickle.dumps(obj)
        return True
    except Exception:
        return False


def _ref(experiment):
    """What travels to a worker: the spec itself if it pickles (by reference to its functions),
    else its fields without the ``run`` derived from its cells, else its registry name."""
    import dataclasses

    if _pickles(experiment):
        return experiment
    derived = "__post_init__" in getattr(experiment.run, "__qualname__", "")
    spec = _Spec(type(experiment), {f.name: None if f.name == "run" and derived else getattr(experiment, f.name)
                                    for f in dataclasses.fields(experiment)})
    return spec if _pickles(spec) else experiment.name


def error_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def failure(exc: BaseException, checkpoint_dir=None) -> dict:
    """A picklable description of a failed cell (exceptions themselves may not unpickle)."""
    info = {"ok": False, "error": error_line(exc)}
    if isinstance(exc, OSError) and exc.errno is not None:
        info["oserror"] = [exc.errno, exc.strerror or str(exc), exc.filename]
    if type(exc).__name__ == "CheckpointError" and checkpoint_dir:
        info["error"] += f"; to start this cell over: rm -r {shlex.quote(str(checkpoint_dir))}"
    return info


def execute_cell(task: CellTask) -> dict:
    """Run one cell (in whichever process the executor chose); never raises for a cell's fault."""
    import numpy as np

    from .training import null_progress

    start, cpu = time.perf_counter(), time.process_time()
    try:
        experiment = _resolve(task.experiment)
        # a diverging run ends in one NonFiniteLossError line, not a stream of overflow warnings
        with np.errstate(over="ignore", invalid="ignore"):
            output = run_cell(experiment, task.config, task.seed, task.key, task.progress or null_progress,
                              task.checkpoint_dir)
        text = canonical_output(output, f"{task.label}: run_cell")
    except Exception as exc:  # reported as this cell's failure; the other cells go on
        return failure(exc, task.checkpoint_dir)
    from . import __version__

    return {"ok": True, "output": text, "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
            "failgeom": __version__, "worker": f"{socket.gethostname()}:{os.getpid()}"}


# --------------------------------------------------------------------------------------------
# jobs: one experiment at one config and seed, into one folder


@dataclass
class Outcome:
    """What happened to one job: ``status`` is "ran", "skipped" (an earlier complete result was
    reused) or "failed" (``error`` says why); ``reason`` says why an earlier result was not reused."""

    name: str
    status: str = "pending"
    result: Result | None = None
    error: str = ""
    reason: str = ""
    cells_run: int = 0
    cells_reused: int = 0
    cells_failed: int = 0


@dataclass
class Job:
    """An experiment at one config and seed, written to ``folder`` (result.json, figure.png)."""

    experiment: object
    config: object
    folder: Path
    seed: int = 0
    preset: str = "custom"
    plot: bool = True
    name: str = ""
    outcome: Outcome = None
    # filled while running
    store: CellStore = None
    keys: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    times: dict = field(default_factory=dict)  # key -> {"wall_s", "cpu_s"}

    def __post_init__(self):
        self.folder = Path(self.folder)
        self.name = self.name or self.experiment.name
        self.outcome = self.outcome or Outcome(self.name)


@dataclass
class RunStats:
    cells_run: int = 0
    cells_reused: int = 0
    cells_failed: int = 0
    results_reused: int = 0
    executor: str = ""
    workers: int = 1
    seconds: float = 0.0

    def line(self) -> str:
        text = f"{self.cells_run} cells run, {self.cells_reused} reused, {self.cells_failed} failed"
        if self.results_reused:
            text += f" ({self.results_reused} complete result{'s' if self.results_reused > 1 else ''} reused)"
        return text


def reusable(folder, config, preset: str, seed: int, need_figure: bool = True) -> tuple[Result | None, str]:
    """An earlier complete result in ``folder`` for the same config, preset, seed and version.

    Returns ``(result, "")`` when it can be reused, ``(None, reason)`` otherwise.
    """
    from . import __version__

    result, reason = load_result(folder, need_figure)
    if result is None:
        return None, reason
    if result.preset != preset:
        return None, f"made with preset {result.preset!r}"
    if result.seeds.get("seed") != seed:
        return None, f"made with seed {result.seeds.get('seed')!r}"
    want = config_json(config)
    if result.config != want:
        changed = sorted(k for k in set(result.config) | set(want) if result.config.get(k) != want.get(k))
        return None, f"config changed ({', '.join(changed)})"
    if result.environment.get("failgeom") != __version__:
        return None, f"made by failgeom {result.environment.get('failgeom')!r}"
    return result, ""


def _finish(job: Job, executor_name: str) -> None:
    """Merge a job's cells, draw its figure and commit the pair; a failure fails the job."""
    o = job.outcome
    step = "merge"
    try:
        result = merge(job.experiment, job.config, job.seed, {k: job.outputs[k] for k in job.keys}, job.preset)
        result.timing = dict(result.timing or {})
        # the cost of this result, whichever executor ran the cells and whether they were reused
        result.timing["wall_s"] = float(sum(job.times[k]["wall_s"] for k in job.keys))
        result.timing["cpu_s"] = float(sum(job.times[k]["cpu_s"] for k in job.keys))
        result.timing["cells_s"] = {cell_name(k): job.times[k]["wall_s"] for k in job.keys}
        result.timing["cells_cpu_s"] = {cell_name(k): job.times[k]["cpu_s"] for k in job.keys}
        result.environment["executor"] = executor_name
        figure = None
        if job.plot:
            from . import plotting

            step = "figure"
            fig = job.experiment.figure(result)
            figure = figure_bytes(fig)
            plotting.close(fig)
    except OSError:
        raise
    except Exception as exc:  # the cells stay stored; only this job fails
        o.status, o.error = "failed", f"{job.name}: {step}: {error_line(exc)}"
        return
    commit_result(job.folder, result, figure)
    o.status, o.result = "ran", result


def _say_through(bar, say):
    if say is None:
        return lambda msg: None
    write = getattr(type(bar), "write", None)
    if write is not None and getattr(bar, "disable", True) is False:
        return lambda msg: write(msg, file=sys.stderr)
    return say


def run_jobs(jobs: list[Job], *, workers: int | None = None, scheduler: str | None = None, executor=None,
             progress=None, say=None, reuse: bool = True, extra=(), on_extra=None,
             say_failures: bool = True) -> RunStats:
    """Run every job (see the module docstring); outcomes land in ``job.outcome``.

    Parameters
    ----------
    jobs : list of Job
        Distinct folders; each is locked for the duration (another live run there is a
        :class:`~failgeom.store.LockedError`).
    workers, scheduler
        ``--jobs`` and ``--scheduler`` (see :func:`failgeom.executors.make_executor`); ignored
        when ``executor`` is given.
    progress : callable, optional
        Progress factory ``progress(total, desc)``; one bar over all cells (its ``overall``
        attribute, if any, makes that bar), and bars inside cells that run in this process.
    say : callable, optional
        Receives one-line messages (damaged files, and failed cells unless ``say_failures`` is
        False); None keeps quiet.
    reuse : bool
        Reuse a complete earlier result.json of the same config, preset, seed and version.
    extra, on_extra
        More :class:`~failgeom.executors.Task` s for the same executor, and the callback
        ``on_extra(key, ok, value)`` for their results (``failgeom verify`` in reproduce).

    Raises
    ------
    OSError
        A write failed (no space, permissions, read-only); everything written before stays.
    """
    from . import __version__
    from .training import null_progress

    start = time.perf_counter()
    stats = RunStats()
    folders = [job.folder for job in jobs]
    if len(set(folders)) != len(folders):
        raise ValueError("two jobs write the same folder")
    tell = say or (lambda msg: None)
    with contextlib.ExitStack() as stack:
        for folder in sorted(set(folders)):
            stack.enter_context(FolderLock(folder))
        pending = _plan(jobs, reuse, tell, stats)
        if not pending and not extra:
            from .executors import SerialExecutor

            executor = SerialExecutor()
        executor = executor or make_executor(workers, scheduler, pending=len(pending) + len(extra))
        in_process = getattr(executor, "in_process", False)
        tasks, index, refs = [], {}, {}
        for i, (job, key) in enumerate(pending):
            label = cell_label(job.name, key)
            ckpt = str(job.store.checkpoint_dir(key))
            if id(job.experiment) not in refs:
                refs[id(job.experiment)] = job.experiment if in_process else _ref(job.experiment)
            ref = refs[id(job.experiment)]
            task = CellTask(ref, job.config, job.seed, key, label, ckpt,
                            progress if in_process else None)
            tid = f"cell-{i}-{job.experiment.name}-{digest(job.store.ident)}-{cell_name(key)}"
            tasks.append(Task(tid, execute_cell, task))
            index[tid] = (job, key, label)
        extra_keys = {t.key for t in extra}
        factory = progress or null_progress
        make_bar = getattr(factory, "overall", None)
        total = len(tasks) + len(extra) + stats.cells_reused
        bar = make_bar(total) if make_bar else factory(total, "cells")
        bar.update(stats.cells_reused)
        if hasattr(bar, "set_description_str"):
            bar.set_description_str(f"{len(tasks)} cells to run" + (f", {stats.cells_reused} reused"
                                                                    if stats.cells_reused else ""))
        tell = _say_through(bar, say)
        try:
            with executor:
                stats.executor, stats.workers = executor.describe(), executor.workers
                for job in jobs:  # every cell reused: merge now
                    if job.outcome.status == "pending" and len(job.outputs) == len(job.keys):
                        _finish(job, stats.executor)
                for tid, ok, value in executor.run(tasks + list(extra)):
                    if tid in extra_keys:
                        on_extra(tid, ok, value)
                        _advance(bar, "failgeom verify")
                        continue
                    job, key, label = index[tid]
                    info = value if ok else failure(value)
                    if info["ok"] and info.get("failgeom") != __version__:  # a cluster of mixed installs
                        info = {"ok": False, "error": f"the worker {info['worker']} runs failgeom "
                                f"{info.get('failgeom')}, this run {__version__}; install one version"}
                    if info["ok"]:
                        job.outputs[key] = job.store.save(key, info["output"], info["wall_s"], info["cpu_s"],
                                                          info["worker"])
                        job.times[key] = {"wall_s": info["wall_s"], "cpu_s": info["cpu_s"]}
                        job.store.drop_checkpoint(key)
                        job.outcome.cells_run += 1
                        stats.cells_run += 1
                    elif "oserror" in info:  # the disk, not the cell: stop, keep what is written
                        errno_, strerror, filename = info["oserror"]
                        raise OSError(errno_, strerror, filename)
                    else:
                        job.outcome.cells_failed += 1
                        stats.cells_failed += 1
                        if job.outcome.status != "failed":
                            job.outcome.status, job.outcome.error = "failed", f"{label}: {info['error']}"
                        if say_failures:
                            tell(f"failed {label}: {info['error']}")
                    _advance(bar, label)
                    if job.outcome.status == "pending" and len(job.outputs) == len(job.keys):
                        _finish(job, stats.executor)
        finally:
            bar.close()
    stats.seconds = time.perf_counter() - start
    return stats


def _advance(bar, label: str) -> None:
    if hasattr(bar, "set_description_str"):
        bar.set_description_str(label, refresh=False)
    bar.update(1)


def _plan(jobs: list[Job], reuse: bool, tell, stats: RunStats) -> list[tuple[Job, tuple]]:
    """Reuse complete results and valid cell records; the (job, key) pairs still to run."""
    pending = []
    for job in jobs:
        o = job.outcome
        removed = clean_temporaries(job.folder)
        if removed:
            tell(f"removed {len(removed)} temporary file(s) left by an interrupted run in {job.folder}")
        if reuse:
            result, o.reason = reusable(job.folder, job.config, job.preset, job.seed, job.plot)
            if result is not None:
                o.status, o.result = "skipped", result
                stats.results_reused += 1
                continue
            if "damaged" in o.reason or "match" in o.reason or "cannot" in o.reason:
                tell(f"{job.name}: not reusing {job.folder / 'result.json'}: {o.reason}")
        job.store = CellStore(job.folder, job.experiment.name, job.config, job.seed)
        job.keys = cell_keys(job.experiment, job.config)
        for key in job.keys:
            output, times, why = job.store.load(key)
            if output is not None:
                job.outputs[key], job.times[key] = output, times
                o.cells_reused += 1
                stats.cells_reused += 1
            else:
                if why:
                    tell(f"recomputing {cell_label(job.name, key)}: {job.store.path(key)} {why}")
                pending.append((job, key))
    # longest first keeps the workers busy to the end: the time the same cell took before under
    # any config is the estimate; cells never run here go first, in their order
    hints = {id(p): p[0].store.wall_hint(p[1]) for p in pending}
    pending.sort(key=lambda p: -(math.inf if hints[id(p)] is None else hints[id(p)]))
    return pending


# --------------------------------------------------------------------------------------------
# grids of configs


def parse_grid(pairs) -> list[tuple[str, list[str]]]:
    """``["k=v1,v2", ...]`` to ``[(k, [v1, v2]), ...]``; ValueError on a malformed pair."""
    grid = []
    for pair in pairs or []:
        key, sep, values = pair.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not items:
            raise ValueError(f"--grid expects key=v1,v2,..., got {pair!r}")
        if key.strip() in [k for k, _ in grid]:
            raise ValueError(f"--grid {key.strip()} is given twice")
        grid.append((key.strip(), items))
    size = math.prod(len(v) for _, v in grid)
    if size > MAX_GRID_POINTS:
        raise ValueError(f"--grid has {size} points; at most {MAX_GRID_POINTS} are accepted")
    return grid


def grid_points(grid: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, the last key varying fastest."""
    keys = [k for k, _ in grid]
    return [dict(zip(keys, values)) for values in itertools.product(*(v for _, v in grid))]


def grid_label(point: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items()) or "default"


def grid_table(jobs: list[Job], points: list[dict[str, str]], summary) -> str:
    """A Markdown table of a grid: one row per point with its status and one-line summary."""
    keys = list(points[0]) if points else []
    lines = ["| " + " | ".join(keys + ["status", "summary", "folder"]) + " |",
             "| " + " | ".join(["---"] * (len(keys) + 3)) + " |"]
    for job, point in zip(jobs, points):
        o = job.outcome
        text = o.error if o.status == "failed" else (summary(o.result) if o.result is not None else "")
        status = {"skipped": "reused"}.get(o.status, o.status)
        cells = [point[k] for k in keys] + [status, text.replace("|", "/"), job.folder.name]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["ALL", "CellTask", "Job", "Outcome", "RunStats", "cell_keys", "cell_label", "error_line", "execute_cell",
           "grid_label", "grid_points", "grid_table", "merge", "parse_grid", "reusable", "run_cell", "run_jobs"]
