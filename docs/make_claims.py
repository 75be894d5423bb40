"""Regenerate ``docs/claims.md`` and the record blocks of the family pages from the stored records.

    python docs/make_claims.py [--quick-results DIR]

The paper's-scale column applies the registry (``failgeom/claims``) to the stored paper-scale
record ``records/paper`` (``failgeom reproduce --preset paper --out records/paper``); the quick
column to ``records/quick``, the results and ``failgeom verify --quick`` rows of a quick
reproduction. With ``--quick-results DIR`` (a ``failgeom reproduce --preset quick --out DIR``
folder) those are first copied into ``records/quick``. Every family page's block between
``<!-- record: NAME -->`` and ``<!-- /record -->`` is rewritten with experiment NAME's numbers
from ``records/paper`` (its summary, its claims' verdicts and values, its cost, and the further
numbers the page's prose discusses, ``DETAILS``), so a paper-scale number on a page has one source.
``tests/test_claims_page.py`` renders the page and the blocks the same way and fails if a committed one differs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout this script lives in

from failgeom import claims, record  # noqa: E402

PAGE = Path(__file__).resolve().parent / "claims.md"
QUICK_COMMAND = "failgeom reproduce --preset quick"


def render() -> str:
    """The page, from ``records/paper`` and ``records/quick``."""
    paper = record.load()
    quick = record.load(record.QUICK_PATH, preset="quick", figures=False)
    return claims.claims_page(quick.results if quick else {}, quick.verify_rows if quick else None,
                              f"{QUICK_COMMAND}` (stored in `records/quick`", record.paper_verdicts(paper),
                              paper.provenance if paper else {}, "quick") + "\n"


# --------------------------------------------------------------------------------------------
# the numbers a family page's prose discusses, beyond the experiment's one-line summary: each
# function takes the stored Result and returns Markdown lines for its record block


def _g(x, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits (integers with thousands separators)."""
    if x is None:
        return "never"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    return f"{x:.{digits}g}"


def _span(values, digits: int = 3) -> str:
    """``min-max`` of ``values`` (one value when they are all equal)."""
    lo, hi = _g(min(values), digits), _g(max(values), digits)
    return lo if lo == hi else f"{lo} to {hi}" if hi.startswith("-") else f"{lo}-{hi}"


def _pct(fractions) -> str:
    """``min-max`` of ``fractions`` in whole percent."""
    lo, hi = (f"{100 * f:.0f}" for f in (min(fractions), max(fractions)))
    return lo if lo == hi else f"{lo}-{hi}"


def _ci(pair, digits: int = 3) -> str:
    return f"\\[{_g(pair[0], digits)}, {_g(pair[1], digits)}\\]"


def _parity(r) -> list:
    lines = ["", "| d | final accuracy, mean ± std over seeds | min / max | steps to 0.95, per seed | subset sizes |",
             "| --- | --- | --- | --- | --- |"]
    for key, m in r.metrics.items():
        steps = ", ".join("never" if s is None else str(s) for s in m["steps_to_accuracy_0.95"])
        steps = "never" if all(s is None for s in m["steps_to_accuracy_0.95"]) else steps
        lines.append(f"| {key[2:]} | {m['final_accuracy_mean']:.3f} ± {m['final_accuracy_std']:.3f} | "
                     f"{m['final_accuracy_min']:.3f} / {m['final_accuracy_max']:.3f} | {steps} | "
                     f"{', '.join(map(str, m['subset_sizes']))} |")
    last = list(r.metrics)[-1]
    m = r.metrics[last]
    lines += ["", f"At d = {last[2:]}: the seed mean stays within {m['max_abs_deviation_of_seed_mean_from_chance']:.3f} "
              f"of 1/2 at every evaluation; single evaluations of single seeds stray up to "
              f"{m['max_abs_deviation_from_chance']:.3f} from it (best evaluation {m['max_accuracy_over_run']:.3f})."]
    return lines


