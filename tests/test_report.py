"""``failgeom reproduce``: the report (Markdown and self-contained HTML), skipping complete results
on a rerun, re-running on a changed config, and ``--jobs 2`` giving the numbers of ``--jobs 1``."""

import base64
import json
import re

import pytest

from failgeom import claims, report, reproduction, runner
from failgeom.claims.render import esc
from failgeom.cli import main
from failgeom.experiments import get
from failgeom.verify import CHECKS, CheckRow

NAMES = ["parity", "flat-forward-only"]


def tiny_configs(**parity_changes):
    """Configs small enough that both experiments run in about a second."""
    return {
        "parity": get("parity").config("quick", **{**dict(dims=(3,), steps=40, eval_every=20, replicas=2),
                                                   **parity_changes}),
        "flat-forward-only": get("flat-forward-only").config(
            "quick", steps=40, eval_every=20, eval_size=100, test_size=400, replicas=2),
    }


def fake_rows(quick):
    """Verify rows of families 1 and 4 (one FAIL) and one that decides no registered claim."""
    def row(check_id, passed):
        return CheckRow(id=check_id, statement=f"claim {check_id}", computed="c", value=0.5,
                        interval=(0.25, 0.75), passed=passed, seconds=0.0, criterion="crit")

    return [row("thm1.variance-bound", True), row("a7.forward-only", False), row("zz.unmapped", True)]


def reproduce(out, configs=None, jobs=1, seed=0, verify=fake_rows, only=NAMES):
    return reproduction.reproduce("quick", out, only, jobs, seed, True, None,
                            configs=configs or tiny_configs(), verify=verify)


TIME_KEY = re.compile(r"(^|_)(wall|ms|s|seconds|time)(_|$)")


