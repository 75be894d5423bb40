"""Second moments of the two stocks estimators (paper Sec. 3.3) and the experiment's claims."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_equal

from failgeom import nn
from failgeom.experiments import stocks as S
from failgeom.problems.stocks import label_gains, labels_of, random_gains, sample_inputs
from failgeom.theory.decomposition import stocks_second_moments
from failgeom.training import seed_streams


def _init(seed, d, k, R=2, bias=True):
    config = S.StocksConfig(replicas=R, d=d, bias=bias, dtype="float64")
    return S.initial_state(config, k, seed_streams(seed, "stocks-test"))


@settings(deadline=None, max_examples=12)
@given(seed=st.integers(0, 2**31), d=st.integers(20, 400), k=st.integers(2, 300), bias=st.booleans())
def test_measured_ratio_at_init_within_10_percent_of_theory(seed, d, k, bias):
    """Sec. 3.3: the measured E||g_e2e||^2 / E||g_dec||^2 at initialisation (from per-example
    gradients backpropagated through the model) is within 10% of the theory module's value."""
    layer, params, labels = _init(seed, d, k, bias=bias)
    samples = 3000
    mc = S.measured_moments(layer, params, labels, np.random.default_rng(seed + 1), samples)
    measured = mc["m2_end_to_end"] / mc["m2_decomposition"]
    b = params.get("b")
    theory = np.array([stocks_second_moments(params["W"][r], None if b is None else b[r], labels[r]).ratio
                       for r in range(len(labels))])
    # the 10% must be a real test: the Monte Carlo error of the ratio is far smaller
    rel_se = mc["m2_end_to_end_stderr"] / mc["m2_end_to_end"] + mc["m2_decomposition_stderr"] / mc["m2_decomposition"]
    assert np.all(4 * rel_se < 0.10), rel_se
    assert np.all(np.abs(measured / theory - 1.0) < 0.10), (measured, theory)
    # and the theory's ratio is about k near initialisation: exactly k at W = 0, so the closer
    # the init (std 1/sqrt(d)) is to 0 the better; at the paper's d = 1000 it is within 0.3%
    if d >= 200:
        assert np.all(np.abs(theory / k - 1.0) < 0.10), theory / k


@settings(deadline=None, max_examples=8)
@given(seed=st.integers(0, 2**31), k=st.integers(2, 30), scale=st.floats(0.5, 2.0))
def test_measured_moments_match_theory_away_from_init(seed, k, scale):
    """Along training the weights are far from init: Monte Carlo still matches the exact moments
    (5 standard errors), including the ratio falling well below k."""
    d = 30
    layer, params, labels = _init(seed, d, k)
    rng = np.random.default_rng(seed + 2)
    params["W"] = scale * rng.standard_normal(params["W"].shape)
    params["b"] = scale * rng.standard_normal(params["b"].shape)
    mc = S.measured_moments(layer, params, labels, rng, 6000)
    exact = S.exact_moments(params, labels)
    for e in S.ESTIMATORS:
        assert np.all(np.abs(mc[f"m2_{e}"] - exact[f"m2_{e}"]) < 5 * mc[f"m2_{e}_stderr"] + 1e-12)


@settings(deadline=None, max_examples=8)
@given(k=st.integers(2, 200), d=st.integers(1, 50), bias=st.booleans())
def test_ratio_is_exactly_k_at_zero_weights(k, d, bias):
    """At W = 0, b = 0 (N uniform): E||g_e2e||^2 = c (k - 1) / k^2 and E||g_dec||^2 = c (k - 1) / k^3."""
    layer = S.OneHotDense(d, k, bias=bias)
    params = {"W": np.zeros((1, d, k))}
    if bias:
        params["b"] = np.zeros((1, k))
    labels = np.random.default_rng(k).integers(0, k, size=(1, d))
    exact = S.exact_moments(params, labels)
    c = 2.0 if bias else 1.0
    assert_allclose(exact["m2_end_to_end"], c * (k - 1) / k**2, rtol=1e-12)
    assert_allclose(exact["m2_decomposition"], c * (k - 1) / k**3, rtol=1e-12)
    # the model's per-example decomposition gradients are deterministic given x at W = 0
    rng = np.random.default_rng(0)
    a = sample_inputs(rng, 1, 50, d)
    logits, _ = layer.forward(params, a)
    gains = label_gains(labels_of(labels, a), k, np.float64)
    _, dout = nn.losses.expected_negative_gain(logits, gains, reduction="none")
    assert_allclose(layer.per_example_sq_norms(params, dout), c * (k - 1) / k**3, rtol=1e-12)


