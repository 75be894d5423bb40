"""The stored paper-scale record: loading, the paper-scale verdicts, provenance, two columns."""

import json

import pytest

from failgeom import claims, record
from failgeom.claims import render
from failgeom.results import Result


def test_no_record_means_every_claim_not_tested(tmp_path):
    assert record.load(tmp_path / "absent") is None
    verdicts = record.paper_verdicts(None)
    assert len(verdicts) == len(claims.CLAIMS)
    assert {v.status for _, v in verdicts} == {claims.NOT_TESTED}


def test_an_unfinished_experiment_says_how_many_cells_are_stored(tmp_path):
    rec = record.PaperRecord(tmp_path)
    by_id = {c.id: v for c, v in record.paper_verdicts(rec)}
    v = by_id["fig3.tuple-lines"]
    assert v.status == claims.NOT_TESTED and "tuple-lines: 0 of 15 cells stored" in v.reason


def test_load_takes_paper_results_and_refuses_damaged_ones(tmp_path):
    quick = Result(experiment="parity", preset="quick", config={}, seeds={"seed": 0}, metrics={}, curves={})
    (tmp_path / "parity").mkdir()
    (tmp_path / "parity" / "result.json").write_text(quick.to_json())
    assert record.load(tmp_path, figures=False).results == {}  # not the paper preset
    assert "parity" in record.load(tmp_path, preset="quick", figures=False).results
    (tmp_path / "parity" / "result.json").write_text("{")
    with pytest.raises(ValueError, match="parity"):
        record.load(tmp_path, preset="quick", figures=False)


def test_verify_rows_round_trip(tmp_path):
    from failgeom import verify

    row = verify.CheckRow(id="thm3.x", statement="s", computed="c", value=float("nan"), interval=(1.0, 2.0),
                          passed=True, seconds=0.1, criterion="k", claim="thm3.condition")
    (tmp_path / record.VERIFY_FILE).write_text(verify.to_json([row]))
    rows = record.load(tmp_path).verify_rows
    assert rows[0].id == "thm3.x" and rows[0].interval == (1.0, 2.0) and rows[0].passed


def test_provenance_names_the_machine_and_counts_cells(tmp_path):
    info = record.provenance(tmp_path)
    assert {"commit", "date", "cpu", "blas", "numpy", "python", "bytes", "experiments"} <= set(info)
    assert info["experiments"]["tuple-lines"]["cells_planned"] == 15
    assert info["experiments"]["tuple-lines"]["cells_stored"] == 0
    assert record.main([str(tmp_path)]) == 0
    assert record.main([str(tmp_path / "absent")]) == 2


def test_two_columns_flag_claims_whose_scales_disagree():
    c = claims.CLAIMS[:3]
    V = claims.Verdict
    paper = [(c[0], V(claims.REPRODUCED)), (c[1], V(claims.PARTLY)), (c[2], V(claims.NOT_TESTED))]
    run = [(c[0], V(claims.REPRODUCED)), (c[1], V(claims.REPRODUCED)), (c[2], V(claims.REPRODUCED))]
    assert [x[0].id for x in render.disagreements(paper, run)] == [c[1].id]
    line = render.two_scale_line(paper, run, "quick")
    assert line.startswith("at the paper's scale: 1 reproduced, 1 partly") and "this run (quick): 3 reproduced" in line


def test_the_committed_record_is_small_enough_for_git():
    """The record lives in git: its size is stated in its provenance and stays modest."""
    if not record.DEFAULT_PATH.is_dir():
        pytest.skip("no stored record in this checkout")
    assert record.folder_bytes(record.DEFAULT_PATH) < 100e6
    prov = record.DEFAULT_PATH / record.PROVENANCE_FILE
    if prov.exists():
        assert json.loads(prov.read_text())["commit"]
