"""Claims of Sec. 3 (decomposition vs end-to-end: tuples of line images, the stocks problem)."""

from __future__ import annotations

from . import NOT_REPRODUCED, PARTLY, REPRODUCED, Claim, Missing, Verdict, mean_interval, num, with_interval

#: float32 machine epsilon, the level Figure 5 compares the end-to-end SNR with
FLOAT32_EPS = 1.1920929e-07


#: the paper's Figure 3 run lengths (end-to-end, decomposition)
FIG3_STEPS = (20_000, 2_500)


def _fig3(ev) -> Verdict:
    """Decomposition learns every k (every seed); end-to-end stays at chance for k >= 3 over the
    whole run (every seed, every evaluation); at the paper's run length end-to-end learns k = 1,
    and k = 2 is reported as the fraction of seeds that learn, with its exact interval."""
    name = "tuple-lines"
    ks = list(ev.config(name, "ks"))

    def m(k, a, key):
        return ev.metric(name, f"k={k}/{a}", key)

    def seeds(k, a, key="learned"):
        return f"{sum(m(k, a, key))}/{len(m(k, a, key))}"

    if not any(k >= 3 for k in ks):
        raise Missing(f"tuple-lines ran no k >= 3 (ks {ks})")
    steps = (ev.config(name, "steps_end_to_end"), ev.config(name, "steps_decomposition"))
    full = steps[0] >= FIG3_STEPS[0] and steps[1] >= FIG3_STEPS[1]
    bad, notes, parts = [], [], []
    for k in ks:
        parts.append(f"k={k}: {num(m(k, 'decomposition', 'final_accuracy_mean'))} / "
                     f"{num(m(k, 'end_to_end', 'final_accuracy_mean'))}")
        if not all(m(k, "decomposition", "learned")):
            bad.append(f"decomposition learned k={k} in {seeds(k, 'decomposition')} seeds")
        if k >= 3 and not all(m(k, "end_to_end", "at_chance_throughout")):
            band, flags = m(k, "end_to_end", "chance_band_over_run"), m(k, "end_to_end", "at_chance_throughout")
            bad.append(f"end-to-end left chance at k={k} in {len(flags) - sum(flags)}/{len(flags)} seeds (max "
                       f"accuracy {num(max(m(k, 'end_to_end', 'max_accuracy_over_run')))}, band 0.5 ± {num(band)})")
    small = {k: m(k, "end_to_end", "learned_fraction") for k in ks if k <= 2}
    for k, f in small.items():
        text = (f"end-to-end learned k={k} in {f['learned']}/{f['seeds']} seeds within {steps[0]:,} "
                f"iterations ({num(f['fraction'])}, {int(f['level'] * 100)}% interval "
                f"[{num(f['interval'][0])}, {num(f['interval'][1])}])")
        if not full:
            notes.append(text + " (not decided at this length)")
        elif k == 1 and f["learned"] == 0:
            bad.append(text)
        else:
            notes.append(text)
    value = "final accuracy, decomposition / end-to-end: " + "; ".join(parts)
    if not full:
        value += f" (after {steps[0]:,} / {steps[1]:,} iterations; the paper: {FIG3_STEPS[0]:,} / {FIG3_STEPS[1]:,})"
    if bad:
        return Verdict(NOT_REPRODUCED, value, "; ".join(bad + notes), ev.preset(name))
    if full and 2 in small and small[2]["learned"] == 0:
        return Verdict(PARTLY, value, "end-to-end works at k = 1 only; " + "; ".join(notes), ev.preset(name))
    return Verdict(REPRODUCED, value, "; ".join(notes), ev.preset(name))


def _overlap(a, b) -> bool:
    return a["snr_low"] <= b["snr_high"] and b["snr_low"] <= a["snr_high"]


