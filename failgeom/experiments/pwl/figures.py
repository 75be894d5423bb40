"""Figure 6 from PWL results: held-out curves and their decodings, where the decodings err, and
what they keep of the kinks; one learner per figure, or the four learners in one.

A decoding ``W p_hat`` sums the predicted kink vector twice, which smooths its errors: a learner
that misses the kinks can still draw a curve close to f. So each learner's figure shows, below
the decodings, the decoding error ``W p_hat - f`` with the kinks marked, and the second
differences ``U f`` (= p, blue) and ``U W p_hat`` (= p_hat, red) of one curve: the claim "misses
the kinks" is about those. Curves with continuous kinks (the autoencoder's data) have no kink
vector, and the second difference of a reconstruction is dominated by its grid-scale noise, so
there the last row zooms on the sharpest kink instead.
"""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ...results import Result
from ...theory.pwl import pwl_inverse_apply
from .specs import LEARNERS, SPECS

LEGEND = 8  # points: legible at the size the report shows the figures
TITLE = 9

_METRIC_LABELS = {"filter_error": "filter error ||K - (1,-2,1)||", "u_max_error": "max |U_hat - U|",
                  "u_reachable_max_error": "max |U_hat - U Pi| (reachable U)", "recon_rmse": "RMSE, all points"}
_SHORT_LABELS = {"filter_error": "filter error", "u_max_error": "max |U_hat - U|",
                 "u_reachable_max_error": "max |U_hat - U Pi|", "recon_rmse": "RMSE, all points"}


def _iterations_axis(ax) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"))
    ax.set_xlabel("iterations")


def _name(result: Result) -> str:
    return result.experiment.removeprefix("pwl-")


def _snapshots(result: Result):
    snaps = result.curves["snapshots"]
    return np.asarray(snaps["curves"], dtype=float), list(snaps["steps"]), np.asarray(snaps["decodings"], dtype=float)


def _bends(f_row: np.ndarray) -> np.ndarray:
    """Where a curve bends: ``(U f)[j] != 0`` bends f at ``x = j - 1``."""
    d2 = pwl_inverse_apply(f_row)
    return np.flatnonzero(np.abs(d2) > 1e-9 * max(np.abs(d2).max(), 1e-300)) - 1


def _decodings(ax, f, dec, title, red_label, legend=True, nbins=5):
    from ... import plotting

    x = np.arange(f.shape[1])
    for i in range(f.shape[0]):
        ax.plot(x, f[i], color=plotting.COLORS["blue"], lw=1.4, label="curve f" if i == 0 else None)
        ax.plot(x, dec[i], color=plotting.COLORS["red"], lw=1.1, ls="--", label=red_label if i == 0 else None)
    lo, hi = f.min(), f.max()
    pad = 0.25 * (hi - lo + 1e-9)
    ax.set_ylim(lo - pad, hi + pad)  # a diverging decoding must not hide the curve
    ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True))
    ax.set_title(title, fontsize=TITLE)
    if legend:
        ax.legend(fontsize=LEGEND, loc="upper left")


def _residuals(ax, f, dec, title, scale):
    from ... import plotting

    x = np.arange(f.shape[1])
    for i in range(f.shape[0]):
        for b in _bends(f[i]):
            ax.axvline(b, color=plotting.COLORS["grey"], lw=0.7, ls=":")
        ax.plot(x, dec[i] - f[i], color=plotting.CYCLE[i], lw=1.1, label=f"curve {i + 1}")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylim(-scale, scale)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.set_title(title, fontsize=TITLE)


def _second_differences(ax, f_row, dec_row, title, legend=True, nbins=5):
    from ... import plotting

    x = np.arange(f_row.size)
    true, est = pwl_inverse_apply(f_row), pwl_inverse_apply(dec_row)
    ax.vlines(x, 0, true, color=plotting.COLORS["blue"], lw=2.0, label="U f (= p)")
    ax.plot(x, est, ".-", color=plotting.COLORS["red"], lw=0.9, ms=3, label="U (decoding)")
    top = 1.3 * max(np.abs(true).max(), 1e-9)
    ax.set_ylim(-top, top)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True))
    ax.set_title(title, fontsize=TITLE)
    if legend:
        ax.legend(fontsize=LEGEND, loc="lower left")