def _parity_variance(r) -> list:
    f, m = r.metrics["fits"], r.metrics
    dims = r.config["dims"]
    rate = lambda k: f"{f[k]['rate_log2']:+.3f} {_ci(f[k]['ci95_log2'])}"  # noqa: E731
    local = [x / 0.6931471805599453 for x in f["hinge_over_G2"]["local_rates"][-3:]]
    lines = [f"- log2-rates per d ({dims[0]}..{dims[-1]}): Var square {rate('square')}, hinge {rate('hinge')}, "
             f"bound {rate('bound')}, G^2 {rate('G2')}; normalised by G^2: {rate('square_over_G2')} (square), "
             f"{rate('hinge_over_G2')} (hinge), local rates over the last three steps of d: square "
             f"{f['square_over_G2']['local_rates'][-1] / 0.6931471805599453:.2f}, hinge {_span(local, 2)}",
             f"- at d = {dims[-1]}: mean Var {m['square']['variance_mean_per_d'][-1]:.3g} (square), "
             f"{m['hinge']['variance_mean_per_d'][-1]:.3g} (hinge); square Var / bound "
             f"{m['square']['ratio_to_bound_mean_per_d'][-1]:.5f}; every (loss, d, seed) point below the bound: "
             f"{m['square']['all_below_bound'] and m['hinge']['all_below_bound']}"]
    for d in r.config["train_dims"]:
        t, c = m[f"train_d={d}"], r.curves[f"train_d={d}"]
        final_acc = c["accuracy"][-1]
        final_hinge = [v / b for v, b in zip(c["variance_hinge"][-1], c["bound"][-1])]
        lines.append(f"- training d = {d} ({r.config['train_steps']:,} SGD steps): final accuracy "
                     f"{_span(final_acc)} (mean {t['final_accuracy_mean']:.3f}); hinge Var / bound at the end "
                     f"{_span(final_hinge, 2)} (lowest along training {t['ratio_hinge_min']:.3f}); square Var / bound "
                     f"in \\[{t['ratio_square_min']:.4f}, {t['ratio_square_max']:.4f}\\]; bound "
                     f"{t['bound_init_mean']:.2g} -> {t['bound_final_mean']:.3g}")
    return lines


def _landscape(r) -> list:
    m, c = r.metrics, r.curves
    radius = m["predicted_reach_radius"]
    ex, sg = c["exact"], c["sgd"]
    half = r.config["distance_bin"] / 2
    inside = [(n, f) for d, n, f in zip(ex["distance"], ex["count"], ex["fraction_reached"]) if d + half <= radius - 0.1]
    failed = round(sum(n * (1 - f) for n, f in inside))
    beyond = [f for d, f in zip(ex["distance"], ex["fraction_reached"]) if d - half >= radius]
    mid = [f for d, n, f in zip(sg["distance"], sg["count"], sg["fraction_reached"]) if 4 <= d - half and d + half <= 10.5]
    far = [f for d, f in zip(sg["distance"], sg["fraction_reached"]) if d - half >= 10.5]
    return [f"- box \\[-{_g(r.config['extent'])}, {_g(r.config['extent'])}\\]^2, {r.config['steps']:,} steps: "
            f"\\|\\|grad F\\|\\| < 1e-8 on {m['flat_fraction']['grad<1e-8']:.0%} of the box; exact GD: predicted reach "
            f"radius {radius:.3f}, farthest start that arrived {m['exact']['max_start_distance_reached']:.3f}, "
            f"{failed} of {sum(n for n, _ in inside):,} starts within distance "
            f"{_g(max(d for d in ex['distance'] if d + half <= radius - 0.1) + half)} failed, reached from "
            f"{_pct(beyond)}% of the starts in every bin beyond "
            f"{_g(min(d for d in ex['distance'] if d - half >= radius) - half)}; SGD reached from "
            f"{m['sgd']['fraction_reached']:.0%} of its starts, {_pct(mid)}% per bin from "
            f"distance 4 to 10.5 and {_pct(far)}% beyond (failed runs moved a median "
            f"{m['sgd']['median_movement_of_failed']:.0f})"]


