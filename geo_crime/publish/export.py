"""Public GIS exports of unit-level results: GeoJSON, GeoPackage and GeoParquet.

Every table handed to :func:`export_layers` is one layer: a GeoDataFrame with one row per spatial
unit, keyed by ``unit_id`` (the units, hot-spot tables, emerging hot spot categories, forecasts,
outlines). Each layer is written as

* **GeoJSON** (``<layer>.geojson``) following RFC 7946: WGS84 longitude/latitude (the data is
  reprojected to EPSG:4326 if needed), no ``crs`` member, coordinates rounded to 6 decimals
  (about 0.1 m), polygon exterior rings counter-clockwise and holes clockwise (the right-hand
  rule), typed properties (integers stay integers, booleans booleans, missing values and NaN
  become ``null``, datetimes ISO 8601 strings) and the feature ``id`` equal to ``unit_id``;
* one **GeoPackage** (``geo_crime.gpkg`` by default) holding every layer, written with pyogrio
  (GDAL), one GeoPackage layer per table;
* **GeoParquet** (``<layer>.parquet``), one file per layer (geopandas, GeoParquet 1.x metadata).

Every file is written atomically: into a temporary file in the destination folder first (the
GeoPackage is built completely in a temporary file), then renamed onto its final name, so a
failure never leaves a half-written export behind.

Privacy
-------
Exports are public. Two rules are enforced for every layer (:func:`public_table`):

1. **No victim-level or incident-level data.** A table carrying any victim column
   (:data:`geo_crime.core.schema.VICTIM_COLUMNS`, or any other ``vict*`` column in canonical or raw
   LAPD spelling) or incident-level columns (``incident_id``, ``location``, ``lat``...), or
   more than one row per ``unit_id``, is refused with :class:`PrivacyError`. Only unit-level
   aggregates can be exported.
2. **Small-count suppression (k-anonymity).** Units with fewer than ``k_anonymity`` incidents
   (default 3) have their counts, severity, rates and other per-unit measures set to null, and a
   boolean ``suppressed`` column says which. The incident count of each unit comes from the
   table's ``count`` column or from ``counts`` (a mapping ``unit_id -> incidents``). A table
   with measure columns but no way to know its counts is refused. A unit with an unknown count
   is suppressed; a ``suppressed`` column already in the table (secondary suppression, see
   :mod:`geo_crime.publish.privacy`) is honoured. Which statistics a public layer may carry at all
   (confidence bins and classes, not z-scores or sums that can be solved for suppressed values)
   is decided by :func:`geo_crime.publish.privacy.public_tables` before export.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pandas.api import types as ptypes

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.errors import DataError
from geo_crime.core.io_utils import atomic_path
from geo_crime.publish.privacy import (
    check_public_table,
    suppress_small_units,
)

__all__ = [
    "COORDINATE_PRECISION",
    "DEFAULT_GPKG_NAME",
    "EXPORT_FORMATS",
    "check_export_formats",
    "export_layers",
    "layer_name",
    "public_table",
    "rfc7946_feature_collection",
    "write_geojson",
]

EXPORT_FORMATS = ("geojson", "gpkg", "parquet")
"""Formats :func:`export_layers` can write."""

DEFAULT_GPKG_NAME = "geo_crime.gpkg"
"""File name of the GeoPackage holding every layer."""

COORDINATE_PRECISION = 6
"""Decimals kept in GeoJSON coordinates (RFC 7946 section 11.2: about 10 cm)."""

_LAYER_NAME = re.compile(r"[^a-z0-9_]+")


def public_table(
    table: gpd.GeoDataFrame,
    *,
    k_anonymity: int = DEFAULT_K,
    counts: Mapping[str, float] | pd.Series | None = None,
    count_column: str = "count",
    extra_columns: Sequence[str] = (),
    name: str = "table",
) -> gpd.GeoDataFrame:
    """A unit-level layer made safe to publish, in EPSG:4326 with plain column types.

    Runs :func:`check_public_table` and :func:`suppress_small_units`, reprojects to WGS84
    longitude/latitude, turns categorical columns into strings and drops the index.

    Parameters
    ----------
    table : geopandas.GeoDataFrame
        One row per unit, with ``unit_id`` and a CRS.
    k_anonymity, counts, count_column, extra_columns
        See :func:`suppress_small_units`.
    name : str
        Layer name, for messages.

    Returns
    -------
    geopandas.GeoDataFrame

    Raises
    ------
    PrivacyError
        See :func:`check_public_table` and :func:`suppress_small_units`.
    DataError
        Not a GeoDataFrame, or no CRS.
    """
    if not isinstance(table, gpd.GeoDataFrame):
        raise DataError(f"layer {name!r} must be a GeoDataFrame, got {type(table).__name__}")
    check_public_table(table, name=name)
    if table.crs is None:
        raise DataError(f"layer {name!r} has no CRS; set one (units are EPSG:4326)")
    out = suppress_small_units(
        table,
        k_anonymity=k_anonymity,
        counts=counts,
        count_column=count_column,
        extra_columns=extra_columns,
        name=name,
    )
    out = gpd.GeoDataFrame(out, geometry=table.geometry.name, crs=table.crs).to_crs("EPSG:4326")
    out = out.reset_index(drop=True)
    out["unit_id"] = out["unit_id"].astype(str)
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


# --------------------------------------------------------------------------------------------
# GeoJSON (RFC 7946)
# --------------------------------------------------------------------------------------------


def _rounded_oriented(geoms: Any, precision: int) -> np.ndarray:
    arr = np.asarray(geoms, dtype=object)
    arr = shapely.transform(arr, lambda c: np.round(c, precision))
    return shapely.orient_polygons(arr, exterior_cw=False)


def _json_values(series: pd.Series) -> list:
    """A column as JSON-ready Python values (ints stay ints, missing -> None)."""
    dtype = series.dtype
    missing = series.isna().to_numpy()
    if ptypes.is_bool_dtype(dtype):
        values = [bool(v) for v in series.fillna(False).to_numpy()]
    elif ptypes.is_integer_dtype(dtype):
        values = [int(v) for v in series.fillna(0).to_numpy()]
    elif ptypes.is_float_dtype(dtype):
        arr = series.to_numpy(dtype=float, na_value=np.nan)
        missing = missing | ~np.isfinite(arr)
        values = [float(v) for v in arr]
    elif ptypes.is_datetime64_any_dtype(dtype):
        values = [None if m else v.isoformat() for v, m in zip(series, missing, strict=True)]
    else:
        values = [_json_scalar(v) for v in series.to_numpy(dtype=object)]
        return values
    return [None if m else v for v, m in zip(values, missing, strict=True)]


def _json_scalar(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def rfc7946_feature_collection(
    table: gpd.GeoDataFrame,
    *,
    precision: int = COORDINATE_PRECISION,
    id_column: str = "unit_id",
) -> dict:
    """An RFC 7946 FeatureCollection of a GeoDataFrame.

    Parameters
    ----------
    table : geopandas.GeoDataFrame
        Reprojected to EPSG:4326 first when it has another CRS.
    precision : int, default 6
        Decimals kept in coordinates.
    id_column : str, default "unit_id"
        Column whose value becomes each feature's ``id`` (omitted when the column is absent).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}`` without a ``crs`` member;
        properties hold every non-geometry column with JSON types.
    """
    if table.crs is not None and not table.crs.equals("EPSG:4326"):
        table = table.to_crs("EPSG:4326")
    geoms = _rounded_oriented(table.geometry.to_numpy(), precision)
    columns = [c for c in table.columns if c != table.geometry.name]
    values = {str(c): _json_values(table[c]) for c in columns}
    ids = values.get(id_column)
    features = []
    for i, geom in enumerate(geoms):
        feature: dict[str, Any] = {"type": "Feature"}
        if ids is not None and ids[i] is not None:
            feature["id"] = ids[i]
        empty = geom is None or shapely.is_empty(geom)
        feature["geometry"] = None if empty else shapely.geometry.mapping(geom)
        feature["properties"] = {c: v[i] for c, v in values.items()}
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def write_geojson(
    table: gpd.GeoDataFrame,
    path: str | os.PathLike,
    *,
    precision: int = COORDINATE_PRECISION,
    id_column: str = "unit_id",
) -> Path:
    """Write a GeoDataFrame as RFC 7946 GeoJSON, atomically.

    Parameters
    ----------
    table : geopandas.GeoDataFrame
        The layer (no privacy checks here; see :func:`export_layers`).
    path : path-like
        Destination ``.geojson`` file.
    precision, id_column
        See :func:`rfc7946_feature_collection`.

    Returns
    -------
    pathlib.Path
    """
    collection = rfc7946_feature_collection(table, precision=precision, id_column=id_column)
    text = json.dumps(collection, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


# --------------------------------------------------------------------------------------------
# all layers
# --------------------------------------------------------------------------------------------


def layer_name(name: str) -> str:
    """A file- and GeoPackage-safe layer name: lower case ``[a-z0-9_]``.

    Raises
    ------
    DataError
        Nothing usable is left of ``name``.
    """
    clean = _LAYER_NAME.sub("_", str(name).strip().lower()).strip("_")
    if not clean:
        raise DataError(f"invalid layer name {name!r}")
    return clean


def check_export_formats(formats: Sequence[str]) -> None:
    """Refuse unknown export formats (before any work: ``geo-crime export`` checks first).

    Raises
    ------
    DataError
        A format is not one of :data:`EXPORT_FORMATS`.
    """
    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown:
        raise DataError(f"unknown export format(s) {unknown}; choose from {list(EXPORT_FORMATS)}")


def export_layers(
    layers: Mapping[str, gpd.GeoDataFrame],
    folder: str | os.PathLike,
    *,
    formats: Sequence[str] = EXPORT_FORMATS,
    k_anonymity: int = DEFAULT_K,
    counts: Mapping[str, float] | pd.Series | None = None,
    count_column: str = "count",
    extra_suppressed: Sequence[str] = (),
    gpkg_name: str = DEFAULT_GPKG_NAME,
    precision: int = COORDINATE_PRECISION,
) -> list[Path]:
    """Export unit-level layers as GeoJSON, one GeoPackage and GeoParquet, privacy-safe.

    Parameters
    ----------
    layers : mapping of str to geopandas.GeoDataFrame
        Layer name -> unit-level table (one row per ``unit_id``). Names are normalised with
        :func:`layer_name` (e.g. ``"Gi* hot spots"`` -> ``gi_hot_spots``).
    folder : path-like
        Output folder (created if needed).
    formats : sequence of {"geojson", "gpkg", "parquet"}
        Which formats to write; all three by default.
    k_anonymity : int, default 3
        Units with fewer incidents have their measures nulled (``suppressed`` column).
    counts : mapping or pandas.Series, optional
        Incidents per ``unit_id`` for layers without a ``count`` column (e.g. Gi* tables).
    count_column : str, default "count"
        Name of the per-unit incident count column.
    extra_suppressed : sequence of str
        Further measure columns to suppress.
    gpkg_name : str, default "geo_crime.gpkg"
        File name of the GeoPackage.
    precision : int, default 6
        GeoJSON coordinate decimals.

    Returns
    -------
    list of pathlib.Path
        Files written: the GeoJSON files, the GeoPackage, then the GeoParquet files.

    Raises
    ------
    PrivacyError
        A layer has victim- or incident-level data, or measures without counts.
    DataError
        Unknown format, empty or clashing layer names, a layer without CRS.
    """
    check_export_formats(formats)
    if not layers:
        raise DataError("no layers to export")
    prepared: dict[str, gpd.GeoDataFrame] = {}
    for raw_name, table in layers.items():
        name = layer_name(raw_name)
        if name in prepared:
            raise DataError(f"two layers are both named {name!r} once normalised")
        prepared[name] = public_table(
            table,
            k_anonymity=k_anonymity,
            counts=counts,
            count_column=count_column,
            extra_columns=extra_suppressed,
            name=str(raw_name),
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "geojson" in formats:
        for name, table in prepared.items():
            written.append(write_geojson(table, folder / f"{name}.geojson", precision=precision))
    if "gpkg" in formats:
        path = folder / gpkg_name
        with atomic_path(path, suffix=".gpkg") as tmp:
            for name, table in prepared.items():
                pyogrio.write_dataframe(table, tmp, layer=name, driver="GPKG")
        written.append(path)
    if "parquet" in formats:
        for name, table in prepared.items():
            path = folder / f"{name}.parquet"
            with atomic_path(path) as tmp:
                table.to_parquet(tmp, index=False)
            written.append(path)
    return written
