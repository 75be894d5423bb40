"""Regenerate the figures under docs/figures from experiment results (a script, not package code).

Each failure family registers a function in :data:`FAMILIES` that writes its figures; a family
without results at hand runs its quick presets here. Usage, from the repository root::

    python docs/make_figures.py pwl --save DIR       # quick presets, run here (a few minutes),
                                                     # their results kept in DIR
    python docs/make_figures.py pwl --results DIR --suffix=-paper
        # from ``failgeom run NAME --preset paper --out DIR`` folders (DIR/pwl-fc/result.json, ...)
    python docs/make_figures.py tuple-lines --results DIR --suffix=-paper
        # Figure 3 from every DIR/*/tuple-lines/result.json (runs of some of the preset's
        # cells each, e.g. ``--set approaches=decomposition``), drawn as one figure

To add a family, write ``def family(results, out, suffix, seed) -> list[Path]`` and add it to
:data:`FAMILIES`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: use its failgeom
    sys.path.insert(0, str(ROOT))

from failgeom import plotting  # noqa: E402
from failgeom.experiments import get  # noqa: E402
from failgeom.results import Result, atomic_savefig  # noqa: E402


#: where :func:`result_of` keeps the results it computes (``--save``), None: nowhere
SAVE: list[Path] = []


def result_of(name: str, results: Path | None, seed: int, variant: str = "", **changes) -> Result:
    """``results/name/result.json`` if a folder is given, else a quick-preset run (``changes``
    applied) made here, saved under ``--save`` as ``name[-variant]``."""
    if results is not None:
        return Result.load(results / f"{name}{variant}")
    exp = get(name)
    config = dataclasses.replace(exp.presets["quick"], **changes)
    start = time.perf_counter()
    result = exp.run(config, seed, preset="quick")
    print(f"{name}{variant}: {time.perf_counter() - start:.1f} s; {exp.summary(result)}")
    for folder in SAVE:
        result.save(folder / f"{name}{variant}")
    return result


def save(fig, path: Path, **kwargs) -> Path:
    atomic_savefig(fig, path, **kwargs)
    plotting.close(fig)
    print(f"wrote {path}")
    return path


def pwl(results: Path | None, out: Path, suffix: str, seed: int) -> list[Path]:
    """Sec. 4.1: each learner's Figure 6, the combined Figure 6, and pwl-scaling's figure; with
    quick presets (or results that hold it) also conv-precond trained with SGD
    (``pwl-conv-precond-sgd``)."""
    from failgeom.experiments import pwl as family

    written, rows = [], {}
    for learner in family.LEARNERS:
        name = f"pwl-{learner}"
        rows[learner] = result_of(name, results, seed)
        written.append(save(get(name).figure(rows[learner]), out / f"{name}{suffix}.png"))
    written.append(save(family.combined_figure(rows), out / f"pwl-figure6{suffix}.png"))
    if results is None or (results / "pwl-conv-precond-sgd").exists():
        sgd = result_of("pwl-conv-precond", results, seed, variant="-sgd", optimizer="sgd")
        written.append(save(get("pwl-conv-precond").figure(sgd), out / f"pwl-conv-precond-sgd{suffix}.png"))
    if results is None or (results / "pwl-scaling").exists():
        scaling = result_of("pwl-scaling", results, seed)
        written.append(save(get("pwl-scaling").figure(scaling), out / f"pwl-scaling{suffix}.png"))
    return written


def tuple_lines(results: Path | None, out: Path, suffix: str, seed: int) -> list[Path]:
    """Sec. 3.1, Figure 3: with ``results``, the cells of every ``results/*/tuple-lines`` run of
    one preset (parts run separately) in one figure; without, the quick preset run here."""
    exp = get("tuple-lines")
    if results is None:
        return [save(exp.figure(result_of("tuple-lines", None, seed)), out / f"tuple-lines{suffix}.png")]
    parts = [Result.load(p.parent) for p in sorted(results.glob("*/tuple-lines/result.json"))]
    if not parts:
        raise SystemExit(f"no {results}/*/tuple-lines/result.json found")
    fixed = {n: v for n, v in parts[0].config.items() if n not in ("ks", "approaches")}
    for part in parts[1:]:
        if {n: v for n, v in part.config.items() if n not in ("ks", "approaches")} != fixed:
            raise SystemExit("the tuple-lines results differ in more than ks and approaches")
    curves = {name: c for part in parts for name, c in part.curves.items()}
    ks = sorted({k for part in parts for k in part.config["ks"]})
    combined = dataclasses.replace(parts[0], config={**parts[0].config, "ks": ks}, curves=curves)
    return [save(exp.figure(combined), out / f"tuple-lines{suffix}.png")]


#: family name -> figure writer ``(results, out, suffix, seed) -> written paths``
FAMILIES: dict[str, Callable[[Path | None, Path, str, int], list[Path]]] = {"pwl": pwl, "tuple-lines": tuple_lines}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("--results", type=Path, default=None, help="folder of `failgeom run --out` results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--suffix", default="", help="appended to each file name, e.g. --suffix=-paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None, help="keep the results run here in this folder")
    args = parser.parse_args(argv)
    if args.save is not None:
        SAVE.append(args.save)
    FAMILIES[args.family](args.results, args.out, args.suffix, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
