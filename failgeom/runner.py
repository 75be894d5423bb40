"""Runs experiments as cells: plans them, skips complete ones, executes the rest, merges, stores.

A **cell** is one independent part of an experiment (parity at one d, tuple-lines at one
(k, approach, seed)): ``experiment.cell_keys(config)`` lists their keys,
``experiment.compute_cell(config, seed, key, progress, checkpoint_dir)`` computes one as a
JSON-able dict that depends only on (config, seed, key), and ``experiment.merge_cells(config,
seed, outputs, preset, times)`` turns all of them into the experiment's
:class:`~failgeom.results.Result` (see :class:`failgeom.experiments.base.Experiment`).

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
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import cast

from .experiments.base import cell_label as label
from .executors import SchedulerLostError, Task, make_executor, refuse_in_bootstrapping_worker
from .grid import MAX_GRID_POINTS, grid_label, grid_points, grid_table, parse_grid
from .jobs import Job, JobOutcome, RunStats, check_jobs, plural, reusable, to_recompute
from .progress import Heartbeat
from .results import canonical_json, figure_bytes
from .store import (LOCK_FILE, CellStore, FolderLock, RunError, cell_name, clean_temporaries, commit_result,
                    digest, output_problem)
from .worker import CellTask, error_line, execute_cell, failure, reference

_TASK_IDS = itertools.count()  # task keys unique in this process (Dask never merges two tasks)


def cell_keys(experiment, config) -> list[tuple]:
    """The keys of the config's cells, in the experiment's order."""
    keys = experiment.cell_keys(config)
    if not keys:
        raise ValueError(f"experiment {experiment.name!r} declares no cells for this config")
    return keys


def cell_label(experiment_name: str, key: tuple) -> str:
    """``tuple-lines k=3 decomposition``: the experiment's name and the cell's label."""
    return f"{experiment_name} {label(key)}"


def _cells_text(job: Job, keys) -> str:
    keys = list(keys)
    names = [label(k) for k in keys[:6]]
    return ", ".join(names) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")


def _finish(job: Job, executor_name: str, tell) -> list:
    """Merge a job's cells, draw its figure and commit the pair; a failure fails the job.

    A merge that fails on outputs read from stored records does not fail the job: those records
    are named in one line and their keys returned, to be computed again (a record can be whole
    and checksummed and still hold an output this code cannot use). Returns the keys to rerun.
    """
    o = job.outcome
    step = "merge"
    try:
        # the cost of this result, whichever executor ran the cells and whether they were reused
        result = job.experiment.merge_cells(job.config, job.seed, {k: job.outputs[k] for k in job.keys}, job.preset,
                                            job.times)
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
        stale = to_recompute(job) if step == "merge" else []
        if stale:
            tell(f"recomputing {job.name} {_cells_text(job, stale)}: the stored outputs do not merge "
                 f"({error_line(exc)})")
            for key in stale:
                job.stored[key] = canonical_json(job.outputs.pop(key), allow_nan=True)
                del job.times[key]
                job.reused.discard(key)
            return stale
        cells = f" of {plural(len(job.keys), 'cell')} ({_cells_text(job, job.keys)})" if step == "merge" else ""
        o.status, o.error = "failed", f"{job.name}: {step}{cells}: {error_line(exc)}"
        return []
    commit_result(job.folder, result, figure)
    o.status, o.result = "ran", result
    return []


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
        ``--jobs`` (a positive integer) and ``--scheduler`` (see
        :func:`failgeom.executors.make_executor`); ignored when ``executor`` is given.
    progress : callable, optional
        Progress factory ``progress(total, desc)``; one bar over all cells (its ``overall``
        attribute, if any, makes that bar), and bars inside cells that run in this process.
    say : callable, optional
        Receives one-line messages (damaged files, and failed cells unless ``say_failures`` is
        False); None keeps quiet.
    reuse : bool
        Reuse a complete earlier result.json of the same experiment, config, preset, seed and
        version.
    extra, on_extra
        More :class:`~failgeom.executors.Task` s for the same executor, and the callback
        ``on_extra(key, ok, value)`` for their results (``failgeom verify`` in reproduce).

    Raises
    ------
    TypeError, ValueError
        A job, its experiment or config, or ``workers`` is not what is accepted.
    OSError
        A write failed (no space, permissions, read-only); everything written before stays.
    ~failgeom.store.RunError
        The run stopped: a folder is locked by another run (``LockedError``), its ``.lock`` is
        not a regular file (``LockFileError``), or the Dask scheduler went away
        (``SchedulerLostError``: the message says what is stored and how to resume).
    """
    refuse_in_bootstrapping_worker()
    start = time.perf_counter()
    stats = RunStats()
    jobs = check_jobs(jobs, workers)
    tell = say or (lambda msg: None)
    with contextlib.ExitStack() as stack:
        for folder in sorted({job.folder for job in jobs}):
            stack.enter_context(FolderLock(folder))
        pending, hints = _plan(jobs, reuse, tell, stats)
        if not pending and not extra:
            from .executors import SerialExecutor

            executor = SerialExecutor()
        executor = executor or make_executor(workers, scheduler, pending=len(pending) + len(extra))
        from .training import null_progress

        factory = progress or null_progress
        make_bar = getattr(factory, "overall", None)
        total = len(pending) + len(extra) + stats.cells_reused
        bar = make_bar(total) if make_bar else factory(total, "cells")
        bar.update(stats.cells_reused)
        if hasattr(bar, "set_description_str"):
            bar.set_description_str(f"{plural(len(pending), 'cell')} to run" + (
                f", {stats.cells_reused} reused" if stats.cells_reused else ""))
        tell = _say_through(bar, say)
        beat = None
        try:
            with executor:
                stats.executor, stats.workers = executor.describe(), executor.workers
                live = hasattr(bar, "set_postfix_str")
                if pending and (say is not None or live):
                    # no live bar: a line every 30 s; a live bar: the same cost-weighted time left on it
                    beat = Heartbeat(say if not live else None, {(id(j), k): hints.get((id(j), k)) for j, k in pending},
                                     stats.cells_reused, stats.workers, bar=bar if live else None)
                _execute(jobs, pending, executor, progress, list(extra), on_extra, bar, tell, stats, say_failures,
                         beat)
        except SchedulerLostError as exc:
            raise SchedulerLostError(exc.address, exc.why, _lost_advice(jobs, stats)) from None
        finally:
            if beat is not None:
                beat.stop()
            bar.close()
    stats.seconds = time.perf_counter() - start
    return stats


