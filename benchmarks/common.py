"""What the benchmark modules share: the smoke flag, a small numpy-style base class, a timer."""

from __future__ import annotations

import os
import time

import numpy as np

SMOKE_ENV = "FAILGEOM_BENCH_SMOKE"


def smoke() -> bool:
    """True when ``FAILGEOM_BENCH_SMOKE`` is set (not empty, not 0): every benchmark runs at a
    tiny size, once. The one place the flag is read; call it at setup time, not at import."""
    return os.environ.get(SMOKE_ENV, "") not in ("", "0")


class Benchmark:
    """Base of the benchmark classes (as NumPy's ``benchmarks/common.py``).

    A subclass lists its sizes in ``FULL`` and ``SMOKE`` (same keys); :meth:`setup` picks one by
    the smoke flag into ``self.sizes`` (a subclass's ``setup`` calls ``super().setup(*params)``
    first). asv attributes (``params``, ``param_names``, ``timeout``) are set per class.
    """

    timeout = 600
    FULL: dict = {}
    SMOKE: dict = {}

    def setup(self, *params) -> None:
        self.smoke = smoke()
        self.sizes = dict(self.SMOKE if self.smoke else self.FULL)


def median_seconds(fn, number: int, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of the mean time of ``number`` calls of ``fn`` (timeit style);
    one call in smoke mode."""
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
