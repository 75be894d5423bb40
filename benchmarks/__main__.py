"""Run the asv-style benchmarks without asv: ``python -m benchmarks [--smoke] [-k TEXT]``.

Imports every ``benchmarks/bench_*.py`` and runs each class (and module-level function) over its
parameter grid, the way asv would: ``setup_cache`` once per class (its value is passed as the
first argument), ``setup``/``teardown`` around each parameter combination (``NotImplementedError``
in ``setup`` skips it), then

- ``time_*`` timeit-style: a call count that fills the time budget, ``repeat`` rounds, the median
  and the spread (min..max) of the per-call time. A time method whose ``reference`` attribute names
  another time method of the same class (a float32 GEMM of matching size, or the dense twin of a
  structured method) also gets the ratio of the two medians, both measured in this run;
- ``peakmem_*`` through :mod:`tracemalloc` (the peak of Python and NumPy allocations during one
  call; asv reports the whole process's peak RSS instead, so the numbers differ);
- ``track_*`` as returned, with the method's ``unit`` (the scaling exponents of the paper).

Rows are printed as they complete, in one table. ``--smoke`` (or ``FAILGEOM_BENCH_SMOKE=1``) runs
each benchmark once at the module's tiny sizes, over a covering subset of the grid (every value of
every parameter at least once), so CI can check that none has rotted; timings are never asserted.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import itertools
import os
import pkgutil
import sys
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from .common import SMOKE_ENV, smoke as smoke_flag

KINDS = ("time_", "peakmem_", "track_")


@dataclass
class Row:
    """One measured benchmark: ``kind`` is time, peakmem, track, skip or error."""

    name: str
    params: tuple
    kind: str
    value: object = None
    detail: str = ""


def _time(fn, budget: float, repeat: int, number: int | None = None):
    """(median, min, max) seconds per call; ``budget`` seconds in all, ``repeat`` rounds."""
    start = time.perf_counter()
    fn()  # warm-up, and the cost of one call
    once = max(time.perf_counter() - start, 1e-7)
    if budget <= 0:  # smoke: the warm-up call is the one run
        return once, once, once
    number = number or max(1, int(budget / repeat / once))
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return float(np.median(samples)), float(np.min(samples)), float(np.max(samples))


def _peakmem(fn) -> int:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        if not was_tracing:
            tracemalloc.stop()


def _fmt_time(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _fmt_value(row: Row) -> str:
    if row.kind == "time":
        return _fmt_time(row.value)
    if row.kind == "peakmem":
        return f"{row.value / 2**20:.3g} MiB"
    if row.kind == "track":
        if isinstance(row.value, (int, float, np.integer, np.floating)) and not isinstance(row.value, bool):
            return f"{float(row.value):.4g}"
        return repr(row.value)
    return row.kind


def _grid(params) -> list[list]:
    """asv's ``params``: a list of values (one parameter) or a list/tuple of lists."""
    if params is None or (isinstance(params, (list, tuple)) and len(params) == 0):
        return []
    if isinstance(params, (list, tuple)) and all(isinstance(p, (list, tuple)) for p in params):
        return [list(p) for p in params]
    return [list(params)]


def _combos(grid: list[list], smoke: bool) -> list[tuple]:
    if not grid:
        return [()]
    if not smoke:
        return list(itertools.product(*grid))
    # every value of every parameter at least once, not the whole product
    longest = max(len(axis) for axis in grid)
    return list(dict.fromkeys(tuple(axis[min(i, len(axis) - 1)] for axis in grid) for i in range(longest)))


def _ordered(methods: list[str], owner) -> list[str]:
    """Time methods first, and among them the references before the methods that cite them."""
    def key(name):
        refs = {getattr(getattr(owner, m), "reference", None) for m in methods}
        return (not name.startswith("time_"), name not in refs, name)

    return sorted(methods, key=key)


class _ModuleSuite:
    """Module-level ``time_*``/``track_*`` functions, seen as one class without state."""

    def __init__(self, module):
        self.module = module
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith(KINDS) and fn.__module__ == module.__name__:
                setattr(self, name, fn)


def _suites(module):
    """``(label, owner, make)`` for every benchmark class (and module functions) of ``module``."""
    short = module.__name__.rsplit(".", 1)[-1]
    if any(n.startswith(KINDS) for n, f in inspect.getmembers(module, inspect.isfunction)
           if f.__module__ == module.__name__):
        suite = _ModuleSuite(module)
        yield short, suite, lambda: suite
    for cls_name, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ == module.__name__ and not cls_name.startswith("_") \
                and any(m.startswith(KINDS) for m in dir(cls)):
            yield f"{short}.{cls_name}", cls, cls


def _import_modules():
    import benchmarks

    modules = []
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda i: i.name):
        if not info.name.startswith("bench_"):
            continue
        full = f"benchmarks.{info.name}"
        # reload: a module that still reads the smoke flag at import (sizes in class attributes)
        # sees the flag of this run; modules that read it in setup need no reload
        module = importlib.reload(sys.modules[full]) if full in sys.modules else importlib.import_module(full)
        modules.append(module)
    return modules


