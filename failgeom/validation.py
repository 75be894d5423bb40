"""Argument checks shared by every layer: one clear TypeError or ValueError naming the argument.

``nn``, ``theory``, ``problems``, ``training``, ``stats`` and the runner check their plain
arguments here, so an integer, a positive or bounded finite number, a bool, a shape, an array of
real numbers, a choice, a random generator, a loop length or an allocation that must fit in
memory is accepted (and refused) the same way everywhere: the same mistake gets the same
exception (a value of the wrong type, a string where a number is wanted included, is a
TypeError; a value of the right type outside what is accepted is a ValueError). Experiment config
fields declare their constraints with ``failgeom.experiments.base.param`` instead.
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["integer", "positive_int", "nonnegative_int", "positive_float", "finite_float", "choice", "generator",
           "step_count", "MAX_STEPS", "available_memory", "fits_in_memory", "flag", "shape", "real_array",
           "TINY"]

#: The smallest normal float64. A positive number below it (a subnormal) has lost its precision
#: and overflows when divided into 1, so arguments that must be positive are refused below it.
TINY = float(np.finfo(np.float64).tiny)

#: Largest number of steps of a loop run one step at a time in Python (SGD, a recursion): each
#: step costs microseconds at the least, so more would run for hours to days.
MAX_STEPS = 10**9


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
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {_accepted(low, high)}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {_accepted(low, high)}, got {value}")
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


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


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
        If it is not finite or not positive (NaN and inf are refused), or a subnormal number
        below :data:`TINY`.
    """
    if not _is_real(value):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value >= TINY):
        raise ValueError(f"{name} must be a positive finite number (at least {TINY:.4g}, the smallest "
                         f"normal float), got {value}")
    return value


def finite_float(value, name: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a ``float`` if it is a finite number in the interval, else raise.

    Parameters
    ----------
    value : object
        A Python or NumPy real number; ``bool`` is not one.
    name : str
        The argument's name, used in the error message.
    low, high : float or None
        Bounds; ``None`` leaves that side open (to infinity).
    low_open, high_open : bool
        Exclude the bound itself (``(0, 1)`` is ``low=0, high=1, low_open=True, high_open=True``).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``value`` is not a real number (or is a bool).
    ValueError
        If it is NaN or infinite or lies outside the interval.
    """
    if low is None and high is None:
        accepted = "a finite number"
    elif high is None:
        accepted = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif low is None:
        accepted = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        accepted = f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if not _is_real(value):
        raise TypeError(f"{name} must be {accepted}, got {value!r}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or below or above:
        raise ValueError(f"{name} must be {accepted}, got {value}")
    return value


def step_count(value, name: str, low: int = 0) -> int:
    """Return ``value`` as an ``int`` if it is a number of loop steps from ``low`` to
    :data:`MAX_STEPS`, else raise.

    Parameters
    ----------
    value : object
        The argument to check (bools are refused).
    name : str
        The argument's name, for the message.
    low : int
        Fewest steps accepted.

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        As :func:`integer`; ValueError also above :data:`MAX_STEPS`.
    """
    value = integer(value, name, low=low)
    if value > MAX_STEPS:
        raise ValueError(f"{name} must be at most 10^9 (the steps run one at a time, each taking "
                         f"microseconds or more: this many would not finish), got {value}")
    return value


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (MemAvailable, else total RAM).

    Returns
    -------
    int
    """
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63


def _gib(nbytes) -> str:
    gib = nbytes / 2**30
    return f"{gib:.1f}" if gib < 1e5 else f"{gib:.2g}"


def fits_in_memory(nbytes: int, what: str, advice: str = "choose smaller sizes") -> None:
    """Raise ValueError, before allocating, if ``nbytes`` exceed :func:`available_memory`.

    Parameters
    ----------
    nbytes : int
        Estimated peak memory (a Python int: exact for any size, no overflow).
    what : str
        What needs it, naming the arguments that set the size (``"n = 100000 (an n x n
        matrix)"``); the message reads ``"{what} needs about X GiB of memory, more than the
        Y GiB available; {advice}"``.
    advice : str
        What to change.

    Raises
    ------
    ValueError
        If ``nbytes`` exceeds the memory available now.
    """
    have = available_memory()
    if nbytes > have:
        raise ValueError(f"{what} needs about {_gib(nbytes)} GiB of memory, more than the {_gib(have)} GiB "
                         f"available; {advice}")


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


def flag(value, name: str) -> bool:
    """Return ``value`` as a ``bool`` if it is one (Python or NumPy), else raise.

    Parameters
    ----------
    value : object
        The argument to check; ``0``, ``1`` and strings are not bools.
    name : str
        The argument's name, for the message.

    Returns
    -------
    bool

    Raises
    ------
    TypeError
        If ``value`` is not a bool.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def shape(value, name: str, ndim: int | None = None, min_ndim: int = 0) -> tuple[int, ...]:
    """Return ``value`` as a tuple of positive ints (the shape of one example), else raise.

    Parameters
    ----------
    value : sequence of int
        The shape to check; every entry a positive integer (bools refused).
    name : str
        The argument's name, for the message.
    ndim : int or None
        The exact number of axes required, if any.
    min_ndim : int
        The fewest axes accepted.

    Returns
    -------
    tuple of int

    Raises
    ------
    TypeError
        If ``value`` is not a sequence of integers.
    ValueError
        If an entry is not positive or the number of axes is wrong.
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a tuple of positive integers, got {value!r}")
    out = []
    for entry in value:
        if isinstance(entry, (bool, np.bool_)) or not isinstance(entry, (int, np.integer)):
            raise TypeError(f"{name} must be a tuple of positive integers, got {tuple(value)!r}")
        if entry < 1:
            raise ValueError(f"{name} must be a tuple of positive integers, got {tuple(value)!r}")
        out.append(int(entry))
    if (ndim is not None and len(out) != ndim) or len(out) < min_ndim:
        axes = f"{ndim}" if ndim is not None else f"at least {min_ndim}"
        raise ValueError(f"{name} must have {axes} axes, got {tuple(out)!r}")
    return tuple(out)


def real_array(value, name: str, ndim: int | tuple[int, ...] | None = None, *, finite: bool = True,
               dtype=np.float64) -> np.ndarray:
    """Return ``value`` as a real floating array (``dtype``) if it holds real numbers, else raise.

    Integers and floats are accepted; bools, complex numbers, strings, objects and ``None`` are
    not (a complex array is never silently cut to its real part).

    Parameters
    ----------
    value : array_like
        The argument to check.
    name : str
        The argument's name, for the message.
    ndim : int, tuple of int or None
        The accepted numbers of axes, if restricted.
    finite : bool
        Whether NaN and infinities are refused.
    dtype : dtype or None
        The floating dtype of the result; None keeps the array's own (integer arrays stay
        exact).

    Returns
    -------
    ndarray

    Raises
    ------
    TypeError
        If ``value`` does not hold real numbers.
    ValueError
        If it has the wrong number of axes, or a NaN or infinity where ``finite``.
    """
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):  # ragged nested sequences
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim not in ((ndim,) if isinstance(ndim, int) else ndim):
        raise ValueError(f"{name} must have {ndim if isinstance(ndim, int) else ' or '.join(map(str, ndim))} "
                         f"axes, got shape {arr.shape}")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or infinite entries")
    return arr
