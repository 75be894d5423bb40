"""The reproduction report: renders results and ``failgeom verify`` rows; runs nothing itself.

The report (``DIR/report.md`` and a self-contained ``DIR/report.html`` with the figures embedded)
opens with the verdict on every claim of the paper (Shalev-Shwartz, Shamir, Shammah 2017), then
has one section per failure family: its claims with their verdicts, each experiment's figure
(and the paper-preset figure beside it where one exists), its measured scalar metrics, the
related ``failgeom verify`` rows with PASS/FAIL, and the environment
(versions, BLAS, CPU, date, wall time per experiment). ``DIR/index.md`` lists the result files.

:mod:`failgeom.reproduction` runs the experiments (as cells, see :mod:`failgeom.runner`) and
verify, and passes its plan, the outcome of every experiment, to :func:`write_report`.

The paper's statements, the verdicts and the paper-preset figures all come from the registry
:mod:`failgeom.claims` (its opening table is :func:`failgeom.claims.report_markdown`).
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from . import claims
from .claims.render import esc as _esc
from .results import atomic_write_text, environment

if TYPE_CHECKING:  # the runner's records, which the report only reads
    from .runner import Outcome, Plan

#: the failure families' titles and the claims' verdicts come from the registry (failgeom/claims)
FAMILY_TITLES = claims.FAMILY_TITLES

#: ``failgeom verify`` rows of each family: the checks of the family's claims (failgeom/claims)
VERIFY_PREFIXES = {f: tuple(cid for c in claims.CLAIMS if c.family == f for cid in c.checks) for f in FAMILY_TITLES}

#: at most this many metric rows per experiment in the report (the rest stay in result.json)
MAX_METRIC_ROWS = 16
#: lists of at most this many numbers are shown inline; longer ones (per-replica values) are not
MAX_INLINE_LIST = 4

RESULT_FILE, FIGURE_FILE = "result.json", "figure.png"


def family_of_check(check_id: str) -> int | None:
    """The failure family of a ``failgeom verify`` row, from the claim it decides (None if unknown)."""
    claim = claims.claim_of_check(check_id)
    return claim.family if claim else None



def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


def flatten_metrics(metrics: dict, prefix: str = "") -> list[tuple[str, object]]:
    """``[(key path, value)]`` of the scalar metrics, nested keys joined by " / ".

    Numbers, booleans, short strings and lists of at most :data:`MAX_INLINE_LIST` numbers are
    kept; longer lists (per-replica values, curves) are left to result.json.
    """
    rows = []
    for key, value in (metrics or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten_metrics(value, f"{path} / ")
        elif value is None or isinstance(value, (bool, int, float, str)):
            if not isinstance(value, str) or len(value) <= 80:
                rows.append((path, value))
        elif isinstance(value, (list, tuple)) and 0 < len(value) <= MAX_INLINE_LIST \
                and all(v is None or isinstance(v, (int, float)) for v in value):
            rows.append((path, list(value)))
    return rows


def select_metrics(rows: list[tuple[str, object]], cap: int = MAX_METRIC_ROWS) -> list[tuple[str, object]]:
    """At most ``cap`` of the flattened metrics, spread over the top-level groups (e.g. one per
    k or d) so that each is represented, single numbers before short lists; original order."""
    if len(rows) <= cap:
        return rows
    groups: dict[str, list[int]] = {}
    for i, (key, value) in enumerate(rows):
        groups.setdefault(key.split(" / ", 1)[0], []).append(i)
    queues = [sorted(idx, key=lambda i: isinstance(rows[i][1], list)) for idx in groups.values()]
    chosen: list[int] = []
    while len(chosen) < cap:
        for q in queues:
            if q and len(chosen) < cap:
                chosen.append(q.pop(0))
    return [rows[i] for i in sorted(chosen)]


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _code(text: str) -> str:
    """``text`` as a Markdown code span (no escapes apply inside one)."""
    return "`" + str(text).replace("`", "'").replace("|", "/").replace("\n", " ") + "`"


def _anchor(family: int) -> str:
    return f"family-{family}"


def _figure_src(out: Path, name: str, embed: bool) -> str | None:
    path = out / name / FIGURE_FILE
    if not path.is_file():
        return None
    if not embed:
        return f"{name}/{FIGURE_FILE}"
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _verdict(rows) -> str:
    if rows is None:
        return "not run"
    if not rows:
        return "no rows"
    n_pass = sum(r.passed for r in rows)
    return f"{n_pass}/{len(rows)} PASS" + ("" if n_pass == len(rows) else f", {len(rows) - n_pass} FAIL")


def _wall(outcome: Outcome) -> str:
    if outcome.result is None:
        return "-"
    wall = outcome.result.timing.get("wall_s")
    return f"{wall:.1f} s" if isinstance(wall, (int, float)) else "n/a"


#: the repository root of a source checkout (docs/ and the paper-preset figures live there)
REPO_ROOT = Path(__file__).resolve().parents[1]


def _link_base(out: Path) -> str | None:
    """Path from the report folder to the repository root, if this is a source checkout."""
    if not (REPO_ROOT / "docs" / "claims.md").is_file():
        return None
    return Path(os.path.relpath(REPO_ROOT, Path(out).resolve())).as_posix()


def _results(plan: Plan) -> dict:
    return {name: o.result for name, o in plan.outcomes.items() if o.result is not None}


def render_markdown(plan: Plan, verify_rows, verify_error: str, verify_seconds: float, total: float,
                    embed: bool = False) -> str:
    """The report as Markdown; ``embed`` puts the figures in as data URIs (for the HTML, whose
    links then stay inside the page)."""
    env = environment()
    outcomes = plan.outcomes
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("ran", "skipped", "failed")}
    by_family: dict[int, list] = {}
    for e in plan.experiments:
        by_family.setdefault(e.family, []).append(e)
    rows_by_family: dict = {}
    for row in verify_rows or []:
        rows_by_family.setdefault(family_of_check(row.id), []).append(row)
    verdicts = {c.id: v for c, v in claims.evaluate_all(_results(plan), verify_rows)}

    lines = [
        '# Reproduction of "Failures of Gradient-Based Deep Learning"',
        "",
        f"Shalev-Shwartz, Shamir, Shammah, ICML 2017 (arXiv 1703.07950), reproduced by failgeom "
        f"{env['failgeom']} with the `{plan.preset}` preset and seed {plan.seed}: "
        f"{len(outcomes)} experiments ({counts['ran']} ran, {counts['skipped']} reused from an "
        f"earlier run, {counts['failed']} failed); `failgeom verify`"
        f"{' --quick' if plan.preset == 'quick' else ''}: {_verdict(verify_rows)}"
        f"{' (error: ' + _esc(verify_error) + ')' if verify_error else ''}. "
        f"Written {env['date']} in {total:.0f} s.",
        "",
    ]
    if plan.preset == "quick":
        lines += ["The quick preset runs smaller sizes and shorter runs than the paper: it shows the "
                  "paper's qualitative result, not its exact numbers (`--preset paper` uses the "
                  "paper's hyperparameters); a claim whose verdict depends on the paper's sizes says so.", ""]
    lines += [claims.report_markdown(_results(plan), verify_rows, None if embed else _link_base(plan.out)), ""]
    lines += ["| family | claims (verdicts) | experiments | verify |", "| --- | --- | --- | --- |"]
    for family in sorted(by_family):
        title = FAMILY_TITLES.get(family, f"Family {family}")
        names = ", ".join(f"`{e.name}`" for e in by_family[family])
        fam = [verdicts[c.id].status for c in claims.CLAIMS if c.family == family]
        tally = ", ".join(f"{fam.count(s)} {s}" for s in claims.STATUSES if fam.count(s))
        lines.append(f"| [{family}. {_esc(title)}](#{_anchor(family)}) | {len(fam)} ({tally}) "
                     f"| {names} | {_verdict(rows_by_family.get(family) if verify_rows is not None else None)} |")
    lines.append("")

    for family in sorted(by_family):
        lines += _family_section(plan, family, by_family[family], rows_by_family.get(family),
                                 verify_rows is not None, embed, verdicts)
    other = rows_by_family.get(None)
    if other:
        lines += ["## Other verify rows", "", *_verify_table(other), ""]
    lines += _environment_section(plan, env, verify_seconds, total)
    return "\n".join(lines) + "\n"


def _experiment_claims(name: str) -> list:
    return [c for c in claims.CLAIMS if name in c.experiments]


def _claim_line(claim, verdict) -> str:
    reason = f" {_esc(verdict.reason)}." if verdict.reason else ""
    value = f" Measured: {_esc(verdict.value)}." if verdict.value else ""
    return (f"- `{claim.id}` ({_esc(claim.source)}): {_esc(claim.statement)} **{verdict.status}**"
            f"{' (' + _esc(verdict.preset) + ')' if verdict.preset else ''}.{value}{reason}")


def _family_section(plan: Plan, family: int, experiments, verify_rows, verify_ran: bool, embed: bool,
                    verdicts: dict):
    title = FAMILY_TITLES.get(family, f"Family {family}")
    lines = [f'<a id="{_anchor(family)}"></a>', "", f"## {family}. {_esc(title)}", "", "**The paper's claims.**", ""]
    lines += [_claim_line(c, verdicts[c.id]) for c in claims.CLAIMS if c.family == family]
    lines += ["", "| experiment | decides | measured | wall time |", "| --- | --- | --- | --- |"]
    for e in experiments:
        o = plan.outcomes[e.name]
        decides = ", ".join(f"`{c.id}` ({verdicts[c.id].status})" for c in _experiment_claims(e.name)) or "-"
        lines.append(f"| `{e.name}` | {decides} | {_esc(_measured(e, o))} | {_wall(o)} |")
    lines.append("")
    for e in experiments:
        lines += _experiment_section(plan, e, embed)
    lines += [f"### Verify rows for family {family}", ""]
    if not verify_ran:
        lines += ["`failgeom verify` was not run for this report.", ""]
    elif not verify_rows:
        lines += ["No `failgeom verify` row belongs to this family.", ""]
    else:
        lines += [*_verify_table(verify_rows), ""]
    return lines


def _measured(experiment, outcome: Outcome) -> str:
    if outcome.status == "failed":
        return f"FAILED: {outcome.error}"
    if outcome.result is None:
        return "not run"
    try:
        return experiment.summary(outcome.result)
    except Exception as exc:  # a summary that breaks on an old result should not lose the report
        return f"(summary unavailable: {_error_text(exc)})"


def _paper_figures(plan: Plan, name: str, embed: bool) -> list[str]:
    """Markdown images of the paper-preset figures (docs/figures) of the claims ``name`` decides."""
    if plan.preset == "paper":
        return []
    lines = []
    for rel in dict.fromkeys(c.figure for c in _experiment_claims(name) if c.figure):
        path = REPO_ROOT / rel
        if not path.is_file():
            continue
        src = ("data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii") if embed
               else Path(os.path.relpath(path, Path(plan.out).resolve())).as_posix())
        lines += [f"![{name}: the paper preset, from {rel}]({src})", ""]
    return lines


def _experiment_section(plan: Plan, e, embed: bool):
    o = plan.outcomes[e.name]
    ref = f" ({_esc(e.paper_ref)})" if e.paper_ref else ""
    lines = [f"### {e.name}", "", f"*{_esc(e.description)}*{ref}", ""]
    for c in _experiment_claims(e.name):
        lines += [f"**The paper states** (`{c.id}`): {_esc(c.statement)}", ""]
    if o.status == "failed":
        return lines + [f"**FAILED:** {_esc(o.error)}", ""]
    lines += [f"**Measured:** {_esc(_measured(e, o))}", ""]
    src = _figure_src(plan.out, e.name, embed)
    if src is not None:
        lines += [f"![{e.name}: reproduced figure]({src})", ""]
    lines += _paper_figures(plan, e.name, embed)
    metrics = flatten_metrics(o.result.metrics if o.result else {})
    if metrics:
        lines += ["| metric | measured |", "| --- | --- |"]
        lines += [f"| {_code(k)} | {_esc(_fmt(v))} |" for k, v in select_metrics(metrics)]
        lines.append("")
        if len(metrics) > MAX_METRIC_ROWS:
            lines += [f"({len(metrics) - MAX_METRIC_ROWS} more scalar metrics in "
                      f"`{e.name}/{RESULT_FILE}`.)", ""]
    where = f"`{e.name}/{RESULT_FILE}`" if embed else f"[{e.name}/{RESULT_FILE}]({e.name}/{RESULT_FILE})"
    note = " (reused: complete result of an earlier run with the same config and seed)" if o.status == "skipped" else ""
    lines += [f"Full result: {where}{note}; command: `failgeom run {e.name} --preset {plan.preset}"
              f"{'' if plan.seed == 0 else f' --seed {plan.seed}'}`.", ""]
    return lines


def _verify_table(rows):
    lines = ["| id | claim | value | criterion | margin | result |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        value = _fmt(r.value)
        if r.interval is not None:
            value += f" [{_fmt(r.interval[0])}, {_fmt(r.interval[1])}]"
        decided = claims.claim_of_check(r.id)
        claim = f"`{decided.id}`" if decided else _esc(r.statement)
        lines.append(f"| `{r.id}` | {claim} | {_esc(value)} | {_esc(r.criterion)} | {_esc(getattr(r, 'margin', ''))} "
                     f"| **{'PASS' if r.passed else 'FAIL'}** |")
    return lines


def _environment_section(plan: Plan, env: dict, verify_seconds: float, total: float):
    lines = ["## Environment", "", "| | |", "| --- | --- |"]
    for key in ("failgeom", "numpy", "python", "blas", "blas_threads", "cpu", "cpu_count", "platform", "date"):
        if key in env:
            lines.append(f"| {key} | {_esc(env[key])} |")
    lines.append(f"| worker processes | {plan.jobs} |")
    if getattr(plan, "executor", ""):
        lines.append(f"| where the cells ran | {_esc(plan.executor)} |")
    lines.append(f"| wall time of this reproduction | {total:.1f} s |")
    lines.append(f"| wall time of failgeom verify | {verify_seconds:.1f} s |")
    lines += ["", "Wall time per experiment (from each result's timing; a reused result keeps the "
              "time and date of the run that made it):", "",
              "| experiment | status | wall time | result date | numpy | BLAS | BLAS threads |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in plan.experiments:
        o = plan.outcomes[e.name]
        renv = o.result.environment if o.result else {}
        status = {"ran": "ran", "skipped": "reused", "failed": "FAILED"}.get(o.status, o.status)
        lines.append(f"| `{e.name}` | {status} | {_wall(o)} | {_esc(renv.get('date', '-'))} "
                     f"| {_esc(renv.get('numpy', '-'))} | {_esc(renv.get('blas', '-'))} "
                     f"| {_esc(renv.get('blas_threads', '-'))} |")
    skipped = [n for n, o in plan.outcomes.items() if o.status == "skipped"]
    lines.append("")
    if skipped:
        lines += [f"Reused without running again ({len(skipped)}): "
                  + ", ".join(f"`{n}`" for n in skipped)
                  + ". Delete a folder to run that experiment again.", ""]
    rerun = [(n, o.reason) for n, o in plan.outcomes.items()
             if o.status in ("ran", "failed") and o.reason and o.reason != "no result.json"]
    if rerun:
        lines += ["Run again although a folder existed: "
                  + "; ".join(f"`{n}` ({_esc(reason)})" for n, reason in rerun) + ".", ""]
    return lines


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 72em;
       margin: 2em auto; padding: 0 1.5em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; height: auto; display: block; margin: 0.8em 0; }
code { background: #f5f5f5; padding: 0 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
"""


