"""Convenience calls that chain two stages in the obvious way, for the Python API.

Each function here is a thin composition of stage functions (no analysis of its own), so that
the common path is one line: ``gc.make_cube(incidents, units)`` assigns incidents to units and
builds the cube; ``gc.query_index(...)`` builds a query index with unit results attached.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from geo_crime.cube import Cube, build_cube
from geo_crime.units import assign_units


def make_cube(
    incidents: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    freq: str = "W",
    coverage=None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> Cube:
    """Assign incidents to units and aggregate them into a cube.

    Parameters
    ----------
    incidents
        Cleaned, scored incidents (:func:`geo_crime.ingest.load_incidents`).
    units
        Units (:mod:`geo_crime.units`).
    freq
        ``D``, ``W`` or ``M``.
    coverage
        A :class:`~geo_crime.coverage.CoverageResult` marking thin (source, area, period)
        cells; one judged at another period length is recomputed at ``freq`` from
        ``incidents`` (a week is judged on its own count, never on its month's).
    start, end
        Period range (inclusive).

    Returns
    -------
    Cube
        With the assignment counts in ``cube.meta["assignment"]``.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame({"unit_id": ["west", "east"], "unit_type": "polygon"},
    ...                          geometry=[box(-118.5, 34.0, -118.3, 34.1),
    ...                                    box(-118.3, 34.0, -118.1, 34.1)], crs=4326)
    >>> incidents = pd.DataFrame({
    ...     "lat": [34.05, 34.06, 34.05], "lon": [-118.4, -118.2, -118.2],
    ...     "spatial_valid": True, "occurred_at": pd.to_datetime(["2024-01-02"] * 3),
    ...     "severity": [75, 30, 30], "harm": [1095.0, 10.0, 10.0],
    ...     "crime_category": ["robbery", "simple_assault", "simple_assault"], "area": 1})
    >>> cube = make_cube(incidents, units, freq="M")
    >>> cube.counts.ravel().tolist(), cube.meta["assignment"]["assigned"]
    ([1, 2], 3)
    """
    unit_ids, report = assign_units(incidents, units)
    cube = build_cube(
        incidents, units, unit_ids, freq=freq, coverage=coverage, start=start, end=end
    )
    cube.meta["assignment"] = report.to_dict()
    return cube
