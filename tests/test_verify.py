"""`failgeom verify`: every row passes on the true inputs and FAILS on a falsified one; the
table, its streaming, its JSON and its exit statuses."""

import argparse
import dataclasses
import io
import json

import numpy as np
import pytest

import failgeom.theory as T
from failgeom import claims, verify
from failgeom.checks import parity
from failgeom.problems.lines import sample_line_images
from failgeom.training import record_streams


@pytest.fixture(scope="module")
def recorded():
    with record_streams() as streams:
        rows = verify.run_checks(quick=True)
    return rows, streams


@pytest.fixture(scope="module")
def quick_rows(recorded):
    return recorded[0]


def test_every_stream_is_drawn_once(recorded):
    # each Generator or seed of a check comes from its own named node of the seed-stream tree
    streams = recorded[1]
    assert len(streams) > 20 and len(set(streams)) == len(streams)


def test_every_check_decides_a_registered_claim_in_paper_order(quick_rows):
    ids = [r.id for r in quick_rows]
    assert len(ids) == len(set(ids)) == len(verify.CHECKS)
    assert ids == claims.check_order()  # the order of the claims that name them
    assert not [a for a in ids for b in ids if a != b and b.startswith(a)]  # --only PREFIX is unambiguous
    for row in quick_rows:
        claim = claims.get(row.claim)
        assert row.id in claim.checks and row.statement == claim.statement


def test_every_row_passes_and_states_its_value(quick_rows):
    failed = [(r.id, r.computed) for r in quick_rows if not r.passed]
    assert not failed
    for row in quick_rows:
        assert np.isfinite(row.value) and row.computed and row.criterion
        if row.interval is not None:
            assert row.interval[0] <= row.value <= row.interval[1], row.id


def test_rows_with_room_state_their_margin(quick_rows):
    rows = {r.id: r for r in quick_rows}
    for cid in ("thm3.iteration-bound", "a5.upper-bound", "a5.lower-bound", "thm1.parity-decay", "a7.forward-only"):
        assert rows[cid].margin, cid
    # Theorem 3: the analytic bound 0.5/Snn is about 2, four times the claimed 0.5
    assert "0.5/Snn" in rows["thm3.iteration-bound"].margin and rows["thm3.iteration-bound"].value >= 2.0
    # A.5: the worst case comes close to the upper bound, the lower bound has about 21% room
    assert 0.9 < rows["a5.upper-bound"].value <= 1.0
    assert 0.5 <= rows["a5.lower-bound"].value < 0.7


def test_measured_values_that_answer_the_paper(quick_rows):
    rows = {r.id: r for r in quick_rows}
    assert 3.5 < rows["thm3.cond-growth"].value < 4.05  # cond(W^T W) grows like n^4
    lo, hi = rows["a7.forward-only"].interval  # A.7's averaged error at c = L = 0.5: below eps
    assert hi < 1.0


def _truncated_network(v):
    net = T.parity_network(v)  # drop the last triad: the largest even <x, v> is not covered
    keep = max(3, net["b1"].size - 3)
    return {"W1": net["W1"][:, :keep], "b1": net["b1"][:keep], "W2": net["W2"][:keep], "b2": net["b2"]}


def _wrong_inverse(n):
    U = T.pwl_inverse(n).copy()
    U[np.arange(1, n), np.arange(n - 1)] = -1  # first subdiagonal -1 instead of -2
    return U


def _inflated_e2e(W, b, labels):
    m = T.stocks_second_moments(W, b, labels)  # a ratio of sqrt(k) instead of k
    return T.StocksMoments(m.decomposition * np.sqrt(W.shape[1]), m.decomposition, m.grad_norm_sq)


def _wrong_grad_norm(W, b, labels):
    m = T.stocks_second_moments(W, b, labels)  # ||grad L||^2 off by 5% of E||g||^2: nu^2 wrong
    return T.StocksMoments(m.end_to_end, m.decomposition, m.grad_norm_sq + 0.05 * m.end_to_end)


def _flipped_images(rng, shape):
    images, labels = sample_line_images(rng, shape)
    return images[..., ::-1, :], labels  # row axis reversed: every slope changes sign


