"""The registry as Markdown: the report's opening table and the docs page ``docs/claims.md``."""

from __future__ import annotations

import re

from . import CLAIMS, FAMILY_TITLES, NOT_REPRODUCED, NOT_TESTED, PARTLY, REPRODUCED, STATUSES, evaluate_all

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|"})


def esc(text) -> str:
    """Plain text for a Markdown paragraph or table cell (no emphasis, links or cell breaks)."""
    text = str(text).translate(_MD_SPECIAL).replace("\n", " ")
    return re.sub(r"<(?=[A-Za-z/!])", "&lt;", text)  # "<x,v>" is math, not an HTML tag


def summary_counts(verdicts) -> dict[str, int]:
    """``{status: count}`` over ``[(claim, verdict)]``, every status present."""
    counts = dict.fromkeys(STATUSES, 0)
    for _, v in verdicts:
        counts[v.status] += 1
    return counts


def summary_line(verdicts) -> str:
    """``N claims: a reproduced, b partly, c not reproduced, d not tested``."""
    c = summary_counts(verdicts)
    return (f"{len(verdicts)} claims: {c[REPRODUCED]} reproduced, {c[PARTLY]} partly, "
            f"{c[NOT_REPRODUCED]} not reproduced, {c[NOT_TESTED]} not tested")


def counts_text(verdicts) -> str:
    """``a reproduced, b partly, c not reproduced, d not tested``."""
    c = summary_counts(verdicts)
    return (f"{c[REPRODUCED]} reproduced, {c[PARTLY]} partly, {c[NOT_REPRODUCED]} not reproduced, "
            f"{c[NOT_TESTED]} not tested")


def two_scale_line(paper, run, run_label: str) -> str:
    """``at the paper's scale: ...; this run (quick): ...`` over two verdict lists of one registry."""
    return f"at the paper's scale: {counts_text(paper)}; this run ({run_label}): {counts_text(run)}"


def disagreements(paper, run) -> list:
    """``[(claim, paper verdict, run verdict)]`` where both scales decided the claim and differ."""
    by_id = {c.id: v for c, v in run}
    return [(c, v, by_id[c.id]) for c, v in paper
            if c.id in by_id and NOT_TESTED not in (v.status, by_id[c.id].status) and v.status != by_id[c.id].status]


def _verdict_cell(v) -> str:
    text = f"**{v.status}**"
    return text + (f": {esc(v.reason)}" if v.reason else "")


def _links(claim, base: str | None) -> str:
    items = [("docs", f"docs/claims.md#{claim.id}"), ("code", claim.code), ("test", claim.test)]
    if base is None:
        return " ".join(f"`{path}`" for _, path in items if path)
    return " · ".join(f"[{label}]({base}/{path})" for label, path in items if path)


def report_markdown(results, verify_rows, link_base: str | None = None) -> str:
    """The report's opening table: a row per claim of the paper, with its verdict.

    Parameters
    ----------
    results : dict of str to Result
        Experiment results by name (missing experiments make their claims "not tested").
    verify_rows : list of CheckRow or None
        ``failgeom verify`` rows (None: verify was not run).
    link_base : str, optional
        Path from the report's folder to the repository root; links are plain paths without it.

    Returns
    -------
    str
        Markdown: a heading, the counts of each verdict, and the table.
    """
    verdicts = evaluate_all(results, verify_rows)
    lines = ["## The paper's claims and their verdicts", "",
             f"{summary_line(verdicts)}. A verdict reads the experiments' results and the `failgeom verify` "
             "rows named in the registry (`failgeom/claims`); **partly** and **not reproduced** say why, with "
             "the numbers.", "",
             "| claim | verdict | the paper's statement | measured | preset | links |",
             "| --- | --- | --- | --- | --- | --- |"]
    for claim, v in verdicts:
        lines.append(f"| `{claim.id}` ({esc(claim.source)}) | {_verdict_cell(v)} | {esc(claim.statement)} "
                     f"| {esc(v.value) or '-'} | {esc(v.preset) or '-'} | {_links(claim, link_base)} |")
    return "\n".join(lines) + "\n"


def _decided_by(claim) -> str:
    parts = []
    if claim.checks:
        parts.append("verify rows " + ", ".join(f"`{c}`" for c in claim.checks))
    if claim.experiments:
        parts.append("experiments " + ", ".join(f"`{e}`" for e in claim.experiments))
    return "; ".join(parts) or "nothing yet"


def _provenance_text(provenance: dict) -> str:
    if not provenance:
        return "the stored record (no provenance file)"
    return (f"the stored record `records/paper` (commit {str(provenance.get('commit', '?'))[:10]}, "
            f"{provenance.get('date', '?')}, {esc(provenance.get('cpu', '?'))}, BLAS {esc(provenance.get('blas', '?'))})")


