"""The reproduction report: renders results and ``failgeom verify`` rows; runs nothing itself.

The report (``DIR/report.md`` and a self-contained ``DIR/report.html`` with the figures embedded)
answers first: one line saying how many claims of the paper (Shalev-Shwartz, Shamir, Shammah 2017)
reproduce at the paper's scale (the stored paper-scale record, :mod:`failgeom.record`) and in this
run, then one line per paper figure and theorem group with both verdicts in colour, then every
claim with both verdicts (grouped as the paper's, the talk's and beyond the paper; a claim whose
two verdicts differ is flagged). One section per failure family follows, its experiments in paper
order: what each decides, its figure (and the paper-scale figure, captioned with its source, each
image once), its measured scalar metrics, the ``failgeom verify`` rows, and the environment.
``DIR/index.md`` lists the result files. How links are resolved: :func:`repo_href`.

:mod:`failgeom.reproduction` runs the experiments (as cells, see :mod:`failgeom.runner`) and
verify, and passes its plan, the outcome of every experiment, to :func:`write_report`.
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import claims
from .claims.render import disagreements, esc as _esc
from .report_text import (DIFFERS, FIGURE_FILE, MAX_METRIC_ROWS, REPO_ROOT, PaperColumn, badge, flatten_metrics,
                          fmt as _fmt, group_cells, kind_of, measured_text, no_paper_column, nowrap, paper_order,
                          repo_href, round_numbers, select_metrics, source_groups, stored_paper_column,
                          unresolved_links)
from .results import atomic_write_files, environment

if TYPE_CHECKING:  # the runner's records, which the report only reads
    from .reproduction import Plan
    from .runner import JobOutcome

#: the failure families' titles and the claims' verdicts come from the registry (failgeom/claims)
FAMILY_TITLES = claims.FAMILY_TITLES

#: ``failgeom verify`` rows of each family: the checks of the family's claims (failgeom/claims)
VERIFY_PREFIXES = {f: tuple(cid for c in claims.CLAIMS if c.family == f for cid in c.checks) for f in FAMILY_TITLES}

RESULT_FILE = "result.json"

KINDS = (("paper", "The paper"), ("talk", "The talk"), ("beyond", "Beyond the paper"))


def family_of_check(check_id: str) -> int | None:
    """The failure family of a ``failgeom verify`` row, from the claim it decides (None if unknown)."""
    claim = claims.claim_of_check(check_id)
    return claim.family if claim else None


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


def _code(text: str) -> str:
    """``text`` as a Markdown code span (no escapes apply inside one)."""
    return "`" + str(text).replace("`", "'").replace("|", "/").replace("\n", " ") + "`"


def _anchor(family: int) -> str:
    return f"family-{family}"


def _claim_ref(claim) -> str:
    return f"[`{claim.id}`](#claim-{claim.id})"


def _exp_ref(name: str) -> str:
    return f"[`{name}`](#exp-{name})"


def _verdict(rows) -> str:
    if rows is None:
        return "not run"
    if not rows:
        return "no rows"
    n_pass = sum(r.passed for r in rows)
    return f"{n_pass}/{len(rows)} PASS" + ("" if n_pass == len(rows) else f", {len(rows) - n_pass} FAIL")


def _wall(outcome: JobOutcome) -> str:
    if outcome.result is None:
        return "-"
    wall = outcome.result.timing.get("wall_s")
    return round_numbers(f"{wall:.1f}") + "\u00a0s" if isinstance(wall, (int, float)) else "n/a"


def _results(plan: Plan) -> dict:
    return {name: o.result for name, o in plan.outcomes.items() if o.result is not None}


@dataclass
class _Page:
    """What one rendering needs: both verdict columns, the flavour (HTML or Markdown) and the
    figures already shown (each image once, by content)."""

    plan: Plan
    run: dict  # claim id -> Verdict of this run
    paper: dict  # claim id -> Verdict at the paper's scale
    column: PaperColumn
    html: bool
    shown: dict = field(default_factory=dict)  # sha256 of a figure -> experiment it is shown under
    disagree: set = field(default_factory=set)  # ids of the claims decided at both scales, differently

    def differs(self, cid: str) -> bool:
        return cid in self.disagree

    def br(self) -> str:
        return "<br>" if self.html else "; "

    def verdict_cell(self, claim, v) -> str:
        parts = [badge(v.status, self.html)]
        value = measured_text(claim, v)
        if value:
            parts.append(_esc(value))
        if v.reason:
            parts.append(_esc(round_numbers(v.reason)))
        if v.preset:
            parts.append("preset: " + nowrap(v.preset, self.html))
        return self.br().join(parts)


def render_markdown(plan: Plan, verify_rows, verify_error: str, verify_seconds: float, total: float,
                    embed: bool = False, paper: PaperColumn | None = None) -> str:
    """The report as Markdown; ``embed`` makes the HTML flavour (figures as data URIs, verdicts
    in coloured spans). ``paper`` is the paper-scale column (:func:`stored_paper_column` if None)."""
    env = environment()
    column = stored_paper_column() if paper is None else paper
    run = claims.evaluate_all(_results(plan), verify_rows)
    paper_column = {c.id: v for c, v in no_paper_column("the stored record does not name it").verdicts}
    paper_column.update({c.id: v for c, v in column.verdicts})
    page = _Page(plan, {c.id: v for c, v in run}, paper_column, column, embed,
                 disagree={c.id for c, _, _ in disagreements(column.verdicts, run)})
    names = paper_order([e.name for e in plan.experiments])
    spec = {e.name: e for e in plan.experiments}
    by_family: dict[int, list] = {}
    for name in names:
        by_family.setdefault(spec[name].family, []).append(spec[name])
    rows_by_family: dict = {}
    for row in verify_rows or []:
        rows_by_family.setdefault(family_of_check(row.id), []).append(row)

    lines = ['# Reproduction of "Failures of Gradient-Based Deep Learning"', ""]
    lines += _answer(page)
    lines += _run_paragraph(plan, env, verify_rows, verify_error, total)
    lines += _claims_tables(page)
    lines += ["## The failure families", "",
              f"| family | at the paper's scale | this run ({plan.preset}) | experiments | verify |",
              "| --- | --- | --- | --- | --- |"]
    for family in sorted(by_family):
        title = FAMILY_TITLES.get(family, f"Family {family}")
        fam = [c.id for c in claims.CLAIMS if c.family == family]
        tallies = [group_cells([col[cid].status for cid in fam], embed) for col in (page.paper, page.run)]
        exps = ", ".join(_exp_ref(e.name) for e in by_family[family])
        lines.append(f"| [{family}. {_esc(title)}](#{_anchor(family)}) | {tallies[0]} | {tallies[1]} | {exps} "
                     f"| {_verdict(rows_by_family.get(family) if verify_rows is not None else None)} |")
    lines.append("")
    for family in sorted(by_family):
        lines += _family_section(page, family, by_family[family], rows_by_family.get(family), verify_rows is not None)
    other = rows_by_family.get(None)
    if other:
        lines += ["## Other verify rows", "", *_verify_table(other), ""]
    lines += _environment_section(plan, env, verify_seconds, total, column, names)
    return "\n".join(lines) + "\n"


def _answer(page: _Page) -> list[str]:
    """The summary line, the legend and one line per paper figure and theorem group."""
    plan, h = page.plan, page.html
    run_counts = claims.summary_counts([(None, v) for v in page.run.values()])
    paper_counts = claims.summary_counts([(None, v) for v in page.paper.values()])

    def counts(c):  # a status no claim has is plain text, not a coloured badge
        return ", ".join(badge(s, h, f"{c[s]} {s}") if c[s] else f"0 {s}" for s in claims.STATUSES)

    differ = [c for c in claims.CLAIMS if page.differs(c.id)]
    where = _esc(page.column.missing or page.column.source())
    lines = [f"**At the paper's scale** ({where}): {counts(paper_counts)}; "
             f"**this run ({_esc(plan.preset)})**: {counts(run_counts)}; of {len(claims.CLAIMS)} claims.", ""]
    if differ:
        lines += [f"{DIFFERS} The two verdicts differ for {len(differ)} claim{'s' * (len(differ) != 1)}: "
                  + ", ".join(_claim_ref(c) for c in differ) + ".", ""]
    elif not page.column.missing:
        lines += ["The two verdicts agree on every claim tested at both scales.", ""]
    lines += ["Verdicts: " + "; ".join(f"{badge(s, h)} {meaning}" for s, meaning in (
        (claims.REPRODUCED, "the paper's statement holds as stated"),
        (claims.PARTLY, "it holds in part, or as corrected (the reason says which)"),
        (claims.NOT_REPRODUCED, "the measurement contradicts it"),
        (claims.NOT_TESTED, "nothing at that scale decides it"))) + f"; {DIFFERS} the two scales disagree.", ""]
    lines += [f"| the paper | claims | at the paper's scale | this run ({_esc(plan.preset)}) | scales agree |",
              "| --- | --- | --- | --- | --- |"]
    for label, members in source_groups(claims.CLAIMS):
        first = next((f"exp-{n}" for c in members for n in c.experiments if n in plan.outcomes),
                     f"claim-{members[0].id}")
        title = f"[{_esc(label)}](#{first})"
        differ = [c for c in members if page.differs(c.id)]
        agree = f"{DIFFERS} " + ", ".join(f"`{c.id}`" for c in differ) if differ else "yes"
        lines.append(f"| {title} | {', '.join(_claim_ref(c) for c in members)} "
                     f"| {group_cells([page.paper[c.id].status for c in members], h)} "
                     f"| {group_cells([page.run[c.id].status for c in members], h)} | {agree} |")
    return lines + [""]


def _run_paragraph(plan: Plan, env: dict, verify_rows, verify_error: str, total: float) -> list[str]:
    outcomes = plan.outcomes
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("ran", "skipped", "failed")}
    mode = "failgeom verify" + (" --quick" if plan.preset == "quick" else "")
    lines = [f"This run: failgeom {env['failgeom']}, the `{plan.preset}` preset, seed {plan.seed}: "
             f"{len(outcomes)} experiments ({counts['ran']} ran, {counts['skipped']} reused from an earlier "
             f"run, {counts['failed']} failed); `{mode}`: "
             f"{_verdict(verify_rows)}{' (error: ' + _esc(verify_error) + ')' if verify_error else ''}. "
             f"Written {env['date']} in {total:.0f} s. The paper: Shalev-Shwartz, Shamir, Shammah, "
             "*Failures of Gradient-Based Deep Learning*, ICML 2017 (arXiv 1703.07950).", ""]
    if plan.preset == "quick":
        lines += ["The quick preset runs smaller sizes and shorter runs than the paper: it shows the paper's "
                  "qualitative result, not its exact numbers; the paper-scale column reads the stored record "
                  "of `--preset paper`.", ""]
    return lines


def _links(claim) -> str:
    items = [("page", claim.docs), ("claims.md", f"docs/claims.md#{claim.id}"), ("code", claim.code),
             ("test", claim.test)]
    out = []
    for label, rel in items:
        if not rel:
            continue
        href = repo_href(rel)
        out.append(f"[{label}]({href})" if href else f"`{rel}`")
    return " · ".join(out)


def _claims_tables(page: _Page) -> list[str]:
    lines = ["## The claims and their verdicts", "",
             "Each claim once, as the registry `failgeom/claims` holds it, with its verdict at the paper's "
             "scale and in this run: the measured value (3 significant digits), why a claim is only partly "
             f"reproduced or not, and the preset it was measured at. {DIFFERS} marks a claim whose two "
             "verdicts differ.", ""]
    for kind, title in KINDS:
        members = [c for c in claims.CLAIMS if kind_of(c) == kind]
        if not members:
            continue
        lines += [f"### {title} ({len(members)} claims)", "",
                  f"| claim | the statement | at the paper's scale | this run ({_esc(page.plan.preset)}) |",
                  "| --- | --- | --- | --- |"]
        for c in members:
            flag = f" {DIFFERS}" if page.differs(c.id) else ""
            exps = ", ".join(_exp_ref(n) for n in c.experiments if n in page.plan.outcomes)
            cell = page.br().join(x for x in (
                f'<a id="claim-{c.id}"></a>`{c.id}`{flag}', _esc(c.source), exps, _links(c)) if x)
            lines.append(f"| {cell} | {_esc(c.statement)} | {page.verdict_cell(c, page.paper[c.id])} "
                         f"| {page.verdict_cell(c, page.run[c.id])} |")
        lines.append("")
    return lines


def _family_section(page: _Page, family: int, experiments, verify_rows, verify_ran: bool):
    plan = page.plan
    title = FAMILY_TITLES.get(family, f"Family {family}")
    lines = [f'<a id="{_anchor(family)}"></a>', "", f"## {family}. {_esc(title)}", "",
             "| experiment | decides (this run / at the paper's scale) | measured | wall time |",
             "| --- | --- | --- | --- |"]
    for e in experiments:
        o = plan.outcomes[e.name]
        decides = ", ".join(f"{_claim_ref(c)} ({page.run[c.id].status} / {page.paper[c.id].status})"
                            for c in _experiment_claims(e.name)) or "-"
        lines.append(f"| {_exp_ref(e.name)} | {decides} | {_esc(round_numbers(_measured(e, o)))} | {_wall(o)} |")
    lines.append("")
    for e in experiments:
        lines += _experiment_section(page, e)
    lines += [f"### Verify rows for family {family}", ""]
    if not verify_ran:
        lines += ["`failgeom verify` was not run for this report.", ""]
    elif not verify_rows:
        lines += ["No `failgeom verify` row belongs to this family.", ""]
    else:
        lines += [*_verify_table(verify_rows), ""]
    return lines


def _experiment_claims(name: str) -> list:
    return [c for c in claims.CLAIMS if name in c.experiments]


def _measured(experiment, outcome: JobOutcome) -> str:
    if outcome.status == "failed":
        return f"FAILED: {outcome.error}"
    if outcome.result is None:
        return "not run"
    try:
        return experiment.summary(outcome.result)
    except Exception as exc:  # a summary that breaks on an old result should not lose the report
        return f"(summary unavailable: {_error_text(exc)})"


def _figure(page: _Page, name: str, path: Path, caption: str) -> list[str]:
    """An image with a visible caption, or a pointer to where the same image is already shown."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest in page.shown:
        return [f"*{_esc(caption)}: the same image as under {_exp_ref(page.shown[digest])}.*", ""]
    page.shown[digest] = name
    if page.html:
        src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        head, colon, tail = caption.partition(":")  # the source in bold: this run or the paper's scale
        return [f'<figure><img alt="{html.escape(name + ": " + caption)}" src="{src}">'
                f"<figcaption><strong>{html.escape(head + colon)}</strong>{html.escape(tail)}</figcaption></figure>", ""]
    src = path.relative_to(page.plan.out).as_posix() if path.is_relative_to(page.plan.out) else path.resolve().as_uri()
    return [f"![{_esc(name)}: {_esc(caption)}]({src})", "", f"*{_esc(caption)}.*", ""]


