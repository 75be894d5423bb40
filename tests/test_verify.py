"""`failgeom verify`: the claims table, its JSON, its exit statuses."""

import json

import pytest

from failgeom import verify


@pytest.fixture(scope="module")
def quick_rows():
    return verify.run_checks(quick=True)


def test_every_claim_has_a_row_and_passes(quick_rows):
    ids = [r.id for r in quick_rows]
    assert len(ids) == len(set(ids)) == len(verify.CHECKS)
    for prefix in ("lemma1", "lemma2", "lemma3", "thm1", "thm2", "thm3", "a5", "a6", "a7", "sec3.3"):
        assert any(i.startswith(prefix) for i in ids), prefix
    failed = [(r.id, r.computed) for r in quick_rows if not r.passed]
    assert not failed


def test_cond_growth_row_reports_exponent_interval(quick_rows):
    row = next(r for r in quick_rows if r.id == "thm3.cond-growth")
    lo, hi = row.interval
    assert lo <= row.value <= hi
    assert 3.5 < row.value < 4.05  # measured growth: about n^4


def test_table_and_json(quick_rows):
    table = verify.format_table(quick_rows)
    assert table.count("PASS") == len(quick_rows)
    data = json.loads(verify.to_json(quick_rows))
    assert data["passed"] is True
    assert {c["id"] for c in data["checks"]} == {r.id for r in quick_rows}
    fields = {"id", "statement", "computed", "value", "interval", "passed", "seconds"}
    assert all(set(c) >= fields for c in data["checks"])


def test_main_json_only(capsys):
    assert verify.main(["--json", "--quick", "--only", "a5."]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in data["checks"]] == ["a5.trajectory", "a5.upper-bound", "a5.lower-bound"]


def test_main_exit_1_when_a_claim_fails(monkeypatch, capsys):
    def broken(quick):
        raise RuntimeError("boom")

    monkeypatch.setattr(verify, "CHECKS", [verify._Check("x.fails", "a claim", "never", broken)])
    assert verify.main([]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "RuntimeError: boom" in out


@pytest.mark.parametrize("argv", [["--bogus"], ["--only", "no-such-claim"], ["extra"]])
def test_main_bad_arguments_exit_2_one_line(argv, capsys):
    assert verify.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
