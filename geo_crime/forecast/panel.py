"""What a forecast panel offers a forecaster: targets, periods, coverage and time splits.

Small functions every forecaster and the backtest share, on a :class:`~geo_crime.cube.panel.Cube` or
its arrays:

* the target measure (:func:`target_values`, :data:`TARGETS`) and the period arithmetic
  (:func:`target_periods`, :func:`next_period`, :func:`season_length`);
* coverage: a cell is used only when it is complete, so a reporting break is never read as a
  crime drop (:func:`history_ok`, :func:`eligible_cells`);
* unit areas for the targeting metrics (:func:`unit_areas`);
* chronological splits of rows into an earlier and a later block (:func:`chronological_split`).

The feature rows themselves are built in :mod:`geo_crime.forecast.features`, which re-exports
these names.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.core.errors import DataError, ModelError
from geo_crime.core.periods import Freq
from geo_crime.cube.panel import Cube
from geo_crime.units import unit_area_km2

__all__ = [
    "TARGETS",
    "chronological_split",
    "eligible_cells",
    "history_ok",
    "next_period",
    "season_length",
    "target_periods",
    "target_values",
    "unit_areas",
]

#: Measures a forecast can target.
TARGETS = ("severity", "count", "harm")

#: "Same period last year" distance in periods (364 days keeps the weekday of daily panels).


def target_values(cube: Cube, target: str) -> np.ndarray:
    """The ``(n_units, n_periods)`` float array of a forecast target.

    Parameters
    ----------
    cube : Cube
        The panel.
    target : {"severity", "count", "harm"}
        Severity sum, incident count or harm sum per unit and period.

    Returns
    -------
    numpy.ndarray
    """
    if target not in TARGETS:
        raise ModelError(f"unknown forecast target {target!r}; use one of {', '.join(TARGETS)}")
    return np.asarray(cube.values(target), dtype=float)


def season_length(freq: str) -> int:
    """Number of periods back to "the same period last year".

    Parameters
    ----------
    freq : {"D", "W", "M"}
        Period length.

    Returns
    -------
    int
        ``D`` 364 (the weekday is kept), ``W`` 52, ``M`` 12.
    """
    return Freq.parse(freq).per_year


def _offset(freq: str) -> pd.DateOffset | pd.Timedelta:
    return {"D": pd.Timedelta(days=1), "W": pd.Timedelta(weeks=1), "M": pd.offsets.MonthBegin(1)}[
        Freq.parse(freq)
    ]


def target_periods(periods: pd.DatetimeIndex, freq: str) -> pd.DatetimeIndex:
    """The period following each period (the target period of each origin).

    Parameters
    ----------
    periods : pandas.DatetimeIndex
        Period starts.
    freq : {"D", "W", "M"}
        Period length.

    Returns
    -------
    pandas.DatetimeIndex
        The start of the next period, for each period.
    """
    return pd.DatetimeIndex(pd.DatetimeIndex(periods) + _offset(freq))


def next_period(periods: pd.DatetimeIndex, freq: str) -> pd.Timestamp:
    """Start of the period after the last one of ``periods``.

    Parameters
    ----------
    periods : pandas.DatetimeIndex
        Period starts (at least one).
    freq : {"D", "W", "M"}
        Period length.

    Returns
    -------
    pandas.Timestamp
    """
    if len(periods) == 0:
        raise DataError("the cube has no periods")
    return pd.Timestamp(target_periods(periods[-1:], freq)[0])


def history_ok(complete: np.ndarray, lags: int) -> np.ndarray:
    """``ok[i, t]``: the unit's periods ``t-lags+1 .. t`` are all inside the cube and complete.

    Parameters
    ----------
    complete : numpy.ndarray
        ``(n_units, n_periods)`` coverage mask.
    lags : int
        History length.

    Returns
    -------
    numpy.ndarray
        ``(n_units, n_periods)`` booleans; False for the first ``lags - 1`` periods.
    """
    complete = np.asarray(complete, dtype=bool)
    n, T = complete.shape
    bad = np.concatenate([np.zeros((n, 1), dtype=np.int64), np.cumsum(~complete, axis=1)], axis=1)
    ok = np.zeros((n, T), dtype=bool)
    if lags <= T:
        # bad count over columns [t-lags+1, t] = bad[:, t+1] - bad[:, t-lags+1]
        window = bad[:, lags:] - bad[:, : T - lags + 1]
        ok[:, lags - 1 :] = window == 0
    return ok


def eligible_cells(complete: np.ndarray, lags: int) -> np.ndarray:
    """``e[i, t]``: origin ``t`` of unit ``i`` can be trained on or scored.

    True when the target cell ``(i, t + 1)`` is complete and the last ``lags`` periods up to
    ``t`` are complete. The last column (no target inside the cube) is False.

    Parameters
    ----------
    complete : numpy.ndarray
        ``(n_units, n_periods)`` coverage mask.
    lags : int
        History length.

    Returns
    -------
    numpy.ndarray
        ``(n_units, n_periods)`` booleans.
    """
    complete = np.asarray(complete, dtype=bool)
    ok = history_ok(complete, lags)
    out = np.zeros_like(ok)
    out[:, :-1] = ok[:, :-1] & complete[:, 1:]
    return out


def unit_areas(units: gpd.GeoDataFrame) -> np.ndarray:
    """Area of each unit in km² for area-based targeting metrics.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        The cube's units.

    Returns
    -------
    numpy.ndarray
        ``units["area_km2"]`` when present and positive, else the polygon area in EPSG:3310,
        else equal areas (all ones, e.g. for point units).
    """
    n = len(units)
    if "area_km2" in units:
        area = unit_area_km2(units)
        if np.isfinite(area).all() and (area > 0).all():
            return area
    try:
        area = unit_area_km2(units, from_column=False)
        if np.isfinite(area).all() and (area > 0).all():
            return area
    except Exception:  # no CRS or no geometry: equal areas
        pass
    return np.ones(n)


def chronological_split(
    origins: np.ndarray, *, share: float = 0.2, minimum: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into an earlier fitting block and a LATER validation block of origins.

    Parameters
    ----------
    origins : numpy.ndarray
        Origin period index of each row.
    share : float, default 0.2
        Share of the distinct origins (the latest ones) held out for validation.
    minimum : int, default 1
        At least this many origins are held out when there are two or more origins.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Boolean masks ``(fit, validation)``. Whole periods go to one side; rows are never split
        at random, so validation always lies after fitting in time. With a single origin the
        validation mask is empty.
    """
    distinct = np.unique(origins)
    if len(distinct) < 2:
        return np.ones(len(origins), dtype=bool), np.zeros(len(origins), dtype=bool)
    n_val = int(np.clip(round(share * len(distinct)), minimum, len(distinct) - 1))
    cut = distinct[-n_val]
    val = origins >= cut
    return ~val, val
