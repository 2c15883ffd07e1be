"""Spatial units: the areas incidents are counted in, and which unit each incident falls in.

Every statistic downstream (counts, rates, hot spots, emerging hot spots) is computed over a set of
*units*. Whatever their origin, units follow one contract, checked by :func:`check_units`:

* a :class:`geopandas.GeoDataFrame` in EPSG:4326 (lon/lat, the storage CRS);
* ``unit_id`` (str, unique), ``unit_type`` (``'h3'``, ``'rd'``, ``'division'`` or ``'polygon'``),
  ``geometry`` (Polygon or MultiPolygon), ``area_km2`` (computed in EPSG:3310, California Albers,
  an equal-area projection), ``name`` and ``area`` (the LAPD division number where meaningful;
  both may be null);
* ``units.attrs["approximate"]`` (bool: the geometry is a stand-in, not an official boundary) and
  ``units.attrs["source"]`` (where the geometry comes from, in words).

Units carry no population: :func:`geo_crime.cube.rates.attach_population` adds a ``population``
column when it is called, and only then. Read the division column as ``units["area"]``:
``units.area`` is geopandas' planar area of the geometries (in square degrees here), not the
column; :func:`unit_area_km2` is the area in km² that every module uses.

Where things are
----------------
This module
    :func:`make_units` (units from a short specification, as the command line takes them) and the
    study-area helpers :func:`covered_divisions`, :func:`restrict_to_divisions`,
    :func:`fill_divisions` and :func:`footprint_note`.
:mod:`~geo_crime.units.contract`
    :func:`check_units`, :func:`unit_area_km2` and the assembly of every unit set.
:mod:`~geo_crime.units.h3`
    H3 cells (:func:`h3_units`, :func:`h3_cells`, :func:`ensure_cells`) and the study-area
    outlines (:func:`study_area`: the city, the divisions, the county or any polygon file).
:mod:`~geo_crime.units.polygons`
    Any polygon layer (:func:`read_polygon_layer` with its :class:`LayerReport`,
    :func:`polygon_units`: census tracts, neighbourhoods, council districts, a user's own
    polygons, in any CRS) and the 21 LAPD divisions (:func:`division_units`, ``PREC`` 1-21 =
    the crime ``AREA``).
:mod:`~geo_crime.units.districts`
    LAPD's ~1,135 reporting districts (:func:`rd_units`): the official layer when cached, else
    an *approximate* layer derived from the incident points (:func:`derive_rd_layer`).
:mod:`~geo_crime.units.boundaries`
    The official layers listed in ``boundaries/manifest.json`` (:func:`fetch_boundary`: one
    download into the cache, checksum trusted on first use).
:mod:`~geo_crime.units.assign`
    :func:`assign_units` returns the ``unit_id`` of each incident, or null when the incident is
    not spatially valid or lies outside every unit, with an :class:`AssignmentReport` that
    accounts for every row (assigned + outside + not spatially valid = total); a point on the
    border shared by two polygons goes to exactly one of them (the first in row order).
    :func:`incidents_outside_division` checks incidents against their stated division.
"""

from __future__ import annotations

import string
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_crime.core.config import EQUAL_AREA_CRS
from geo_crime.core.errors import ConfigError
from geo_crime.core.schema import DIVISIONS, ROW_COUNT
from geo_crime.net.http import LOCK_FILE
from geo_crime.units.assign import (
    AssignmentReport,
    DivisionCheck,
    assign_units,
    incidents_outside_division,
)
from geo_crime.units.boundaries import MANIFEST_FILE, fetch_boundary, load_manifest
from geo_crime.units.contract import UNIT_TYPES, check_units, unit_area_km2
from geo_crime.units.districts import (
    DERIVED_RD_SOURCE,
    RD_ATTRIBUTES_FILE,
    RD_LAYER,
    RDDerivationReport,
    derive_rd_layer,
    load_rd_attributes,
    rd_units,
)
from geo_crime.units.h3 import (
    CITY_BOUNDARY_FILE,
    COUNTY_DISTRICTS_FILE,
    H3_RESOLUTIONS,
    ensure_cells,
    h3_cells,
    h3_units,
    study_area,
)
from geo_crime.units.polygons import (
    DIVISIONS_FILE,
    LayerReport,
    division_units,
    polygon_units,
    read_polygon_layer,
)
from geo_crime.units.spec import UnitKind, UnitSpec