def _fig5(ev) -> Verdict:
    # per initialisation (the same N1 at every k), on the estimator's 95% intervals: end-to-end
    # falls when every k >= 3 upper bound lies below the smallest k's lower end, and fails to when
    # a k >= 3 interval lies wholly above the smallest k's; the decomposition's interval at each k
    # must overlap its interval at the smallest k. With the first-image loss (the original
    # script's) the decomposition SNR is the same at every k by construction, so that half tests
    # the estimate, not the paper.
    name = "tuple-lines-snr"
    ks = list(ev.config(name, "ks"))
    est = {(k, a): ev.metric(name, f"k={k}/{a}") for k in ks for a in ("end_to_end", "decomposition")}
    large = [k for k in ks if k >= 3]
    if not large:
        raise Missing(f"tuple-lines-snr ran no k >= 3 (ks {ks})")
    k1 = min(ks)
    inits = len(est[(k1, "end_to_end")])
    resolved = [r for r in range(inits) if est[(k1, "end_to_end")][r]["resolved"]]
    if not resolved:
        raise Missing(f"{ev.config(name, 'tuples'):,} tuples resolve the end-to-end SNR at k={k1} for no "
                      "initialisation (every interval includes 0)")
    first = {r: est[(k1, "end_to_end")][r] for r in range(inits)}
    bound = {r: max(est[(k, "end_to_end")][r]["upper_bound"] for k in large) for r in range(inits)}
    dec = {k: [s["snr"] for s in est[(k, "decomposition")]] for k in ks}
    value = (f"{inits} initialisation(s), end-to-end SNR at k={k1} "
             + ", ".join(f"[{num(first[r]['snr_low'])}, {num(first[r]['snr_high'])}]" for r in range(inits))
             + f", at most {num(max(bound.values()))} for k >= 3 (95% upper bounds); decomposition "
             + ", ".join(f"k={k}: " + "/".join(num(x) for x in v) for k, v in dec.items()))
    why, notes = [], []
    rises = [r for r in range(inits) for k in large
             if est[(k, "end_to_end")][r]["snr_low"] > first[r]["snr_high"]]
    if rises:
        why.append(f"end-to-end SNR at k >= 3 lies above k={k1}'s for initialisation(s) {sorted(set(rises))}")
    moved = sorted({k for k in ks for r in range(inits)
                    if not _overlap(est[(k, "decomposition")][r], est[(k1, "decomposition")][r])})
    if moved:
        why.append(f"decomposition SNR changes with k at k={moved} (intervals disjoint from k={k1}'s)")
    if why:
        return Verdict(NOT_REPRODUCED, value, "; ".join(why), ev.preset(name))
    open_ = [r for r in resolved if bound[r] >= first[r]["snr_low"]]
    if open_ or len(resolved) < inits:
        notes.append(f"the fall is resolved for {len(resolved) - len(open_)} of {inits} initialisation(s): with "
                     f"{ev.config(name, 'tuples'):,} tuples and a pool of {ev.config(name, 'pool'):,} images the "
                     f"k >= 3 upper bounds do not lie below the k={k1} interval's lower end for the others")
    if max(bound.values()) > FLOAT32_EPS:
        notes.append(f"{ev.config(name, 'tuples'):,} tuples resolve SNRs down to about {num(max(bound.values()))}, "
                     "not float32's 1.2e-7: 'below float32 precision' is not tested")
    if ev.config(name, "decomposition_loss") == "first":
        by_construction = ("the decomposition loss is the first image's hinge (the original script's), so its SNR "
                           "is the same at every k by construction: its flatness checks the estimate")
    else:
        by_construction = ""
    status = PARTLY if notes else REPRODUCED
    return Verdict(status, value, "; ".join(notes + [by_construction] if by_construction else notes),
                   ev.preset(name))


def _paired(ev, name, k, where, key):
    """Per replica ``(end-to-end, decomposition)`` values of metric ``key``."""
    own = ev.metric(name, f"k={k}", *where)
    return own["end_to_end"][key], own["decomposition"][key]


def _slower(s_e, s_d) -> bool | None:
    """End-to-end reached the target later than decomposition (None when neither reached it)."""
    if s_d is None:
        return None if s_e is None else False
    return s_e is None or s_e > s_d


def _stocks_gap(ev) -> Verdict:
    # the gap is the paired difference of the exact expected losses at the end (lower is
    # better), decided by its 95% t interval over seeds. End-to-end is slower at a k where, seed
    # by seed, the decomposition reached the target (exact loss <= target_loss) and end-to-end
    # later or never; where neither reached it, the gap's interval decides (end-to-end behind at
    # the same step count), and an interval that includes 0 decides nothing. At the largest k
    # end-to-end must not reach the target and must end behind: it does not close the gap.
    name = "stocks"
    ks = list(ev.config(name, "ks"))
    steps = ev.config(name, "steps")
    bad, open_, parts = [], [], []
    gaps = {}
    for k in ks:
        e2e, dec = _paired(ev, name, k, (), "final_expected_loss")
        gap, ci = mean_interval([a - b for a, b in zip(e2e, dec)])
        gaps[k] = (gap, ci)
        behind = None if ci is None or ci[0] <= 0 <= ci[1] else ci[0] > 0
        s_e, s_d = _paired(ev, name, k, (), "steps_to_target")
        slower = [_slower(a, b) for a, b in zip(s_e, s_d)]
        slower = [behind if x is None else x for x in slower]
        parts.append(f"k={k}: gap {with_interval(gap, ci)}, steps to target {s_e} vs {s_d}")
        if any(x is False for x in slower):
            bad.append(f"k={k}: end-to-end is not slower (it reached the target first, or ended ahead, in some seed)")
        elif any(x is None for x in slower):
            open_.append(f"k={k}: neither estimator reached the target in some seed and the gap's interval "
                         "includes 0 (or there is one seed): 'slower' is not decided")
    value = (f"final exact expected loss, end-to-end minus decomposition [95% over seeds], after {steps:,} "
             f"iterations{'' if steps == 2_500 else ' (the paper ran 2,500)'}: " + "; ".join(parts))
    big = max(ks)
    closed = [s for s in ev.metric(name, f"k={big}", "end_to_end", "steps_to_target") if s is not None]
    gap, ci = gaps[big]
    if closed:
        bad.append(f"end-to-end reached the target at k={big} (step {min(closed):,}): it closed the gap")
    elif ci is not None and ci[1] < 0:
        bad.append(f"end-to-end ends ahead at k={big}")
    elif ci is None or ci[0] <= 0:
        open_.append(f"at k={big} the gap's interval includes 0 (or there is one seed): 'does not close the "
                     "gap' is not decided")
    if bad:
        return Verdict(NOT_REPRODUCED, value, "; ".join(dict.fromkeys(bad)), ev.preset(name))
    missing = [k for k in (10, 1000, 2000) if k not in ks]
    if missing:
        open_.append(f"k = {', '.join(map(str, missing))} not run")
    return Verdict(PARTLY if open_ else REPRODUCED, value, "; ".join(open_), ev.preset(name))


