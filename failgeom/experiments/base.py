"""What every experiment shares: config fields that declare what they accept, ``--set`` parsing,
the cell protocol and the :class:`Experiment` spec.

An experiment module defines a config dataclass (a subclass of :class:`ExperimentConfig`) whose
fields are declared with :func:`param` (type, interval, finiteness, choices, meaning), its
presets, its cells (``cells``, ``run_cell``, and ``merge`` only where cells combine) and
``figure(result) -> Figure``, and registers one :class:`Experiment` declaration in
:mod:`failgeom.experiments`; the framework here supplies each :class:`Cell` (streams, progress,
checkpoint folder), the timing and the Result envelope.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import time
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..validation import TINY, fits_in_memory

DTYPE_NAMES = ("float32", "float64")

#: The largest float32 (about 3.4e38): a learning rate above it becomes inf when cast to the
#: float32 of the parameters, so a float32-trained rate is bounded here (a real bound; below it a
#: diverging run ends in one NonFiniteLossError line).
F32_MAX = float(np.finfo(np.float32).max)


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
        if self.low is not None and self.high is None:  # open-ended: "an integer >= 1", "a finite number > 0"
            return f"{text} {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.low is None and self.high is not None:
            return f"{text} {'<' if self.high_open else '<='} {_num(self.high)}"
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
        The accepted interval (for tuple fields: of every element); None leaves that end open.
    low_open, high_open : bool
        Exclude ``low`` (``high``) itself: ``low=0, low_open=True`` accepts only positive values.
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

    Returns
    -------
    dataclasses.Field
        The field, with the constraint and ``doc`` in its metadata, to assign in a subclass of
        :class:`ExperimentConfig`.
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

    Parameters
    ----------
    replicas : int
        Independent replicas (seeds) trained at once as one batched computation (>= 1).
    dtype : {"float32", "float64"}
        Float type of the parameters and the data.

    Raises
    ------
    TypeError, ValueError
        At construction, for a field of the wrong type or outside what it accepts (naming the
        field, the value and what is accepted), or a cross-field rule of :meth:`check`.
    """

    replicas: int = param(5, low=1, doc="independent replicas (seeds) trained at once")
    dtype: str = param("float32", choices=DTYPE_NAMES, doc="float type of parameters and data")

    def __post_init__(self):
        self.check_fields()
        self.check()

    def check_fields(self) -> None:
        """Check every field against its type and declared constraint; ints stay ints.

        Raises
        ------
        TypeError
            For a value of the wrong type (a str for an int field, a bool for a number).
        ValueError
            For a value outside the declared interval or choices, NaN (or inf where not allowed),
            a subnormal float or an empty tuple where one value is needed.
        """
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
        """Check every field, the cross-field rules and the memory estimate.

        Returns
        -------
        ExperimentConfig
            ``self``, so ``config = replace(preset, steps=10).validate()`` reads as one step.

        Raises
        ------
        TypeError, ValueError
            As :meth:`check_fields` and :meth:`check`; ValueError also when
            :meth:`memory_bytes` exceeds the memory available (``validation.fits_in_memory``).
        """
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
        """The fields as a JSON-able dict (tuples become lists when written)."""
        return dataclasses.asdict(self)

    @classmethod
    def describe(cls, config: "ExperimentConfig | None" = None) -> list[dict]:
        """One row per field: name, type, value, what it accepts, and its meaning.

        Parameters
        ----------
        config : ExperimentConfig, optional
            A config whose values fill the rows' ``value``; None: the declared defaults.

        Returns
        -------
        list of dict
            ``{"name", "type", "value", "accepted", "doc"}`` per field, in declaration order;
            ``failgeom show`` prints these.
        """
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


def cell_label(key: tuple) -> str:
    """A cell key as people read it, e.g. ``("k", 3, "end_to_end") -> "k=3 end-to-end"``.

    Parameters
    ----------
    key : tuple
        A cell key as ``cells(config)`` lists it.

    Returns
    -------
    str
        A str part followed by a non-str part reads ``name=value``; other parts stand alone
        (``_`` as ``-``). The default merge keys results by it, and the runner's messages and
        bars show it.
    """
    parts, rest = [], list(key)
    while rest:
        part = rest.pop(0)
        if isinstance(part, str) and rest and not isinstance(rest[0], str):
            parts.append(f"{part}={rest.pop(0)}")
        else:
            parts.append(str(part).replace("_", "-"))
    return " ".join(parts)


_SAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")


def cell_file_name(key: tuple) -> str:
    """The file-safe name of a cell key: its record is ``<name>.json`` and its checkpoints live in
    ``<name>.ckpt/`` (e.g. ``k,3,end_to_end-5c1f0a``; the suffix keeps distinct keys apart)."""
    from ..results import checksum

    text = ",".join(_SAFE.sub("_", str(part)) for part in key) or "cell"
    return text[:80] + "-" + checksum(list(key))[:6]


@dataclass(frozen=True)
class Cell:
    """What one cell's function receives besides the config.

    ``key`` names the cell; ``streams`` is its seed-stream node, ``seed_streams(seed, experiment,
    *key)``, so no two cells share a stream and a cell's numbers do not depend on which others
    run; ``progress`` is a progress factory ``progress(total, desc)``; ``checkpoint_dir`` is the
    folder a long cell checkpoints into and resumes from (None: do not checkpoint).

    Parameters
    ----------
    experiment : str
        The registered name of the experiment (the first part of the seed-stream key).
    key : tuple
        The cell's key, one of ``cells(config)``.
    seed : int
        The run's seed.
    progress : callable, optional
        ``progress(total, desc)`` returning a progress bar; None: a silent one.
    checkpoint_dir : str, optional
        The cell's checkpoint folder; None: the cell does not checkpoint.
    """

    experiment: str
    key: tuple
    seed: int
    progress: Callable = dataclasses.field(default=None, repr=False)  # type: ignore[assignment]
    checkpoint_dir: str | None = None

    def __post_init__(self):
        if self.progress is None:
            from ..training import null_progress

            object.__setattr__(self, "progress", null_progress)

    @functools.cached_property
    def streams(self):
        """The cell's seed-stream node, ``seed_streams(seed, experiment, *key)``."""
        from ..training import seed_streams

        return seed_streams(self.seed, self.experiment, *self.key)

    @property
    def label(self) -> str:
        """The key as people read it, :func:`cell_label`."""
        return cell_label(self.key)


#: what a merge may return besides metrics and curves: information measured inside the cells
#: (never read by a verdict) and extra entries of the Result's ``seeds``
MERGED_KEYS = ("metrics", "curves", "timing", "seeds")


