"""The stored paper-scale record: ``failgeom reproduce --preset paper`` kept in the repository.

``records/paper/`` at the root of the checkout holds what the runner itself writes for every
experiment at its ``paper`` preset (``<experiment>/result.json``, ``figure.png`` and the cell
records under ``cells/``, with the checkpoints of cells that are still running), the
``failgeom verify`` rows at full size (``verify.json``) and ``provenance.json``: the commit, date,
CPU model, BLAS and the wall and CPU seconds of every experiment's cells. Because the runner
reuses every stored, valid cell, ``failgeom reproduce --preset paper --out records/paper``
recomputes nothing that is stored and resumes an unfinished cell from its checkpoint.

:func:`paper_verdicts` evaluates the claims registry on the record: the "paper's scale" column
of ``docs/claims.md`` and of the report. ``python -m failgeom.record`` says what is stored and
what is left to compute, and rewrites ``provenance.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

#: the checkout's record folder (None when failgeom is installed without its checkout)
CHECKOUT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = CHECKOUT / "records" / "paper"
#: the quick reproduction's results and verify rows (no cells or figures): the second column
QUICK_PATH = CHECKOUT / "records" / "quick"
PROVENANCE_FILE, VERIFY_FILE = "provenance.json", "verify.json"
PRESET, SEED = "paper", 0


@dataclass
class PaperRecord:
    """What a record folder holds.

    Attributes
    ----------
    path : Path
    results : dict of str to Result
        Complete paper-preset results by experiment name.
    verify_rows : list of CheckRow or None
        ``failgeom verify`` rows at full size (None when not stored).
    provenance : dict
        ``commit``, ``date``, ``cpu``, ``blas``, ``numpy``, ``python`` and ``experiments``
        (per experiment: cells stored and planned, wall and CPU seconds); empty when absent.
    """

    path: Path
    results: dict = field(default_factory=dict)
    verify_rows: list | None = None
    provenance: dict = field(default_factory=dict)


def _verify_rows(path: Path):
    from .verify import CheckRow

    try:
        data = json.loads((path / VERIFY_FILE).read_text())
    except FileNotFoundError:
        return None
    rows = []
    for rec in data["checks"]:
        rec = dict(rec)
        rec["value"] = float("nan") if rec.get("value") is None else rec["value"]
        if rec.get("interval") is not None:
            rec["interval"] = tuple(float("nan") if v is None else v for v in rec["interval"])
        rows.append(CheckRow(**rec))
    return rows


def load(path=None, preset: str = PRESET, figures: bool = True) -> PaperRecord | None:
    """The stored record at ``path``: its results, verify rows and provenance.

    Parameters
    ----------
    path : str or Path, optional
        The record folder; None: ``records/paper`` of this checkout.
    preset : str
        Only results of this preset (at seed 0) are taken.
    figures : bool
        Check each result's figure with the runner's own validation (``records/quick`` keeps
        results without figures: pass False).

    Returns
    -------
    PaperRecord or None
        None when the folder does not exist.

    Raises
    ------
    ValueError
        For a damaged ``result.json`` (or its figure), ``provenance.json`` or ``verify.json``,
        naming the file.
    """
    from .results import Result
    from .store import load_result

    path = Path(DEFAULT_PATH if path is None else path)
    if not path.is_dir():
        return None
    results = {}
    for folder in sorted(p.parent for p in path.glob("*/result.json")):
        if figures:
            result, reason = load_result(folder)
        else:
            try:
                result, reason = Result.load(folder), ""
            except (OSError, ValueError) as exc:
                result, reason = None, str(exc)
        if result is None:
            raise ValueError(f"{folder / 'result.json'}: {reason}")
        if result.preset == preset and result.seeds.get("seed", SEED) == SEED:
            results[result.experiment] = result
    try:
        provenance = json.loads((path / PROVENANCE_FILE).read_text())
    except FileNotFoundError:
        provenance = {}
    except ValueError as exc:
        raise ValueError(f"{path / PROVENANCE_FILE}: not valid JSON ({exc})") from None
    try:
        rows = _verify_rows(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path / VERIFY_FILE}: not a failgeom verify record ({exc})") from None
    return PaperRecord(path, results, rows, provenance)


def cell_status(path, experiment) -> tuple[int, int]:
    """How many of an experiment's paper-preset cells the record holds.

    Parameters
    ----------
    path : str or Path
        The record folder (each experiment in its own subfolder).
    experiment : Experiment
        The registered experiment.

    Returns
    -------
    (int, int)
        ``(stored, planned)``: valid stored cell records, and the cells of the paper preset.
    """
    from .store import CellStore

    config = experiment.config(PRESET)
    cells = CellStore(Path(path) / experiment.name, experiment.name, config, SEED)
    keys = experiment.cell_keys(config)
    return sum(cells.load(k)[0] is not None for k in keys), len(keys)


def paper_verdicts(record: PaperRecord | None) -> list:
    """Every claim's verdict at the paper's scale, from the stored record.

    Parameters
    ----------
    record : PaperRecord or None
        As :func:`load` returns it; None: no record.

    Returns
    -------
    list
        Every claim in paper order with its verdict; a claim whose experiments are not complete
        in the record is "not tested", saying how many of their cells are stored.
    """
    from . import claims
    from .experiments import get

    if record is None:
        return [(c, claims.Verdict(claims.NOT_TESTED, reason="no stored paper-scale record"))
                for c in claims.CLAIMS]
    out = []
    for claim, verdict in claims.evaluate_all(record.results, record.verify_rows):
        missing = [e for e in claim.experiments if e not in record.results]
        if verdict.status == claims.NOT_TESTED and missing:
            parts = []
            for name in missing:
                stored, planned = cell_status(record.path, get(name))
                parts.append(f"{name}: {stored} of {planned} cells stored")
            verdict = claims.Verdict(claims.NOT_TESTED, reason="not yet in the stored paper-scale record ("
                                     + "; ".join(parts) + ")")
        out.append((claim, verdict))
    return out


# --------------------------------------------------------------------------------------------
# provenance


def _git(*args) -> str:
    try:
        return subprocess.run(["git", "-C", str(CHECKOUT), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _experiment_times(path: Path, experiment) -> dict:
    """Cells stored/planned and their wall and CPU seconds (over every resumed part where the
    cell reports it), from the cell records."""
    from .store import CellStore

    config = experiment.config(PRESET)
    cells = CellStore(path / experiment.name, experiment.name, config, SEED)
    wall, cpu, stored, dates = [], [], 0, []
    keys = experiment.cell_keys(config)
    for key in keys:
        output, times, _ = cells.load(key)
        if output is None:
            continue
        stored += 1
        own: dict = cast(dict, output.get("time")) if isinstance(output.get("time"), dict) else {}
        wall.append(max(times["wall_s"], float(own.get("wall_s", 0.0))))
        cpu.append(max(times["cpu_s"], float(own.get("cpu_s", 0.0))))
        dates.append(os.path.getmtime(cells.path(key)))
    when = [datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d") for t in (min(dates), max(dates))] \
        if dates else []
    return {"cells_stored": stored, "cells_planned": len(keys), "wall_s": round(sum(wall), 1),
            "cpu_s": round(sum(cpu), 1), "longest_cell_wall_s": round(max(wall, default=0.0), 1),
            "computed": when}


def folder_bytes(path) -> int:
    """Bytes of every file under ``path`` (a folder), recursively.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    int
    """
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def provenance(path=None) -> dict:
    """The provenance of the record: where and when, and what each experiment cost.

    Parameters
    ----------
    path : str or Path, optional
        The record folder; None: ``records/paper`` of this checkout.

    Returns
    -------
    dict
        ``commit``, ``date``, ``cpu``, ``cores``, ``blas``, ``numpy``, ``python``, the
        ``command`` that resumes it, its size in ``bytes`` and, per experiment, cells stored and
        planned with their wall and CPU seconds.
    """
    from .experiments import get, names
    from .results import environment

    path = Path(DEFAULT_PATH if path is None else path)
    experiments = {n: _experiment_times(path, get(n)) for n in names()}
    env = environment()
    return {
        "commit": _git("rev-parse", "HEAD"),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "cpu": env["cpu"], "cores": env["cpu_count"], "blas": env["blas"], "numpy": env["numpy"],
        "python": env["python"],
        "command": f"failgeom reproduce --preset {PRESET} --out records/paper",
        "bytes": folder_bytes(path),
        "experiments": experiments,
    }


def main(argv=None) -> int:
    """``python -m failgeom.record [PATH] [--write]``: what is stored and what is left."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m failgeom.record", description=main.__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH, help="the record folder")
    parser.add_argument("--write", action="store_true", help=f"rewrite {PROVENANCE_FILE} in the folder")
    args = parser.parse_args(argv)
    if not args.path.is_dir():
        print(f"failgeom.record: {args.path} is not a folder", file=sys.stderr)
        return 2
    info = provenance(args.path)
    left = 0
    for name, e in info["experiments"].items():
        left += e["cells_planned"] - e["cells_stored"]
        print(f"{name:32s} {e['cells_stored']:3d}/{e['cells_planned']:<3d} cells  {e['wall_s']:9.0f} s wall "
              f"{e['cpu_s']:9.0f} s CPU")
    print(f"{info['bytes'] / 1e6:.1f} MB; " + ("nothing left to compute" if left == 0 else f"{left} cells left to compute"))
    if args.write:
        from .results import atomic_write_text

        atomic_write_text(args.path / PROVENANCE_FILE, json.dumps(info, indent=1) + "\n")
        print(f"wrote {args.path / PROVENANCE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
