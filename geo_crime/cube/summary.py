"""Per-unit tables of a cube: measures and result tables joined onto the units.

:func:`unit_results` joins arrays and tables keyed by ``unit_id`` onto a units layer;
:func:`cube_summary` gives every unit its totals and its one severity rate, which maps, figures,
exports and the privacy check all read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.cube.rates import severity_rate

__all__ = ["cube_summary", "unit_results"]


def unit_results(
    units: gpd.GeoDataFrame,
    *,
    measures: Mapping[str, np.ndarray] | None = None,
    tables: Iterable[pd.DataFrame] = (),
) -> gpd.GeoDataFrame:
    """Join per-unit measures and result tables onto the units (keyed by ``unit_id``).

    Parameters
    ----------
    units
        The units GeoDataFrame.
    measures
        Arrays aligned with ``units`` rows (e.g. ``{"count": cube.total("count")}``).
    tables
        Result tables keyed by ``unit_id`` (Gi*, LISA, emerging, forecast); their geometry and
        clashing columns are dropped, other columns joined.

    Returns
    -------
    geopandas.GeoDataFrame
    """
    out = units.copy()
    for name, values in (measures or {}).items():
        out[name] = np.asarray(values)
    for table in tables:
        extra = pd.DataFrame(table).drop(columns=["geometry"], errors="ignore")
        extra = extra[["unit_id", *[c for c in extra.columns if c not in out.columns]]]
        out = out.merge(extra, on="unit_id", how="left")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=units.crs)


def cube_summary(cube: Any) -> gpd.GeoDataFrame:
    """Per-unit totals of a cube and its one severity rate, for GIS layers and figures.

    Parameters
    ----------
    cube : geo_crime.cube.panel.Cube
        The space-time cube.

    Returns
    -------
    geopandas.GeoDataFrame
        The units with ``count``, ``severity`` and ``harm`` (totals over all periods),
        ``severity_per_complete_period`` (mean over the completely recorded periods, NaN for a
        unit with none: :meth:`geo_crime.cube.panel.Cube.mean_per_complete_period`),
        ``complete_periods`` and ``severity_rate`` (:func:`geo_crime.cube.rates.severity_rate`, the
        rate maps, figures and reports show); ``attrs["severity_rate"]`` is its label.
    """

    per_period = cube.mean_per_complete_period("severity")  # NaN for a unit with none
    rate = severity_rate(cube)
    summary = unit_results(
        cube.units,
        measures={
            "count": cube.total("count").astype(int),
            "severity": cube.total("severity"),
            "harm": cube.total("harm"),
            "severity_per_complete_period": per_period,
            "complete_periods": rate.complete_periods.astype(int),
            "severity_rate": rate.values,
        },
    )
    summary.attrs["severity_rate"] = rate.label
    return summary
