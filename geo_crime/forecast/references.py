"""The two references of every backtest: the all-zero forecast and the clairvoyant long-run rate.

Neither is a model anyone could use, and no verdict or recommendation ever names one as the
model to use; they frame the candidates' scores:

``zero``
    Forecasts 0 everywhere. On sparse panels (91.5% of the West LA H3-9 cell-weeks are zero) it
    has a lower MAE than every baseline, because MAE rewards a median: a model that does not
    beat it on a proper score (Poisson deviance) forecasts nothing useful.
``clairvoyant``
    Each unit's long-run rate: its mean over every complete period of the panel except the
    target period, **future included**. It knows each unit's level over the whole panel, which
    no forecaster can, so it is a ceiling for forecasting a stable level (not for following
    week-to-week swings).

They are computed by the backtest (:func:`geo_crime.forecast.evaluate.evaluate`) from the whole
panel, not fitted at an origin: a forecaster only ever sees the periods up to its origin.
"""

from __future__ import annotations

import numpy as np

__all__ = ["REFERENCES", "REFERENCE_WORDS", "clairvoyant_rate", "is_reference", "reference_values"]

#: Names of the references, in table order.
REFERENCES = ("zero", "clairvoyant")

#: What each reference is, in words (report tables and metrics files).
REFERENCE_WORDS = {
    "zero": "the all-zero forecast",
    "clairvoyant": (
        "each unit's mean over every complete period except the target, future included (a "
        "ceiling no model can use)"
    ),
}


def is_reference(name: object) -> bool:
    """Whether a metrics row is one of the :data:`REFERENCES` (never a model to use)."""
    return str(name) in REFERENCES


def clairvoyant_rate(values: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """Each cell's clairvoyant forecast: the unit's mean over its other complete periods.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n_units, n_periods)`` target values of the whole panel.
    complete : numpy.ndarray
        ``(n_units, n_periods)`` coverage mask; incomplete cells enter no mean.

    Returns
    -------
    numpy.ndarray
        ``(n_units, n_periods)``: at ``(i, s)`` the mean of unit ``i`` over every complete
        period but ``s``; NaN where the unit has no other complete period.

    Examples
    --------
    >>> clairvoyant_rate(np.array([[1.0, 2.0, 6.0]]), np.array([[True, True, False]])).tolist()
    [[2.0, 1.0, 1.5]]
    """
    values = np.asarray(values, dtype=float)
    complete = np.asarray(complete, dtype=bool)
    kept = np.where(complete, values, 0.0)
    total = kept.sum(axis=1, keepdims=True) - kept
    count = complete.sum(axis=1, keepdims=True) - complete
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def reference_values(name: str, values: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """A reference's forecast of every cell of the panel.

    Parameters
    ----------
    name : {"zero", "clairvoyant"}
        The reference.
    values, complete : numpy.ndarray
        ``(n_units, n_periods)`` target values and coverage mask of the whole panel.

    Returns
    -------
    numpy.ndarray
        ``(n_units, n_periods)``: column ``s`` forecasts period ``s``.
    """
    if name == "zero":
        return np.zeros(np.shape(values), dtype=float)
    if name == "clairvoyant":
        return clairvoyant_rate(values, complete)
    raise ValueError(f"unknown reference {name!r}; use one of {', '.join(REFERENCES)}")