def _periodic_variance(r) -> list:
    f, mc = r.metrics["fits"], r.metrics["mc_agreement"]
    fit = lambda k, kind, d=3: f"{f[k][kind]['rate']:.{d}f} {_ci(f[k][kind]['ci95'])}"  # noqa: E731
    radii, dims = r.config["radii"], r.config["dims"]
    return [f"- \\|w\\| = 1: rate per unit r^2 {fit('vs_r/unit', 'per_r2')} over r = {_g(radii[0])}..{_g(radii[-1])} "
            f"(local {f['vs_r/unit']['per_r2']['local_rates'][-1]:.2f} at the largest r); \\|w\\| = r: power of r "
            f"{fit('vs_r/matched', 'power', 2)} (local {f['vs_r/matched']['power']['local_rates'][-1]:.2f}); per-d "
            f"rates over d = {dims[0]}..{dims[-1]}: {fit('vs_d/unit/r=4', 'per_d')} (\\|w\\| = 1, r = 4), "
            f"{fit('vs_d/matched/r=4', 'per_d')} (matched, r = 4), {fit('vs_d/matched/r=8', 'per_d')} (matched, r = 8)",
            f"- Monte Carlo ({mc['proposal']} proposal) against the exact values: "
            f"{round(mc['fraction_abs_z_below_3'] * mc['points'])} of {mc['points']} points within 3 standard errors "
            f"(max \\|z\\| {mc['max_abs_z']:.2f})"]


