"""Iterations vs conditioning for the PWL learners (Sec. 4.1, Lemma 2, Theorem 3, App. A.5-A.6)."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom.experiments import get, pwl, pwl_scaling
from failgeom.theory.pwl import iteration_lower_bound
from failgeom.theory.regression import gd_regression_errors
from failgeom.theory.windows import inverse_sqrt


@settings(max_examples=10)
@given(n=st.integers(4, 60), frac=st.floats(0.05, 0.95), t=st.integers(0, 400))
def test_closed_form_gd_matches_stepping(n, frac, t):
    # Appendix A.5: the eigendecomposition closed form equals gradient descent run step by step
    # (theory.regression, loss 0.5 (w - w*)^T C' (w - w*) with C' = 2C, our loss's Hessian).
    C = pwl.window_covariance_left_padded(n, 3)
    eta = frac / np.linalg.eigvalsh(C)[-1]
    stepped = np.sqrt(gd_regression_errors(2 * C, pwl.TARGET_FILTER, eta, t))
    closed = pwl_scaling.gd_filter_errors(C, np.eye(3), eta, pwl.TARGET_FILTER, np.arange(t + 1))
    # cond(C) <= 1e6 here: rounding in the eigenbasis costs about cond * eps relative
    np.testing.assert_allclose(closed, stepped, rtol=1e-8, atol=1e-10)


def test_closed_form_gd_with_a_preconditioner_matches_stepping():
    n = 30
    C = pwl.window_covariance_left_padded(n, 3)
    data = pwl.make_data(0, 1, n, 3, "paper", 300, 2)
    P = inverse_sqrt(pwl.empirical_window_covariance(data.train_f)[0])  # an imperfect estimate
    eta = 0.4 / np.linalg.eigvalsh(P @ C @ P)[-1]
    x, x_star = np.zeros(3), np.linalg.solve(P, pwl.TARGET_FILTER)
    errs = []
    for _ in range(30):
        errs.append(np.linalg.norm(P @ x - pwl.TARGET_FILTER))
        x = x - eta * 2 * (P @ C @ P) @ (x - x_star)
    closed = pwl_scaling.gd_filter_errors(C, P, eta, pwl.TARGET_FILTER, np.arange(30))
    # absolute floor: rounding of x (size ||x*||) mapped back through P, a few hundred eps
    floor = 256 * np.finfo(float).eps * np.linalg.norm(P, 2) * np.linalg.norm(x_star)
    np.testing.assert_allclose(closed, errs, rtol=1e-10, atol=floor)


def test_gd_iteration_count_is_the_first_crossing():
    C = pwl.window_covariance_left_padded(10, 3)
    eta = 0.5 / np.linalg.eigvalsh(C)[-1]
    t = pwl_scaling.gd_iterations_to_tol(C, np.eye(3), eta, pwl.TARGET_FILTER, 1e-2)
    e = pwl_scaling.gd_filter_errors(C, np.eye(3), eta, pwl.TARGET_FILTER, [t - 1, t])
    assert e[0] > 1e-2 >= e[1]
    # Appendix A.5 with eta = 1/D11 for the 0.5-loss (our step_fraction 0.5): the slow mode
    # contracts by 1 - 1/cond per step, so t lies between cond * log(|v_n| / tol) and
    # cond * log(||w*|| / tol)
    c = pwl.cond(C)
    assert t <= c * np.log(np.sqrt(6) / 1e-2) + 1
    assert t >= 0.5 * c  # the corrected lower bound 0.5 D11 / Dnn


def test_unstable_step_is_refused():
    C = pwl.window_covariance_left_padded(10, 3)
    with pytest.raises(ValueError, match="eta"):
        pwl_scaling.gd_filter_errors(C, np.eye(3), 1.01 / np.linalg.eigvalsh(C)[-1], pwl.TARGET_FILTER, [1])


def test_measured_sgd_tracks_exact_gd_and_conditioning_is_flat():
    # The measured claim of pwl-scaling on a small range: SGD counts within 25% of exact GD on
    # the population quadratic; both grow with cond(C) (exponent 2.6 here: cond ~ n^2.5-2.7
    # over 5..8); conditioned counts do not grow.
    cfg = pwl_scaling.ScalingConfig(replicas=2, ns=(5, 6, 7, 8), sgd_max_n=8, fc_ns=(5,), fc_replicas=8,
                                    fc_points=3, train_size=1_000)
    r = pwl_scaling.run(cfg, seed=1)
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
    assert pwl_scaling.summary(r)
    assert len(get("pwl-scaling").figure(r).axes) == 2


def test_lemma2_closed_form_matches_the_sgd_average():
    # Lemma 2: E U_t = eta lam W^T sum_{i<t} (I - eta lam W W^T)^i, checked against the mean of
    # 256 SGD runs entrywise. z-scores of 25 entries x 6 checkpoints: with a correct formula the
    # largest |z| exceeds 5 with probability ~1e-4; a wrong step (e.g. eta instead of 2 eta, or
    # a transposed U) gives |z| in the tens.
    cfg = pwl_scaling.ScalingConfig(fc_replicas=256, fc_points=6, fc_batch=10, fc_t_factor=2.0)
    rows, m = pwl_scaling.fc_lemma2(5, cfg, seed=0)
    assert m["max_abs_z"] < 5
    # Theorem 3: while t + 1 <= S11^2 / (2 Snn^2), ||E U_t - U|| >= 0.5 (closed form and SGD mean)
    assert m["theorem3_bound"] == pytest.approx(iteration_lower_bound(5))
    assert m["lemma2_min_error_within_bound"] >= 0.5
    assert m["sgd_min_error_within_bound"] >= 0.5
    np.testing.assert_allclose(rows["sgd_error_norm"], rows["lemma2_error_norm"], rtol=0.05)


@pytest.mark.parametrize("changes, field", [
    (dict(ns=(8, 8, 8)), "ns"),
    (dict(sgd_max_n=7), "sgd_max_n"),
    (dict(step_fraction=1.0), "step_fraction"),
    (dict(fc_replicas=1), "fc_replicas"),
    (dict(fc_t_factor=0.0), "fc_t_factor"),
    (dict(tol=0.0), "tol"),
])
def test_bad_scaling_config_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(pwl_scaling.PRESETS["quick"], **changes).validate()


@pytest.mark.slow
def test_paper_range_exponents():
    # Paper preset: unconditioned counts grow like cond(C) (Theta(n^3), Appendix A.6) and the
    # conditioned counts stay flat.
    r = pwl_scaling.run(pwl_scaling.PRESETS["paper"], seed=0)
    fits = r.metrics["fits"]
    assert abs(fits["gd_plain_iterations"]["exponent"] - fits["window_condition_number"]["exponent"]) < 0.1
    cond_sgd_range = fits["window_condition_number_sgd_range"]["exponent"]
    assert abs(fits["sgd_plain_iterations"]["exponent"] - cond_sgd_range) < 0.3
    assert abs(fits["sgd_precond_iterations"]["exponent"]) < 0.2
