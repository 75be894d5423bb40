"""What runs in a worker for one cell: the task, its execution, and the guard on its writes.

:func:`execute_cell` runs one :class:`CellTask` in whichever process the executor chose and never
raises for a cell's own fault: it returns ``{"ok": True, "output": <canonical JSON>, ...}`` or a
picklable failure description (:func:`failure`). When the task names its folder's lock
(``lock``: every executor but the in-process one), every file the cell writes (its checkpoints)
first checks that the lock is still held, by the driver that started the cell: a cell whose
driver is gone stops without writing (:class:`LockLostError`) rather than write into a folder
another run may own by now.
"""

from __future__ import annotations

import os
import shlex
import socket
import time
from dataclasses import dataclass
from typing import Any

from .store import RunError, canonical_output, lock_is_held

#: the advice of a Checkpointer that a runner's cell replaces with its own (``rm -r``)
_STALE_ADVICE = ("run again without --resume to start over", "delete the checkpoint file to start over")


class LockLostError(RunError):
    """A cell's driver no longer holds the lock of the folder the cell writes into."""


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
    lock: str | None = None  # the folder's .lock, checked before each write (not in-process)


def reference(experiment):
    """What travels to a worker: the spec itself (it pickles by reference to its module's
    functions), or, for a spec that does not pickle, its name in the registry."""
    import pickle

    try:
        pickle.dumps(experiment)
        return experiment
    except Exception:
        return experiment.name


def resolve(ref):
    """The experiment spec of a :func:`reference`."""
    if isinstance(ref, str):
        from .experiments import get

        return get(ref)
    return ref


def error_line(exc: BaseException | None) -> str:
    """An exception as one line: its type and the first line of its message."""
    if exc is None:
        return "cancelled (no exception)"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def failure(exc: BaseException | None, checkpoint_dir=None) -> dict:
    """A picklable description of a failed cell (exceptions themselves may not unpickle).

    A damaged checkpoint's line ends with the one command that starts the cell over
    (``rm -r <cell>.ckpt``), in place of the checkpoint's own advice.
    """
    info: dict[str, Any] = {"ok": False, "error": error_line(exc)}
    if isinstance(exc, OSError) and exc.errno is not None:
        info["oserror"] = [exc.errno, exc.strerror or str(exc), exc.filename]
    if type(exc).__name__ == "CheckpointError" and checkpoint_dir:
        text = info["error"]
        for advice in _STALE_ADVICE:
            text = text.replace(f"; {advice}", "").replace(advice, "")
        info["error"] = text.rstrip("; ") + f"; to start this cell over: rm -r {shlex.quote(str(checkpoint_dir))}"
    return info


def _guard_for(lock: str):
    def guard(path):
        if not lock_is_held(lock):
            raise LockLostError(f"not writing {path}: the run that started this cell no longer holds {lock}")
    return guard


def execute_cell(task: CellTask) -> dict:
    """Run one cell (in whichever process the executor chose); never raises for a cell's fault."""
    import numpy as np

    from . import results
    from .training import null_progress

    start, cpu = time.perf_counter(), time.process_time()
    if task.lock:
        results.set_write_guard(_guard_for(task.lock))
    try:
        experiment = resolve(task.experiment)
        # a diverging run ends in one NonFiniteLossError line, not a stream of overflow warnings
        with np.errstate(over="ignore", invalid="ignore"):
            output = experiment.compute_cell(task.config, task.seed, task.key, task.progress or null_progress,
                                             task.checkpoint_dir)
        text = canonical_output(output, f"{task.label}: run_cell")
    except Exception as exc:  # reported as this cell's failure; the other cells go on
        return failure(exc, task.checkpoint_dir)
    finally:
        if task.lock:
            results.set_write_guard(None)
    from . import __version__

    return {"ok": True, "output": text, "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
            "failgeom": __version__, "worker": f"{socket.gethostname()}:{os.getpid()}"}


__all__ = ["CellTask", "LockLostError", "error_line", "execute_cell", "failure", "reference", "resolve"]
