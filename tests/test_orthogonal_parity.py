"""Theorem 1 for all 2^d parities (paper Sec. 2.1): the exact variance of the gradient over the
target, its bound G^2/2^d, and the parity-variance experiment."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.linalg import hadamard

import failgeom.theory as T
from failgeom import nn, plotting
from failgeom.experiments import get
from failgeom.experiments.orthogonal_parity import PRESETS, fit_decay
from failgeom.experiments.parity_models import parity_network
from failgeom.theory.orthogonal import cube_inputs, parity_gradient_variance

# float64 sums over at most 2^8 inputs and 2^8 targets: rounding stays far below 1e-10
RTOL = 1e-10


def random_network(seed, d, width_factor, R, scale=1.0, bias_scale=0.0):
    """The paper's network with a random init, optionally rescaled and with random biases, so
    the properties are checked beyond the one point of the init distribution."""
    model = parity_network(d, width_factor)
    rng = np.random.default_rng(seed)
    params, _ = model.init(rng, R, (d,), "float64")
    for layer in (params[0], params[2]):
        layer["W"] *= scale
        layer["b"] += bias_scale * rng.standard_normal(layer["b"].shape)
    return model, params


def per_input_gradients(model, params, X):
    """Scores (R, N) and per-input gradients d p / d w (R, N, P) from the nn backward."""
    R = params[0]["W"].shape[0]
    score, cache = model.forward(params, nn.shared(X, R))
    ones = np.ones_like(score)  # d (sum_x p(x)) / d p(x): each slice is grad p at that input
    blocks = []
    for layer in (0, 2):
        g = model.per_example_grads(params, cache, ones, layer)
        blocks += [g["W"].reshape(R, X.shape[0], -1), g["b"].reshape(R, X.shape[0], -1)]
    return score[..., 0], np.concatenate(blocks, axis=-1)


def direct_variance(score, grads, loss):
    """Var(H, F, w) by an explicit sum over all 2^d parity targets (one replica)."""
    N = score.shape[0]
    H = hadamard(N).astype(np.float64)  # row v: prod_{i in v} x_i on cube_inputs' order
    if loss == "square":
        coef = score[None, :] - H
    else:  # hinge r(z) = max(0, 1 - z): d/dyhat r(yhat h) = -h 1[yhat h < 1]
        coef = -H * (score[None, :] * H < 1.0)
    per_target = coef @ grads / N
    centred = per_target - per_target.mean(axis=0)
    return np.mean(np.sum(centred**2, axis=1))


@settings(deadline=None, max_examples=12)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(2, 7), width_factor=st.integers(1, 10),
       loss=st.sampled_from(["square", "hinge"]), bias_scale=st.sampled_from([0.0, 0.5]))
def test_walsh_hadamard_variance_equals_direct_sum_over_all_parities(seed, d, width_factor, loss, bias_scale):
    # Sec. 2.1: the coefficients on all 2^d parities are the Walsh-Hadamard transform; the
    # direct sum uses gradients from failgeom.nn's backward, independent of the theory module
    model, params = random_network(seed, d, width_factor, R=2, bias_scale=bias_scale)
    score, grads = per_input_gradients(model, params, cube_inputs(d))
    # both routes of the theory module, each against nn's gradients: the WHT with the x_i-shift
    # identity, and the explicit sum over all targets with its own full per-input gradients
    for method in ("wht", "direct"):
        var, bound = parity_gradient_variance(d, T.network_weights(params), loss, method=method)
        for r in range(2):
            assert_allclose(var[r], direct_variance(score[r], grads[r], loss), rtol=RTOL)
            assert_allclose(bound[r], np.mean(np.sum(grads[r] ** 2, axis=1)) / 2**d, rtol=RTOL)


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(2, 9), width_factor=st.integers(1, 10),
       loss=st.sampled_from(["square", "hinge"]), scale=st.sampled_from([0.1, 1.0, 3.0]),
       bias_scale=st.sampled_from([0.0, 1.0]))
def test_variance_never_exceeds_theorem_1_bound(seed, d, width_factor, loss, scale, bias_scale):
    # Theorem 1: Var(H, F, w) <= G(w)^2 / |H| for any weights, square loss or 1-Lipschitz r(yhat y)
    _, params = random_network(seed, d, width_factor, R=3, scale=scale, bias_scale=bias_scale)
    var, bound = parity_gradient_variance(d, T.network_weights(params), loss)
    assert np.all(var <= bound * (1 + RTOL))
    assert np.all(var > 0)


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(2, 9), loss=st.sampled_from(["square", "hinge"]),
       bias_scale=st.sampled_from([0.0, 1.0]))
def test_variance_is_parseval_identity(seed, d, loss, bias_scale):
    # For the complete orthonormal class of all 2^d parities the bound is attained up to one term:
    # Var = E[c^2 ||grad p||^2] / 2^d - 4^-d ||c(1) grad p(1)||^2, where 1 = (1, ..., 1) is the
    # only input on which the mean of all parities is non-zero, c = 1 for the square loss and
    # c = (r'(p) + r'(-p)) / 2 in {-1, -1/2} for the hinge. (Derived in docs/orthogonal.md.)
    model, params = random_network(seed, d, 10, R=2, bias_scale=bias_scale)
    X = cube_inputs(d)
    assert np.all(X[0] == 1.0)
    score, grads = per_input_gradients(model, params, X)
    if loss == "square":
        c = np.ones_like(score)
    else:
        c = -0.5 * ((score < 1.0).astype(float) + (-score < 1.0))
    sq = np.sum(grads**2, axis=-1)
    expected = np.mean(c**2 * sq, axis=1) / 2**d - 4.0**-d * c[:, 0] ** 2 * sq[:, 0]
    var, _ = parity_gradient_variance(d, T.network_weights(params), loss)
    assert_allclose(var, expected, rtol=RTOL)


SMALL = dataclasses.replace(PRESETS["quick"], dims=(5, 6, 7, 8, 9), replicas=2, train_dims=(4,),
                            train_steps=300, train_eval_every=100)


def run(config, seed, preset="custom"):
    return get("parity-variance").run(config, seed=seed, preset=preset)


@pytest.fixture(scope="module")
def small_result():
    return run(SMALL, seed=3, preset="test")


def test_experiment_rate_matches_two_to_the_minus_d(small_result):
    fits = small_result.metrics["fits"]
    # Var / G^2 = 2^-d (1 - 2^-d kappa) with kappa = ||grad p(1)||^2 / E||grad p||^2 = O(1):
    # over d = 5..9 the correction moves the log2-slope by less than 0.1
    assert abs(fits["square_over_G2"]["rate_log2"] + 1.0) < 0.1
    # the hinge's c^2 lies in [1/4, 1], so its normalized rate is -1 up to the drift of E[c^2 ...]
    assert abs(fits["hinge_over_G2"]["rate_log2"] + 1.0) < 0.25
    # G^2 grows with d (more parameters), so the raw variance falls slower than 2^-d
    assert fits["G2"]["rate"] > 0
    assert fits["square"]["rate_log2"] > -1.0
    for loss in ("square", "hinge"):
        assert small_result.metrics[loss]["all_below_bound"]
        lo, hi = fits[loss]["ci95"]
        assert lo <= fits[loss]["rate"] <= hi


def test_experiment_training_curves_respect_bound(small_result):
    c = small_result.curves["train_d=4"]
    bound = np.asarray(c["bound"])
    assert np.asarray(c["steps"])[-1] == SMALL.train_steps
    for loss in ("square", "hinge"):
        assert np.all(np.asarray(c[f"variance_{loss}"]) <= bound * (1 + RTOL))
    # hinge: c^2 >= 1/4 gives Var >= bound/4 - 4^-d (...); at d = 4 the last term is below 1/16 of it
    assert np.all(np.asarray(c["variance_hinge"]) >= bound * (0.25 - 1 / 16))


def test_experiment_is_deterministic(small_result):
    again = run(dataclasses.replace(SMALL, train_dims=()), seed=3)
    assert again.curves["at_init"] == small_result.curves["at_init"]


def test_experiment_registered_figure_and_summary(small_result):
    exp = get("parity-variance")
    assert exp.presets["quick"].dims[0] == 2
    assert exp.presets["paper"].dims == tuple(range(2, 17))
    fig = exp.figure(small_result)
    assert len(fig.axes) >= 4
    assert "square" in exp.summary(small_result)
    # legible at the report's size, titled, and the d axes tick at integers only
    assert plotting.displayed_min_font_pt(fig) >= plotting.MIN_FONT_PT
    assert fig._suptitle is not None and "Theorem 1" in fig._suptitle.get_text()
    for ax in fig.axes[:2]:
        ticks = ax.get_xticks()
        assert np.all(ticks == np.round(ticks)), ticks
    plotting.close(fig)


def test_theory_init_and_nn_init_draw_the_same_law():
    # the paper's init is written once (failgeom.initializers.truncated_normal); theory's
    # init_parity_weights and nn's Dense draw it with the same shapes, std 1/sqrt(fan_in) cut at
    # 2 std and zero biases; 40 x 400 draws give a sample std within 2% of 0.8796 std
    d = 40
    th = T.init_parity_weights(np.random.default_rng(0), d)
    params, _ = parity_network(d).init(np.random.default_rng(1), 1, (d,), "float64")
    net = {k: v[0] for k, v in T.network_weights(params).items()}
    for k in ("W1", "b1", "W2", "b2"):
        assert th[k].shape == net[k].shape, k
    for w in (th, net):
        for k, fan_in in (("W1", d), ("W2", 10 * d)):
            sigma = 1 / np.sqrt(fan_in)
            assert np.abs(w[k]).max() <= 2 * sigma
        assert abs(w["W1"].std() * np.sqrt(d) - 0.8796) < 0.02
        assert not w["b1"].any() and not w["b2"].any()


def test_fit_decay_recovers_exact_rate():
    dims = np.arange(2, 10)
    values = (3.0 * 2.0 ** (-dims.astype(float)))[:, None] * np.ones((1, 3))
    f = fit_decay(dims, values)
    assert_allclose(f["rate_log2"], -1.0, rtol=1e-12)
    assert f["stderr"] < 1e-12


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="dims"):
        dataclasses.replace(SMALL, dims=(2, 3))
    with pytest.raises(ValueError, match="losses"):
        dataclasses.replace(SMALL, losses=("logistic",))
    with pytest.raises(ValueError, match="dims"):
        dataclasses.replace(SMALL, dims=(2, 3, 30))
    with pytest.raises(ValueError, match="train_dims"):
        dataclasses.replace(SMALL, train_dims=(4, 4))


@pytest.mark.slow
def test_paper_scale_bound_is_attained_at_d_16():
    # d = 10..16 at the paper's init: Var / G^2 = 2^-d (1 - 2^-d kappa), so the normalized
    # log2-rate is -1 to within 2^-10 kappa per unit d
    dims = list(range(10, 17))
    ratios, normalized = [], []
    for d in dims:
        _, params = random_network(d, d, 10, R=2)
        var, bound = parity_gradient_variance(d, T.network_weights(params), "square")
        ratios.append(var / bound)
        normalized.append(var / (bound * 2.0**d))
    assert np.min(ratios) > 1 - 2.0**-10 * 4
    f = fit_decay(dims, np.asarray(normalized))
    assert abs(f["rate_log2"] + 1.0) < 0.01


def test_theory_takes_the_nn_parameters_of_the_network_as_they_are():
    # one parameter layout: the nn network's [Dense, ReLU, Dense] parameters (float32 in the
    # experiments) give the same numbers as their float64 W1, b1, W2, b2 (network_weights)
    d = 5
    params, _ = parity_network(d).init(np.random.default_rng(3), 2, (d,), "float32")
    w = T.network_weights(params)
    assert {k: v.dtype for k, v in w.items()} == dict.fromkeys(("W1", "b1", "W2", "b2"), np.float64)
    assert np.array_equal(w["W1"], params[0]["W"]) and np.array_equal(w["b2"], params[2]["b"])
    for loss in ("square", "hinge"):
        direct, bound = parity_gradient_variance(d, params, loss)
        via, via_bound = parity_gradient_variance(d, w, loss)
        assert np.array_equal(direct, via) and np.array_equal(bound, via_bound)
    var, _ = T.sparse_parity_gradient_variance(d, [1, 2], params, "square")
    assert np.array_equal(var, T.sparse_parity_gradient_variance(d, [1, 2], w, "square")[0])
    with pytest.raises(ValueError, match="keys W and b"):
        T.network_weights([{"W": params[0]["W"]}, {}, params[2]])
    with pytest.raises(TypeError, match="Dense ReLU Dense"):
        T.network_weights(params[:2])
