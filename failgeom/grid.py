"""Grids of configs for ``failgeom run --grid``: parsing, every combination, folder labels, the summary table.

Each grid point becomes one :class:`~failgeom.runner.Job` in a folder of its own (named by
:func:`grid_label`), so the points never share cells or a lock with each other or with a plain
run of the same experiment.
"""

from __future__ import annotations

import itertools
import math

MAX_GRID_POINTS = 4096


def parse_grid(pairs) -> list[tuple[str, list[str]]]:
    """``["k=v1,v2", ...]`` to ``[(k, [v1, v2]), ...]``; ValueError on a malformed pair."""
    grid: list[tuple[str, list[str]]] = []
    for pair in pairs or []:
        key, sep, values = pair.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not items:
            raise ValueError(f"--grid expects key=v1,v2,..., got {pair!r}")
        if key.strip() in [k for k, _ in grid]:
            raise ValueError(f"--grid {key.strip()} is given twice")
        grid.append((key.strip(), items))
    size = math.prod(len(v) for _, v in grid)
    if size > MAX_GRID_POINTS:
        raise ValueError(f"--grid has {size} points; at most {MAX_GRID_POINTS} are accepted")
    return grid


def grid_points(grid: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, the last key varying fastest."""
    keys = [k for k, _ in grid]
    return [dict(zip(keys, values)) for values in itertools.product(*(v for _, v in grid))]


def grid_label(point: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items()) or "default"


def grid_table(jobs: list, points: list[dict[str, str]], summary) -> str:
    """A Markdown table of a grid: one row per point with its status and one-line summary."""
    keys = list(points[0]) if points else []
    lines = ["| " + " | ".join(keys + ["status", "summary", "folder"]) + " |",
             "| " + " | ".join(["---"] * (len(keys) + 3)) + " |"]
    for job, point in zip(jobs, points):
        o = job.outcome
        text = o.error if o.status == "failed" else (summary(o.result) if o.result is not None else "")
        status = {"skipped": "reused"}.get(o.status, o.status)
        cells = [point[k] for k in keys] + [status, text.replace("|", "/"), job.folder.name]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"



__all__ = ["MAX_GRID_POINTS", "grid_label", "grid_points", "grid_table", "parse_grid"]
