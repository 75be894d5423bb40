"""asv-style benchmarks of failgeom (see docs/benchmarks.md).

Set ``FAILGEOM_BENCH_SMOKE=1`` to shrink every benchmark to a size that runs in seconds.
"""