def _lost_advice(jobs, stats) -> str:
    stored = stats.cells_run + stats.cells_reused
    total = sum(len(job.keys) for job in jobs if job.store is not None) or stored
    where = jobs[0].folder if len(jobs) == 1 else jobs[0].folder.parent
    argv = sys.argv[1:] if Path(sys.argv[0]).name in ("failgeom", "__main__.py") else None
    command = f"failgeom {shlex.join(argv)}" if argv else "the same call"
    return (f"{stored} of {plural(total, 'cell')} are stored in {where}; "
            f"with a scheduler running again, resume with: {command}")


def _tasks(pairs, executor, progress, refs) -> tuple[list, dict]:
    in_process = getattr(executor, "in_process", False)
    tasks, index = [], {}
    for job, key in pairs:
        label = cell_label(job.name, key)
        if id(job.experiment) not in refs:
            refs[id(job.experiment)] = job.experiment if in_process else reference(job.experiment)
        task = CellTask(refs[id(job.experiment)], job.config, job.seed, key, label, str(job.store.checkpoint_dir(key)),
                        progress if in_process else None, None if in_process else str(job.folder / LOCK_FILE))
        tid = f"cell-{next(_TASK_IDS)}-{job.experiment.name}-{digest(job.store.ident)}-{cell_name(key)}"
        tasks.append(Task(tid, execute_cell, task))
        index[tid] = (job, key, label)
    return tasks, index


