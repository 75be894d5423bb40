"""failgeom: reproduce and verify "Failures of Gradient-Based Deep Learning" in pure NumPy.

Shalev-Shwartz, Shamir and Shammah, ICML 2017 (arXiv 1703.07950). Subpackages: ``nn`` (network
parts with hand-written gradients over a replica axis), ``theory`` (closed forms and exact
numerics for each theorem), ``problems`` (data generators), ``experiments`` (one module per
paper experiment), ``training``, ``runner`` (experiments as cells on local cores or Dask),
``verify``, ``report``. They load on first use, so ``import failgeom`` is instant::

    import failgeom
    failgeom.theory.condition_number(1000)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: the subpackages and modules reachable as attributes, each imported when first used
SUBMODULES = ("nn", "theory", "problems", "experiments", "training", "results", "store", "executors",
              "runner", "reproduction", "verify", "claims", "report", "plotting", "runtime")


def __getattr__(name: str):
    if name in SUBMODULES:
        try:
            return importlib.import_module(f"{__name__}.{name}")  # also sets the attribute
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(SUBMODULES))
