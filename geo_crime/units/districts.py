"""LAPD reporting districts as units: the official layer when cached, else derived from incidents.

LAPD's ~1,135 reporting districts (``Rpt Dist No``) have official polygons on the City of Los
Angeles GIS portal, which :func:`geo_crime.units.fetch_boundary` downloads once into the cache.
Without that file, :func:`derive_rd_layer` draws an *approximate* layer from the incident points
themselves: Voronoi cells of the points (in EPSG:3310), dissolved by district and clipped to the
district's division, with an :class:`RDDerivationReport` accounting for every row.
:func:`rd_units` picks between the two; :func:`load_rd_attributes` reads the district attribute
table (names, bureaus, divisions) that both layers are matched with.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from geo_crime.core.config import EQUAL_AREA_CRS, STORAGE_CRS
from geo_crime.core.errors import ConfigError, DataError, InputError
from geo_crime.core.schema import ROW_COUNT
from geo_crime.net.http import sha256_file
from geo_crime.units.assign import _locate, _valid_points
from geo_crime.units.boundaries import _cache_folder, _verified_cached, fetch_boundary
from geo_crime.units.contract import _finish_units
from geo_crime.units.polygons import (
    _default_file,
    _polygonal_part,
    division_units,
    read_polygon_layer,
)

#: The reporting-district attribute table (no geometry), relative to the data folder.
RD_ATTRIBUTES_FILE = (
    "boundaries/lapd_reporting_districts_attributes_NO_GEOMETRY__LAPD_Reporting_District.csv"
)

#: Name of the official reporting-district layer in the manifest.
RD_LAYER = "lapd_reporting_districts"

#: ``attrs["source"]`` of the derived reporting-district layer.
DERIVED_RD_SOURCE = "derived from incident points (Voronoi), approximate"

#: Precision grid (metres) of the derived reporting-district overlay operations.
_GRID_M = 0.001

#: Precision grid (degrees, ~0.1 mm) of the final clip of derived districts by their division.
_GRID_DEGREES = 1e-9

#: Tolerance (metres) of the coverage simplification of derived reporting districts.
_SIMPLIFY_M = 5.0

_TO_ALBERS = Transformer.from_crs(STORAGE_CRS, EQUAL_AREA_CRS, always_xy=True)
_FROM_ALBERS = Transformer.from_crs(EQUAL_AREA_CRS, STORAGE_CRS, always_xy=True)


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
    lon: np.ndarray,
    lat: np.ndarray,
    rd: np.ndarray,
    area: np.ndarray,
    use: np.ndarray,
    weights: np.ndarray,
) -> pd.DataFrame:
    """One row per distinct coordinate: its majority district (ties: the lowest code).

    Columns ``lon``, ``lat``, ``rd``, ``area``, ``n`` (incidents of the winning district there:
    the rows' ``weights`` summed) and ``n_districts`` (districts recorded at the coordinate).
    """
    rows = pd.DataFrame(
        {"lon": lon[use], "lat": lat[use], "rd": rd[use], "area": area[use], "n": weights[use]}
    )
    pairs = rows.groupby(["lon", "lat", "rd", "area"], sort=False)["n"].sum().reset_index()
    pairs = pairs.sort_values(["lon", "lat", "n", "rd"], ascending=[True, True, False, True])
    pairs["n_districts"] = pairs.groupby(["lon", "lat"], sort=False)["rd"].transform("size")
    return pairs.drop_duplicates(["lon", "lat"]).reset_index(drop=True)


@dataclass
class _DistrictPoints:
    """The incidents' points as :func:`derive_rd_layer` votes with them (one entry per row)."""

    #: Incidents each row stands for (``ROW_COUNT`` of a table of points, else 1).
    weights: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    #: The 4-digit district code (``"0000"`` where missing).
    rd: np.ndarray
    #: The district's division (``rpt_dist // 100``).
    rd_div: np.ndarray
    #: A valid point with a well-formed district of a known division.
    cand: np.ndarray
    #: A ``cand`` row located in its district's division (or snapped into it later).
    use: np.ndarray


def _district_points(
    incidents: pd.DataFrame, divisions: gpd.GeoDataFrame
) -> tuple[_DistrictPoints, RDDerivationReport]:
    """Which rows can draw their district (in its division), with the report's row counts."""
    # a table of distinct points with their incidents (ROW_COUNT, as a cluster sends it) is
    # judged as the rows it counts
    weights = (
        incidents[ROW_COUNT].to_numpy(dtype=np.int64)
        if ROW_COUNT in incidents
        else np.ones(len(incidents), dtype=np.int64)
    )
    report = RDDerivationReport(total=int(weights.sum()))
    lat, lon, valid = _valid_points(incidents)
    report.not_spatially_valid = int(weights[~valid].sum())
    rd = incidents["rpt_dist"].astype("string").str.strip()
    rd_ok = rd.str.fullmatch(r"\d{4}").fillna(False).to_numpy(dtype=bool)
    report.rd_missing_or_malformed = int(weights[valid & ~rd_ok].sum())
    rd_text = rd.fillna("0000").to_numpy(dtype=object)
    rd_div = np.array([int(c[:2]) for c in rd_text], dtype=np.int64)
    div_areas = divisions["area"].to_numpy(dtype=np.int64)
    known = np.isin(rd_div, div_areas)
    report.rd_division_unknown = int(weights[valid & rd_ok & ~known].sum())
    cand = valid & rd_ok & known
    located = np.full(len(incidents), -1, dtype=np.int64)
    if cand.any():
        where, _ = _locate(lon[cand], lat[cand], divisions.geometry.to_numpy())
        located[cand] = np.where(where >= 0, div_areas[np.maximum(where, 0)], -1)
    use = cand & (located == rd_div)
    if not use.any():
        raise DataError("no incident has coordinates inside the division of its reporting district")
    points = _DistrictPoints(weights, lon, lat, rd_text, rd_div, cand, use)
    return points, report


def _snap_lost_districts(
    points: _DistrictPoints,
    winners: pd.DataFrame,
    lon_used: np.ndarray,
    lat_used: np.ndarray,
    div_geom: dict[int, Any],
    snap_m: float,
    report: RDDerivationReport,
) -> None:
    """Keep districts that win no coordinate in their own division (in place).

    Such a district (e.g. its only other geocode is in the ocean off Pacific Coast Highway)
    would vanish: its incidents outside the division but within ``snap_m`` of it are moved to
    the nearest spot 1 m inside (``lon_used``, ``lat_used`` and ``points.use`` change), counted
    in ``report``; the caller then repeats the vote.
    """
    rd_text, rd_div, cand, use = points.rd, points.rd_div, points.cand, points.use
    lost = sorted(set(rd_text[cand]) - set(winners["rd"]))
    lost_mask = cand & ~use & np.isin(rd_text, lost)
    for area_no in np.unique(rd_div[lost_mask]).tolist():
        rows_idx = np.flatnonzero(lost_mask & (rd_div == area_no))
        inner = shapely.buffer(_to_albers(div_geom[area_no]), -1.0)
        points_m = shapely.points(*_TO_ALBERS.transform(points.lon[rows_idx], points.lat[rows_idx]))
        dist = shapely.distance(points_m, inner)
        near = dist <= snap_m
        if not near.any():
            continue
        ends = shapely.get_point(shapely.shortest_line(points_m[near], inner), 1)
        new_lon, new_lat = _FROM_ALBERS.transform(shapely.get_x(ends), shapely.get_y(ends))
        lon_used[rows_idx[near]] = new_lon
        lat_used[rows_idx[near]] = new_lat
        use[rows_idx[near]] = True
        report.rows_snapped += int(points.weights[rows_idx[near]].sum())
        report.max_snap_m = max(report.max_snap_m, float(dist[near].max()))
        report.districts_snapped += sorted(set(rd_text[rows_idx[near]]))


def _voronoi_districts(
    winners: pd.DataFrame, div_geom: dict[int, Any]
) -> tuple[list[str], list[int], list[Any]]:
    """Per division, the Voronoi cells of its coordinates dissolved by district (EPSG:3310):
    each district's code, division and polygon (unclipped)."""
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
    return codes, areas, geoms


def _clip_to_divisions(geoms: list[Any], areas: list[int], div_geom: dict[int, Any]) -> np.ndarray:
    """The districts (EPSG:3310) clipped to their divisions, in lon/lat: one polygonal geometry
    or None (nothing left) per district."""
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
    return np.array([None if g is None else _polygonal_part(g) for g in clipped], dtype=object)


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
    points, report = _district_points(incidents, divisions)
    div_areas = divisions["area"].to_numpy(dtype=np.int64)
    div_geom = dict(zip(div_areas.tolist(), divisions.geometry.to_numpy(), strict=True))
    # LAPD publishes coordinates to 4 decimals (~10 m): vote on that grid, which also bounds the
    # Voronoi diagram's size for large (e.g. jittered or resampled) inputs
    lon_used, lat_used = np.round(points.lon, 4), np.round(points.lat, 4)
    winners = _majority_coordinates(
        lon_used, lat_used, points.rd, points.rd_div, points.use, points.weights
    )
    if snap_m > 0:
        _snap_lost_districts(points, winners, lon_used, lat_used, div_geom, snap_m, report)
    if report.rows_snapped:
        winners = _majority_coordinates(
            lon_used, lat_used, points.rd, points.rd_div, points.use, points.weights
        )
    if max_coordinates_per_district and len(winners):
        ranked = winners.sort_values(["rd", "n", "lon", "lat"], ascending=[True, False, True, True])
        capped = ranked.groupby("rd", sort=False).head(max_coordinates_per_district)
        report.coordinates_beyond_cap = int(len(winners) - len(capped))
        winners = capped.sort_index().reset_index(drop=True)
    weights, cand, use, rd_text = points.weights, points.cand, points.use, points.rd
    report.outside_own_division = int(weights[cand & ~use].sum())
    report.used = int(weights[use].sum())
    per_rd = pd.Series(weights[use]).groupby(rd_text[use]).sum()
    report.coordinates_used = len(winners)
    report.coordinates_contested = int((winners["n_districts"] > 1).sum())
    report.rows_outvoted = int(report.used - winners["n"].sum())

    codes, areas, geoms = _voronoi_districts(winners, div_geom)
    clipped = _clip_to_divisions(geoms, areas, div_geom)
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
            return _official_rd_units(path, sha256=sha256_file(path))
        with tempfile.TemporaryDirectory() as tmp:
            path = fetch_boundary(RD_LAYER, cache_dir=tmp)
            return _official_rd_units(path, sha256=sha256_file(path))
    if incidents is None:
        raise ConfigError(
            "the official reporting-district layer is not cached and no incidents were given to "
            "derive an approximate one"
        )
    units, _ = derive_rd_layer(incidents, divisions=divisions)
    return units