def _paper_figures(page: _Page, name: str) -> list[str]:
    """The paper-scale figure of ``name``: the stored record's, else the docs' figure of its claims."""
    record_figure = page.column.figure(name)
    if record_figure is not None:
        caption = f"At the paper's scale: {name}/{FIGURE_FILE} of {page.column.source()}"
        return _figure(page, name, record_figure, caption)
    lines = []
    for rel in dict.fromkeys(c.figure for c in _experiment_claims(name) if c.figure):
        if (REPO_ROOT / rel).is_file():
            lines += _figure(page, name, REPO_ROOT / rel, f"The paper preset: {rel} of the repository "
                                                          "(not from the stored record)")
    return lines


def _experiment_section(page: _Page, e):
    plan, h = page.plan, page.html
    o = plan.outcomes[e.name]
    ref = f" ({_esc(e.paper_ref)})" if e.paper_ref and "Sec." not in e.description else ""
    lines = [f'<a id="exp-{e.name}"></a>', "", f"### {e.name}", "", f"*{_esc(e.description)}*{ref}", ""]
    for c in _experiment_claims(e.name):
        lines += [f"**The paper states** ({_claim_ref(c)}): {_esc(c.statement)} This run: "
                  f"{badge(page.run[c.id].status, h)}; at the paper's scale: {badge(page.paper[c.id].status, h)}.", ""]
    if o.status == "failed":
        return lines + [f"**FAILED:** {_esc(o.error)}", ""]
    lines += [f"**Measured:** {_esc(round_numbers(_measured(e, o)))}", ""]
    figure = plan.out / e.name / FIGURE_FILE
    if figure.is_file():
        lines += _figure(page, e.name, figure, f"This run ({plan.preset} preset, seed {plan.seed}): "
                                               f"{e.name}/{FIGURE_FILE}")
    lines += _paper_figures(page, e.name)
    metrics = flatten_metrics(o.result.metrics if o.result else {})
    if metrics:
        lines += ["| metric | measured |", "| --- | --- |"]
        lines += [f"| {_code(k)} | {_esc(_fmt(v))} |" for k, v in select_metrics(metrics)]
        lines.append("")
        if len(metrics) > MAX_METRIC_ROWS:
            lines += [f"({len(metrics) - MAX_METRIC_ROWS} more scalar metrics in "
                      f"`{e.name}/{RESULT_FILE}`.)", ""]
    where = f"[{e.name}/{RESULT_FILE}]({e.name}/{RESULT_FILE})"
    note = " (reused: complete result of an earlier run with the same config and seed)" if o.status == "skipped" else ""
    lines += [f"Full result: {where}{note}; command: `failgeom run {e.name} --preset {plan.preset}"
              f"{'' if plan.seed == 0 else f' --seed {plan.seed}'}`.", ""]
    return lines


