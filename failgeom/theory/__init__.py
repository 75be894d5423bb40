"""Closed forms and exact or matrix-free numerics for each theorem and lemma of the paper.

Modules by topic: :mod:`.pwl` (Sec. 4, Lemma 1, Lemma 2, Theorem 3), :mod:`.windows`
(Sec. 4.1.2-4.1.3, Appendix A.6), :mod:`.regression` (Appendix A.5), :mod:`.orthogonal`
(Sec. 2.1, Theorem 1, Lemma 3), :mod:`.periodic` (Theorem 2, the talk's landscape),
:mod:`.decomposition` (Sec. 3.3), :mod:`.flat` (Appendix A.7), :mod:`.scaling` (power-law fits).
See docs/theory.md for the claims, the checks and the measured numbers.
"""

from .decomposition import StocksMoments, ghadimi_lan_iterations, stocks_gradient_norms, stocks_second_moments
from .flat import (
    AverageError,
    ForwardOnlyRun,
    clipped_ramp,
    forward_only_average_error,
    forward_only_horizon,
    forward_only_iterations,
    forward_only_linear_average_error,
    forward_only_run,
    forward_only_sgd,
    forward_only_step_size,
    forward_only_updates,
    lipschitz_activation,
)
from .orthogonal import (
    binary_cube,
    cube_inputs,
    fwht,
    gradient_variance,
    hinge_derivative,
    init_parity_weights,
    network_weights,
    parity_full_gradients,
    parity_gradient_variance,
    parity_network,
    parity_targets,
    two_layer_forward,
)
from .periodic import (
    VarianceEstimate,
    cos_predictor_gradient_bound,
    cos_predictor_gradients,
    exact_linear_periodic_variance,
    gaussian_cos_product,
    linear_periodic_variance,
    periodic_landscape,
    periodic_landscape_gradient,
    periodic_landscape_monte_carlo,
    periodic_landscape_value_and_gradient,
    sphere_directions,
    von_mises_fisher_directions,
)
from .pwl import (
    ConvergenceWarning,
    condition_number,
    divergence_threshold,
    expected_error_norm,
    expected_iterate,
    expected_iterate_recursion,
    iteration_lower_bound,
    lemma1_holds,
    paper_step_threshold,
    pwl_apply,
    pwl_apply_transpose,
    pwl_extreme_eigenvalues,
    pwl_inverse,
    pwl_inverse_apply,
    pwl_matrix,
    pwl_singular_values,
    second_difference_filter,
    sgd_mean_iterate,
    symbolic_pwl_inverse,
)
from .regression import (
    gd_iterations_lower_bound,
    gd_iterations_sufficient,
    gd_regression_error_formula,
    gd_regression_errors,
    printed_lower_bound,
)
from .scaling import ExponentFit, fit_exponent, fit_exponential_rate
from .sparse_parity import sparse_parity_gradient_variance
from .windows import (
    empirical_window_covariance,
    inverse_sqrt,
    kink_second_moment,
    preconditioned_condition_number,
    window_condition_number,
    window_covariance,
    window_gram_integer,
    window_matrix,
)

__all__ = [name for name in dir() if not name.startswith("_") and name not in {
    "annotations", "decomposition", "flat", "orthogonal", "periodic", "pwl", "regression", "scaling",
    "sparse_parity", "windows",
}]