def _execute(jobs, pending, executor, progress, extra, on_extra, bar, tell, stats, say_failures, beat) -> None:
    """Run the pending cells (and ``extra``), store each, merge each job when its last cell is in;
    stored outputs that do not merge are computed again in a second round."""
    from . import __version__

    refs: dict
    refs, rerun = {}, []
    for job in jobs:  # every cell reused: merge now
        if job.outcome.status == "pending" and len(job.outputs) == len(job.keys):
            rerun += [(job, k) for k in _finish(job, stats.executor, tell)]
    extra_keys = {t.key for t in extra}
    todo, first = list(pending), True
    while todo or rerun or (first and extra):
        for job, _ in rerun:  # counted as reused when planned; computed now
            job.outcome.cells_reused -= 1
            stats.cells_reused -= 1
        if rerun and isinstance(getattr(bar, "total", None), int):
            bar.total += len(rerun)
        tasks, index = _tasks(todo + rerun, executor, progress, refs)
        batch, first, todo, rerun = tasks + (extra if first else []), False, [], []
        for tid, ok, value in executor.run(batch):
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
                why = output_problem(json.loads(info["output"]), key, job.store.check_output)
                if why:
                    info = {"ok": False, "error": f"run_cell {why}"}
            if info["ok"]:
                job.confirmed |= job.stored.get(key) == info["output"]
                job.outputs[key] = job.store.save(key, info["output"], info["wall_s"], info["cpu_s"], info["worker"])
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
            if beat is not None:
                beat.done((id(job), key), info.get("wall_s"), label)
            if job.outcome.status == "pending" and len(job.outputs) == len(job.keys):
                rerun += [(job, k) for k in _finish(job, stats.executor, tell)]


def _advance(bar, label: str) -> None:
    if hasattr(bar, "set_description_str"):
        bar.set_description_str(label, refresh=False)
    bar.update(1)


def _plan(jobs: list[Job], reuse: bool, tell, stats: RunStats) -> tuple[list, dict]:
    """Reuse complete results and valid cell records; the (job, key) pairs still to run, longest
    expected first, and their expected seconds ``{(id(job), key): seconds or None}``."""
    pending = []
    for job in jobs:
        o = job.outcome
        removed = clean_temporaries(job.folder)
        if removed:
            tell(f"removed {len(removed)} temporary file(s) left by an interrupted run in {job.folder}")
        if reuse:
            result, o.reason = reusable(job.folder, job.config, job.preset, job.seed, job.plot, job.experiment.name)
            if result is not None:
                o.status, o.result = "skipped", result
                stats.results_reused += 1
                continue
            if getattr(o.reason, "damaged", False):
                tell(f"{job.name}: not reusing {job.folder / 'result.json'}: {o.reason}")
        job.store = CellStore(job.folder, job.experiment.name, job.config, job.seed,
                              getattr(job.experiment, "check_output", None))
        job.keys = cell_keys(job.experiment, job.config)
        for key in job.keys:
            output, times, why = job.store.load(key)
            if output is not None:
                job.outputs[key], job.times[key] = output, times
                job.reused.add(key)
                o.cells_reused += 1
                stats.cells_reused += 1
            else:
                if why:
                    tell(f"recomputing {cell_label(job.name, key)}: {job.store.path(key)} {why}")
                pending.append((job, key))
    # longest first keeps the workers busy to the end: the time the same cell took before under
    # any config is the estimate; cells never run here go first, in their order
    hints = {(id(job), key): job.store.wall_hint(key) for job, key in pending}
    pending.sort(key=lambda p: -(math.inf if hints[id(p[0]), p[1]] is None else cast(float, hints[id(p[0]), p[1]])))
    return pending, hints


__all__ = ["MAX_GRID_POINTS", "CellTask", "Job", "JobOutcome", "RunError", "RunStats", "cell_keys", "cell_label",
           "check_jobs", "error_line", "execute_cell", "grid_label", "grid_points", "grid_table", "parse_grid",
           "reusable", "run_jobs"]
