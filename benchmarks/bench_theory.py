"""asv benchmarks for failgeom.theory: matrix-free condition numbers, exact parity variance,
and ``track_`` methods that report the measured scaling exponents (docs/theory.md).

Run with asv, or directly (``python benchmarks/bench_theory.py``) for a one-shot table.
"""

import numpy as np

import failgeom.theory as T
from failgeom.problems.pwl import sample_pwl_curves

from .common import smoke

#: sizes used when FAILGEOM_BENCH_SMOKE=1 (read at import; the runner reloads in smoke mode)
SMOKE = {"n": [10**3, 2 * 10**3], "d": [8], "cond_ns": (100, 1000), "win_ns": (100, 300, 1000)}
FULL = {"n": [10**3, 2 * 10**3, 10**4, 10**5, 10**6], "d": [10, 11, 12, 13, 14, 15, 16],
        "cond_ns": (10**3, 10**6), "win_ns": (10**2, 10**6)}
SIZES = SMOKE if smoke() else FULL


class ConditionNumber:
    """cond(W^T W) (Theorem 3): matrix-free "structured" vs numpy SVD of W ("dense")."""

    params = (SIZES["n"], ["structured", "dense"])
    param_names = ["n", "method"]
    timeout = 300

    def setup(self, n, method):
        if method == "dense" and n > 2000:
            raise NotImplementedError("dense SVD is O(n^3); benchmarked up to n = 2000")

    def time_condition_number(self, n, method):
        T.condition_number(n, method)

    def peakmem_condition_number(self, n, method):
        T.condition_number(n, method)


class ParityGradientVariance:
    """Exact Var over all 2^d parities (Theorem 1) for the paper's width-10d network."""

    params = (SIZES["d"], ["square", "hinge"])
    param_names = ["d", "loss"]
    timeout = 300

    def setup(self, d, loss):
        self.weights = T.init_parity_weights(np.random.default_rng(d), d)

    def time_parity_gradient_variance(self, d, loss):
        T.parity_gradient_variance(d, self.weights, loss)

    def peakmem_parity_gradient_variance(self, d, loss):
        T.parity_gradient_variance(d, self.weights, loss)

    def track_variance_over_bound(self, d, loss):
        var, bound = T.parity_gradient_variance(d, self.weights, loss)
        return var / bound

    track_variance_over_bound.unit = "Var / (G^2 / 2^d)"


class ScalingExponents:
    """Fitted exponents of the scaling laws the paper states (Theorem 3, Appendix A.6)."""

    timeout = 300

    def setup(self):
        self.ns = np.geomspace(*SIZES["cond_ns"], 3 if smoke() else 7).round().astype(int)
        self.cond = np.array([T.condition_number(int(n), "structured") for n in self.ns])
        self.win_ns = np.geomspace(SIZES["win_ns"][0], SIZES["win_ns"][-1], 3 if smoke() else 9).round().astype(int)
        self.win = np.array([T.window_condition_number(int(n)) for n in self.win_ns])

    def track_cond_exponent(self):
        """Theorem 3 claims Omega(n^3.5); the fit over n = 1e3..1e6."""
        return T.fit_exponent(self.ns, self.cond).exponent

    track_cond_exponent.unit = "exponent"

    def track_cond_local_slope_top(self):
        return float(T.fit_exponent(self.ns, self.cond).local_slopes[-1])

    track_cond_local_slope_top.unit = "exponent"

    def track_cond_over_n4(self):
        """Limit 16 / beta^4 = 1.294251 (beta: first root of 1 + cos b cosh b = 0)."""
        return float(self.cond[-1] / float(self.ns[-1]) ** 4)

    track_cond_over_n4.unit = "ratio"

    def track_window_cond_exponent(self):
        """Appendix A.6 claims Theta(n^3) (valid windows)."""
        return float(T.fit_exponent(self.win_ns, self.win).local_slopes[-1])

    track_window_cond_exponent.unit = "exponent"

    def track_preconditioned_cond(self):
        f, _ = sample_pwl_curves(np.random.default_rng(0), 2000 if smoke() else 10**4, 100)
        return T.preconditioned_condition_number(T.empirical_window_covariance(f), T.window_covariance(100))

    track_preconditioned_cond.unit = "condition number"


if __name__ == "__main__":  # a one-shot table without asv
    import time

    for n in ConditionNumber.params[0]:
        for method in ConditionNumber.params[1]:
            if method == "dense" and n > 2000:
                continue
            start = time.perf_counter()
            T.condition_number(n, method)
            print(f"condition_number(n={n}, {method!r}): {time.perf_counter() - start:.3f} s")
    for d in ParityGradientVariance.params[0]:
        bench = ParityGradientVariance()
        bench.setup(d, "hinge")
        start = time.perf_counter()
        bench.time_parity_gradient_variance(d, "hinge")
        print(f"parity_gradient_variance(d={d}, 'hinge'): {time.perf_counter() - start:.3f} s")
    s = ScalingExponents()
    s.setup()
    for name in dir(s):
        if name.startswith("track_"):
            print(f"{name}: {getattr(s, name)():.6g}")
