"""Test-wide settings: hypothesis profiles for numeric work (no deadlines).

The default profile, ``deterministic``, is the same for everyone wherever the suite runs:
derandomized (every run draws the same examples, no example database), so `make test` passes or
fails identically on every machine. Exploring is opt-in: ``HYPOTHESIS_PROFILE=explore`` (``make
test-explore``) draws fresh examples on every run and keeps failing ones in ``.hypothesis/`` to
replay them; ``HYPOTHESIS_PROFILE=thorough`` explores with 500 examples for every test that does
not set its own count. A failure found by exploring is a bug to fix (then pinned with
``@example``), never a reason to loosen a test.
"""

import os

from failgeom.runtime import configure

# as the CLI does: one BLAS thread (before NumPy is first imported) and a malloc that keeps memory
configure()

import matplotlib  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

matplotlib.use("Agg")

PROFILES = ("deterministic", "explore", "thorough")
_COMMON = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deterministic", derandomize=True, database=None, **_COMMON)
settings.register_profile("explore", **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)

_profile = os.environ.get("HYPOTHESIS_PROFILE") or "deterministic"
if _profile in PROFILES:
    settings.load_profile(_profile)


def pytest_configure(config):
    if _profile not in PROFILES:
        raise pytest.UsageError(f"HYPOTHESIS_PROFILE must be one of {', '.join(PROFILES)}, got {_profile!r}")


def pytest_report_header(config):
    how = "the same examples every run" if _profile == "deterministic" else "fresh examples every run"
    return f"hypothesis profile: {_profile} ({how}; HYPOTHESIS_PROFILE=explore to explore)"
