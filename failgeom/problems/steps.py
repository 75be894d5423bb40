"""Flat activations (paper Sec. 5): the step function ``u``, its grid, its smooth surrogate, data.

The target is ``y = u(v*^T x + b*)`` with ``u`` a known non-decreasing step function: ``u(r)`` is
the largest grid value ``z_i <= r`` (floor onto the grid). As in the original code the grid is
``Z = b* + OFFSETS`` with :data:`PAPER_OFFSETS`, deduplicated and sorted, so every replica (each
with its own ``b*``) has its own grid. Grids are stored padded, ``(R, K)`` with ``+inf`` after a
replica's last value, and every operation is vectorized over replicas by comparison counting.

Also here: the sum-of-sigmoids approximation of 5.2, the sampler ``x = randn(n) / n``, and the
per-replica accuracy of a prediction of ``u`` (:func:`step_metrics`). Appendix A.7's Lipschitz
target lives with its theory in :mod:`failgeom.theory.flat`.
"""

from __future__ import annotations

import numpy as np

from ..nn.utils import as_dtype
from ..validation import positive_float, positive_int

#: Grid offsets of the original code: ``{-100, -95, ..., 95}`` and a fine part around 0.
PAPER_OFFSETS = tuple(sorted(
    set(float(v) for v in range(-100, 100, 5))
    | {-5.0, -4.0, -3.0, -2.0, -1.0, -0.2, 0.0, 0.1, 0.15, 0.175, 1.0, 2.0, 3.0, 4.0, 5.0}
))

#: The original surrogate ``sigmoid(SHARPNESS (r - m_i) / (dz_i * WIDTH))`` with
#: ``m_i = z_{i+1} - dz_i * SHIFT``: a logistic ramp of width about ``dz_i / 50`` just
#: before each jump.
SIGMOID_SHARPNESS = 5.0
SIGMOID_WIDTH = 0.1
SIGMOID_SHIFT = 1.0 / 20.0


def _stable_sigmoid(t: np.ndarray) -> np.ndarray:
    # clipped at +-40, where the sigmoid is within 4e-18 of 0 or 1: exp never overflows nor
    # underflows to subnormals (which is many times slower), and 1/(1 + e^-t) loses no accuracy
    return 1.0 / (1.0 + np.exp(-np.clip(t, -40.0, 40.0)))


