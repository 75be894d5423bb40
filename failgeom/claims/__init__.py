"""Every claim of the paper and the talk, once: statement, source, what decides it, verdict rule.

A :class:`Claim` names the paper's statement, where it is made (section, figure, theorem), the
experiments (with the metric keys its rule reads) and ``failgeom verify`` checks that decide it,
and a rule that turns the measured values into a :class:`Verdict`: **reproduced**, **partly**
(with the reason), **not reproduced** (with the numbers) or **not tested** (at this preset, or
because nothing that decides it was run). ``failgeom verify``, the report of ``failgeom
reproduce`` and ``docs/claims.md`` read this registry; nothing else states a claim.

The claims live by paper section in :mod:`.sec2` (non-informative gradients), :mod:`.sec3`
(decomposition vs end-to-end), :mod:`.sec4` (architecture and conditioning), :mod:`.sec5`
(flat activations), then :mod:`.beyond` (sparse parities and GF(2), beyond the paper);
:data:`CLAIMS` lists them in paper order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTED = "reproduced", "partly", "not reproduced", "not tested"
STATUSES = (REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTED)
_SEVERITY = {REPRODUCED: 0, PARTLY: 1, NOT_REPRODUCED: 2}

FAMILY_TITLES = {
    1: "Non-informative gradients",
    2: "Decomposition vs end-to-end",
    3: "Architecture and conditioning",
    4: "Flat activations",
}


@dataclass(frozen=True)
class Verdict:
    """The outcome of a claim's rule.

    Attributes
    ----------
    status : str
        One of :data:`STATUSES`.
    value : str
        The measured value, with its interval where one exists.
    reason : str
        Plain words: why partly, the numbers that disagree, or what was not run.
    preset : str
        The preset (or ``verify`` mode) the value was measured at.
    """

    status: str
    value: str = ""
    reason: str = ""
    preset: str = ""


class Missing(LookupError):
    """The evidence a rule needs is absent (no result, no metric, no verify row)."""


class Evidence:
    """What a rule may read: experiment results by name and ``failgeom verify`` rows by id.

    Parameters
    ----------
    results : dict of str to Result, optional
    verify_rows : iterable of CheckRow, optional
        None when ``failgeom verify`` was not run.
    """

    def __init__(self, results=None, verify_rows=None):
        self.results = {name: r for name, r in (results or {}).items() if r is not None}
        self.verify_ran = verify_rows is not None
        self.rows = {row.id: row for row in (verify_rows or [])}

    def result(self, name: str):
        if name not in self.results:
            raise Missing(f"no {name} result")
        return self.results[name]

    def metric(self, name: str, *path):
        """``metrics[path[0]][path[1]]...`` of experiment ``name``; :class:`Missing` if absent."""
        value = self.result(name).metrics
        for i, key in enumerate(path):
            if not isinstance(value, dict) or key not in value:
                raise Missing(f"{name} has no metric {'/'.join(map(str, path[: i + 1]))}")
            value = value[key]
        return value

    def config(self, name: str, key: str):
        config = self.result(name).config or {}
        if key not in config:
            raise Missing(f"{name} has no config field {key}")
        return config[key]

    def preset(self, *names: str) -> str:
        presets = sorted({self.results[n].preset for n in names if n in self.results})
        return "/".join(presets)


@dataclass(frozen=True)
class Claim:
    """One claim of the paper or the talk.

    Attributes
    ----------
    id : str
        Stable identifier (``fig1.parity``, ``thm3.condition``, ...).
    title : str
        A few words, for the compact ``failgeom verify`` table.
    statement : str
        The paper's statement, in its notation.
    source : str
        Where it is made (section, figure, theorem, appendix, or the talk).
    family : int
        Failure family (1-4, :data:`FAMILY_TITLES`).
    experiments : tuple of str
        Experiments whose results the rule reads.
    checks : tuple of str
        ``failgeom verify`` check ids that decide it (all must pass).
    metrics : tuple of str
        ``"experiment: key/path"`` of every metric the rule reads.
    rule : callable or None
        ``rule(Evidence) -> Verdict`` for the experiments' side; None when the checks decide.
    corrected : str
        Where the paper misprints: the printed version and what was checked instead.
    docs, code, test : str
        Repository paths of the page, the implementing module and the test.
    figure : str
        A paper-preset figure under ``docs/figures`` that shows the claim, if any.
    """

    id: str
    title: str
    statement: str
    source: str
    family: int
    experiments: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    rule: Callable[[Evidence], Verdict] | None = None
    corrected: str = ""
    docs: str = ""
    code: str = ""
    test: str = ""
    figure: str = ""


# --------------------------------------------------------------------------------------------
# helpers for rules


def num(x, digits: int = 3) -> str:
    """A number for a verdict: ``digits`` significant digits, ``n/a`` for None/NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}g}"


