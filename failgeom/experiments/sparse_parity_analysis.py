"""The analysis of :mod:`.sparse_parity`'s cells and its figure: samples to learn per cell as
right-censored times (Kaplan-Meier medians, :mod:`failgeom.stats`), local slopes over windows of
n, the tail per protocol, differences between k, and the one-line summary.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..results import Result
from ..stats import (bootstrap_quantiles, group_quantile, kaplan_meier_quantile, log_slopes, percentile_interval,
                     windowed_slopes)

PROTOCOL_TEXT = {
    "fixed": "lr fixed",
    "scaled": "lr ~ 1/n",
    "best": "best lr of a grid",
    "batch": "small batch, same lr per sample",
}


def cell_samples(out: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(samples, observed, groups)`` of a sparse cell: samples (steps x batch) to learn per
    replica, or for a replica not learned the samples seen when its run stopped (right-censored)."""
    steps = np.array([out["steps_run"] if s is None else s for s in out["steps"]], dtype=np.float64)
    observed = np.array([s is not None for s in out["steps"]])
    groups = np.asarray(out.get("groups", [0] * len(out["steps"])))
    return steps * out["batch"], observed, groups


def opt(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def censored_series(outs: list[dict], protocol: str, k: int, rng: np.random.Generator, resamples: int,
                    window: int, protocols: int) -> tuple[dict, np.ndarray]:
    """One protocol's row for one k from its cells ``outs`` (increasing n): Kaplan-Meier median
    samples and quartiles, the best learning rate of a grid, local slopes over ``window``
    consecutive n with bootstrap intervals (``resamples`` from ``rng``), the tail (the last window
    with every median observed; its ``ci_joint`` at the Bonferroni level over ``protocols``), and
    the hidden-progress counts. Returns the row and the bootstrap medians ``(resamples, len(ns))``."""
    ns = [o["n"] for o in outs]
    boot: Any
    point, boot, quartiles, best_lr, hidden = [], [], [], [], []
    for o in outs:
        t, e, g = cell_samples(o)
        point.append(group_quantile(t, e, 0.5, g))
        boot.append(bootstrap_quantiles(t, e, rng, resamples, 0.5, g))
        lrs = np.asarray(o["lr"])
        meds = [kaplan_meier_quantile(t[g == j], e[g == j]) for j in np.unique(g)]
        best_lr.append(float(lrs[g == np.unique(g)[int(np.argmin(meds))]][0]) if np.isfinite(min(meds)) else None)
        quartiles.append([opt(kaplan_meier_quantile(t, e, q)) for q in (0.25, 0.75)])
        learned = [(p, s) for p, s in zip(o["progress_steps"], o["steps"]) if s is not None]
        moved = [p for p, s in learned if p is not None]
        hidden.append({"learned": len(learned), "progress_seen": len(moved),
                       "progress_before_learning": sum(p < s for p, s in learned if p is not None),
                       "median_progress_over_learn": float(np.median([p / s for p, s in learned if p is not None]))
                       if moved else None})
    boot = np.stack(boot, axis=1)
    windows = windowed_slopes(ns, point, boot, window)
    fitted = [w for w in windows if w["slope"] is not None]
    if fitted:  # the tail's interval at the Bonferroni level over the protocols, for the verdict
        j = ns.index(fitted[-1]["ns"][0])
        level = 1.0 - 0.05 / protocols
        sl = slice(j, j + window)
        fitted[-1] = {**fitted[-1], "joint_level": level,
                      "ci_joint": percentile_interval(log_slopes(ns[sl], boot[:, sl]), level)}
    row = {"protocol": protocol, "k": k, "ns": ns, "batch": outs[0]["batch"],
           "lr": [float(np.median(o["lr"])) for o in outs], "best_lr": best_lr if protocol == "best" else None,
           "lr_grid_edge": ([v is not None and v in (min(outs[0]["lr"]), max(outs[0]["lr"])) for v in best_lr]
                            if protocol == "best" else None),
           "converged": [len(o["steps"]) - o["censored"] for o in outs], "total": [len(o["steps"]) for o in outs],
           "diverged": [o.get("diverged", 0) for o in outs],
           "stopped_at_steps": [o["steps_run"] for o in outs], "max_steps": outs[0]["max_steps"],
           "median_samples": [opt(v) for v in point], "quartiles_samples": quartiles,
           "windows": windows, "tail": fitted[-1] if fitted else None, "hidden_progress": hidden}
    return row, boot


def k_difference(rows: dict, boots: dict, protocol: str, k1: int, k2: int, window: int) -> dict | None:
    """The slope of k2 minus that of k1 under ``protocol`` over the last window of shared n where
    both medians are observed, with a bootstrap interval (independent runs)."""
    r1, r2 = rows[(protocol, k1)], rows[(protocol, k2)]
    shared = [n for n in r1["ns"] if n in r2["ns"]]
    w = window
    for j in range(len(shared) - w, -1, -1):
        ns = shared[j:j + w]
        i1 = [r1["ns"].index(n) for n in ns]
        i2 = [r2["ns"].index(n) for n in ns]
        p1 = np.array([r1["median_samples"][i] for i in i1], dtype=object)
        p2 = np.array([r2["median_samples"][i] for i in i2], dtype=object)
        if any(v is None for v in (*p1, *p2)):
            continue
        s1, s2 = log_slopes(ns, p1.astype(float)), log_slopes(ns, p2.astype(float))
        b = log_slopes(ns, boots[(protocol, k2)][:, i2]) - log_slopes(ns, boots[(protocol, k1)][:, i1])
        return {"protocol": protocol, "k_low": k1, "k_high": k2, "ns": ns, "difference": float(s2 - s1),
                "ci": percentile_interval(b)}
    return None


# ---------------------------------------------------------------------------------------------
# figure and summary

MARKERS = {"fixed": "o", "scaled": "s", "best": "^", "batch": "D"}
LINESTYLES = {"fixed": "-", "scaled": "--", "best": "-.", "batch": ":"}


def figure(result: Result):
    """(a) Kaplan-Meier median samples to learn vs n, per k and protocol, with GF(2)'s and the
    dense column; (b) local slopes per window of n with 95% bootstrap intervals against k - 1;
    (c) hidden progress: the support ratio of the first layer and the accuracy along training."""
    from .. import plotting

    fig, axes = plotting.figure(1, 3, width=3.6, height=3.4)
    ax, bx, cx = axes[0]
    protocols = result.config["protocols"]
    all_ns = set()
    for j, row in enumerate(result.metrics["table"]):
        k, col = row["k"], plotting.CYCLE[j]
        for p in protocols:
            m = result.metrics[f"{p} k={k}"]
            ns = np.asarray(m["ns"], dtype=float)
            all_ns |= set(m["ns"])
            med = np.array([np.nan if v is None else v for v in m["median_samples"]])
            ax.plot(ns, med, LINESTYLES[p], marker=MARKERS[p], color=col, ms=3, lw=1,
                    label=f"k={k} {PROTOCOL_TEXT[p]}" if j == 0 or p == protocols[0] else None)
            for w in m["windows"]:
                if w["slope"] is None:
                    continue
                x = float(np.exp(np.mean(np.log(w["ns"])))) * (1 + 0.04 * protocols.index(p))
                lo, hi = (w["slope"] if v is None else v for v in w["ci"])
                bx.errorbar([x], [w["slope"]], yerr=[[max(w["slope"] - lo, 0.0)], [max(hi - w["slope"], 0.0)]], fmt=MARKERS[p],
                            color=col, ms=3, capsize=2, lw=0.8)
        bx.axhline(row["prediction"], color=col, ls="--", lw=0.8, label=f"k={k}: k-1 = {row['prediction']}")
    if "dense" in result.metrics:
        d = result.metrics["dense"]
        ns = np.asarray(d["ns"], dtype=float)
        batch = result.config["batch"]
        med = np.array([d["max_steps"] if v is None else v for v in d["median_steps"]], dtype=float) * batch
        censored = np.array([v is None for v in d["median_steps"]])
        all_ns |= set(d["ns"])
        ax.plot(ns, med, "-", color=plotting.COLORS["grey"], lw=1)
        ax.plot(ns[~censored], med[~censored], "s", color=plotting.COLORS["grey"], ms=4, label="dense k=n/2")
        ax.plot(ns[censored], med[censored], "^", color=plotting.COLORS["grey"], ms=6,
                label="dense: median not reached (limit)")
    g = result.metrics["gf2"]
    ax.plot(g["ns"], g["median_samples_needed"], "k.-", ms=4, lw=1, label="GF(2) elimination")
    ax.set_yscale("log")
    ax.set_xlabel("n (bits)")
    ax.set_ylabel(f"median samples to accuracy {result.config['target_accuracy']:g}")
    ax.set_title("Kaplan-Meier median of steps x batch", fontsize=7.5)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0.0, -0.2), frameon=False)
    bx.set_xlabel("n (window centre)")
    bx.set_ylabel("local slope d log samples / d log n")
    bx.set_title(f"windows of {result.config['slope_window']} n, 95% bootstrap; markers: protocols", fontsize=7.5)
    bx.legend(fontsize=6)
    for a in (ax, bx):
        plotting.log_n_axis(a, sorted(all_ns))
    name = next((c for c in result.curves if c.startswith("k=")), None)
    if name is not None:
        c = result.curves[name]
        steps = np.asarray(c["steps"], dtype=float)
        plotting.band(cx, steps, np.asarray(c["accuracy"]), plotting.CYCLE[0], label="accuracy")
        tx = cx.twinx()
        plotting.band(tx, steps, np.asarray(c["support_ratio"]), plotting.CYCLE[1], label="support / off-support |W1|")
        tx.axhline(result.config["progress_ratio"], color=plotting.CYCLE[1], ls=":", lw=0.8)
        tx.set_ylabel("mean |W1| on support / off support")
        tx.legend(fontsize=6, loc="center right")
        cx.set_title(f"{name}: hidden progress, band min-max", fontsize=7.5)
    plotting.accuracy_axes(cx, "SGD step", f"accuracy ({result.config['curve_size']} fresh inputs)", ylim=None)
    cx.set_xscale("symlog", linthresh=100, linscale=0.5)
    cx.set_xlim(left=0)
    cx.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def interval_text(ci) -> str:
    """``[lo, hi]`` with ``inf`` for an unbounded end."""
    return "[" + ", ".join(("-inf" if i == 0 else "inf") if v is None else f"{v:.2f}" for i, v in enumerate(ci)) + "]"


def summary(result: Result) -> str:
    parts = []
    for row in result.metrics["table"]:
        texts = []
        for p, info in row["protocols"].items():
            t = info["tail"]
            tail = "no window observed" if t is None else (
                f"{t['slope']:.2f} {interval_text(t['ci'])} at n={t['ns'][0]}-{t['ns'][-1]}")
            texts.append(f"{p} {tail} ({info['converged']}/{info['total']} learned)")
        spread = "" if row["spread"] is None else f", spread {row['spread']:.2f}"
        parts.append(f"k={row['k']} tail slopes of samples vs k-1 = {row['prediction']}: " + "; ".join(texts) + spread)
    if "dense" in result.metrics:
        d = result.metrics["dense"]
        parts.append("dense censored " + ", ".join(f"n={n}: {c}/{d['replicas']}" for n, c in zip(d["ns"], d["censored"])))
    return "; ".join(parts)
