"""The claims registry: every claim of the paper once, verdict rules that can say each verdict,
the report's opening table and the generated docs/claims.md."""

import re
from pathlib import Path

import pytest

from failgeom import claims, verify
from failgeom.claims.render import esc
from failgeom.experiments import names
from failgeom.results import Result
from failgeom.verify import CheckRow

ROOT = Path(__file__).resolve().parents[1]


def test_every_figure_theorem_lemma_and_appendix_result_has_a_claim():
    sources = " ".join(c.source for c in claims.CLAIMS)
    for n in range(1, 8):
        assert re.search(rf"Figures? {n}\b", sources), f"Figure {n}"
    for name in ("Theorem 1", "Theorem 2", "Theorem 3", "Lemma 1", "Lemma 2", "Lemma 3",
                 "Appendix A.5", "Appendix A.6", "Appendix A.7", "Sec. 3.3", "Sec. 5.1"):
        assert name in sources, name
    talk = [c for c in claims.CLAIMS if "talk" in c.source]
    assert any("no local minima or saddle" in c.statement for c in talk)
    assert any("diagonal" in c.statement for c in talk)  # Adam/AdaGrad condition only diagonally


def test_registry_is_consistent():
    ids = [c.id for c in claims.CLAIMS]
    assert len(ids) == len(set(ids))
    registered = set(names())
    checks = [cid for c in claims.CLAIMS for cid in c.checks]
    assert sorted(checks) == sorted(c.id for c in verify.CHECKS)  # each check decides exactly one claim
    for c in claims.CLAIMS:
        assert c.family in claims.FAMILY_TITLES and len(c.title) <= 42 and c.statement.endswith(".")
        assert set(c.experiments) <= registered, c.id
        assert c.checks or c.rule is not None, c.id
        assert bool(c.experiments) == (c.rule is not None) and (not c.experiments or c.metrics), c.id
        for path in (c.docs, c.code, c.test, c.figure):
            assert not path or (ROOT / path).exists(), (c.id, path)
    assert set(claims.FAMILY_TITLES) == {c.family for c in claims.CLAIMS}
    assert [claims.get(i).id for i in ids] == ids
    with pytest.raises(ValueError, match="unknown claim"):
        claims.get("no.such")


def _row(check_id, passed=True, value=1.0, interval=None, quick=True):
    claim = claims.claim_of_check(check_id)
    return CheckRow(id=check_id, statement=claim.statement, computed="c", value=value, interval=interval,
                    passed=passed, seconds=0.0, criterion="crit", claim=claim.id, preset="quick" if quick else "full")


def _all_rows(**failed):
    return [_row(c.id, passed=c.id not in failed) for c in verify.CHECKS]


def _verdicts(results=None, rows=None):
    return {c.id: v for c, v in claims.evaluate_all(results, rows)}


def test_without_evidence_nothing_is_tested():
    v = _verdicts()
    assert {x.status for x in v.values()} == {claims.NOT_TESTED}
    assert "failgeom verify was not run" in v["thm3.condition"].reason
    assert "no parity result" in v["fig1.parity"].reason


def test_checks_decide_and_a_failed_row_gives_the_numbers():
    v = _verdicts(rows=_all_rows())
    assert v["lemma1.inverse"].status == claims.REPRODUCED and v["lemma1.inverse"].preset == "verify --quick"
    # misprinted statements hold only as corrected
    assert v["thm3.divergence"].status == claims.PARTLY and "eta lam S11^2 > 2" in v["thm3.divergence"].reason
    assert v["a5.lower-bound"].status == claims.PARTLY
    # a claim with both sides and no experiment result: the checks' verdict, with what was not run
    assert v["sec3.3.second-moment"].status == claims.REPRODUCED and "no stocks result" in v["sec3.3.second-moment"].reason
    rows = _all_rows(**{"thm3.cond-growth": True})
    rows = [r if r.id != "thm3.cond-growth" else _row(r.id, False, 3.2, (3.1, 3.3)) for r in rows]
    bad = _verdicts(rows=rows)["thm3.condition"]
    assert bad.status == claims.NOT_REPRODUCED and "3.2 [3.1, 3.3]" in bad.reason
    missing = _verdicts(rows=[r for r in rows if r.id != "thm3.cond-methods"])["thm3.condition"]
    assert missing.status == claims.NOT_TESTED and "thm3.cond-methods" in missing.reason


def _parity(dims=(5, 10, 30), steps=20_000, top30=0.55, acc30=(0.5, 0.52, 0.47)):
    metrics = {f"d={d}": {"final_accuracy_min": 1.0, "final_accuracy": [1.0] * 3, "max_accuracy_over_run": 1.0}
               for d in dims if d != 30}
    if 30 in dims:
        metrics["d=30"] = {"final_accuracy_min": min(acc30), "final_accuracy": list(acc30),
                           "max_accuracy_over_run": top30}
    config = {"dims": list(dims), "steps": steps, "eval_every": 250, "eval_size": 500, "replicas": 3}
    return Result("parity", "quick", config, {"seed": 0}, metrics, {})


