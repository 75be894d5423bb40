"""The verdict rules of beyond.sparse-exponent and beyond.staircase, fed data that should pass and
data that should fail: synthetic cell outputs whose samples grow like a chosen power of n go
through the experiments' own merge (Kaplan-Meier medians, local slopes, bootstrap) and then the
claims' rules."""

import dataclasses

import numpy as np
import pytest

from failgeom import claims
from failgeom.claims.beyond import (
    CONSISTENT,
    NOT_ASYMPTOTIC,
    NOT_CONSISTENT,
    exponent_verdict,
    log_allowance,
)
from failgeom.experiments import get

SPARSE = get("sparse-parity")
STAIR = get("staircase-parity")
CONFIG = dataclasses.replace(SPARSE.presets["quick"], ns_k2=(10, 20, 40, 80), ns_k3=(10, 20, 40, 80),
                             ns_dense=(), bootstrap=400)


def _cell(rng, protocol, k, n, exponent, setting, censor_above=None, sigma=0.25):
    """A fake sparse cell: steps = 30 (n/10)^exponent times lognormal noise; replicas whose
    steps exceed ``censor_above`` are censored there (the run stopped)."""
    R = setting["replicas"]
    steps = np.ceil(30 * (n / 10) ** exponent * np.exp(sigma * rng.standard_normal(R)))
    run = int(steps.max()) if censor_above is None else int(censor_above)
    learned = steps <= run
    return {"protocol": protocol, "k": k, "n": n, "batch": setting["batch"], "lr": setting["lr"].tolist(),
            "groups": setting["groups"].tolist(), "max_steps": setting["max_steps"],
            "steps": [int(s) if ok else None for s, ok in zip(steps, learned)], "censored": int((~learned).sum()),
            "steps_run": run, "progress_steps": [int(s * 0.8) if ok else None for s, ok in zip(steps, learned)],
            "subsets": [], "curve": {"steps": [0, run], "accuracy": [[0.5] * R, [1.0] * R],
                                     "support_ratio": [[1.0] * R, [2.0] * R]}, "seconds": 0.0}


def _sparse_result(exponents, config=CONFIG, censor=None, seed=0):
    """``exponents[(protocol, k)]`` (or a number for every protocol); ``censor[(protocol, k, n)]``
    caps a cell's run."""
    rng = np.random.default_rng(seed)
    outputs = {}
    for key in SPARSE.cell_keys(config):
        if key[0] == "sparse":
            _, p, k, n = key
            a = exponents[(p, k)] if isinstance(exponents, dict) else exponents(k)
            outputs[key] = _cell(rng, p, k, n, a, config.protocol(p, n), (censor or {}).get((p, k, n)))
        else:
            outputs[key] = SPARSE.compute_cell(config, 0, key)  # GF(2): milliseconds
    return SPARSE.merge_cells(config, seed, outputs)


def _verdict(result):
    return claims.evaluate(claims.get("beyond.sparse-exponent"), claims.Evidence({"sparse-parity": result}))


def test_samples_growing_like_n_to_the_k_minus_1_are_consistent():
    result = _sparse_result(lambda k: k - 1.0)
    for row in result.metrics["table"]:
        status, text = exponent_verdict(row)
        assert status == CONSISTENT, text
    v = _verdict(result)
    assert v.status == claims.REPRODUCED and "fixed" in v.value and "learned" in v.value


def test_samples_growing_faster_than_predicted_under_every_protocol_are_not_consistent():
    """n^(k - 1 + 1.5) under every protocol: every tail interval lies above k - 1 plus a log."""
    result = _sparse_result(lambda k: k + 0.5)
    assert [exponent_verdict(row)[0] for row in result.metrics["table"]] == [NOT_CONSISTENT] * 2
    v = _verdict(result)
    assert v.status == claims.NOT_REPRODUCED and "not consistent at k = 2, 3" in v.reason


def test_one_protocol_reaching_the_prediction_is_enough_from_above():
    """fixed lr too slow (n^(k+0.5)) but the lr grid's envelope at n^(k-1): consistent."""
    exps = {(p, k): (k - 1.0 if p == "best" else k + 0.5) for p in CONFIG.protocols for k in (2, 3)}
    result = _sparse_result(exps)
    assert all(exponent_verdict(row)[0] == CONSISTENT for row in result.metrics["table"])


def test_slopes_below_the_prediction_are_not_yet_asymptotic():
    """n^(k - 1.8): below k - 1 at every protocol; the verdict says so, not 'consistent'."""
    result = _sparse_result(lambda k: k - 1.8)
    statuses = [exponent_verdict(row)[0] for row in result.metrics["table"]]
    assert statuses == [NOT_ASYMPTOTIC] * 2
    v = _verdict(result)
    assert v.status == claims.NOT_TESTED and "not yet asymptotic" in v.reason
    # k = 2 consistent, k = 3 not yet: partly
    mixed = _sparse_result(lambda k: 1.0 if k == 2 else 0.8)
    assert _verdict(mixed).status == claims.PARTLY