__all__ = [
    "division_names",
    "CITY_BOUNDARY_FILE",
    "COUNTY_DISTRICTS_FILE",
    "DERIVED_RD_SOURCE",
    "DIVISIONS_FILE",
    "H3_RESOLUTIONS",
    "LOCK_FILE",
    "MANIFEST_FILE",
    "RD_ATTRIBUTES_FILE",
    "RD_LAYER",
    "UNIT_TYPES",
    "AssignmentReport",
    "DivisionCheck",
    "LayerReport",
    "RDDerivationReport",
    "assign_units",
    "check_units",
    "covered_divisions",
    "derive_rd_layer",
    "division_units",
    "ensure_cells",
    "fetch_boundary",
    "fill_divisions",
    "footprint_note",
    "h3_cells",
    "h3_units",
    "incidents_outside_division",
    "load_manifest",
    "load_rd_attributes",
    "make_units",
    "polygon_units",
    "rd_units",
    "read_polygon_layer",
    "restrict_to_divisions",
    "study_area",
    "unit_area_km2",
    "unit_files",
]


#: Study-area specifications that name no file (see :func:`make_units`).
_STUDY_AREAS = ("data", "city", "divisions", "county")
#: The files a shapefile's ``.shp`` comes with (read with it: inputs as much as the ``.shp``).
_SHAPEFILE_PARTS = (".shx", ".dbf", ".prj", ".cpg", ".sbn", ".sbx", ".qix")


def unit_files(*specs: str) -> list[Path]:
    """The polygon files among unit or study-area specifications (``h3:8``, ``rd``, ``city``...
    name none); a shapefile brings its sidecar files. They are inputs outputs must spare."""
    files: list[Path] = []
    for spec in specs:
        if spec in _STUDY_AREAS:
            continue
        try:
            path = UnitSpec.parse(spec).path
        except ConfigError:  # not a file: nothing to spare (make_units says what is wrong)
            continue
        if path is not None:
            files.append(path)
            if path.suffix.lower() == ".shp":
                files += sorted(
                    p
                    for p in path.parent.iterdir()
                    if p.stem == path.stem and p.suffix.lower() in _SHAPEFILE_PARTS
                )
    return files