def _init_ratio(key: str, label: str):
    def rule(ev) -> Verdict:
        name = "stocks"
        ks = list(ev.config(name, "ks"))
        over_k = {}
        for k in ks:
            v = ev.metric(name, f"k={k}", "init", key)
            over_k[k] = (sum(v) / len(v) / k) if isinstance(v, list) else v
        value = f"{label} at the experiment's initialisation: " + ", ".join(f"k={k}: {num(r, 4)}" for k, r in over_k.items())
        if all(0.9 <= r <= 1.1 for r in over_k.values()):
            return Verdict(REPRODUCED, value, "", ev.preset(name))
        return Verdict(NOT_REPRODUCED, value, "ratio / k outside [0.9, 1.1]", ev.preset(name))
    return rule


#: "about nu^2_e2e / nu^2_dec times more iterations": the measured ratio within this factor of it
#: (an order-of-magnitude statement; Ghadimi-Lan is a bound up to constants), set before the data
ORDER_FACTOR = 10.0


def _ghadimi_lan(ev) -> Verdict:
    # held against the plain-SGD runs: per seed, the end-to-end estimator's steps to the target
    # over the decomposition's (a lower bound when end-to-end never reached it), against the
    # ratio nu^2_e2e / nu^2_dec at initialisation that Ghadimi-Lan's bound scales with
    name = "stocks"
    ks = list(ev.config(name, "ks"))
    steps = ev.config(name, "steps")
    bad, open_, parts = [], [], []
    for k in ks:
        nu = ev.metric(name, f"k={k}", "init", "nu2_ratio_exact")
        nu = sum(nu) / len(nu) if isinstance(nu, list) else nu
        s_e, s_d = _paired(ev, name, k, ("sgd",), "steps_to_target")
        ratios = []
        for a, b in zip(s_e, s_d):
            if b is None:
                continue
            ratios.append((steps / b, True) if a is None else (a / b, False))
        if not ratios:
            open_.append(f"k={k}: SGD with the decomposition estimator did not reach the target in {steps:,} steps")
            parts.append(f"k={k}: nu^2 ratio {num(nu)}, no decomposition run reached the target")
            continue
        text = ", ".join((">= " if c else "") + num(r) for r, c in ratios)
        parts.append(f"k={k}: nu^2 ratio {num(nu)}, measured {text}")
        if any(r <= 1 and not c for r, c in ratios):
            bad.append(f"k={k}: end-to-end SGD reached the target no later than decomposition")
        elif any(r > ORDER_FACTOR * nu for r, c in ratios):
            bad.append(f"k={k}: end-to-end SGD needs more than {ORDER_FACTOR:g} x nu^2 ratio times the iterations")
        elif any(not c and r < nu / ORDER_FACTOR for r, c in ratios):
            bad.append(f"k={k}: end-to-end SGD needs fewer than nu^2 ratio / {ORDER_FACTOR:g} times the iterations")
        elif any(c and r < nu / ORDER_FACTOR for r, c in ratios):
            open_.append(f"k={k}: end-to-end SGD did not reach the target in {steps:,} steps; the lower bound "
                         f"{min(r for r, _ in ratios):.3g} cannot tell a ratio near nu^2 from a smaller one")
        if len(ratios) < len(s_d):
            open_.append(f"k={k}: {len(s_d) - len(ratios)} seed(s) where decomposition SGD did not reach the target")
    value = (f"SGD steps to the target, end-to-end over decomposition per seed (>= : end-to-end censored at "
             f"{steps:,}), against nu^2_e2e / nu^2_dec at init: " + "; ".join(parts))
    if bad:
        return Verdict(NOT_REPRODUCED, value, "; ".join(bad), ev.preset(name))
    return Verdict(PARTLY if open_ else REPRODUCED, value, "; ".join(open_), ev.preset(name))


