"""Claims of Sec. 5 (flat activations: step-function targets; talk part 2).

The Figure 7 rules compare the four learners on the same problem through their test metrics:
``exact_step_fraction`` (the share of test points on the right step), ``boundary_error_rate`` and
``interior_error_rate`` (wrong-step rates near a jump and elsewhere), the sample complexity
(``steps_to_exact_step_fraction``: the first evaluation at which a given share of the points is
on the right step) and the cost. Cost is counted, not timed: ``counted_work`` gives the
operations of one prediction and of one training step (sampling, forward, backward and the
update), from the run's shapes (:func:`failgeom.experiments.flat_work.counted_work`). The measured
wall times are in each result's ``timing``, information only: no rule reads them.
"""

from __future__ import annotations

from . import NOT_REPRODUCED, PARTLY, REPRODUCED, Claim, Missing, Verdict, num

LEARNERS = {"flat-smooth": "smooth (bias zero)", "flat-e2e": "e2e", "flat-multiclass": "multiclass",
            "flat-forward-only": "forward-only"}


def _m(ev, name, key, *path):
    return ev.metric(name, LEARNERS[name] if key is None else key, *path)


def _accuracy(ev, name, key=None) -> float:
    return _m(ev, name, key, "exact_step_fraction", "mean")


def _at_jumps(ev, name) -> tuple[bool, str]:
    edge, inner = _m(ev, name, None, "boundary_error_rate", "mean"), _m(ev, name, None, "interior_error_rate", "mean")
    if edge is None or inner is None:
        raise Missing(f"{name} has no test point {'near a jump' if edge is None else 'away from the jumps'} "
                      f"(boundary_width {num(ev.config(name, 'boundary_width'))})")
    return edge > inner, f"wrong step {num(edge)} near a jump vs {num(inner)} elsewhere"


def _smooth(ev) -> Verdict:
    name = "flat-smooth"
    inits = list(ev.config(name, "bias_inits"))
    acc = {b: _accuracy(ev, name, f"smooth (bias {b})") for b in inits}
    worst = min(min(_m(ev, name, f"smooth (bias {b})", "exact_step_fraction", "values")) for b in inits)
    fo = _accuracy(ev, "flat-forward-only")
    value = ("on the right step: " + ", ".join(f"bias {b}: {num(a)}" for b, a in acc.items())
             + f" (worst replica {num(worst)}); forward-only {num(fo)}")
    if max(acc.values()) >= fo:
        return Verdict(NOT_REPRODUCED, value, "the smooth approximation is as accurate as forward-only", ev.preset(name))
    missing = []
    if len(inits) < 2:
        missing.append("one bias initialisation only: the sensitivity is not tested")
    elif max(acc.values()) - min(acc.values()) < 0.1:
        missing.append("the bias initialisations change the accuracy by less than 0.1")
    if worst >= 0.5:
        missing.append("no replica failed (every one is on the right step at >= half the test points)")
    return Verdict(PARTLY if missing else REPRODUCED, value, "; ".join(missing), ev.preset(name, "flat-forward-only"))


def _work(ev, name) -> tuple[int, int]:
    """``(operations per prediction, per training step)``, counted from the run's shapes."""
    w = _m(ev, name, None, "counted_work")
    return w["per_prediction"], w["per_training_step"]


def _e2e(ev) -> Verdict:
    name, fo = "flat-e2e", "flat-forward-only"
    at_jumps, text = _at_jumps(ev, name)
    acc = _accuracy(ev, name)
    (pred, step), (pred_fo, step_fo) = _work(ev, name), _work(ev, fo)
    value = (f"on the right step {num(acc)}; {text}; {pred:,} vs {pred_fo:,} operations per prediction, "
             f"{step:,} vs {step_fo:,} per training step (forward-only)")
    bad = []
    if not at_jumps:
        bad.append("errors do not concentrate at the jumps")
    if pred <= pred_fo:
        bad.append("predicting costs no more than forward-only")
    if step <= step_fo:
        bad.append("a training step costs no more than forward-only's")
    return Verdict(NOT_REPRODUCED if bad else REPRODUCED, value, "; ".join(bad), ev.preset(name, fo))


