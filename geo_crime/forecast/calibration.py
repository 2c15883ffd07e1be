"""Split-conformal calibration of the Keras forecaster's prediction intervals.

The quantile heads of the network (:func:`geo_crime.forecast.network.build_network`) give the
shape of the 80% interval; the factors here give its level. :func:`fit_calibration` computes
per-bin multipliers of the bounds on rows no final network was trained on (Mondrian conformal:
bins of the predicted mean), :func:`apply_calibration` applies them, and
:func:`split_half_coverage` estimates the coverage on new periods honestly (factors from the
earlier half of a held-out block, coverage on the later half). See
:mod:`geo_crime.forecast.model` for which block calibrates.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NO_CALIBRATION",
    "apply_calibration",
    "fit_calibration",
    "interval_coverage",
    "split_half_coverage",
]

#: Interval calibration that leaves the quantile heads as they are (one bin, factors one).
NO_CALIBRATION: dict[str, list[float]] = {"edges": [], "lower": [1.0], "upper": [1.0]}


def _conformal_factors(
    y: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float
) -> tuple[float, float]:
    """Lower and upper multipliers giving ``level`` coverage on ``y`` (see ``fit_calibration``)."""
    n = len(y)
    if n < 10:
        return 1.0, 1.0
    lo_f = 1.0
    ok = lower > 0
    if ok.sum() >= 10:
        lo_f = float(np.quantile(y[ok] / lower[ok], (1.0 - level) / 2.0, method="lower"))
    above = y >= lower * lo_f
    hi_f = 1.0
    if (upper > 0).all():
        ratios = np.sort(y[above] / upper[above])
        need = int(np.ceil(level * (n + 1)))
        if need <= len(ratios):
            hi_f = float(ratios[need - 1])
        elif len(ratios):
            hi_f = float(ratios[-1])
    return lo_f, hi_f


def fit_calibration(
    actual: np.ndarray,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    level: float,
) -> dict[str, list[float]]:
    """Split-conformal factors of the interval bounds, per bin of the predicted mean.

    The rows are split into up to five bins of the predicted mean (quantile edges, at least 200
    rows per bin); in each bin the lower bound is multiplied by the ``(1 - level) / 2`` quantile
    of ``actual / lower``, then the upper bound by the smallest factor for which the interval
    holds ``level`` of the bin's actuals (finite-sample corrected). Binning (Mondrian conformal)
    keeps the intervals of busy cells meaningful when most cells are quiet: in a bin where more
    than ``level`` of the actuals are zero the interval is ``[0, 0]``, which is the honest 80%
    interval there. The heads give the shape within a bin, the factors the level. The rows must
    be ones the networks were not trained on, or the factors are too small.

    Parameters
    ----------
    actual : numpy.ndarray
        Observed targets of the calibration rows.
    mean, lower, upper : numpy.ndarray
        The networks' mean and uncalibrated bounds on the same rows (target units).
    level : float
        Nominal coverage.

    Returns
    -------
    dict
        ``edges`` (bin edges of the predicted mean) and the per-bin ``lower`` and ``upper``
        factors, as read by :func:`apply_calibration`.
    """
    if len(actual) == 0:
        return NO_CALIBRATION
    n_bins = int(np.clip(len(actual) // 200, 1, 5))
    edges = np.quantile(mean, np.linspace(0, 1, n_bins + 1)[1:-1]).tolist()
    which = np.searchsorted(edges, mean, side="right")
    lower_factors, upper_factors = [], []
    for b in range(n_bins):
        in_bin = which == b
        lo_f, hi_f = _conformal_factors(actual[in_bin], lower[in_bin], upper[in_bin], level)
        lower_factors.append(lo_f)
        upper_factors.append(hi_f)
    return {"edges": edges, "lower": lower_factors, "upper": upper_factors}


def apply_calibration(
    calibration: dict[str, list[float]], mean: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rescale uncalibrated bounds by the factors of their bin of the predicted mean.

    Parameters
    ----------
    calibration : dict
        Output of :func:`fit_calibration`.
    mean, lower, upper : numpy.ndarray
        Predicted mean and uncalibrated bounds (target units).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The calibrated ``(lower, upper)``.
    """
    which = np.searchsorted(np.asarray(calibration["edges"], dtype=float), mean, side="right")
    return (
        lower * np.asarray(calibration["lower"])[which],
        upper * np.asarray(calibration["upper"])[which],
    )


def interval_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float | None:
    """Share of ``actual`` inside ``[lower, upper]``.

    Parameters
    ----------
    actual, lower, upper : numpy.ndarray
        Observed values and interval bounds of the same rows.

    Returns
    -------
    float or None
        None without rows.
    """
    if len(actual) == 0:
        return None
    return float(((actual >= lower) & (actual <= upper)).mean())


def split_half_coverage(
    actual: np.ndarray,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    origin: np.ndarray,
    level: float,
) -> float | None:
    """Out-of-sample coverage of conformal calibration on a held-out block.

    Factors are fitted (:func:`fit_calibration`) on the rows of the earlier half of the block's
    origins and the coverage of the rescaled interval is counted on the later half, so no row
    scores factors it helped to set. The coverage of the final factors on the whole block is
    at least ``level`` by construction and says nothing about new periods; this estimate does.

    Parameters
    ----------
    actual, mean, lower, upper : numpy.ndarray
        Observed targets, predicted mean and uncalibrated bounds of the held-out rows.
    origin : numpy.ndarray
        Origin period of each row.
    level : float
        Nominal coverage.

    Returns
    -------
    float or None
        The coverage on the later half; None with fewer than two distinct origins.
    """
    distinct = np.unique(origin)
    if len(distinct) < 2:
        return None
    later = origin >= distinct[(len(distinct) + 1) // 2]
    earlier = ~later
    factors = fit_calibration(actual[earlier], mean[earlier], lower[earlier], upper[earlier], level)
    lo, hi = apply_calibration(factors, mean[later], lower[later], upper[later])
    return interval_coverage(actual[later], lo, hi)
