"""Shared matplotlib style: the Agg backend (no display needed), legible type sizes, and helpers
(a band over replicas, an accuracy panel, a log-n axis, integer ticks, a note on a panel).

Sizes are for the report, which shows a figure at most :data:`REPORT_WIDTH_PX` pixels wide: a
wider figure is scaled down there, and so is its text. :func:`displayed_min_font_pt` gives the
smallest text size as the report shows it; every figure should keep it at least
:data:`MIN_FONT_PT` (keep figures at most about 10 inches wide, or use larger type).
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

#: colours used across figures: end-to-end red, decomposition blue (as the paper's Figure 3)
COLORS = {"red": "#c0392b", "blue": "#2e6fba", "green": "#2a9d55", "grey": "#7f7f7f"}
CYCLE = ["#2e6fba", "#c0392b", "#2a9d55", "#8e44ad", "#d4871c", "#555555"]

#: smallest legible type size, in points, at the size the report shows a figure
MIN_FONT_PT = 8.0
#: the report's content width in pixels (72em of 16 px); wider figures are scaled down to it
REPORT_WIDTH_PX = 1152

STYLE: dict[Any, Any] = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 10,
    "legend.frameon": False,
}

# the style holds for every text a figure gets, including legends and ticks made after
# plt.subplots (a context around plt.subplots alone would not cover them)
matplotlib.rcParams.update(STYLE)


def figure(nrows: int = 1, ncols: int = 1, width: float = 4.0, height: float = 3.0, **kwargs):
    """A figure with the project's style and ``nrows x ncols`` panels of ``width x height`` inches."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kwargs)
    for ax in axes.flat:
        ax.grid(True, alpha=STYLE["grid.alpha"])
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def band(ax, x, values, color, label=None, alpha: float = 0.2):
    """Plot the replica mean of ``values`` ``(n_points, R)`` with a min-max band over replicas."""
    values = np.asarray(values, dtype=float)
    mean = np.nanmean(values, axis=1)
    ax.plot(x, mean, color=color, label=label, lw=1.4)
    if values.shape[1] > 1:
        ax.fill_between(x, np.nanmin(values, axis=1), np.nanmax(values, axis=1),
                        color=color, alpha=alpha, lw=0)


def accuracy_axes(ax, xlabel: str = "iterations", ylabel: str | None = None,
                  ylim: tuple[float, float] | None = (0.35, 1.02), chance: float = 0.5) -> None:
    """Dress a panel of accuracy against training steps: a dashed grey line at ``chance``, the x
    label, the y range (None: left alone) and, if given, the y label."""
    ax.axhline(chance, color=COLORS["grey"], ls="--", lw=0.8)
    ax.set_xlabel(xlabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if ylabel is not None:
        ax.set_ylabel(ylabel)


def log_n_axis(ax, ns) -> None:
    """A log x axis over the sizes ``ns`` with plain-number ticks at 2, 5, 10, 20, ... inside
    their range (at the smallest and largest n when fewer than two of those fall inside)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    if len(ns) == 0:
        raise ValueError("ns must hold at least one size")
    ax.set_xscale("log")
    nice = [t for t in (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if min(ns) <= t <= max(ns)]
    ax.xaxis.set_major_locator(FixedLocator(nice if len(nice) >= 2 else sorted({min(ns), max(ns)})))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def integer_ticks(ax, axis: str = "x") -> None:
    """Put major ticks of ``axis`` ("x", "y" or "both") at integers only (for d, k, n axes)."""
    if axis not in ("x", "y", "both"):
        raise ValueError(f"axis must be 'x', 'y' or 'both', got {axis!r}")
    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"{name}axis").set_major_locator(MaxNLocator(integer=True))


def note(ax, text: str, loc: str = "upper right", color: str = "#333333") -> None:
    """A boxed note inside a panel (e.g. where a measured series disagrees with a line)."""
    corners = {"upper right": (0.98, 0.97, "right", "top"), "upper left": (0.02, 0.97, "left", "top"),
               "lower right": (0.98, 0.03, "right", "bottom"), "lower left": (0.02, 0.03, "left", "bottom")}
    if loc not in corners:
        raise ValueError(f"loc must be one of {tuple(corners)}, got {loc!r}")
    x, y, ha, va = corners[loc]
    ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=MIN_FONT_PT, color=color,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#bbbbbb", "alpha": 0.9})


def displayed_min_font_pt(fig) -> float:
    """The smallest text size of ``fig`` in points as the report shows it (scaled down when the
    saved figure is wider than :data:`REPORT_WIDTH_PX`). Draws the figure to measure it."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    bbox = fig.get_tightbbox(renderer)
    width_px = bbox.width * fig.dpi
    scale = min(1.0, REPORT_WIDTH_PX / width_px)
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text().strip() and t.get_window_extent(renderer).width > 0]
    return float(min(sizes) * scale) if sizes else float("inf")


def close(fig) -> None:
    plt.close(fig)