def _zoom(ax, f_row, dec_row, title, red_label, legend=True, half_width=8):
    """Curve 1 and its reconstruction around its sharpest kink (curves with continuous kinks,
    whose second differences are dominated by the reconstruction's grid-scale noise)."""
    from ... import plotting

    d2 = np.abs(pwl_inverse_apply(f_row))
    centre = int(np.argmax(d2)) - 1
    lo, hi = max(centre - half_width, 0), min(centre + half_width + 1, f_row.size)
    x = np.arange(lo, hi)
    ax.plot(x, f_row[lo:hi], "o-", color=plotting.COLORS["blue"], lw=1.4, ms=3, label="curve f")
    ax.plot(x, dec_row[lo:hi], "s--", color=plotting.COLORS["red"], lw=1.1, ms=3, label=red_label)
    span = f_row[lo:hi].max() - f_row[lo:hi].min() + 1e-9
    ax.set_ylim(f_row[lo:hi].min() - 0.3 * span, f_row[lo:hi].max() + 0.3 * span)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.set_title(title, fontsize=TITLE)
    if legend:
        ax.legend(fontsize=LEGEND, loc="best")


def _metric_panel(ax, result: Result, title=True, legend_ax=None, legend=True):
    from ... import plotting

    c = result.curves["validation"]
    name = _name(result)
    key = next(k for k in ("filter_error", "u_reachable_max_error", "u_max_error", "recon_rmse") if k in c)
    steps = np.asarray(c["steps"])
    what = "RMSE" if name == "autoencoder" else "decoding RMSE"
    series = [(key, plotting.COLORS["green"], _METRIC_LABELS[key]),
              ("recon_rmse_near_kinks", plotting.COLORS["red"], f"{what}, within 1 of a kink"),
              ("recon_rmse_away", plotting.COLORS["blue"], f"{what}, elsewhere")]
    for k, color, label in series:
        plotting.band(ax, steps[1:], np.asarray(c[k], dtype=float)[1:], color, label=label)
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    if hi / lo < 30:  # less than about a decade and a half: label 1, 2, 5 x 10^k
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    _iterations_axis(ax)
    if title:
        ax.set_title(f"validation ({result.seeds['replicas']} seeds, band min-max)", fontsize=TITLE)
    if not legend:
        ax.set_title(f"green: {_SHORT_LABELS[key]}", fontsize=TITLE)
    elif legend_ax is None:
        ax.legend(fontsize=LEGEND, loc="best")
    else:  # an empty panel holds the legend, so it covers no data
        legend_ax.legend(*ax.get_legend_handles_labels(), fontsize=LEGEND, loc="upper left",
                         title="validation panel (top right)", title_fontsize=LEGEND)
        legend_ax.set_axis_off()


def _kink_share_panel(ax, result: Result):
    from ... import plotting

    c = result.curves["validation"]
    ax.set_title("share of each kink kept (validation)", fontsize=TITLE)
    if "kink_amplitude_ratio" not in c:
        ax.text(0.5, 0.5, "kinks off the grid:\nno kink vector", ha="center", va="center",
                transform=ax.transAxes, fontsize=LEGEND)
        ax.set_axis_off()
        return
    steps = np.asarray(c["steps"])
    plotting.band(ax, steps[1:], np.asarray(c["kink_amplitude_ratio"], dtype=float)[1:], plotting.COLORS["red"],
                  label="sum p_hat a / sum a^2 at the kinks")
    ax.axhline(1.0, color=plotting.COLORS["grey"], lw=0.8, ls="--", label="all of each kink")
    ax.set_ylim(-0.1, 2.0)
    ax.set_yticks([0.0, 0.5, 1.0])
    _iterations_axis(ax)
    ax.legend(fontsize=LEGEND, loc="upper center")


def _note(result: Result) -> str:
    """One line of what the last evaluation measured (mean over seeds)."""
    m = result.metrics
    parts = []
    if "kink_amplitude_ratio" in m:
        parts.append(f"the decodings keep {100 * m['kink_amplitude_ratio']['mean']:.0f}% of each kink")
    parts.append(f"RMSE within 1 of a kink {m['recon_rmse_near_kinks']['mean']:.3g}, "
                 f"elsewhere {m['recon_rmse_away']['mean']:.3g}")
    if "filter_error" in m:
        parts.append(f"filter error {m['filter_error']['mean']:.2g}")
    cond = m.get("conditioning", {})
    if "hessian_condition_number" in cond:
        parts.append(f"cond of the Hessian {cond['hessian_condition_number']:.3g} "
                     f"({cond['jacobi_condition_number']:.3g} after the best diagonal rescaling)")
    steps = result.curves["validation"]["steps"][-1]
    return f"At {steps:,} iterations: " + "; ".join(parts) + "."


