"""Assigning incidents to units, and checking incidents against their stated LAPD division.

:func:`assign_units` returns the ``unit_id`` of each incident, or null when the incident is not
spatially valid or lies outside every unit, with an :class:`AssignmentReport` that accounts for
every row (assigned + outside + not spatially valid = total). H3 units are matched by indexing the
points; other units with a point-in-polygon search, where a point on the border shared by two
polygons goes to exactly one of them (the first in row order).

:func:`incidents_outside_division` finds the incidents whose coordinates are not in the division
(``area``) they are recorded in, a data-quality check of the source.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_crime.core import schema
from geo_crime.core.config import STORAGE_CRS
from geo_crime.core.errors import DataError, InputError
from geo_crime.units.contract import check_units
from geo_crime.units.h3 import _coordinate_codes, _h3_resolution_of, h3_cells
from geo_crime.units.polygons import division_units

#: Up to this many polygons, points are located polygon by polygon (prepared), not via a tree.
_FEW_POLYGONS = 64


@dataclass
class AssignmentReport:
    """Where every incident went: ``assigned + outside + not_spatially_valid == total``."""

    unit_type: str
    total: int = 0
    not_spatially_valid: int = 0
    outside: int = 0
    assigned: int = 0
    on_shared_border: int = 0
    added_cells: list[str] = field(default_factory=list)
    assigned_to_added_cells: int = 0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ``DataError`` when the counts do not add up (a bug, never a data problem)."""
        if self.assigned + self.outside + self.not_spatially_valid != self.total:
            raise DataError(f"assignment counts do not add up: {self}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _valid_points(incidents: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in ("lat", "lon") if c not in incidents.columns]
    if missing:
        raise InputError(f"incidents lack column(s) {missing}")
    lat = pd.to_numeric(incidents["lat"], errors="coerce").to_numpy(dtype=np.float64)
    lon = pd.to_numeric(incidents["lon"], errors="coerce").to_numpy(dtype=np.float64)
    finite = np.isfinite(lat) & np.isfinite(lon)
    if "spatial_valid" in incidents.columns:
        valid = incidents["spatial_valid"].fillna(False).to_numpy(dtype=bool) & finite
    else:
        valid = finite & (lat != 0) & (lon != 0)
    return lat, lon, valid


def _locate(lon: np.ndarray, lat: np.ndarray, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of the first polygon covering each point (-1 if none) and a several-matches flag."""
    codes, ulon, ulat = _coordinate_codes(lon, lat)
    if len(geoms) <= _FEW_POLYGONS:
        # a few large polygons (divisions): prepared point-in-polygon tests within each bbox
        hits_pt, hits_geom = [], []
        for k, geom in enumerate(geoms):
            if geom is None or shapely.is_empty(geom):
                continue
            shapely.prepare(geom)
            minx, miny, maxx, maxy = shapely.bounds(geom)
            box = np.flatnonzero((ulon >= minx) & (ulon <= maxx) & (ulat >= miny) & (ulat <= maxy))
            inside = box[shapely.intersects_xy(geom, ulon[box], ulat[box])]
            hits_pt.append(inside)
            hits_geom.append(np.full(len(inside), k, dtype=np.int64))
        pt_idx = np.concatenate(hits_pt) if hits_pt else np.zeros(0, dtype=np.int64)
        geom_idx = np.concatenate(hits_geom) if hits_geom else np.zeros(0, dtype=np.int64)
    else:
        points = shapely.points(ulon, ulat)
        tree = shapely.STRtree(geoms)
        pt_idx, geom_idx = tree.query(points, predicate="intersects")
    order = np.lexsort((geom_idx, pt_idx))
    pt_idx, geom_idx = pt_idx[order], geom_idx[order]
    first = np.ones(len(pt_idx), dtype=bool)
    first[1:] = pt_idx[1:] != pt_idx[:-1]
    where = np.full(len(ulon), -1, dtype=np.int64)
    where[pt_idx[first]] = geom_idx[first]
    several = np.zeros(len(ulon), dtype=bool)
    several[pt_idx[~first]] = True
    return where[codes], several[codes]


def assign_units(
    incidents: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    ensure_cells: bool = False,
) -> tuple[pd.Series, AssignmentReport]:
    """The ``unit_id`` of each incident (null when outside every unit or not spatially valid).

    H3 units are matched by indexing the points (:func:`h3_cells`); a cell that is not among the
    units (outside the filled study area) counts as outside, or with ``ensure_cells=True`` counts
    as assigned and is listed in ``report.added_cells`` (pass them to :func:`ensure_cells` to get
    matching units). Other units are matched with a spatial index (shapely ``STRtree``,
    predicate ``intersects``, i.e. the polygon covers the point): a point on the border shared by
    several polygons goes to the first of them in row order, counted in ``on_shared_border``.
    Repeated coordinates are located once.

    Parameters
    ----------
    incidents
        Frame with ``lat``, ``lon`` and ``spatial_valid`` (when that column is absent, finite
        non-zero coordinates count as valid).
    units
        Units with unique ``unit_id`` and polygon geometry (any CRS is reprojected to
        EPSG:4326); ``unit_type == 'h3'`` on every row selects H3 indexing.
    ensure_cells
        H3 only: assign incidents in cells outside the filled area to those cells.

    Returns
    -------
    (pandas.Series, AssignmentReport)
        ``unit_id`` per incident (string dtype, index of ``incidents``, NA when unassigned) and
        the accounting.

    Raises
    ------
    InputError
        Incidents lack coordinates.
    DataError
        Units break the contract.
    """
    if units.crs is not None and not units.crs.equals(STORAGE_CRS):
        units = units.to_crs(STORAGE_CRS)
    check_units(units, strict=False)
    lat, lon, valid = _valid_points(incidents)
    n = len(incidents)
    result = np.full(n, None, dtype=object)
    types = units["unit_type"] if "unit_type" in units else pd.Series("polygon", index=units.index)
    is_h3 = bool(len(units)) and bool((types == "h3").all())
    unit_ids = units["unit_id"].to_numpy(dtype=object)
    added: list[str] = []
    on_border = 0
    to_added = 0
    if is_h3:
        res = _h3_resolution_of(units)
        cells = h3_cells(lat[valid], lon[valid], res)
        known = pd.Index(unit_ids).get_indexer(cells) >= 0
        if ensure_cells:
            added = sorted(set(cells[~known]))
            to_added = int((~known).sum())
            result[valid] = cells
        else:
            cells[~known] = None
            result[valid] = cells
    elif valid.any():
        where, several = _locate(lon[valid], lat[valid], units.geometry.to_numpy())
        found = where >= 0
        chosen = np.full(len(where), None, dtype=object)
        chosen[found] = unit_ids[where[found]]
        result[valid] = chosen
        on_border = int(several.sum())
    series = pd.Series(result, index=incidents.index, name="unit_id", dtype=schema.STRING)
    assigned = int(series.notna().sum())
    n_valid = int(valid.sum())
    report = AssignmentReport(
        unit_type="h3" if is_h3 else ",".join(sorted(set(types))),
        total=n,
        not_spatially_valid=n - n_valid,
        outside=n_valid - assigned,
        assigned=assigned,
        on_shared_border=on_border,
        added_cells=added,
        assigned_to_added_cells=to_added,
    )
    return series, report


# --- incidents against their stated division ------------------------------------------------------


@dataclass
class DivisionCheck:
    """Incidents whose coordinates lie outside the division (``area``) they are recorded in.

    ``checked == consistent + in_other_division + outside_all_divisions``; rows without valid
    coordinates or without a stated division are not checked and counted separately.
    """

    total: int
    not_spatially_valid: int
    no_stated_division: int
    checked: int
    consistent: int
    in_other_division: int
    outside_all_divisions: int
    flagged: pd.DataFrame

    @property
    def n_outside(self) -> int:
        """Checked incidents outside their stated division (in another one or in none)."""
        return self.in_other_division + self.outside_all_divisions

    @property
    def share(self) -> float:
        """``n_outside / checked`` (NaN when nothing was checked)."""
        return self.n_outside / self.checked if self.checked else float("nan")

    def __add__(self, other: DivisionCheck) -> DivisionCheck:
        """The check of both batches of rows (counts summed, flagged rows stacked)."""
        counts = {k: getattr(self, k) + getattr(other, k) for k in self.to_dict()}
        present = [f for f in (self.flagged, other.flagged) if len(f)]
        flagged = (
            pd.concat(present, ignore_index=True)
            if len(present) == 2
            else (present[0] if present else self.flagged)
        ).reset_index(drop=True)
        return DivisionCheck(**counts, flagged=flagged)

    def to_dict(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict (without the flagged rows)."""
        return {
            "total": self.total,
            "not_spatially_valid": self.not_spatially_valid,
            "no_stated_division": self.no_stated_division,
            "checked": self.checked,
            "consistent": self.consistent,
            "in_other_division": self.in_other_division,
            "outside_all_divisions": self.outside_all_divisions,
        }


def incidents_outside_division(
    incidents: pd.DataFrame, divisions: gpd.GeoDataFrame | None = None
) -> DivisionCheck:
    """Find incidents whose coordinates are not inside the LAPD division they are recorded in.

    Parameters
    ----------
    incidents
        Frame with ``lat``, ``lon``, ``spatial_valid`` and ``area`` (the stated division).
    divisions
        Division units (:func:`division_units`, the default).

    Returns
    -------
    DivisionCheck
        Counts plus ``flagged``: the offending rows (index of ``incidents``) with ``area``,
        ``located_area`` (null when in no division), ``status`` (``'other_division'`` or
        ``'outside_all_divisions'``) and, where present, ``rpt_dist``, ``lat``, ``lon``,
        ``source``.
    """
    if "area" not in incidents.columns:
        raise InputError("incidents lack the 'area' column")
    divisions = division_units() if divisions is None else divisions.to_crs(STORAGE_CRS)
    lat, lon, valid = _valid_points(incidents)
    stated = pd.to_numeric(incidents["area"], errors="coerce").to_numpy(dtype=np.float64)
    has_area = ~np.isnan(stated)
    check = valid & has_area
    located = np.full(len(incidents), np.nan)
    if check.any():
        where, _ = _locate(lon[check], lat[check], divisions.geometry.to_numpy())
        areas = divisions["area"].to_numpy(dtype=np.float64)
        located[check] = np.where(where >= 0, areas[np.maximum(where, 0)], np.nan)
    outside_all = check & np.isnan(located)
    other = check & ~np.isnan(located) & (located != stated)
    flag = outside_all | other
    cols = [c for c in ("area", "rpt_dist", "lat", "lon", "source") if c in incidents.columns]
    flagged = incidents.loc[flag, cols].copy()
    flagged["located_area"] = pd.array(located[flag], dtype="Int8")
    flagged["status"] = np.where(other[flag], "other_division", "outside_all_divisions")
    return DivisionCheck(
        total=len(incidents),
        not_spatially_valid=int((~valid).sum()),
        no_stated_division=int((valid & ~has_area).sum()),
        checked=int(check.sum()),
        consistent=int(check.sum() - flag.sum()),
        in_other_division=int(other.sum()),
        outside_all_divisions=int(outside_all.sum()),
        flagged=flagged,
    )