def default_merge(keys, outputs: dict) -> dict:
    """Each cell's ``metrics`` and ``curves`` nested under its :func:`cell_label`."""
    metrics, curves = {}, {}
    for key in keys:
        out = outputs[key]
        if "metrics" in out:
            metrics[cell_label(key)] = out["metrics"]
        if "curves" in out:
            curves[cell_label(key)] = out["curves"]
    return {"metrics": metrics, "curves": curves}


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: one declaration of what it computes; the framework does the rest.

    ``cells(config) -> list[tuple]`` names the independent parts (for example ``("d", 5)``).
    ``run_cell(config, cell) -> dict`` computes one (JSON-able values only; its numbers depend
    on config, seed and key alone; see :class:`Cell`); a mapping ``{kind: function}`` instead
    picks the function by the key's first part (one function per kind of cell). An output's
    ``metrics`` and ``curves`` are the cell's numbers. ``merge(config, outputs) -> dict`` joins
    the outputs ``{key: dict}`` where cells combine (fits across cells, gaps between them) and
    returns ``{"metrics": ..., "curves": ...}`` (optionally ``"timing"``: information measured
    inside the cells, and ``"seeds"``: extra entries); a merge that draws random numbers of its
    own (a bootstrap) declares a keyword-only ``seed`` and gets the run's seed; without a merge
    each cell's metrics and curves
    are nested under its :func:`cell_label`. The framework supplies the seed streams, the timing
    of every cell and the :class:`~failgeom.results.Result` envelope.

    ``tiny`` is a config that runs in about a second (tests); ``summary(result) -> str`` is the
    one-line outcome the CLI prints; ``figure(result)`` draws the figure; ``family`` is the
    failure family (1 non-informative gradients, 2 decomposition vs end-to-end, 3 architecture
    and conditioning, 4 flat activations) and orders ``failgeom list``. An experiment may also
    define ``check_output(key, output)`` (raise for an output its merge cannot use).

    Parameters
    ----------
    name : str
        The registered name (``failgeom run NAME``).
    description : str
        One line for ``failgeom list``.
    presets : mapping of str to ExperimentConfig
        The named configs (``"quick"``, ``"paper"``).
    cells, run_cell, merge, figure, summary : callable
        As above (``run_cell`` may be a mapping ``{kind: function}``; ``merge`` None: the default
        nesting under cell labels).
    family : int
        The failure family, 1 to 4.
    tiny : ExperimentConfig, optional
        A config that runs in about a second, for the contract tests.
    paper_ref : str
        Where in the paper (section, figure) the experiment comes from.

    Raises
    ------
    TypeError
        If ``cells`` is not callable or ``run_cell`` is neither callable nor a mapping.
    """

    name: str
    description: str
    presets: Mapping[str, ExperimentConfig]
    cells: Callable
    run_cell: Callable | Mapping[str, Callable]
    figure: Callable
    summary: Callable
    family: int
    merge: Callable | None = None
    tiny: ExperimentConfig | None = None
    paper_ref: str = ""

    def __post_init__(self):
        if not callable(self.cells):
            raise TypeError(f"experiment {self.name!r}: cells must be a function config -> list of keys")
        if not (callable(self.run_cell) or isinstance(self.run_cell, Mapping)):
            raise TypeError(f"experiment {self.name!r}: run_cell must be a function or a mapping "
                            "{kind: function}")

    def config(self, preset: str = "quick", **changes) -> ExperimentConfig:
        """A preset's config with some fields changed, validated.

        Parameters
        ----------
        preset : str
            The preset to start from (``"quick"``, ``"paper"``).
        **changes
            Field values to replace (``steps=2000, dims=(5, 10)``).

        Returns
        -------
        ExperimentConfig

        Raises
        ------
        ValueError
            For an unknown preset.
        TypeError
            For an unknown field name; with ValueError, for a changed value the field does not
            accept (:meth:`ExperimentConfig.validate`).
        """
        if preset not in self.presets:
            raise ValueError(f"unknown preset {preset!r} for {self.name} (known: {', '.join(self.presets)})")
        return dataclasses.replace(self.presets[preset], **changes).validate()

    def cell_keys(self, config) -> list[tuple]:
        """The keys of the config's cells, in the order a serial run computes them.

        Parameters
        ----------
        config : ExperimentConfig
            The config whose cells to list.

        Returns
        -------
        list of tuple

        Raises
        ------
        ValueError
            If ``cells(config)`` names a cell twice.
        """
        keys = [tuple(k) for k in self.cells(config)]
        if len(set(keys)) != len(keys):
            raise ValueError(f"experiment {self.name!r} declares a cell twice: {keys}")
        return keys

    def _function(self, key: tuple) -> Callable:
        if callable(self.run_cell):
            return self.run_cell
        if not key or key[0] not in self.run_cell:
            raise ValueError(f"experiment {self.name!r} has no function for the cell {key!r} "
                             f"(kinds: {', '.join(map(str, self.run_cell))})")
        return self.run_cell[key[0]]

    def compute_cell(self, config, seed: int, key: tuple, progress=None, checkpoint_dir=None) -> dict:
        """The output of one cell, computed in this process.

        Parameters
        ----------
        config : ExperimentConfig
            The run's config.
        seed : int
            The run's seed; with the experiment's name and ``key`` it names the cell's streams.
        key : tuple
            The cell, one of :meth:`cell_keys`.
        progress : callable, optional
            Progress factory ``progress(total, desc)``; None: silent.
        checkpoint_dir : str or path, optional
            The folder the cell checkpoints into and resumes from; None: no checkpoints.

        Returns
        -------
        dict
            The cell function's JSON-able output (``metrics``, ``curves``, ...).

        Raises
        ------
        ValueError
            If ``run_cell`` is a mapping with no function for the key's kind.
        """
        key = tuple(key)
        cell = Cell(self.name, key, seed, progress, None if checkpoint_dir is None else os.fspath(checkpoint_dir))
        return self._function(key)(config, cell)

    def merge_cells(self, config, seed: int, outputs: dict, preset: str = "custom", times: dict | None = None):
        """The experiment's Result from the outputs of all its cells.

        Parameters
        ----------
        config : ExperimentConfig
            The run's config.
        seed : int
            The run's seed (recorded; passed to a merge that declares ``seed``).
        outputs : dict
            ``{key: output}`` of every cell.
        preset : str
            The preset the config came from, or ``"custom"``.
        times : dict, optional
            ``{key: {"wall_s", "cpu_s"}}``, as the runner records them: fills the Result's
            ``timing`` with the total and each cell's, whichever executor ran it.

        Returns
        -------
        failgeom.results.Result

        Raises
        ------
        ValueError
            If a cell of the config has no output.
        TypeError
            If the merge returns anything but a dict with ``metrics`` (and only the keys of
            ``MERGED_KEYS``).
        """
        from ..results import Result

        outputs = {tuple(k): v for k, v in outputs.items()}
        keys = self.cell_keys(config)
        missing = [k for k in keys if k not in outputs]
        if missing:
            raise ValueError(f"experiment {self.name!r}: no output for cells {missing}")
        merged = default_merge(keys, outputs) if self.merge is None else (
            self.merge(config, outputs, seed=seed) if _takes_seed(self.merge) else self.merge(config, outputs))
        if not isinstance(merged, dict) or "metrics" not in merged or set(merged) - set(MERGED_KEYS):
            raise TypeError(f"experiment {self.name!r}: merge must return a dict with 'metrics' (and optionally "
                            f"{', '.join(repr(k) for k in MERGED_KEYS[1:])}), got {type(merged).__name__}"
                            + (f" with keys {sorted(merged)}" if isinstance(merged, dict) else ""))
        timing = dict(merged.get("timing") or {})
        if times is not None:
            timing["wall_s"] = float(sum(times[k]["wall_s"] for k in keys))
            timing["cpu_s"] = float(sum(times[k]["cpu_s"] for k in keys))
            timing["cells_s"] = {cell_file_name(k): times[k]["wall_s"] for k in keys}
            timing["cells_cpu_s"] = {cell_file_name(k): times[k]["cpu_s"] for k in keys}
        seeds = {"seed": seed, "replicas": getattr(config, "replicas", None), **(merged.get("seeds") or {})}
        return Result(experiment=self.name, preset=preset, config=config.to_dict(), seeds=seeds,
                      metrics=merged["metrics"], curves=merged.get("curves") or {}, timing=timing)

    def run(self, config, seed: int = 0, progress=None, preset: str = "custom", checkpoint_dir=None):
        """Every cell of ``config`` in this process, one after another, then the merge.

        Parameters
        ----------
        config : ExperimentConfig
            The config to run (validated first).
        seed : int
            The run's seed.
        progress : callable, optional
            Progress factory ``progress(total, desc)``; None: silent.
        preset : str
            The preset the config came from, or ``"custom"`` (recorded in the Result).
        checkpoint_dir : str or path, optional
            A folder holding one ``<cell>.ckpt/`` per cell; None: no checkpoints.

        Returns
        -------
        failgeom.results.Result
            The same Result, number for number, as the runner's on any executor.
        """
        config.validate()
        outputs, times = {}, {}
        for key in self.cell_keys(config):
            folder = None
            if checkpoint_dir is not None:
                folder = os.path.join(os.fspath(checkpoint_dir), f"{cell_file_name(key)}.ckpt")
            wall, cpu = time.perf_counter(), time.process_time()
            outputs[key] = self.compute_cell(config, seed, key, progress, folder)
            times[key] = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
        return self.merge_cells(config, seed, outputs, preset, times)


def _takes_seed(merge) -> bool:
    import inspect

    param = inspect.signature(merge).parameters.get("seed")
    return param is not None and param.kind == param.KEYWORD_ONLY

