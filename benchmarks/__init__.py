"""asv-style benchmarks of failgeom (see docs/benchmarks.md).

Importing this package first applies failgeom's process defaults (one BLAS thread, a malloc that
keeps freed memory: :func:`failgeom.runtime.configure`), before any benchmark module imports
NumPy, so the benchmarks measure what the ``failgeom`` command runs. Set OPENBLAS_NUM_THREADS
(or MKL/OMP_NUM_THREADS) before starting Python to measure another thread count; a process that
loaded NumPy before importing this package keeps the BLAS threads it started with.

Set ``FAILGEOM_BENCH_SMOKE=1`` (or run ``python -m benchmarks --smoke``) to shrink every benchmark
to a size that runs in seconds; :func:`benchmarks.common.smoke` is where the flag is read.
"""

from failgeom import runtime

#: what :func:`failgeom.runtime.configure` did (BLAS threads, whether NumPy was loaded before)
RUNTIME = runtime.configure()