def make_units(
    spec: str | UnitSpec,
    incidents: pd.DataFrame | None = None,
    *,
    study_area: str | Path | Any = "data",
) -> gpd.GeoDataFrame:
    """Units from a short specification, as the command line takes them.

    Parameters
    ----------
    spec
        ``h3`` or ``h3:<resolution>`` (H3 cells filling the study area), ``rd`` (reporting
        districts; derived from ``incidents`` unless the official layer is cached),
        ``division``, or the path of any polygon layer.
    incidents
        Needed for derived reporting districts and for the ``"data"`` study area.
    study_area
        ``"data"`` (default): the LAPD divisions the incidents cover (see
        :func:`covered_divisions`), so a West LA file gets West LA's units and not 20 empty
        divisions of zeros; H3 cells fill their union, and reporting districts, divisions and
        polygon layers keep the units of those divisions. ``"city"``, ``"divisions"``,
        ``"county"``, a polygon file or a shapely polygon: H3 cells fill that area and the other
        unit types are kept whole. Without incidents ``"data"`` means ``"city"``.

    Returns
    -------
    geopandas.GeoDataFrame
        Units following the unit contract; ``attrs["study_area"]`` says what they cover and
        ``attrs["footprint_note"]`` (when set) warns that most units lie where the data has no
        incident. They carry no population: call :func:`geo_crime.cube.rates.attach_population`.
    """
    unit = UnitSpec.parse(spec)
    divisions = None
    if isinstance(study_area, str) and study_area == "data":
        divisions = covered_divisions(incidents) if incidents is not None else None
    if unit.kind is UnitKind.H3:
        if divisions is not None:
            outline = restrict_to_divisions(division_units(), divisions).union_all()
            area_spec: Any = outline
        else:
            no_data = isinstance(study_area, str) and study_area == "data"
            area_spec = "city" if no_data else study_area
        units = h3_units(unit.resolution, study_area=area_spec)
    elif unit.kind is UnitKind.RD:
        units = rd_units(incidents)
    elif unit.kind is UnitKind.DIVISION:
        units = division_units()
    else:
        units = polygon_units(unit.path)
    if "area" in units and units["area"].isna().any():
        units = fill_divisions(units)
    if divisions is not None and unit.kind is not UnitKind.H3:
        units = restrict_to_divisions(units, divisions)
    if divisions is not None:
        units.attrs["study_area"] = _divisions_phrase(divisions)
    else:
        units.attrs["study_area"] = (
            "a given polygon"
            if isinstance(study_area, shapely.Geometry)
            else str(study_area if study_area != "data" else "city")
        )
    if incidents is not None:
        note = footprint_note(units, incidents, covered=divisions)
        if note:
            units.attrs["footprint_note"] = note
            warnings.warn(note, stacklevel=2)
    return units


def covered_divisions(incidents: pd.DataFrame, *, min_share: float = 0.001) -> list[int]:
    """The LAPD divisions the incidents cover: each holding at least ``min_share`` of them.

    Parameters
    ----------
    incidents
        Incidents with the stated division ``area`` (1-21); where that column is absent or
        empty, each spatially valid incident's division is found from its coordinates. A table
        of counts (:data:`~geo_crime.core.schema.ROW_COUNT` incidents per row, as a cluster sends
        it) is judged as the incidents it counts.
    min_share
        A division with fewer incidents than this share of the total (0.1%) is not covered (a
        few mis-coded rows do not add a division to the study).

    Returns
    -------
    list of int
        Sorted division numbers (all 21 when nothing can be told).
    """
    areas = (
        pd.to_numeric(incidents["area"], errors="coerce")
        if "area" in incidents
        else pd.Series(np.nan, index=incidents.index)
    )
    weights = (
        incidents[ROW_COUNT].to_numpy(dtype=np.int64)
        if ROW_COUNT in incidents
        else np.ones(len(incidents), dtype=np.int64)
    )
    if areas.notna().sum() == 0 and len(incidents):
        ids, _ = assign_units(incidents, division_units())
        areas = pd.to_numeric(ids, errors="coerce")
    known = areas.notna().to_numpy()
    counts = (
        pd.Series(weights[known])
        .groupby(areas.to_numpy()[known].astype(int))
        .sum()
        .sort_values(ascending=False)
    )
    if counts.empty:
        return list(DIVISIONS)
    keep = counts[counts >= max(1.0, min_share * counts.sum())]
    return sorted(int(a) for a in keep.index)


def restrict_to_divisions(units: gpd.GeoDataFrame, divisions: Sequence[int]) -> gpd.GeoDataFrame:
    """The units of some LAPD divisions (by their ``area`` column), attrs kept.

    Parameters
    ----------
    units
        Units with an ``area`` column (fill it first with :func:`fill_divisions`).
    divisions
        Division numbers to keep.

    Returns
    -------
    geopandas.GeoDataFrame
        The kept units, re-indexed from 0.
    """
    if "area" not in units:
        return units
    kept = units[units["area"].isin(list(divisions))].reset_index(drop=True)
    kept.attrs.update(units.attrs)
    return kept


