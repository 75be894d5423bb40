"""What every experiment shares: the config base class, ``--set`` parsing, and the spec type.

An experiment module defines a config dataclass (a subclass of :class:`ExperimentConfig`) with
its presets, ``run(config, seed, progress) -> Result`` and ``figure(result) -> Figure``, and
registers an :class:`Experiment` in :mod:`failgeom.experiments`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass

from ..nn._util import DTYPES


@dataclass(frozen=True)
class ExperimentConfig:
    """Fields every experiment has: the number of replicas (seeds) and the float dtype."""

    replicas: int = 5
    dtype: str = "float32"

    #: names of int/float fields (or tuples of them) that must be positive
    positive: typing.ClassVar[tuple[str, ...]] = ("replicas",)

    def validate(self) -> "ExperimentConfig":
        """Raise ValueError naming the first field that is out of range; return self."""
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}")
        for name in self.positive:
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else (value,)
            if value is not None and (len(values) == 0 or any(v is None or v <= 0 for v in values)):
                raise ValueError(f"{name} must be positive, got {value!r}")
        self.check()
        return self

    def check(self) -> None:
        """Experiment-specific checks (override); raise ValueError naming the field."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its name, one-line description, presets and functions.

    ``run(config, seed, progress, preset=...) -> Result``; a ``resumable`` experiment's run also
    takes ``checkpoint_dir`` (a folder it owns) and ``resume`` (continue from the checkpoint
    there). ``summary(result) -> str`` is the one-line outcome the CLI prints. ``family`` is the
    failure family (1 non-informative gradients, 2 decomposition vs end-to-end, 3 architecture
    and conditioning, 4 flat activations) and orders ``failgeom list``.
    """

    name: str
    description: str
    presets: dict[str, ExperimentConfig]
    run: Callable
    figure: Callable
    summary: Callable
    family: int
    paper_ref: str = ""
    resumable: bool = False

    def config(self, preset: str = "quick", **changes) -> ExperimentConfig:
        if preset not in self.presets:
            raise ValueError(f"unknown preset {preset!r} for {self.name} (known: {', '.join(self.presets)})")
        return dataclasses.replace(self.presets[preset], **changes).validate()
