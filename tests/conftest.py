"""Test-wide settings: hypothesis profiles for numeric work (no deadlines).

With the environment variable ``CI`` set, the ``ci`` profile is derandomized (the same examples
on every run, no example database), so a CI run cannot fail on a new example; locally the ``dev``
profile keeps exploring new examples on every run. ``HYPOTHESIS_PROFILE`` picks one explicitly
(``thorough``: 500 examples per test).
"""

import os

from failgeom.runtime import configure

# as the CLI does: one BLAS thread (before NumPy is first imported) and a malloc that keeps memory
configure()

import matplotlib  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

matplotlib.use("Agg")

_COMMON = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", **_COMMON)
settings.register_profile("thorough", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
