"""Flat activations: the forward-only (Isotron/GLMtron) update (paper Sec. 5.5, Appendix A.7).

For an L-Lipschitz non-decreasing ``u`` with ``|u| <= c``, inputs ``||x|| <= 1`` and
``||w||, ||v*|| <= B``, the update ``w <- w - eta (u(w^T x) - y) x`` (backprop through u replaced
by the identity) with ``T = c^4 B^4 L^2 / eps^2`` iterations and ``eta = sqrt(1 / (T c^2))``
reaches expected squared error at most eps: O(L^2 / eps^2) iterations, no dependence on u'.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import generator, positive_float, positive_int


def forward_only_iterations(c: float, B: float, L: float, eps: float) -> float:
    """Appendix A.7's iteration count ``T = c^4 B^4 L^2 / eps^2``."""
    c, B = positive_float(c, "c"), positive_float(B, "B")
    L, eps = positive_float(L, "L"), positive_float(eps, "eps")
    return c**4 * B**4 * L**2 / eps**2


def forward_only_step_size(T: float, c: float) -> float:
    """Appendix A.7's step size ``eta = sqrt(1 / (T c^2))``."""
    return math.sqrt(1.0 / (positive_float(T, "T") * positive_float(c, "c") ** 2))


def lipschitz_activation(r, c: float = 1.0, L: float = 1.0):
    """A non-decreasing, L-Lipschitz activation bounded by c: ``c tanh(L r / c)``."""
    return c * np.tanh(L * np.asarray(r) / c)


def forward_only_run(
    dim: int, c: float, B: float, L: float, eps: float, replicas: int, seed,
    test_size: int = 1024, evaluations: int = 200,
):
    """Run the forward-only update for A.7's ``T`` steps on ``u = c tanh(L r / c)``; R replicas.

    Inputs uniform on the unit sphere in ``R^dim`` (``||x|| = 1``), target ``v*`` of norm B in a
    random direction per replica, ``w_0 = 0``, one fresh sample per step, all replicas as one
    batched computation. The squared error is measured on a fixed test set of ``test_size``
    points per replica, at about ``evaluations`` evenly spaced iterates (every iterate if T is
    smaller), so the mean over the returned columns approximates the average over iterates that
    A.7's argument bounds.

    Returns
    -------
    errors : ndarray (R, E)
        Test squared error ``E (u(w_t^T x) - u(v*^T x))^2`` at the iterates ``steps``.
    steps : ndarray (E,)
        The iterate indices evaluated (0 .. T).
    T : int
    """
    dim = positive_int(dim, "dim")
    R = positive_int(replicas, "replicas")
    test_size = positive_int(test_size, "test_size")
    evaluations = positive_int(evaluations, "evaluations")
    T = int(math.ceil(forward_only_iterations(c, B, L, eps)))
    eta = forward_only_step_size(T, c)
    rng = generator(np.random.SeedSequence(seed) if not isinstance(seed, np.random.SeedSequence) else seed)

    def sphere(*shape):
        x = rng.standard_normal(shape + (dim,))
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    v_star = B * sphere(R)  # (R, dim)
    x_test = sphere(R, test_size)
    y_test = lipschitz_activation(np.einsum("rnd,rd->rn", x_test, v_star), c, L)
    w = np.zeros((R, dim))
    stride = max(1, T // evaluations)
    steps = np.arange(0, T + 1, stride)
    errors = np.empty((R, steps.size))
    for t in range(T + 1):
        if t % stride == 0:
            pred = lipschitz_activation(np.einsum("rnd,rd->rn", x_test, w), c, L)
            errors[:, t // stride] = np.mean((pred - y_test) ** 2, axis=1)
        if t == T:
            break
        x = sphere(R)
        y = lipschitz_activation(np.sum(x * v_star, axis=1), c, L)
        resid = lipschitz_activation(np.sum(x * w, axis=1), c, L) - y
        w -= eta * resid[:, None] * x
    return errors, steps, T
