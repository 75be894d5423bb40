"""Process-level settings for failgeom's workload: one BLAS thread and a malloc that keeps memory.

failgeom's training steps are many small matrix products on arrays of a few hundred KB to a few
MB, allocated and freed every step. Two process-wide defaults hurt that workload:

- a multi-threaded BLAS loses time handing tiny GEMMs between threads, and collapses when the
  machine is shared (measured 5-100x slower under load);
- glibc's malloc returns freed memory above its trim threshold to the OS after every step, so
  the next step faults it back in page by page (the parity step at R = 8: ~570 minor page faults
  per step, 2.3x the time of the same step without them).

:func:`configure` sets one BLAS thread (unless the user set the variables; effective only if
NumPy has not been imported yet) and raises glibc's trim and mmap thresholds with ``mallopt``.
The ``failgeom`` command, the test suite, the benchmarks and every worker process of the runner
call it first thing; a library user may call it before importing NumPy. :func:`usable_cores`
is the default number of workers. Nothing here changes a number, only how fast it comes.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_TRIM_BYTES = 256 * 2**20  # keep up to 256 MiB of freed heap instead of returning it each step
_MMAP_BYTES = 32 * 2**20   # glibc's largest mmap threshold on 64-bit: smaller arrays use the heap


def configure(blas_threads: int = 1) -> dict:
    """Apply the process defaults described in the module docstring.

    Parameters
    ----------
    blas_threads : int
        Threads per BLAS, written to each of ``BLAS_VARIABLES`` that is not already set.

    Returns
    -------
    dict
        What was done: ``blas_threads`` (the ``OPENBLAS_NUM_THREADS`` now in effect, a str),
        ``numpy_loaded_before`` (True: too late for the BLAS setting) and ``malloc_tuned``
        (see :func:`tune_malloc`).

    Raises
    ------
    TypeError, ValueError
        If ``blas_threads`` is not a positive int.
    """
    if isinstance(blas_threads, bool) or not isinstance(blas_threads, int) or blas_threads < 1:
        from .validation import positive_int  # only here: NumPy must not load before the variables are set

        positive_int(blas_threads, "blas_threads")
    for var in BLAS_VARIABLES:
        os.environ.setdefault(var, str(blas_threads))
    return {"blas_threads": os.environ["OPENBLAS_NUM_THREADS"], "numpy_loaded_before": "numpy" in sys.modules,
            "malloc_tuned": tune_malloc()}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def tune_malloc() -> bool:
    """Raise glibc's malloc trim and mmap thresholds; False where there is no glibc."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_BYTES) == 1
        return ok and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES) == 1
    except (OSError, AttributeError):
        return False
