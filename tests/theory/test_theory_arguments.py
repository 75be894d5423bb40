"""Every public function of failgeom.theory checks its numeric arguments the same way.

For each argument annotated ``int`` or ``float``: NaN, +-inf, -1, a string and a bool (and 2.5 for
an int) give one TypeError or ValueError that names the argument; a size of 10**30 or 2**62
either returns at once (closed forms) or is refused with a ValueError naming it, before any
allocation and within a hard time limit (so a hang fails instead of stalling the suite).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import re
import signal
import sys
import warnings

import numpy as np
import pytest

import failgeom.theory as theory

#: Small values that make a valid call for arguments annotated int or float without a default.
SMALL = {"int": 3, "float": 0.5}

#: The arguments the small values cannot supply (arrays, generators), per function: explicit.
_W = {"W1": np.full((3, 4), 0.1), "b1": np.zeros(4), "W2": np.full((4, 1), 0.1), "b2": np.zeros(1)}
BASE = {
    "clipped_ramp": dict(r=[0.5, -2.0]),
    "lipschitz_activation": dict(r=[0.5, -2.0]),
    "cos_predictor_gradient_bound": dict(w=[0.3, 0.4]),
    "cos_predictor_gradients": dict(w=[0.3, 0.4], directions=[[1.0, 0.0]]),
    "expected_error_norm": dict(eta=0.01),  # below the divergence threshold, so that huge t is valid
    "expected_iterate": dict(eta=0.01),
    "expected_iterate_recursion": dict(eta=0.01),
    "forward_only_average_error": dict(seed=0),
    "forward_only_run": dict(seed=0, test_size=8),
    "forward_only_sgd": dict(rng=0, test_size=8),
    "forward_only_updates": dict(w=np.zeros((2, 3)), x=np.full((2, 2, 3), 0.5), v_star=np.ones((2, 3))),
    "gaussian_cos_product": dict(a=[0.3, 0.4], b=[1.0, 0.0]),
    "gd_regression_error_formula": dict(D=[1.0, 0.5], v_star=[1.0, 1.0], t=3),
    "gd_regression_errors": dict(C=np.diag([1.0, 0.5]), w_star=[1.0, 1.0]),
    "init_parity_weights": dict(rng=0),
    "linear_periodic_variance": dict(w=[0.3, 0.4], rng=0, targets=64),
    "parity_gradient_variance": dict(weights=_W),
    "periodic_landscape": dict(w=[0.3, 0.4]),
    "periodic_landscape_gradient": dict(w=[0.3, 0.4]),
    "periodic_landscape_value_and_gradient": dict(w=[0.3, 0.4]),
    "periodic_landscape_monte_carlo": dict(w=[0.3, 0.4], rng=0, samples=16),
    "sgd_mean_iterate": dict(eta=0.01, seed=0),
    "sparse_parity_gradient_variance": dict(k=1, weights=_W),
    "sphere_directions": dict(rng=0),
    "stocks_gradient_norms": dict(W=np.zeros((3, 2)), b=None, labels=np.array([0, 1, 0]), rng=0),
    "von_mises_fisher_directions": dict(rng=0, mean=[1.0, 0.0]),
}

#: Size-like arguments for which 10**30 is a valid input with a closed form: they must return.
CLOSED_FORMS = {
    ("expected_error_norm", "t"), ("expected_iterate", "t"), ("forward_only_linear_average_error", "T"),
    ("kink_second_moment", "n"), ("window_condition_number", "n"), ("window_covariance", "n"),
    ("window_gram_integer", "n"), ("pwl_extreme_eigenvalues", "max_iter"),
}


def _functions():
    for name in dir(theory):
        obj = getattr(theory, name)
        if not name.startswith("_") and inspect.isfunction(obj):
            yield name, obj


def _kind(annotation) -> str | None:
    """"int" or "float" for an argument annotated ``int``/``float`` (``| None`` allowed), else None."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    kinds = {part.strip() for part in text.split("|")} - {"None"}
    return kinds.pop() if len(kinds) == 1 and kinds <= {"int", "float"} else None


def _numeric(func):
    return [(p.name, _kind(p.annotation)) for p in inspect.signature(func).parameters.values()
            if _kind(p.annotation)]


def _base(name, func) -> dict:
    """Keyword arguments of a small valid call of ``func``."""
    kwargs = {}
    for p in inspect.signature(func).parameters.values():
        if p.default is inspect.Parameter.empty and _kind(p.annotation):
            kwargs[p.name] = SMALL[_kind(p.annotation)]
    kwargs.update(BASE.get(name, {}))
    return kwargs


