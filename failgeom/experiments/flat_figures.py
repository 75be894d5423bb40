"""Figures and one-line summaries of the Sec. 5 learners (paper Figure 7).

:func:`figure` draws one learner's result (Figure 7 panels and the held-out MSE during training),
:func:`figure7` the paper's Figure 7 from the four learners' results, with a note where the
measurement disagrees with the paper (the multiclass boundaries).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..results import Result

#: the learners in Figure 7's order (as in :data:`failgeom.experiments.flat.LEARNERS`)
ORDER = ("smooth", "e2e", "multiclass", "forward-only")
LEGEND_PT = 8


def learner_keys(result: Result) -> list[str]:
    """The result's learner runs (``"forward-only"``, ``"smooth (bias zero)"``, ...)."""
    return [k for k in result.metrics if k != "problem"]


def _panel(ax, plot: dict, title: str) -> None:
    from .. import plotting

    ax.plot(plot["fine_r"], plot["u"], color=plotting.COLORS["green"], ls="--", lw=1.2, label="u(r)")
    if "u_smooth" in plot:
        ax.plot(plot["fine_r"], plot["u_smooth"], color=plotting.COLORS["grey"], lw=1.0,
                label="sigmoid approx.")
    ax.plot(plot["r"], plot["output"], ".", ms=1.5, color=plotting.COLORS["red"], label="learned")
    u = np.asarray(plot["u"])
    pad = 0.1 * max(u.max() - u.min(), 1e-3)
    ax.set_ylim(u.min() - pad, u.max() + pad)
    ax.set_xlim(*plot["window"])
    ax.set_title(title)
    ax.set_xlabel(r"$r = v^{*\top} x + b^*$")


def _boundary_panel(ax, boundary: dict) -> None:
    from .. import plotting

    ax.axvline(boundary["z"], color=plotting.COLORS["green"], ls="--", lw=1.2, label="jump of u")
    ax.plot(boundary["r"], boundary["output"], ".", ms=2.5, color=plotting.COLORS["red"], label="predicted step")
    ax.set_xlim(*boundary["window"])
    ax.set_title("multiclass: boundary zoom")
    ax.set_xlabel(r"$r$")
    ax.legend(loc="upper left", fontsize=LEGEND_PT, markerscale=3)


def multiclass_note(by_kind: dict) -> str:
    """The measured sharpness of the multiclass boundaries against forward-only (and end-to-end
    when given), next to the paper's "blurry class boundaries".

    The blur counts as "only slightly" more than forward-only's when the multiclass exact-step
    fraction is within one percentage point of forward-only's and its boundary error is below
    half of end-to-end's.
    """
    mc, fo = by_kind["multiclass"].metrics["multiclass"], by_kind["forward-only"].metrics["forward-only"]
    e2e = by_kind["e2e"].metrics["e2e"] if "e2e" in by_kind else None
    err = {"multiclass": mc["boundary_error_rate"]["mean"], "forward-only": fo["boundary_error_rate"]["mean"]}
    if e2e is not None:
        err["end-to-end"] = e2e["boundary_error_rate"]["mean"]
    err = {name: value for name, value in err.items() if value is not None}  # None: no point near a jump
    exact_mc, exact_fo = mc["exact_step_fraction"]["mean"], fo["exact_step_fraction"]["mean"]
    sharper = ("multiclass" in err and "end-to-end" in err and err["multiclass"] < 0.5 * err["end-to-end"])
    slight = exact_mc >= exact_fo - 0.01 and (e2e is None or sharper)
    verdict = ("multiclass only slightly blurrier than forward-only\n(paper: blurry class boundaries)" if slight
               else "multiclass blurry, as the paper says")
    errors = ", ".join(f"{name} {100 * value:.1f}%" for name, value in err.items())
    return (f"measured: exact step {exact_mc:.3f} vs forward-only {exact_fo:.3f};\n"
            f"boundary error {errors};\n{verdict}")