class StepFunction:
    """Per-replica step functions ``u_r(t) = max{z in Z_r : z <= t}`` (paper Sec. 5).

    Parameters
    ----------
    grids : sequence of 1-D arrays, or ndarray (R, K)
        Each replica's grid values (any order, duplicates allowed; they are sorted and
        deduplicated). A 2-D array may be padded with ``+inf``.

    Attributes
    ----------
    grid : ndarray (R, K), float64
        Sorted grids, padded with ``+inf`` up to the longest one.
    n_steps : ndarray (R,), int
        Number of grid values (= number of steps) of each replica, as measured after
        deduplication.

    Raises
    ------
    ValueError
        If there is no grid, a grid holds no finite value, or a value is NaN or ``-inf``.

    Notes
    -----
    Below the smallest grid value the function is taken to be that value (the paper's grid
    spans ``b* - 100 .. b* + 95`` while ``r`` stays within a few tenths of ``b*``, so this never
    matters for the experiments). Comparisons are made in the dtype of the argument, so that
    ``u(z) == z`` holds exactly for every grid value ``z`` cast to that dtype.
    """

    def __init__(self, grids):
        rows = [np.unique(np.asarray(g, dtype=np.float64).ravel()) for g in grids]
        rows = [row[~np.isposinf(row)] for row in rows]  # drop the +inf padding
        if not rows or any(row.size == 0 for row in rows):
            raise ValueError("grids must hold at least one finite value per replica")
        if any(not np.all(np.isfinite(row)) for row in rows):
            raise ValueError("grids must hold finite values (only +inf padding is allowed)")
        K = max(row.size for row in rows)
        self.n_steps = np.array([row.size for row in rows], dtype=np.int64)
        self.grid = np.full((len(rows), K), np.inf)
        for r, row in enumerate(rows):  # set-up only
            self.grid[r, :row.size] = row
        # grid values with the padding replaced by each replica's last value (for lookups)
        last = self.grid[np.arange(len(rows)), self.n_steps - 1]
        self.values = np.where(np.isfinite(self.grid), self.grid, last[:, None])
        # step heights dz_i = z_{i+1} - z_i (0 for padding), shape (R, K - 1)
        self.heights = np.where(np.isfinite(self.grid[:, 1:]), np.diff(self.values, axis=1), 0.0)
        self._cast = {}

    @property
    def replicas(self) -> int:
        """Number of replicas R."""
        return self.grid.shape[0]

    def __repr__(self) -> str:
        return f"StepFunction(replicas={self.replicas}, n_steps={self.n_steps.tolist()})"

    def _grid_as(self, dtype, fill_last: bool = False) -> np.ndarray:
        key = (np.dtype(dtype), fill_last)
        if key not in self._cast:
            source = self.values if fill_last else self.grid
            self._cast[key] = source.astype(dtype)
        return self._cast[key]

    def _check(self, t, name: str = "r") -> np.ndarray:
        t = np.asarray(t)
        if not np.issubdtype(t.dtype, np.floating):
            t = t.astype(np.float64)
        if t.ndim < 1 or t.shape[0] != self.replicas:
            raise ValueError(f"{name} must have a leading replica axis of size {self.replicas}, got shape {t.shape}")
        if not np.all(np.isfinite(t)):
            raise ValueError(f"{name} must be finite")
        return t

    def _expand(self, table: np.ndarray, ndim: int) -> np.ndarray:
        """``(R, K)`` -> ``(R, 1, ..., 1, K)`` to broadcast against ``(R, *shape, K)``."""
        return table.reshape((table.shape[0],) + (1,) * (ndim - 1) + (table.shape[1],))

    def index(self, r) -> np.ndarray:
        """Step index ``i`` with ``z_i <= r < z_{i+1}`` (0 below the grid).

        Vectorized over replicas by counting grid values ``<= r``.

        Parameters
        ----------
        r : array_like, shape (R, ...)
            Finite.

        Returns
        -------
        int ndarray, shape of ``r``

        Raises
        ------
        ValueError
            If ``r`` has no leading axis of size R or is not finite.
        """
        r = self._check(r)
        grid = self._expand(self._grid_as(r.dtype), r.ndim)
        count = (grid <= r[..., None]).sum(axis=-1)
        return np.maximum(count - 1, 0)

    def value_of(self, index) -> np.ndarray:
        """Grid values ``z_index`` of integer step indices.

        Parameters
        ----------
        index : int array_like, shape (R, ...)
            In ``0..n_steps[r]-1`` for replica r.

        Returns
        -------
        ndarray, shape of ``index``, float64

        Raises
        ------
        TypeError
            If ``index`` does not hold integers.
        ValueError
            If it has no leading axis of size R or an index is out of range.
        """
        index = np.asarray(index)
        if index.ndim < 1 or index.shape[0] != self.replicas:
            raise ValueError(f"index must have a leading replica axis of size {self.replicas}, got shape {index.shape}")
        if not np.issubdtype(index.dtype, np.integer):
            raise TypeError(f"index must hold integers, got dtype {index.dtype}")
        flat = index.reshape(self.replicas, -1)
        if flat.size and (flat.min() < 0 or np.any(flat >= self.n_steps[:, None])):
            raise ValueError("index must lie in 0..n_steps-1 of its replica")
        return np.take_along_axis(self.values, flat, axis=1).reshape(index.shape)

    def __call__(self, r) -> np.ndarray:
        """``u(r)``: the largest grid value ``<= r``, in the dtype of ``r``.

        Parameters
        ----------
        r : array_like, shape (R, ...)
            Finite.

        Returns
        -------
        ndarray, shape of ``r``

        Raises
        ------
        ValueError
            If ``r`` has no leading axis of size R or is not finite.
        """
        r = self._check(r)
        idx = self.index(r)
        values = self._grid_as(r.dtype, fill_last=True)
        return np.take_along_axis(values, idx.reshape(self.replicas, -1), axis=1).reshape(r.shape)

    def nearest_index(self, v) -> np.ndarray:
        """Index of the grid value nearest to ``v`` (ties go up); used to read a continuous
        prediction as a step.

        Parameters
        ----------
        v : array_like, shape (R, ...)
            Finite.

        Returns
        -------
        int ndarray, shape of ``v``

        Raises
        ------
        ValueError
            If ``v`` has no leading axis of size R or is not finite.
        """
        v = self._check(v, "v")
        mid = 0.5 * (self.values[:, 1:] + self.values[:, :-1])
        mid = np.where(np.isfinite(self.grid[:, 1:]), mid, np.inf).astype(v.dtype)
        return (self._expand(mid, v.ndim) <= v[..., None]).sum(axis=-1)

    def boundary_distance(self, r) -> np.ndarray:
        """Distance from ``r`` to the nearest jump (grid value).

        Parameters
        ----------
        r : array_like, shape (R, ...)
            Finite.

        Returns
        -------
        ndarray, shape of ``r``, float64

        Raises
        ------
        ValueError
            If ``r`` has no leading axis of size R or is not finite.
        """
        r = np.asarray(self._check(r), dtype=np.float64)
        grid = self._expand(self.grid, r.ndim)
        return np.abs(grid - r[..., None]).min(axis=-1)

    def smooth(self, r):
        """Sum-of-sigmoids approximation of Sec. 5.2 and its derivative.

        ``u~(r) = z_0 + sum_i dz_i sigmoid(5 (r - m_i) / (dz_i / 10))``, ``m_i = z_{i+1} - dz_i/20``:
        one sigmoid per step, amplitude the step height. Its derivative is
        ``sum_i (50) s_i (1 - s_i)``, which vanishes except within a few ``dz_i / 50`` of a jump.

        Parameters
        ----------
        r : array_like, shape (R, ...)
            Finite.

        Returns
        -------
        value, derivative : ndarray, shape and dtype of ``r``

        Raises
        ------
        ValueError
            If ``r`` has no leading axis of size R or is not finite.
        """
        r = self._check(r)
        dz = self.heights
        safe = np.where(dz > 0, dz, 1.0)
        slope = np.where(dz > 0, SIGMOID_SHARPNESS / (SIGMOID_WIDTH * safe), 0.0)
        centre = self.values[:, 1:] - dz * SIGMOID_SHIFT
        t = (r[..., None] - self._expand(centre, r.ndim)) * self._expand(slope, r.ndim)
        s = _stable_sigmoid(t)
        value = self.values[:, 0].reshape((-1,) + (1,) * (r.ndim - 1)) + (s * self._expand(dz, r.ndim)).sum(-1)
        deriv = (s * (1.0 - s) * self._expand(slope * dz, r.ndim)).sum(-1)
        return value.astype(r.dtype), deriv.astype(r.dtype)


