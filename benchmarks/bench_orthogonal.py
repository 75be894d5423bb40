"""asv benchmarks for learning many orthogonal functions (paper Sec. 2.1-2.2, Theorems 1-2).

``track_*`` return fitted decay rates (natural log per unit of the size, unless named ``log2``);
``time_*`` the cost of the exact computations behind them. Smoke mode (``FAILGEOM_BENCH_SMOKE=1``)
uses each class's ``SMOKE`` sizes, read at setup time.
"""

import numpy as np

from failgeom.experiments.landscape_descent import distance_to_optimum, gradient_descent, reach_radius
from failgeom.experiments.orthogonal_landscape import start_grid
from failgeom.experiments.orthogonal_parity import fit_decay
from failgeom.experiments.parity_models import parity_network
from failgeom.theory.orthogonal import network_weights, parity_gradient_variance
from failgeom.theory.periodic import exact_linear_periodic_variance
from failgeom.theory.scaling import fit_exponential_rate

from .common import Benchmark


def _weights(d, seeds):
    params, _ = parity_network(d).init(np.random.default_rng(d), seeds, (d,), "float64")
    return network_weights(params)


class ParityVarianceDecay(Benchmark):
    """Theorem 1 over all 2^d parities at the paper's init: log2-rate of Var per unit d."""

    params = ["square", "hinge"]
    param_names = ["loss"]
    FULL = {"dims": tuple(range(4, 15)), "seeds": 5}
    SMOKE = {"dims": (4, 5, 6, 7), "seeds": 2}

    def setup(self, loss):
        super().setup(loss)
        dims = self.sizes["dims"]
        var = [parity_gradient_variance(d, _weights(d, self.sizes["seeds"]), loss)[0] for d in dims]
        self.fit = fit_decay(dims, np.asarray(var))

    def track_rate_log2(self, loss):
        """Fitted log2 Var per unit d (bound G^2 / 2^d: -1 plus the growth of G^2)."""
        return self.fit["rate_log2"]

    track_rate_log2.unit = "log2 per d"

    def track_rate_log2_stderr(self, loss):
        return self.fit["stderr"] / np.log(2.0)

    track_rate_log2_stderr.unit = "log2 per d"


class ParityVarianceTime(Benchmark):
    """Cost of the exact variance over all 2^d parities (fast Walsh-Hadamard transform)."""

    params = [10, 14]
    param_names = ["d"]

    def setup(self, d):
        super().setup(d)
        self.w = _weights(d, 1)

    def time_parity_gradient_variance(self, d):
        parity_gradient_variance(d, self.w, "square")

    def peakmem_parity_gradient_variance(self, d):
        parity_gradient_variance(d, self.w, "square")


class PeriodicVarianceDecay(Benchmark):
    """Theorem 2: decay rates of the exact variance over targets cos(r v^T x)."""

    FULL = {"dims": (2, 4, 8, 12, 16, 24, 32), "radii": tuple(float(r) for r in range(4, 12))}
    SMOKE = {"dims": (2, 4, 8), "radii": (6.0, 7.0, 8.0)}

    def setup(self):
        super().setup()
        exact_linear_periodic_variance(1.0, 1.0, 2)  # computes and caches the quadrature nodes

    def track_unit_rate_per_r2(self):
        """|w| = 1, d = 10: rate of log Var per unit r^2 (close to -1)."""
        r = np.asarray(self.sizes["radii"])
        v = [exact_linear_periodic_variance(1.0, x, 10) for x in r]
        return fit_exponential_rate(r**2, v).exponent

    track_unit_rate_per_r2.unit = "per r^2"

    def track_matched_rate_per_d(self):
        """|w| = r = 8: rate of log Var per unit d."""
        d = np.asarray(self.sizes["dims"])
        v = [exact_linear_periodic_variance(8.0, 8.0, int(k)) for k in d]
        return fit_exponential_rate(d, v).exponent

    track_matched_rate_per_d.unit = "per d"

    def time_exact_variance(self):
        exact_linear_periodic_variance(8.0, 8.0, 16)


class LandscapeDescent(Benchmark):
    """Exact GD on the 2-D landscape from a grid of starts (the replica axis)."""

    FULL = {"per_axis": 41, "steps": 2_000}
    SMOKE = {"per_axis": 11, "steps": 200}

    def setup(self):
        super().setup()
        self.starts = start_grid(7.0, self.sizes["per_axis"])

    def time_exact_gd(self):
        gradient_descent(self.starts, (2.0, 2.0), 0.5, self.sizes["steps"], 0.1)

    def track_reach_radius_error(self):
        """Farthest start distance that reached the optimum minus the gradient-flow reach radius."""
        _, hit = gradient_descent(self.starts, (2.0, 2.0), 0.5, self.sizes["steps"], 0.1)
        reached = distance_to_optimum(self.starts, (2.0, 2.0))[hit >= 0]
        return float(reached.max() - reach_radius(0.5, self.sizes["steps"]))

    track_reach_radius_error.unit = "distance"