def test_figure1_rule_says_each_verdict():
    # a run shorter than the paper's is decided on its data and says how far it ran
    v = _verdicts({"parity": _parity()})["fig1.parity"]
    assert v.status == claims.REPRODUCED and "20,000 iterations run, the paper ran 50,000" in v.value
    assert v.preset == "quick"
    assert _verdicts({"parity": _parity(steps=50_000)})["fig1.parity"].status == claims.REPRODUCED
    # one evaluation above the binomial band of chance (Bonferroni over 81 x 3 evaluations of 500 points)
    off = _verdicts({"parity": _parity(top30=0.62)})["fig1.parity"]
    assert off.status == claims.NOT_REPRODUCED and "0.62" in off.reason
    untested = _verdicts({"parity": _parity(dims=(5, 10))})["fig1.parity"]
    assert untested.status == claims.NOT_TESTED and "no d >= 30" in untested.reason


def _landscape(saddles: int):
    crit = [{"w": [2.0, 2.0], "F": 0.0, "hessian_eigenvalues": [1.0, 1.0], "kind": "minimum"},
            {"w": [-2.0, -2.0], "F": 0.0, "hessian_eigenvalues": [1.0, 1.0], "kind": "minimum"}]
    crit += [{"w": [1.15, -1.15], "F": 0.993, "hessian_eigenvalues": [-0.077, 0.077], "kind": "saddle"}] * saddles
    def rate(k, n=200, **extra):
        return {"runs": n, "reached": k, "rate": k / n, "ci95": [max(0.0, k / n - 0.05), min(1.0, k / n + 0.05)],
                **extra}

    metrics = {"critical_points": crit,
               "flatness": {"levels": [1e-2, 1e-4, 1e-8, 1e-16], "radius": [3.42, 4.74, 6.46, 8.91],
                            "growth_exponent": 0.46, "target_norm": 2.83},
               "from_plateau": {"exact": rate(0, lr=0.5, batch=None, start_distance=6.46),
                                "sgd": rate(122, lr=0.5, batch=16, start_distance=6.46)},
               "from_init": {"exact": rate(200), "sgd": rate(199)},
               "sweep": [{"lr": 0.1, "exact": rate(0, 50), "sgd": {"1": rate(25, 50), "64": rate(1, 50)}}]}
    return Result("linear-periodic-landscape", "quick", {"extent": 7.0}, {"seed": 0}, metrics, {})


def test_landscape_rules():
    v = _verdicts({"linear-periodic-landscape": _landscape(2)})
    assert v["talk.landscape-critical"].status == claims.PARTLY
    assert "2 saddle points" in v["talk.landscape-critical"].reason
    assert _verdicts({"linear-periodic-landscape": _landscape(0)})["talk.landscape-critical"].status == claims.REPRODUCED
    assert v["talk.landscape-flat"].status == claims.REPRODUCED
    assert "1e-08 beyond distance 6.46" in v["talk.landscape-flat"].value
    search = v["talk.landscape-search"]  # SGD reaches the optimum more often than gradient descent
    assert search.status == claims.PARTLY and "especially stochastic" in search.reason
    assert "0/200 = 0 [0, 0.05]" in search.value and "batch 1 0.5" in search.reason  # rates, intervals, sweep
    assert "from the package's initialiser" in search.reason


def test_a_missing_metric_is_not_tested_and_named():
    broken = Result("parity", "quick", {"dims": [5, 30], "steps": 100, "eval_every": 10, "eval_size": 500,
                                        "replicas": 2}, {"seed": 0}, {"d=5": {}}, {})
    v = _verdicts({"parity": broken})["fig1.parity"]
    assert v.status == claims.NOT_TESTED and "parity has no metric d=5/final_accuracy_min" in v.reason


def test_docs_claims_page_is_generated_from_the_registry():
    page = (ROOT / "docs" / "claims.md").read_text()
    for c in claims.CLAIMS:
        assert f'<a id="{c.id}"></a>' in page and esc(c.statement) in page, c.id
    assert "python docs/make_claims.py" in page


RESTATED = ("Omega(n^3.5)", "n^3.5", "G(w)^2/|H|", "G^2/|H|", "stays at chance", "exp(-Omega")


@pytest.mark.parametrize("path", ["failgeom/report.py", "failgeom/verify.py", "docs/index.md", "README.md"])
def test_no_restated_claims_outside_the_registry(path):
    text = (ROOT / path).read_text()
    assert [p for p in RESTATED if p in text] == []
