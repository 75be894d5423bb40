"""What the report reads besides the run, and how it words and orders the claims.

Used by :mod:`failgeom.report`: :class:`PaperColumn` holds the verdicts at the paper's scale
(:func:`stored_paper_column` reads the stored record through :mod:`failgeom.record`);
:func:`repo_href` links a file of the checkout; :func:`paper_order` sorts experiments as the paper presents them,
:func:`source_groups` gathers the claims by paper figure and theorem group (Figure 1 ... Figure 7,
Theorem 1-3, the lemmas, the appendix, ...), :func:`round_numbers` rounds every long number of a
text to 3 significant digits, :func:`measured_text` gives a bare verify value its meaning, and
:func:`badge` colours a verdict (a span in HTML, bold in Markdown); :func:`flatten_metrics` and
:func:`select_metrics` pick an experiment's scalar metrics for its table; :func:`unresolved_links`
checks that every link of a written page resolves.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

from . import claims

#: the mark of a claim whose verdicts at the paper's scale and in this run differ
DIFFERS = "≠"

#: CSS class of each verdict (report.py's style sheet colours them)
STATUS_CLASS = {claims.REPRODUCED: "rep", claims.PARTLY: "part", claims.NOT_REPRODUCED: "fail",
                claims.NOT_TESTED: "nt"}

DIGITS = 3

#: the repository root of a source checkout (docs/, the code and the tests live there)
REPO_ROOT = Path(__file__).resolve().parents[1]
FIGURE_FILE = "figure.png"

#: at most this many metric rows per experiment in the report (the rest stay in result.json)
MAX_METRIC_ROWS = 16
#: lists of at most this many numbers are shown inline; longer ones (per-replica values) are not
MAX_INLINE_LIST = 4

_DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[+-]?\d+)?(?![\w.])")
_BARE = re.compile(r"-?[\d.]+(?:e[+-]?\d+)?(?: \[[^\]]*\])?")


def repo_href(rel: str) -> str | None:
    """A link to a file of the checkout (``docs/x.md#anchor``, ``failgeom/...``), or None.

    Resolved at write time against the checkout the package was imported from: an absolute
    ``file://`` URI when the file exists there, so the link survives moving the output folder;
    None (the report prints the path as plain text) for a package installed without its docs.
    """
    path, _, anchor = str(rel).partition("#")
    target = REPO_ROOT / path
    if not path or not target.is_file():
        return None
    return target.as_uri() + (f"#{anchor}" if anchor else "")


@dataclass
class PaperColumn:
    """The verdicts at the paper's scale and where they come from.

    Attributes
    ----------
    verdicts : list of (Claim, Verdict)
        Every claim in paper order (:func:`failgeom.record.paper_verdicts`).
    provenance : dict
        The record's ``commit``, ``date``, ``cpu``, ``blas``, ``numpy``, ``python``.
    path : Path or None
        The record's folder (its ``<experiment>/figure.png`` are the paper-scale figures).
    missing : str
        Why there is no record ("" when there is one).
    """

    verdicts: list
    provenance: dict = field(default_factory=dict)
    path: Path | None = None
    missing: str = ""

    def source(self) -> str:
        """``the stored record records/paper, commit abc1234, 2026-12-08``."""
        if self.path is None:
            return "no stored record"
        bits = [f"the stored record {_shown_path(self.path)}",
                f"commit {str(self.provenance.get('commit', '?'))[:12]}", str(self.provenance.get("date", ""))[:10]]
        return ", ".join(b for b in bits if b)

    def figure(self, name: str) -> Path | None:
        if self.path is None:
            return None
        path = Path(self.path) / name / FIGURE_FILE
        return path if path.is_file() else None


def no_paper_column(reason: str) -> PaperColumn:
    """A paper column of "not tested" claims, saying ``reason``."""
    return PaperColumn([(c, claims.Verdict(claims.NOT_TESTED, reason=reason)) for c in claims.CLAIMS], missing=reason)


def stored_paper_column(path=None) -> PaperColumn:
    """The paper column from the stored record (:func:`failgeom.record.load` at ``path``)."""
    try:
        from .record import load, paper_verdicts
    except ModuleNotFoundError as exc:  # a package built before the record module existed
        if exc.name != f"{__package__}.record":
            raise
        return no_paper_column("this failgeom has no paper-scale record module")
    try:
        stored = load(path)
    except (OSError, ValueError) as exc:  # a damaged record must not cost the report of this run
        return no_paper_column(f"the stored paper-scale record could not be read: {exc}".splitlines()[0])
    if stored is None:
        return no_paper_column("no stored paper-scale record was found (records/paper next to the package)")
    return PaperColumn(list(paper_verdicts(stored)), dict(stored.provenance), Path(stored.path))


def _shown_path(path) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def paper_order(names) -> list[str]:
    """``names`` in paper order: the order in which :data:`failgeom.claims.CLAIMS` first name
    them (then their place within that claim); names no claim reads keep their order, last."""
    first: dict[str, tuple[int, int]] = {}
    for i, claim in enumerate(claims.CLAIMS):
        for j, name in enumerate(claim.experiments):
            first.setdefault(name, (i, j))
    names = list(names)
    return sorted(names, key=lambda n: first.get(n, (len(claims.CLAIMS), names.index(n))))


def kind_of(claim) -> str:
    """``"paper"``, ``"talk"`` (made only in the talk) or ``"beyond"`` (beyond the paper)."""
    if "beyond the paper" in claim.source:
        return "beyond"
    return "talk" if claim.source.startswith("talk") else "paper"


def _group_key(source: str) -> tuple[int, int, str]:
    """(rank, number, label part) of a claim's source: figures, theorems, lemmas, appendix,
    other sections, the talk, beyond the paper."""
    if "beyond the paper" in source:
        return (6, 0, "")
    for rank, pattern in ((0, r"Figure (\d+)"), (1, r"Theorem (\d+)")):
        m = re.search(pattern, source)
        if m:
            return (rank, int(m.group(1)), m.group(1))
    for rank, pattern in ((2, r"Lemma (\d+)"), (3, r"Appendix (A\.\d+)")):
        m = re.search(pattern, source)
        if m:
            return (rank, 0, m.group(1))
    if source.startswith("talk"):
        return (5, 0, "")
    m = re.search(r"Sec\. ([\d.]+)", source)
    return (4, 0, m.group(1) if m else "")


def _label(rank: int, parts: list[str]) -> str:
    parts = sorted(dict.fromkeys(p for p in parts if p), key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    if rank == 0:
        return f"Figure {parts[0]}"
    if rank == 1:
        return f"Theorem {parts[0]}"
    if rank == 2:
        return ("Lemmas " if len(parts) > 1 else "Lemma ") + ", ".join(parts)
    if rank == 3:
        return "Appendix " + ", ".join(parts)
    if rank == 4:
        return "Other statements (Sec. " + ", ".join(parts) + ")"
    return {5: "The talk", 6: "Beyond the paper"}[rank]


def source_groups(claim_list) -> list[tuple[str, list]]:
    """``[(label, claims)]``: the claims grouped by paper figure, theorem, lemmas, appendix,
    other sections, the talk and beyond the paper, in that order; claims in registry order."""
    groups: dict[tuple[int, int], list] = {}
    parts: dict[tuple[int, int], list[str]] = {}
    for claim in claim_list:
        rank, number, part = _group_key(claim.source)
        groups.setdefault((rank, number), []).append(claim)
        parts.setdefault((rank, number), []).append(part)
    return [(_label(key[0], parts[key]), groups[key]) for key in sorted(groups)]


def _round(match: re.Match) -> str:
    text = match.group(0)
    mantissa = text.split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    if len(mantissa) <= DIGITS:
        return text
    x = float(text)
    if abs(x) >= 10 ** DIGITS:
        return f"{x:.0f}"
    out = f"{x:#.{DIGITS}g}".replace(".e", "e").rstrip(".")
    return f"{x:.0f}" if "e+" in out else out


def round_numbers(text) -> str:
    """``text`` with every decimal number of more than 3 significant digits rounded to 3
    (``4.790093944798996`` -> ``4.79``, ``1.001`` -> ``1.00``, ``1234.56`` -> ``1235``);
    integers, ids (``sec3.3``, ``a5.lower-bound``) and section numbers are left alone."""
    return _DECIMAL.sub(_round, str(text))


def measured_text(claim, verdict) -> str:
    """A verdict's measured value, rounded; a bare number (a verify row's headline value) gets
    the meaning its check gives it: the criterion it is held to."""
    value = round_numbers(verdict.value)
    if value and _BARE.fullmatch(value) and claim.checks:
        from .verify import CHECKS

        criterion = next((c.criterion for c in CHECKS if c.id == claim.checks[0]), "")
        if criterion:
            value += f" (criterion of {claim.checks[0]}: {criterion})"
    return value


def badge(status: str, as_html: bool, text: str | None = None) -> str:
    """A verdict (or ``text``) in its colour: a span in HTML, bold in Markdown."""
    text = status if text is None else text
    if as_html:
        return f'<span class="v {STATUS_CLASS[status]}">{html.escape(text)}</span>'
    return f"**{text}**"


def nowrap(text: str, as_html: bool) -> str:
    """``text`` that must not break across lines (``verify --quick``)."""
    return f'<span class="nw">{html.escape(text)}</span>' if as_html else text.replace("-", "\u2011")


def group_cells(statuses, as_html: bool) -> str:
    """The verdicts of a group of claims: ``reproduced`` for one, ``3 reproduced, 1 partly``."""
    if len(statuses) == 1:
        return badge(statuses[0], as_html)
    return " ".join(badge(s, as_html, f"{statuses.count(s)} {s}") for s in claims.STATUSES if s in statuses)


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
    for i, (key, _) in enumerate(rows):
        groups.setdefault(key.split(" / ", 1)[0], []).append(i)
    queues = [sorted(idx, key=lambda i: isinstance(rows[i][1], list)) for idx in groups.values()]
    chosen: list[int] = []
    while len(chosen) < cap:
        for q in queues:
            if q and len(chosen) < cap:
                chosen.append(q.pop(0))
    return [rows[i] for i in sorted(chosen)]


def fmt(value) -> str:
    """A metric for the report: 3 significant digits, ``yes``/``no``, ``n/a`` for None."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return round_numbers(repr(value)) if math.isfinite(value) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


