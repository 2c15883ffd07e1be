"""Spatial queries over incidents and unit results: the index behind the Python API.

:class:`CrimeIndex` is built once from cleaned incidents (and, optionally, per-unit result
tables from the statistics and forecast stages). Incident coordinates are projected to California
Albers (EPSG:3310, metres) and held in a k-d tree, so radius, box and polygon queries touch only
nearby points; time, category and crime-code filters then run on the candidates. Unit tables are
held with a spatial index of their polygons (and, for H3 cells, direct cell lookup), so "which
unit contains this point" and "nearest hot spot" are answered without scanning.

Every query returns a DataFrame (incidents) or GeoDataFrame (units); an empty answer is an empty
frame, never ``None``. Incident answers keep every column of the indexed incidents, so each row
carries its ``incident_id``: the ``DR_NO``, or for sources without one (the reduced 2024 files) the
synthetic id flagged by ``incident_id_synthetic``; ids are never null in loaded incidents.

Places. Answers name where they are: incident answers carry ``division`` (the LAPD division of
the incident's ``area``, ``"West Los Angeles"``) and ``place`` (the LA Times neighbourhood holding
the point and its division, ``"Westwood (West Los Angeles)"``); unit tables get the same two
columns when indexed (the unit's place as the report names it,
:func:`geo_crime.units.places.place_labels`).

Checked input. A point outside Los Angeles County
(:data:`geo_crime.ingest.cleaning.LA_COUNTY_BBOX`), ``(0, 0)``, a point given as ``(lon, lat)``, a
negative or non-finite radius or an inverted box is one :class:`~geo_crime.core.errors.InputError`
naming the argument and its value, never an empty answer; so is an argument of the wrong type (a
coordinate given as text, a date that is no date, a list where a name is expected). Every public
function raises a :class:`~geo_crime.core.errors.GeoCrimeError` for a bad argument, never another
exception.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from geo_crime.core.config import EQUAL_AREA_CRS, STORAGE_CRS, data_dir
from geo_crime.core.errors import DataError, InputError
from geo_crime.query_args import (
    check_box,
    check_point,
    instant,
    name_text,
    names,
    real_number,
    whole_numbers,
)
from geo_crime.units import division_names, division_units, fill_divisions
from geo_crime.units.places import NEIGHBOURHOODS_FILE, place_labels
from geo_crime.units.polygons import read_polygon_layer

_TO_METRES = Transformer.from_crs(STORAGE_CRS, EQUAL_AREA_CRS, always_xy=True)

#: The incident columns :class:`CrimeIndex` reads.
INDEX_COLUMNS = ("lat", "lon", "spatial_valid", "occurred_at", "crm_cd", "crime_category")

#: What :meth:`CrimeIndex.top_units` ranks by when not told: the first column the table has.
TOP_UNITS_BY = ("severity", "gi_z", "count")


@dataclass
class _UnitLayer:
    table: gpd.GeoDataFrame
    projected: np.ndarray  # shapely geometries in EPSG:3310
    tree: shapely.STRtree
    h3_resolution: int | None


class CrimeIndex:
    """An index over incidents and per-unit results for fast spatial queries.

    Parameters
    ----------
    incidents
        Cleaned incidents (``lat``, ``lon``, ``spatial_valid``, ``occurred_at``, ``crm_cd``,
        ``crime_category``, ``severity``). Only spatially valid rows are indexed.
    units
        Optional unit result tables by unit type (e.g. ``{"h3": table, "rd": table}``), each a
        GeoDataFrame keyed by ``unit_id`` with any measures (``count``, ``severity``, ``rate``,
        ``gi_bin``, ``gi_label``, ``cluster``, ``category``, ``prediction`` ...).

    Examples
    --------
    >>> import pandas as pd
    >>> inc = pd.DataFrame({"lat": [34.05, 34.06, 34.20], "lon": [-118.25, -118.25, -118.40],
    ...                     "spatial_valid": True, "occurred_at": pd.to_datetime(
    ...                         ["2024-01-01", "2024-02-01", "2024-01-05"]),
    ...                     "crm_cd": [210, 624, 510], "crime_category": ["robbery",
    ...                     "simple_assault", "vehicle_theft"], "severity": [75, 30, 40]})
    >>> index = CrimeIndex(inc)
    >>> len(index.within_radius(34.05, -118.25, 1_500))
    2
    >>> index.within_radius(34.05, -118.25, 1_500, category="robbery")["crm_cd"].tolist()
    [210]
    """

    def __init__(
        self,
        incidents: pd.DataFrame,
        *,
        units: Mapping[str, gpd.GeoDataFrame] | None = None,
    ) -> None:
        if not isinstance(incidents, pd.DataFrame):
            kind = type(incidents).__name__
            raise InputError(f"incidents must be a DataFrame of cleaned incidents, got {kind}")
        missing = [c for c in INDEX_COLUMNS if c not in incidents]
        if missing:
            raise DataError(
                f"the incidents lack column(s) {missing} (load them with load_incidents)"
            )
        valid = incidents["spatial_valid"].to_numpy(dtype=bool)
        self.incidents = incidents.loc[valid].reset_index(drop=True)
        lon = self.incidents["lon"].to_numpy(dtype=float)
        lat = self.incidents["lat"].to_numpy(dtype=float)
        self._x, self._y = _TO_METRES.transform(lon, lat)
        self._tree = cKDTree(np.column_stack([self._x, self._y]), balanced_tree=False)
        self._time = self.incidents["occurred_at"].to_numpy(dtype="datetime64[ns]")
        self._code = self.incidents["crm_cd"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1)
        category = self.incidents["crime_category"].astype("category")
        self._category_codes = category.cat.codes.to_numpy()
        self._categories = list(category.cat.categories)
        self._hoods: tuple[shapely.STRtree, np.ndarray] | None = None
        self._division_names: dict[int, str] = {}
        self._units: dict[str, _UnitLayer] = {}
        for name, table in (units or {}).items():
            self.add_units(name, table)

    # --- incidents ------------------------------------------------------------------------

    def _filter(
        self,
        candidates: np.ndarray,
        *,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        category: str | Iterable[str] | None = None,
        crm_cd: int | Iterable[int] | None = None,
    ) -> pd.DataFrame:
        keep = np.ones(len(candidates), dtype=bool)
        times = self._time[candidates]
        if start is not None:
            keep &= times >= instant("start", start)
        if end is not None:
            keep &= times < instant("end", end)
        if category is not None:
            wanted = names("category", category)
            unknown = sorted(set(wanted) - set(self._categories))
            if unknown:
                raise DataError(f"unknown crime category {unknown}; known: {self._categories}")
            codes = [self._categories.index(c) for c in wanted]
            keep &= np.isin(self._category_codes[candidates], codes)
        if crm_cd is not None:
            keep &= np.isin(self._code[candidates], whole_numbers("crm_cd", crm_cd))
        rows = np.sort(candidates[keep])
        found = self.incidents.iloc[rows]
        return found.assign(**self._places_of(rows))

    def _places_of(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """``division`` and ``place`` of the incidents at positions ``rows``."""
        if self._hoods is None:
            layer, _ = read_polygon_layer(data_dir() / NEIGHBOURHOODS_FILE)
            layer = layer.to_crs(EQUAL_AREA_CRS)
            self._hoods = (shapely.STRtree(layer.geometry.to_numpy()), layer["name"].to_numpy())
            self._division_names = _division_names()
        tree, names = self._hoods
        hood = np.full(len(rows), "", dtype=object)
        points = shapely.points(self._x[rows], self._y[rows])
        point_idx, hood_idx = tree.query(points, predicate="within")
        hood[point_idx[::-1]] = names[hood_idx[::-1]]  # the first neighbourhood holding it wins
        division = np.full(len(rows), "", dtype=object)
        if "area" in self.incidents:
            areas = pd.Series(self.incidents["area"].to_numpy()[rows]).astype("Int64")
            division[:] = areas.map(self._division_names).fillna("").to_numpy(dtype=object)
        place = [f"{h} ({d})" if h and d else h or d for h, d in zip(hood, division, strict=True)]
        return {"division": division, "place": np.array(place, dtype=object)}

    def within_radius(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        *,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        category: str | Iterable[str] | None = None,
        crm_cd: int | Iterable[int] | None = None,
    ) -> pd.DataFrame:
        """Incidents within ``radius_m`` metres of a point, optionally filtered.

        Parameters
        ----------
        lat, lon
            The point (WGS84).
        radius_m
            Radius in metres (measured in EPSG:3310).
        start, end
            Time window ``start <= occurred_at < end``.
        category
            Crime category or categories (``crime_category``).
        crm_cd
            LAPD crime code(s).

        Returns
        -------
        pandas.DataFrame
            Matching incidents with ``division``, ``place`` and ``distance_m`` columns, nearest
            first.

        Raises
        ------
        InputError
            A point outside the county, ``(0, 0)``, swapped lat/lon (:func:`check_point`), a
            negative or non-finite radius, or a filter of the wrong type (``start`` that is no
            date, ``crm_cd`` that is no whole number).
        DataError
            An unknown crime category.
        """
        lat, lon = check_point(lat, lon)
        radius_m = real_number("radius_m", radius_m)
        if radius_m < 0:
            raise InputError(f"radius_m must be 0 metres or more, got {radius_m:g}")
        x, y = _TO_METRES.transform(lon, lat)
        candidates = np.asarray(self._tree.query_ball_point([x, y], r=radius_m), dtype=np.int64)
        found = self._filter(candidates, start=start, end=end, category=category, crm_cd=crm_cd)
        rows = found.index.to_numpy()
        distance = np.hypot(self._x[rows] - x, self._y[rows] - y)
        found = found.assign(distance_m=distance)
        return found.iloc[np.argsort(distance, kind="stable")]

    def within_bbox(
        self,
        west: float,
        south: float,
        east: float,
        north: float,
        **filters: object,
    ) -> pd.DataFrame:
        """Incidents inside a lon/lat box (``filters`` as in :meth:`within_radius`).

        An inverted box, one given as lat/lon, or one outside the county is an
        :class:`~geo_crime.core.errors.InputError`.
        """
        check_box(west, south, east, north)
        return self.within_polygon(shapely.box(west, south, east, north), **filters)

    def within_polygon(
        self,
        polygon: shapely.Geometry | gpd.GeoSeries | gpd.GeoDataFrame,
        **filters: object,
    ) -> pd.DataFrame:
        """Incidents inside a polygon (WGS84; ``filters`` as in :meth:`within_radius`).

        Parameters
        ----------
        polygon
            A shapely (Multi)Polygon in lon/lat, or a GeoSeries/GeoDataFrame (any CRS; unioned).
        **filters
            ``start``, ``end``, ``category``, ``crm_cd``.

        Returns
        -------
        pandas.DataFrame
            With ``division`` and ``place`` columns.
        """
        if isinstance(polygon, gpd.GeoDataFrame | gpd.GeoSeries):
            if polygon.crs is None:
                raise InputError("polygon has no CRS: set one (e.g. EPSG:4326) before the query")
            polygon = polygon.to_crs(STORAGE_CRS).union_all()
        if not isinstance(polygon, shapely.Polygon | shapely.MultiPolygon) or polygon.is_empty:
            raise InputError(
                f"polygon must be a shapely Polygon or MultiPolygon (or a GeoSeries/GeoDataFrame "
                f"of them) that is not empty, got {type(polygon).__name__}"
            )
        check_box(*shapely.bounds(polygon))
        projected = shapely.transform(polygon, _project_coords)
        minx, miny, maxx, maxy = projected.bounds
        centre = [(minx + maxx) / 2, (miny + maxy) / 2]
        half_diagonal = float(np.hypot(maxx - minx, maxy - miny)) / 2
        candidates = np.asarray(
            self._tree.query_ball_point(centre, r=half_diagonal + 1e-6), dtype=np.int64
        )
        if len(candidates):
            inside = shapely.contains_xy(projected, self._x[candidates], self._y[candidates])
            inside |= shapely.intersects_xy(
                projected.boundary, self._x[candidates], self._y[candidates]
            )
            candidates = candidates[inside]
        return self._filter(candidates, **filters)

    # --- units ----------------------------------------------------------------------------

    def add_units(self, name: str, table: gpd.GeoDataFrame) -> None:
        """Index a unit result table under ``name`` (e.g. ``"h3"``, ``"rd"``).

        A table without them gets ``division`` (its LAPD division; filled from the division
        holding its centroid where ``area`` is missing) and ``place`` (``"Downtown (Central)"``,
        :func:`geo_crime.units.places.place_labels`).
        """
        name_text("name", name)
        if not isinstance(table, gpd.GeoDataFrame):
            raise InputError(
                f"unit table {name!r} must be a GeoDataFrame, got {type(table).__name__}"
            )
        if "unit_id" not in table:
            raise DataError(f"unit table {name!r} has no unit_id column")
        table = _with_places(table.to_crs(STORAGE_CRS).reset_index(drop=True))
        projected = table.geometry.to_crs(EQUAL_AREA_CRS).to_numpy()
        resolution = None
        if "unit_type" in table and len(table) and table["unit_type"].iloc[0] == "h3":
            resolution = h3.get_resolution(str(table["unit_id"].iloc[0]))
        self._units[name] = _UnitLayer(table, projected, shapely.STRtree(projected), resolution)

    def _layer(self, unit_type: str) -> _UnitLayer:
        if name_text("unit_type", unit_type) not in self._units:
            raise DataError(f"no unit results for {unit_type!r}; have {sorted(self._units)}")
        return self._units[unit_type]

    def unit_at(self, lat: float, lon: float, *, unit_type: str = "h3") -> gpd.GeoDataFrame:
        """The unit containing a point, with all its measures (empty when outside every unit).

        Parameters
        ----------
        lat, lon
            The point (WGS84).
        unit_type
            Which unit table to look in.

        Returns
        -------
        geopandas.GeoDataFrame
            Zero or one row, with ``division`` and ``place``.

        Raises
        ------
        InputError
            A point outside the county, ``(0, 0)`` or swapped lat/lon (:func:`check_point`).
        """
        lat, lon = check_point(lat, lon)
        layer = self._layer(unit_type)
        if layer.h3_resolution is not None:
            cell = h3.latlng_to_cell(lat, lon, layer.h3_resolution)
            return layer.table.loc[layer.table["unit_id"] == cell]
        x, y = _TO_METRES.transform(lon, lat)
        hits = layer.tree.query(shapely.Point(x, y), predicate="intersects")
        return layer.table.iloc[np.sort(hits)[:1]]

    def top_units(
        self,
        k: int = 10,
        *,
        by: str | None = None,
        unit_type: str = "h3",
        ascending: bool = False,
    ) -> gpd.GeoDataFrame:
        """The ``k`` units with the highest (or lowest) value of a measure.

        Parameters
        ----------
        k
            How many units (1 or more).
        by
            The column to rank by; default: the first of :data:`TOP_UNITS_BY` (``severity``,
            ``gi_z``, ``count``) the table has.
        unit_type
            Which unit table.
        ascending
            Lowest first instead.

        Returns
        -------
        geopandas.GeoDataFrame
            At most ``k`` rows (missing values last), with ``division`` and ``place``;
            ``attrs["by"]`` names the column ranked by.
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InputError(f"k must be a whole number of units, 1 or more, got {k!r}")
        if not isinstance(ascending, bool | np.bool_):
            raise InputError(f"ascending must be True or False, got {ascending!r}")
        layer = self._layer(unit_type)
        if by is not None:
            name_text("by", by)
        if by is None:
            by = next((c for c in TOP_UNITS_BY if c in layer.table), TOP_UNITS_BY[0])
        if by not in layer.table:
            measures = [c for c in layer.table.columns if c not in ("geometry", "unit_id")]
            raise DataError(f"unit table {unit_type!r} has no column {by!r}; have {measures}")
        order = layer.table[by].sort_values(ascending=ascending, na_position="last")
        top = layer.table.loc[order.index[:k]]
        top.attrs["by"] = by
        return top

    def nearest_hotspot(
        self,
        lat: float,
        lon: float,
        *,
        unit_type: str = "h3",
        min_confidence: int = 95,
    ) -> gpd.GeoDataFrame:
        """The nearest significant Gi* hot spot to a point, with its distance in metres.

        Parameters
        ----------
        lat, lon
            The point (WGS84).
        unit_type
            Which unit table to search (it needs a ``gi_bin`` column, +1/+2/+3 = hot at
            90/95/99% confidence).
        min_confidence
            90, 95 or 99.

        Returns
        -------
        geopandas.GeoDataFrame
            Zero or one row, with ``division``, ``place`` and ``distance_m`` (0 when the point
            is inside the hot spot).

        Raises
        ------
        InputError
            A point outside the county, ``(0, 0)`` or swapped lat/lon (:func:`check_point`).
        """
        lat, lon = check_point(lat, lon)
        bins = {90: 1, 95: 2, 99: 3}
        if isinstance(min_confidence, bool) or not isinstance(min_confidence, Hashable):
            raise InputError(f"min_confidence must be 90, 95 or 99, got {min_confidence!r}")
        if min_confidence not in bins:
            raise InputError(f"min_confidence must be 90, 95 or 99, got {min_confidence!r}")
        layer = self._layer(unit_type)
        if "gi_bin" not in layer.table:
            raise DataError(f"unit table {unit_type!r} has no Gi* results (gi_bin)")
        hot = np.flatnonzero(layer.table["gi_bin"].to_numpy() >= bins[min_confidence])
        if not len(hot):
            return layer.table.iloc[[]].assign(distance_m=[])
        x, y = _TO_METRES.transform(lon, lat)
        point = shapely.Point(x, y)
        hot_tree = shapely.STRtree(layer.projected[hot])
        nearest = int(hot_tree.nearest(point))
        row = hot[nearest]
        distance = float(shapely.distance(layer.projected[row], point))
        return layer.table.iloc[[row]].assign(distance_m=[distance])


def _division_names() -> dict[int, str]:
    """Division number -> name as units are named (``"West Los Angeles"``)."""

    divisions = division_units()
    names = division_names(divisions, divisions)
    return {int(a): n for a, n in zip(divisions["area"], names.to_numpy(), strict=True)}


def _with_places(table: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The unit table with ``division`` and ``place`` columns (kept when it has them)."""
    if {"division", "place"} <= set(table.columns) or table.empty:
        return table

    divisions = division_units()
    located = table
    if "area" not in table or table["area"].isna().any():
        located = fill_divisions(table, divisions)
    names = division_names(located, divisions)
    labels = place_labels(located, names)
    ids = table["unit_id"].astype(str)
    out = table.copy()
    out.attrs = dict(table.attrs)
    if "division" not in out:
        out["division"] = names.reindex(ids).fillna("").to_numpy(dtype=object)
    if "place" not in out:
        out["place"] = labels["place"].reindex(ids).fillna("").to_numpy(dtype=object)
    return out


def _project_coords(coords: np.ndarray) -> np.ndarray:
    x, y = _TO_METRES.transform(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])
