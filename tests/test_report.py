"""``failgeom reproduce``'s report: it answers first (both verdict columns, one line per paper
figure and theorem group, in colour), groups the claims, rounds what it measured, orders the
experiments as the paper does, captions every figure once, and every link of report.html
resolves, also after the output folder moves; the rest: skipping complete results on a rerun,
re-running on a changed config, and ``--jobs 2`` giving the numbers of ``--jobs 1``."""

import base64
import json
import re
import shutil
import sys
import types
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest

import failgeom
from failgeom import claims, report, report_text, reproduction, runner
from failgeom.claims.render import esc
from failgeom.cli import main
from failgeom.experiments import get, names
from failgeom.results import Result
from failgeom.runner import JobOutcome
from failgeom.verify import AS_CORRECTED, CHECKS, CheckRow

NAMES = ["parity", "flat-forward-only"]
PROVENANCE = {"commit": "abc1234def5678", "date": "2026-12-01T10:00:00+00:00", "cpu": "test CPU",
              "blas": "test BLAS", "numpy": "2.x", "python": "3.x"}
GROUPS = ["Figure 1", "Figure 2", "Figure 3", "Figure 4", "Figure 5", "Figure 6", "Figure 7", "Theorem 1",
          "Theorem 2", "Theorem 3", "Lemmas 1, 2, 3", "Appendix A.5, A.6, A.7",
          "Other statements (Sec. 3.3, 4.1.3, 5.1)", "The talk", "Beyond the paper"]


def tiny_configs(**parity_changes):
    """Configs small enough that both experiments run in about a second."""
    return {
        "parity": get("parity").config("quick", **{**dict(dims=(3,), steps=40, eval_every=20, replicas=2),
                                                   **parity_changes}),
        "flat-forward-only": get("flat-forward-only").config(
            "quick", steps=40, eval_every=20, eval_size=100, test_size=400, replicas=2),
    }


def row(check_id, passed):
    return CheckRow(id=check_id, statement=f"claim {check_id}", computed="c", value=0.5,
                    interval=(0.25, 0.75), passed=passed, seconds=0.0, criterion="crit", preset="quick")


def fake_rows(quick):
    """Verify rows of families 1 and 4 (one FAIL, one of a corrected claim) and one that decides
    no registered claim."""
    return [row("thm1.variance-bound", True), row("a7.forward-only", False), row("a7.small-c", True),
            row("zz.unmapped", True)]


def install_record(mp, stored):
    """A stand-in for failgeom.record: ``load`` gives ``stored``, ``paper_verdicts`` applies the
    registry's rules to the record's results and rows."""
    module = types.ModuleType("failgeom.record")
    module.load = lambda path=None: stored
    module.paper_verdicts = lambda rec: claims.evaluate_all(rec.results, rec.verify_rows)
    mp.setitem(sys.modules, "failgeom.record", module)
    mp.setattr(failgeom, "record", module, raising=False)


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


def sections(text, level=2):
    """``{heading: body}`` of the sections of a Markdown report at ``level``."""
    parts = re.split(rf"^{'#' * level} ", text, flags=re.M)[1:]
    return {p.split("\n", 1)[0]: p for p in parts}


