"""Piecewise-linear curves (paper Sec. 4.1): the four learners, their Hessians and step sizes,
the Figure 6 runs and the presets of the original code."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom.experiments import get, pwl, pwl_models
from failgeom.problems.pwl import sample_pwl_curves, sample_pwl_data
from failgeom.theory.pwl import condition_number, paper_step_threshold, pwl_inverse
from failgeom.theory.windows import kink_second_moment, window_covariance
from failgeom.training import NonFiniteLossError

EPS64 = np.finfo(np.float64).eps


def _data(seed, R, n, distribution, train, val):
    rngs = [np.random.default_rng([seed, r]) for r in range(R)]
    return sample_pwl_data(rngs, n, 3, distribution, train, val)


# --- learners --------------------------------------------------------------------------------


def test_conv_filter_1_m2_1_reproduces_p_exactly():
    # The original code's convolution (windows t = 2..n-1, two zeros in front) is Lemma 1's U on
    # its data (no kink at 0 or 1): exact in integers.
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
    data = _data(0, 2, n, "code", 500, 20)
    learner = pwl.PreconditionedConvLearner(np.float64)
    learner.prepare(data.train_f)
    params = learner.init(np.random.default_rng(0), 2, n, np.float64)
    x = np.stack([np.linalg.solve(P, pwl.TARGET_FILTER) for P in learner.P])
    params["W"][:] = x[:, :, None]
    np.testing.assert_allclose(learner.filter(params), np.tile(pwl.TARGET_FILTER, (2, 1)), atol=1e-12)
    out, _ = learner.model.forward(params, learner.inputs(data.val_f))
    scale = np.abs(data.val_f).max()  # whitening cancels terms of the size of f
    np.testing.assert_allclose(learner.kinks(out), data.val_p, rtol=0, atol=1e3 * scale * EPS64)


@settings(deadline=None, max_examples=3)
@given(seed=st.integers(0, 2**31 - 1), distribution=st.sampled_from(["code", "paper"]))
def test_preconditioned_window_covariance_is_identity_within_5_percent(seed, distribution):
    # Sec. 4.1.3: C_hat from the original code's 10,000 training curves whitens the exact C,
    # while the raw condition number is above 1e5 at n = 100 (1.4e5 for the code's data, 1.6e6
    # for the paper text's).
    data = _data(seed, 1, 100, distribution, 10_000, 2)
    learner = pwl.PreconditionedConvLearner()
    learner.prepare(data.train_f)
    C = pwl.ConvLearner().input_moment(pwl.curve_second_moment(100, 3, distribution))
    M = learner.input_moment(pwl.curve_second_moment(100, 3, distribution))[0]
    assert np.linalg.norm(M - np.eye(3), 2) < 0.05
    assert np.linalg.cond(C) > 1e5


def test_exact_hessians_are_the_theory_modules():
    # fc on the paper's data: E[f f^T] = lam W W^T, so its condition number is Theorem 3's
    # cond(W^T W) and the SGD step at fraction 1/2 is half of 1 / (lam S11^2); conv: the window
    # covariance of Appendix A.6.
    n, lam = 60, kink_second_moment(60, 3)
    fc = pwl.make_learner("fc", n, 3)
    summary = pwl.condition_summary(fc, n, 3, "paper")
    assert summary["hessian_condition_number"] == pytest.approx(condition_number(n), rel=1e-6)
    assert pwl.sgd_step_size(fc, 0.5, n, 3, "paper") == pytest.approx(0.5 * paper_step_threshold(n, lam), rel=1e-9)
    conv = pwl.make_learner("conv", n, 3)
    np.testing.assert_allclose(conv.input_moment(pwl.curve_second_moment(n, 3, "paper")),
                               window_covariance(n, 3, "paper", "valid"), rtol=1e-10)


def test_fc_can_reach_only_U_on_the_span_of_the_codes_curves():
    # The original code's curves vanish at x = 0, 1, 2 and are straight after the last kink
    # (rank n - 6): U_hat's rows stay in their span, so max |U_hat - U| cannot fall below 2,
    # while U Pi maps every such curve to its kink vector exactly.
    n = 30
    target = pwl_models.reachable_inverse(n, 3, "code")
    f, p = sample_pwl_curves(np.random.default_rng(4), 200, n, 3, "code")
    np.testing.assert_allclose(f @ target.T, p, atol=1e-9)
    assert np.abs(target - pwl_inverse(n, np.float64)).max() == pytest.approx(2.0)
    summary = pwl.condition_summary(pwl.make_learner("fc", n, 3), n, 3, "code")
    assert summary["hessian_rank"] == n - 6 and summary["u_max_error_floor"] == pytest.approx(2.0)
    np.testing.assert_array_equal(pwl_models.reachable_inverse(n, 3, "paper"), pwl_inverse(n, np.float64))


@pytest.mark.parametrize("distribution", ["paper", "code"])
def test_diagonal_rescaling_does_not_fix_the_geometry(distribution):
    # The talk: Adam/AdaGrad only condition diagonally. The best diagonal (Jacobi) rescaling
    # leaves the window covariance's condition number within 1% and the fc Hessian's above
    # 1e7, while C^{-1/2} brings it to about 1 (test above).
    conv = pwl.condition_summary(pwl.make_learner("conv", 100, 3), 100, 3, distribution)
    assert conv["jacobi_condition_number"] > 0.99 * conv["hessian_condition_number"] > 1e5
    fc = pwl.condition_summary(pwl.make_learner("fc", 100, 3), 100, 3, distribution)
    assert fc["jacobi_condition_number"] > 1e7 and fc["hessian_condition_number"] > 1e7


def _run(name, seed=0, **changes):
    cfg = dataclasses.replace(pwl.SPECS[name].tiny, **changes)
    return pwl.train_learner(name, cfg, seed)


def test_default_sgd_step_is_a_fraction_of_the_stability_edge():
    # lr unset with SGD: sgd_step_fraction times GD's stability edge 1 / (loss_coef lambda_max(C)).
    # At 0.9 of it the filter converges; at 1.5 times the edge the stiff direction blows up. A
    # Hessian off by the loss's factor (mean vs sum over coordinates) fails one of the two.
    kw = dict(n=30, batch=200, train_size=2_000, steps=300, eval_every=300, snapshots=(300,), optimizer="sgd",
              dtype="float64")
    stable = _run("conv", **kw, sgd_step_fraction=0.9)
    edge = stable.lr / 0.9
    C = window_covariance(30, 3, "paper", "valid")  # paper data: exact C, isotropic kinks
    assert _run("conv", **kw, distribution="paper", sgd_step_fraction=0.5).lr == pytest.approx(
        0.5 * 30 / np.linalg.eigvalsh(C)[-1], rel=1e-9)
    assert stable.curves.array("filter_error")[-1].max() < stable.curves.array("filter_error")[0].min()
    with pytest.raises(NonFiniteLossError), np.errstate(over="ignore", invalid="ignore"):
        _run("conv", **dict(kw, steps=3_000, eval_every=3_000, snapshots=(3_000,)), lr=1.5 * edge)
    with pytest.raises(ValueError, match="autoencoder"):
        _run("autoencoder", optimizer="sgd")


def test_conditioning_finds_the_filter_within_500_iterations():
    # Sec. 4.1.3: condition number ~1, so SGD reaches (1, -2, 1) in a few hundred steps at
    # n = 100; the plain filter (cond 1.4e5), same steps, best of three step sizes up to 0.9 of
    # the stability edge, stays at least 100x worse.
    kw = dict(n=100, steps=500, batch=10, optimizer="sgd", eval_every=500, snapshots=(500,), val_size=2,
              train_size=2_000, dtype="float64")
    pre = _run("conv-precond", **kw).curves.array("filter_error")[-1]
    assert pre.max() < 1e-3
    plain = min(_run("conv", **kw, sgd_step_fraction=s).curves.array("filter_error")[-1].min()
                for s in (0.25, 0.5, 0.9))
    assert plain >= 100 * 1e-3 and plain >= 100 * pre.max()


def test_original_conditioned_run_with_tensorflow_adam_reaches_the_filter():
    # The original 4.1.3 command (Adam lr 0.99, TensorFlow's beta2 0.999 and eps 1e-8, batch 10,
    # 500 iterations, the code's data): the filter comes within 1e-5 of (1, -2, 1), i.e. the
    # float32 floor of this loss, on every replica.
    cfg = dataclasses.replace(get("pwl-conv-precond").presets["paper"], replicas=2, val_size=20)
    run = pwl.train_learner("conv-precond", cfg, 0)
    assert run.curves.array("filter_error")[-1].max() < 1e-5


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_only_the_conditioned_learner_keeps_the_kinks(optimizer):
    # Sec. 4.1 / Figure 6 in miniature (n = 30, 300 steps, the code's data, Adam at the original
    # rates): the conditioned conv keeps every kink to within 1e-5 of its amplitude; fc and the
    # plain conv miss at least a thousand times more of it.
    kw = dict(n=30, steps=300, batch=10, optimizer=optimizer, eval_every=300, snapshots=(300,), train_size=1000,
              val_size=200, dtype="float64")
    miss = {name: np.abs(1 - _run(name, **kw).curves.array("kink_amplitude_ratio")[-1])
            for name in ("fc", "conv", "conv-precond")}
    assert miss["conv-precond"].max() < 1e-5
    assert min(miss["fc"].min(), miss["conv"].min()) > 1000 * max(miss["conv-precond"].max(), 1e-6)


def test_kink_amplitude_ratio():
    f, p = sample_pwl_curves(np.random.default_rng(2), 50, 40, 3, "paper")
    f, p = np.stack([f, f]), np.stack([p, p])
    np.testing.assert_allclose(pwl.kink_amplitude_ratio(f, p), 1.0, rtol=1e-9)
    # a 5-point moving average keeps about a fifth of each kink in its second difference
    kernel = np.ones(5) / 5
    smooth = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), -1, f)
    assert (pwl.kink_amplitude_ratio(smooth, p) < 0.3).all()


# --- experiments -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", pwl.LEARNERS)
def test_each_learner_runs_and_is_deterministic(name):
    exp = get(f"pwl-{name}")
    cfg = exp.tiny
    assert exp.cell_keys(cfg) == [(name,)]
    a, b = exp.run(cfg, seed=3), exp.run(cfg, seed=3)
    assert a.metrics == b.metrics and a.curves == b.curves
    snaps = a.curves["snapshots"]
    assert snaps["steps"] == list(cfg.snapshots)
    assert np.asarray(snaps["decodings"]).shape == (3, 2, cfg.n)
    c = exp.run(cfg, seed=4)
    assert c.curves["snapshots"]["curves"] != a.curves["snapshots"]["curves"]
    fig = exp.figure(a)
    # 3 x 3 snapshot panels, the validation panel, and the kink-share panel for grid kinks
    assert len([ax for ax in fig.axes if ax.axison]) == 10 + ("kink_amplitude_ratio" in a.metrics)


def test_summary_states_the_final_validation_numbers():
    exp = get("pwl-conv")
    r = exp.run(exp.tiny, seed=0)
    m = r.metrics
    text = exp.summary(r)
    for value in (m["val_loss"]["mean"], m["recon_rmse"]["mean"], m["kink_amplitude_ratio"]["mean"]):
        assert f"{value:.3g}" in text
    assert f"{m['filter_error']['mean']:.2e}" in text
    # the final numbers are the last evaluation's, averaged over replicas
    last = np.asarray(r.curves["validation"]["filter_error"][-1])
    assert m["filter_error"]["mean"] == pytest.approx(last.mean())


def test_paper_presets_use_the_original_codes_settings():
    # PWL_fail1.py: Adam with TensorFlow's defaults for every learner; batch 100, 10,000 / 1,000
    # curves, 50,000 iterations at 1e-4 (fc) and 0.05 (conv); the 4.1.3 command batch 10, 500
    # iterations, 0.99; the autoencoder 10,000 iterations at 1e-3 on continuous kinks.
    rates = {"fc": 1e-4, "conv": 0.05, "conv-precond": 0.99, "autoencoder": 1e-3}
    for name, rate in rates.items():
        cfg = get(f"pwl-{name}").presets["paper"]
        assert (cfg.optimizer, cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps) == ("adam", 0.9, 0.999, 1e-8)
        assert (cfg.distribution, cfg.n, cfg.k, cfg.train_size, cfg.val_size) == ("code", 100, 3, 10_000, 1_000)
        assert pwl.default_lr(pwl.make_learner(name, 100, 3), cfg) == rate
    assert [get(f"pwl-{n}").presets["paper"].steps for n in rates] == [50_000, 50_000, 500, 10_000]
    assert [get(f"pwl-{n}").presets["paper"].batch for n in rates] == [100, 100, 10, 100]
    assert pwl.data_distribution("autoencoder", get("pwl-autoencoder").presets["paper"]) == "continuous"


@pytest.mark.parametrize("changes, field", [
    (dict(snapshots=(10, 999)), "snapshots"),
    (dict(distribution="code", k=4), "k"),
    (dict(n=8), "n"),
    (dict(lr=-1.0), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(val_size=1), "val_size"),
    (dict(adam_beta2=1.0), "adam_beta2"),
    (dict(distribution="text"), "distribution"),
])
def test_bad_config_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(pwl.SPECS["fc"].tiny, **changes)


def test_combined_figure_has_one_row_per_learner():
    results = {name: get(f"pwl-{name}").run(pwl.SPECS[name].tiny, seed=0) for name in ("fc", "conv-precond")}
    fig = pwl.combined_figure(results)
    assert len(fig.axes) == 2 * 5


def test_autoencoder_rounding_reference_is_exact_away_from_kinks():
    from failgeom.experiments import get
    from failgeom.experiments.pwl import rounding_reference

    exp = get("pwl-autoencoder")
    ref = rounding_reference("autoencoder", exp.tiny, 0)
    assert ref["recon_rmse_away"]["max"] < 1e-12  # a moving average keeps every linear piece
    assert ref["recon_rmse_near_kinks"]["min"] > 0  # and rounds the kinks off
    result = exp.run(exp.tiny, seed=0)
    assert result.metrics["rounding_reference"] == ref


def test_cell_records_of_the_old_shape_merge_to_the_same_result():
    # records/paper holds cells written before the cells took their one shape: a whole Result
    # (seed under "seeds", the cell's own timing), whose merge added the autoencoder's rounding
    # reference. Merged now, such a record gives the metrics and curves of a fresh cell.
    for name in ("autoencoder", "conv"):
        exp = get(f"pwl-{name}")
        cfg, key = exp.tiny, (name,)
        new = exp.compute_cell(cfg, 5, key)
        assert set(new) == {"metrics", "curves"}
        old = {"experiment": exp.name, "preset": "custom", "config": cfg.to_dict(),
               "seeds": {"seed": 5, "replicas": cfg.replicas},
               "metrics": {k: v for k, v in new["metrics"].items() if k != "rounding_reference"},
               "curves": new["curves"], "timing": {"train_s": 1.0, "per_step_ms": 2.0}}
        fresh, stored = exp.merge_cells(cfg, 5, {key: new}), exp.merge_cells(cfg, 5, {key: old})
        assert stored.metrics == fresh.metrics and stored.curves == fresh.curves
        assert ("rounding_reference" in fresh.metrics) == (name == "autoencoder")
