"""What every experiment shares: config fields that declare what they accept, ``--set`` parsing,
the cell protocol and the :class:`Experiment` spec.

An experiment module defines a config dataclass (a subclass of :class:`ExperimentConfig`) whose
fields are declared with :func:`param` (type, interval, finiteness, choices, meaning), its
presets, its cells (``cells``, ``run_cell``, ``merge``) and ``figure(result) -> Figure``, and
registers an :class:`Experiment` in :mod:`failgeom.experiments`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..validation import TINY, fits_in_memory

DTYPE_NAMES = ("float32", "float64")


# ---------------------------------------------------------------------------------------------
# declared constraints


@dataclass(frozen=True)
class Constraint:
    """What a config field accepts: an interval (open or closed ends), finiteness, choices."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    allow_inf: bool = False
    allow_empty: bool = True

    def describe(self, kind: str) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = {"int": "an integer", "float": "a finite number" if not self.allow_inf else "a number",
                "bool": "true or false", "str": "a string"}.get(kind, kind)
        if self.low is not None or self.high is not None:
            lo = "-inf" if self.low is None else _num(self.low)
            hi = "inf" if self.high is None else _num(self.high)
            text += f" in {'(' if self.low_open or self.low is None else '['}{lo}, {hi}{')' if self.high_open or self.high is None else ']'}"
        return text

    def admits(self, value) -> bool:
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, (float, np.floating)) and 0 < abs(typing.cast(float, value)) < TINY:
            return False  # subnormal: see _check_scalar
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True


