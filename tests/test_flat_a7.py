"""Appendix A.7: the one forward-only SGD run (failgeom.theory.flat), its closed form in the
linear regime, the network core's update rule, and the averaged error A.7 bounds."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from failgeom import nn
from failgeom.theory import flat as F


@settings(deadline=None, max_examples=20)
@given(c=st.floats(0.3, 3.0), L=st.floats(0.3, 3.0), B=st.floats(0.5, 2.0), T=st.integers(1, 10_000))
def test_horizon_is_a7s_t_without_float_rounding(c, L, B, T):
    # eps chosen so that c^4 B^4 L^2 / eps^2 = T in exact arithmetic: the horizon is T itself
    # (float rounding gives 100.00000000000001 for T = 100, which once became 101 iterations)
    eps = c * c * B * B * L / math.sqrt(T)
    assert F.forward_only_horizon(c, B, L, eps) == T
    assert F.forward_only_horizon(c, B, L, eps * 1.01) == math.ceil(T / 1.0201)  # otherwise: ceil


@settings(deadline=None, max_examples=8)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 30), activation=st.sampled_from(sorted(F.ACTIVATIONS)))
def test_updates_are_the_network_cores_forward_only_step(seed, k, activation):
    # the theory's batched loop is nn.forward_only_step with plain SGD on Dense(1) -> u, step
    # for step: the one implementation of A.7 computes what the library's update rule computes
    rng = np.random.default_rng(seed)
    R, d, c, L, eta = 3, 4, 0.7, 1.3, 0.2
    v_star = rng.standard_normal((R, d))
    x = F.unit_sphere(rng, (k, R), d)
    w = np.zeros((R, d))
    sq = F.forward_only_updates(w, x, v_star, c, L, eta, activation)

    def u(r):
        return F.ACTIVATIONS[activation](r, c, L)

    model = nn.Sequential([nn.Dense(1, bias=False, init="zeros"), nn.StraightThrough(u)])
    params, _ = model.init(np.random.default_rng(0), R, (d,), np.float64)
    opt = nn.SGD(eta)
    losses = []
    for t in range(k):
        y = u(np.einsum("rd,rd->r", x[t], v_star))[:, None, None]
        loss = nn.losses.squared
        losses.append(nn.forward_only_step(model, params, lambda o, y_: loss(o, y_, coef=0.5), opt,  # noqa: B023
                                           x[t][:, None, :], y))
    assert_allclose(params[0]["W"][..., 0], w, rtol=1e-12, atol=1e-14)
    assert_allclose(2 * np.array(losses), sq, rtol=1e-12, atol=1e-15)


@settings(deadline=None, max_examples=10)
@given(c=st.floats(0.2, 2.0), frac=st.floats(0.2, 1.0), T=st.integers(1, 400), seed=st.integers(0, 2**16))
def test_one_dimension_linear_regime_equals_the_closed_form(c, frac, T, seed):
    # ramp with L B <= c in R^1: x = +-1 and w_t moves monotonically from 0 to v*, so u is
    # linear on the path and the average-iterate error is exactly L^2 B^2 (1 - rho^T)/(T gain)
    B = 1.0
    L = frac * c / B
    run = F.forward_only_sgd(1, c, B, L, T, 4, seed, activation="ramp", test_size=16)
    exact = F.forward_only_linear_average_error(1, B, L, run.eta, T)
    assert_allclose(run.average_error, exact, rtol=1e-10)
    assert np.all(run.weight_norm <= B * (1 + 1e-12))  # A.7's ||w|| <= B holds on the path


def test_higher_dimension_matches_the_closed_form_in_expectation():
    # R^5, ramp with L B = c: the replica mean of the unbiased online estimate agrees with the
    # exact expectation within 5 standard errors
    c = L = 0.5
    T = 100
    run = F.forward_only_sgd(5, c, 1.0, L, T, 2048, np.random.SeedSequence(11), activation="ramp", test_size=0)
    exact = F.forward_only_linear_average_error(5, 1.0, L, run.eta, T)
    stderr = run.average_error.std(ddof=1) / math.sqrt(run.average_error.size)
    assert abs(run.average_error.mean() - exact) <= 5 * stderr


def test_a7_t_is_short_for_small_c_in_the_linear_regime():
    # A.7's T = c^4 B^4 L^2 / eps^2 and eta = 1/(c sqrt T): the exact expected average-iterate
    # error tends to eps / (2c), so it exceeds eps for every c < 1/2 (and at c = 1/2 for finite T)
    for c in (0.25, 0.5):
        for eps in (c**3 / 10, c**3 / 100):  # L = c, B = 1: T = 100, 10,000
            T = F.forward_only_horizon(c, 1.0, c, eps)
            eta = F.forward_only_step_size(T, c)
            ratio = F.forward_only_linear_average_error(1, 1.0, c, eta, T) / eps
            assert ratio > 1.0 and ratio == pytest.approx(1 / (2 * c), rel=0.06)
    # and for c >= 1 it stays below eps
    T = F.forward_only_horizon(1.0, 1.0, 1.0, 0.1)
    assert F.forward_only_linear_average_error(1, 1.0, 1.0, F.forward_only_step_size(T, 1.0), T) < 0.1


def test_average_error_interval_at_the_corner_c_equals_l_equals_half():
    # the quantity A.7 bounds, with its interval: tanh u in R^5 stays below eps (the worst of 32
    # replicas above eps said nothing about the expectation); the ramp, linear there, is above
    tanh = F.forward_only_average_error(5, 0.5, 1.0, 0.5, 0.0125, 512, np.random.SeedSequence(3))
    ramp = F.forward_only_average_error(5, 0.5, 1.0, 0.5, 0.0125, 512, np.random.SeedSequence(3), activation="ramp")
    assert tanh.T == ramp.T == 100
    assert tanh.ci[1] < 1.0 < ramp.ci[0]
    assert tanh.ci[0] < tanh.ratio < tanh.ci[1] and tanh.max_replica_ratio >= tanh.ratio
    exact = F.forward_only_linear_average_error(5, 1.0, 0.5, ramp.eta, 100) / 0.0125
    assert abs(ramp.ratio - exact) <= 5 * ramp.stderr


def test_test_set_and_online_estimates_agree():
    # two unbiased estimates of the same average: online errors on the fresh samples and the
    # test-set error of every iterate w_0 .. w_{T-1}
    run = F.forward_only_sgd(5, 1.0, 2.0, 1.0, 60, 400, np.random.SeedSequence(5), test_size=512)
    assert run.steps.tolist() == list(range(61))
    on_test = run.test_error[:, :-1].mean(axis=1)
    diff = on_test - run.average_error
    assert abs(diff.mean()) <= 5 * diff.std(ddof=1) / math.sqrt(diff.size)
    assert run.test_error[:, -1].mean() < 0.5 * run.test_error[:, 0].mean()  # it learned


def test_numbers_do_not_depend_on_the_chunk_size(monkeypatch):
    a = F.forward_only_sgd(3, 1.0, 1.0, 1.0, 50, 4, 9, test_size=8, evaluations=7)
    monkeypatch.setattr(F, "_CHUNK_VALUES", 5)
    b = F.forward_only_sgd(3, 1.0, 1.0, 1.0, 50, 4, 9, test_size=8, evaluations=7)
    assert_allclose(a.average_error, b.average_error, rtol=0, atol=0)
    assert_allclose(a.test_error, b.test_error, rtol=0, atol=0)
    assert a.steps.tolist() == b.steps.tolist() and a.steps[0] == 0 and a.steps[-1] == 50


@pytest.mark.parametrize("kwargs, match", [
    (dict(c=float("nan")), "c must be"), (dict(B=float("inf")), "B must be"), (dict(L=-1.0), "L must be"),
    (dict(eps=0.0), "eps must be"), (dict(replicas=1), "replicas"), (dict(dim=0), "dim"),
    (dict(activation="relu"), "activation"), (dict(confidence=1.0), "confidence"),
])
def test_average_error_rejects_bad_arguments(kwargs, match):
    args = dict(dim=2, c=1.0, B=1.0, L=1.0, eps=0.5, replicas=4, seed=0) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        F.forward_only_average_error(**args)


def test_sgd_rejects_a_test_set_beyond_memory():
    with pytest.raises(ValueError, match="test_size"):
        F.forward_only_sgd(100, 1.0, 1.0, 1.0, 10, 10_000, 0, test_size=1_000_000)
