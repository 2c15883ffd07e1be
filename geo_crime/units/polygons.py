"""Polygon layers as units: reading any vector file, any polygon layer, and the LAPD divisions.

:func:`read_polygon_layer` is the one reader of polygon files (GeoJSON, GeoPackage, Shapefile or
zipped Shapefile, in any CRS): it reprojects to EPSG:4326, repairs invalid geometries, drops
non-polygon features and accounts for every feature in a :class:`LayerReport`. On top of it,
:func:`polygon_units` turns any layer into units (census tracts, neighbourhoods, council
districts, a user's own polygons) and :func:`division_units` gives the 21 LAPD divisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo_crime.core.config import STORAGE_CRS, data_dir
from geo_crime.core.errors import ConfigError, InputError
from geo_crime.units.contract import _POLYGONAL, _finish_units

#: The LAPD divisions layer, relative to :func:`geo_crime.core.config.data_dir`.
DIVISIONS_FILE = "boundaries/lapd_divisions__LAPD_Division_5922489107755548254.geojson"


def _default_file(relative: str) -> Path:
    """A file of the shared data folder (:func:`geo_crime.core.config.data_dir`)."""
    return data_dir() / relative


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