def untimed(metrics, prefix=""):
    """The flattened metrics without wall-clock measurements (which differ between any two runs)."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(untimed(value, f"{prefix}{key}/"))
        elif not TIME_KEY.search(key):
            flat[prefix + key] = value
    return flat


def sections(text):
    """``{heading: body}`` of the level-2 sections of a Markdown report."""
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    return {p.split("\n", 1)[0]: p for p in parts}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    assert reproduce(out) == 0
    return out


def test_report_has_each_family_figure_metrics_and_verify_rows(first_run):
    text = (first_run / "report.md").read_text()
    secs = sections(text)
    fam1 = secs["1. Non-informative gradients"]
    fam4 = secs["4. Flat activations"]
    # the registry's claims with a verdict, each experiment's statement, figure and metric, in its family
    assert esc(claims.get("fig1.parity").statement) in fam1 and esc(claims.get("a7.forward-only").statement) in fam4
    assert "`fig1.parity`" in secs["The paper's claims and their verdicts"]
    assert "![parity: reproduced figure](parity/figure.png)" in fam1
    assert "![flat-forward-only: reproduced figure](flat-forward-only/figure.png)" in fam4
    result = json.loads((first_run / "parity" / "result.json").read_text())
    mean = result["metrics"]["d=3"]["final_accuracy_mean"]
    assert f"| `d=3 / final_accuracy_mean` | {mean:.4g} |" in fam1
    # verify rows land in the family of their claim, with PASS/FAIL; unknown ids kept apart
    assert "`thm1.variance-bound`" in fam1 and "**PASS**" in fam1 and "a7.forward-only`" not in fam1.split("Verify rows")[1]
    assert "`a7.forward-only`" in fam4 and "**FAIL**" in fam4
    assert "`zz.unmapped`" in secs["Other verify rows"]
    assert "2. Decomposition" not in secs  # only the families of the selected experiments
    # environment: versions, BLAS, CPU and a wall time per experiment
    env = secs["Environment"]
    for key in ("| numpy |", "| blas |", "| cpu |", "| date |", "| `parity` | ran |"):
        assert key in env
    index = (first_run / "index.md").read_text()
    assert "parity/result.json" in index and "flat-forward-only/figure.png" in index


def test_html_is_self_contained(first_run):
    page = (first_run / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    sources = re.findall(r'<img alt="[^"]*reproduced figure"[^>]*src="([^"]*)"', page)
    assert len(sources) == len(NAMES)
    for name, src in zip(NAMES, sources):
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix):]) == (first_run / name / "figure.png").read_bytes()
    # nothing to fetch: every link is an anchor inside the page, no external script or style
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))
    assert "figure.png" not in page and "<script" not in page and "<link" not in page


def test_rerun_skips_complete_results_and_reruns_changed_config(first_run, capsys):
    before = {n: (first_run / n / "result.json").stat().st_mtime_ns for n in NAMES}
    assert reproduction.reproduce("quick", first_run, NAMES, 1, 0, False, None,
                            configs=tiny_configs(), verify=fake_rows) == 0
    assert "0 cells run, 0 reused, 0 failed (2 complete results reused)" in capsys.readouterr().out
    assert {n: (first_run / n / "result.json").stat().st_mtime_ns for n in NAMES} == before
    assert "Reused without running again (2)" in (first_run / "report.md").read_text()

    # a changed parity config runs parity again, and only parity
    assert reproduce(first_run, tiny_configs(steps=60)) == 0
    assert json.loads((first_run / "parity" / "result.json").read_text())["config"]["steps"] == 60
    assert (first_run / "flat-forward-only" / "result.json").stat().st_mtime_ns == before["flat-forward-only"]
    text = (first_run / "report.md").read_text()
    assert "`parity` (config changed (steps))" in text and "| `parity` | ran |" in text


@pytest.mark.parametrize("damage, reason", [
    (lambda folder: (folder / "result.json").write_text('{"experiment": "par'), "damaged"),
    (lambda folder: (folder / "figure.png").unlink(), "no figure.png"),
])
def test_incomplete_result_is_not_reused(tmp_path, damage, reason):
    configs = tiny_configs()
    assert reproduce(tmp_path, configs, verify=False, only=["parity"]) == 0
    damage(tmp_path / "parity")
    result, why = runner.reusable(tmp_path / "parity", configs["parity"], "quick", 0)
    assert result is None and reason in why
    assert reproduce(tmp_path, configs, verify=False, only=["parity"]) == 0
    assert runner.reusable(tmp_path / "parity", configs["parity"], "quick", 0)[0] is not None
    # another seed or preset is another result
    assert "seed" in runner.reusable(tmp_path / "parity", configs["parity"], "quick", 1)[1]
    assert "preset" in runner.reusable(tmp_path / "parity", configs["parity"], "paper", 0)[1]


def test_jobs_2_gives_the_numbers_of_jobs_1(tmp_path):
    assert reproduce(tmp_path / "serial", jobs=1, verify=False) == 0
    assert reproduce(tmp_path / "parallel", jobs=2, verify=fake_rows) == 0
    for name in NAMES:
        serial = json.loads((tmp_path / "serial" / name / "result.json").read_text())
        parallel = json.loads((tmp_path / "parallel" / name / "result.json").read_text())
        assert parallel["config"] == serial["config"] and parallel["curves"] == serial["curves"]
        # every number but the measured times (some experiments report their cost as a metric)
        assert untimed(parallel["metrics"]) == untimed(serial["metrics"])
        assert len(untimed(serial["metrics"])) >= 4
    text = (tmp_path / "parallel" / "report.md").read_text()
    assert "| `a7.forward-only` |" in text and "| **FAIL** |" in text  # verify ran in a worker


def test_failed_experiment_is_reported_and_others_still_run(tmp_path):
    configs = tiny_configs(lr=1e30)  # parity diverges
    assert reproduce(tmp_path, configs, verify=False) == 1
    text = (tmp_path / "report.md").read_text()
    assert re.search(r"\*\*FAILED:\*\* parity( d=3)?: NonFiniteLossError", text)  # the cell that failed
    assert (tmp_path / "flat-forward-only" / "result.json").is_file()
    assert "`failgeom verify` was not run for this report." in text


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "0"], "argument --jobs: expected an integer from 1 to 4096, got 0"),
    (["--jobs", "two"], "argument --jobs: expected an integer, got 'two'"),
    (["--only", "parity", "nope"], "unknown experiment 'nope'"),
])
def test_bad_input_is_one_line_exit_2_before_anything_runs(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_unwritable_out_is_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["reproduce", "--only", "parity", "--out", str(blocker / "sub")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_every_verify_row_belongs_to_a_family():
    assert {c.id: report.family_of_check(c.id) for c in CHECKS if report.family_of_check(c.id) is None} == {}


def test_flatten_metrics_keeps_scalars_and_short_lists():
    metrics = {"a": {"b": 1.5, "c": [1, 2], "long": list(range(50))}, "ok": True, "none": None,
               "curve": [[1, 2], [3, 4]]}
    assert report.flatten_metrics(metrics) == [("a / b", 1.5), ("a / c", [1, 2]), ("ok", True), ("none", None)]


def test_every_experiment_decides_a_claim_of_its_family():
    from failgeom.experiments import names

    missing = [n for n in names() if not any(n in c.experiments and c.family == get(n).family for c in claims.CLAIMS)]
    assert missing == []


def test_metric_rows_are_capped_and_spread_over_groups():
    rows = [(f"k={k} / m{i}", [1.0] if i == 0 else float(i)) for k in (1, 2, 3) for i in range(10)]
    chosen = report.select_metrics(rows, cap=6)
    assert len(chosen) == 6 and chosen == sorted(chosen, key=rows.index)  # original order kept
    assert [key.split(" / ")[0] for key, _ in chosen].count("k=3") == 2  # every group represented
    assert all(not isinstance(v, list) for _, v in chosen)  # single numbers before lists
    assert report.select_metrics(rows[:5], cap=6) == rows[:5]