def run(filter_text: str = "", smoke: bool = False, budget: float = 1.0, repeat: int = 5, out=sys.stdout):
    """Run every benchmark whose ``module.Class.method`` name contains ``filter_text``.

    Returns ``(rows, failures)``: a :class:`Row` per method and parameter combination, and the
    number of rows that raised. In smoke mode ``FAILGEOM_BENCH_SMOKE=1`` is set while it runs.
    """
    previous = os.environ.get(SMOKE_ENV)
    if smoke:
        os.environ[SMOKE_ENV] = "1"
    try:
        smoke = smoke or smoke_flag()
        if smoke:
            budget, repeat = 0.0, 1
        rows: list[Row] = []
        _header(out)
        for module in _import_modules():
            for label, owner, make in _suites(module):
                methods = [m for m in dir(owner) if m.startswith(KINDS) and filter_text in f"{label}.{m}"]
                # a reference is measured with the methods that cite it, even if filtered out
                methods += [r for r in {getattr(getattr(owner, m), "reference", None) for m in methods}
                            if r and r not in methods and hasattr(owner, r)]
                if methods:
                    rows += _run_suite(label, owner, make, methods, smoke, budget, repeat, out)
        return rows, sum(r.kind == "error" for r in rows)
    finally:
        if previous is None:
            os.environ.pop(SMOKE_ENV, None)
        else:
            os.environ[SMOKE_ENV] = previous


def _emit(rows: list, row: Row, out) -> None:
    rows.append(row)
    params = ",".join(map(str, row.params))
    print(f"{row.name:<62} {params:<18} {_fmt_value(row):>12}  {row.detail}", file=out, flush=True)


def _header(out) -> None:
    print(f"{'benchmark':<62} {'params':<18} {'value':>12}  detail", file=out, flush=True)


def _run_suite(label, owner, make, methods, smoke, budget, repeat, out) -> list[Row]:
    rows: list[Row] = []
    methods = _ordered(methods, owner)
    cache = ()
    if hasattr(owner, "setup_cache"):
        try:
            cache = (make().setup_cache(),)
        except Exception as exc:  # a broken benchmark is reported, not fatal
            _emit(rows, Row(label, (), "error", detail=f"setup_cache: {type(exc).__name__}: {exc}"), out)
            return rows
    number = getattr(owner, "number", 0)
    number = number if isinstance(number, int) and number > 0 and not smoke else None
    for combo in _combos(_grid(getattr(owner, "params", None)), smoke):
        bench = make()
        args = (*cache, *combo)
        try:
            if hasattr(bench, "setup"):
                bench.setup(*args)
        except NotImplementedError as exc:  # asv: this combination is skipped
            _emit(rows, Row(label, combo, "skip", detail=str(exc)), out)
            continue
        except Exception as exc:
            _emit(rows, Row(label, combo, "error", detail=f"setup: {type(exc).__name__}: {exc}"), out)
            continue
        medians = {}
        for name in methods:
            fn = getattr(bench, name)
            full = f"{label}.{name}"
            try:
                if name.startswith("time_"):
                    med, lo, hi = _time(lambda: fn(*args), budget, repeat, number)  # noqa: B023
                    medians[name] = med
                    detail = "smoke: one call" if smoke else f"spread {_fmt_time(lo)}..{_fmt_time(hi)}"
                    ref = getattr(fn, "reference", None)
                    if ref:
                        detail += (f"; {med / medians[ref]:.3g}x {ref}" if ref in medians
                                   else f"; reference {ref} not measured")
                    _emit(rows, Row(full, combo, "time", med, detail), out)
                elif name.startswith("peakmem_"):
                    _emit(rows, Row(full, combo, "peakmem", _peakmem(lambda: fn(*args))), out)  # noqa: B023
                else:
                    _emit(rows, Row(full, combo, "track", fn(*args), getattr(fn, "unit", "")), out)
            except Exception as exc:
                _emit(rows, Row(full, combo, "error", detail=f"{type(exc).__name__}: {exc}"), out)
        if hasattr(bench, "teardown"):
            try:
                bench.teardown(*args)
            except Exception as exc:
                _emit(rows, Row(label, combo, "error", detail=f"teardown: {type(exc).__name__}: {exc}"), out)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one call each")
    parser.add_argument("-k", default="", metavar="TEXT",
                        help="only benchmarks whose module.Class.method name contains TEXT")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per time benchmark (default 1)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds per time benchmark (default 5)")
    args = parser.parse_args(argv)
    if args.budget <= 0 or args.repeat < 1:
        parser.error("--budget must be positive and --repeat at least 1")
    start = time.perf_counter()
    rows, failures = run(args.k, args.smoke, args.budget, args.repeat)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{len(rows)} rows, {failures} errors in {time.perf_counter() - start:.1f} s "
          f"(load average {load:.1f} on {os.cpu_count()} CPUs)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
