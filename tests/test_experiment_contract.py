"""What every registered experiment promises: cells, a tiny config, distinct seed streams, and
config fields that refuse bad values in one clear error naming the field."""

from __future__ import annotations

import copy
import dataclasses
import math
import typing

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from failgeom.experiments import get, names
from failgeom.experiments.base import Constraint, _kind
from failgeom.training import record_streams

NAMES = names()


@pytest.mark.parametrize("name", NAMES)
def test_declares_cells_and_a_tiny_config(name):
    e = get(name)
    assert e.cells is not None and e.tiny is not None, f"{name} declares no cells or no tiny config"
    keys = e.cell_keys(e.tiny)
    assert keys and all(isinstance(k, tuple) for k in keys)


@pytest.mark.parametrize("name", NAMES)
def test_no_two_streams_coincide(name):
    # every Generator a cell makes is drawn from its own node of the stream tree; two cells may
    # share a stream only by naming the same path on purpose (a data set both approaches train
    # on), which the tree makes explicit, so distinctness is asserted cell by cell
    e = get(name)
    drawn = 0
    for key in e.cell_keys(e.tiny):
        with record_streams() as seen, np.errstate(all="ignore"):
            e.compute_cell(e.tiny, 0, key)
        drawn += len(seen)
        duplicates = {s for s in seen if seen.count(s) > 1}
        assert not duplicates, f"{name} cell {key}: {len(duplicates)} streams are drawn more than once"
    assert drawn, f"{name} drew no stream from seed_streams"


def _bad_values(kind: str, constraint: Constraint):
    """Values of the wrong type or no number at all, which every field of the kind refuses (out
    of a declared interval is the hypothesis test's job below, field by field)."""
    if kind == "int":
        return [math.nan, math.inf, "7", 2.5, True]
    if kind == "float":
        return [math.nan, "0.5", True] + ([] if constraint.allow_inf else [math.inf, -math.inf])
    if kind == "str":
        return [7, None] + (["no-such-choice"] if constraint.choices is not None else [])
    if kind == "bool":
        return ["yes", 1, None]
    return []


def _fields():
    """One field of each kind (scalar kind, tuple or not, none allowed or not, choices or not,
    infinity allowed or not): the check is one function (``ExperimentConfig.check_fields``), so
    each kind of field is probed once rather than every field times every value."""
    seen = set()
    for name in NAMES:
        config = get(name).presets["quick"]
        hints = typing.get_type_hints(type(config))
        for f in dataclasses.fields(config):
            kind, is_tuple, none_ok = _kind(hints[f.name])
            constraint = f.metadata.get("constraint", Constraint())
            shape = (kind, is_tuple, none_ok, constraint.choices is not None, constraint.allow_inf)
            if shape in seen:
                continue
            seen.add(shape)
            if is_tuple:
                yield name, f.name, 5  # not a tuple
            for bad in _bad_values(kind, constraint):
                if bad is None and none_ok:
                    continue
                yield name, f.name, (bad,) if is_tuple else bad


FIELDS = list(_fields())
#: every settable field of every experiment, for the field-by-field hypothesis test below
ALL_FIELDS = [(name, f.name) for name in NAMES for f in dataclasses.fields(get(name).presets["quick"])
              if _kind(typing.get_type_hints(type(get(name).presets["quick"]))[f.name])[0] != "other"]


@pytest.mark.parametrize("name,field,bad", FIELDS, ids=[f"{n}.{f}={b!r}" for n, f, b in FIELDS])
def test_bad_field_value_is_one_error_naming_the_field(name, field, bad):
    config = get(name).presets["quick"]
    with pytest.raises((TypeError, ValueError)) as info:
        dataclasses.replace(config, **{field: bad}).validate()
    message = str(info.value)
    assert field in message and "\n" not in message


_ANY = st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=True, allow_infinity=True),
                 st.sampled_from([0, -1, 0.0, -0.5, "x", "", None, True, False]), st.text(max_size=4))


def _declared_ok(kind: str, constraint: Constraint, value) -> bool:
    """Does ``value`` satisfy the field's declaration (type, finiteness, interval, choices)?"""
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
              and (constraint.allow_inf or math.isfinite(value)))
    elif kind == "str":
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, bool)
    return ok and (kind == "bool" or constraint.admits(value))


@settings(deadline=None, max_examples=300)
@given(st.sampled_from(ALL_FIELDS), _ANY)
def test_a_field_accepts_exactly_what_it_declares(name_field, value):
    name, field = name_field
    config = get(name).presets["quick"]
    f = {x.name: x for x in dataclasses.fields(config)}[field]
    kind, is_tuple, none_ok = _kind(typing.get_type_hints(type(config))[field])
    constraint = f.metadata.get("constraint", Constraint())
    given_value = (value,) if is_tuple else value
    declared = (value is None and none_ok and not is_tuple) or (value is not None and _declared_ok(kind, constraint, value))
    candidate = copy.copy(config)  # the field's own check, without the cross-field rules
    object.__setattr__(candidate, field, given_value)
    try:
        candidate.check_fields()
    except (TypeError, ValueError) as exc:
        assert field in str(exc)
        assert not declared, f"{name}.{field} refused {value!r}, which it declares acceptable: {exc}"
    else:
        assert declared, f"{name}.{field} accepted {value!r}, outside its declaration"