def _snr(r) -> list:
    lines = ["", "| k | approach | tuples | initialisation | SNR \\[95% CI\\] (`<`: unresolved, its upper end) | signal \\[95% CI\\] | noise |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for k in r.config["ks"]:
        for approach in ("end_to_end", "decomposition"):
            for i, e in enumerate(r.metrics[f"k={k}/{approach}"]):
                snr = (f"**{e['snr']:.3g}** {_ci((e['snr_low'], e['snr_high']))}" if e["resolved"]
                       else f"< **{e['upper_bound']:.3g}** (estimate {e['snr']:.2g})")
                lines.append(f"| {k} | {approach.replace('_', '-')} | {r.metrics[f'k={k}/tuples']:,} | {i} | {snr} | "
                             f"{e['signal']:.3g} {_ci((e['signal_low'], e['signal_high']))} | {e['noise']:.4g} |")
    return lines


def _stocks(r) -> list:
    lines = ["", f"Exact expected end-to-end loss after {r.config['steps']:,} Adam steps, per seed (optimum -1), and the "
             f"first evaluation at loss <= {r.config['target_loss']}:", "",
             "| k | end-to-end | decomposition | first at target (e2e / dec) | E\\|\\|g\\_e2e\\|\\|^2 / E\\|\\|g\\_dec\\|\\|^2 at init, exact (measured) |",
             "| --- | --- | --- | --- | --- |"]
    for k in r.config["ks"]:
        m = r.metrics[f"k={k}"]
        losses = [", ".join(f"{x:.3f}" for x in m[a]["final_expected_loss"]) for a in ("end_to_end", "decomposition")]
        steps = [("never" if all(s is None for s in m[a]["steps_to_target"])
                  else _span([s for s in m[a]["steps_to_target"] if s is not None]))
                 for a in ("end_to_end", "decomposition")]
        lines.append(f"| {k} | {losses[0]} | {losses[1]} | {steps[0]} / {steps[1]} | "
                     f"{m['init']['ratio_exact_mean']:.5g} ({m['init']['ratio_measured_mean']:.5g}) |")
    lines.append("")
    for k in r.config["ks"]:
        c = r.curves[f"k={k}"]
        mean = lambda row: sum(row) / len(row)  # noqa: E731
        at = {s: i for i, s in enumerate(c["steps"])}
        e2e = c["expected_loss/end_to_end"]
        ratio = {a: [e / d for e, d in zip(c[f"m2_end_to_end/{a}"][-1], c[f"m2_decomposition/{a}"][-1])]
                 for a in ("end_to_end", "decomposition")}
        lines.append(f"- k = {k}, Adam: mean end-to-end loss {mean(e2e[at[1500]]):.3f} at step 1,500 and "
                     f"{mean(e2e[-1]):.3f} at step {c['steps'][-1]:,}; second-moment ratio at the last step, at the "
                     f"end-to-end run's weights {_span(ratio['end_to_end'], 2)}, at the decomposition run's "
                     f"{_span(ratio['decomposition'], 2)}")
    return lines


def _flat(r) -> list:
    lines = []
    for learner, m in r.metrics.items():
        if learner == "problem":
            continue
        s = lambda k, d=3, m=m: f"{m[k]['mean']:.{d}f} ± {m[k]['std']:.{d}f}"  # noqa: E731
        extra = (f"; weight error {_span(m['weight_error']['values'], 2)}, bias error {_span(m['bias_error']['values'], 2)}"
                 if "weight_error" in m else "")
        lines.append(f"- {learner}, {r.config['steps']:,} iterations, mean ± std over {r.config['replicas']} seeds: "
                     f"exact step {s('exact_step_fraction')} (min {m['exact_step_fraction']['min']:.3f}), boundary error "
                     f"{s('boundary_error_rate')}, interior error {s('interior_error_rate')}, multiply-adds per "
                     f"prediction {m['multiply_adds_per_prediction']:,}{extra}")
    return lines


def _convergence(r) -> list:
    m = r.metrics
    lines = ["", "| T | bound eps(T) | average-iterate error (mean) | mean / bound \\[95% interval\\] | largest replica / bound | last-iterate error (mean) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for i, t in enumerate(m["horizons"]):
        lines.append(f"| {int(t):,} | {m['bound'][i]:.4f} | {m['average_iterate_error_mean'][i]:.4f} | "
                     f"{m['ratio_average_to_bound_mean'][i]:.4f} \\[{m['ratio_average_to_bound_ci95'][0][i]:.4f}, "
                     f"{m['ratio_average_to_bound_ci95'][1][i]:.4f}\\] | {m['ratio_average_to_bound_max_replica'][i]:.3f} | "
                     f"{m['final_error_mean'][i]:.3g} |")
    return lines + ["", f"Largest \\|\\|w\\_T\\|\\| over replicas and horizons {m['max_final_weight_norm']:.4f} "
                        f"(B = {r.config['B']:g}, no projection)."]


def _pwl(r) -> list:
    m = r.metrics
    ms = lambda k: f"{_g(m[k]['mean'])} ({_span([m[k]['min'], m[k]['max']])})"  # noqa: E731
    parts = [f"after {r.config['steps']:,} iterations, mean (min-max) over {r.config['replicas']} seeds"]
    if "filter_error" in m:
        parts.append(f"filter error {ms('filter_error')}")
    if "u_max_error" in m:
        parts.append(f"max\\|U\\_hat - U\\| {_g(m['u_max_error']['mean'], 4)}, max\\|U\\_hat - U Pi\\| {ms('u_reachable_max_error')}")
    if "kink_amplitude_ratio" in m:
        parts.append(f"kink kept {ms('kink_amplitude_ratio')}")
    parts.append(f"decoding RMSE all / near kinks / elsewhere {_g(m['recon_rmse']['mean'])} / "
                 f"{_g(m['recon_rmse_near_kinks']['mean'])} / {_g(m['recon_rmse_away']['mean'])}")
    parts.append(f"near-kink / elsewhere error {ms('kink_error_ratio')}")
    parts.append(f"val loss {ms('val_loss')}")
    if "filter_error" in m:
        parts.append("per seed, filter error / decoding RMSE: " + ", ".join(
            f"{_g(e, 2)} / {_g(x, 2)}" for e, x in zip(m["filter_error"]["per_replica"], m["recon_rmse"]["per_replica"])))
    cond = {k: v for k, v in m.get("conditioning", {}).items() if k.endswith("condition_number")}
    if cond:
        parts.append("conditioning: " + ", ".join(f"{k.replace('_', ' ')} {_span(v) if isinstance(v, list) else _g(v)}"
                                                  for k, v in cond.items()))
    if "filter_error" in m:
        parts.append("first evaluation with filter error below 0.1 / 0.01 / 0.001: " + " / ".join(
            _span(m[f"first_step_filter_error_below_{t}"]) for t in ("0.1", "0.01", "0.001")))
    return ["- " + parts[0] + ": " + "; ".join(parts[1:])]


def _pwl_scaling(r) -> list:
    m = r.metrics
    lines = ["", "| n | measured SGD, plain | exact GD, plain | cond(C) | SGD, conditioned | cond after conditioning |",
             "| --- | --- | --- | --- | --- | --- |"]
    for n, v in m["per_n"].items():
        sgd = _span(v["sgd_plain_iterations"]) if v.get("sgd_plain_iterations") else "–"
        lines.append(f"| {n} | {sgd} | {v['gd_plain_iterations']:,} | {v['window_condition_number']:,.0f} | "
                     f"{_span(v['sgd_precond_iterations'])} | {_span(v['preconditioned_condition_number'])} |")
    f = m["fits"]
    fit = lambda k: f"{f[k]['exponent']:.2f} {_ci(f[k]['ci95'])}"  # noqa: E731
    lines += ["", f"- fitted exponents: measured SGD plain {fit('sgd_plain_iterations')}, cond(C) over the same n "
              f"{fit('window_condition_number_sgd_range')}, exact GD plain {fit('gd_plain_iterations')} (local slopes "
              f"{f['gd_plain_iterations']['local_slopes'][0]:.2f} -> {f['gd_plain_iterations']['local_slopes'][-1]:.2f}), "
              f"cond(C) {fit('window_condition_number')}, SGD conditioned {fit('sgd_precond_iterations')}; measured SGD / "
              f"exact GD {_span(m['sgd_over_gd_plain'], 4)}",
              "- fc learner, Lemma 2 and Theorem 3: " + "; ".join(
                  f"n = {n}: {v['replicas']} replicas, bound {v['theorem3_bound']:,.0f} steps, largest \\|z\\| "
                  f"{v['max_abs_z']:.2f}, spectral error at the last checkpoint inside the bound "
                  f"{v['lemma2_min_error_within_bound']:.2f} (closed form) / {v['sgd_min_error_within_bound']:.2f} (SGD)"
                  for n, v in m["fc_lemma2"].items())]
    return lines


def _staircase(r) -> list:
    lines = ["", "| target | median samples at n = " + ", ".join(map(str, r.metrics["staircase"]["ns"]))
             + " | learned / total | local slopes \\[95%\\] |", "| --- | --- | --- | --- |"]
    for target in ("staircase", "parity"):
        m = r.metrics[target]
        slopes = ", ".join(f"n = {w['ns'][0]}-{w['ns'][-1]}: {w['slope']:.2f} \\[{w['ci'][0]:.2f}, {w['ci'][1]:.2f}\\]"
                           for w in m["windows"])
        lines.append(f"| {target} | {', '.join(f'{x / 1000:.1f}k' for x in m['median_samples'])} | "
                     f"{sum(m['converged'])}/{sum(m['total'])} | {slopes} |")
    return lines


def _sparse(r) -> list:
    lines = ["", "| protocol, k | median samples at n = ... (learned / total) | local slopes \\[95%\\] |",
             "| --- | --- | --- |"]
    for key, m in r.metrics.items():
        if not isinstance(m, dict) or "windows" not in m:
            continue
        medians = ", ".join(f"{n}: " + ("n/o" if x is None else _g(x)) + f" ({c}/{t})"
                            for n, x, c, t in zip(m["ns"], m["median_samples"], m["converged"], m["total"]))
        slopes = ", ".join(f"{w['ns'][0]}-{w['ns'][-1]}: " + ("n/o" if w["slope"] is None else
                           f"{w['slope']:.2f} {_ci(w['ci'])}") for w in m["windows"])
        lines.append(f"| {key} | {medians} | {slopes} |")
    diffs = "; ".join(f"{d['protocol']} k = {d['k_high']} minus k = {d['k_low']} at n = {d['ns'][0]}-{d['ns'][-1]}: "
                      f"{d['difference']:+.2f} {_ci(d['ci'])}" for d in r.metrics["k_differences"])
    return lines + ["", f"Slope differences between k values at equal n \\[95% bootstrap\\]: {diffs}."]


def _sparse_variance(r) -> list:
    m = r.metrics
    ks = [1, 2, 3, 4, 8]
    sq = m["init_square"]
    return [f"- at init, square loss, k = {', '.join(map(str, ks))}: mean Var "
            + ", ".join(_g(sq["variance_mean_per_k"][k - 1], 2) for k in ks) + " against bounds "
            + ", ".join(_g(sq["bound_mean_per_k"][k - 1], 2) for k in ks)
            + f"; Var falls like C(n, k)^{sq['slope_vs_class_size']:.2f} {_ci(sq['slope_ci95'])} for k <= n/2; "
            f"along {m['train']['steps'][-1]:,} SGD steps ({m['train']['loss']}, k = {m['train']['k']}, final accuracy "
            f"{m['train']['final_accuracy_mean']:.2f}): dense-class Var / bound {m['train']['ratio_dense_k_per_step'][0]:.2g} "
            f"at init, {m['train']['ratio_dense_k_per_step'][-1]:.2g} at the end"]


def _gf2(r) -> list:
    lines = []
    for rate, m in r.metrics["noise"].items():
        lines.append(f"rate {rate}: {m['correct']}/{m['trials']} correct (expected "
                     f"{m['expected_correct_fraction'] * m['trials']:.0f}), {m['inconsistent']} inconsistent, "
                     f"{m['rank_deficient']} rank deficient, {m['wrong']} wrong")
    secs = r.timing.get("dense_median_solve_s") or []
    ns = r.curves["ns"]
    t = "; ".join(f"n = {n}: {s * 1e3:.0f} ms" for n, s in zip(ns, secs) if n >= 1000)
    return [f"- label noise, n = {r.config['noise_n']}, n + {r.config['extra']} samples: " + "; ".join(lines)
            + (f"; median dense solve {t}" if t else "")]


#: experiment -> the lines its family page discusses, appended to its record block
DETAILS = {
    "parity": _parity, "parity-variance": _parity_variance, "linear-periodic-landscape": _landscape,
    "linear-periodic-variance": _periodic_variance, "tuple-lines-snr": _snr, "stocks": _stocks,
    "flat-smooth": _flat, "flat-e2e": _flat, "flat-multiclass": _flat, "flat-forward-only": _flat,
    "flat-forward-only-convergence": _convergence, "pwl-fc": _pwl, "pwl-conv": _pwl, "pwl-conv-precond": _pwl,
    "pwl-autoencoder": _pwl, "pwl-scaling": _pwl_scaling, "staircase-parity": _staircase, "sparse-parity": _sparse,
    "sparse-parity-variance": _sparse_variance,
    "parity-gf2": _gf2,
}


BLOCK = re.compile(r"(<!-- record: ([a-z0-9-]+) -->\n)(.*?)(<!-- /record -->)", re.S)
FAMILY_PAGES = ("parity.md", "orthogonal.md", "e2e-vs-decomposition.md", "pwl.md", "flat.md", "sparse-parity.md")


def record_block(name: str, paper=None, verdicts=None) -> str:
    """Markdown for experiment ``name`` at the paper preset, from the stored record."""
    from failgeom.claims.render import esc
    from failgeom.experiments import get

    paper = record.load() if paper is None else paper
    verdicts = record.paper_verdicts(paper) if verdicts is None else verdicts
    experiment = get(name)
    cost = (paper.provenance.get("experiments", {}).get(name, {}) if paper else {})
    if paper is None or name not in paper.results:
        stored, planned = record.cell_status(record.DEFAULT_PATH, experiment)
        return (f"*Paper preset, stored record* (`records/paper/{name}`): not complete yet, {stored} of "
                f"{planned} cells stored; `failgeom reproduce --preset paper --out records/paper` resumes it.\n")
    lines = [f"*Paper preset, stored record* (`records/paper/{name}`"
             + (f"; {cost['cells_stored']} cells, {cost['wall_s']:,.0f} s wall and {cost['cpu_s']:,.0f} s CPU "
                f"summed over cells" if cost else "") + "):", "",
             f"- {esc(experiment.summary(paper.results[name]))}"]
    for claim, v in verdicts:
        if name in claim.experiments:
            lines.append(f"- [`{claim.id}`](claims.md#{claim.id}): **{v.status}**" + (f", {esc(v.value)}" if v.value else "")
                         + (f". {esc(v.reason)}" if v.reason else ""))
    if name in DETAILS:
        lines += ["", "Details the page discusses, from the same record:", ""] + DETAILS[name](paper.results[name])
    return "\n".join(lines) + "\n"


def render_page(text: str, paper=None, verdicts=None) -> str:
    """``text`` with every record block rewritten."""
    return BLOCK.sub(lambda m: m.group(1) + record_block(m.group(2), paper, verdicts) + m.group(4), text)


def store_quick(folder: Path) -> None:
    """Copy every ``result.json`` and ``verify.json`` of a quick reproduction into records/quick."""
    target = record.QUICK_PATH
    shutil.rmtree(target, ignore_errors=True)
    for path in sorted(folder.glob("*/result.json")):
        (target / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.parent.name / "result.json")
    shutil.copyfile(folder / "verify.json", target / "verify.json")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick-results", type=Path, help="a failgeom reproduce --preset quick folder")
    args = parser.parse_args(argv)
    if args.quick_results:
        store_quick(args.quick_results)
    PAGE.write_text(render())
    print(f"wrote {PAGE}")
    paper = record.load()
    verdicts = record.paper_verdicts(paper)
    for name in FAMILY_PAGES:
        path = PAGE.parent / name
        text = path.read_text()
        new = render_page(text, paper, verdicts)
        if new != text:
            path.write_text(new)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
