"""Helpers shared by the benchmark modules: smoke mode and a median-of-repeats timer."""

from __future__ import annotations

import os
import time

from failgeom.runtime import configure

# what the failgeom command runs with: one BLAS thread and a malloc that keeps freed memory
# (failgeom.runtime); set OPENBLAS_NUM_THREADS before running to measure another setting
configure()

import numpy as np  # noqa: E402


def smoke() -> bool:
    """True when ``FAILGEOM_BENCH_SMOKE=1``: every benchmark runs at a tiny size, once."""
    return os.environ.get("FAILGEOM_BENCH_SMOKE", "") not in ("", "0")


def median_seconds(fn, number: int, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of the mean time of ``number`` calls of ``fn`` (timeit style)."""
    if smoke():
        number, repeat = 1, 1
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return float(np.median(times))