def claims_page(results=None, verify_rows=None, command: str = "", paper=None, provenance=None,
                run_label: str = "quick") -> str:
    """``docs/claims.md``: every claim with its source, what decides it and its verdicts at the
    paper's scale (from the stored record) and at the scale of a run (the quick preset).

    Parameters
    ----------
    results, verify_rows
        The run's results and verify rows (as :func:`report_markdown`); verdicts of claims whose
        evidence is absent read "not tested".
    command : str
        The command that produced the run's verdicts, quoted on the page.
    paper : list of (Claim, Verdict), optional
        Verdicts at the paper's scale (:func:`failgeom.record.paper_verdicts`); all "not tested"
        when absent.
    provenance : dict, optional
        The record's provenance (commit, date, CPU, BLAS), quoted on the page.
    run_label : str
        What the run is ("quick").
    """
    verdicts = evaluate_all(results, verify_rows)
    if paper is None:
        paper = [(c, type(v)(NOT_TESTED, reason="no stored paper-scale record")) for c, v in verdicts]
    at_paper = {c.id: v for c, v in paper}
    differ = {c.id for c, _, _ in disagreements(paper, verdicts)}
    rows = {r.id: r for r in verify_rows or []}
    lines = ["# The paper's claims", "",
             "Every claim of *Failures of Gradient-Based Deep Learning* and of the talk it comes from, once, as "
             "the registry `failgeom/claims` holds it: the statement, where it is made, what decides it "
             "(experiments with the metric keys the verdict rule reads, `failgeom verify` rows) and its "
             "verdict at two scales. `failgeom verify` and the report of `failgeom reproduce` read the same "
             "registry. This page is generated by `python docs/make_claims.py` from the stored records.", "",
             f"**Verdicts, {two_scale_line(paper, verdicts, run_label)}.**", "",
             f"- *Paper's scale*: the registry's rules applied to {_provenance_text(provenance or {})}, "
             "`failgeom reproduce --preset paper` with `failgeom verify` at full size.",
             f"- *{run_label.capitalize()}*: " + (f"from `{command}`." if command else "the run at hand."),
             "- Where the two scales decide a claim differently the row is marked **differs**; the claim's "
             "section says why.",
             "- Numbers are bit-identical when the same config and seed run on the same machine and BLAS; on "
             "another CPU or BLAS they move within their stated intervals and the verdicts must not change.", "",
             f"| claim | source | paper's scale | {run_label} | measured at the paper's scale | decided by |",
             "| --- | --- | --- | --- | --- | --- |"]
    for claim, v in verdicts:
        p = at_paper[claim.id]
        flag = " **differs**" if claim.id in differ else ""
        lines.append(f"| [`{claim.id}`](#{claim.id}) {esc(claim.title)} | {esc(claim.source)} | {p.status}{flag} "
                     f"| {v.status} | {esc(p.value) or '-'} | {_decided_by(claim)} |")
    lines.append("")
    for family, title in FAMILY_TITLES.items():
        lines += [f"## {family}. {title}", ""]
        for claim, v in verdicts:
            if claim.family != family:
                continue
            p = at_paper[claim.id]
            lines += [f'<a id="{claim.id}"></a>', "", f"### `{claim.id}`: {esc(claim.title)}", "",
                      f"**{esc(claim.source)}.** {esc(claim.statement)}", ""]
            if claim.corrected:
                lines += [f"*Corrected:* {esc(claim.corrected)}", ""]
            for label, x in (("at the paper's scale", p), (run_label, v)):
                lines.append(f"- **Verdict {label}** ({esc(x.preset) or 'no run'}): **{x.status}**"
                             + (f", {esc(x.value)}" if x.value else "") + (f". {esc(x.reason)}" if x.reason else ""))
            if claim.id in differ:
                lines.append(f"- **The two scales differ**: {p.status} at the paper's scale, {v.status} at "
                             f"{run_label}.")
            for cid in claim.checks:
                row = rows.get(cid)
                text = "not run" if row is None else (
                    f"{'PASS' if row.passed else 'FAIL'}, {esc(row.computed)}" + (f" Margin: {esc(row.margin)}"
                                                                                  if row.margin else ""))
                lines.append(f"- `failgeom verify --only {cid}`{' --quick' if run_label == 'quick' else ''}: {text}")
            if claim.metrics:
                lines.append("- Metric keys read: " + "; ".join(f"`{m}`" for m in claim.metrics))
            where = [f"[{label}]({path.removeprefix('docs/')})" if path.startswith("docs/") else f"`{path}`"
                     for label, path in (("page", claim.docs), ("code", claim.code), ("test", claim.test),
                                         ("paper-preset figure", claim.figure)) if path]
            lines += ["- Where: " + ", ".join(where), ""]
    return "\n".join(lines)


__all__ = ["claims_page", "counts_text", "disagreements", "esc", "report_markdown", "summary_counts", "summary_line",
           "two_scale_line", "CLAIMS"]
