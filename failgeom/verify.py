"""``failgeom verify``: run the checks of :mod:`failgeom.checks` in paper order, one row each.

Each row names the claim it decides (from :mod:`failgeom.claims`), the measured value with its
interval and PASS/FAIL; rows are printed as they finish. A check of a claim the paper misprints
(the claim's ``corrected``) passes as "PASS (as corrected)", the words the claim's verdict uses
("partly: holds as corrected"). The default table fits 100 columns (id, claim, value, result);
``--verbose`` adds what was computed, the criterion, the margin and the correction; ``--json``
prints one JSON document instead. Exit status 1 if a check fails, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from . import claims
from .checks import Check, Outcome, all_checks

WIDTHS = {"id": 22, "claim": 33, "value": 23, "result": 19}

#: the result of a passing check of a claim the paper misprints (the claim says what was checked)
AS_CORRECTED = "PASS (as corrected)"


@dataclass
class CheckRow:
    """One check's outcome, with the claim it decides.

    Attributes
    ----------
    id : str
        The check id, ``<claim source>.<what>`` (e.g. ``thm3.cond-growth``).
    statement : str
        The paper's statement of the claim (from the registry).
    computed : str
        What was computed, at which sizes.
    value : float
        The headline measured number.
    interval : tuple of float or None
        A 95% interval for ``value`` when it is an estimate.
    passed : bool
        Whether ``criterion`` held.
    seconds : float
        Wall time of the check.
    criterion : str
        The pass criterion.
    claim : str
        Id of the claim in :data:`failgeom.claims.CLAIMS`.
    margin : str
        How much room the claim has (analytic margin or distance to the threshold).
    preset : str
        ``"quick"`` or ``"full"``.
    """

    id: str
    statement: str
    computed: str
    value: float
    interval: tuple[float, float] | None
    passed: bool
    seconds: float
    criterion: str = ""
    claim: str = ""
    margin: str = ""
    preset: str = ""


def _ordered(checks: list[Check]) -> list[Check]:
    order = {cid: i for i, cid in enumerate(claims.check_order())}
    return sorted(checks, key=lambda c: order.get(c.id, len(order)))


#: every check, in paper order (the order of the claims that name them)
CHECKS: list[Check] = _ordered(all_checks())


def run_check(check: Check, quick: bool, **inputs) -> CheckRow:
    """Run one check (``inputs`` replace its ingredients); a check that raises fails, with the
    error in its row."""
    start = time.perf_counter()
    try:
        out = check.run(quick, **inputs)
    except Exception as exc:  # a crashing check is a failed claim, reported in its row
        out = Outcome(computed=f"error: {type(exc).__name__}: {exc}", value=float("nan"), passed=False)
    claim = claims.claim_of_check(check.id)
    return CheckRow(
        id=check.id, statement=claim.statement if claim else "", computed=out.computed, value=float(out.value),
        interval=None if out.interval is None else (float(out.interval[0]), float(out.interval[1])),
        passed=bool(out.passed), seconds=time.perf_counter() - start, criterion=check.criterion,
        claim=claim.id if claim else "", margin=out.margin, preset="quick" if quick else "full")


def iter_checks(quick: bool = False, only: str | None = None) -> Iterator[CheckRow]:
    """Rows of every check (or those whose id starts with ``only``), each as it finishes."""
    for check in CHECKS:
        if only is None or check.id.startswith(only):
            yield run_check(check, quick)


def run_checks(quick: bool = False, only: str | None = None) -> list[CheckRow]:
    """Every row of :func:`iter_checks`, as a list."""
    return list(iter_checks(quick, only))


def result_word(row) -> str:
    """``PASS``, ``FAIL``, or ``PASS (as corrected)`` when the row's claim is checked as corrected."""
    if not row.passed:
        return "FAIL"
    claim = claims.claim_of_check(row.id)
    return AS_CORRECTED if claim is not None and claim.corrected else "PASS"


def format_value(row: CheckRow) -> str:
    """``value [lo, hi]`` of a row, 3 significant digits."""
    text = f"{row.value:.3g}"
    if row.interval is not None:
        text += f" [{row.interval[0]:.3g}, {row.interval[1]:.3g}]"
    return text


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def _title(row: CheckRow) -> str:
    claim = claims.get(row.claim) if row.claim else None
    return claim.title if claim else row.statement


def header() -> str:
    """The compact table's header line and rule."""
    cells = [name.ljust(w) for name, w in WIDTHS.items()]
    return " ".join(cells).rstrip() + "\n" + " ".join("-" * w for w in WIDTHS.values())


def format_row(row: CheckRow, verbose: bool = False) -> str:
    """One row of the table (one line, or the details below it with ``verbose``)."""
    cells = (row.id, _title(row), format_value(row), result_word(row))
    line = " ".join(_fit(c, w).ljust(w) for c, w in zip(cells, WIDTHS.values())).rstrip()
    if not verbose:
        return line
    lines = [line]
    claim = claims.claim_of_check(row.id)
    for label, text in (("claim", row.statement), ("corrected", claim.corrected if claim else ""), ("computed", row.computed), ("criterion", row.criterion),
                        ("margin", row.margin), ("time", f"{row.seconds:.2f} s")):
        if text:
            lines += textwrap.wrap(f"{label}: {text}", 98, initial_indent="  ", subsequent_indent="    ")
    return "\n".join(lines) + "\n"


def footer(rows: list[CheckRow]) -> str:
    """``n/m checks passed in s``."""
    n_pass = sum(r.passed for r in rows)
    return f"{n_pass}/{len(rows)} checks passed in {sum(r.seconds for r in rows):.1f} s"


def format_table(rows: list[CheckRow], verbose: bool = False) -> str:
    """The whole table: header, a row per check, the count of passes."""
    return "\n".join([header(), *(format_row(r, verbose) for r in rows), footer(rows)])


def to_json(rows: list[CheckRow]) -> str:
    """The rows as a JSON document (``{"checks": [...], "passed": bool}``)."""

    def clean(x):
        return None if isinstance(x, float) and not math.isfinite(x) else x

    records = []
    for row in rows:
        rec = asdict(row)
        rec["value"] = clean(rec["value"])
        rec["interval"] = None if row.interval is None else [clean(v) for v in row.interval]
        records.append(rec)
    return json.dumps({"checks": records, "passed": all(r.passed for r in rows)}, indent=2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``failgeom verify``."""
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 15 s)")
    parser.add_argument("--only", metavar="PREFIX", help="run only the checks whose id starts with PREFIX")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also print the claim, what was computed, the criterion and the margin")


def run_cli(args: argparse.Namespace, out=None) -> int:
    """Run ``failgeom verify`` with parsed ``args``; returns the exit status (0, 1, or 2)."""
    out = out or sys.stdout
    if args.only is not None and not any(c.id.startswith(args.only) for c in CHECKS):
        sys.stderr.write(f"failgeom verify: error: no check id starts with {args.only!r}\n")
        return 2
    rows = []
    if not args.json:
        out.write(header() + "\n")
        out.flush()
    for row in iter_checks(quick=args.quick, only=args.only):
        rows.append(row)
        if not args.json:
            out.write(format_row(row, args.verbose) + "\n")
            out.flush()
    out.write((to_json(rows) if args.json else footer(rows)) + "\n")
    return 0 if all(r.passed for r in rows) else 1


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2 (never a traceback)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None) -> int:
    """``failgeom verify [--json] [--quick] [--only PREFIX] [--verbose]``; returns the exit status."""
    parser = _Parser(prog="failgeom verify", description="Check every theorem and lemma of the paper numerically.")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    return run_cli(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