def _level_speed(mine, theirs, budget) -> str:
    """Multiclass against forward-only at one exact-step level, seed by seed on the same
    problem: "slower", "faster", or "open" (mixed, or forward-only never got there)."""
    per_seed = []
    for m, f in zip(mine, theirs):
        if f is None:
            per_seed.append(None if m is None else False)
        else:  # multiclass censored at its budget is slower only if forward-only got there first
            per_seed.append(m > f if m is not None else (True if budget > f else None))
    if all(x is True for x in per_seed):
        return "slower"
    if all(x is False for x in per_seed):
        return "faster"
    return "open"


def _multiclass(ev) -> Verdict:
    # sample complexity: the steps (of equal batches) to put a given share of the held-out points
    # on the right step, at every level measured (0.5, 0.9, 0.99), against forward-only
    name, fo = "flat-multiclass", "flat-forward-only"
    at_jumps, text = _at_jumps(ev, name)
    mine_all = _m(ev, name, None, "steps_to_exact_step_fraction")
    theirs_all = _m(ev, fo, None, "steps_to_exact_step_fraction")
    budget = ev.config(name, "steps")
    levels = [q for q in mine_all if q in theirs_all]
    if not levels:
        raise Missing(f"{name} and {fo} share no exact-step level")
    speed = {q: _level_speed(mine_all[q], theirs_all[q], budget) for q in levels}

    def steps(q):
        return ", ".join(f"{'>' + format(budget, ',') if m is None else format(m, ',')} vs "
                         f"{'never' if f is None else format(f, ',')}" for m, f in zip(mine_all[q], theirs_all[q]))

    value = (f"on the right step {num(_accuracy(ev, name))}; {text}; steps to a share of the points on the right "
             f"step, multiclass vs forward-only per seed: " + "; ".join(f"{q}: {steps(q)}" for q in levels))
    kinds = set(speed.values())
    sample = True if kinds == {"slower"} else False if kinds == {"faster"} else None
    if not at_jumps and sample is False:
        return Verdict(NOT_REPRODUCED, value, "errors do not concentrate at the class boundaries, and multiclass "
                       "reached every level no later than forward-only", ev.preset(name, fo))
    notes = []
    if not at_jumps:
        notes.append("errors do not concentrate at the class boundaries")
    if sample is False:
        notes.append("higher sample complexity not reproduced: multiclass reached every level first")
    elif sample is None:
        notes.append("higher sample complexity only in part: " + ", ".join(
            f"{q}: {'multiclass ' + v if v != 'open' else 'not decided'}" for q, v in speed.items()))
    return Verdict(PARTLY if notes else REPRODUCED, value, "; ".join(notes), ev.preset(name, fo))


def _forward_only(ev) -> Verdict:
    present = [n for n in LEARNERS if n in ev.results]
    if "flat-forward-only" not in present or len(present) < 2:
        raise Missing("flat-forward-only and at least one other flat learner are needed")
    acc = {n: _accuracy(ev, n) for n in present}
    work = {n: _work(ev, n) for n in present}
    fo = "flat-forward-only"
    value = ("on the right step: " + ", ".join(f"{n.removeprefix('flat-')} {num(a)}" for n, a in acc.items())
             + "; operations per prediction / training step: "
             + ", ".join(f"{n.removeprefix('flat-')} {p:,} / {t:,}" for n, (p, t) in work.items()))
    bad = [f"{n} is more accurate ({num(acc[n])})" for n in present if acc[n] > acc[fo]]
    bad += [f"{n} predicts with fewer operations" for n in present if work[n][0] < work[fo][0]]
    bad += [f"{n} trains with fewer operations per step" for n in present if work[n][1] < work[fo][1]]
    missing = [n for n in LEARNERS if n not in present]
    notes = bad + ([f"not run: {', '.join(missing)}"] if missing else [])
    status = NOT_REPRODUCED if bad else PARTLY if missing else REPRODUCED
    return Verdict(status, value, "; ".join(notes), ev.preset(*present))


def _a7(ev) -> Verdict:
    name = "flat-forward-only-convergence"
    ratio = ev.metric(name, "max_ratio_average_to_bound")
    value = f"iterate-averaged error / A.7's eps at the horizons run: at most {num(ratio)}"
    if not ev.metric(name, "bound_holds_average"):
        return Verdict(NOT_REPRODUCED, value, "the averaged error exceeds A.7's eps at some horizon", ev.preset(name))
    return Verdict(REPRODUCED, value, "", ev.preset(name))


