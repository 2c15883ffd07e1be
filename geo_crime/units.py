"""Spatial units: the areas incidents are counted in, and which unit each incident falls in.

Every statistic downstream (counts, rates, hot spots, emerging hot spots) is computed over a set of
*units*. Whatever their origin, units follow one contract, checked by :func:`check_units`:

* a :class:`geopandas.GeoDataFrame` in EPSG:4326 (lon/lat, the storage CRS);
* ``unit_id`` (str, unique), ``unit_type`` (``'h3'``, ``'rd'``, ``'division'`` or ``'polygon'``),
  ``geometry`` (Polygon or MultiPolygon), ``area_km2`` (computed in EPSG:3310, California Albers,
  an equal-area projection), ``name`` and ``area`` (the LAPD division number where meaningful;
  both may be null), and ``population`` once :func:`geo_crime.rates.attach_population` has run;
* ``units.attrs["approximate"]`` (bool: the geometry is a stand-in, not an official boundary) and
  ``units.attrs["source"]`` (where the geometry comes from, in words).

Read the division column as ``units["area"]``: ``units.area`` is geopandas' planar area of the
geometries (in square degrees here), not the column.

Kinds of units
--------------
H3 cells (:func:`h3_units`)
    Uber's hexagonal grid. Resolutions 5-10 are allowed (about 250 km² down to 0.015 km² per
    cell); 8 (about 0.74 km²) is the default. A study area (the city, the 21 LAPD divisions, the
    county or any polygon file) is filled with every cell whose centre lies inside it, so cells
    without a single incident exist and count as zeros. Incidents are indexed with
    :func:`h3_cells`, no spatial join needed.
LAPD divisions (:func:`division_units`)
    The 21 geographic areas ("divisions", ``PREC`` 1-21 = the crime ``AREA``).
Reporting districts (:func:`rd_units`)
    LAPD's ~1,135 reporting districts (``Rpt Dist No``). Their official polygons are published on
    the City of Los Angeles GIS portal; :func:`fetch_boundary` downloads them once into the cache
    (recorded in ``boundaries/manifest.json``, checksum trusted on first use). Without that file,
    an *approximate* layer is derived from the incident points themselves (:func:`derive_rd_layer`:
    Voronoi cells of the points, dissolved by district and clipped to the district's division).
Any polygon layer (:func:`polygon_units`)
    Census tracts, neighbourhoods, council districts, a user's own polygons: GeoJSON, GeoPackage,
    Shapefile or a zipped Shapefile, in any CRS.

Assigning incidents
-------------------
:func:`assign_units` returns the ``unit_id`` of each incident, or null when the incident is not
spatially valid or lies outside every unit, with an :class:`AssignmentReport` that accounts for
every row (assigned + outside + not spatially valid = total). A point on the border shared by two
polygons goes to exactly one of them (the first in row order).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer

from geo_crime import schema
from geo_crime.config import EQUAL_AREA_CRS, REPO_ROOT, STORAGE_CRS, data_dir
from geo_crime.errors import ConfigError, DataError, FetchError, InputError
from geo_crime.io_utils import atomic_path, atomic_write_text

__all__ = [
    "UNIT_TYPES",
    "H3_RESOLUTIONS",
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
    "h3_cells",
    "h3_units",
    "incidents_outside_division",
    "load_manifest",
    "load_rd_attributes",
    "polygon_units",
    "rd_units",
    "read_polygon_layer",
    "study_area",
    "footprint_note",
    "restrict_to_divisions",
]

#: Allowed values of ``unit_type``.
UNIT_TYPES: tuple[str, ...] = ("h3", "rd", "division", "polygon")

#: H3 resolutions accepted for analysis units (about 252 km² to 0.015 km² per cell).
H3_RESOLUTIONS: range = range(5, 11)

#: Real boundary files, relative to :func:`geo_crime.config.data_dir`.
CITY_BOUNDARY_FILE = "boundaries/la_city_boundary__CityBoundaryofLosAngeles.zip"
DIVISIONS_FILE = "boundaries/lapd_divisions__LAPD_Division_5922489107755548254.geojson"
COUNTY_DISTRICTS_FILE = "boundaries/la_county_police_districts__abc7.geojson"
RD_ATTRIBUTES_FILE = (
    "boundaries/lapd_reporting_districts_attributes_NO_GEOMETRY__LAPD_Reporting_District.csv"
)

#: The list of downloadable official boundary layers.
MANIFEST_FILE: Path = REPO_ROOT / "boundaries" / "manifest.json"

#: Name of the official reporting-district layer in the manifest.
RD_LAYER = "lapd_reporting_districts"

#: Up to this many polygons, points are located polygon by polygon (prepared), not via a tree.
_FEW_POLYGONS = 64

#: Precision grid (metres) of the derived reporting-district overlay operations.
_GRID_M = 0.001

#: Precision grid (degrees, ~0.1 mm) of the final clip of derived districts by their division.
_GRID_DEGREES = 1e-9

#: Tolerance (metres) of the coverage simplification of derived reporting districts.
_SIMPLIFY_M = 5.0

#: ``attrs["source"]`` of the derived reporting-district layer.
DERIVED_RD_SOURCE = "derived from incident points (Voronoi), approximate"

#: Name of the file (in the boundary cache folder) where first-download checksums are recorded.
LOCK_FILE = "manifest.lock.json"

_UNIT_COLUMNS = ("unit_id", "unit_type", "name", "area", "area_km2")
_POLYGONAL = ("Polygon", "MultiPolygon")
_RD_PATTERN = re.compile(r"^\d{4}$")
_TO_ALBERS = Transformer.from_crs(STORAGE_CRS, EQUAL_AREA_CRS, always_xy=True)
_FROM_ALBERS = Transformer.from_crs(EQUAL_AREA_CRS, STORAGE_CRS, always_xy=True)


# --- the unit contract ----------------------------------------------------------------------------


def check_units(units: gpd.GeoDataFrame, *, strict: bool = True) -> None:
    """Raise :class:`~geo_crime.errors.DataError` unless ``units`` follows the unit contract.

    Parameters
    ----------
    units
        Candidate units (see the module docstring for the contract).
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


def _area_km2(geoms: gpd.GeoSeries) -> np.ndarray:
    return geoms.to_crs(EQUAL_AREA_CRS).area.to_numpy() / 1e6


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
    units.insert(4, "area_km2", _area_km2(units.geometry))
    units.attrs["approximate"] = bool(approximate)
    units.attrs["source"] = source
    if extra:
        units.attrs.update(extra)
    check_units(units)
    return units


# --- reading polygon layers -----------------------------------------------------------------------


@dataclass
class LayerReport:
    """What happened to the features of a polygon layer while it was read.

    ``features_read == kept + null_geometry + non_polygon_dropped``; ``repaired`` counts the kept
    features whose invalid geometry was repaired with :func:`shapely.make_valid`.
    """

    path: str
    layer: str | None
    features_read: int = 0
    null_geometry: int = 0
    non_polygon_dropped: int = 0
    repaired: int = 0
    kept: int = 0
    source_crs: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _ogr_source(path: Path) -> str:
    return f"zip://{path}" if path.suffix.lower() == ".zip" else str(path)


