"""Power-law fits for the scaling laws the paper states (Theorem 3, Appendix A.6, Theorem 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..validation import flag, real_array


@dataclass(frozen=True)
class ExponentFit:
    """Least-squares fit of ``log value = log prefactor + exponent * log n``.

    Attributes
    ----------
    exponent : float
        Fitted slope on log-log axes.
    stderr : float
        Standard error of the slope (from the residuals; 0 for an exact power law).
    ci95 : tuple of float
        95% interval for the slope (Student t with ``len(ns) - 2`` degrees of freedom).
    local_slopes : ndarray
        Slopes between consecutive points, ``diff(log value) / diff(log n)``: a drift in these
        shows that the growth is not a single power over the range.
    prefactor : float
        ``exp(intercept)``.
    ns, values : ndarray
        The data fitted.
    """

    exponent: float
    stderr: float
    ci95: tuple[float, float]
    local_slopes: np.ndarray
    prefactor: float
    ns: np.ndarray
    values: np.ndarray

    def to_dict(self, rate: bool = False) -> dict:
        """The fit in JSON types.

        Parameters
        ----------
        rate : bool
            False: every field (``exponent``, ``stderr``, ``ci95``, ``prefactor``,
            ``local_slopes``, ``ns``, ``values``). True: the layout of an exponential-rate fit
            (:func:`fit_exponential_rate`): ``rate``, ``stderr``, ``ci95``, ``local_rates``.

        Returns
        -------
        dict

        Raises
        ------
        TypeError
            If ``rate`` is not a bool.
        """
        if flag(rate, "rate"):
            return {"rate": self.exponent, "stderr": self.stderr, "ci95": list(self.ci95),
                    "local_rates": np.asarray(self.local_slopes).tolist()}
        return {"exponent": self.exponent, "stderr": self.stderr, "ci95": list(self.ci95),
                "prefactor": self.prefactor, "local_slopes": np.asarray(self.local_slopes).tolist(),
                "ns": np.asarray(self.ns).tolist(), "values": np.asarray(self.values).tolist()}

    def __str__(self) -> str:
        lo, hi = self.ci95
        slopes = ", ".join(f"{s:.3f}" for s in self.local_slopes)
        return f"exponent {self.exponent:.4f} [{lo:.4f}, {hi:.4f}] (local slopes {slopes})"


def _fit_exponent(ns, values, ns_name: str) -> ExponentFit:
    """:func:`fit_exponent`, naming the sizes ``ns_name`` in its messages."""
    ns = real_array(ns, ns_name, finite=False).ravel()
    values = real_array(values, "values", finite=False).ravel()
    if ns.shape != values.shape:
        raise ValueError(f"{ns_name} and values must have the same length, got {ns.size} and {values.size}")
    if ns.size < 3:
        raise ValueError(f"{ns_name} must hold at least 3 points for an interval, got {ns.size}")
    if not (np.all(np.isfinite(ns)) and np.all(ns > 0)):
        raise ValueError(f"{ns_name} must be positive and finite")
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise ValueError("values must be positive and finite")
    if np.unique(ns).size < 2:
        raise ValueError(f"{ns_name} must hold at least 2 distinct {'sizes' if ns_name == 'ns' else 'values'}")
    order = np.argsort(ns, kind="stable")
    ns, values = ns[order], values[order]
    x, y = np.log(ns), np.log(values)
    xm = x - x.mean()
    sxx = float(xm @ xm)
    slope = float(xm @ (y - y.mean())) / sxx
    intercept = float(y.mean() - slope * x.mean())
    resid = y - (intercept + slope * x)
    dof = ns.size - 2
    stderr = float(np.sqrt((resid @ resid) / dof / sxx))
    half = float(stats.t.ppf(0.975, dof)) * stderr
    dx = np.diff(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        local = np.where(dx > 0, np.diff(y) / np.where(dx > 0, dx, 1.0), np.nan)
    return ExponentFit(
        exponent=slope,
        stderr=stderr,
        ci95=(slope - half, slope + half),
        local_slopes=local,
        prefactor=float(np.exp(intercept)),
        ns=ns,
        values=values,
    )


def fit_exponent(ns, values) -> ExponentFit:
    """Fit ``values ~ prefactor * ns**exponent`` by least squares on log-log axes.

    Parameters
    ----------
    ns : array_like of positive numbers, at least 3 points, 2 distinct
        The sizes.
    values : array_like of positive numbers, same length
        The measured quantity.

    Returns
    -------
    ExponentFit

    Raises
    ------
    TypeError
        If ``ns`` or ``values`` does not hold real numbers.
    ValueError
        If they differ in length, hold fewer than 3 points, or a value that is not positive
        and finite.
    """
    return _fit_exponent(ns, values, "ns")


def fit_exponential_rate(xs, values) -> ExponentFit:
    """Fit ``values ~ prefactor * exp(rate * xs)`` (least squares of log value on x).

    Used for the exponential decays of Theorems 1 and 2.

    Parameters
    ----------
    xs : array_like of real numbers, at least 3 points, 2 distinct
        The abscissae (for example d or r).
    values : array_like of positive numbers, same length
        The measured quantity.

    Returns
    -------
    ExponentFit
        ``exponent`` is the rate per unit of x, ``local_slopes`` are ``diff(log value) / diff(x)``
        and ``ns`` holds the sorted ``xs``.

    Raises
    ------
    ValueError
        If ``xs`` is empty; otherwise as :func:`fit_exponent`.
    """
    xs = real_array(xs, "xs").ravel()
    if xs.size == 0:
        raise ValueError("xs must hold at least 3 points for an interval, got 0")
    fit = _fit_exponent(np.exp(xs - xs.min()), values, "xs")
    return ExponentFit(
        exponent=fit.exponent,
        stderr=fit.stderr,
        ci95=fit.ci95,
        local_slopes=fit.local_slopes,
        prefactor=fit.prefactor * float(np.exp(-fit.exponent * xs.min())),
        ns=np.sort(xs),
        values=fit.values,
    )
