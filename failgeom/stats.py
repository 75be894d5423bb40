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
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

from .validation import finite_float, integer


@dataclass(frozen=True)
class SNREstimate:
    """Signal, noise and SNR estimates with two-sided ``level`` intervals."""

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
    """:func:`block_snr` of iid per-sample gradients ``samples`` (M, D) split into ``blocks``
    contiguous blocks of near-equal size (each block's mean and mean squared norm)."""
    g = np.asarray(samples, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"samples must be (M, D), got shape {g.shape}")
    blocks = integer(blocks, "blocks", 3, len(g))
    parts = np.array_split(g, int(blocks))
    return block_snr(np.stack([p.mean(axis=0) for p in parts]),
                     np.array([np.mean(np.sum(p * p, axis=1)) for p in parts]), level)