def _polygonal_part(geom: Any) -> Any:
    """The polygonal part of ``geom`` (a collection is reduced to its polygons), or None."""
    if geom is None or geom.is_empty:
        return None
    kind = geom.geom_type
    if kind in _POLYGONAL:
        return geom
    if kind == "GeometryCollection":
        parts = [g for g in shapely.get_parts(geom) if g.geom_type in _POLYGONAL and not g.is_empty]
        if parts:
            merged = shapely.union_all(parts)
            return merged if merged.geom_type in _POLYGONAL else None
    return None


def read_polygon_layer(
    path: str | Path, *, layer: str | int | None = None
) -> tuple[gpd.GeoDataFrame, LayerReport]:
    """Read a polygon layer into EPSG:4326, repairing invalid and dropping non-polygon features.

    Parameters
    ----------
    path
        GeoJSON, GeoPackage, Shapefile or zipped Shapefile (``.zip``).
    layer
        Layer name or index for multi-layer sources. When omitted, a source with several layers
        must have exactly one polygon layer.

    Returns
    -------
    (geopandas.GeoDataFrame, LayerReport)
        The polygon features (row order of the file, index reset) and the accounting.

    Raises
    ------
    InputError
        Missing or unreadable file, no CRS, ambiguous layer, or no polygon left.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    source = _ogr_source(path)
    try:
        if layer is None:
            layers = pyogrio.list_layers(source)
            if len(layers) > 1:
                polys = [name for name, kind in layers if kind and "Polygon" in str(kind)]
                if len(polys) != 1:
                    raise InputError(
                        f"{path}: {len(layers)} layers ({', '.join(str(n) for n, _ in layers)}); "
                        "choose one with layer="
                    )
                layer = polys[0]
        frame = gpd.read_file(source, layer=layer, engine="pyogrio")
    except InputError:
        raise
    except Exception as exc:  # pyogrio raises several error types for unreadable sources
        raise InputError(f"{path}: cannot read as a vector layer ({exc})") from None
    report = LayerReport(path=str(path), layer=None if layer is None else str(layer))
    report.features_read = len(frame)
    if frame.crs is None:
        raise InputError(f"{path}: the layer has no CRS; add one (e.g. a .prj) and retry")
    report.source_crs = frame.crs.to_string()
    geoms = frame.geometry.to_numpy()
    null = np.array([g is None or g.is_empty for g in geoms], dtype=bool)
    report.null_geometry = int(null.sum())
    valid = np.ones(len(geoms), dtype=bool)
    valid[~null] = shapely.is_valid(geoms[~null])
    to_fix = ~null & ~valid
    if to_fix.any():
        geoms = geoms.copy()
        geoms[to_fix] = shapely.make_valid(geoms[to_fix])
    polygonal = np.array([_polygonal_part(g) for g in geoms], dtype=object)
    keep = np.array([g is not None for g in polygonal], dtype=bool)
    report.non_polygon_dropped = int((~null & ~keep).sum())
    report.repaired = int((to_fix & keep).sum())
    report.kept = int(keep.sum())
    if report.kept == 0:
        raise InputError(f"{path}: no polygon features ({report.features_read} read)")
    out = frame.loc[keep].copy()
    out = out.set_geometry(gpd.GeoSeries(polygonal[keep], index=out.index, crs=frame.crs))
    out = out.to_crs(STORAGE_CRS).reset_index(drop=True)
    return out, report


def _default_file(relative: str) -> Path:
    return data_dir() / relative


# --- H3 -------------------------------------------------------------------------------------------


def _check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
        raise ConfigError(f"H3 resolution must be an integer, got {resolution!r}")
    if int(resolution) not in H3_RESOLUTIONS:
        raise ConfigError(
            f"H3 resolution {resolution} is outside {H3_RESOLUTIONS.start}-"
            f"{H3_RESOLUTIONS.stop - 1}"
        )
    return int(resolution)


def _coordinate_codes(
    lon: np.ndarray, lat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factorize coordinate pairs: ``(codes, unique_lon, unique_lat)``.

    The pair is viewed as one complex number so that pandas' hash table does the work (about 20
    times faster than a MultiIndex); repeated coordinates are common in LAPD data (addresses are
    rounded to the hundred block) and are then handled once.
    """
    pairs = np.ascontiguousarray(np.column_stack((lon, lat)), dtype=np.float64)
    keys = pairs.view(np.complex128).ravel()
    codes, uniques = pd.factorize(keys)
    return codes, np.ascontiguousarray(uniques.real), np.ascontiguousarray(uniques.imag)


def h3_cells(
    lat: Any,
    lon: Any,
    resolution: int,
    *,
    invalid: Literal["raise", "null"] = "raise",
) -> np.ndarray:
    """H3 cell of each point, vectorised.

    h3 4.x only offers a scalar ``latlng_to_cell``. The points are first reduced to their
    distinct coordinates (one hash-table pass), then each distinct coordinate is indexed once, so
    the cost is one Python call per *distinct* point: about 0.1 s for 1M real LAPD points (33k
    distinct) and about 1 s for 1M all-distinct points on a 2-core machine.

    Parameters
    ----------
    lat, lon
        Latitudes and longitudes in degrees (WGS84), 1-D and of equal length.
    resolution
        H3 resolution, 5-10.
    invalid
        ``"raise"`` (default): a missing or out-of-range coordinate raises ``InputError``.
        ``"null"``: such points get ``None``.

    Returns
    -------
    numpy.ndarray
        Object array of cell ids (str), identical to ``h3.latlng_to_cell(lat, lon, resolution)``.

    Raises
    ------
    ConfigError
        Resolution outside 5-10, or an unknown ``invalid`` policy.
    InputError
        Shapes differ, or invalid coordinates with ``invalid="raise"``.
    """
    res = _check_resolution(resolution)
    if invalid not in ("raise", "null"):
        raise ConfigError(f"invalid must be 'raise' or 'null', got {invalid!r}")
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if lat.ndim != 1 or lat.shape != lon.shape:
        raise InputError(f"lat and lon must be 1-D of equal length, got {lat.shape}, {lon.shape}")
    ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    n_bad = int((~ok).sum())
    if n_bad and invalid == "raise":
        raise InputError(f"{n_bad:,} of {lat.size:,} coordinates are missing or out of range")
    out = np.full(lat.size, None, dtype=object)
    if not ok.any():
        return out
    codes, ulon, ulat = _coordinate_codes(lon[ok], lat[ok])
    to_cell = h3.latlng_to_cell
    ids = np.array(
        [to_cell(y, x, res) for x, y in zip(ulon.tolist(), ulat.tolist(), strict=True)],
        dtype=object,
    )
    out[ok] = ids[codes]
    return out


