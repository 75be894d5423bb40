"""Iterations vs conditioning for the PWL learners (Sec. 4.1, Lemma 2, Theorem 3, App. A.5-A.6)."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom.experiments import get, pwl_models, pwl_scaling
from failgeom.problems.pwl import sample_pwl_data
from failgeom.theory.pwl import iteration_lower_bound, paper_step_threshold, sgd_mean_iterate
from failgeom.theory.regression import gd_regression_errors
from failgeom.theory.windows import empirical_window_covariance, inverse_sqrt, window_covariance

W_STAR = pwl_models.TARGET_FILTER


def _hessian(n):
    """The conv learner's Hessian ``2 loss_coef C`` (loss: mean over the n coordinates)."""
    return 2.0 / n * window_covariance(n, 3, "paper", "valid")


@settings(deadline=None, max_examples=10)
@given(n=st.integers(4, 60), frac=st.floats(0.05, 0.95), tol=st.floats(1e-3, 1.0))
def test_plain_gd_count_is_the_first_crossing_of_stepped_gd(n, frac, tol):
    # Appendix A.5's closed form (theory.regression) as used for the count, against GD run step
    # by step: the count is the first step whose error is at most tol.
    H = _hessian(n)
    eta = 2 * frac / np.linalg.eigvalsh(H)[-1]
    t = pwl_scaling.plain_gd_iterations(H, eta, W_STAR, tol)
    if t > 20_000:
        return  # stepping that far is slow; the bisection is checked at smaller counts
    errs = np.sqrt(gd_regression_errors(H, W_STAR, eta, t))
    assert errs[t] <= tol * (1 + 1e-9)
    assert t == 0 or errs[t - 1] > tol * (1 - 1e-9)


def test_gd_iteration_count_follows_appendix_a5():
    # Appendix A.5 with eta = 1/D11 (step_fraction 0.5): the slow mode contracts by
    # 1 - 1/cond per step, so t lies between the corrected lower bound 0.5 cond and
    # cond * log(||w*|| / tol).
    H = _hessian(10)
    D = np.linalg.eigvalsh(H)
    t = pwl_scaling.plain_gd_iterations(H, 1 / D[-1], W_STAR, 1e-2)
    c = D[-1] / D[0]
    assert 0.5 * c <= t <= c * np.log(np.sqrt(6) / 1e-2) + 1


def test_unstable_step_is_refused():
    H = _hessian(10)
    with pytest.raises(ValueError, match="eta"):
        pwl_scaling.plain_gd_iterations(H, 2.02 / np.linalg.eigvalsh(H)[-1], W_STAR, 1e-2)


def test_conditioned_gd_count_matches_stepping_in_filter_space():
    # The conditioned learner's w = P x: GD on x with Hessian P H P, stepped in w = P x directly.
    n = 30
    H = _hessian(n)
    data = sample_pwl_data([np.random.default_rng(0)], n, 3, "paper", 300, 2)
    P = inverse_sqrt(empirical_window_covariance(data.train_f)[0])  # an imperfect estimate
    eta = 0.8 / np.linalg.eigvalsh(P @ H @ P)[-1]
    t = pwl_scaling.conditioned_gd_iterations(H, P, eta, W_STAR, 1e-6)
    w, M = np.zeros(3), P @ P  # preconditioned GD in w: w <- w - eta P^2 H (w - w*)
    errs = []
    for _ in range(t + 1):
        errs.append(np.linalg.norm(w - W_STAR))
        w = w - eta * M @ H @ (w - W_STAR)
    assert errs[t] <= 1e-6 < errs[t - 1]
    assert t < 40  # cond(P H P) is near 1: the count does not depend on cond(H) ~ 1e4


def test_measured_sgd_tracks_exact_gd_and_conditioning_is_flat():
    # The measured claim of pwl-scaling on a small range: SGD counts within 25% of exact GD on
    # the population quadratic; both grow with cond(C) (exponent 2.6 here: cond ~ n^2.5-2.7
    # over 5..8); conditioned counts do not grow.
    cfg = pwl_scaling.ScalingConfig(replicas=2, ns=(5, 6, 7, 8), sgd_max_n=8, fc_ns=(5,), fc_replicas=8,
                                    fc_points=3, train_size=1_000)
    r = get("pwl-scaling").run(cfg, seed=1)
    per = r.metrics["per_n"]
    for n in ("5", "6", "7", "8"):
        gd = per[n]["gd_plain_iterations"]
        for c in per[n]["sgd_plain_iterations"]:
            assert 0.75 * gd <= c <= 1.25 * gd
        assert max(per[n]["sgd_precond_iterations"]) <= 30
    fits = r.metrics["fits"]
    cond_fit, sgd_fit = fits["window_condition_number_sgd_range"], fits["sgd_plain_iterations"]
    assert abs(sgd_fit["exponent"] - cond_fit["exponent"]) < 0.3
    assert sgd_fit["exponent"] > 2
    assert abs(fits["sgd_precond_iterations"]["exponent"]) < 0.3
    assert r.metrics["censored_sgd_plain"] == {"5": 0, "6": 0, "7": 0, "8": 0}
    text = pwl_scaling.summary(r)
    assert f"SGD plain exponent {sgd_fit['exponent']:.2f}" in text
    assert len(get("pwl-scaling").figure(r).axes) == 2