def test_both_estimators_are_unbiased_for_the_same_gradient():
    """Sec. 3.2: E[grad(-z^T N)] = E[grad(-e_y^T N)] = grad L; averaged over many z for fixed x,
    the end-to-end gradient approaches the decomposition gradient (at rate 1/sqrt(n))."""
    d, k, n = 6, 5, 60000
    layer, params, labels = _init(0, d, k, R=1)
    rng = np.random.default_rng(1)
    a = np.tile(np.arange(d), n // d + 1)[None, : n]
    y = labels_of(labels, a)
    logits, cache = layer.forward(params, a)
    _, d_e2e = nn.losses.expected_negative_gain(logits, random_gains(rng, y, k, np.float64))
    _, d_dec = nn.losses.expected_negative_gain(logits, label_gains(y, k, np.float64))
    g_e2e = layer.backward(params, cache, d_e2e)[1]["W"]
    g_dec = layer.backward(params, cache, d_dec)[1]["W"]
    # per-coordinate noise near init: std <= 1/k per sample, n/d samples per row, mean over n
    bound = 5 * (1 / k) * np.sqrt(n / d) / n
    assert np.abs(g_e2e - g_dec).max() < bound
    # the gradient itself is much larger than that: the check is not vacuous
    assert np.abs(g_dec).max() > 10 * bound


def _tiny(**changes):
    base = S.StocksConfig(replicas=2, ks=(5, 200), d=50, steps=200, eval_every=20, moment_every=100,
                          eval_size=200, moment_samples=300, ratio_ks=(2, 20, 200))
    return dataclasses.replace(base, **changes)


def test_run_is_deterministic_and_records_both_estimators_and_optimizers():
    config = _tiny(steps=40, ks=(5,))
    r1, r2 = S.EXPERIMENT.run(config, seed=3), S.EXPERIMENT.run(config, seed=3)
    assert_equal(r1.curves, r2.curves)  # NaN (no training loss at step 0) equals NaN
    assert_equal(r1.metrics, r2.metrics)
    c = r1.curves["k=5"]
    assert c["steps"][0] == 0 and c["steps"][-1] == 40
    assert c["moment_steps"] == [0, 40] and c["sgd/moment_steps"] == [0, 40]
    for prefix in ("", "sgd/"):
        for e in S.ESTIMATORS:
            assert np.asarray(c[f"{prefix}eval_loss/{e}"]).shape == (len(c["steps"]), 2)
            # training moved the weights: the expected loss changed
            assert c[f"{prefix}expected_loss/{e}"][-1] != c[f"{prefix}expected_loss/{e}"][0]
    m = r1.metrics["k=5"]
    assert set(m["sgd"]) == {"end_to_end", "decomposition", "final_gap"}
    # every cell has its own streams: no two training runs share a curve
    runs = [c[f"{p}eval_loss/{e}"] for p in ("", "sgd/") for e in S.ESTIMATORS]
    assert all(not np.array_equal(x, y) for i, x in enumerate(runs) for y in runs[i + 1:])
    assert S.summary(r1).startswith("k=5:")
    other = S.EXPERIMENT.run(config, seed=4).curves["k=5"]["eval_loss/end_to_end"]
    assert not np.array_equal(other, c["eval_loss/end_to_end"])


def test_merge_of_cells_equals_the_serial_run():
    config = _tiny(steps=20, ks=(5,), eval_every=10, moment_every=10)
    outputs = {key: S.EXPERIMENT.compute_cell(config, 1, key) for key in reversed(S.cells(config))}
    merged, serial = S.EXPERIMENT.merge_cells(config, 1, outputs), S.EXPERIMENT.run(config, seed=1)
    assert_equal(merged.metrics, serial.metrics)
    assert_equal(merged.curves, serial.curves)


def test_decomposition_beats_end_to_end_for_large_k():
    """Figure 4 at small scale: with k = 200 stocks the end-to-end estimator (second moment
    ~200 times larger) trails the decomposition one; with k = 5 both reach the optimum -1.

    d = 200 with batch 20 keeps the paper's rate of 0.1 visits per input row per step. Without
    the bias: with it, at this small d the decomposition run slows down after a fast start and
    end-to-end overtakes it (reported in docs/e2e-vs-decomposition.md, Stocks); the paper-scale claim with the
    bias is the slow test below.
    """
    config = _tiny(ks=(5, 200), d=200, batch=20, steps=200, eval_every=50, moment_every=200, bias=False)
    r = S.EXPERIMENT.run(dataclasses.replace(config, optimizers=("adam",)), seed=0)
    small, large = r.metrics["k=5"], r.metrics["k=200"]
    # k = 5: both close to the optimum loss -1
    assert small["end_to_end"]["final_expected_loss_mean"] < -0.9
    assert small["decomposition"]["final_expected_loss_mean"] < -0.9
    # k = 200: a clear gap on every replica (losses lie in [-1, 0])
    e2e = np.array(large["end_to_end"]["final_expected_loss"])
    dec = np.array(large["decomposition"]["final_expected_loss"])
    assert np.all(dec < e2e - 0.05), (dec, e2e)
    assert_allclose(large["init"]["ratio_exact_mean"] / 200, 1.0, rtol=0.1)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="moment_every"):
        _tiny(moment_every=30).validate()
    with pytest.raises(ValueError, match="ks"):
        _tiny(ks=(1, 5)).validate()
    with pytest.raises(ValueError, match="target_loss"):
        _tiny(target_loss=-2.0).validate()
    for field, bad in (("lr", float("nan")), ("sgd_lr", float("inf")), ("d", 10**9), ("steps", 0)):
        with pytest.raises(ValueError, match=field):
            _tiny(**{field: bad}).validate()
    with pytest.raises(ValueError, match="optimizers"):
        _tiny(optimizers=("adam", "rmsprop")).validate()
    with pytest.raises(ValueError, match="optimizers"):
        _tiny(optimizers=("sgd", "sgd")).validate()


@pytest.mark.slow
def test_paper_preset_end_to_end_does_not_close_the_gap():
    """The paper's Figure 4 claim at full scale (several minutes)."""
    r = S.EXPERIMENT.run(S.PRESETS["paper"], seed=0)
    for k in (1000, 2000):
        m = r.metrics[f"k={k}"]
        assert np.all(np.array(m["decomposition"]["final_expected_loss"])
                      < np.array(m["end_to_end"]["final_expected_loss"]) - 0.1)


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31), k=st.integers(2, 50), bias=st.booleans())
def test_expected_loss_is_minus_mean_label_probability(seed, k, bias):
    """E[-z^T N(x)] = -E_x N(x)_y since E[z | x] = e_y; checked against the loss on every input
    with z = e_y, which is the same number."""
    d = 17
    layer, params, labels = _init(seed, d, k, bias=bias)
    rng = np.random.default_rng(seed)
    for p in params.values():
        p += rng.standard_normal(p.shape)
    a = np.tile(np.arange(d), (2, 1))
    logits, _ = layer.forward(params, a)
    value, _ = nn.losses.expected_negative_gain(logits, label_gains(labels, k, np.float64))
    assert_allclose(S.expected_loss(params, labels), value, rtol=1e-12)