CLAIMS = [
    Claim("fig2.lines", "line images, label = slope sign",
          "A sample image is 28x28, zero except a straight line at a random angle theta, length and centre; "
          "its label is +1 if theta < pi/2 (the line rises) and -1 otherwise.", "Sec. 3.1, Figure 2", 2,
          checks=("fig2.line-images",), docs="docs/e2e-vs-decomposition.md", code="failgeom/problems/lines.py",
          test="tests/test_lines_data.py"),
    Claim("fig3.tuple-lines", "tuples: decomposition learns, e2e fails",
          "On k-tuples of line images labelled by the parity of the image labels, training with the "
          "decomposition reaches high accuracy quickly for every k = 1..4, while end-to-end training works only "
          "for small k and stays at chance for k >= 3.", "Sec. 3.1, Figure 3", 2, experiments=("tuple-lines",),
          metrics=("tuple-lines: k=<k>/<approach>/final_accuracy_mean, learned, learned_fraction, "
                   "at_chance_throughout, chance_band_over_run, max_accuracy_over_run",
                   "tuple-lines config: ks, steps_end_to_end, steps_decomposition"),
          rule=_fig3, docs="docs/e2e-vs-decomposition.md", code="failgeom/experiments/tuple_lines.py",
          test="tests/test_lines_runs.py"),
    Claim("fig5.snr", "SNR at init: e2e falls with k, dec. flat",
          "At random initialisation the end-to-end gradient's signal-to-noise ratio falls fast with k and for "
          "k >= 3 is below float32 precision, while the decomposition's does not depend on k: the failure is "
          "not one of local minima.", "Sec. 3.1, Figure 5; talk", 2, experiments=("tuple-lines-snr",),
          metrics=("tuple-lines-snr: k=<k>/<approach> [per initialisation: snr, snr_low, snr_high, resolved, "
                   "upper_bound]", "tuple-lines-snr config: ks, tuples, pool, decomposition_loss"),
          rule=_fig5, docs="docs/e2e-vs-decomposition.md", code="failgeom/experiments/tuple_lines_snr.py",
          test="tests/test_lines_runs.py", figure="docs/figures/tuple-lines-snr.png"),
    Claim("fig4.stocks", "stocks: e2e much slower, gap stays",
          "On the stocks problem end-to-end training is much slower than with the decomposition estimator, and "
          "for large k does not close the gap in reasonable time.", "Sec. 3.2, Figure 4", 2,
          experiments=("stocks",),
          metrics=("stocks: k=<k>/<approach>/steps_to_target, final_expected_loss", "stocks config: ks, steps"),
          rule=_stocks_gap, docs="docs/e2e-vs-decomposition.md", code="failgeom/experiments/stocks.py",
          test="tests/test_stocks_moments.py", figure="records/paper/stocks/figure.png"),
    Claim("sec3.3.second-moment", "stocks: E||g_e2e||^2 ~ k E||g_dec||^2",
          "E||-z^T grad N||^2 = E sum_i ||G_i||^2 (the cross terms cancel) while E||-e_y^T grad N||^2 = "
          "E||G_y||^2: near initialisation the end-to-end estimator's second moment is about k times larger.",
          "Sec. 3.3", 2, experiments=("stocks",), checks=("sec3.3.stocks-ratio",),
          metrics=("stocks: k=<k>/init/ratio_over_k",), rule=_init_ratio("ratio_over_k", "E||g_e2e||^2/E||g_dec||^2/k"),
          docs="docs/e2e-vs-decomposition.md", code="failgeom/theory/decomposition.py",
          test="tests/theory/test_theory_misc.py"),
    Claim("sec3.3.ghadimi-lan", "stocks: nu^2 (SGD iterations) ~ k x larger",
          "By Ghadimi-Lan, SGD needs order nu^2/eps^2 iterations, nu^2 = max_t E||g_t||^2 - ||grad L||^2, so the "
          "end-to-end estimator needs about k times more iterations near initialisation.", "Sec. 3.3", 2,
          experiments=("stocks",), checks=("sec3.3.ghadimi-lan",),
          metrics=("stocks: k=<k>/init/nu2_ratio_exact", "stocks: k=<k>/sgd/<approach>/steps_to_target",
                   "stocks config: ks, steps"), rule=_ghadimi_lan,
          docs="docs/e2e-vs-decomposition.md", code="failgeom/theory/decomposition.py",
          test="tests/theory/test_theory_misc.py"),
]
