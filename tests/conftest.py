"""Test-wide settings: a hypothesis profile sized for CI (numeric work, no deadlines)."""

import os

from failgeom.runtime import configure

# as the CLI does: one BLAS thread (before NumPy is first imported) and a malloc that keeps memory
configure()

import matplotlib  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

matplotlib.use("Agg")

settings.register_profile(
    "ci", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
