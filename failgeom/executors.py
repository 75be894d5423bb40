"""Where the runner's tasks run: this process, local worker processes, or a Dask cluster.

An executor is a context manager with ``run(tasks)``, which yields ``(task key, ok, value)`` as
each task finishes (``value`` is the return value, or the exception when ``ok`` is False), in
completion order. Entering an executor that is already entered reuses its workers (only the
outermost ``with`` starts and stops them), so several runs can share one pool or cluster. Tasks are :class:`Task` triples of a key, a picklable module-level function
and its argument; the key is unique per task, so Dask never merges two of them.

- :class:`SerialExecutor`: one after another in this process (progress bars inside a task show);
- :class:`LocalExecutor`: ``jobs`` spawned worker processes (``concurrent.futures``), each with
  one BLAS thread, so N workers use N cores without oversubscribing them. A worker ends with
  its driver, even after ``kill -9``: a watchdog thread ends it within half a second, and on
  Linux the kernel at once (``PR_SET_PDEATHSIG``) when the driver's main thread started it;
- :class:`DaskExecutor`: an existing cluster through ``distributed.Client(address)``, or a
  ``distributed.LocalCluster`` of ``jobs`` single-threaded worker processes for ``"local"``.
  Results stream back with ``as_completed``; a task whose worker dies is rescheduled by the
  scheduler and a task that raises is retried ``retries`` times. A scheduler that goes away
  mid-run raises :class:`SchedulerLostError` (one line; the runner adds what is stored and how
  to resume). ``distributed`` is imported only here, only when this executor is used, and its
  own log messages are kept off the user's stderr while it runs.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from .runtime import BLAS_VARIABLES, usable_cores
from .store import RunError

ENV_SCHEDULER = "DASK_SCHEDULER_ADDRESS"
PR_SET_PDEATHSIG = 1


class SchedulerLostError(RunError):
    """The Dask scheduler went away (or the connection to it) while tasks were running."""

    def __init__(self, address: str, why: str = "", advice: str = ""):
        self.address, self.why, self.advice = address, why, advice
        super().__init__(f"lost the Dask scheduler at {address}" + (f" ({why})" if why else "")
                         + (f"; {advice}" if advice else ""))


class Task(NamedTuple):
    key: str
    fn: Callable
    arg: object


class SerialExecutor:
    """Run every task in this process, in the given order."""

    workers = 1
    in_process = True

    def describe(self) -> str:
        return "in this process"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, tasks) -> Iterator[tuple[str, bool, object]]:
        for task in tasks:
            try:
                value = task.fn(task.arg)
            except Exception as exc:
                yield task.key, False, exc
            else:
                yield task.key, True, value


def _end_with_parent(parent: int, pdeathsig: bool) -> None:
    """End this process when ``parent`` (its driver) ends, even by ``kill -9``.

    A daemon thread polls the parent pid every half second and ends the process. On Linux, when
    the driver started its workers from its main thread (``pdeathsig``), the kernel also sends
    SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``; it fires when the thread that
    started the worker ends, hence only the main thread), which also ends a worker stuck in a
    long C call; the parent may have died before that call, hence the check after it.
    """
    import signal

    if pdeathsig and sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        import time

        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="failgeom-parent-watchdog", daemon=True).start()


def _noop() -> None:
    """A task that makes the pool start a worker process (see :meth:`LocalExecutor.__enter__`)."""


def _worker_init(parent: int | None = None, pdeathsig: bool = False) -> None:
    import signal

    from .runtime import configure

    if parent is not None:
        _end_with_parent(parent, pdeathsig)
    # Ctrl-C reaches the whole process group: the driver handles it and stops the workers, which
    # would otherwise each print a traceback ("Process SpawnProcess-2: ... KeyboardInterrupt")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure()


class LocalExecutor:
    """``jobs`` worker processes on this machine (``spawn`` context, one BLAS thread each)."""

    in_process = False

    def __init__(self, jobs: int | None = None):
        self.workers = jobs or usable_cores()
        self._pool: Any = None  # a ProcessPoolExecutor while entered
        self._saved: dict = {}
        self._depth = 0

    def describe(self) -> str:
        return f"on {self.workers} local worker process{'es' if self.workers != 1 else ''}"

    def __enter__(self):
        import concurrent.futures as cf
        import multiprocessing

        self._depth += 1
        if self._depth > 1:
            return self
        # one BLAS thread per worker unless the user chose otherwise; workers inherit the
        # environment when they start, which is on the first submit, so keep it set until exit
        self._saved = {var: os.environ.get(var) for var in BLAS_VARIABLES}
        for var in BLAS_VARIABLES:
            os.environ.setdefault(var, "1")
        main = threading.current_thread() is threading.main_thread()
        self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_worker_init, initargs=(os.getpid(), main))
        # start every worker now, from this thread (the parent death signal follows the thread
        # that started a worker): one submit per worker starts one process each
        from concurrent.futures.process import BrokenProcessPool

        try:
            for future in [self._pool.submit(_noop) for _ in range(self.workers)]:
                future.result()
        except BrokenProcessPool:
            self.__exit__(BrokenProcessPool, None, None)
            raise WorkersLostError(broken_pool_reason()) from None
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth:
            return False
        try:
            if exc[0] is not None:  # interrupted or failed: stop the running cells too, and do not
                # wait on the pool's own machinery, which an interrupt may have caught mid-step
                # (no future is cancelled first: the pool marks its pending futures broken, and a
                # cancelled one makes Python 3.11's pool thread print an InvalidStateError)
                processes = list((getattr(self._pool, "_processes", None) or {}).values())
                for process in processes:
                    process.terminate()
                self._pool.shutdown(wait=False)
                for process in processes:
                    process.join(5)
            else:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        finally:
            for var, value in self._saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value
        return False

    def run(self, tasks) -> Iterator[tuple[str, bool, object]]:
        import concurrent.futures as cf
        from concurrent.futures.process import BrokenProcessPool

        futures = {self._pool.submit(task.fn, task.arg): task.key for task in tasks}
        for future in cf.as_completed(futures):  # a consumer that stops early raises: __exit__ stops the pool
            exc = future.exception()
            if isinstance(exc, BrokenProcessPool):  # not the cell's fault: say why, once
                raise WorkersLostError(broken_pool_reason()) from None
            yield (futures[future], False, exc) if exc is not None else (futures[future], True, future.result())


class WorkersLostError(RunError):
    """The local worker processes died or could not start."""


def has_main_guard(path) -> bool:
    """Whether the script ``path`` has a top-level ``if __name__ == "__main__":`` block."""
    import ast

    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return True  # cannot tell: do not blame the script
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.dump(node.test) and "__name__" in ast.dump(node.test):
            return True
    return False


def broken_pool_reason() -> str:
    """One line for a pool whose workers died: a script without a ``__main__`` guard (every spawned
    worker imports the main script again), or a worker killed (out of memory, a signal)."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if script and not has_main_guard(script):
        return (f"the worker processes could not start: {script} calls failgeom's runner when it is imported, "
                "and each worker process imports it again; put that call under "
                "'if __name__ == \"__main__\":'")
    return ("a local worker process died (killed, or out of memory); every finished cell is stored: "
            "run again to continue")


