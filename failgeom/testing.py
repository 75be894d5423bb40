"""Hypothesis strategies and assertions for stating a conjecture about gradients as a property test.

failgeom's own property tests use these; a researcher can use them to hold their own network or
function class to Theorem 1, or a measured scaling law to a predicted exponent, in a few lines::

    from hypothesis import given
    from failgeom import testing

    @given(testing.parity_classes(d_max=6), testing.seeds())
    def test_my_network_obeys_theorem_1(cls, seed):
        X, H = cls
        values, grads = my_network_outputs_and_gradients(X, seed)   # (N,), (N, P)
        testing.assert_variance_within_bound(values, grads, H, loss="square")

Requires ``hypothesis`` (the ``test`` extra). Every strategy draws plain NumPy arrays (or a
network and its parameters over the replica axis), reproducible from the drawn seed.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from .validation import finite_float

__all__ = ["assert_exponent", "assert_variance_within_bound", "networks", "orthonormal_classes",
           "parity_classes", "seeds", "sparse_subsets"]


def seeds() -> st.SearchStrategy[int]:
    """Seeds for ``numpy.random.default_rng``."""
    return st.integers(0, 2**32 - 1)


@st.composite
def orthonormal_classes(draw, n_max: int = 40, shrink: bool = True):
    """``H`` of shape ``(m, N)``: m functions on N equally likely points, orthogonal under that
    measure with ``E h^2 <= 1`` (orthonormal rows of a random rotation, each scaled by a factor
    in (0.1, 1] when ``shrink``), the hypothesis of Theorem 1.

    Parameters
    ----------
    n_max : int
        Largest number N of points (>= 2).
    shrink : bool
        Scale each function by a random factor in (0.1, 1] (``E h^2 < 1``); False: orthonormal.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of arrays ``H`` of shape ``(m, N)``, 1 <= m <= N.

    Raises
    ------
    ValueError
        If ``n_max < 2``.
    """
    if n_max < 2:
        raise ValueError(f"n_max must be at least 2, got {n_max}")
    N = draw(st.integers(2, n_max))
    m = draw(st.integers(1, N))
    rng = np.random.default_rng(draw(seeds()))
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    scale = rng.uniform(0.1, 1.0, size=(m, 1)) if shrink else np.ones((m, 1))
    return math.sqrt(N) * Q[:, :m].T * scale


@st.composite
def parity_classes(draw, d_max: int = 7):
    """``(X, H)``: the cube ``X`` of shape ``(2^d, d)`` (entries +-1) and a non-empty subset of the
    2^d parities ``H`` of shape ``(m, 2^d)``, ``H[j, i] = prod_{l in S_j} X[i, l]``.

    Parameters
    ----------
    d_max : int
        Largest input dimension d (>= 1).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of pairs ``(X, H)``.

    Raises
    ------
    ValueError
        If ``d_max < 1``.
    """
    from .theory.orthogonal import cube_inputs, parity_targets

    if d_max < 1:
        raise ValueError(f"d_max must be at least 1, got {d_max}")
    d = draw(st.integers(1, d_max))
    rows = draw(st.lists(st.integers(0, 2**d - 1), min_size=1, max_size=2**d, unique=True))
    return cube_inputs(d), parity_targets(d)[sorted(rows)]


@st.composite
def sparse_subsets(draw, n_max: int = 30, k_max: int = 4):
    """``(n, support)``: an input dimension and a sorted k-subset of ``range(n)`` (a k-sparse parity).

    Parameters
    ----------
    n_max : int
        Largest input dimension n.
    k_max : int
        Largest subset size k (also at most n).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of pairs ``(n, support)``, ``support`` a sorted tuple of k distinct indices.
    """
    n = draw(st.integers(1, n_max))
    k = draw(st.integers(1, min(k_max, n)))
    support = draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k, unique=True))
    return n, tuple(sorted(support))


@st.composite
def networks(draw, d_max: int = 8, width_max: int = 32, replicas_max: int = 3, depth_max: int = 2):
    """``(model, params, d)``: a ReLU network ``d -> width -> ... -> 1`` of :mod:`failgeom.nn` with
    R independent replicas (``params`` carry the replica axis), initialised from a drawn seed.

    Parameters
    ----------
    d_max : int
        Largest input dimension d.
    width_max : int
        Largest width of a hidden layer.
    replicas_max : int
        Largest number of replicas R.
    depth_max : int
        Largest number of hidden layers (at least one).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of triples ``(model, params, d)``, the parameters in float64.
    """
    from . import nn
    from .training import seed_streams

    d = draw(st.integers(1, d_max))
    R = draw(st.integers(1, replicas_max))
    widths = draw(st.lists(st.integers(1, width_max), min_size=1, max_size=depth_max))
    layers = []
    for w in widths:
        layers += [nn.Dense(w), nn.ReLU()]
    model = nn.Sequential([*layers, nn.Dense(1)])
    params, _ = model.init(seed_streams(draw(seeds()), "testing", "networks").generators(R), R, (d,),
                           np.float64)
    return model, params, d


def assert_variance_within_bound(values, grads, targets, loss: str = "square", rtol: float = 1e-10) -> None:
    """Theorem 1: ``Var(H, F, w) <= G(w)^2 / |H|`` for the gradients ``grads`` ``(N, P)`` of a
    predictor with outputs ``values`` ``(N,)`` on N equally likely points, over the class
    ``targets`` ``(m, N)`` (orthogonal, ``E h^2 <= 1``), with the ``square`` or ``hinge`` loss.

    Parameters
    ----------
    values : array_like, shape (N,)
        The predictor's outputs ``p_w(x)`` on the N points.
    grads : array_like, shape (N, P)
        The gradients of the outputs with respect to the P parameters w.
    targets : array_like, shape (m, N)
        The class H of target functions on the N points.
    loss : {"square", "hinge"}
        The loss whose gradient variance is bounded.
    rtol : float
        Relative slack for rounding.

    Raises
    ------
    AssertionError
        With both numbers, when the variance exceeds the bound by more than ``rtol``.
    """
    from .theory.orthogonal import gradient_variance

    var, bound = gradient_variance(values, grads, targets, loss)
    if not var <= bound * (1 + rtol):
        raise AssertionError(f"gradient variance {var!r} exceeds Theorem 1's bound G^2/|H| = {bound!r} "
                             f"(|H| = {np.shape(targets)[0]}, loss {loss})")


def assert_exponent(ns, values, expected: float, *, slack: float = 0.0):
    """A fitted power law ``values ~ ns^a`` whose 95% interval, widened by ``slack`` on each side,
    contains ``expected``.

    Parameters
    ----------
    ns, values : array_like
        The sizes and the measured values (positive) to fit ``log values`` against ``log ns``.
    expected : float
        The exponent the theory predicts (``2`` for iterations ~ n^2, say).
    slack : float
        Added to each side of the interval (>= 0): a model error the interval does not cover.

    Returns
    -------
    failgeom.theory.scaling.ExponentFit
        The fit.

    Raises
    ------
    AssertionError
        With the fit and its interval, when the widened interval misses ``expected``.
    """
    from .theory.scaling import fit_exponent

    finite_float(slack, "slack", 0.0)
    fit = fit_exponent(ns, values)
    lo, hi = fit.ci95
    if not lo - slack <= expected <= hi + slack:
        raise AssertionError(f"fitted exponent {fit.exponent:.4g} [{lo:.4g}, {hi:.4g}] (slack {slack}) does not "
                             f"contain the expected {expected}")
    return fit
