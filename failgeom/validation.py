"""Argument checks shared by every layer: one clear TypeError or ValueError naming the argument.

``nn``, ``theory``, ``problems`` and the runner check their plain arguments here, so an integer,
a positive number, a choice or a random generator is accepted (and refused) the same way
everywhere. Experiment config fields declare their constraints with
``failgeom.experiments.base.param`` instead.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["integer", "positive_int", "nonnegative_int", "positive_float", "choice", "generator"]


def _accepted(low: int | None, high: int | None) -> str:
    if high is None:
        if low == 1:
            return "a positive integer"
        if low == 0:
            return "a non-negative integer"
        return "an integer" if low is None else f"an integer >= {low}"
    if low is None:
        return f"an integer <= {high}"
    return f"an integer from {low} to {high}"


def integer(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[low, high]``, else raise.

    Parameters
    ----------
    value : object
        The argument to check. Python and NumPy integers are accepted; ``bool`` is not.
    name : str
        The argument's name, used in the error message.
    low, high : int or None
        Inclusive bounds; ``None`` leaves that side open.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``value`` is not an integer (or is a bool).
    ValueError
        If ``value`` lies outside ``[low, high]``.
    """
    accepted = _accepted(low, high)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {accepted}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {accepted}, got {value}")
    return int(value)


def positive_int(value, name: str) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 1, else raise.

    Parameters
    ----------
    value : object
        The argument to check (bools are refused).
    name : str
        The argument's name, for the message.

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        As :func:`integer` with ``low=1``.
    """
    return integer(value, name, low=1)


def nonnegative_int(value, name: str) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 0, else raise.

    Parameters
    ----------
    value : object
        The argument to check (bools are refused).
    name : str
        The argument's name, for the message.

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        As :func:`integer` with ``low=0``.
    """
    return integer(value, name, low=0)


def positive_float(value, name: str) -> float:
    """Return ``value`` as a ``float`` if it is a finite number > 0, else raise.

    Parameters
    ----------
    value : object
        The argument to check: a Python or NumPy real number.
    name : str
        The argument's name, for the message.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``value`` is not a real number (or is a bool).
    ValueError
        If it is not finite or not positive (NaN and inf are refused).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def choice(value, name: str, options):
    """Return ``value`` if it is one of ``options``, else raise.

    Parameters
    ----------
    value : object
        The argument to check.
    name : str
        The argument's name, for the message.
    options : iterable
        The accepted values.

    Returns
    -------
    object
        ``value`` itself.

    Raises
    ------
    ValueError
        If ``value`` is not among ``options`` (the message lists them).
    """
    if value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value


def generator(rng, name: str = "rng") -> np.random.Generator:
    """A ``Generator`` from a Generator, a SeedSequence or an int seed >= 0; never global state.

    Parameters
    ----------
    rng : Generator, SeedSequence or int
        Used as given, wrapped, or seeded.
    name : str
        The argument's name, for the message.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    TypeError
        For anything else (``None`` included: there is no implicit global seed).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be a numpy Generator, a SeedSequence or a seed >= 0, got {rng!r}")