class _Links(HTMLParser):
    ids: set[str]
    hrefs: list[str]

    def __init__(self, text: str):
        super().__init__()
        self.ids, self.hrefs = set(), []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href") is not None:
            self.hrefs.append(attrs["href"])


def unresolved_links(path, text: str | None = None) -> list[str]:
    """Every ``href`` of the HTML page at ``path`` (or of its DOM ``text``, as a browser's
    ``--dump-dom`` gives it) that names no element of the page and no existing file: ``#id``
    must be an id of the page, ``file://`` and relative links an existing file (relative to the
    page's folder); the report links nothing outside this machine, so any other scheme counts."""
    path = Path(path)
    page = _Links(path.read_text() if text is None else text)
    bad = []
    for href in page.hrefs:
        url = urlparse(href)
        if href.startswith("#"):
            ok = href[1:] in page.ids
        elif url.scheme == "file":
            ok = Path(unquote(url.path)).is_file()
        else:
            ok = not url.scheme and (path.parent / unquote(url.path)).is_file()
        if not ok:
            bad.append(href)
    return bad


__all__ = ["DIFFERS", "MAX_INLINE_LIST", "MAX_METRIC_ROWS", "PaperColumn", "REPO_ROOT", "STATUS_CLASS", "badge",
           "flatten_metrics", "fmt", "group_cells", "kind_of", "measured_text", "no_paper_column", "nowrap",
           "paper_order", "repo_href", "round_numbers", "select_metrics", "source_groups", "stored_paper_column",
           "unresolved_links"]