def footprint_note(
    units: gpd.GeoDataFrame,
    incidents: pd.DataFrame,
    *,
    covered: Sequence[int] | None = None,
    max_empty_share: float = 0.25,
) -> str | None:
    """A warning when many units lie in divisions where the data has no incident.

    Zeros in divisions the data does not cover are not observations: they make the covered
    divisions look like one big hot spot (Gi* compares each unit with the study mean).

    Parameters
    ----------
    units
        Units with an ``area`` column.
    incidents
        The study's incidents.
    max_empty_share
        Warn when more than this share of the units lie outside the covered divisions.
    covered : sequence of int, optional
        The divisions the incidents cover, when already known (:func:`covered_divisions`).

    Returns
    -------
    str or None
        The warning, or ``None`` when the units match the data's footprint.
    """
    if "area" not in units or not len(units) or not len(incidents):
        return None
    covered = covered_divisions(incidents) if covered is None else list(covered)
    outside = ~units["area"].isin(covered).to_numpy()
    if outside.mean() <= max_empty_share:
        return None
    unit_divisions = sorted({int(a) for a in units["area"].dropna()})
    return (
        f"{int(outside.sum()):,} of {len(units):,} units ({outside.mean():.0%}) lie in divisions "
        f"the data does not cover: the units span {len(unit_divisions)} divisions, the data "
        f"{_divisions_phrase(covered)}; their zeros are not observations (use the study area "
        "'data' to keep the data's divisions only)"
    )


def _divisions_phrase(divisions: Sequence[int]) -> str:
    """``'all 21 LAPD divisions'`` or ``'LAPD division(s) 8'``."""
    divisions = sorted(int(d) for d in divisions)
    if divisions == list(DIVISIONS):
        return "all 21 LAPD divisions"
    label = "division" if len(divisions) == 1 else "divisions"
    return f"LAPD {label} {', '.join(map(str, divisions))}"


def fill_divisions(units: gpd.GeoDataFrame, divisions: gpd.GeoDataFrame | None = None):
    """Fill a missing ``area`` (LAPD division) from the division holding each unit's centroid.

    Centroids outside every division (cells along the coast or the city edge) take the nearest
    division. Units keep a division they already have.

    Parameters
    ----------
    units
        Units (any type).
    divisions
        Division units (default: :func:`division_units`).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with ``area`` filled.
    """
    divisions = division_units() if divisions is None else divisions
    out = units.copy()
    centroids = gpd.GeoDataFrame(
        geometry=out.geometry.to_crs(EQUAL_AREA_CRS).centroid, crs=EQUAL_AREA_CRS
    )
    joined = gpd.sjoin_nearest(
        centroids, divisions[["area", "geometry"]].to_crs(EQUAL_AREA_CRS), how="left"
    )
    joined = joined[~joined.index.duplicated(keep="first")]
    found = pd.array(joined["area"].reindex(out.index), dtype="Int64")
    current = pd.array(out["area"], dtype="Int64") if "area" in out else found
    out["area"] = pd.array(np.where(pd.isna(current), found, current), dtype="Int64")
    out.attrs.update(units.attrs)
    return out


def division_names(units, divisions) -> pd.Series:
    """Each unit's LAPD division by name (``"West Los Angeles"``), indexed by ``unit_id``.

    A unit's division is its ``area`` column, one definition for every unit type: the recorded
    division of a reporting district, the division holding an H3 cell's or polygon's centroid
    (:func:`fill_divisions`). This only names it.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with an ``area`` (division number) column.
    divisions : geopandas.GeoDataFrame
        :func:`geo_crime.units.division_units` (``area``, ``name`` in capitals).

    Returns
    -------
    pandas.Series
        Title-case names; empty where a unit has no division.
    """
    names = {
        int(a): string.capwords(str(n).lower())
        for a, n in zip(divisions["area"], divisions["name"], strict=True)
    }
    areas = units["area"] if "area" in units else pd.Series(pd.NA, index=units.index)
    labels = [names.get(int(a), "") if pd.notna(a) else "" for a in areas]
    return pd.Series(labels, index=units["unit_id"].astype(str).to_numpy())