_EXP, _TEST = "failgeom/experiments/flat.py", "tests/test_flat_experiments.py"
_FIG = "docs/figures/flat-figure7-paper.png"
_KEYS = "exact_step_fraction/mean, boundary_error_rate/mean, interior_error_rate/mean, " \
        "counted_work/per_prediction, counted_work/per_training_step"
CLAIMS = [
    Claim("sec5.flat-gradient", "step activation: zero gradient a.e.",
          "With u a step function, u'(r) = 0 almost everywhere, so gradient-based methods cannot move.",
          "Sec. 5.1; talk", 4, checks=("sec5.flat-gradient",), docs="docs/flat.md",
          code="failgeom/problems/steps.py", test="tests/test_flat_steps.py"),
    Claim("fig7.smooth", "flat, smooth approximation: slow, can fail",
          "Replacing u by a smooth approximation (a sum of sigmoids) sometimes works, but is slow and only "
          "approximate, often fails completely, and is sensitive to the bias initialisation.",
          "Sec. 5.2, Figure 7; talk", 4, experiments=("flat-smooth", "flat-forward-only"),
          metrics=("flat-smooth: smooth (bias <init>)/exact_step_fraction/mean, values", "flat-smooth config: bias_inits",
                   "flat-forward-only: forward-only/exact_step_fraction/mean"),
          rule=_smooth, docs="docs/flat.md", code=_EXP, test=_TEST, figure=_FIG),
    Claim("fig7.e2e", "flat, MLP: imprecise at jumps, costly",
          "An end-to-end ReLU network regressing the target is reasonable but imprecise at the discontinuities, "
          "with larger train and test cost.", "Sec. 5.3, Figure 7; talk", 4,
          experiments=("flat-e2e", "flat-forward-only"), metrics=(f"flat-<e2e|forward-only>: <learner>/{_KEYS}",),
          rule=_e2e, docs="docs/flat.md", code=_EXP, test=_TEST, figure=_FIG),
    Claim("fig7.multiclass", "flat, multiclass: blurry boundaries",
          "A softmax classifier over the steps has problems capturing the class boundaries (blurry) and a higher "
          "sample complexity.", "Sec. 5.4, Figure 7; talk", 4,
          experiments=("flat-multiclass", "flat-forward-only"),
          metrics=(f"flat-multiclass: multiclass/{_KEYS}",
                   "flat-<multiclass|forward-only>: <learner>/steps_to_exact_step_fraction/<level>",
                   "flat-multiclass config: steps"), rule=_multiclass, docs="docs/flat.md",
          code=_EXP, test=_TEST, figure=_FIG),
    Claim("fig7.forward-only", "flat, forward-only: best and cheapest",
          "The forward-only update (backpropagating through u as if it were the identity; Isotron, GLMtron) gives "
          "the best results with the smallest train and test time.", "Sec. 5.5, Figure 7; talk", 4,
          experiments=tuple(LEARNERS), metrics=(f"flat-<learner>: <learner key>/{_KEYS}",), rule=_forward_only,
          docs="docs/flat.md", code=_EXP, test=_TEST, figure=_FIG),
    Claim("a7.forward-only", "forward-only: O(L^2/eps^2) steps suffice",
          "For L-Lipschitz non-decreasing u with |u| <= c and ||w||, ||v*|| <= B, T = c^4 B^4 L^2/eps^2 "
          "forward-only iterations with eta = sqrt(1/(T c^2)) give expected squared error at most eps.",
          "Appendix A.7; talk", 4, experiments=("flat-forward-only-convergence",),
          checks=("a7.forward-only", "a7.small-c"),
          corrected="T suffices for the cases with c >= 1/2; for c < 1/2 the iterate-averaged error tends to "
                    "eps/(2c) > eps (a7.small-c), so the printed T is too short there",
          metrics=("flat-forward-only-convergence: bound_holds_average, max_ratio_average_to_bound",),
          rule=_a7, docs="docs/flat.md", code="failgeom/theory/flat.py", test="tests/theory/test_theory_misc.py"),
]