def _cell_polygons(cells: Sequence[str]) -> np.ndarray:
    """Shapely polygons (lon/lat, closed, counter-clockwise exterior) of H3 cells."""
    cells = list(cells)
    if not cells:
        return np.empty(0, dtype=object)
    boundaries = [h3.cell_to_boundary(c) for c in cells]  # tuples of (lat, lng)
    sizes = np.fromiter((len(b) for b in boundaries), dtype=np.int64, count=len(boundaries))
    latlng = np.array([p for b in boundaries for p in b], dtype=np.float64)
    lng = latlng[:, 1]
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    span = np.maximum.reduceat(lng, starts) - np.minimum.reduceat(lng, starts)
    if (span > 180).any():
        bad = [cells[i] for i in np.flatnonzero(span > 180)[:3]]
        raise DataError(f"H3 cells crossing the antimeridian are not supported, e.g. {bad}")
    ring_index = np.repeat(np.arange(len(cells)), sizes)
    rings = shapely.linearrings(latlng[:, ::-1], indices=ring_index)  # closed automatically
    polys = shapely.polygons(rings)
    return shapely.orient_polygons(polys, exterior_cw=False)


def _h3_frame(
    cells: Sequence[str], *, in_study_area: bool | np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.DataFrame({"unit_id": list(cells)})
    frame["in_study_area"] = in_study_area
    return frame, _cell_polygons(cells)


def _resolve_area(area: Any) -> tuple[Any, str]:
    """``(geometry in EPSG:4326, description)`` of a study-area specification."""
    if isinstance(area, shapely.Geometry):
        if area.geom_type not in _POLYGONAL or area.is_empty:
            raise ConfigError(f"a study area must be a (Multi)Polygon, got {area.geom_type}")
        return area, "a given polygon (EPSG:4326)"
    return study_area(area), f"study area {area!s}"


def study_area(kind: str | Path = "city") -> Any:
    """The outline of a study area as one shapely (Multi)Polygon in EPSG:4326.

    Parameters
    ----------
    kind
        ``"city"``: the City of Los Angeles boundary (the zipped city shapefile);
        ``"divisions"``: the union of the 21 LAPD divisions (practically the same outline);
        ``"county"``: the union of the 130 LA County police districts (a stand-in for the county
        outline, which has no dedicated layer here); or a path to any polygon file, whose
        polygons are unioned.

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        The valid, unioned outline in lon/lat.

    Raises
    ------
    ConfigError
        ``kind`` is neither a known name nor an existing file.
    InputError
        The file cannot be read or has no polygons.
    """
    named = {"city": CITY_BOUNDARY_FILE, "divisions": DIVISIONS_FILE}
    named["county"] = COUNTY_DISTRICTS_FILE
    if isinstance(kind, str) and kind in named:
        path = _default_file(named[kind])
    else:
        path = Path(kind).expanduser()
        if not path.exists():
            raise ConfigError(
                f"unknown study area {kind!r}: use 'city', 'divisions', 'county' or a polygon file"
            )
    frame, _ = read_polygon_layer(path)
    geom = shapely.union_all(shapely.make_valid(frame.geometry.to_numpy()))
    geom = _polygonal_part(geom)
    if geom is None:
        raise InputError(f"{path}: the union of its polygons is empty")
    return geom


def h3_units(
    resolution: int = 8,
    *,
    study_area: str | Path | Any = "city",
    contain: Literal["center", "overlap"] = "center",
) -> gpd.GeoDataFrame:
    """Fill a study area with H3 cells: every cell exists as a unit, with or without incidents.

    Parameters
    ----------
    resolution
        H3 resolution, 5-10 (8: cells of about 0.74 km², 1.5k cells for the city).
    study_area
        ``"city"``, ``"divisions"``, ``"county"``, a polygon file, or a shapely (Multi)Polygon in
        EPSG:4326 (see :func:`study_area`).
    contain
        ``"center"`` (default): cells whose centre lies inside the area (``h3.geo_to_cells``),
        so cells straddling the edge are in or out by their centre; incidents in edge cells left
        out are counted as outside by :func:`assign_units`, or added with ``ensure_cells=True``.
        ``"overlap"``: every cell that touches the area (h3's experimental containment mode), so
        the union of the cells covers the whole area.

    Returns
    -------
    geopandas.GeoDataFrame
        Units (``unit_type='h3'``) sorted by cell id, with ``in_study_area`` True;
        ``attrs["h3_resolution"]`` holds the resolution.

    Raises
    ------
    ConfigError
        Bad resolution, containment mode or study area.
    DataError
        The area contains no cell (too small for the resolution).
    """
    res = _check_resolution(resolution)
    geom, description = _resolve_area(study_area)
    if contain == "center":
        cells = h3.geo_to_cells(geom, res)
    elif contain == "overlap":
        cells = h3.h3shape_to_cells_experimental(h3.geo_to_h3shape(geom), res, contain="overlap")
    else:
        raise ConfigError(f"contain must be 'center' or 'overlap', got {contain!r}")
    cells = sorted(cells)
    if not cells:
        raise DataError(f"no H3 cell of resolution {res} has its centre in {description}")
    frame, polys = _h3_frame(cells, in_study_area=True)
    rule = "whose centre is inside" if contain == "center" else "overlapping"
    return _finish_units(
        frame,
        polys,
        unit_type="h3",
        approximate=False,
        source=f"H3 resolution {res} cells {rule} {description}",
        extra={"h3_resolution": res},
    )


def _h3_resolution_of(units: gpd.GeoDataFrame) -> int:
    resolutions = {h3.get_resolution(c) for c in units["unit_id"]}
    if len(resolutions) != 1:
        raise ConfigError(f"H3 units mix resolutions {sorted(resolutions)}")
    return resolutions.pop()


def ensure_cells(units: gpd.GeoDataFrame, cells: Iterable[str]) -> gpd.GeoDataFrame:
    """Add the H3 cells not yet in ``units`` (``in_study_area`` False), e.g. incident cells.

    Parameters
    ----------
    units
        H3 units from :func:`h3_units`.
    cells
        Cell ids; those already present are ignored. All must have the units' resolution.

    Returns
    -------
    geopandas.GeoDataFrame
        A new frame: the old units in their order, then the added cells sorted; attrs kept and
        ``attrs["cells_added"]`` increased by the number added.

    Raises
    ------
    ConfigError
        ``units`` are not H3 units, or a cell has another resolution or is not a valid cell.
    """
    if not (units["unit_type"] == "h3").all():
        raise ConfigError("ensure_cells needs H3 units")
    res = _h3_resolution_of(units)
    present = set(units["unit_id"])
    new = sorted({c for c in cells if c is not None} - present)
    for cell in new:
        if not h3.is_valid_cell(cell) or h3.get_resolution(cell) != res:
            raise ConfigError(f"{cell!r} is not a valid H3 cell of resolution {res}")
    if not new:
        return units
    frame, polys = _h3_frame(new, in_study_area=False)
    added = _finish_units(
        frame,
        polys,
        unit_type="h3",
        approximate=bool(units.attrs.get("approximate", False)),
        source=str(units.attrs.get("source", "")),
    )
    base = units.copy()
    if "in_study_area" not in base.columns:
        base["in_study_area"] = True
    out = pd.concat([base, added[base.columns.intersection(added.columns)]], ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=STORAGE_CRS)
    out.attrs = dict(units.attrs)
    out.attrs["cells_added"] = int(units.attrs.get("cells_added", 0)) + len(new)
    return out


# --- divisions ------------------------------------------------------------------------------------


def division_units(path: str | Path | None = None) -> gpd.GeoDataFrame:
    """The 21 LAPD divisions (geographic areas) as units.

    Parameters
    ----------
    path
        A division layer with ``PREC`` (1-21) and ``APREC`` (name) fields; defaults to the
        LA GeoHub export in the data folder.

    Returns
    -------
    geopandas.GeoDataFrame
        ``unit_id = str(PREC)`` (``'1'`` .. ``'21'``), ``area = PREC``, ``name = APREC``, sorted
        by ``area``.

    Raises
    ------
    InputError
        The layer lacks ``PREC``/``APREC`` or repeats a ``PREC``.
    """
    path = Path(path) if path is not None else _default_file(DIVISIONS_FILE)
    frame, report = read_polygon_layer(path)
    cols = {c.upper(): c for c in frame.columns}
    if "PREC" not in cols or "APREC" not in cols:
        raise InputError(f"{path}: a division layer needs PREC and APREC fields")
    prec = pd.to_numeric(frame[cols["PREC"]], errors="coerce")
    if prec.isna().any() or prec.duplicated().any():
        raise InputError(f"{path}: PREC must be present and unique in every feature")
    frame = frame.assign(_prec=prec.astype(int)).sort_values("_prec").reset_index(drop=True)
    table = pd.DataFrame(
        {
            "unit_id": frame["_prec"].astype(str),
            "name": frame[cols["APREC"]].astype(str).str.strip(),
            "area": frame["_prec"],
        }
    )
    return _finish_units(
        table,
        frame.geometry.to_numpy(),
        unit_type="division",
        approximate=False,
        source=f"LAPD divisions ({path.name})",
        extra={"read_report": report.to_dict()},
    )


# --- assigning incidents --------------------------------------------------------------------------


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


# --- reporting districts --------------------------------------------------------------------------


def load_rd_attributes(path: str | Path | None = None) -> pd.DataFrame:
    """The LAPD reporting-district attribute table (no geometry), indexed by the 4-digit code.

    Parameters
    ----------
    path
        The CSV export of the RD layer's attributes (default: the copy in the data folder).

    Returns
    -------
    pandas.DataFrame
        Index ``rpt_dist`` (``'0377'``); columns ``name``, ``bureau``, ``division_name``
        (``APREC``) and ``area`` (``PREC``).
    """
    path = Path(path) if path is not None else _default_file(RD_ATTRIBUTES_FILE)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    table = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    needed = {"NAME", "BUREAU", "APREC", "PREC"}
    if not needed <= set(table.columns):
        raise InputError(f"{path}: expected columns {sorted(needed)}")
    code = table["NAME"].str.strip().str.zfill(4)
    out = pd.DataFrame(
        {
            "name": code.to_numpy(),
            "bureau": table["BUREAU"].str.strip().to_numpy(),
            "division_name": table["APREC"].str.strip().to_numpy(),
            "area": pd.to_numeric(table["PREC"], errors="coerce").astype("Int8").to_numpy(),
        },
        index=pd.Index(code.to_numpy(), name="rpt_dist"),
    )
    return out[~out.index.duplicated()]


@dataclass
class RDDerivationReport:
    """Accounting of the derived reporting-district layer.

    Rows: ``total == not_spatially_valid + rd_missing_or_malformed + rd_division_unknown
    + outside_own_division + used``, where ``outside_own_division`` rows (coordinates not in the
    division of their district) are left out, except the ``rows_snapped`` of districts that would
    otherwise have no point at all: those are moved into the division (at most ``max_snap_m``
    metres) and counted in ``used``. Of the ``coordinates_used`` distinct coordinates,
    ``coordinates_contested`` carried several districts and went to the majority; the
    ``rows_outvoted`` rows of the minority districts lend no area.
    """

    total: int = 0
    not_spatially_valid: int = 0
    rd_missing_or_malformed: int = 0
    rd_division_unknown: int = 0
    outside_own_division: int = 0
    used: int = 0
    rows_snapped: int = 0
    max_snap_m: float = 0.0
    districts_snapped: list[str] = field(default_factory=list)
    coordinates_used: int = 0
    coordinates_contested: int = 0
    rows_outvoted: int = 0
    coordinates_beyond_cap: int = 0
    districts: int = 0
    districts_without_polygon: list[str] = field(default_factory=list)
    districts_not_in_attribute_table: list[str] = field(default_factory=list)
    divisions_without_points: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _to_albers(geom: Any) -> Any:
    return shapely.transform(
        geom, lambda c: np.column_stack(_TO_ALBERS.transform(c[:, 0], c[:, 1]))
    )


def _from_albers(geom: Any) -> Any:
    return shapely.transform(
        geom, lambda c: np.column_stack(_FROM_ALBERS.transform(c[:, 0], c[:, 1]))
    )


def _majority_coordinates(
    lon: np.ndarray, lat: np.ndarray, rd: np.ndarray, area: np.ndarray, use: np.ndarray
) -> pd.DataFrame:
    """One row per distinct coordinate: its majority district (ties: the lowest code).

    Columns ``lon``, ``lat``, ``rd``, ``area``, ``n`` (rows of the winning district there) and
    ``n_districts`` (districts recorded at the coordinate).
    """
    rows = pd.DataFrame({"lon": lon[use], "lat": lat[use], "rd": rd[use], "area": area[use]})
    pairs = rows.groupby(["lon", "lat", "rd", "area"], sort=False).size().rename("n").reset_index()
    pairs = pairs.sort_values(["lon", "lat", "n", "rd"], ascending=[True, True, False, True])
    pairs["n_districts"] = pairs.groupby(["lon", "lat"], sort=False)["rd"].transform("size")
    return pairs.drop_duplicates(["lon", "lat"]).reset_index(drop=True)


def derive_rd_layer(
    incidents: pd.DataFrame,
    *,
    divisions: gpd.GeoDataFrame | None = None,
    attributes: pd.DataFrame | None = None,
    snap_m: float = 1000.0,
    max_coordinates_per_district: int = 400,
) -> tuple[gpd.GeoDataFrame, RDDerivationReport]:
    """Approximate reporting-district polygons from the incident points (no official geometry).

    Every spatially valid incident is a sample of its district's territory. Per division, the
    distinct coordinates of the incidents recorded in that division's districts *and located in
    that division* are split into Voronoi cells (in EPSG:3310, so distances are metric); each cell
    takes the district of its point (the majority district when several share a coordinate), the
    cells are dissolved by district and clipped to the division polygon (in EPSG:4326). By
    construction every district polygon lies in its division (``rpt_dist // 100 == PREC``, e.g.
    ``'0377'`` is in division 3) and the districts of a division tile it without overlap.
    Incidents outside their district's division are left out (counted), except for a district
    that would otherwise vanish: its points near the division are snapped into it.

    The result is approximate: district borders run halfway between incidents rather than along
    streets, a district's polygon may be split where another district's points intrude, and a
    district none of whose coordinates survives (all outside its division or outvoted) gets no
    polygon (listed in the report).

    Parameters
    ----------
    incidents
        Canonical incidents (``lat``, ``lon``, ``spatial_valid``, ``rpt_dist``).
    divisions
        Division units (default :func:`division_units`).
    attributes
        RD attribute table (default :func:`load_rd_attributes`) for ``bureau`` and
        ``division_name``.
    snap_m
        A district none of whose incidents lies in its division keeps its incidents within this
        many metres of the division, moved 1 m inside it (0 disables this).
    max_coordinates_per_district
        Each district is drawn from at most this many of its distinct coordinates (its most
        frequent ones), which bounds the Voronoi diagram for very large inputs (real LAPD data
        has a median of ~90 distinct coordinates per district per year); 0 means no cap.

    Returns
    -------
    (geopandas.GeoDataFrame, RDDerivationReport)
        Units with ``unit_type='rd'``, ``unit_id`` = the 4-digit code, ``name``, ``area``
        (division), ``bureau``, ``division_name``, ``n_incidents``, ``n_coordinates``,
        ``approximate`` (True); ``attrs["approximate"]`` True and ``attrs["source"]`` =
        :data:`DERIVED_RD_SOURCE`.

    Raises
    ------
    InputError
        Incidents lack ``rpt_dist`` or coordinates.
    DataError
        No incident can be used.
    """
    if "rpt_dist" not in incidents.columns:
        raise InputError("incidents lack the 'rpt_dist' column")
    divisions = division_units() if divisions is None else divisions.to_crs(STORAGE_CRS)
    attributes = load_rd_attributes() if attributes is None else attributes
    report = RDDerivationReport(total=len(incidents))
    lat, lon, valid = _valid_points(incidents)
    report.not_spatially_valid = int((~valid).sum())
    rd = incidents["rpt_dist"].astype("string").str.strip()
    rd_ok = rd.str.fullmatch(r"\d{4}").fillna(False).to_numpy(dtype=bool)
    report.rd_missing_or_malformed = int((valid & ~rd_ok).sum())
    rd_text = rd.fillna("0000").to_numpy(dtype=object)
    rd_div = np.array([int(c[:2]) for c in rd_text], dtype=np.int64)
    div_areas = divisions["area"].to_numpy(dtype=np.int64)
    known = np.isin(rd_div, div_areas)
    report.rd_division_unknown = int((valid & rd_ok & ~known).sum())
    cand = valid & rd_ok & known
    located = np.full(len(incidents), -1, dtype=np.int64)
    if cand.any():
        where, _ = _locate(lon[cand], lat[cand], divisions.geometry.to_numpy())
        located[cand] = np.where(where >= 0, div_areas[np.maximum(where, 0)], -1)
    use = cand & (located == rd_div)
    if not use.any():
        raise DataError("no incident has coordinates inside the division of its reporting district")
    div_geom = dict(zip(div_areas.tolist(), divisions.geometry.to_numpy(), strict=True))

    # A district that wins no coordinate in its own division (e.g. its only other geocode is in
    # the ocean off Pacific Coast Highway) would vanish: its incidents outside the division but
    # within snap_m of it are moved to the nearest spot 1 m inside, then the vote is repeated.
    # LAPD publishes coordinates to 4 decimals (~10 m): vote on that grid, which also bounds the
    # Voronoi diagram's size for large (e.g. jittered or resampled) inputs
    lon_used, lat_used = np.round(lon, 4), np.round(lat, 4)
    winners = _majority_coordinates(lon_used, lat_used, rd_text, rd_div, use)
    lost = sorted(set(rd_text[cand]) - set(winners["rd"]))
    lost_mask = cand & ~use & np.isin(rd_text, lost)
    for area_no in np.unique(rd_div[lost_mask]).tolist() if snap_m > 0 else []:
        rows_idx = np.flatnonzero(lost_mask & (rd_div == area_no))
        inner = shapely.buffer(_to_albers(div_geom[area_no]), -1.0)
        points = shapely.points(*_TO_ALBERS.transform(lon[rows_idx], lat[rows_idx]))
        dist = shapely.distance(points, inner)
        near = dist <= snap_m
        if not near.any():
            continue
        ends = shapely.get_point(shapely.shortest_line(points[near], inner), 1)
        new_lon, new_lat = _FROM_ALBERS.transform(shapely.get_x(ends), shapely.get_y(ends))
        lon_used[rows_idx[near]] = new_lon
        lat_used[rows_idx[near]] = new_lat
        use[rows_idx[near]] = True
        report.rows_snapped += int(near.sum())
        report.max_snap_m = max(report.max_snap_m, float(dist[near].max()))
        report.districts_snapped += sorted(set(rd_text[rows_idx[near]]))
    if report.rows_snapped:
        winners = _majority_coordinates(lon_used, lat_used, rd_text, rd_div, use)
    if max_coordinates_per_district and len(winners):
        ranked = winners.sort_values(["rd", "n", "lon", "lat"], ascending=[True, False, True, True])
        capped = ranked.groupby("rd", sort=False).head(max_coordinates_per_district)
        report.coordinates_beyond_cap = int(len(winners) - len(capped))
        winners = capped.sort_index().reset_index(drop=True)
    report.outside_own_division = int((cand & ~use).sum())
    report.used = int(use.sum())
    per_rd = pd.Series(rd_text[use]).value_counts()
    report.coordinates_used = len(winners)
    report.coordinates_contested = int((winners["n_districts"] > 1).sum())
    report.rows_outvoted = int(report.used - winners["n"].sum())

    x, y = _TO_ALBERS.transform(winners["lon"].to_numpy(), winners["lat"].to_numpy())
    xy = np.column_stack((x, y))
    codes: list[str] = []
    areas: list[int] = []
    geoms: list[Any] = []
    for area_no, group in winners.groupby("area", sort=True):
        division = div_geom[int(area_no)]
        idx = group.index.to_numpy()
        labels = group["rd"].to_numpy(dtype=object)
        division_albers = _to_albers(division)
        if len(set(labels)) == 1:
            codes.append(labels[0])
            areas.append(int(area_no))
            geoms.append(division_albers)
            continue
        cells = shapely.get_parts(
            shapely.voronoi_polygons(
                shapely.multipoints(xy[idx]),
                extend_to=shapely.buffer(shapely.envelope(division_albers), 1000.0),
                ordered=True,
            )
        )
        if len(cells) != len(idx):
            raise DataError(
                f"Voronoi diagram of division {area_no}: {len(cells)} cells for {len(idx)} points"
            )
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        bounds = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
        for start, stop in zip(bounds, np.r_[bounds[1:], len(order)], strict=True):
            merged = shapely.make_valid(shapely.coverage_union_all(cells[order[start:stop]]))
            codes.append(sorted_labels[start])
            areas.append(int(area_no))
            geoms.append(merged)
    # clip in metres on a 1 mm grid (robust against GEOS topology errors), then simplify each
    # division's districts together so that shared borders stay shared (no gaps or overlaps)
    albers_divisions = {a: shapely.make_valid(_to_albers(div_geom[a])) for a in set(areas)}
    clip_to = np.array([albers_divisions[a] for a in areas], dtype=object)
    clipped = shapely.intersection(
        shapely.make_valid(np.array(geoms, dtype=object)), clip_to, grid_size=_GRID_M
    )
    area_arr = np.array(areas)
    for area_no in set(areas):
        rows_in = np.flatnonzero(area_arr == area_no)
        parts = [_polygonal_part(g) for g in clipped[rows_in]]
        ok = [i for i, g in zip(rows_in, parts, strict=True) if g is not None]
        if ok:
            simplified = shapely.coverage_simplify(
                np.array([_polygonal_part(g) for g in clipped[ok]], dtype=object),
                tolerance=_SIMPLIFY_M,
            )
            clipped[ok] = simplified
    # back to lon/lat, then clip again by the division there, so that the districts follow the
    # division's own outline exactly (a straight edge in metres is not straight in degrees)
    clipped = np.array(
        [None if g is None else shapely.make_valid(_from_albers(g)) for g in clipped],
        dtype=object,
    )
    present = np.array([g is not None for g in clipped], dtype=bool)
    clip_lonlat = np.array([div_geom[a] for a in areas], dtype=object)
    clipped[present] = shapely.intersection(
        clipped[present], clip_lonlat[present], grid_size=_GRID_DEGREES
    )
    clipped = np.array([None if g is None else _polygonal_part(g) for g in clipped], dtype=object)
    keep = np.array([g is not None for g in clipped], dtype=bool)

    all_rds = sorted(set(rd_text[cand]))
    codes_arr = np.array(codes, dtype=object)[keep]
    report.districts = int(keep.sum())
    report.districts_without_polygon = sorted(set(all_rds) - set(codes_arr.tolist()))
    report.districts_not_in_attribute_table = sorted(set(codes_arr) - set(attributes.index))
    report.divisions_without_points = sorted(set(div_areas.tolist()) - set(winners["area"]))

    n_coords = winners.groupby("rd").size()
    attr = attributes.reindex(codes_arr)
    table = pd.DataFrame(
        {
            "unit_id": codes_arr,
            "name": attr["name"].fillna(pd.Series(codes_arr, index=attr.index)).to_numpy(),
            "area": np.array(areas)[keep],
            "bureau": attr["bureau"].to_numpy(dtype=object),
            "division_name": attr["division_name"].to_numpy(dtype=object),
            "n_incidents": per_rd.reindex(codes_arr).fillna(0).astype(int).to_numpy(),
            "n_coordinates": n_coords.reindex(codes_arr).fillna(0).astype(int).to_numpy(),
            "approximate": True,
        }
    )
    order = np.argsort(codes_arr, kind="stable")
    units = _finish_units(
        table.iloc[order].reset_index(drop=True),
        clipped[keep][order],
        unit_type="rd",
        approximate=True,
        source=DERIVED_RD_SOURCE,
        extra={"derivation": report.to_dict()},
    )
    return units, report


def _official_rd_units(path: Path, *, sha256: str | None) -> gpd.GeoDataFrame:
    frame, report = read_polygon_layer(path)
    cols = {c.upper(): c for c in frame.columns}
    code_col = cols.get("NAME") or cols.get("REPDIST")
    if code_col is None:
        raise InputError(f"{path}: the RD layer has neither NAME nor REPDIST")
    code = frame[code_col].astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    code = code.str.zfill(4)
    if code.duplicated().any():
        # A district split in several features: dissolve them into one unit.
        frame = frame.assign(_code=code).dissolve(by="_code", as_index=False, aggfunc="first")
        code = frame["_code"]
    if "PREC" in cols:
        area = pd.to_numeric(frame[cols["PREC"]], errors="coerce").to_numpy()
    else:
        area = np.array([int(c) // 100 for c in code], dtype=float)

    def column(key: str) -> np.ndarray:
        if key in cols:
            return frame[cols[key]].to_numpy(dtype=object)
        return np.full(len(frame), None, dtype=object)

    table = pd.DataFrame(
        {
            "unit_id": code.to_numpy(),
            "name": code.to_numpy(),
            "area": pd.array(area, dtype="Int8"),
            "bureau": column("BUREAU"),
            "division_name": column("APREC"),
            "approximate": False,
        }
    )
    order = np.argsort(table["unit_id"].to_numpy(), kind="stable")
    return _finish_units(
        table.iloc[order].reset_index(drop=True),
        frame.geometry.to_numpy()[order],
        unit_type="rd",
        approximate=False,
        source=f"official LAPD Reporting Districts ({path.name}, sha256 {sha256})",
        extra={"read_report": report.to_dict()},
    )


def rd_units(
    incidents: pd.DataFrame | None = None,
    *,
    source: Literal["auto", "official", "derived"] = "auto",
    cache: bool | str | Path = True,
    divisions: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """LAPD reporting districts as units: the official layer when available, else derived.

    Parameters
    ----------
    incidents
        Needed for the derived layer (see :func:`derive_rd_layer`).
    source
        ``"auto"`` (default): the official layer if it is already in the cache (never downloads),
        otherwise the derived layer. ``"official"``: the official layer, downloaded with
        :func:`fetch_boundary` when not cached (``FetchError`` without network).
        ``"derived"``: always the layer derived from ``incidents``.
    cache
        Folder of downloaded boundaries: ``True`` = ``<cache_dir>/boundaries``, a path = that
        folder, ``False`` = none (``"auto"`` then always derives; ``"official"`` downloads into
        a temporary folder each time).
    divisions
        Division units for the derived layer (default :func:`division_units`).

    Returns
    -------
    geopandas.GeoDataFrame
        Units with ``unit_type='rd'``; ``attrs["approximate"]`` tells which layer it is.

    Raises
    ------
    ConfigError
        Unknown ``source``, or the derived layer is needed but ``incidents`` is None.
    FetchError
        ``source="official"`` and the download failed.
    """
    if source not in ("auto", "official", "derived"):
        raise ConfigError(f"source must be 'auto', 'official' or 'derived', got {source!r}")
    folder = _cache_folder(cache)
    if source in ("auto", "official") and folder is not None:
        cached = _verified_cached(RD_LAYER, folder)
        if cached is not None:
            return _official_rd_units(cached[0], sha256=cached[1])
    if source == "official":
        if folder is not None:
            path = fetch_boundary(RD_LAYER, cache_dir=folder)
            return _official_rd_units(path, sha256=_sha256_file(path))
        with tempfile.TemporaryDirectory() as tmp:
            path = fetch_boundary(RD_LAYER, cache_dir=tmp)
            return _official_rd_units(path, sha256=_sha256_file(path))
    if incidents is None:
        raise ConfigError(
            "the official reporting-district layer is not cached and no incidents were given to "
            "derive an approximate one"
        )
    units, _ = derive_rd_layer(incidents, divisions=divisions)
    return units


# --- official boundary downloads ------------------------------------------------------------------


def load_manifest(path: str | Path | None = None) -> dict[str, Any]:
    """Read the boundary manifest (``boundaries/manifest.json``): downloadable official layers.

    Parameters
    ----------
    path
        Another manifest file (default :data:`MANIFEST_FILE`).

    Returns
    -------
    dict
        The parsed manifest; ``manifest["layers"][name]`` has at least ``url`` and ``filename``.
    """
    path = Path(path) if path is not None else MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"boundary manifest {path} not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"boundary manifest {path} is not valid JSON ({exc})") from None
    layers = manifest.get("layers")
    if not isinstance(layers, dict):
        raise ConfigError(f"boundary manifest {path} has no 'layers' object")
    for name, entry in layers.items():
        if not isinstance(entry, dict) or not entry.get("url") or not entry.get("filename"):
            raise ConfigError(f"boundary manifest {path}: layer {name!r} needs url and filename")
    return manifest


def _cache_folder(cache: bool | str | Path) -> Path | None:
    if cache is False:
        return None
    if cache is True:
        from geo_crime.config import cache_dir

        return cache_dir() / "boundaries"
    return Path(cache).expanduser()


def _sha256_file(path: Path) -> str:
    from geo_crime.fetch import sha256_file

    return sha256_file(path)


def _read_lock(folder: Path) -> dict[str, Any]:
    lock = folder / LOCK_FILE
    if not lock.exists():
        return {}
    try:
        return json.loads(lock.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{lock} is corrupt ({exc}); delete it to re-record checksums") from None


def _write_lock(folder: Path, lock: dict[str, Any]) -> None:
    atomic_write_text(folder / LOCK_FILE, json.dumps(lock, indent=2, sort_keys=True) + "\n")


def _expected_sha(name: str, entry: dict[str, Any], lock: dict[str, Any], url: str) -> str | None:
    if entry.get("sha256"):
        return str(entry["sha256"]).lower()
    record = lock.get(name)
    if record is None:
        return None
    if record.get("url") != url:
        raise ConfigError(
            f"{name}: the checksum recorded in {LOCK_FILE} is for {record.get('url')}, not {url}; "
            "remove that entry to trust the new source"
        )
    return str(record["sha256"]).lower()


def _verified_cached(name: str, folder: Path) -> tuple[Path, str] | None:
    """``(path, sha256)`` of a cached layer whose checksum matches, None when not cached."""
    try:
        entry = load_manifest()["layers"].get(name)
    except ConfigError:
        return None
    if entry is None:
        return None
    path = folder / entry["filename"]
    if not path.is_file():
        return None
    lock = _read_lock(folder)
    expected = _expected_sha(name, entry, lock, entry["url"])
    actual = _sha256_file(path)
    if expected is None:
        lock[name] = _lock_record(entry["url"], actual, path)
        _write_lock(folder, lock)
    elif actual != expected:
        raise DataError(
            f"{path}: sha256 {actual} differs from the recorded {expected}; the cached file "
            "changed. Delete it to download it again."
        )
    return path, actual


def _lock_record(url: str, sha: str, path: Path) -> dict[str, Any]:
    return {
        "url": url,
        "sha256": sha,
        "bytes": path.stat().st_size,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _download(url: str, *, timeout: float, retries: int) -> bytes:
    from geo_crime.fetch import get_bytes

    return get_bytes(url, timeout=timeout, max_retries=retries, backoff=2.0)


def _parse_feature_collection(data: bytes, url: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FetchError(f"{url}: the response is not JSON ({exc})") from None
    if isinstance(doc, dict) and "error" in doc:
        raise FetchError(f"{url}: the server answered with an error: {doc['error']}")
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise FetchError(f"{url}: the response is not a GeoJSON FeatureCollection")
    return doc


def _exceeded(doc: dict[str, Any]) -> bool:
    props = doc.get("properties") or {}
    return bool(doc.get("exceededTransferLimit") or props.get("exceededTransferLimit"))


def _with_offset(url: str, offset: int) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "resultOffset"]
    query.append(("resultOffset", str(offset)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def fetch_boundary(
    name: str,
    *,
    url: str | None = None,
    cache_dir: str | Path | None = None,
    timeout: float = 60.0,
    retries: int = 2,
    manifest: str | Path | None = None,
) -> Path:
    """Download an official boundary layer listed in the manifest once, into the cache.

    The file is written atomically. Its SHA-256 is checked against the manifest's ``sha256``
    when one is pinned there; otherwise the checksum of the first download is recorded in
    ``<cache_dir>/manifest.lock.json`` (trust on first use) and every later use or download must
    match it, so an upstream change or a corrupted cache is noticed instead of silently changing
    results. ArcGIS query URLs that page their results (``exceededTransferLimit``) are followed
    page by page with ``resultOffset`` when the manifest entry says ``"paging": "arcgis"``.

    Parameters
    ----------
    name
        Layer name in the manifest (e.g. ``"lapd_reporting_districts"``).
    url
        Download from here instead of the manifest URL (the checksum is recorded per URL).
    cache_dir
        Folder for the file (default ``<cache_dir>/boundaries``).
    timeout
        Seconds per request.
    retries
        Extra attempts after a network error or an HTTP 5xx answer.
    manifest
        Another manifest file.

    Returns
    -------
    pathlib.Path
        The cached file.

    Raises
    ------
    ConfigError
        Unknown layer name.
    FetchError
        The download failed, is not a GeoJSON FeatureCollection, or its checksum differs from the
        recorded one.
    DataError
        The cached file no longer matches its recorded checksum.
    """
    layers = load_manifest(manifest)["layers"]
    if name not in layers:
        raise ConfigError(f"unknown boundary layer {name!r}; the manifest has {sorted(layers)}")
    entry = layers[name]
    source_url = url or entry["url"]
    folder = _cache_folder(True) if cache_dir is None else Path(cache_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry["filename"]
    lock = _read_lock(folder)
    expected = _expected_sha(name, entry, lock, source_url)
    if target.is_file():
        actual = _sha256_file(target)
        if expected is not None and actual != expected:
            raise DataError(
                f"{target}: sha256 {actual} differs from the recorded {expected}; the cached file "
                "changed. Delete it to download it again."
            )
        if expected is None:
            lock[name] = _lock_record(source_url, actual, target)
            _write_lock(folder, lock)
        return target

    data = _download(source_url, timeout=timeout, retries=retries)
    doc = _parse_feature_collection(data, source_url)
    if entry.get("paging") == "arcgis" and _exceeded(doc):
        features = list(doc.get("features") or [])
        while _exceeded(doc):
            page_url = _with_offset(source_url, len(features))
            doc = _parse_feature_collection(
                _download(page_url, timeout=timeout, retries=retries), page_url
            )
            page = doc.get("features") or []
            if not page:
                break
            features.extend(page)
        data = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    if not _parse_feature_collection(data, source_url).get("features"):
        raise FetchError(f"{source_url}: the layer has no features")
    actual = hashlib.sha256(data).hexdigest()
    if expected is not None and actual != expected:
        raise FetchError(
            f"{source_url}: downloaded sha256 {actual} differs from the recorded {expected} "
            f"(the layer changed upstream or the download was altered); remove the entry in "
            f"{folder / LOCK_FILE} to trust the new version"
        )
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    if expected is None:
        lock[name] = _lock_record(source_url, actual, target)
        _write_lock(folder, lock)
    return target


# --- any polygon layer ----------------------------------------------------------------------------


def _id_text(values: pd.Series) -> pd.Series | None:
    """Values as id strings (integral floats without ``.0``), or None if unusable as ids."""
    if values.isna().any():
        return None
    if pd.api.types.is_float_dtype(values):
        if not np.all(np.equal(np.mod(values.to_numpy(), 1), 0)):
            return None
        values = values.astype(np.int64)
    elif not (
        pd.api.types.is_integer_dtype(values)
        or pd.api.types.is_string_dtype(values)
        or pd.api.types.is_object_dtype(values)
    ):
        return None
    text = values.astype(str).str.strip()
    if text.duplicated().any() or (text == "").any():
        return None
    return text


def polygon_units(
    path: str | Path,
    *,
    id_column: str | None = None,
    name_column: str | None = None,
    layer: str | int | None = None,
    columns: Sequence[str] = (),
) -> gpd.GeoDataFrame:
    """Any polygon layer as units (census tracts, neighbourhoods, council districts, ...).

    Parameters
    ----------
    path
        GeoJSON, GeoPackage, Shapefile or zipped Shapefile (``.zip``) in any CRS.
    id_column
        Column holding unique ids. By default the first column whose values are all present and
        unique (integers, integral floats or text), looking first at columns whose name ends in
        ``id`` (``GEOID``, ``OBJECTID``, ``NC_ID``, ``osm_id``); failing that, the feature
        position (``'0'``, ``'1'``, ...).
    name_column
        Column of display names (default: a column called ``name``, any case, if there is one).
    layer
        Layer name or index for multi-layer sources.
    columns
        Further attribute columns to carry over.

    Returns
    -------
    geopandas.GeoDataFrame
        Units with ``unit_type='polygon'`` in the file's feature order, reprojected to EPSG:4326;
        invalid geometries repaired and non-polygon features dropped, as counted in
        ``attrs["read_report"]``; ``attrs["id_column"]`` names the id source.

    Raises
    ------
    InputError
        Unreadable file, no polygon features.
    ConfigError
        ``id_column``/``name_column``/``columns`` not in the layer, or ``id_column`` not unique.
    """
    path = Path(path)
    frame, report = read_polygon_layer(path, layer=layer)
    attrs = [c for c in frame.columns if c != frame.geometry.name]
    for col in [id_column, name_column, *columns]:
        if col is not None and col not in attrs:
            raise ConfigError(f"{path}: no column {col!r} (columns: {attrs})")
    if id_column is not None:
        ids = _id_text(frame[id_column])
        if ids is None:
            raise ConfigError(f"{path}: column {id_column!r} has missing or repeated values")
        id_source: str | None = id_column
    else:
        ids, id_source = None, None
        id_like = [c for c in attrs if c.lower().endswith("id")]
        for col in id_like + [c for c in attrs if c not in id_like]:
            ids = _id_text(frame[col])
            if ids is not None:
                id_source = col
                break
        if ids is None:
            ids = pd.Series(np.arange(len(frame)).astype(str))
    if name_column is None:
        name_column = next((c for c in attrs if c.lower() == "name"), None)
    table = pd.DataFrame({"unit_id": ids.to_numpy()})
    if name_column is not None:
        table["name"] = frame[name_column].to_numpy(dtype=object)
    for col in columns:
        if col not in table.columns:
            table[col] = frame[col].to_numpy()
    return _finish_units(
        table,
        frame.geometry.to_numpy(),
        unit_type="polygon",
        approximate=False,
        source=f"polygon layer {path.name}",
        extra={"read_report": report.to_dict(), "id_column": id_source},
    )


def make_units(
    spec: str,
    incidents: pd.DataFrame | None = None,
    *,
    study_area: str | Path | Any = "data",
    population: bool = True,
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
    population
        Attach resident population from the census tracts (:func:`geo_crime.rates.
        attach_population`) when the tracts file is available.

    Returns
    -------
    geopandas.GeoDataFrame
        Units following the unit contract; ``attrs["study_area"]`` says what they cover and
        ``attrs["footprint_note"]`` (when set) warns that most units lie where the data has no
        incident.
    """
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    divisions = None
    if isinstance(study_area, str) and study_area == "data":
        divisions = covered_divisions(incidents) if incidents is not None else None
    if kind == "h3":
        if divisions is not None:
            outline = restrict_to_divisions(division_units(), divisions).union_all()
            area_spec: Any = outline
        else:
            no_data = isinstance(study_area, str) and study_area == "data"
            area_spec = "city" if no_data else study_area
        units = h3_units(int(arg) if arg else 8, study_area=area_spec)
    elif kind in ("rd", "rds"):
        units = rd_units(incidents)
    elif kind in ("division", "divisions"):
        units = division_units()
    elif Path(spec).exists():
        units = polygon_units(spec)
    else:
        raise ConfigError(
            f"unknown unit {spec!r}: use h3:<5-10>, rd, division or the path of a polygon file"
        )
    if "area" in units and units["area"].isna().any():
        units = fill_divisions(units)
    if divisions is not None and kind != "h3":
        units = restrict_to_divisions(units, divisions)
    if divisions is not None:
        units.attrs["study_area"] = _divisions_phrase(divisions)
    else:
        units.attrs["study_area"] = (
            "a given polygon"
            if isinstance(study_area, shapely.Geometry)
            else str(study_area if study_area != "data" else "city")
        )
    if population:
        from geo_crime.rates import TRACTS_FILE, attach_population

        if (data_dir(must_exist=False) / TRACTS_FILE).is_file():
            units = attach_population(units)
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
        empty, each spatially valid incident's division is found from its coordinates.
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
    if areas.notna().sum() == 0 and len(incidents):
        ids, _ = assign_units(incidents, division_units())
        areas = pd.to_numeric(ids, errors="coerce")
    counts = areas.dropna().astype(int).value_counts()
    if counts.empty:
        return list(range(1, 22))
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
    if divisions == list(range(1, 22)):
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
