"""Unbiased estimates of a stochastic gradient's signal, noise and signal-to-noise ratio, with
jackknife confidence intervals (used for the paper's Figure 5).

For a random gradient ``g`` with mean ``mu``: signal ``||mu||^2``, noise ``E ||g - mu||^2``
(the trace of its covariance), SNR = signal / noise. The estimators work on G independent,
identically distributed *blocks*: block b supplies ``m_b``, an unbiased estimate of ``mu``, and
``q_b``, an unbiased estimate of ``E ||g||^2`` (for example the mean gradient of many tuples
formed from the images of block b only). Then, because ``E[m_b . m_c] = ||mu||^2`` for b != c,

    signal = sum_{b != c} m_b . m_c / (G (G - 1)) = (||sum_b m_b||^2 - sum_b ||m_b||^2) / (G (G - 1))

is exactly unbiased (a U-statistic of degree 2 over the blocks), while the plain ``||mean_b m_b||^2``
is biased upward by the variance of the mean. The noise is ``mean_b q_b - signal`` (unbiased) and
the SNR their ratio. The intervals need no model of how a block's estimate was made, only that
blocks are independent and alike (see :func:`block_snr`).

Below them: summaries over replicas (:func:`mean_interval`, :func:`describe`) and quantiles of
right-censored times.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

from .validation import finite_float, flag, integer, real_array


@dataclass(frozen=True)
class SNREstimate:
    """Signal, noise and SNR estimates of a stochastic gradient g, with two-sided ``level``
    intervals (Figure 5's signal-to-noise ratio).

    Attributes
    ----------
    blocks : int
        Number G of independent blocks the estimates come from.
    signal, signal_low, signal_high : float
        Unbiased estimate of ``||E g||^2`` (may be negative) and its interval.
    noise : float
        Unbiased estimate of ``E ||g - E g||^2``.
    snr, snr_low, snr_high : float
        ``signal / noise`` and its interval (infinite ends where the noise is not resolved).
    second_moment : float
        Unbiased estimate of ``E ||g||^2``.
    naive_signal : float
        ``||mean of the block means||^2``, biased upward.
    mean_variance : float
        ``tr Cov(mean of the block means)``: how precisely ``E g`` is known.
    level : float
        Confidence level of the intervals.
    """

    blocks: int
    signal: float          # unbiased estimate of ||E g||^2 (may be negative)
    noise: float           # unbiased estimate of E ||g - E g||^2
    snr: float             # signal / noise
    snr_low: float
    snr_high: float
    signal_low: float
    signal_high: float
    second_moment: float   # unbiased estimate of E ||g||^2
    naive_signal: float    # ||mean of the block means||^2, biased upward
    mean_variance: float   # tr Cov(mean of the block means): how precisely E g is known
    level: float

    @property
    def resolved(self) -> bool:
        """Whether the SNR interval excludes 0 (else only an upper bound is meaningful)."""
        return self.snr_low > 0.0

    @property
    def upper_bound(self) -> float:
        """The interval's upper end: the SNR is below it at the interval's confidence."""
        return self.snr_high

    def to_dict(self) -> dict:
        """The fields plus ``resolved`` and ``upper_bound``, as a JSON-able dict."""
        return {**{name: getattr(self, name) for name in self.__dataclass_fields__},
                "resolved": self.resolved, "upper_bound": self.upper_bound}


@functools.lru_cache(maxsize=64)
def _t_quantile(p: float, df: int) -> float:
    return float(_scipy_stats.t.ppf(p, df))


def _signal(S, SS, G):
    """U-statistic from the sum ``S`` (..., D) of block means and the sum ``SS`` of their
    squared norms over ``G`` blocks."""
    return (np.sum(S * S, axis=-1) - SS) / (G * (G - 1.0))


def block_snr(block_means, block_second_moments, level: float = 0.95) -> SNREstimate:
    """Signal, noise and SNR from G independent blocks, with confidence intervals.

    Parameters
    ----------
    block_means : array (G, D)
        Block b's unbiased estimate ``m_b`` of the mean gradient ``E g``.
    block_second_moments : array (G,)
        Block b's unbiased estimate ``q_b`` of ``E ||g||^2``.
    level : float
        Confidence level of the intervals, in (0, 1).

    Returns
    -------
    SNREstimate

    Raises
    ------
    ValueError
        For mismatched shapes, fewer than 3 blocks, non-finite entries or a level outside (0, 1).

    Notes
    -----
    Signal interval. With ``mbar`` the mean of the block means, ``Sigma = Cov(mbar)`` and
    ``theta = ||mu||^2``, the estimate ``U = ||mbar||^2 - tr(Sigma_hat)`` has variance
    ``2 tr(Sigma^2) + 4 mu^T Sigma mu <= 2 tr(Sigma^2) + 4 theta lambda_max(Sigma)`` (mbar
    Gaussian by the central limit theorem over blocks). The interval is every ``theta`` with
    ``(U - theta)^2 <= z^2 (2 tr(Sigma^2) + 4 theta lambda_max)``, ``z`` the Student t quantile
    at G - 1 degrees of freedom, ``Sigma`` estimated from the block means. Its width depends on
    ``theta``, not on ``mbar`` (a delete-one-block jackknife standard error is proportional to
    ``|mbar|`` when the signal is near 0, and its t interval then misses the truth far more often
    than 5%). The plug-in ``tr(Sigma_hat^2)`` and ``lambda_max`` are biased upward, so the
    interval errs on the wide side; the measured coverage is in the tests.

    Noise: ``mean_b q_b - U`` with a delete-one-block jackknife standard error. The SNR interval
    divides the signal interval's ends by the noise's interval ends that widen it (infinite
    when the noise interval reaches 0).
    """
    m = np.asarray(block_means, dtype=np.float64)
    q = np.asarray(block_second_moments, dtype=np.float64)
    if m.ndim != 2 or q.shape != m.shape[:1]:
        raise ValueError(f"block_means must be (G, D) and block_second_moments (G,), got "
                         f"{m.shape} and {q.shape}")
    G = m.shape[0]
    if G < 3:
        raise ValueError(f"need at least 3 blocks, got {G}")
    level = finite_float(level, "level", 0.0, 1.0, low_open=True, high_open=True)
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(q))):
        raise ValueError("block_means and block_second_moments must be finite")
    sq = np.sum(m * m, axis=1)
    S, SS, Q = m.sum(axis=0), sq.sum(), q.sum()
    signal = _signal(S, SS, G)
    second = Q / G
    noise = second - signal
    z = _t_quantile(0.5 + level / 2.0, G - 1)
    # Sigma_hat = C^T C / ((G-1) G) shares its nonzero eigenvalues with the G x G matrix K
    C = m - S / G
    K = C @ C.T / ((G - 1.0) * G)
    t2 = float(np.sum(K * K))
    lam = float(max(np.linalg.eigvalsh(K)[-1], 0.0))
    b = signal + 2.0 * z * z * lam
    r = float(np.sqrt(max(b * b - signal * signal + 2.0 * z * z * t2, 0.0)))
    signal_low, signal_high = b - r, b + r
    # noise: delete-one-block jackknife
    noise_j = (Q - q) / (G - 1) - _signal(S[None] - m, SS - sq, G - 1)
    se_noise = float(np.sqrt((G - 1.0) / G * np.sum((noise_j - noise_j.mean()) ** 2)))
    n_lo, n_hi = noise - z * se_noise, noise + z * se_noise
    if n_lo > 0:
        snr_low = signal_low / (n_hi if signal_low >= 0 else n_lo)
        snr_high = signal_high / (n_lo if signal_high >= 0 else n_hi)
    else:  # the noise is not resolved: the SNR is unbounded
        snr_low, snr_high = -np.inf, np.inf
    naive = float(np.sum((S / G) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = float(signal / noise)
    return SNREstimate(G, float(signal), float(noise), snr, float(snr_low),
                       float(snr_high), float(signal_low), float(signal_high), float(second),
                       naive, float(np.trace(K)), float(level))


def sample_snr(samples, blocks: int, level: float = 0.95) -> SNREstimate:
    """:func:`block_snr` of iid per-sample gradients split into contiguous blocks.

    Parameters
    ----------
    samples : array_like, shape (M, D)
        M independent per-sample gradients of D parameters.
    blocks : int
        Number of blocks of near-equal size, in [3, M]; each block gives its mean and mean
        squared norm.
    level : float
        Confidence level of the intervals, in (0, 1).

    Returns
    -------
    SNREstimate

    Raises
    ------
    ValueError
        If ``samples`` is not 2-D, or ``blocks`` or ``level`` is out of range (TypeError for a
        ``blocks`` that is no integer).
    """
    g = np.asarray(samples, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"samples must be (M, D), got shape {g.shape}")
    blocks = integer(blocks, "blocks", 3, len(g))
    parts = np.array_split(g, int(blocks))
    return block_snr(np.stack([p.mean(axis=0) for p in parts]),
                     np.array([np.mean(np.sum(p * p, axis=1)) for p in parts]), level)


# ---------------------------------------------------------------------------------------------
# summaries over replicas


def mean_interval(values, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over the last axis and its two-sided Student-t interval.

    Parameters
    ----------
    values : array_like, shape (..., n)
        Independent replicas along the last axis, kept in their own float dtype.
    level : float in (0, 1)
        Confidence of the interval.

    Returns
    -------
    mean, low, high : ndarray, shape (...)
        ``mean -+ t_{(1 + level) / 2, n - 1} s / sqrt(n)`` with ``s`` the sample standard
        deviation (``ddof=1``); ``low`` and ``high`` are NaN when ``n < 2``.

    Raises
    ------
    TypeError
        If ``values`` does not hold real numbers.
    ValueError
        If the last axis is empty (or ``values`` is a scalar), or ``level`` is not in (0, 1).
    """
    level = finite_float(level, "level", 0, 1, low_open=True, high_open=True)
    values = real_array(values, "values", finite=False, dtype=None)
    if values.ndim == 0 or values.shape[-1] == 0:
        raise ValueError(f"values must hold at least one replica along its last axis, got shape {values.shape}")
    n = values.shape[-1]
    mean = values.mean(axis=-1)
    if n < 2:
        return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    half = _t_quantile(0.5 + level / 2, n - 1) * values.std(axis=-1, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def describe(values, *, finite: bool = False, prefix: str = "") -> dict:
    """Mean, standard deviation (``ddof=0``), minimum and maximum of per-replica values.

    Parameters
    ----------
    values : array_like
        Every entry counts (any shape), in its own float dtype.
    finite : bool
        Summarise only the finite entries, and give None for all four when there is none.
    prefix : str
        Put before each key (``prefix="final_accuracy_"`` gives ``final_accuracy_mean``, ...).

    Returns
    -------
    dict
        ``{prefix + "mean", prefix + "std", prefix + "min", prefix + "max"}`` as Python floats,
        in that order.

    Raises
    ------
    TypeError
        If ``values`` does not hold real numbers, or ``prefix`` is not a string.
    ValueError
        If there is no entry to summarise (and ``finite`` is false).
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
    v = real_array(values, "values", finite=False, dtype=None)
    if flag(finite, "finite"):
        v = v[np.isfinite(v)]
        if v.size == 0:
            return {prefix + key: None for key in ("mean", "std", "min", "max")}
    if v.size == 0:
        raise ValueError("values must hold at least one entry")
    return {prefix + "mean": float(v.mean()), prefix + "std": float(v.std()),
            prefix + "min": float(v.min()), prefix + "max": float(v.max())}


# ---------------------------------------------------------------------------------------------
# right-censored times: Kaplan-Meier quantiles, their bootstrap, local slopes on log-log axes
#
# A run that hits its step limit has not converged: its time is only known to exceed the limit
# (right-censored). The quantiles below never treat such a time as an observation; a quantile
# the data do not reach is +inf ("not observed"), and a slope through an unobserved point is
# not fitted.


def _censored_arrays(times, observed):
    t = np.asarray(times, dtype=np.float64)
    e = np.asarray(observed, dtype=bool)
    if t.shape != e.shape or t.ndim < 1 or t.shape[-1] == 0:
        raise ValueError(f"times and observed must have the same non-empty shape, got {t.shape} and {e.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times must be finite (a censored time is the step at which observation stopped)")
    return t, e


def _check_q(q) -> float:
    return finite_float(q, "q", 0.0, 1.0, low_open=True, high_open=True)


def kaplan_meier_quantile(times, observed, q: float = 0.5) -> float:
    """The q-quantile of a right-censored sample by Kaplan-Meier (``scipy.stats.ecdf``).

    Parameters
    ----------
    times : array_like, shape (R,)
        Event times, or for a censored unit the time at which observation stopped.
    observed : bool array_like, shape (R,)
        True where the event was seen, False where the time is censored.
    q : float
        In (0, 1); 0.5 is the median.

    Returns
    -------
    float
        The smallest event time at which the Kaplan-Meier estimate of the distribution function
        reaches q; ``inf`` when it never does (the quantile is not observed).

    Raises
    ------
    ValueError
        If ``times`` is not 1-D, not finite or not shaped like ``observed``, or q is outside (0, 1).
    """
    t, e = _censored_arrays(times, observed)
    q = _check_q(q)
    if t.ndim != 1:
        raise ValueError(f"times must be 1-D, got shape {t.shape}")
    if not e.any():
        return float("inf")
    res = _scipy_stats.ecdf(_scipy_stats.CensoredData(uncensored=t[e], right=t[~e]))
    reached = np.flatnonzero(res.cdf.probabilities >= q - 1e-12)
    return float(res.cdf.quantiles[reached[0]]) if reached.size else float("inf")


def kaplan_meier_quantiles(times, observed, q: float = 0.5) -> np.ndarray:
    """:func:`kaplan_meier_quantile` of every row of ``times`` (..., R), vectorized.

    At a time shared by events and censorings the events come first (the usual convention);
    the product-limit estimate is accumulated one unit at a time, which gives the same survival
    after a block of ties as the grouped formula.

    Parameters
    ----------
    times, observed : array_like, shape (..., R)
    q : float

    Returns
    -------
    ndarray, shape (...)
        ``inf`` where the quantile is not observed.
    """
    t, e = _censored_arrays(times, observed)
    q = _check_q(q)
    R = t.shape[-1]
    order = np.lexsort((~e, t), axis=-1)  # by time, events before censorings
    ts = np.take_along_axis(t, order, axis=-1)
    es = np.take_along_axis(e, order, axis=-1)
    at_risk = R - np.arange(R, dtype=np.float64)
    survival = np.cumprod(np.where(es, 1.0 - 1.0 / at_risk, 1.0), axis=-1)
    hit = es & (1.0 - survival >= q - 1e-12)
    first = np.argmax(hit, axis=-1)
    value = np.take_along_axis(ts, first[..., None], axis=-1)[..., 0]
    return np.where(hit.any(axis=-1), value, np.inf)


def bootstrap_quantiles(times, observed, rng: np.random.Generator, resamples: int, q: float = 0.5,
                        groups=None) -> np.ndarray:
    """Kaplan-Meier q-quantiles of ``resamples`` bootstrap resamples of the units.

    With ``groups`` (one label per unit) units are resampled within their group, and each
    resample's value is the smallest of the groups' quantiles (the envelope over, e.g., a grid
    of learning rates: an unobserved group quantile is +inf and so never the minimum unless all
    are).

    Parameters
    ----------
    times, observed : array_like, shape (R,)
    rng : numpy.random.Generator
    resamples : int
    q : float
    groups : array_like of shape (R,), optional

    Returns
    -------
    ndarray, shape (resamples,)

    Raises
    ------
    ValueError
        If ``groups`` is not shaped like ``times``, or ``times`` and ``observed`` differ in shape
        or hold non-finite times.
    """
    t, e = _censored_arrays(times, observed)
    labels = np.zeros(t.shape, dtype=np.int64) if groups is None else np.asarray(groups)
    if labels.shape != t.shape:
        raise ValueError(f"groups must have the shape of times {t.shape}, got {labels.shape}")
    best = np.full(int(resamples), np.inf)
    for g in np.unique(labels):  # a handful of groups
        idx = np.flatnonzero(labels == g)
        pick = idx[rng.integers(0, idx.size, size=(int(resamples), idx.size))]
        best = np.minimum(best, kaplan_meier_quantiles(t[pick], e[pick], q))
    return best


def group_quantile(times, observed, q: float = 0.5, groups=None) -> float:
    """The Kaplan-Meier q-quantile, or with ``groups`` the smallest of the groups' quantiles.

    Parameters
    ----------
    times, observed : array_like, shape (R,)
        Event (or censoring) times and whether each event was seen, as in
        :func:`kaplan_meier_quantile`.
    q : float
        In (0, 1); 0.5 is the median.
    groups : array_like of shape (R,), optional
        One label per unit (a learning rate, say); None: one group.

    Returns
    -------
    float
        ``inf`` where no group's quantile is observed.
    """
    t, e = _censored_arrays(times, observed)
    labels = np.zeros(t.shape, dtype=np.int64) if groups is None else np.asarray(groups)
    return min(kaplan_meier_quantile(t[labels == g], e[labels == g], q) for g in np.unique(labels))


def percentile_interval(values, level: float = 0.95) -> list:
    """The central ``level`` percentile interval of bootstrap values that may be infinite or NaN.

    Parameters
    ----------
    values : array_like
        Bootstrap values; a NaN (a resample whose value is undetermined) counts against both ends.
    level : float
        The central fraction covered, 0.95 by default.

    Returns
    -------
    list
        ``[lo, hi]``, None for an infinite end (unbounded at this level).

    Raises
    ------
    ValueError
        If ``values`` is empty.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("values must be non-empty")
    a = (1.0 - level) / 2.0
    lo = np.sort(np.where(np.isnan(v), -np.inf, v))[int(np.floor(a * (v.size - 1)))]
    hi = np.sort(np.where(np.isnan(v), np.inf, v))[int(np.ceil((1.0 - a) * (v.size - 1)))]
    return [float(lo) if np.isfinite(lo) else None, float(hi) if np.isfinite(hi) else None]


def log_slopes(ns, values) -> np.ndarray:
    """Least-squares slope of ``log values`` on ``log ns`` along the last axis.

    ``values`` (..., L) may hold +inf (an unobserved quantile): the slope is then +inf if every
    such point lies above the mean of ``log ns`` (the curve is at least that steep), -inf if
    every one lies below, NaN if both.

    Parameters
    ----------
    ns : array_like, shape (L,)
        The sizes (positive).
    values : array_like, shape (..., L)
        The values at each size (positive, or +inf).

    Returns
    -------
    ndarray, shape (...)
        The fitted exponent of ``values ~ ns^slope`` per row.
    """
    x = np.log(np.asarray(ns, dtype=np.float64))
    x = x - x.mean()
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    y = np.log(np.where(finite, v, 1.0))
    slope = (y - y.mean(axis=-1, keepdims=True)) @ x / (x @ x)
    up = np.any(~finite & (x > 0), axis=-1)
    down = np.any(~finite & (x <= 0), axis=-1)
    return np.where(up & down, np.nan, np.where(up, np.inf, np.where(down, -np.inf, slope)))


def windowed_slopes(ns, point, boot, window: int = 3, level: float = 0.95) -> list[dict]:
    """Local slopes of a quantile in n over sliding windows of ``window`` consecutive sizes.

    Parameters
    ----------
    ns : array_like, shape (L,)
        Increasing sizes.
    point : array_like, shape (L,)
        The quantile at each size (inf where not observed).
    boot : array_like, shape (B, L)
        Its bootstrap resamples (independent across sizes: each size is its own run).
    window : int
        Sizes per window (2: consecutive pairs).
    level : float

    Returns
    -------
    list of dict
        One per window: ``ns``, ``slope`` (None when a point of the window is not observed:
        such a window is never fitted), ``ci`` (percentile interval; None ends are unbounded),
        ``rise`` and ``rise_ci`` (this slope minus the previous window's, paired over the same
        resamples; None for the first window).
    """
    ns = np.asarray(ns, dtype=np.float64)
    point = np.asarray(point, dtype=np.float64)
    boot = np.asarray(boot, dtype=np.float64)
    out, prev = [], None
    for j in range(ns.size - window + 1):
        sl = slice(j, j + window)
        observed = bool(np.all(np.isfinite(point[sl])))
        slope = float(log_slopes(ns[sl], point[sl])) if observed else None
        b = log_slopes(ns[sl], boot[:, sl])
        row = {"ns": ns[sl].astype(int).tolist(), "slope": slope, "ci": percentile_interval(b, level),
               "rise": None, "rise_ci": None}
        if prev is not None and slope is not None and prev[0] is not None:
            with np.errstate(invalid="ignore"):
                row["rise"] = slope - prev[0]
                row["rise_ci"] = percentile_interval(b - prev[1], level)
        out.append(row)
        prev = (slope, b)
    return out