def figure(result: Result):
    """One learner's Figure 6, three rows at the preset's snapshot iterations: two held-out curves
    (blue) and their decodings (red); the decoding errors with the kinks marked (dotted); the
    second differences of curve 1 and of its decoding. Last column: validation metrics."""
    from ... import plotting

    f, steps, dec = _snapshots(result)
    name = _name(result)
    ncols = len(steps) + 1
    fig, axes = plotting.figure(3, ncols, width=2.6, height=2.1)
    red = "reconstruction" if name == "autoencoder" else "decoding W p_hat"
    err = dec - f[None]
    scale = 1.1 * max(float(np.nanmax(np.abs(err[-1]))), 0.05 * float(np.abs(f).max()), 1e-9)
    grid_kinks = "kink_amplitude_ratio" in result.metrics
    for j, step in enumerate(steps):
        _decodings(axes[0, j], f, dec[j], f"{step:,} iterations", red, legend=j == 0)
        _residuals(axes[1, j], f, dec[j], f"{red} - f", scale)
        if grid_kinks:
            _second_differences(axes[2, j], f[0], dec[j, 0], "second differences, curve 1", legend=j == 0)
        else:
            _zoom(axes[2, j], f[0], dec[j, 0], "curve 1 at its sharpest kink", red, legend=j == 0)
    axes[1, 0].legend(fontsize=LEGEND, loc="lower left")
    _metric_panel(axes[0, -1], result, legend_ax=axes[2, -1])
    _kink_share_panel(axes[1, -1], result)
    cfg = result.config
    adam = (f", beta2 {cfg['adam_beta2']:g}, eps {cfg['adam_eps']:g}" if cfg["optimizer"] == "adam" else "")
    fig.suptitle(f"Figure 6, {SPECS[name].title}: n={cfg['n']}, {result.metrics['data_distribution']} data, "
                 f"{cfg['optimizer']} lr={result.metrics['lr']:.3g}{adam}, batch {cfg['batch']}",
                 y=1.01, fontsize=10)
    fig.tight_layout()
    fig.text(0.5, -0.01, _note(result), ha="center", va="top", fontsize=LEGEND, wrap=True)
    return fig


def combined_figure(results: dict):
    """Figure 6 with one row per learner (``results``: learner name -> Result): decodings at the
    three snapshots, the second differences at the last one, and the validation metrics."""
    from ... import plotting

    order = [n for n in LEARNERS if n in results]
    nsnap = max(len(results[n].curves["snapshots"]["steps"]) for n in order)
    fig, axes = plotting.figure(len(order), nsnap + 2, width=2.15, height=1.95)
    for row, name in zip(axes, order):
        f, steps, dec = _snapshots(results[name])
        red = "reconstruction" if name == "autoencoder" else "decoding"
        for j, step in enumerate(steps):
            _decodings(row[j], f, dec[j], f"{name}: {step:,} it.", red, legend=j == 0, nbins=3)
        for ax in row[len(steps):nsnap]:
            ax.set_axis_off()
        if "kink_amplitude_ratio" in results[name].metrics:
            _second_differences(row[nsnap], f[0], dec[-1, 0], f"{name}: U(.) at {steps[-1]:,} it.",
                                legend=name == order[0], nbins=3)
        else:
            _zoom(row[nsnap], f[0], dec[-1, 0], f"{name}: a kink at {steps[-1]:,} it.", red)
        _metric_panel(row[nsnap + 1], results[name], legend=False)
    from matplotlib.lines import Line2D

    C = plotting.COLORS
    handles = [Line2D([], [], color=C["green"], label="the row's error metric (panel title)"),
               Line2D([], [], color=C["red"], label="decoding RMSE within 1 of a kink"),
               Line2D([], [], color=C["blue"], label="decoding RMSE elsewhere")]
    fig.suptitle("Figure 6: held-out curves (blue) and their decodings (red); last column: validation, "
                 "band min-max over seeds", y=1.0, fontsize=10)
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=LEGEND)
    return fig


def summary(result: Result) -> str:
    """The one-line outcome the CLI prints."""
    m = result.metrics
    parts = [f"val loss {m['val_loss']['mean']:.3g}",
             f"recon RMSE {m['recon_rmse']['mean']:.3g} (near kinks {m['recon_rmse_near_kinks']['mean']:.3g})"]
    if "filter_error" in m:
        parts.append(f"filter error {m['filter_error']['mean']:.2e}")
    if "u_max_error" in m:
        parts.append(f"max|U_hat-U| {m['u_max_error']['mean']:.3g}")
    if "kink_amplitude_ratio" in m:
        parts.append(f"kink amplitude kept {m['kink_amplitude_ratio']['mean']:.3g}")
    return "; ".join(parts)


__all__ = ["combined_figure", "figure", "summary"]
