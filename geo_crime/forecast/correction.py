"""The correction model's bases: candidate baseline forecasts for every feature row.

With :attr:`~geo_crime.forecast.network.ForecastConfig.base_models` set, the Keras forecaster
(:mod:`geo_crime.forecast.model`) corrects the candidate baseline with the lowest point loss on
its validation block. This module computes every candidate's forecast for each (unit, origin) row
in one pass (:func:`candidate_bases`, from
:func:`~geo_crime.forecast.baselines.rolling_baseline`), scores them (:func:`point_loss`) and puts
the chosen one into the rows as the network's base, with every candidate as an extra feature
(:func:`with_bases`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from geo_crime.cube.panel import Cube
from geo_crime.forecast.baselines import rolling_baseline
from geo_crime.forecast.features import FeatureMatrix
from geo_crime.forecast.panel import target_values

__all__ = ["candidate_bases", "keras_point_loss", "point_loss", "with_bases"]


def candidate_bases(
    cube: Cube, rows: FeatureMatrix, names: Sequence[str], target: str
) -> dict[str, np.ndarray]:
    """Every candidate baseline's forecast of each row's target period.

    Parameters
    ----------
    cube : Cube
        The cube the rows were built from.
    rows : FeatureMatrix
        Feature rows (their ``unit`` and ``origin`` index the cube).
    names : sequence of str
        Rolling baselines (``last``, ``ma<k>``, ``hist_mean``).
    target : str
        The measure forecast.

    Returns
    -------
    dict
        Name -> ``(rows,)`` forecasts in the target's units (NaN, a unit with no complete
        period in the window, as zero).
    """
    y = target_values(cube, target)
    complete = np.asarray(cube.complete, dtype=bool)
    return {
        name: np.nan_to_num(rolling_baseline(name, y, complete)[rows.unit, rows.origin])
        for name in names
    }


def with_bases(
    rows: FeatureMatrix, candidates: dict[str, np.ndarray], chosen: str, scale: float
) -> FeatureMatrix:
    """Rows whose base is the chosen candidate and whose features add every candidate.

    Parameters
    ----------
    rows : FeatureMatrix
        Feature rows.
    candidates : dict
        :func:`candidate_bases` of the rows.
    chosen : str
        The candidate that becomes the base.
    scale : float
        The target scale ``s`` of the feature builder.

    Returns
    -------
    FeatureMatrix
        ``base`` is ``forecast / s``; the features gain ``base_<name>`` = ``log1p(forecast / s)``.
    """
    extra = np.column_stack([np.log1p(np.maximum(v, 0.0) / scale) for v in candidates.values()])
    return dataclasses.replace(
        rows,
        X=np.concatenate([rows.X, extra.astype(rows.X.dtype)], axis=1),
        base=(np.maximum(candidates[chosen], 0.0) / scale).astype(np.float32),
        names=[*rows.names, *(f"base_{name}" for name in candidates)],
    )


def point_loss(actual: np.ndarray, forecast: np.ndarray, loss: str) -> float:
    """Mean point loss of a forecast.

    Parameters
    ----------
    actual, forecast : numpy.ndarray
        Actual values and forecasts.
    loss : {"median", "poisson"}
        Absolute error, or the Poisson deviance up to a term that does not depend on the
        forecast (``forecast - actual * log(forecast)``).

    Returns
    -------
    float
    """
    actual = np.asarray(actual, dtype=float)
    forecast = np.maximum(np.asarray(forecast, dtype=float), 1e-9)
    if loss == "median":
        return float(np.mean(np.abs(actual - forecast)))
    return float(np.mean(forecast - actual * np.log(forecast)))


def keras_point_loss(scaled_actual: np.ndarray, scaled_forecast: object, loss: str) -> float:
    """The point head's loss exactly as Keras reports it (``val_mean_loss``), in NumPy.

    Parameters
    ----------
    scaled_actual : numpy.ndarray
        Targets divided by the target scale.
    scaled_forecast : array-like
        The network's ``mean`` output, ``(n, 1)``.
    loss : {"median", "poisson"}
        Pinball loss at 0.5, or Keras's Poisson loss ``mean(f - y * log(f + 1e-7))``.

    Returns
    -------
    float
    """
    y = np.asarray(scaled_actual, dtype=np.float32)
    f = np.asarray(scaled_forecast, dtype=np.float32).reshape(-1)
    if loss == "median":
        return float(np.mean(0.5 * np.abs(y - f)))
    return float(np.mean(f - y * np.log(f + np.float32(1e-7))))