def _num(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def param(default, *, low=None, high=None, low_open: bool = False, high_open: bool = False,
          choices=None, allow_inf: bool = False, allow_empty: bool = True, doc: str = ""):
    """A config field with its constraint and meaning, checked by :meth:`ExperimentConfig.validate`.

    Parameters
    ----------
    default
        The default value (a tuple for tuple fields).
    low, high : number, optional
        The accepted interval (for tuple fields: of every element); ``low_open``/``high_open``
        exclude the end.
    choices : tuple, optional
        The accepted values of a str (or other) field.
    allow_inf : bool
        Accept +-inf for a float field (NaN is never accepted). A float field never accepts a
        subnormal number (non-zero, below 2.2e-308 in magnitude): it has lost its precision, and
        dividing by it overflows.
    allow_empty : bool
        Accept an empty tuple for a tuple field; ``False`` where a run needs at least one value.
    doc : str
        What the field is, in the paper's terms; ``failgeom show`` prints it.
    """
    constraint = Constraint(low, high, low_open, high_open, tuple(choices) if choices is not None else None,
                            allow_inf, allow_empty)
    return dataclasses.field(default=default, metadata={"constraint": constraint, "doc": doc})


def _kind(hint) -> tuple[str, bool, bool]:
    """(scalar kind, is_tuple, none_ok) of a field's type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    none_ok = False
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        none_ok = True
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return _kind(args[0])[0], True, none_ok
    if origin is typing.Literal:
        return "str", False, none_ok
    return {int: "int", float: "float", bool: "bool", str: "str"}.get(hint, "other"), False, none_ok


def _check_scalar(kind: str, value, constraint: Constraint, what: str):
    """Return the value (ints stay ints) or raise TypeError/ValueError naming ``what``."""
    accepted = constraint.describe(kind)
    if kind == "int":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{what} must be {accepted}, got {value!r} ({type(value).__name__})")
        value = int(value)
    elif kind == "float":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{what} must be {accepted}, got {value!r} ({type(value).__name__})")
        if math.isnan(value) or (math.isinf(value) and not constraint.allow_inf):
            raise ValueError(f"{what} must be {accepted}, got {value!r}")
        if 0 < abs(typing.cast(float, value)) < TINY:
            raise ValueError(f"{what} must be {accepted}, not a subnormal number (non-zero and below {TINY:.4g} "
                             f"in magnitude: it has lost its precision and overflows when divided into 1), "
                             f"got {value!r}")
    elif kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{what} must be true or false, got {value!r} ({type(value).__name__})")
    elif kind == "str":
        if not isinstance(value, str):
            raise TypeError(f"{what} must be {accepted}, got {value!r} ({type(value).__name__})")
    if kind in ("int", "float", "str") and not constraint.admits(value):
        raise ValueError(f"{what} must be {accepted}, got {value!r}")
    return value


@dataclass(frozen=True)
class ExperimentConfig:
    """Fields every experiment has: the number of replicas (seeds) and the float dtype.

    Subclasses declare their fields with :func:`param`; construction checks every field, and
    :meth:`validate` also refuses a config whose :meth:`memory_bytes` exceeds the memory
    available. Cross-field rules go in :meth:`check`.
    """

    replicas: int = param(5, low=1, high=10_000, doc="independent replicas (seeds) trained at once")
    dtype: str = param("float32", choices=DTYPE_NAMES, doc="float type of parameters and data")

    def __post_init__(self):
        self.check_fields()
        self.check()

    def check_fields(self) -> None:
        """Check every field against its type and declared constraint (TypeError/ValueError)."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            constraint = f.metadata.get("constraint", Constraint())
            kind, is_tuple, none_ok = _kind(hints[f.name])
            value = getattr(self, f.name)
            if value is None and none_ok:
                continue
            if kind == "other":
                continue
            if is_tuple:
                if not isinstance(value, tuple):
                    raise TypeError(f"{f.name} must be a tuple of {constraint.describe(kind)}, got {value!r}")
                if not value and not constraint.allow_empty:
                    raise ValueError(f"{f.name} must hold at least one value ({constraint.describe(kind)}), got ()")
                checked = tuple(_check_scalar(kind, v, constraint, f"every element of {f.name}") for v in value)
            else:
                checked = _check_scalar(kind, value, constraint, f.name)
            object.__setattr__(self, f.name, checked)

    def validate(self) -> "ExperimentConfig":
        """Check every field, the cross-field rules and the memory estimate; return self."""
        self.check_fields()
        self.check()
        fits_in_memory(self.memory_bytes(), f"this {type(self).__name__}")
        return self

    def check(self) -> None:
        """Experiment-specific cross-field checks (override); raise ValueError naming the field."""

    def memory_bytes(self) -> int:
        """Estimated peak memory of a run of this config in bytes (override; 0 = negligible)."""
        return 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def describe(cls, config: "ExperimentConfig | None" = None) -> list[dict]:
        """One row per field: name, type, value (of ``config``, else the default), what it
        accepts, and its meaning; ``failgeom show`` prints these."""
        hints = typing.get_type_hints(cls)
        rows = []
        for f in dataclasses.fields(cls):
            kind, is_tuple, none_ok = _kind(hints[f.name])
            constraint = f.metadata.get("constraint", Constraint())
            accepted = constraint.describe(kind) if kind != "other" else "(not settable)"
            if is_tuple:
                accepted = f"comma-separated list of {accepted}"
            if none_ok:
                accepted += " or none"
            value = getattr(config, f.name) if config is not None else f.default
            hint = hints[f.name]
            rows.append({"name": f.name, "type": hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", ""),
                         "value": value, "accepted": accepted, "doc": f.metadata.get("doc", "")})
        return rows


def _parse_scalar(kind, text: str, key: str):
    if kind is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--set {key}: expected true or false, got {text!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"--set {key}: expected an integer, got {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"--set {key}: expected a number, got {text!r}") from None
    if kind is str:
        return text
    raise ValueError(f"--set {key}: this field cannot be set from the command line")


def parse_value(hint, text: str, key: str):
    """Parse ``text`` into the type ``hint`` of a config field (int, float, bool, str,
    ``tuple[X, ...]`` as a comma-separated list, ``X | None`` with ``none``, ``Literal``)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if text.strip().lower() in ("none", "null", ""):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return parse_value(inner, text, key)
    if origin is typing.Literal:
        if text not in args:
            raise ValueError(f"--set {key}: expected one of {', '.join(map(str, args))}, got {text!r}")
        return text
    if origin is tuple:
        inner = args[0]
        parts = [p for p in text.split(",") if p.strip()]
        if not parts:
            raise ValueError(f"--set {key}: expected a comma-separated list, got {text!r}")
        return tuple(_parse_scalar(inner, p.strip(), key) for p in parts)
    return _parse_scalar(hint, text, key)


def with_overrides(config: ExperimentConfig, overrides: dict[str, str], name: str = "") -> ExperimentConfig:
    """A copy of ``config`` with ``key=value`` strings parsed by the fields' types, validated."""
    hints = typing.get_type_hints(type(config))
    fields = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for key, text in overrides.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ValueError(f"unknown config key {key!r} for {name or type(config).__name__} (known: {known})")
        changes[key] = parse_value(hints[key], text, key)
    return dataclasses.replace(config, **changes).validate()


# ---------------------------------------------------------------------------------------------
# cells and the experiment spec


def cell_name(key: tuple) -> str:
    """A cell key as text, e.g. ``(3, "end_to_end") -> "3 end_to_end"``."""
    return " ".join(str(part) for part in key)


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its name, description, presets, cells and figure.

    The unit of work is a **cell**: ``cells(config) -> list[tuple]`` names the independent parts
    (for example ``("d", 5)``), ``run_cell(config, seed, key, progress, checkpoint_dir=None,
    resume=False) -> dict`` computes one (JSON-able values only; its numbers depend on config,
    seed and key alone), and ``merge(config, seed, outputs, preset) -> Result`` joins the outputs
    ``{key: dict}`` of every cell. ``run(config, seed, progress, preset=...)`` is the serial
    composition of the cells unless an experiment gives its own. An experiment without cells is
    one cell ``("all",)`` whose output is its whole result. ``tiny`` is a config that runs in
    about a second (tests). ``summary(result) -> str`` is the one-line outcome the CLI prints.
    ``family`` is the failure family (1 non-informative gradients, 2 decomposition vs
    end-to-end, 3 architecture and conditioning, 4 flat activations) and orders
    ``failgeom list``. A ``resumable`` experiment's cells checkpoint into ``checkpoint_dir``.
    """

    name: str
    description: str
    presets: Mapping[str, ExperimentConfig]
    figure: Callable
    summary: Callable
    family: int
    run: Callable | None = None
    cells: Callable | None = None
    run_cell: Callable | None = None
    merge: Callable | None = None
    tiny: ExperimentConfig | None = None
    paper_ref: str = ""
    resumable: bool = False

    def __post_init__(self):
        given = [self.cells is not None, self.run_cell is not None, self.merge is not None]
        if any(given) and not all(given):
            raise TypeError(f"experiment {self.name!r}: cells, run_cell and merge go together")
        if self.run is None and not all(given):
            raise TypeError(f"experiment {self.name!r} needs run or cells/run_cell/merge")
        if self.run is None:
            def run(config, seed=0, progress=None, preset="custom", checkpoint_dir=None, resume=False):
                return run_cells_serially(self, config, seed, progress, preset, checkpoint_dir, resume)

            object.__setattr__(self, "run", run)

    def config(self, preset: str = "quick", **changes) -> ExperimentConfig:
        if preset not in self.presets:
            raise ValueError(f"unknown preset {preset!r} for {self.name} (known: {', '.join(self.presets)})")
        return dataclasses.replace(self.presets[preset], **changes).validate()

    def cell_keys(self, config) -> list[tuple]:
        """The keys of the config's cells, in the order a serial run computes them."""
        keys = [tuple(k) for k in self.cells(config)] if self.cells is not None else [("all",)]
        if len(set(keys)) != len(keys):
            raise ValueError(f"experiment {self.name!r} declares a cell twice: {keys}")
        return keys

    def compute_cell(self, config, seed: int, key: tuple, progress=None, checkpoint_dir=None,
                     resume: bool = False, preset: str = "custom") -> dict:
        """The output of one cell (a JSON-able dict)."""
        from ..training import null_progress

        progress = progress or null_progress
        extra = {"checkpoint_dir": checkpoint_dir, "resume": resume} if self.resumable else {}
        if self.run_cell is not None:
            return self.run_cell(config, seed, tuple(key), progress, **extra)
        return typing.cast(Callable, self.run)(config, seed, progress, preset=preset, **extra).to_dict()

    def merge_cells(self, config, seed: int, outputs: dict, preset: str = "custom"):
        """The experiment's Result from the outputs ``{key: dict}`` of all its cells."""
        from ..results import Result

        outputs = {tuple(k): v for k, v in outputs.items()}
        missing = [k for k in self.cell_keys(config) if k not in outputs]
        if missing:
            raise ValueError(f"experiment {self.name!r}: no output for cells {missing}")
        if self.merge is not None:
            return self.merge(config, seed, outputs, preset)
        result = Result.from_dict(outputs[("all",)])
        result.preset = preset
        return result


def run_cells_serially(experiment: Experiment, config, seed: int = 0, progress=None,
                       preset: str = "custom", checkpoint_dir=None, resume: bool = False):
    """Every cell of ``config`` in this process, one after another, then the merge."""
    config.validate()
    outputs = {}
    for key in experiment.cell_keys(config):
        folder = None
        if checkpoint_dir is not None:
            folder = os.path.join(os.fspath(checkpoint_dir), cell_name(key).replace(" ", "_").replace("/", "_"))
        outputs[key] = experiment.compute_cell(config, seed, key, progress, folder, resume, preset)
    return experiment.merge_cells(config, seed, outputs, preset)