def test_cells_are_one_per_size_and_merge_to_the_serial_run():
    exp = get("pwl-scaling")
    cfg = exp.tiny
    assert exp.cell_keys(cfg) == [("n", 4), ("n", 5), ("n", 6), ("fc", 4)]
    outputs = {key: exp.compute_cell(cfg, 2, key) for key in reversed(exp.cell_keys(cfg))}
    assert exp.merge_cells(cfg, 2, outputs).metrics == exp.run(cfg, seed=2).metrics
    # a cell record written before the framework timed the cells carries its own "seconds"
    stored = {key: {**out, "seconds": 1.0} for key, out in outputs.items()}
    assert exp.merge_cells(cfg, 2, stored).metrics == exp.merge_cells(cfg, 2, outputs).metrics


def test_lemma2_closed_form_matches_the_sgd_average():
    # Lemma 2: E U_t = eta lam W^T sum_{i<t} (I - eta lam W W^T)^i, checked against the mean of
    # 256 SGD runs entrywise. z-scores of 25 entries x 6 checkpoints: with a correct formula the
    # largest |z| exceeds 5 with probability ~1e-4; a wrong step (e.g. eta instead of 2 eta, or
    # a transposed U) gives |z| in the tens.
    cfg = pwl_scaling.ScalingConfig(fc_replicas=256, fc_points=6, fc_batch=10, fc_t_factor=2.0)
    rows, m = pwl_scaling.fc_lemma2(5, cfg, seed=0)
    # the step is fc_step_fraction of Theorem 3's threshold 1 / (lam S11^2), in Lemma 2's convention
    assert m["eta_lemma2"] == pytest.approx(cfg.fc_step_fraction * paper_step_threshold(5, m["lam"]), rel=1e-12)
    assert m["max_abs_z"] < 5
    # Theorem 3: while t + 1 <= S11^2 / (2 Snn^2), ||E U_t - U|| >= 0.5 (closed form and SGD mean)
    assert m["theorem3_bound"] == pytest.approx(iteration_lower_bound(5))
    assert m["lemma2_min_error_within_bound"] >= 0.5
    assert m["sgd_min_error_within_bound"] >= 0.5
    np.testing.assert_allclose(rows["sgd_error_norm"], rows["lemma2_error_norm"], rtol=0.05)


def test_the_two_lemma2_monte_carlos_agree():
    # Two Monte Carlos of Lemma 2's E U_t: the experiment's fc learner on PWL curves (sparse
    # kinks, a ~ U[-1, 1], its own loss and step) and theory's sgd_mean_iterate (dense
    # +-sqrt(lam) kink vectors, the 0.5-loss). At the same (n, eta, lam, t) both means lie within
    # 5 standard errors of the closed form entrywise, so they estimate the same quantity.
    from failgeom.theory.pwl import expected_iterate

    n = 5
    cfg = pwl_scaling.ScalingConfig(fc_replicas=256, fc_points=2, fc_batch=10, fc_t_factor=1.0)
    rows, m = pwl_scaling.fc_lemma2(n, cfg, seed=3)
    t = rows["t"][-1]
    assert max(rows["max_abs_z"]) < 5
    mean, se = sgd_mean_iterate(n, m["eta_lemma2"], m["lam"], t, 256, 11, batch=10)
    z = np.abs(mean - expected_iterate(n, m["eta_lemma2"], m["lam"], t)) / np.maximum(se, 1e-300)
    assert z.max() < 5


@pytest.mark.parametrize("changes, field", [
    (dict(ns=(8, 8, 8)), "ns"),
    (dict(sgd_max_n=7), "sgd_max_n"),
    (dict(step_fraction=1.0), "step_fraction"),
    (dict(fc_replicas=1), "fc_replicas"),
    (dict(fc_t_factor=0.0), "fc_t_factor"),
    (dict(tol=0.0), "tol"),
    (dict(tol=float("inf")), "tol"),
])
def test_bad_scaling_config_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(pwl_scaling.PRESETS["quick"], **changes)


@pytest.mark.slow
def test_paper_range_exponents():
    # Paper preset: unconditioned counts grow like cond(C) (Theta(n^3), Appendix A.6) and the
    # conditioned counts stay flat.
    r = get("pwl-scaling").run(pwl_scaling.PRESETS["paper"], seed=0)
    fits = r.metrics["fits"]
    assert abs(fits["gd_plain_iterations"]["exponent"] - fits["window_condition_number"]["exponent"]) < 0.1
    cond_sgd_range = fits["window_condition_number_sgd_range"]["exponent"]
    assert abs(fits["sgd_plain_iterations"]["exponent"] - cond_sgd_range) < 0.3
    assert abs(fits["sgd_precond_iterations"]["exponent"]) < 0.2
