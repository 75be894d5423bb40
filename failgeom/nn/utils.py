"""Public helpers shared by the layers and their users: dtype checks, replica generators, parameter trees."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..validation import positive_int

DTYPES = {"float32": np.float32, "float64": np.float64}


def as_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy float dtype, float32 or float64.

    Parameters
    ----------
    dtype : str, type or dtype
        ``"float32"``, ``"float64"`` or anything ``np.dtype`` reads as one of them.

    Returns
    -------
    numpy.dtype

    Raises
    ------
    TypeError
        For any other dtype (``None`` included: NumPy would read it as float64).
    """
    if dtype is None:
        raise TypeError("dtype must be 'float32' or 'float64', got None")
    try:
        dt = np.dtype(DTYPES.get(dtype, dtype))
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def replica_generators(rng, R: int) -> list[np.random.Generator]:
    """One independent ``Generator`` per replica.

    Parameters
    ----------
    rng : Generator, SeedSequence or sequence of Generators
        A sequence of exactly R Generators (used as given, so replica r's numbers do not
        depend on R), a ``SeedSequence`` (spawned R times) or a single ``Generator`` (spawned R
        times).
    R : int
        Number of replicas.

    Returns
    -------
    list of R Generators

    Raises
    ------
    TypeError
        If ``rng`` is none of these (or ``R`` is not an integer).
    ValueError
        If the sequence does not hold R Generators (or ``R`` is not positive).
    """
    R = positive_int(R, "R")
    if isinstance(rng, np.random.SeedSequence):
        return [np.random.default_rng(s) for s in rng.spawn(R)]
    if isinstance(rng, np.random.Generator):
        return list(rng.spawn(R))
    if isinstance(rng, Sequence) and all(isinstance(g, np.random.Generator) for g in rng):
        if len(rng) != R:
            raise ValueError(f"rng must hold one Generator per replica (R={R}), got {len(rng)}")
        return list(rng)
    raise TypeError(
        "rng must be a numpy Generator, a SeedSequence or a sequence of R Generators, "
        f"got {type(rng).__name__}"
    )


def tree_leaves(tree) -> list[np.ndarray]:
    """The arrays of a parameter tree (dicts, lists, tuples of arrays) in a fixed order.

    Parameters
    ----------
    tree : ndarray, or dict, list or tuple of trees
        Dicts are read in sorted key order.

    Returns
    -------
    list of ndarray

    Raises
    ------
    TypeError
        If the tree holds something else.
    """
    if isinstance(tree, np.ndarray):
        return [tree]
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in tree_leaves(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in tree_leaves(item)]
    raise TypeError(f"parameter trees hold dicts, lists and arrays, got {type(tree).__name__}")


def tree_map(fn, tree):
    """Apply ``fn`` to every array of a tree, keeping its structure.

    Parameters
    ----------
    fn : callable
        ``fn(array) -> array``.
    tree : ndarray, or dict, list or tuple of trees

    Returns
    -------
    tree
        Of the same structure, holding ``fn`` of each array.

    Raises
    ------
    TypeError
        If the tree holds something else.
    """
    if isinstance(tree, np.ndarray):
        return fn(tree)
    if isinstance(tree, dict):
        return {key: tree_map(fn, value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(fn, item) for item in tree)
    raise TypeError(f"parameter trees hold dicts, lists and arrays, got {type(tree).__name__}")


def replica_slice(tree, idx):
    """The replicas ``idx`` of every array of a tree (the leading axis R), in the same structure.

    Parameters
    ----------
    tree : ndarray, or dict, list or tuple of trees
        Every array with leading axis R, as parameters are.
    idx : int array, bool array of length R, or slice
        The replicas to take; an index array gives copies.

    Returns
    -------
    tree
        Of the same structure, holding ``array[idx]`` of each array.

    Raises
    ------
    TypeError
        If the tree holds something else.
    IndexError
        If ``idx`` does not index the leading axis.
    """
    return tree_map(lambda a: a[idx], tree)


def per_replica(value, R: int, ndim: int, dtype, name: str = "lr") -> np.ndarray | float:
    """A scalar, or an (R,) array reshaped to broadcast against arrays with leading axis R.

    Parameters
    ----------
    value : float or array_like of shape (R,)
    R : int
    ndim : int
        Number of axes of the arrays it will multiply.
    dtype : dtype
    name : str
        The value's name, for the message.

    Returns
    -------
    ndarray
        0-d, or of shape ``(R, 1, ..., 1)`` with ``ndim`` axes.

    Raises
    ------
    ValueError
        If ``value`` is neither a scalar nor of shape ``(R,)``.
    """
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return arr
    if arr.shape != (R,):
        raise ValueError(f"{name} must be a scalar or hold one value per replica, shape ({R},), got shape {arr.shape}")
    return arr.reshape((R,) + (1,) * (ndim - 1))


def _batch_shape_error(x, name: str, expected: str) -> ValueError:
    return ValueError(f"{name} must have shape {expected}, got {x.shape}")


def check_batch(x, name: str = "x", ndim: int | None = None, R: int | None = None,
                last: int | None = None, expected: str = "(R, B, ...)") -> None:
    """Refuse a minibatch that a layer cannot take, in O(1): cheap enough for every forward.

    Parameters
    ----------
    x : object
        The minibatch; must be an ndarray of real floats with at least 2 axes ``(R, B, ...)``.
    name : str
        The argument's name, for the message (``"x"`` or ``"dy"``).
    ndim : int or None
        The exact number of axes required, if any.
    R : int or None
        The replica count the parameters hold, if any.
    last : int or None
        The required size of the last axis, if any.
    expected : str
        The accepted shape, written for the message (``"(R=2, B, 3)"``).

    Raises
    ------
    TypeError
        If ``x`` is not an ndarray of a real floating dtype (complex, integer, bool and object
        arrays are refused).
    ValueError
        If its shape does not fit.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array of real floats {expected}, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must hold real floats (float32 or float64), got dtype {x.dtype}")
    if x.ndim < 2 or (ndim is not None and x.ndim != ndim) or (R is not None and x.shape[0] != R) \
            or (last is not None and x.shape[-1] != last):
        raise _batch_shape_error(x, name, expected)


def check_grad(dy, shape: tuple, name: str = "dy") -> None:
    """Refuse an output gradient that is not a real floating array of the output's ``shape``.

    Parameters
    ----------
    dy : object
        The gradient given to a backward pass.
    shape : tuple of int
        The shape of the forward output it must match.
    name : str
        The argument's name, for the message.

    Raises
    ------
    TypeError
        If ``dy`` is not an ndarray of a real floating dtype.
    ValueError
        If its shape is not ``shape``.
    """
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array of real floats of shape {shape}, got {type(dy).__name__}")
    if dy.dtype.kind != "f":
        raise TypeError(f"{name} must hold real floats (float32 or float64), got dtype {dy.dtype}")
    if dy.shape != shape:
        raise ValueError(f"{name} must have the forward output's shape {shape}, got {dy.shape}")
