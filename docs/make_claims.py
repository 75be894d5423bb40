"""Regenerate ``docs/claims.md`` and the record blocks of the family pages from the stored records.

    python docs/make_claims.py [--quick-results DIR]

The paper's-scale column applies the registry (``failgeom/claims``) to the stored paper-scale
record ``records/paper`` (``failgeom reproduce --preset paper --out records/paper``); the quick
column to ``records/quick``, the results and ``failgeom verify --quick`` rows of a quick
reproduction. With ``--quick-results DIR`` (a ``failgeom reproduce --preset quick --out DIR``
folder) those are first copied into ``records/quick``. Every family page's block between
``<!-- record: NAME -->`` and ``<!-- /record -->`` is rewritten with experiment NAME's numbers
from ``records/paper`` (its summary, its claims' verdicts and values, and its cost), so a
paper-scale number on a page has one source. ``tests/test_claims_page.py`` renders the page and
the blocks the same way and fails if a committed one differs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout this script lives in

from failgeom import claims, record  # noqa: E402

PAGE = Path(__file__).resolve().parent / "claims.md"
QUICK_COMMAND = "failgeom reproduce --preset quick"


def render() -> str:
    """The page, from ``records/paper`` and ``records/quick``."""
    paper = record.load()
    quick = record.load(record.QUICK_PATH, preset="quick", figures=False)
    return claims.claims_page(quick.results if quick else {}, quick.verify_rows if quick else None,
                              f"{QUICK_COMMAND}` (stored in `records/quick`", record.paper_verdicts(paper),
                              paper.provenance if paper else {}, "quick") + "\n"


BLOCK = re.compile(r"(<!-- record: ([a-z0-9-]+) -->\n)(.*?)(<!-- /record -->)", re.S)
FAMILY_PAGES = ("parity.md", "orthogonal.md", "e2e-vs-decomposition.md", "pwl.md", "flat.md", "sparse-parity.md")


def record_block(name: str, paper=None, verdicts=None) -> str:
    """Markdown for experiment ``name`` at the paper preset, from the stored record."""
    from failgeom.claims.render import esc
    from failgeom.experiments import get

    paper = record.load() if paper is None else paper
    verdicts = record.paper_verdicts(paper) if verdicts is None else verdicts
    experiment = get(name)
    cost = (paper.provenance.get("experiments", {}).get(name, {}) if paper else {})
    if paper is None or name not in paper.results:
        stored, planned = record.cell_status(record.DEFAULT_PATH, experiment)
        return (f"*Paper preset, stored record* (`records/paper/{name}`): not complete yet, {stored} of "
                f"{planned} cells stored; `failgeom reproduce --preset paper --out records/paper` resumes it.\n")
    lines = [f"*Paper preset, stored record* (`records/paper/{name}`"
             + (f"; {cost['cells_stored']} cells, {cost['wall_s']:,.0f} s wall and {cost['cpu_s']:,.0f} s CPU "
                f"summed over cells" if cost else "") + "):", "",
             f"- {esc(experiment.summary(paper.results[name]))}"]
    for claim, v in verdicts:
        if name in claim.experiments:
            lines.append(f"- [`{claim.id}`](claims.md#{claim.id}): **{v.status}**" + (f", {esc(v.value)}" if v.value else "")
                         + (f". {esc(v.reason)}" if v.reason else ""))
    return "\n".join(lines) + "\n"


def render_page(text: str, paper=None, verdicts=None) -> str:
    """``text`` with every record block rewritten."""
    return BLOCK.sub(lambda m: m.group(1) + record_block(m.group(2), paper, verdicts) + m.group(4), text)


def store_quick(folder: Path) -> None:
    """Copy every ``result.json`` and ``verify.json`` of a quick reproduction into records/quick."""
    target = record.QUICK_PATH
    shutil.rmtree(target, ignore_errors=True)
    for path in sorted(folder.glob("*/result.json")):
        (target / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.parent.name / "result.json")
    shutil.copyfile(folder / "verify.json", target / "verify.json")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick-results", type=Path, help="a failgeom reproduce --preset quick folder")
    args = parser.parse_args(argv)
    if args.quick_results:
        store_quick(args.quick_results)
    PAGE.write_text(render())
    print(f"wrote {PAGE}")
    paper = record.load()
    verdicts = record.paper_verdicts(paper)
    for name in FAMILY_PAGES:
        path = PAGE.parent / name
        text = path.read_text()
        new = render_page(text, paper, verdicts)
        if new != text:
            path.write_text(new)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
