"""Piecewise-linear curves (paper Sec. 4.1): data, the four learners, conditioning, Figure 6 runs."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom.experiments import get, pwl
from failgeom.problems.pwl import sample_pwl_curves
from failgeom.theory.pwl import pwl_inverse, pwl_matrix
from failgeom.theory.windows import inverse_sqrt, kink_second_moment

EPS64 = np.finfo(np.float64).eps


# --- data ------------------------------------------------------------------------------------


@settings(max_examples=15)
@given(n=st.integers(9, 120), count=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_code_curves_equal_W_p_exactly(n, count, seed):
    # Sec. 4.1: f = W p. The original code's kink coefficients are integers, so both sides are
    # exact integers in float64 (|f| <= 4 n^2 << 2^53) and must agree bit for bit.
    f, p = sample_pwl_curves(np.random.default_rng(seed), count, n, 3, "code")
    np.testing.assert_array_equal(f, p @ pwl_matrix(n, np.float64).T)
    assert ((p != 0).sum(axis=1) == 3).all()


@settings(max_examples=15)
@given(n=st.integers(3, 120), k=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_paper_curves_equal_W_p(n, k, seed):
    # Sec. 4.1 with a_r ~ U[-1, 1]: cumulative sums and the dense product round differently;
    # each f_i sums at most n terms of size <= n |a|, so the gap is below n^2 eps * k.
    f, p = sample_pwl_curves(np.random.default_rng(seed), 20, n, k, "paper")
    np.testing.assert_allclose(f, p @ pwl_matrix(n, np.float64).T, rtol=0, atol=4 * k * n * n * EPS64)
    # and U f = p (Lemma 1) to the same tolerance
    np.testing.assert_allclose(f @ pwl_inverse(n, np.float64).T, p, rtol=0, atol=16 * k * n * n * EPS64)


def test_continuous_kink_curves_match_their_formula():
    rng = np.random.default_rng(3)
    f, theta = pwl.sample_continuous_kink_curves(rng, 50, 30, 3)
    assert theta.min() >= 0 and theta.max() <= 30
    x = np.arange(30)
    # recompute one curve by its definition f(x) = sum_r a_r [x - theta_r]_+ : slopes change
    # only at the kinks, so the second difference vanishes away from them
    d2 = f[:, 2:] - 2 * f[:, 1:-1] + f[:, :-2]
    near = np.any(np.abs(x[None, None, 1:-1] - theta[:, :, None]) < 1, axis=1)
    assert np.abs(d2[~near]).max() < 1e-12
    assert (np.abs(d2[near]) > 0).mean() > 0.5


def test_near_kink_mask_covers_the_bend():
    p = np.zeros((1, 10))
    p[0, 5] = 0.7  # f = W p is 0 up to x = 4, bends at x = 4, is 0.7 at x = 5
    f = p @ pwl_matrix(10, np.float64).T
    assert f[0, 4] == 0 and f[0, 5] == pytest.approx(0.7)
    np.testing.assert_array_equal(np.flatnonzero(pwl.near_kink_mask(p)[0]), [3, 4, 5])


def test_minibatch_draws_from_each_replicas_own_set():
    f = np.arange(2 * 5 * 4, dtype=float).reshape(2, 5, 4)
    fb, pb = pwl.minibatch(np.random.default_rng(0), f, -f, 7)
    assert fb.shape == (2, 7, 4)
    for r in range(2):  # every row drawn comes from replica r's own rows
        assert all(any((row == f[r, i]).all() for i in range(5)) for row in fb[r])
    np.testing.assert_array_equal(pb, -fb)


# --- learners --------------------------------------------------------------------------------


def test_conv_filter_1_m2_1_reproduces_p_exactly():
    # The left-padded 'valid' convolution is Lemma 1's U: exact in integers (code distribution).
    n = 40
    f, p = sample_pwl_curves(np.random.default_rng(1), 30, n, 3, "code")
    learner = pwl.ConvLearner()
    params = learner.init(np.random.default_rng(0), 2, n, np.float64)
    params["W"][:] = pwl.TARGET_FILTER[None, :, None, None]
    out, _ = learner.model.forward(params, learner.inputs(np.stack([f, f])))
    np.testing.assert_array_equal(learner.kinks(out)[0], p)
    np.testing.assert_array_equal(learner.filter(params), np.tile(pwl.TARGET_FILTER, (2, 1)))


def test_preconditioned_learner_returns_C_inv_sqrt_x():
    # Sec. 4.1.3: regressing on F C^{-1/2} with weights x predicts F (C^{-1/2} x); with
    # x = C^{1/2} (1, -2, 1) the prediction is p and the returned filter is (1, -2, 1).
    n = 30
    data = pwl.make_data(0, 2, n, 3, "paper", 500, 20)
    learner = pwl.PreconditionedConvLearner(np.float64)
    learner.prepare(data)
    params = learner.init(np.random.default_rng(0), 2, n, np.float64)
    x = np.stack([np.linalg.solve(P, pwl.TARGET_FILTER) for P in learner.P])
    params["W"][:] = x[:, :, None]
    np.testing.assert_allclose(learner.filter(params), np.tile(pwl.TARGET_FILTER, (2, 1)), atol=1e-12)
    out, _ = learner.model.forward(params, learner.inputs(data.val_f))
    scale = np.abs(data.val_f).max()  # whitening cancels terms of the size of f
    np.testing.assert_allclose(learner.kinks(out), data.val_p, rtol=0, atol=1e3 * scale * EPS64)


@pytest.mark.parametrize("n", [3, 8, 50])
def test_left_padded_window_covariance_is_exact(n):
    # E[F^T F] = lam sum_j F(W e_j)^T F(W e_j) for isotropic kinks: an exact integer identity.
    W = pwl_matrix(n, np.float64)
    F = pwl.windows(W.T)  # windows of each column of W: (n, n, 3)
    exact = kink_second_moment(n, 3) * np.einsum("jta,jtb->ab", F, F)
    np.testing.assert_allclose(pwl.window_covariance_left_padded(n, 3), exact, rtol=1e-14)


def test_empirical_window_covariance_converges():
    n = 20
    f, _ = sample_pwl_curves(np.random.default_rng(5), 40_000, n, 3, "paper")
    C_hat = pwl.empirical_window_covariance(f)
    C = pwl.window_covariance_left_padded(n, 3)
    # relative error of a mean over 40,000 curves of a heavy-ish quantity: a few percent at most
    np.testing.assert_allclose(C_hat, C, rtol=0.05)


@settings(max_examples=4)
@given(seed=st.integers(0, 2**31 - 1))
def test_preconditioned_window_covariance_is_identity_within_5_percent(seed):
    # Sec. 4.1.3: C_hat from the original code's 10,000 training curves whitens the exact C.
    data = pwl.make_data(seed, 1, 100, 3, "paper", 10_000, 2)
    C_hat = pwl.empirical_window_covariance(data.train_f)[0]
    P = inverse_sqrt(C_hat)
    C = pwl.window_covariance_left_padded(100, 3)
    assert np.linalg.norm(P @ C @ P - np.eye(3), 2) < 0.05
    assert pwl.cond(C) > 1e6  # while the raw condition number is about 1.5e6 at n = 100


def _filter_error_after(name, seed, steps=500, **changes):
    cfg = pwl.PWLConfig(replicas=2, n=100, steps=steps, batch=10, optimizer="sgd", eval_every=steps,
                        snapshots=(steps,), val_size=2, dtype="float64", **changes)
    curves, *_ = pwl.train_learner(name, cfg, seed)
    return curves.array("filter_error")[-1]


@settings(max_examples=3)
@given(seed=st.integers(0, 2**31 - 1))
def test_conditioning_finds_the_filter_within_500_iterations(seed):
    # Sec. 4.1.3: condition number ~1, so SGD reaches (1, -2, 1) in a few hundred steps at
    # n = 100; the plain filter (cond 1.5e6), same steps, best of three step sizes up to 0.9 of
    # the stability edge, stays at least 100x worse.
    pre = _filter_error_after("conv-precond", seed)
    assert pre.max() < 1e-3
    plain = min(_filter_error_after("conv", seed, sgd_step_fraction=s).min() for s in (0.25, 0.5, 0.9))
    assert plain >= 100 * 1e-3
    assert plain >= 100 * pre.max()


def test_diagonal_rescaling_does_not_fix_the_geometry():
    # The talk: Adam/AdaGrad only condition diagonally. The best diagonal (Jacobi) rescaling
    # leaves the window covariance's condition number essentially unchanged and makes the fc
    # Hessian worse, while C^{-1/2} brings it to 1.
    conv = pwl.condition_summary("conv", 100, 3)
    assert conv["jacobi_condition_number"] > 0.9 * conv["window_condition_number"] > 1e6
    fc = pwl.condition_summary("fc", 100, 3)
    assert fc["jacobi_condition_number"] > fc["hessian_condition_number"] > 1e8


# --- experiments -----------------------------------------------------------------------------


def _tiny(name, **changes):
    # small matrices throughout (batch 10): multithreaded BLAS on a busy machine is slow for
    # mid-sized products, and nothing here needs them
    cfg = dataclasses.replace(get(f"pwl-{name}").presets["quick"], replicas=2, n=24, steps=60, batch=10,
                              eval_every=20, snapshots=(10, 30, 60), train_size=300, val_size=20)
    return dataclasses.replace(cfg, **changes)


@pytest.mark.parametrize("name", pwl.LEARNERS)
def test_each_learner_runs_and_is_deterministic(name):
    exp = get(f"pwl-{name}")
    cfg = _tiny(name)
    a, b = exp.run(cfg, seed=3), exp.run(cfg, seed=3)
    assert a.metrics["val_loss"] == b.metrics["val_loss"]
    np.testing.assert_equal(a.curves, b.curves)  # NaN-aware: train_loss is NaN at step 0
    snaps = a.curves["snapshots"]
    assert snaps["steps"] == [10, 30, 60]
    assert np.asarray(snaps["decodings"]).shape == (3, 2, 24)
    assert np.isfinite(a.metrics["recon_rmse"]["mean"])
    c = exp.run(cfg, seed=4)
    assert c.curves["snapshots"]["curves"] != a.curves["snapshots"]["curves"]
    fig = exp.figure(a)
    assert len(fig.axes) == 4
    assert exp.summary(a)


def test_code_distribution_and_sgd_options_run():
    for name in pwl.LEARNERS:
        lr = 1e-7 if name == "autoencoder" else None
        r = get(f"pwl-{name}").run(_tiny(name, distribution="code", optimizer="sgd", lr=lr), seed=0)
        assert r.metrics["optimizer"] == "sgd"
        assert np.isfinite(r.metrics["val_loss"]["mean"])
        if name == "conv-precond":  # the data-driven step whitens the code distribution too
            assert r.metrics["filter_error"]["max"] < 1e-3


def test_sgd_default_steps_come_from_the_stability_threshold():
    # lr=None with SGD: sgd_step_fraction times the largest stable step of the expected loss.
    cfg = _tiny("conv", optimizer="sgd", sgd_step_fraction=0.5)
    learner = pwl.make_learner("conv", 24, 3)
    top = np.linalg.eigvalsh(pwl.window_covariance_left_padded(24, 3))[-1]
    assert pwl.default_lr(learner, cfg) == pytest.approx(0.5 / top)
    with pytest.raises(ValueError, match="autoencoder"):
        pwl.default_lr(pwl.make_learner("autoencoder", 24, 3), _tiny("autoencoder", optimizer="sgd"))


def test_paper_presets_use_the_original_codes_settings():
    fc = get("pwl-fc").presets["paper"]
    assert (fc.optimizer, fc.batch, fc.steps) == ("adam", 100, 50_000)
    assert (fc.train_size, fc.val_size) == (10_000, 1_000)
    assert pwl.default_lr(pwl.make_learner("fc", 100, 3), fc) == 1e-4
    pre = get("pwl-conv-precond").presets["paper"]
    assert (pre.batch, pre.steps) == (10, 500)
    assert pwl.ADAM_LR == {"fc": 1e-4, "conv": 0.05, "conv-precond": 0.99, "autoencoder": 1e-3}
    assert get("pwl-autoencoder").presets["paper"].steps == 10_000


@pytest.mark.parametrize("changes, field", [
    (dict(snapshots=(10, 999)), "snapshots"),
    (dict(distribution="code", n=8), "distribution"),
    (dict(k=30, n=24), "k"),
    (dict(lr=-1.0), "lr"),
    (dict(val_size=1), "val_size"),
])
def test_bad_config_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        _tiny("fc", **changes).validate()


def test_combined_figure_has_one_row_per_learner():
    results = {name: get(f"pwl-{name}").run(_tiny(name, steps=30, snapshots=(10, 20, 30)), seed=0)
               for name in ("fc", "conv-precond")}
    fig = pwl.combined_figure(results)
    assert len(fig.axes) == 2 * 4


def test_kink_amplitude_ratio():
    f, p = sample_pwl_curves(np.random.default_rng(2), 50, 40, 3, "paper")
    f, p = np.stack([f, f]), np.stack([p, p])
    np.testing.assert_allclose(pwl.kink_amplitude_ratio(f, p), 1.0, rtol=1e-9)
    # a 5-point moving average keeps about a fifth of each kink in its second difference
    kernel = np.ones(5) / 5
    smooth = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), -1, f)
    assert (pwl.kink_amplitude_ratio(smooth, p) < 0.3).all()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_only_the_conditioned_learner_keeps_the_kinks(optimizer):
    # Sec. 4.1 / Figure 6 in miniature (n = 30, 300 steps): fc and conv keep at most a fifth of the
    # kink amplitudes (fc learns W's smooth top singular directions first), the conditioned conv
    # with SGD keeps them all; the ordering holds for Adam too (Adam lr 0.99 oscillates, so its
    # conditioned run is only within 50%).
    ratio = {}
    for name in ("fc", "conv", "conv-precond"):
        cfg = pwl.PWLConfig(replicas=2, n=30, steps=300, batch=10, optimizer=optimizer, eval_every=300,
                            snapshots=(300,), train_size=1000, val_size=200, dtype="float64")
        curves, *_ = pwl.train_learner(name, cfg, 0)
        ratio[name] = curves.array("kink_amplitude_ratio")[-1]
    assert ratio["fc"].max() < 0.2 and ratio["conv"].max() < 0.2
    if optimizer == "sgd":
        np.testing.assert_allclose(ratio["conv-precond"], 1.0, atol=1e-6)
    else:
        assert (np.abs(ratio["conv-precond"] - 1) < 0.5).all()
