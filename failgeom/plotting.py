"""Shared matplotlib style: the Agg backend (no display needed) and a band-over-replicas helper."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: colours used across figures: end-to-end red, decomposition blue (as the paper's Figure 3)
COLORS = {"red": "#c0392b", "blue": "#2e6fba", "green": "#2a9d55", "grey": "#7f7f7f"}
CYCLE = ["#2e6fba", "#c0392b", "#2a9d55", "#8e44ad", "#d4871c", "#555555"]

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
    "legend.frameon": False,
}


def figure(nrows: int = 1, ncols: int = 1, width: float = 4.0, height: float = 3.0, **kwargs):
    """A figure with the project's style and ``nrows x ncols`` panels of the given size."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                                 squeeze=False, **kwargs)
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


def close(fig) -> None:
    plt.close(fig)
