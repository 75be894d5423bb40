"""The experiment registry: one module per paper experiment, each registering itself here.

The CLI, ``reproduce``, docs and benchmarks all read this one list.
"""

from __future__ import annotations

from .base import Experiment, ExperimentConfig, with_overrides

REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    if experiment.name in REGISTRY:
        raise ValueError(f"experiment {experiment.name!r} is registered twice")
    REGISTRY[experiment.name] = experiment
    return experiment


def get(name: str) -> Experiment:
    """The experiment called ``name``; ValueError listing the known names otherwise."""
    _load_all()
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r} (known: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[name]


def names() -> list[str]:
    """Registered names, ordered by failure family, then name."""
    _load_all()
    return sorted(REGISTRY, key=lambda n: (REGISTRY[n].family, n))


def _load_all() -> None:
    # every module of this package registers its experiments when imported
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


__all__ = ["Experiment", "ExperimentConfig", "REGISTRY", "get", "names", "register", "with_overrides"]
