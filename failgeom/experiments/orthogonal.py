"""Learning many orthogonal functions (paper Sec. 2.1-2.2, talk part 4): one import for the three
experiments, which live in their own modules.

- ``parity-variance`` (:mod:`.orthogonal_parity`): exact gradient variance over all ``2^d`` parities
  against Theorem 1's bound ``G(w)^2 / 2^d``, at init and along training.
- ``linear-periodic-landscape`` (:mod:`.orthogonal_landscape`): the talk's 2-D landscape, its
  critical points, and exact/stochastic gradient descent from a grid of starts.
- ``linear-periodic-variance`` (:mod:`.orthogonal_periodic`): Theorem 2's variance over targets
  ``cos(r v^T x)`` as r and d grow (the exact variance itself lives in
  :func:`failgeom.theory.periodic.exact_linear_periodic_variance`).
"""

from __future__ import annotations

from .orthogonal_landscape import (
    LandscapeConfig, critical_points, distance_to_optimum, gradient_descent, grid_local_minima,
    landscape_hessian, reach_radius, start_grid, stochastic_gradient, stochastic_loss_and_gradient,
)
from .orthogonal_parity import ParityVarianceConfig, fit_decay, theory_weights, training_run, variance_at_init
from .orthogonal_periodic import PeriodicVarianceConfig, mean_stderr, monte_carlo_estimates

__all__ = [
    "LandscapeConfig", "ParityVarianceConfig", "PeriodicVarianceConfig", "critical_points",
    "distance_to_optimum", "fit_decay", "gradient_descent", "grid_local_minima", "landscape_hessian",
    "mean_stderr", "monte_carlo_estimates", "reach_radius", "start_grid", "stochastic_gradient",
    "stochastic_loss_and_gradient", "theory_weights", "training_run", "variance_at_init",
]
