"""Regenerate ``docs/claims.md`` from the claims registry and the stored records.

    python docs/make_claims.py [--quick-results DIR]

The paper's-scale column applies the registry (``failgeom/claims``) to the stored paper-scale
record ``records/paper`` (``failgeom reproduce --preset paper --out records/paper``); the quick
column to ``records/quick``, the results and ``failgeom verify --quick`` rows of a quick
reproduction. With ``--quick-results DIR`` (a ``failgeom reproduce --preset quick --out DIR``
folder) those are first copied into ``records/quick``. ``tests/test_claims_page.py`` renders the
page the same way and fails if the committed page differs.
"""

from __future__ import annotations

import argparse
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