#: a falsified input per check: a wrong formula, a wrong constant or a wrong class
FALSIFIED = {
    "thm1.variance-bound": dict(make_class=lambda g, N, m: g.choice([-1.0, 1.0], size=(4 * N, N))),
    "thm1.parity-exact": dict(direct=lambda d, w, loss: 1.001 * parity.direct_variance(d, w, loss)),
    "thm1.parity-decay": dict(variance=lambda d, w, loss: tuple(
        x * f for x, f in zip(T.parity_gradient_variance(d, w, loss), (2.0 ** (d / 2), 1.0)))),
    "lemma3.parity-network": dict(network=_truncated_network),
    "thm2.decay-r": dict(gradients=lambda w, V, r: T.cos_predictor_gradients(w, V, 2.0)),
    "thm2.decay-d": dict(gradients=lambda w, V, r: T.cos_predictor_gradients(w, V, 1.1 * r)),
    "thm2.landscape": dict(closed_form=lambda w: T.periodic_landscape(w, sigma=1.05)),
    "fig2.line-images": dict(sample=_flipped_images),
    "sec3.3.stocks-ratio": dict(moments=_inflated_e2e),
    "sec3.3.ghadimi-lan": dict(moments=_wrong_grad_norm),
    "lemma1.inverse": dict(inverse=_wrong_inverse),
    "lemma2.closed-form": dict(expected=lambda n, eta, lam, t: T.expected_iterate(n, 2 * eta, lam, t)),
    "lemma2.monte-carlo": dict(expected=lambda n, eta, lam, t: T.expected_iterate(n, 2 * eta, lam, t)),
    "thm3.divergence": dict(threshold=1.0),  # the printed threshold
    "thm3.iteration-bound": dict(bound=3.0),
    "thm3.cond-methods": dict(condition=lambda n, method="auto": T.condition_number(n, method)
                              * (1.001 if method == "structured" else 1.0)),
    "thm3.cond-growth": dict(exponent=4.5),
    "a5.trajectory": dict(formula=lambda D, v, eta, t: T.gd_regression_error_formula(D, v, eta, np.asarray(t) + 1)),
    "a5.upper-bound": dict(sufficient=lambda *a: 0.5 * T.gd_iterations_sufficient(*a)),
    "a5.lower-bound": dict(lower=lambda D11, Dnn: 3.0 * T.gd_iterations_lower_bound(D11, Dnn)),
    "a6.cond-growth": dict(exponent=3.5),
    "a6.preconditioned": dict(estimate=lambda f: np.eye(3)),
    "sec5.flat-gradient": dict(activation=lambda b_star: np.tanh),
    "beyond.sparse-variance": dict(variance=lambda n, ks, w, loss: (lambda v, b: (v, 0.1 * b))(
        *T.sparse_parity_gradient_variance(n, ks, w, loss))),
    "a7.small-c": dict(measure=lambda *a, **k: dataclasses.replace(T.forward_only_average_error(*a, **k), ratio=0.8,
                                                                     ci=(0.7, 0.9))),
    "a7.forward-only": dict(run=lambda dim, c, B, L, eps, *a, **k: T.forward_only_run(dim, c, B, L, 10 * eps, *a, **k)),
}


def test_every_check_has_a_falsification_test():
    assert set(FALSIFIED) == {c.id for c in verify.CHECKS}


@pytest.mark.parametrize("check", verify.CHECKS, ids=lambda c: c.id)
def test_check_fails_on_a_falsified_input(check):
    row = verify.run_check(check, True, **FALSIFIED[check.id])  # an error is a FAIL too, as in the CLI
    assert row.passed is False, row.computed


def test_a_further_wrong_constant_fails_the_iteration_bound():
    # Theorem 3 at 50 times the iteration count: the error has fallen below 0.5
    from failgeom.checks import pwl

    assert pwl.iteration_bound(True, factor=50.0).passed is False


def _args(**kw):
    return argparse.Namespace(**{"json": False, "quick": True, "only": None, "verbose": False, **kw})


def test_streams_rows_in_paper_order_within_100_columns():
    out = io.StringIO()
    assert verify.run_cli(_args(only="a5."), out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["id", "claim", "value", "result"]
    assert [line.split()[0] for line in lines[2:5]] == ["a5.trajectory", "a5.upper-bound", "a5.lower-bound"]
    assert lines[-1].startswith("3/3 checks passed")
    assert max(len(line) for line in lines) <= 100


def test_verbose_adds_claim_computed_criterion_margin():
    out = io.StringIO()
    verify.run_cli(_args(only="a5.lower", verbose=True), out)
    text = out.getvalue()
    for label in ("claim:", "computed:", "criterion:", "margin:", "corrected:"):
        assert label in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_a_corrected_check_passes_as_corrected_in_the_default_table():
    out = io.StringIO()
    assert verify.run_cli(_args(only="thm3."), out) == 0
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()[2:-1]}
    assert lines["thm3.divergence"].endswith(" " + verify.AS_CORRECTED)  # the paper's threshold is misprinted
    assert lines["thm3.cond-growth"].endswith(" PASS")
    assert max(len(line) for line in lines.values()) <= 100


def test_verify_says_as_corrected_exactly_where_the_claim_says_it():
    # a claim whose checks all pass is "partly: holds as corrected" exactly when verify prints
    # PASS (as corrected) for its checks
    for claim in [c for c in claims.CLAIMS if c.checks]:
        rows = [verify.CheckRow(cid, "", "", 1.0, None, True, 0.0) for cid in claim.checks]
        verdict = claims.evaluate(claim, claims.Evidence({}, rows))
        words = {verify.result_word(r) for r in rows}
        assert words == ({verify.AS_CORRECTED} if "holds as corrected" in verdict.reason else {"PASS"}), claim.id
    assert verify.result_word(verify.CheckRow("thm3.divergence", "", "", 1.0, None, False, 0.0)) == "FAIL"


def test_main_json_only(capsys):
    assert verify.main(["--json", "--quick", "--only", "a5."]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in data["checks"]] == ["a5.trajectory", "a5.upper-bound", "a5.lower-bound"]
    fields = {"id", "claim", "statement", "computed", "value", "interval", "passed", "seconds", "margin"}
    assert all(set(c) >= fields for c in data["checks"]) and data["passed"] is True


def test_main_exit_1_when_a_claim_fails(monkeypatch, capsys):
    def broken(quick):
        raise RuntimeError("boom")

    monkeypatch.setattr(verify, "CHECKS", [verify.Check("x.fails", "never", broken)])
    assert verify.main(["--verbose"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "RuntimeError: boom" in out


@pytest.mark.parametrize("argv", [["--bogus"], ["--only", "no-such-claim"], ["extra"]])
def test_main_bad_arguments_exit_2_one_line(argv, capsys):
    assert verify.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err


def test_add_arguments_wires_into_any_parser():
    parser = argparse.ArgumentParser()
    verify.add_arguments(parser)
    args = parser.parse_args(["--quick", "--only", "lemma1", "-v"])
    assert (args.quick, args.only, args.verbose, args.json) == (True, "lemma1", True, False)