def test_a_censored_median_is_never_fitted_and_counts_are_reported():
    """Cells at n = 80 stopped before most replicas learned: their median is not observed, the
    window through n = 80 has no slope, the tail is the window before, and the table shows how
    many learned."""
    censor = {(p, 2, 80): 100 for p in CONFIG.protocols}  # n^1 steps there are ~240
    result = _sparse_result(lambda k: k - 1.0, censor=censor)
    row = result.metrics["fixed k=2"]
    assert row["median_samples"][-1] is None and row["converged"][-1] < row["total"][-1] / 2
    assert row["windows"][-1]["slope"] is None and row["windows"][-1]["ci"][1] is None
    assert row["tail"]["ns"] == [10, 20, 40]
    table = result.metrics["table"][0]["protocols"]["fixed"]
    assert table["converged"] < table["total"] and table["last_median_observed_n"] == 40
    # every cell censored at its first check: nothing to decide
    censor = {(p, k, n): 1 for p in CONFIG.protocols for k in (2, 3) for n in (10, 20, 40, 80)}
    result = _sparse_result(lambda k: k - 1.0, censor=censor)
    assert _verdict(result).status == claims.NOT_TESTED


def test_k_differences_and_batch_check_are_reported():
    result = _sparse_result(lambda k: k - 1.0)
    diffs = {d["protocol"]: d for d in result.metrics["k_differences"]}
    assert set(diffs) == set(CONFIG.protocols) and diffs["fixed"]["ns"] == [20, 40, 80]
    lo, hi = diffs["fixed"]["ci"]
    assert lo < 1.0 < hi  # slopes 2 and 1 by construction
    ratios = [c["ratio"] for c in result.metrics["batch_check"]]
    # the fake batch-8 cells take as many steps as the batch-32 ones: a quarter of the samples
    assert len(ratios) == 8 and all(0.15 < r < 0.4 for r in ratios)
    assert all(c["ratio_ci"][0] < 0.25 * 1.5 and c["ratio_ci"][1] > 0.25 / 1.5 for c in result.metrics["batch_check"])


def test_log_allowance_is_one_log_factor():
    ns = np.array([100.0, 200.0, 400.0])
    exact = np.polyfit(np.log(ns), np.log(np.log(ns)), 1)[0]
    assert abs(log_allowance(ns) - 1 / np.log(200)) < 0.01 and abs(log_allowance(ns) - exact) < 0.01


# ---------------------------------------------------------------------------------------------
# staircase vs parity


def _stair_result(stair_exp, parity_exp, seed=0):
    config = dataclasses.replace(STAIR.presets["quick"], ns=(10, 20, 40, 80), bootstrap=400)
    rng = np.random.default_rng(seed)
    outputs = {}
    for target, n in STAIR.cell_keys(config):
        a = stair_exp if target == "staircase" else parity_exp
        steps = np.ceil(30 * (n / 10) ** a * np.exp(0.25 * rng.standard_normal(config.replicas)))
        outputs[(target, n)] = {"target": target, "n": n, "k": config.k, "batch": config.batch, "lr": config.lr,
                                "steps": steps.astype(int).tolist(), "censored": 0, "steps_run": int(steps.max()),
                                "supports": [], "curve": {"steps": [0], "rel_mse": [[1.0] * config.replicas]},
                                "seconds": 0.0}
    return STAIR.merge_cells(config, seed, outputs)


def _stair_verdict(result):
    return claims.evaluate(claims.get("beyond.staircase"), claims.Evidence({"staircase-parity": result}))


@pytest.mark.parametrize("stair, parity, status", [
    (1.0, 2.0, claims.REPRODUCED),          # the prediction
    (0.5, 1.5, claims.REPRODUCED),          # both below their asymptotes, the contrast resolved
    (2.0, 2.0, claims.NOT_REPRODUCED),      # the staircase superlinear beyond a log
    (1.0, 0.3, claims.NOT_REPRODUCED),      # the staircase steeper than the parity
    (1.0, 1.02, claims.PARTLY),             # no contrast resolved
])
def test_staircase_rule_says_each_verdict(stair, parity, status):
    v = _stair_verdict(_stair_result(stair, parity))
    assert v.status == status, (v.value, v.reason)
    assert "parity - staircase" in v.value


def _row(*tails, k=3):
    protocols = {f"p{i}": {"tail": None if t is None else {"ns": [40, 80, 160], "slope": t[0], "ci": [t[1], t[2]],
                                                         "ci_joint": [t[1], t[2]]},
                           "converged": 12, "total": 16} for i, t in enumerate(tails)}
    return {"k": k, "prediction": k - 1, "protocols": protocols, "spread": None}


def test_unbounded_intervals_decide_nothing():
    """k = 3 (prediction 2; one log over n = 40..160 adds 0.23): an interval with an unbounded
    end is unresolved unless it lies wholly above or below; all unresolved: not tested."""
    assert exponent_verdict(_row((1.5, None, None), (1.9, 1.0, None)))[0] == claims.NOT_TESTED
    assert exponent_verdict(_row((1.5, None, 1.8), (1.9, 1.0, None)))[0] == NOT_ASYMPTOTIC  # below
    assert exponent_verdict(_row((2.6, 2.4, None), (1.9, 1.0, None)))[0] == NOT_CONSISTENT  # above
    assert exponent_verdict(_row((2.0, 1.8, 2.2), (1.9, None, None)))[0] == CONSISTENT
    assert exponent_verdict(_row((2.0, 1.8, 2.2), (2.9, 2.4, 3.1)))[0] == CONSISTENT  # one protocol reaches it
    assert exponent_verdict(_row(None, None))[0] == claims.NOT_TESTED
    assert exponent_verdict(_row((2.2, 2.1, 2.3)))[0] == CONSISTENT  # within one log factor
    assert exponent_verdict(_row((2.5, 2.3, 2.7)))[0] == NOT_CONSISTENT