def paper_grids(b_star, offsets=PAPER_OFFSETS) -> StepFunction:
    """The grids ``Z_r = b*_r + offsets`` (deduplicated, sorted) of Sec. 5, one per replica.

    Parameters
    ----------
    b_star : array_like, shape (R,)
        Each replica's target bias.
    offsets : array_like, shape (K,)
        Finite grid offsets, by default :data:`PAPER_OFFSETS`.

    Returns
    -------
    StepFunction
        Of R replicas.

    Raises
    ------
    ValueError
        If ``b_star`` is not a non-empty 1-D array or ``offsets`` not a non-empty 1-D array of
        finite numbers.
    """
    b_star = np.asarray(b_star, dtype=np.float64)
    if b_star.ndim != 1 or b_star.size == 0:
        raise ValueError(f"b_star must be a non-empty 1-D array (one bias per replica), got shape {b_star.shape}")
    offsets = np.asarray(offsets, dtype=np.float64)
    if offsets.ndim != 1 or offsets.size == 0 or not np.all(np.isfinite(offsets)):
        raise ValueError("offsets must be a non-empty 1-D array of finite numbers")
    return StepFunction(b_star[:, None] + offsets[None, :])


def draw_targets(rngs, n_inputs: int = 100):
    """Each replica's ``v* ~ N(0, I_n)`` and ``b* ~ N(0, 1)``, from its own generator.

    Parameters
    ----------
    rngs : sequence of R Generators
    n_inputs : int
        Input dimension n.

    Returns
    -------
    v_star : ndarray, shape (R, n), float64
    b_star : ndarray, shape (R,), float64

    Raises
    ------
    TypeError
        If ``rngs`` is not a non-empty sequence of Generators (TypeError or ValueError also if
        ``n_inputs`` is not a positive integer).
    """
    n_inputs = positive_int(n_inputs, "n_inputs")
    if not rngs or not all(isinstance(g, np.random.Generator) for g in rngs):
        raise TypeError("rngs must be a non-empty sequence of numpy Generators (one per replica)")
    v_star = np.empty((len(rngs), n_inputs))
    b_star = np.empty(len(rngs))
    for r, rng in enumerate(rngs):  # set-up only: one draw per replica stream
        v_star[r] = rng.standard_normal(n_inputs)
        b_star[r] = rng.standard_normal()
    return v_star, b_star