def refuse_in_bootstrapping_worker() -> None:
    """In a worker process that is importing the user's script (no ``__main__`` guard), end it
    quietly: the driver then says what to change in one line (:func:`broken_pool_reason`)."""
    import multiprocessing

    # while a spawned process runs the main script, it is "__mp_main__", not yet "__main__"
    booting = "__mp_main__" in sys.modules and sys.modules["__mp_main__"] is not sys.modules.get("__main__")
    if booting and getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(1)


def import_distributed():
    """The ``distributed`` module, or ValueError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ValueError("--scheduler needs Dask: pip install -e \".[dask]\" (or pip install "
                         "\"dask[distributed]\")") from None
    return distributed


class DaskExecutor:
    """Tasks on a Dask cluster: ``address`` of a running scheduler, or ``"local"``."""

    in_process = False
    timeout = "20s"  # to connect to a scheduler

    def __init__(self, address: str, jobs: int | None = None, retries: int = 2):
        self.address = address
        self.workers = jobs or usable_cores()
        self.retries = retries
        self.client: Any = None  # a distributed.Client (and LocalCluster) while entered
        self.cluster: Any = None
        self._depth = 0

    def describe(self) -> str:
        if self.cluster is not None:
            return f"on a Dask LocalCluster of {self.workers} worker process{'es' if self.workers != 1 else ''}"
        return f"on the Dask cluster at {self.address}"

    def __enter__(self):
        self._depth += 1
        if self._depth == 1:
            try:
                self._start()
            except BaseException:
                self._depth = 0
                self._stop()
                raise
        return self

    def _start(self) -> None:
        distributed = import_distributed()
        self._log_levels: dict[str, int] = {}
        self._quiet_logs()
        if self.address == "local":
            import warnings

            with warnings.catch_warnings():  # no dashboard; its HTTP port falls back quietly
                warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)
                self.cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                                        processes=True, dashboard_address=None)
            self.client = distributed.Client(self.cluster)
            self._quiet_logs()
        else:
            try:
                self.client = distributed.Client(self.address, timeout=self.timeout)
            except (OSError, TimeoutError) as exc:
                raise ValueError(f"--scheduler {self.address}: cannot connect ({exc})") from None
            self._quiet_logs()

    def _quiet_logs(self) -> None:
        """distributed logs a lost connection or a cancelled task with tracebacks on stderr; the run
        reports such events itself, in one line. Its loggers stay quiet until :meth:`_stop`."""
        import logging

        names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in ("distributed", "tornado")]
        for name in ["distributed", "tornado", *names]:
            if name not in self._log_levels:
                self._log_levels[name] = logging.getLogger(name).level
                logging.getLogger(name).setLevel(logging.CRITICAL + 1)

    def __exit__(self, *exc):
        self._depth = max(0, self._depth - 1)
        if not self._depth:
            self._stop()
        return False

    def _stop(self) -> None:
        import logging

        try:
            if self.client is not None:
                try:
                    self.client.close(timeout=5)
                except Exception:  # a scheduler that is gone cannot be said goodbye to
                    pass
        finally:
            try:
                if self.cluster is not None:
                    self.cluster.close()
            finally:
                self.client = self.cluster = None
                for name, level in getattr(self, "_log_levels", {}).items():
                    logging.getLogger(name).setLevel(level)
                self._log_levels = {}

    def _lost(self, why: str = "") -> SchedulerLostError:
        return SchedulerLostError(self.address if self.cluster is None else "local", why)

    def _connected(self) -> bool:
        return self.client is not None and getattr(self.client, "status", "running") == "running"

    def run(self, tasks) -> Iterator[tuple[str, bool, object]]:
        from distributed import as_completed

        try:
            futures = [self.client.submit(task.fn, task.arg, key=task.key, pure=False, retries=self.retries)
                       for task in tasks]
        except (OSError, TimeoutError) as exc:
            raise self._lost(type(exc).__name__) from None
        try:
            for future in as_completed(futures):
                try:
                    if future.status == "finished":
                        value = future.result()
                    elif future.status == "error":
                        value = future.exception()
                    else:  # cancelled or lost: the scheduler forgot it, or we lost the scheduler
                        raise self._lost("its tasks were cancelled" if self._connected() else "")
                except SchedulerLostError:
                    raise
                except (OSError, TimeoutError, Exception) as exc:
                    if not self._connected():
                        raise self._lost() from None
                    if future.status == "finished":
                        raise
                    value = exc
                if future.status == "finished":
                    yield future.key, True, value
                else:
                    yield future.key, False, value if value is not None else RuntimeError("cancelled")
        finally:
            if self._connected():
                try:
                    self.client.cancel([f for f in futures if not f.done()])
                except Exception:
                    pass


def make_executor(jobs: int | None = None, scheduler: str | None = None, pending: int | None = None):
    """The executor for ``--jobs``/``--scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``).

    Without a scheduler, ``min(jobs, pending)`` local processes, or this process when that is 1.
    """
    scheduler = scheduler or os.environ.get(ENV_SCHEDULER) or None
    if scheduler:
        return DaskExecutor(scheduler, jobs)
    workers = jobs or usable_cores()
    if pending is not None:
        workers = min(workers, pending)
    return SerialExecutor() if workers <= 1 else LocalExecutor(workers)


__all__ = ["DaskExecutor", "ENV_SCHEDULER", "LocalExecutor", "SchedulerLostError", "SerialExecutor", "Task",
           "WorkersLostError", "broken_pool_reason", "has_main_guard", "make_executor", "refuse_in_bootstrapping_worker"]
