"""The reproduction report: renders results and ``failgeom verify`` rows; runs nothing itself.

The report (``DIR/report.md`` and a self-contained ``DIR/report.html`` with the figures embedded)
has one section per failure family of the paper (Shalev-Shwartz, Shamir, Shammah 2017): the
paper's claim in one sentence, each experiment's figure, its measured scalar metrics next to
what the paper states, PASS/FAIL of the related ``failgeom verify`` rows, and the environment
(versions, BLAS, CPU, date, wall time per experiment). ``DIR/index.md`` lists the result files.
:mod:`failgeom.runner` runs the experiments and verify and passes its plan (the outcome of
every experiment) to :func:`write_report`.

The paper's statements live in :data:`FAMILY_CLAIMS` and :data:`PAPER_STATEMENTS` (taken from
the reference notes of each section); an experiment without an entry shows its description.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .results import atomic_write_text, environment

if TYPE_CHECKING:  # the runner's records, which the report only reads
    from .runner import Outcome, Plan

FAMILY_TITLES = {
    1: "Non-informative gradients",
    2: "Decomposition vs end-to-end",
    3: "Architecture and conditioning",
    4: "Flat activations",
}

#: The paper's claim for each failure family, one sentence each (paper Secs. 2-5).
FAMILY_CLAIMS = {
    1: "For a large class of orthogonal targets, such as parities and linear-periodic functions, "
       "the gradient barely depends on the target (Theorem 1: its variance over the class is at most "
       "G(w)^2/|H|), so gradient-based methods cannot find it (Sec. 2).",
    2: "When a problem is a composition of simpler ones, end-to-end training can fail where training "
       "with the intermediate labels of the decomposition succeeds, because the signal-to-noise ratio "
       "of the end-to-end gradient collapses as the number of parts k grows (Sec. 3).",
    3: "Even a convex, realizable regression is slow when the architecture makes it ill-conditioned: "
       "for piecewise-linear curves a fully connected layer faces a condition number of at least "
       "n^3.5, a convolution about n^3, and a convolution with explicit conditioning about 1 (Sec. 4).",
    4: "With a flat, piecewise-constant activation the gradient vanishes almost everywhere, so smooth "
       "approximations and end-to-end networks are slow or imprecise while the forward-only "
       "(Isotron/GLMtron) update learns accurately and cheaply (Sec. 5).",
}

#: What the paper states for each experiment, one sentence each (paper-notes.md, by section).
PAPER_STATEMENTS = {
    # Sec. 2
    "parity": "With a width-10d ReLU network, the hinge loss and SGD, random parities are learned "
              "for d = 5 and 10, while for d = 30 the accuracy stays at chance (0.5) for all 50,000 "
              "iterations (Sec. 2.1, Fig. 1).",
    "parity-variance": "Over all 2^d parities the variance of the gradient is at most G(w)^2/2^d "
                       "(Theorem 1), so it decays exponentially with d.",
    "linear-periodic-landscape": "F(w) = E(cos(w^T x) - cos([2,2]^T x))^2 has no local minima or "
                                 "saddle points but is extremely flat away from the optimum, so "
                                 "gradient methods, especially stochastic ones, fail (talk, Sec. 2).",
    "linear-periodic-variance": "For targets psi(v^T x) with ||v|| = r and psi periodic, the "
                                "gradient variance is O(exp(-Omega(d)) + exp(-Omega(r))) "
                                "(Theorem 2).",
    # Sec. 3
    "tuple-lines": "Decomposition reaches high accuracy quickly for every k = 1..4, while end-to-end "
                   "training works only for small k and stays at chance for k >= 3 (Sec. 3.1, Fig. 3).",
    "tuple-lines-snr": "At random initialisation the end-to-end gradient's SNR falls fast with k and "
                       "is below float32 precision for k >= 3, while the decomposition SNR does not "
                       "depend on k (Sec. 3.1, Fig. 5).",
    "stocks": "Near initialisation the end-to-end estimator's second moment is about k times the "
              "decomposition estimator's, so end-to-end training is much slower and for large k "
              "does not close the gap in reasonable time (Secs. 3.2-3.3, Fig. 4).",
    # Sec. 4
    "pwl-fc": "One fully connected n x n layer learns slowly and is inaccurate at the kinks, as "
              "cond(W^T W) is Omega(n^3.5) (Sec. 4.1.1, Theorem 3, Fig. 6).",
    "pwl-conv": "A 3-tap convolution does better but is still slow, as the condition number of its "
                "window covariance C is Theta(n^3) (Sec. 4.1.2, Appendix A.6, Fig. 6).",
    "pwl-conv-precond": "Conditioning the convolution with C^(-1/2) brings the condition number to "
                        "about 1, so SGD finds the filter in order log(1/eps) iterations, "
                        "independent of n (Sec. 4.1.3, Fig. 6).",
    "pwl-autoencoder": "A deeper network, an autoencoder with a 2k-dimensional code, fails to capture "
                       "the kinks (Sec. 4.1.4, Fig. 6).",
    "pwl-scaling": "The iterations gradient descent needs grow with the condition number (Theorem 3, "
                   "Appendix A.5): about n^3 for the convolution, independent of n once conditioned.",
    # Sec. 5
    "flat-smooth": "Replacing the step function by a sum of sigmoids makes learning possible but "
                   "slow, sometimes failing, and sensitive to the bias initialisation "
                   "(Sec. 5.2, Fig. 7).",
    "flat-e2e": "An end-to-end ReLU network regressing the target is reasonable but imprecise at the "
                "discontinuities (Sec. 5.3, Fig. 7).",
    "flat-multiclass": "A softmax classifier over the steps gives blurry class boundaries and a "
                       "higher sample complexity (Sec. 5.4, Fig. 7).",
    "flat-forward-only": "The forward-only update, which backpropagates through u as if it were the "
                         "identity (Isotron/GLMtron), gives the best accuracy and is the cheapest at "
                         "train and test time (Sec. 5.5, Fig. 7).",
    "flat-forward-only-convergence": "For an L-Lipschitz non-decreasing u, T = c^4 B^4 L^2/eps^2 "
                                     "forward-only steps with eta = sqrt(1/(T c^2)) give expected "
                                     "squared error at most eps (Appendix A.7).",
}

#: ``failgeom verify`` rows belong to a family by the prefix of their id (failgeom/verify.py).
VERIFY_PREFIXES = {
    1: ("thm1.", "lemma3.", "thm2."),
    2: ("sec3.",),
    3: ("lemma1.", "lemma2.", "thm3.", "a5.", "a6."),
    4: ("a7.",),
}

#: at most this many metric rows per experiment in the report (the rest stay in result.json)
MAX_METRIC_ROWS = 16
#: lists of at most this many numbers are shown inline; longer ones (per-replica values) are not
MAX_INLINE_LIST = 4

RESULT_FILE, FIGURE_FILE = "result.json", "figure.png"


def family_of_check(check_id: str) -> int | None:
    """The failure family of a ``failgeom verify`` row, from its id prefix (None if unknown)."""
    for family, prefixes in VERIFY_PREFIXES.items():
        if check_id.startswith(prefixes):
            return family
    return None


# --------------------------------------------------------------------------------------------
# the report


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


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|"})


def _esc(text: str) -> str:
    """Plain text for a Markdown paragraph or table cell (no emphasis, links or cell breaks)."""
    text = str(text).translate(_MD_SPECIAL).replace("\n", " ")
    return re.sub(r"<(?=[A-Za-z/!])", "&lt;", text)  # "<x,v>" is math, not an HTML tag


def _code(text: str) -> str:
    """``text`` as a Markdown code span (no escapes apply inside one)."""
    return "`" + str(text).replace("`", "'").replace("|", "/").replace("\n", " ") + "`"


def _anchor(family: int) -> str:
    return f"family-{family}"


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


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


def render_markdown(plan: Plan, verify_rows, verify_error: str, verify_seconds: float, total: float,
                    embed: bool = False) -> str:
    """The report as Markdown; ``embed`` puts the figures in as data URIs (for the HTML)."""
    env = environment()
    outcomes = plan.outcomes
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("ran", "skipped", "failed")}
    by_family: dict[int, list] = {}
    for e in plan.experiments:
        by_family.setdefault(e.family, []).append(e)
    rows_by_family: dict = {}
    for row in verify_rows or []:
        rows_by_family.setdefault(family_of_check(row.id), []).append(row)

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
                  "paper's hyperparameters).", ""]
    lines += ["| family | the paper's claim | experiments | verify |", "| --- | --- | --- | --- |"]
    for family in sorted(by_family):
        title = FAMILY_TITLES.get(family, f"Family {family}")
        names = ", ".join(f"`{e.name}`" for e in by_family[family])
        lines.append(f"| [{family}. {_esc(title)}](#{_anchor(family)}) | {_esc(FAMILY_CLAIMS.get(family, ''))} "
                     f"| {names} | {_verdict(rows_by_family.get(family) if verify_rows is not None else None)} |")
    lines.append("")

    for family in sorted(by_family):
        lines += _family_section(plan, family, by_family[family], rows_by_family.get(family),
                                 verify_rows is not None, embed)
    other = rows_by_family.get(None)
    if other:
        lines += ["## Other verify rows", "", *_verify_table(other), ""]
    lines += _environment_section(plan, env, verify_seconds, total)
    return "\n".join(lines) + "\n"


def _family_section(plan: Plan, family: int, experiments, verify_rows, verify_ran: bool, embed: bool):
    title = FAMILY_TITLES.get(family, f"Family {family}")
    lines = [f'<a id="{_anchor(family)}"></a>', "", f"## {family}. {_esc(title)}", ""]
    if family in FAMILY_CLAIMS:
        lines += [f"**The paper's claim.** {_esc(FAMILY_CLAIMS[family])}", ""]
    lines += ["| experiment | the paper states | measured | wall time |", "| --- | --- | --- | --- |"]
    for e in experiments:
        o = plan.outcomes[e.name]
        lines.append(f"| `{e.name}` | {_esc(PAPER_STATEMENTS.get(e.name, e.description))} "
                     f"| {_esc(_measured(e, o))} | {_wall(o)} |")
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


def _experiment_section(plan: Plan, e, embed: bool):
    o = plan.outcomes[e.name]
    ref = f" ({_esc(e.paper_ref)})" if e.paper_ref else ""
    lines = [f"### {e.name}", "", f"*{_esc(e.description)}*{ref}", ""]
    lines += [f"**The paper states:** {_esc(PAPER_STATEMENTS.get(e.name, e.description))}", ""]
    if o.status == "failed":
        return lines + [f"**FAILED:** {_esc(o.error)}", ""]
    lines += [f"**Measured:** {_esc(_measured(e, o))}", ""]
    src = _figure_src(plan.out, e.name, embed)
    if src is not None:
        lines += [f"![{e.name}: reproduced figure]({src})", ""]
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
    lines = ["| id | claim (paper) | value | criterion | result |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        value = _fmt(r.value)
        if r.interval is not None:
            value += f" [{_fmt(r.interval[0])}, {_fmt(r.interval[1])}]"
        lines.append(f"| `{r.id}` | {_esc(r.statement)} | {_esc(value)} | {_esc(r.criterion)} "
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


__all__ = ["FAMILY_CLAIMS", "FAMILY_TITLES", "PAPER_STATEMENTS", "VERIFY_PREFIXES", "family_of_check",
           "flatten_metrics", "select_metrics", "render_html", "render_markdown", "write_report"]