def sample_steps(rng: np.random.Generator, v_star, b_star, step: StepFunction, batch: int,
                 dtype=np.float32):
    """A fresh minibatch per replica for the step problem (Sec. 5, original code).

    ``x = randn(n) / n``, ``r = v*^T x + b*``, ``y = u(r)``.

    Parameters
    ----------
    rng : numpy.random.Generator
    v_star : array_like, shape (R, n)
    b_star : array_like, shape (R,)
    step : StepFunction
        Of R replicas, the target's ``u``.
    batch : int
        Examples per replica, B.
    dtype : {float32, float64}

    Returns
    -------
    x : ndarray (R, B, n), dtype
    r : ndarray (R, B), float64
        The target's pre-activation (computed in ``dtype``).
    index : ndarray (R, B), int64
        The step index of ``r`` (the multiclass label).
    y : ndarray (R, B, 1), dtype
        The target ``u(r)``.

    Raises
    ------
    TypeError
        If ``rng`` is not a Generator (TypeError or ValueError also for a bad ``batch`` or
        ``dtype``).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    batch = positive_int(batch, "batch")
    dtype = as_dtype(dtype)
    v_star = np.asarray(v_star, dtype=np.float64)
    R, n = v_star.shape
    x = rng.standard_normal((R, batch, n), dtype=dtype)
    x /= dtype.type(n)
    r = np.matmul(x, v_star[:, :, None].astype(dtype))[..., 0].astype(np.float64) + np.asarray(b_star)[:, None]
    index = step.index(r)
    y = step.value_of(index).astype(dtype)[..., None]
    return x, r, index, y


def step_metrics(step: StepFunction, yhat, r, boundary_width: float) -> dict:
    """Per-replica accuracy of predictions ``yhat`` of ``u(r)``.

    Parameters
    ----------
    step : StepFunction
        Of R replicas.
    yhat : array_like, shape (R, B)
        Predictions.
    r : array_like, shape (R, B)
        The target's pre-activations.
    boundary_width : float
        Positive: points with ``r`` within it of a jump count as at a boundary.

    Returns
    -------
    dict of (R,) arrays
        ``test_mse``: ``mean (yhat - u(r))^2``. ``exact_step_fraction``: fraction of points
        whose prediction, read as the nearest grid value, is the right step (for learners that
        output grid values, exact equality). ``boundary_error_rate``: the wrong-step fraction
        among points with ``r`` within ``boundary_width`` of a jump (NaN if there is none);
        ``interior_error_rate``: the same among the other points. ``boundary_fraction``: share
        of points at a boundary.

    Raises
    ------
    ValueError
        If ``boundary_width`` is not a positive finite number, or ``yhat`` or ``r`` has no
        leading axis of size R or is not finite.
    """
    boundary_width = positive_float(boundary_width, "boundary_width")
    yhat = np.asarray(yhat, dtype=np.float64)
    idx = step.index(r)
    y = step.value_of(idx)
    wrong = step.nearest_index(yhat) != idx
    near = step.boundary_distance(r) < boundary_width
    n_near = near.sum(axis=1)
    n_far = (~near).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        boundary = np.where(n_near > 0, (wrong & near).sum(axis=1) / n_near, np.nan)
        interior = np.where(n_far > 0, (wrong & ~near).sum(axis=1) / n_far, np.nan)
    return {
        "test_mse": ((yhat - y) ** 2).mean(axis=1),
        "exact_step_fraction": 1.0 - wrong.mean(axis=1),
        "boundary_error_rate": boundary,
        "interior_error_rate": interior,
        "boundary_fraction": near.mean(axis=1),
    }