FUNCTIONS = dict(_functions())
NUMERIC = [(name, arg, kind) for name, func in FUNCTIONS.items() for arg, kind in _numeric(func)]
BAD = {"float": [math.nan, math.inf, -math.inf, -1, "x", True],
       "int": [math.nan, math.inf, -math.inf, -1, "x", True, 2.5]}
CASES = [(name, arg, bad) for name, arg, kind in NUMERIC for bad in BAD[kind]]
SIZES = [(name, arg, huge) for name, arg, kind in NUMERIC if kind == "int" for huge in (10**30, 2**62)]


@contextlib.contextmanager
def bounded(seconds: int = 10, extra_bytes: int = 2 * 2**30):
    """Fail a call that runs longer than ``seconds`` or grows the address space by more than
    ``extra_bytes`` (a refusal that is missing must not take the machine's memory)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the time and memory guard needs Linux")
    import resource

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    with open("/proc/self/statm") as fh:
        size = int(fh.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + extra_bytes
    for bound in (soft, hard):  # never loosen a limit already set
        if bound != resource.RLIM_INFINITY:
            limit = min(limit, bound)
    previous = signal.signal(signal.SIGALRM, expire)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, previous)


def _names(message: str, arg: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(arg)}(?!\w)", message) is not None


def _all_finite(result) -> bool:
    """No NaN or inf anywhere in a returned value (arrays, numbers, tuples, dataclasses)."""
    if dataclasses.is_dataclass(result):
        return all(_all_finite(getattr(result, f.name)) for f in dataclasses.fields(result))
    if isinstance(result, (tuple, list)):
        return all(_all_finite(r) for r in result)
    if isinstance(result, dict):
        return all(_all_finite(r) for r in result.values())
    array = np.asarray(result)
    return not np.issubdtype(array.dtype, np.number) or bool(np.all(np.isfinite(array)))


def test_every_public_function_is_enumerated():
    assert len(FUNCTIONS) > 50 and len(NUMERIC) > 80
    assert not set(BASE) - set(FUNCTIONS), "BASE names a function failgeom.theory does not have"
    assert CLOSED_FORMS <= {(name, arg) for name, arg, _ in SIZES}, "CLOSED_FORMS names an unknown size"


@pytest.mark.parametrize("name", sorted({name for name, _, _ in NUMERIC}))
def test_the_base_call_is_valid(name):
    with bounded():
        assert _all_finite(FUNCTIONS[name](**_base(name, FUNCTIONS[name])))


@pytest.mark.parametrize("name, arg, bad", CASES, ids=[f"{n}-{a}-{b!r}" for n, a, b in CASES])
def test_bad_numbers_are_refused_naming_the_argument(name, arg, bad):
    func = FUNCTIONS[name]
    kwargs = {**_base(name, func), arg: bad}
    with bounded(), pytest.raises((TypeError, ValueError)) as info:
        func(**kwargs)
    assert _names(str(info.value), arg), f"{name}({arg}={bad!r}) raised {info.value!r}, not naming {arg}"


@pytest.mark.parametrize("name, arg, huge", SIZES,
                         ids=[f"{n}-{a}-{'1e30' if h == 10**30 else '2^62'}" for n, a, h in SIZES])
def test_huge_sizes_return_quickly_or_are_refused_naming_the_argument(name, arg, huge):
    func = FUNCTIONS[name]
    kwargs = {**_base(name, func), arg: huge}
    try:
        with bounded():
            result = func(**kwargs)
    except ValueError as exc:
        assert (name, arg) not in CLOSED_FORMS, f"{name}({arg}={huge}) has a closed form, refused: {exc}"
        assert _names(str(exc), arg), f"{name}({arg}={huge}) raised {exc!r}, not naming {arg}"
    else:  # a value that is returned must be a number, not an overflow or a NaN
        assert _all_finite(result), f"{name}({arg}={huge}) returned a NaN or inf"


# ---------------------------------------------------------------------------------------------
# array arguments: real numbers only, and no finite number computed from a NaN

_V = np.array([1.0, 0.0, 1.0])
#: Small valid calls of the functions whose arguments include arrays not covered by BASE.
ARRAY_CALLS = {
    **{name: BASE[name] for name in BASE},
    "fwht": dict(a=np.arange(4.0)),
    "pwl_apply": dict(p=np.arange(4.0)),
    "pwl_apply_transpose": dict(q=np.arange(4.0)),
    "pwl_inverse_apply": dict(f=np.arange(4.0)),
    "window_matrix": dict(f=np.arange(5.0)),
    "empirical_window_covariance": dict(f=np.arange(10.0).reshape(2, 5)),
    "inverse_sqrt": dict(C=np.diag([1.0, 2.0])),
    "preconditioned_condition_number": dict(C_hat=np.diag([1.0, 2.0]), C=np.diag([1.0, 3.0])),
    "fit_exponent": dict(ns=[1.0, 2.0, 4.0], values=[1.0, 3.0, 9.0]),
    "fit_exponential_rate": dict(xs=[1.0, 2.0, 4.0], values=[1.0, 3.0, 9.0]),
    "gradient_variance": dict(values=[0.1, 0.2], grads=[[1.0, 0.0], [0.0, 1.0]], targets=[[1.0, -1.0], [1.0, 1.0]]),
    "hinge_derivative": dict(z=[0.5, 2.0]),
    "parity_network": dict(v=_V),
    "two_layer_forward": dict(weights=_W, X=np.ones((2, 3))),
    "parity_full_gradients": dict(weights=_W, X=np.ones((2, 3))),
    "stocks_second_moments": dict(W=np.zeros((3, 2)), b=np.zeros(2), labels=np.array([0, 1, 0])),
}
#: Arguments that are not arrays of numbers (generators, seeds, options).
_NOT_ARRAYS = {"rng", "seed", "labels", "k", "t", "loss", "padding"}


def _array_args():
    for name, kwargs in sorted(ARRAY_CALLS.items()):
        for arg, value in kwargs.items():
            if arg in _NOT_ARRAYS or np.ndim(value) == 0 and not isinstance(value, dict):
                continue
            yield name, arg


def _bad_arrays(value, allow_bool: bool):
    """Variants of a valid array (or dict of arrays: its first array varied) that must be refused."""
    if isinstance(value, dict):
        first = next(iter(value))
        return {kind: {**value, first: bad} for kind, bad in _bad_arrays(value[first], allow_bool).items()}
    a = np.array(value, dtype=np.float64)
    with_nan = a.copy()
    with_nan.flat[0] = np.nan
    bad = {"nan": with_nan, "complex": a.astype(complex), "object": a.astype(object), "str": "x",
           "strings": a.astype(str), "None": None}
    if not allow_bool:
        bad["bool"] = a.astype(bool)
    return bad


ARRAY_CASES = [(name, arg, kind) for name, arg in _array_args()
               for kind in _bad_arrays(ARRAY_CALLS[name][arg], name == "parity_network")]


def test_array_cases_cover_every_function_with_array_arguments():
    assert len({name for name, _, _ in ARRAY_CASES}) >= 30
    assert not set(ARRAY_CALLS) - set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(ARRAY_CALLS))
def test_the_array_base_call_is_valid(name):
    kwargs = {**_base(name, FUNCTIONS[name]), **ARRAY_CALLS[name]}
    kwargs = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    with bounded():
        assert _all_finite(FUNCTIONS[name](**kwargs))


@pytest.mark.parametrize("name, arg, kind", ARRAY_CASES, ids=[f"{n}-{a}-{k}" for n, a, k in ARRAY_CASES])
def test_bad_arrays_are_refused_naming_the_argument(name, arg, kind):
    """Complex, bool, object, string and None arrays are refused with one error naming the
    argument (a complex array is never cut to its real part); an array holding a NaN is refused
    too, or (linear maps such as ``pwl_apply``) gives NaN back: never a finite number."""
    if kind == "None" and name in {"stocks_gradient_norms", "stocks_second_moments"} and arg == "b":
        pytest.skip("b=None means no bias")
    func = FUNCTIONS[name]
    kwargs = {**_base(name, func), **ARRAY_CALLS[name], arg: _bad_arrays(ARRAY_CALLS[name][arg], name == "parity_network")[kind]}
    try:
        with bounded(), warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            result = func(**kwargs)
    except (TypeError, ValueError) as exc:
        assert _names(str(exc), arg), f"{name}({arg}={kind}) raised {exc!r}, not naming {arg}"
    else:
        assert kind == "nan" and not _all_finite(result), f"{name}({arg}={kind}) returned {result!r}"
