"""Claims of Sec. 5 (flat activations: step-function targets; talk part 2).

The Figure 7 rules compare the four learners on the same problem through their test metrics:
``exact_step_fraction`` (the share of test points on the right step), ``boundary_error_rate`` and
``interior_error_rate`` (wrong-step rates near a jump and elsewhere) and the cost. Cost is
read from ``multiply_adds_per_prediction`` (a training step costs a fixed multiple of it per
sample: forward and backward), which does not depend on the machine, and from the measured wall
time per training step (``train_ms_per_step``), which does: a claim on training time whose wall
times disagree is "partly", with the numbers.
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


def _cost(ev, name) -> tuple[float, float]:
    """``(multiply-adds per prediction, measured ms per training step)``."""
    return (_m(ev, name, None, "multiply_adds_per_prediction"), _m(ev, name, None, "train_ms_per_step"))


def _wall_note(ev, names) -> str:
    return "measured ms per training step: " + ", ".join(
        f"{n.removeprefix('flat-')} {num(_cost(ev, n)[1])}" for n in names)


def _e2e(ev) -> Verdict:
    name, fo = "flat-e2e", "flat-forward-only"
    at_jumps, text = _at_jumps(ev, name)
    acc = _accuracy(ev, name)
    ops, ops_fo = _cost(ev, name)[0], _cost(ev, fo)[0]
    value = f"on the right step {num(acc)}; {text}; {num(ops)} vs {num(ops_fo)} multiply-adds per prediction"
    bad = []
    if not at_jumps:
        bad.append("errors do not concentrate at the jumps")
    if ops <= ops_fo:
        bad.append("not costlier than forward-only")
    slower = _cost(ev, name)[1] > _cost(ev, fo)[1]
    notes = bad + ([] if slower else ["the measured training time per step is not larger than forward-only's"])
    status = NOT_REPRODUCED if bad else REPRODUCED if slower else PARTLY
    return Verdict(status, value, "; ".join(notes + [_wall_note(ev, (name, fo))]), ev.preset(name, fo))


def _multiclass(ev) -> Verdict:
    name = "flat-multiclass"
    at_jumps, text = _at_jumps(ev, name)
    value = f"on the right step {num(_accuracy(ev, name))}; {text}"
    if not at_jumps:
        return Verdict(NOT_REPRODUCED, value, "errors do not concentrate at the class boundaries", ev.preset(name))
    return Verdict(PARTLY, value, "blurry boundaries reproduced; the higher sample complexity is not measured",
                   ev.preset(name))


def _forward_only(ev) -> Verdict:
    present = [n for n in LEARNERS if n in ev.results]
    if "flat-forward-only" not in present or len(present) < 2:
        raise Missing("flat-forward-only and at least one other flat learner are needed")
    acc = {n: _accuracy(ev, n) for n in present}
    ops = {n: _cost(ev, n)[0] for n in present}
    fo = "flat-forward-only"
    value = "on the right step: " + ", ".join(f"{n.removeprefix('flat-')} {num(a)}" for n, a in acc.items())
    bad = [f"{n} is more accurate ({num(acc[n])})" for n in present if acc[n] > acc[fo]]
    bad += [f"{n} predicts with fewer multiply-adds" for n in present if ops[n] < ops[fo]]
    missing = [n for n in LEARNERS if n not in present]
    faster = [n for n in present if _cost(ev, n)[1] < _cost(ev, fo)[1]]
    notes = bad + ([f"not run: {', '.join(missing)}"] if missing else [])
    if faster:
        notes.append(f"fewest multiply-adds, but not the smallest measured training time per step "
                     f"({', '.join(n.removeprefix('flat-') for n in faster)} faster)")
    notes.append(_wall_note(ev, present))
    status = NOT_REPRODUCED if bad else PARTLY if (missing or faster) else REPRODUCED
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
_KEYS = "exact_step_fraction/mean, boundary_error_rate/mean, interior_error_rate/mean, train_ms_per_step, " \
        "multiply_adds_per_prediction"
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
          experiments=("flat-e2e", "flat-forward-only"), metrics=(f"flat-e2e: e2e/{_KEYS}",),
          rule=_e2e, docs="docs/flat.md", code=_EXP, test=_TEST, figure=_FIG),
    Claim("fig7.multiclass", "flat, multiclass: blurry boundaries",
          "A softmax classifier over the steps has problems capturing the class boundaries (blurry) and a higher "
          "sample complexity.", "Sec. 5.4, Figure 7; talk", 4, experiments=("flat-multiclass",),
          metrics=(f"flat-multiclass: multiclass/{_KEYS}",), rule=_multiclass, docs="docs/flat.md",
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