def figure(result: Result):
    """One experiment's part of Figure 7: learned output (red) against u(r) (dashed green) vs r
    for replica 0, and the held-out MSE during training (band: min-max over replicas)."""
    from matplotlib.ticker import MaxNLocator

    from .. import plotting

    keys = learner_keys(result)
    plots = result.curves["figure"]
    boundary = next((plots[k]["boundary"] for k in keys if "boundary" in plots[k]), None)
    fig, axes = plotting.figure(1, len(keys) + (boundary is not None) + 1, width=3.3, height=2.9)
    axes = axes[0]
    for ax, key in zip(axes, keys):
        _panel(ax, plots[key], key)
    if boundary is not None:
        _boundary_panel(axes[len(keys)], boundary)
    axes[0].set_ylabel("output")
    axes[0].legend(loc="lower right", fontsize=LEGEND_PT, markerscale=4)
    ax = axes[-1]
    for i, key in enumerate(keys):
        c = result.curves[key]
        color = plotting.CYCLE[i % len(plotting.CYCLE)]
        plotting.band(ax, c["steps"], np.asarray(c["test_mse"]), color, label=key)
        ax.plot(c["steps"], np.asarray(c["test_mse"]), color=color, lw=0.5, alpha=0.5)  # each replica
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    ax.set_xlabel("iterations")
    ax.set_ylabel("held-out MSE (thin: each replica)")
    ax.legend(fontsize=LEGEND_PT)
    fig.suptitle(f"{result.experiment} ({result.seeds['replicas']} seeds; scatter: replica 0)")
    fig.tight_layout()
    return fig


def figure7(results) -> object:
    """The paper's Figure 7 from the four learners' results (any order): one panel per learner
    (every smooth bias initialisation) plus the multiclass boundary zoom."""
    from .. import plotting

    panels, boundary = [], None
    by_kind = {res.experiment.removeprefix("flat-"): res for res in results}
    for kind in ORDER:
        res = by_kind.get(kind)
        if res is None:
            continue
        for key in learner_keys(res):
            panels.append((key, res.curves["figure"][key]))
            boundary = res.curves["figure"][key].get("boundary", boundary)
    if not panels:
        raise ValueError("results must hold at least one flat-* learner result")
    n = len(panels) + (boundary is not None)
    ncols = min(n, 3)
    fig, axes = plotting.figure(math.ceil(n / ncols), ncols, width=3.3, height=2.9)
    flat_axes = list(axes.flat)
    for ax, (key, plot) in zip(flat_axes, panels):
        _panel(ax, plot, key)
    if boundary is not None:
        ax = flat_axes[len(panels)]
        _boundary_panel(ax, boundary)
        note = multiclass_note(by_kind) if "multiclass" in by_kind and "forward-only" in by_kind else None
    else:
        note = None
    for ax in flat_axes[n:]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("output")
    flat_axes[0].legend(loc="lower right", fontsize=LEGEND_PT, markerscale=4)
    seeds = {res.seeds["replicas"] for res in results}
    fig.suptitle("Figure 7: learned output (red) vs u(r) (dashed green), zoomed around the mean of r "
                 f"(replica 0 of {'/'.join(map(str, sorted(seeds)))})")
    if note:  # below the panels, where it hides no data
        fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1))  # half an inch for three lines
        fig.text(0.01, 0.005, note.replace(";\n", "; ", 1), ha="left", va="bottom", fontsize=LEGEND_PT)
    else:
        fig.tight_layout()
    return fig


def figure7_from_dir(folder) -> object:
    """Figure 7 from ``folder/flat-*/result.json`` (as written by ``failgeom run``)."""
    found = [Result.load(p) for p in sorted(Path(folder).glob("flat-*/result.json"))
             if p.parent.name in {f"flat-{k}" for k in ORDER}]
    return figure7(found)


def summary(result: Result) -> str:
    """Per learner: test MSE, exact-step fraction, boundary error rate, update cost."""
    parts = [f"steps in grid {sorted(set(result.metrics['problem']['n_steps']))}"]
    for key in learner_keys(result):
        m, t = result.metrics[key], result.timing.get(key, {})
        boundary = m["boundary_error_rate"]["mean"]
        text = (f"{key}: MSE {m['test_mse']['mean']:.3g} ± {m['test_mse']['std']:.2g}, "
                f"exact step {m['exact_step_fraction']['mean']:.3f}, "
                f"boundary error {'n/a' if boundary is None else f'{boundary:.3f}'}")
        if "counted_work" in m:
            text += f", {m['counted_work']['per_training_step']:,} operations per training step"
        if "update_ms_per_replica_step" in t:  # measured times, information only
            text += (f" (measured: update {t['update_ms_per_replica_step']:.3f} ms/replica-step, "
                     f"test {1e3 * t['test_s_per_10k_predictions']:.2f} ms/10k)")
        parts.append(text)
    return "; ".join(parts)
