"""The experiment registry: one module per paper experiment, each registering itself here.

The CLI, ``reproduce``, docs and benchmarks all read this one list. Experiments of other
installed packages join it through the entry-point group ``failgeom.experiments`` (each entry
names a module that registers its experiments when imported, or an :class:`Experiment`); see
"Adding an experiment" in docs/architecture.md.
"""

from __future__ import annotations

from .base import Experiment, ExperimentConfig, with_overrides

REGISTRY: dict[str, Experiment] = {}
#: the entry-point group through which other packages add experiments
ENTRY_POINT_GROUP = "failgeom.experiments"
_PLUGINS: dict[str, str] = {}  # entry points loaded so far -> "" or why one failed


def register(experiment: Experiment) -> Experiment:
    """Add an experiment to the registry, so ``failgeom list``, ``run`` and ``reproduce`` find it.

    Parameters
    ----------
    experiment : Experiment
        The declaration to register under ``experiment.name``.

    Returns
    -------
    Experiment
        ``experiment`` itself.

    Raises
    ------
    ValueError
        If an experiment of that name is registered already.
    """
    if experiment.name in REGISTRY:
        raise ValueError(f"experiment {experiment.name!r} is registered twice")
    REGISTRY[experiment.name] = experiment
    return experiment


def get(name: str) -> Experiment:
    """The registered experiment called ``name`` (built-in or from a plugin).

    Parameters
    ----------
    name : str
        Its registered name, as ``failgeom list`` prints it (``"parity"``).

    Returns
    -------
    Experiment

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
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
    _load_plugins()


def _load_plugins() -> None:
    """Import every ``failgeom.experiments`` entry point once; one that fails to load is named
    in one warning and left out (failgeom's own experiments still work)."""
    import warnings
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = f"{ep.name} = {ep.value}"
        if key in _PLUGINS:
            continue
        try:
            obj = ep.load()
            if isinstance(obj, Experiment) and REGISTRY.get(obj.name) is not obj:
                register(obj)
            _PLUGINS[key] = ""
        except Exception as exc:  # a broken plugin must not break the registry
            _PLUGINS[key] = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"failgeom: the experiment plugin {key!r} failed to load ({_PLUGINS[key]})",
                          RuntimeWarning, stacklevel=3)


__all__ = ["ENTRY_POINT_GROUP", "Experiment", "ExperimentConfig", "REGISTRY", "get", "names", "register",
           "with_overrides"]
