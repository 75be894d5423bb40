"""asv benchmarks for learning many orthogonal functions (paper Sec. 2.1-2.2, Theorems 1-2).

``track_*`` return fitted decay rates (natural log per unit of the size, unless named ``log2``);
``time_*`` the cost of the exact computations behind them. ``FAILGEOM_BENCH_SMOKE=1`` (or the
module-level ``SMOKE`` sizes) shrinks everything so CI can run each benchmark once quickly.
"""

import os

import numpy as np

from failgeom.experiments.orthogonal_landscape import gradient_descent, reach_radius, start_grid
from failgeom.experiments.orthogonal_parity import fit_decay, theory_weights
from failgeom.experiments.orthogonal_periodic import exact_linear_periodic_variance
from failgeom.experiments.parity import parity_network
from failgeom.theory.orthogonal import parity_gradient_variance
from failgeom.theory.scaling import fit_exponential_rate

#: sizes used when FAILGEOM_BENCH_SMOKE=1
SMOKE = {"parity_dims": (4, 5, 6, 7), "parity_time_dims": [8], "parity_seeds": 2,
         "periodic_dims": (2, 4, 8), "periodic_radii": (6.0, 7.0, 8.0),
         "gd_per_axis": 11, "gd_steps": 200}
FULL = {"parity_dims": tuple(range(4, 15)), "parity_time_dims": [10, 14], "parity_seeds": 5,
        "periodic_dims": (2, 4, 8, 12, 16, 24, 32), "periodic_radii": tuple(float(r) for r in range(4, 12)),
        "gd_per_axis": 41, "gd_steps": 2_000}
SIZES = SMOKE if os.environ.get("FAILGEOM_BENCH_SMOKE") == "1" else FULL


def _weights(d, seeds):
    params, _ = parity_network(d).init(np.random.default_rng(d), seeds, (d,), "float64")
    return theory_weights(params)


_FITS = {}


def _parity_fit(loss):
    """Fit of the exact variance over d at the paper's init, computed once per loss."""
    if loss not in _FITS:
        dims = SIZES["parity_dims"]
        var = [parity_gradient_variance(d, _weights(d, SIZES["parity_seeds"]), loss)[0] for d in dims]
        _FITS[loss] = fit_decay(dims, np.asarray(var))
    return _FITS[loss]


class ParityVarianceDecay:
    """Theorem 1 over all 2^d parities at the paper's init: log2-rate of Var per unit d."""

    params = ["square", "hinge"]
    param_names = ["loss"]
    timeout = 600

    def track_rate_log2(self, loss):
        """Fitted log2 Var per unit d (bound G^2 / 2^d: -1 plus the growth of G^2)."""
        return _parity_fit(loss)["rate_log2"]

    track_rate_log2.unit = "log2 per d"

    def track_rate_log2_stderr(self, loss):
        return _parity_fit(loss)["stderr"] / np.log(2.0)


class ParityVarianceTime:
    """Cost of the exact variance over all 2^d parities (fast Walsh-Hadamard transform)."""

    params = SIZES["parity_time_dims"]
    param_names = ["d"]
    timeout = 600

    def setup(self, d):
        self.w = _weights(d, 1)

    def time_parity_gradient_variance(self, d):
        parity_gradient_variance(d, self.w, "square")

    def peakmem_parity_gradient_variance(self, d):
        parity_gradient_variance(d, self.w, "square")


class PeriodicVarianceDecay:
    """Theorem 2: decay rates of the exact variance over targets cos(r v^T x)."""

    timeout = 600

    def setup(self):
        exact_linear_periodic_variance(1.0, 1.0, 2)  # computes and caches the quadrature nodes

    def track_unit_rate_per_r2(self):
        """|w| = 1, d = 10: rate of log Var per unit r^2 (close to -1)."""
        r = np.asarray(SIZES["periodic_radii"])
        v = [exact_linear_periodic_variance(1.0, x, 10) for x in r]
        return fit_exponential_rate(r**2, v).exponent

    def track_matched_rate_per_d(self):
        """|w| = r = 8: rate of log Var per unit d."""
        d = np.asarray(SIZES["periodic_dims"])
        v = [exact_linear_periodic_variance(8.0, 8.0, int(k)) for k in d]
        return fit_exponential_rate(d, v).exponent

    def time_exact_variance(self):
        exact_linear_periodic_variance(8.0, 8.0, 16)


class LandscapeDescent:
    """Exact GD on the 2-D landscape from a grid of starts (the replica axis)."""

    timeout = 600

    def setup(self):
        self.starts = start_grid(7.0, SIZES["gd_per_axis"])

    def time_exact_gd(self):
        gradient_descent(self.starts, (2.0, 2.0), 0.5, SIZES["gd_steps"], 0.1)

    def track_reach_radius_error(self):
        """Farthest start distance that reached the optimum minus the gradient-flow reach radius."""
        from failgeom.experiments.orthogonal_landscape import distance_to_optimum

        _, hit = gradient_descent(self.starts, (2.0, 2.0), 0.5, SIZES["gd_steps"], 0.1)
        reached = distance_to_optimum(self.starts, (2.0, 2.0))[hit >= 0]
        return float(reached.max() - reach_radius(0.5, SIZES["gd_steps"]))
