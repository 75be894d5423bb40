"""Compare the numbers of two output folders of ``failgeom reproduce`` (or ``run``).

    python tools/compare_runs.py BEFORE AFTER [--ignore-experiment NAME ...]

For every experiment present in both, every number in ``metrics`` and ``curves`` of
``result.json`` is compared for bit equality (NaN equals NaN); keys present on one side only are
listed. Prints how many numbers were compared and how many differ, per experiment, and exits 1
if any differ. A refactor that claims to keep every number uses this on the quick reproduction
before and after, on one machine.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def _leaves(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{path}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, obj


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def compare(before: Path, after: Path, ignore=()) -> tuple[dict, list[str]]:
    """``({experiment: (compared, differing, only_one_side)}, lines describing differences)``."""
    table, notes = {}, []
    for path in sorted(before.glob("*/result.json")):
        name = path.parent.name
        other = after / name / "result.json"
        if name in ignore or not other.exists():
            continue
        a, b = json.loads(path.read_text()), json.loads(other.read_text())
        left = dict(_leaves({"metrics": a["metrics"], "curves": a["curves"]}))
        right = dict(_leaves({"metrics": b["metrics"], "curves": b["curves"]}))
        shared = left.keys() & right.keys()
        differ = [k for k in sorted(shared) if not _same(left[k], right[k])]
        one_side = sorted(left.keys() ^ right.keys())
        table[name] = (len(shared), len(differ), len(one_side))
        notes += [f"{name}{k}: {left[k]!r} -> {right[k]!r}" for k in differ[:5]]
        notes += [f"{name}{k}: only {'before' if k in left else 'after'}" for k in one_side[:5]]
    return table, notes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore-experiment", action="append", default=[])
    args = parser.parse_args(argv)
    table, notes = compare(args.before, args.after, args.ignore_experiment)
    for name, (n, d, o) in table.items():
        print(f"{name:32s} {n:8d} numbers compared, {d:6d} differ, {o:5d} keys on one side only")
    total = [sum(t[i] for t in table.values()) for i in range(3)]
    print(f"{'all':32s} {total[0]:8d} numbers compared, {total[1]:6d} differ, {total[2]:5d} keys on one side only")
    for line in notes:
        print("  " + line)
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main())