def render_html(markdown_text: str, title: str = "failgeom reproduction") -> str:
    """A standalone HTML page from the report's Markdown (Python-Markdown, ``tables`` extension)."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")


def render_index(plan: Plan) -> str:
    """``index.md``: one entry per experiment with its result, figure and summary."""
    lines = [f"# failgeom reproduction ({plan.preset} preset)", "",
             "The full report: [report.md](report.md), [report.html](report.html).", ""]
    for e in plan.experiments:
        o = plan.outcomes[e.name]
        lines += [f"## {e.name}", "", f"{e.description}.", ""]
        if o.status == "failed":
            lines += [f"- FAILED: {o.error}", ""]
            continue
        lines += [f"- result: [{e.name}/{RESULT_FILE}]({e.name}/{RESULT_FILE})",
                  f"- wall time: {_wall(o)}" + (" (reused)" if o.status == "skipped" else ""),
                  f"- summary: {_measured(e, o)}", "",
                  f"![{e.name}]({e.name}/{FIGURE_FILE})", ""]
    return "\n".join(lines)


def write_report(plan: Plan, verify_rows, verify_error: str = "", verify_seconds: float = 0.0,
                 total: float = 0.0) -> None:
    """Write ``report.md``, ``report.html``, ``index.md`` (and ``verify.json``) into ``plan.out``."""
    text = render_markdown(plan, verify_rows, verify_error, verify_seconds, total)
    atomic_write_text(plan.out / "report.md", text)
    embedded = render_markdown(plan, verify_rows, verify_error, verify_seconds, total, embed=True)
    atomic_write_text(plan.out / "report.html", render_html(embedded))
    atomic_write_text(plan.out / "index.md", render_index(plan))
    if verify_rows is not None:
        from . import verify

        atomic_write_text(plan.out / "verify.json", verify.to_json(verify_rows) + "\n")


__all__ = ["FAMILY_TITLES", "VERIFY_PREFIXES", "family_of_check",
           "flatten_metrics", "make_plan", "select_metrics", "render_html", "render_markdown", "reproduce", "reusable",
           "write_report"]