def with_interval(value, interval=None, digits: int = 3) -> str:
    """``value [lo, hi]``."""
    text = num(value, digits)
    if interval is not None and len(interval) == 2:
        text += f" [{num(interval[0], digits)}, {num(interval[1], digits)}]"
    return text


def mean_interval(values) -> tuple[float, tuple[float, float] | None]:
    """Mean of per-replica values and its 95% t interval (None for a single value)."""
    from scipy import stats

    xs = [float(v) for v in values if v is not None]
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    half = float(stats.t.ppf(0.975, len(xs) - 1)) * sd / math.sqrt(len(xs))
    return m, (m - half, m + half)


def _row_value(row) -> str:
    return with_interval(row.value, row.interval, 4)


def _checks_verdict(claim: Claim, ev: Evidence) -> Verdict | None:
    if not claim.checks:
        return None
    if not ev.verify_ran:
        return Verdict(NOT_TESTED, reason="failgeom verify was not run")
    rows = [ev.rows.get(c) for c in claim.checks]
    missing = [c for c, r in zip(claim.checks, rows) if r is None]
    if missing:
        return Verdict(NOT_TESTED, reason=f"verify rows not run: {', '.join(missing)}")
    preset = "verify --quick" if any(getattr(r, "preset", "") == "quick" for r in rows) else "verify"
    failed = [r for r in rows if not r.passed]
    value = _row_value(rows[0])
    if failed:
        why = "; ".join(f"{r.id} FAIL: {_row_value(r)} (needs {r.criterion})" for r in failed)
        return Verdict(NOT_REPRODUCED, value, why, preset)
    if claim.corrected:
        return Verdict(PARTLY, value, f"holds as corrected: {claim.corrected}", preset)
    return Verdict(REPRODUCED, value, "", preset)


def evaluate(claim: Claim, ev: Evidence) -> Verdict:
    """The claim's verdict: its checks and its rule, the worse of the two; a side that was not
    run is said in the reason, and the claim is not tested when neither was."""
    parts = []
    checks = _checks_verdict(claim, ev)
    if checks is not None:
        parts.append(checks)
    if claim.rule is not None:
        try:
            parts.append(claim.rule(ev))
        except Missing as exc:
            parts.append(Verdict(NOT_TESTED, reason=str(exc)))
    tested = [p for p in parts if p.status != NOT_TESTED]
    if not tested:
        joined = "; ".join(p.reason for p in parts if p.reason)
        return Verdict(NOT_TESTED, reason=joined or "nothing decides it yet")
    status = max((p.status for p in tested), key=_SEVERITY.__getitem__)
    reasons = [p.reason for p in tested if p.reason]
    reasons += [f"not tested: {p.reason}" for p in parts if p.status == NOT_TESTED and p.reason]
    main = tested[-1]  # the experiment's value when there is one, else the headline row's
    preset = " + ".join(dict.fromkeys(p.preset for p in tested if p.preset))
    return Verdict(status, main.value, "; ".join(dict.fromkeys(reasons)), preset)


def evaluate_all(results=None, verify_rows=None) -> list[tuple[Claim, Verdict]]:
    """Every claim of :data:`CLAIMS` (paper order) with its verdict."""
    ev = Evidence(results, verify_rows)
    return [(c, evaluate(c, ev)) for c in CLAIMS]


def get(claim_id: str) -> Claim:
    """The claim with this id; ValueError naming the known ids otherwise."""
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise ValueError(f"unknown claim {claim_id!r} (known: {', '.join(c.id for c in CLAIMS)})")


def claim_of_check(check_id: str) -> Claim | None:
    """The claim a ``failgeom verify`` check decides (None for an unregistered check)."""
    for c in CLAIMS:
        if check_id in c.checks:
            return c
    return None


def check_order() -> list[str]:
    """Every registered check id, in paper order."""
    return [check for c in CLAIMS for check in c.checks]


from .sec2 import CLAIMS as _SEC2  # noqa: E402  (the sections use the helpers above)
from .sec3 import CLAIMS as _SEC3  # noqa: E402
from .sec4 import CLAIMS as _SEC4  # noqa: E402
from .sec5 import CLAIMS as _SEC5  # noqa: E402
from .beyond import CLAIMS as _BEYOND  # noqa: E402

#: every claim, in paper order
CLAIMS: list[Claim] = [*_SEC2, *_SEC3, *_SEC4, *_SEC5, *_BEYOND]

from .render import claims_page, summary_counts  # noqa: E402

__all__ = ["CLAIMS", "Claim", "Evidence", "FAMILY_TITLES", "Missing", "NOT_REPRODUCED", "NOT_TESTED",
           "PARTLY", "REPRODUCED", "STATUSES", "Verdict", "check_order", "claim_of_check", "claims_page",
           "evaluate", "evaluate_all", "get", "mean_interval", "num", "summary_counts",
           "with_interval"]
