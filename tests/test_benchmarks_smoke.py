"""Every asv benchmark runs once at its smoke size (``FAILGEOM_BENCH_SMOKE=1``) without error, so
none rots between benchmark runs. Timings are never asserted here."""

import importlib
import inspect
import io
import os
import pkgutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the benchmarks package sits next to failgeom, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks.__main__ import KINDS, _combos, _grid, _ordered, main, run  # noqa: E402

MODULES = sorted(i.name for i in pkgutil.iter_modules([str(ROOT / "benchmarks")]) if i.name.startswith("bench_"))


def benchmark_methods(module_name):
    """``{label: [method names]}`` of a benchmark module, as the runner labels them."""
    module = importlib.import_module(f"benchmarks.{module_name}")
    found = {}
    for cls_name, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ == module.__name__ and not cls_name.startswith("_"):
            methods = [m for m in dir(cls) if m.startswith(KINDS)]
            if methods:
                found[f"{module_name}.{cls_name}"] = methods
    functions = [n for n, f in inspect.getmembers(module, inspect.isfunction)
                 if n.startswith(KINDS) and f.__module__ == module.__name__]
    if functions:
        found[module_name] = functions
    return found


def test_there_are_benchmarks():
    assert "bench_parity" in MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_every_benchmark_runs_in_smoke_mode(module_name):
    out = io.StringIO()
    rows, failures = run(f"{module_name}.", smoke=True, out=out)
    errors = [f"{r.name} {r.params}: {r.detail}" for r in rows if r.kind == "error"]
    assert failures == 0 and errors == [], "\n".join(errors)
    measured = {r.name for r in rows if r.kind in ("time", "peakmem", "track")}
    skipped = {r.name for r in rows if r.kind == "skip"}
    for label, methods in benchmark_methods(module_name).items():
        for m in methods:
            # each method measured at least once, unless setup skipped every combination (asv's
            # NotImplementedError, e.g. an optional reference library that is not installed)
            assert f"{label}.{m}" in measured or (label in skipped and not any(
                n.startswith(f"{label}.") for n in measured)), f"{label}.{m} did not run"
    for r in rows:
        if r.kind == "time":
            assert r.value > 0
        if r.kind == "track":  # a track returns a number (asv requires one)
            assert isinstance(r.value, (int, float)) or hasattr(r.value, "__float__"), (r.name, r.value)
    assert os.environ.get("FAILGEOM_BENCH_SMOKE") is None  # the runner restored the environment
    assert out.getvalue().splitlines()[0].startswith("benchmark")


def test_smoke_grid_covers_every_parameter_value():
    grid = _grid(([1, 2, 3], ["a", "b"]))
    combos = _combos(grid, smoke=True)
    assert combos == [(1, "a"), (2, "b"), (3, "b")]
    assert len(_combos(grid, smoke=False)) == 6
    assert _grid([1, 8]) == [[1, 8]] and _combos([], smoke=True) == [()]


class _WithReference:
    params = [[4]]

    def time_fast(self, n):
        pass

    def time_gemm(self, n):
        pass

    time_fast.reference = "time_gemm"

    def track_y(self, n):
        return 1.0


def test_references_are_measured_first_and_ratio_reported(monkeypatch):
    assert _ordered(["track_y", "time_fast", "time_gemm"], _WithReference) == ["time_gemm", "time_fast", "track_y"]
    import benchmarks.__main__ as runner

    rows = runner._run_suite("m.C", _WithReference, _WithReference, ["time_fast", "time_gemm"],
                             False, 0.01, 2, io.StringIO())
    fast = next(r for r in rows if r.name == "m.C.time_fast")
    assert "x time_gemm" in fast.detail


def test_bad_budget_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        main(["--budget", "0"])
    assert exc.value.code == 2
