"""The unit contract: the columns and attrs every set of units has, and the one area computation.

Every unit builder of :mod:`geo_crime.units` ends with :func:`_finish_units`, which lays out the
contract columns in order (:data:`_UNIT_COLUMNS`), measures ``area_km2`` and checks the result
with :func:`check_units`. :func:`unit_area_km2` is the area of units wherever a density or a
per-km² figure is needed, so that every module measures area the same way.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.core.config import EQUAL_AREA_CRS, STORAGE_CRS
from geo_crime.core.errors import DataError

#: Allowed values of ``unit_type``.
UNIT_TYPES: tuple[str, ...] = ("h3", "rd", "division", "polygon")

#: The contract columns, in the order :func:`_finish_units` lays them out (geometry comes last,
#: after any extra columns of the unit type).
_UNIT_COLUMNS = ("unit_id", "unit_type", "name", "area", "area_km2")

#: Geometry types a unit may have.
_POLYGONAL = ("Polygon", "MultiPolygon")


def check_units(units: gpd.GeoDataFrame, *, strict: bool = True) -> None:
    """Raise :class:`~geo_crime.core.errors.DataError` unless ``units`` follows the unit contract.

    Parameters
    ----------
    units
        Candidate units (see :mod:`geo_crime.units` for the contract).
    strict
        Also require ``unit_type``, ``area_km2`` and the ``attrs``. With ``False`` only what
        assigning incidents needs is checked (CRS, unique str ids, polygonal geometry).

    Raises
    ------
    DataError
        On the first violation found: wrong type or CRS, a missing column, a duplicated or null
        ``unit_id``, an unknown ``unit_type``, a non-polygonal or empty geometry, or missing
        ``attrs``.
    """
    if not isinstance(units, gpd.GeoDataFrame):
        raise DataError(f"units must be a GeoDataFrame, got {type(units).__name__}")
    if units.crs is None or not units.crs.equals(STORAGE_CRS):
        raise DataError(f"units must be in {STORAGE_CRS}, got {units.crs}")
    required = ("unit_id", "unit_type", "area_km2") if strict else ("unit_id",)
    missing = [c for c in required if c not in units.columns]
    if missing:
        raise DataError(f"units lack column(s) {missing}")
    ids = units["unit_id"]
    if ids.isna().any():
        raise DataError(f"{int(ids.isna().sum())} units have no unit_id")
    if not all(isinstance(v, str) for v in ids):
        raise DataError("unit_id must hold str values")
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].unique()[:5].tolist()
        raise DataError(f"unit_id is not unique, e.g. {dup}")
    bad_type = ~units["unit_type"].isin(UNIT_TYPES) if "unit_type" in units else np.zeros(1, bool)
    if bad_type.any():
        raise DataError(f"unknown unit_type {sorted(set(units.loc[bad_type, 'unit_type']))}")
    geom = units.geometry
    if geom.isna().any() or geom.is_empty.any():
        raise DataError("units with a missing or empty geometry")
    if not geom.geom_type.isin(_POLYGONAL).all():
        raise DataError(f"non-polygonal unit geometries: {sorted(set(geom.geom_type))}")
    for key in ("approximate", "source") if strict else ():
        if key not in units.attrs:
            raise DataError(f"units.attrs lacks {key!r}")


def unit_area_km2(units: gpd.GeoDataFrame, *, from_column: bool = True) -> np.ndarray:
    """Area of each unit in km².

    Parameters
    ----------
    units
        Units (any polygons, in any CRS).
    from_column
        Take the ``area_km2`` column when the units have one (default; a value that is not a
        number becomes NaN). ``False``, or no such column: measure the geometry in
        :data:`geo_crime.core.config.EQUAL_AREA_CRS` (California Albers, equal area).

    Returns
    -------
    numpy.ndarray
        Float areas in km², in the order of ``units``.

    Raises
    ------
    DataError
        The area must be measured and the units have no CRS.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> square = gpd.GeoDataFrame(geometry=[box(0, 0, 1000, 1000)], crs="EPSG:3310")
    >>> unit_area_km2(square).round(6).tolist()
    [1.0]
    >>> unit_area_km2(square.assign(area_km2=[2.5])).tolist()
    [2.5]
    """
    if from_column and "area_km2" in units.columns:
        return pd.to_numeric(units["area_km2"], errors="coerce").to_numpy(dtype=float)
    if units.crs is None:
        raise DataError("units have no CRS: their area cannot be measured")
    return units.geometry.to_crs(EQUAL_AREA_CRS).area.to_numpy() / 1e6


def _finish_units(
    frame: pd.DataFrame,
    geometry: Any,
    *,
    unit_type: str,
    approximate: bool,
    source: str,
    extra: dict[str, Any] | None = None,
) -> gpd.GeoDataFrame:
    """Assemble a units frame with the contract columns in order, area and attrs."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    out["unit_id"] = pd.Series(frame["unit_id"].to_numpy(), dtype=object).astype(str).to_numpy()
    out["unit_type"] = unit_type
    out["name"] = (
        frame["name"].to_numpy(dtype=object) if "name" in frame else np.full(len(frame), None)
    )
    out["area"] = pd.array(frame["area"] if "area" in frame else [pd.NA] * len(frame), "Int8")
    for col in frame.columns:
        if col not in out.columns:
            out[col] = frame[col].to_numpy()
    units = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geometry, crs=STORAGE_CRS).values)
    area_at = _UNIT_COLUMNS.index("area_km2")
    units.insert(area_at, "area_km2", unit_area_km2(units, from_column=False))
    units.attrs["approximate"] = bool(approximate)
    units.attrs["source"] = source
    if extra:
        units.attrs.update(extra)
    check_units(units)
    return units
