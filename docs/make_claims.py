"""Regenerate ``docs/claims.md`` from the claims registry (``failgeom/claims``).

    python docs/make_claims.py [--results DIR] [--full]

runs ``failgeom verify`` (``--quick`` unless ``--full``) and, with ``--results``, reads the
experiments' results from a ``failgeom reproduce`` folder (``DIR/<experiment>/result.json``), then
writes every claim with its source, what decides it and its verdict. Without results the claims
that only experiments decide read "not tested".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout this script lives in

from failgeom import claims, verify  # noqa: E402
from failgeom.results import Result  # noqa: E402

PAGE = Path(__file__).resolve().parent / "claims.md"


def load_results(folder: Path) -> dict:
    """Every loadable ``result.json`` under ``folder``, by experiment name."""
    results = {}
    for path in sorted(Path(folder).glob("*/result.json")):
        try:
            result = Result.load(path.parent)
        except (OSError, ValueError, TypeError) as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
            continue
        results[result.experiment] = result
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="a failgeom reproduce output folder")
    parser.add_argument("--full", action="store_true", help="run failgeom verify at full size")
    args = parser.parse_args(argv)
    rows = verify.run_checks(quick=not args.full)
    results = load_results(args.results) if args.results else {}
    presets = sorted({r.preset for r in results.values()})
    command = "python docs/make_claims.py" + (" --full" if args.full else "")
    if args.results:
        command += f" --results DIR` with `DIR` from `failgeom reproduce --preset {'/'.join(presets) or '?'}"
    PAGE.write_text(claims.claims_page(results, rows, command) + "\n")
    counts = claims.summary_counts(claims.evaluate_all(results, rows))
    print(f"wrote {PAGE}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