def _verify_table(rows):
    from .verify import result_word

    lines = ["| id | claim | value | criterion | margin | result |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        value = _fmt(r.value)
        if r.interval is not None:
            value += f" [{_fmt(r.interval[0])}, {_fmt(r.interval[1])}]"
        decided = claims.claim_of_check(r.id)
        claim = _claim_ref(decided) if decided else _esc(r.statement)
        lines.append(f"| `{r.id}` | {claim} | {_esc(value)} | {_esc(r.criterion)} "
                     f"| {_esc(round_numbers(getattr(r, 'margin', '')))} | **{result_word(r)}** |")
    return lines


def _environment_section(plan: Plan, env: dict, verify_seconds: float, total: float, column: PaperColumn,
                         names: list[str]):
    lines = ["## Environment", "", "| | |", "| --- | --- |"]
    for key in ("failgeom", "numpy", "python", "blas", "blas_threads", "cpu", "cpu_count", "platform", "date"):
        if key in env:
            lines.append(f"| {key} | {_esc(env[key])} |")
    lines.append(f"| worker processes | {plan.jobs} |")
    if getattr(plan, "executor", ""):
        lines.append(f"| where the cells ran | {_esc(plan.executor)} |")
    lines.append(f"| wall time of this reproduction | {total:.1f} s |")
    lines.append(f"| wall time of failgeom verify | {verify_seconds:.1f} s |")
    lines += ["", "The paper-scale column: " + (_esc(column.missing) if column.missing else
                                               f"{_esc(column.source())}, made on"), ""]
    if not column.missing:
        lines += ["| | |", "| --- | --- |"]
        lines += [f"| {key} | {_esc(column.provenance.get(key, '-'))} |"
                  for key in ("commit", "date", "cpu", "blas", "numpy", "python")]
        lines.append("")
    lines += ["Wall time per experiment (from each result's timing; a reused result keeps the "
              "time and date of the run that made it):", "",
              "| experiment | status | wall time | result date | numpy | BLAS | BLAS threads |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        o = plan.outcomes[name]
        renv = o.result.environment if o.result else {}
        status = {"ran": "ran", "skipped": "reused", "failed": "FAILED"}.get(o.status, o.status)
        lines.append(f"| `{name}` | {status} | {_wall(o)} | {_esc(renv.get('date', '-'))} "
                     f"| {_esc(renv.get('numpy', '-'))} | {_esc(renv.get('blas', '-'))} "
                     f"| {_esc(renv.get('blas_threads', '-'))} |")
    skipped = [n for n in names if plan.outcomes[n].status == "skipped"]
    lines.append("")
    if skipped:
        lines += [f"Reused without running again ({len(skipped)}): "
                  + ", ".join(f"`{n}`" for n in skipped)
                  + ". Delete a folder to run that experiment again.", ""]
    rerun = [(n, plan.outcomes[n].reason) for n in names if plan.outcomes[n].status in ("ran", "failed")
             and plan.outcomes[n].reason and plan.outcomes[n].reason != "no result.json"]
    if rerun:
        lines += ["Run again although a folder existed: "
                  + "; ".join(f"`{n}` ({_esc(reason)})" for n, reason in rerun) + ".", ""]
    return lines


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 80em;
       margin: 2em auto; padding: 0 1.5em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; height: auto; display: block; }
figure { margin: 1em 0; }
figcaption { font-size: 0.9em; color: #444; font-style: italic; margin-top: 0.3em; }
code, .nw { white-space: nowrap; }
code { background: #f5f5f5; padding: 0 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.v { display: inline-block; padding: 0 0.45em; border-radius: 0.3em; font-weight: 600; white-space: nowrap; }
.v.rep { background: #d4edda; color: #155724; }
.v.part { background: #fff3cd; color: #7a5a00; }
.v.fail { background: #f8d7da; color: #8a1c24; }
.v.nt { background: #e2e3e5; color: #383d41; }
"""


def render_html(markdown_text: str, title: str = "failgeom reproduction") -> str:
    """A standalone HTML page from the report's Markdown (Python-Markdown, ``tables`` extension)."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")


def render_index(plan: Plan) -> str:
    """``index.md``: one entry per experiment (paper order) with its result, figure and summary."""
    lines = [f"# failgeom reproduction ({plan.preset} preset)", "",
             "The full report: [report.md](report.md), [report.html](report.html).", ""]
    for name in paper_order([e.name for e in plan.experiments]):
        e, o = next(x for x in plan.experiments if x.name == name), plan.outcomes[name]
        lines += [f"## {e.name}", "", f"{e.description}.", ""]
        if o.status == "failed":
            lines += [f"- FAILED: {o.error}", ""]
            continue
        lines += [f"- result: [{e.name}/{RESULT_FILE}]({e.name}/{RESULT_FILE})",
                  f"- wall time: {_wall(o)}" + (" (reused)" if o.status == "skipped" else ""),
                  f"- summary: {round_numbers(_measured(e, o))}", "",
                  f"![{e.name}]({e.name}/{FIGURE_FILE})", ""]
    return "\n".join(lines)


def write_report(plan: Plan, verify_rows, verify_error: str = "", verify_seconds: float = 0.0,
                 total: float = 0.0, paper: PaperColumn | None = None) -> None:
    """Write ``report.md``, ``report.html``, ``index.md`` (and ``verify.json``) into ``plan.out``;
    ``paper`` is the paper-scale column (default: the stored record, :func:`stored_paper_column`)."""
    paper = stored_paper_column() if paper is None else paper
    text = render_markdown(plan, verify_rows, verify_error, verify_seconds, total, paper=paper)
    embedded = render_markdown(plan, verify_rows, verify_error, verify_seconds, total, embed=True, paper=paper)
    files = {plan.out / "report.md": text, plan.out / "report.html": render_html(embedded),
             plan.out / "index.md": render_index(plan)}
    if verify_rows is not None:
        from . import verify

        files[plan.out / "verify.json"] = verify.to_json(verify_rows) + "\n"
    # one unit: a disk that fills while they are written leaves the previous report whole
    atomic_write_files({path: content.encode("utf-8") for path, content in files.items()})


__all__ = ["FAMILY_TITLES", "PaperColumn", "REPO_ROOT", "VERIFY_PREFIXES", "family_of_check", "flatten_metrics",
           "no_paper_column", "render_html", "render_index", "render_markdown", "repo_href", "select_metrics",
           "stored_paper_column", "unresolved_links", "write_report"]