class Page(HTMLParser):
    """The ids, links and images of an HTML page."""

    def __init__(self, path):
        super().__init__()
        self.path, self.ids, self.hrefs = Path(path), set(), []
        self.feed(self.path.read_text())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A stand-in paper-scale record: parity at 60 steps (its own figure), verify rows passing."""
    folder = tmp_path_factory.mktemp("record")
    with pytest.MonkeyPatch.context() as mp:
        install_record(mp, None)
        assert reproduce(folder, tiny_configs(steps=60), verify=False, only=["parity"]) == 0
    return types.SimpleNamespace(provenance=PROVENANCE, results={"parity": Result.load(folder / "parity")},
                                 verify_rows=[row("thm1.variance-bound", True), row("a7.forward-only", True)],
                                 path=folder)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, stored):
    out = tmp_path_factory.mktemp("reproduce")
    with pytest.MonkeyPatch.context() as mp:
        install_record(mp, stored)
        assert reproduce(out) == 0
    return out


def plan_of(out, experiment_names, status="skipped"):
    """The plan of a finished reproduction, read back from its folder (for rendering again)."""
    outcomes = {n: JobOutcome(n, status, Result.load(out / n) if (out / n / "result.json").is_file() else None)
                for n in experiment_names}
    return reproduction.Plan("quick", Path(out), 0, 1, [get(n) for n in experiment_names], {}, outcomes)


def test_the_report_answers_first_with_both_columns(first_run, stored):
    text = (first_run / "report.md").read_text()
    top = text.split("## The claims and their verdicts")[0]
    run = claims.summary_counts(claims.evaluate_all({n: Result.load(first_run / n) for n in NAMES},
                                                    fake_rows(True)))
    paper = claims.summary_counts(claims.evaluate_all(stored.results, stored.verify_rows))
    summary = top.splitlines()[2]
    head, tail = summary.split("**this run (quick)**")
    assert head.startswith("**At the paper's scale**") and "commit abc1234def56, 2026-12-01" in head
    for part, counts in ((head, paper), (tail, run)):
        assert ", ".join(f"**{counts[s]} {s}**" if counts[s] else f"0 {s}" for s in claims.STATUSES) in part
    # one line per paper figure and theorem group, in paper order, each with both verdicts
    table = [line for line in top.splitlines() if line.startswith("| ") and not line.startswith(("| the paper", "| ---"))]
    labels = [re.sub(r"\[(.*)\]\(#(exp|claim)-[^)]*\)", r"\1", line.split(" | ")[0][2:]) for line in table]
    assert labels == GROUPS
    assert all(line.count("**") >= 4 for line in table)
    assert table[0].startswith("| [Figure 1](#exp-parity) | [`fig1.parity`](#claim-fig1.parity) |")


def test_html_colours_the_verdicts_and_has_a_legend(first_run):
    page = (first_run / "report.html").read_text()
    top = page.split("The claims and their verdicts")[0]
    for status, css in report_text.STATUS_CLASS.items():
        assert f'<span class="v {css}">{status}</span>' in top  # the legend
        assert f".v.{css} {{" in page  # and its colour
    assert "white-space: nowrap" in page and ".nw" in page and "code" in page.split(".nw")[0].rsplit("}", 1)[-1]
    # "verify --quick" (a preset) never breaks at its hyphens: it is always inside code or a nowrap span
    assert page.count("--quick") >= 2
    assert "--quick" not in re.sub(r'<span class="nw">[^<]*</span>|<code>[^<]*</code>', "", page)


def test_disagreements_are_flagged_where_both_scales_decide(first_run):
    plan = plan_of(first_run, NAMES)
    run = dict(claims.evaluate_all(report._results(plan), fake_rows(True)))
    tested = [c.id for c, v in run.items() if v.status != claims.NOT_TESTED]
    kept, flipped = tested[0], set(tested[1:])
    assert flipped and run[claims.get("fig7.smooth")].status == claims.NOT_TESTED

    def other(v):
        return claims.Verdict(claims.PARTLY if v.status == claims.REPRODUCED else claims.REPRODUCED)

    verdicts = [(c, other(v) if c.id in flipped else v) for c, v in run.items()]
    verdicts = [(c, claims.Verdict(claims.NOT_REPRODUCED)) if c.id == "fig7.smooth" else (c, v) for c, v in verdicts]
    text = report.render_markdown(plan, fake_rows(True), "", 0.0, 0.0,
                                  paper=report.PaperColumn(verdicts, PROVENANCE, None))
    flagged = set(re.findall(r'<a id="claim-([^"]+)"></a>`[^`]+` ≠', text))
    assert flagged == flipped and kept not in flagged  # fig7.smooth is not tested here: nothing to disagree with
    assert f"The two verdicts differ for {len(flipped)} claim" in text


def test_claims_are_grouped_as_paper_talk_beyond_each_once(first_run):
    text = (first_run / "report.md").read_text()
    tables = sections(text.split("## The claims and their verdicts")[1].split("\n## ")[0], level=3)
    kinds = {"paper": "The paper", "talk": "The talk", "beyond": "Beyond the paper"}
    assert list(tables) == [f"{title} ({sum(report_text.kind_of(c) == k for c in claims.CLAIMS)} claims)"
                            for k, title in kinds.items()]
    for c in claims.CLAIMS:
        assert text.count(f'<a id="claim-{c.id}"></a>') == 1
        title = next(t for t in tables if t.startswith(kinds[report_text.kind_of(c)]))
        assert f'<a id="claim-{c.id}"></a>' in tables[title] and esc(c.statement) in tables[title]
    assert [c.id for c in claims.CLAIMS if report_text.kind_of(c) == "talk"] == [
        "talk.landscape-critical", "talk.landscape-flat", "talk.landscape-search"]


def test_measured_values_are_rounded_and_bare_values_say_what_they_are():
    assert report_text.round_numbers("4.790093944798996; 0.7782 [0.51, 0.6]; k=10: 1.001; 1234.56") == \
        "4.79; 0.778 [0.51, 0.6]; k=10: 1.00; 1235"
    assert report_text.round_numbers("a5.lower-bound, sec3.3, Sec. 4.1.2, 7.19e-15, 1.23456e-05, 20,000") == \
        "a5.lower-bound, sec3.3, Sec. 4.1.2, 7.19e-15, 1.23e-05, 20,000"
    bare = claims.Verdict(claims.REPRODUCED, "0.7782")
    assert report_text.measured_text(claims.get("thm1.bound"), bare) == \
        "0.778 (criterion of thm1.variance-bound: Var/bound <= 1 (+1e-12 rounding) in every case)"
    worded = claims.Verdict(claims.REPRODUCED, "log2 (Var / G^2) per unit d: -0.9791 [-0.985, -0.973]")
    assert report_text.measured_text(claims.get("thm1.parities"), worded) == \
        "log2 (Var / G^2) per unit d: -0.979 [-0.985, -0.973]"


def test_no_long_number_outside_the_environment(first_run):
    text = (first_run / "report.md").read_text().split("## Environment")[0].replace("arXiv 1703.07950", "")
    numbers = re.findall(r"(?<![\w.])-?\d+\.\d+(?:e[+-]?\d+)?(?![\w.])", text)
    assert len(numbers) > 20
    assert [x for x in numbers if len(x.split("e")[0].lstrip("-").replace(".", "").lstrip("0")) > 3] == []


def test_experiments_in_paper_order():
    order = report_text.paper_order(names())
    first = [min(i for i, c in enumerate(claims.CLAIMS) if n in c.experiments) for n in order]
    assert first == sorted(first) and sorted(order) == sorted(names())
    for a, b in [("parity", "parity-variance"), ("linear-periodic-variance", "linear-periodic-landscape"),
                 ("tuple-lines", "stocks"), ("flat-smooth", "flat-e2e"), ("flat-e2e", "flat-multiclass"),
                 ("flat-forward-only-convergence", "sparse-parity")]:
        assert order.index(a) < order.index(b), (a, b)
    assert report_text.paper_order(["toy", "stocks", "parity", "other"]) == ["parity", "stocks", "toy", "other"]


def test_report_has_each_family_figure_metrics_and_verify_rows(first_run):
    text = (first_run / "report.md").read_text()
    secs = sections(text)
    fam1 = secs["1. Non-informative gradients"]
    fam4 = secs["4. Flat activations"]
    # the registry's claims with both verdicts, each experiment's statement, figure and metric, in its family
    assert esc(claims.get("fig1.parity").statement) in fam1 and esc(claims.get("fig7.forward-only").statement) in fam4
    assert "![parity: This run (quick preset, seed 0): parity/figure.png](parity/figure.png)" in fam1
    assert "![flat-forward-only: This run (quick preset, seed 0): flat-forward-only/figure.png]" in fam4
    result = json.loads((first_run / "parity" / "result.json").read_text())
    mean = result["metrics"]["d=3"]["final_accuracy_mean"]
    assert f"| `d=3 / final_accuracy_mean` | {report_text.fmt(mean)} |" in fam1
    # verify rows land in the family of their claim, with PASS/FAIL; unknown ids kept apart
    rows1 = fam1.split("Verify rows")[1]
    assert "`thm1.variance-bound`" in rows1 and "**PASS**" in rows1 and "a7.forward-only`" not in rows1
    assert "`a7.forward-only`" in fam4 and "**FAIL**" in fam4
    assert "`zz.unmapped`" in secs["Other verify rows"]
    assert "2. Decomposition" not in secs  # only the families of the selected experiments
    env = secs["Environment"]
    for key in ("| numpy |", "| blas |", "| cpu |", "| date |", "| `parity` | ran |", "| commit | abc1234def5678 |"):
        assert key in env
    index = (first_run / "index.md").read_text()
    assert "parity/result.json" in index and "flat-forward-only/figure.png" in index


def test_a_corrected_check_passes_as_corrected_in_the_report(first_run):
    fam4 = sections((first_run / "report.md").read_text())["4. Flat activations"]
    assert re.search(rf"\| `a7.small-c` \| .* \| \*\*{re.escape(AS_CORRECTED)}\*\* \|", fam4)


def test_html_is_self_contained_and_every_figure_captioned_once(first_run):
    page = (first_run / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    assert "<script" not in page and "<link" not in page
    figures = re.findall(r'<figure><img alt="[^"]*" src="([^"]*)"><figcaption><strong>([^<]*)</strong>([^<]*)'
                         r'</figcaption></figure>', page)
    figures = [(src, head + tail) for src, head, tail in figures]
    assert len(figures) == page.count("<img ") == len(set(src for src, _ in figures))  # each image once
    prefix = "data:image/png;base64,"
    assert all(src.startswith(prefix) for src, _ in figures)
    images = {caption: base64.b64decode(src[len(prefix):]) for src, caption in figures}
    for name in NAMES:
        assert images[f"This run (quick preset, seed 0): {name}/figure.png"] == (first_run / name / "figure.png").read_bytes()
    paper = [c for c in images if c.startswith("At the paper&#x27;s scale") or c.startswith("At the paper's scale")]
    assert len(paper) == 1 and "parity/figure.png of the stored record" in paper[0]
    assert "commit abc1234def56, 2026-12-01" in paper[0]


def test_a_composite_paper_figure_appears_once(tmp_path):
    pwl = ["pwl-fc", "pwl-conv", "pwl-conv-precond", "pwl-autoencoder"]
    plan = plan_of(tmp_path, pwl, status="ran")
    text = report.render_markdown(plan, None, "", 0.0, 0.0, embed=True, paper=report.no_paper_column("none"))
    assert text.count("<img ") == 1
    assert "<figcaption><strong>The paper preset:</strong> docs/figures/pwl-figure6-paper.png of the repository" in text
    assert text.count("the same image as under [`pwl-fc`](#exp-pwl-fc)") == 3


def test_every_link_of_report_html_resolves_also_after_moving_the_folder(first_run, tmp_path):
    page = Page(first_run / "report.html")
    assert report.unresolved_links(first_run / "report.html") == []
    for name in NAMES:  # each experiment's own section, linked from the tables
        assert f"exp-{name}" in page.ids and f"#exp-{name}" in page.hrefs
    assert {f"claim-{c.id}" for c in claims.CLAIMS} <= page.ids
    kinds = {urlparse(h).scheme or ("anchor" if h.startswith("#") else "relative") for h in page.hrefs}
    assert kinds == {"anchor", "relative", "file"}  # docs/code/tests of this checkout are file:// links
    moved = shutil.copytree(first_run, tmp_path / "elsewhere" / "out")
    assert report.unresolved_links(moved / "report.html") == []


def test_the_link_check_finds_a_broken_link(tmp_path):
    (tmp_path / "here.json").write_text("{}")
    page = tmp_path / "page.html"
    page.write_text(f'<p id="a"></p><a href="#a"></a><a href="#b"></a><a href="here.json"></a>'
                    f'<a href="gone.json"></a><a href="{(tmp_path / "here.json").as_uri()}"></a>'
                    f'<a href="{(tmp_path / "gone.json").as_uri()}"></a><a href="https://example.org/"></a>')
    assert report.unresolved_links(page) == ["#b", "gone.json", (tmp_path / "gone.json").as_uri(),
                                             "https://example.org/"]


def test_paths_the_report_cannot_resolve_are_plain_text(monkeypatch, tmp_path):
    assert report.repo_href("docs/claims.md#fig1.parity") == (report.REPO_ROOT / "docs/claims.md").as_uri() + "#fig1.parity"
    monkeypatch.setattr(report_text, "REPO_ROOT", tmp_path)  # a package installed without its docs
    assert report.repo_href("docs/claims.md") is None
    links = report._links(claims.get("fig1.parity"))
    assert "](" not in links and "`docs/parity.md`" in links


def test_the_paper_column_comes_from_the_stored_record(monkeypatch, stored):
    asked = []
    install_record(monkeypatch, stored)
    sys.modules["failgeom.record"].load = lambda path=None: asked.append(path) or stored
    column = report.stored_paper_column("somewhere")
    assert asked == ["somewhere"] and column.provenance == PROVENANCE and column.path == stored.path
    assert [c.id for c, _ in column.verdicts] == [c.id for c in claims.CLAIMS]
    install_record(monkeypatch, None)
    column = report.stored_paper_column()
    assert column.missing.startswith("no stored paper-scale record") and column.path is None
    assert {v.status for _, v in column.verdicts} == {claims.NOT_TESTED}

    def damaged(path=None):
        raise ValueError("records/paper/parity/result.json: checksum mismatch")

    sys.modules["failgeom.record"].load = damaged
    assert report.stored_paper_column().missing == \
        "the stored paper-scale record could not be read: records/paper/parity/result.json: checksum mismatch"


def test_rerun_skips_complete_results_and_reruns_changed_config(first_run, capsys, monkeypatch, stored):
    install_record(monkeypatch, stored)
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
    missing = [n for n in names() if not any(n in c.experiments and c.family == get(n).family for c in claims.CLAIMS)]
    assert missing == []


def test_metric_rows_are_capped_and_spread_over_groups():
    rows = [(f"k={k} / m{i}", [1.0] if i == 0 else float(i)) for k in (1, 2, 3) for i in range(10)]
    chosen = report.select_metrics(rows, cap=6)
    assert len(chosen) == 6 and chosen == sorted(chosen, key=rows.index)  # original order kept
    assert [key.split(" / ")[0] for key, _ in chosen].count("k=3") == 2  # every group represented
    assert all(not isinstance(v, list) for _, v in chosen)  # single numbers before lists
    assert report.select_metrics(rows[:5], cap=6) == rows[:5]
