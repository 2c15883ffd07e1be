"""Place names for units: the neighbourhood(s) a unit lies in, and its LAPD division.

A reader cannot act on ``8829a19b41fffff`` or reporting district ``0801``: every unit also gets a
readable label. A unit's **neighbourhood** is the LA Times "Mapping L.A." neighbourhood holding
the largest part of its area (areal majority, measured in EPSG:3310); when other neighbourhoods
also hold at least :data:`SPLIT_SHARE` of it, the label says so (``"Westwood and 2 others"``). A
unit outside every neighbourhood (outside the city) has none. Its **division** is its ``area``
column, named as in :func:`geo_crime.units.division_names`. The label joins them with the id:

    Downtown (Central) - 8829a1d75bfffff

(:func:`place_labels`); a division is simply its name. The neighbourhood layer is read from the
shared data folder (:data:`NEIGHBOURHOODS_FILE` under :func:`geo_crime.core.config.data_dir`).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_crime.core.config import EQUAL_AREA_CRS, data_dir
from geo_crime.units.polygons import read_polygon_layer

__all__ = ["NEIGHBOURHOODS_FILE", "SPLIT_SHARE", "named_units", "neighbourhoods", "place_labels"]

#: The LA Times neighbourhood layer, relative to the data folder.
NEIGHBOURHOODS_FILE = "boundaries/la_times_neighborhoods__LA_Times_Neighborhood_Boundaries.geojson"

#: Share of a unit's area another neighbourhood must hold to be counted in "and N others".
SPLIT_SHARE = 0.10


def neighbourhoods(
    units: gpd.GeoDataFrame, *, path: str | Path | None = None, split_share: float = SPLIT_SHARE
) -> pd.DataFrame:
    """Each unit's majority neighbourhood and how many others hold a real part of it.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with ``unit_id`` and polygon geometry.
    path : path-like, optional
        A neighbourhood layer with a ``name`` column (default: :data:`NEIGHBOURHOODS_FILE`).
    split_share : float, default SPLIT_SHARE
        Smallest share of a unit's area that counts another neighbourhood.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``unit_id`` (as text): ``neighbourhood`` (empty outside every one),
        ``neighbourhood_share`` (its share of the unit's area) and ``other_neighbourhoods``.
    """
    layer, _ = read_polygon_layer(path or data_dir() / NEIGHBOURHOODS_FILE)
    hoods = layer[["name", "geometry"]].to_crs(EQUAL_AREA_CRS).reset_index(drop=True)
    cells = units[["unit_id", "geometry"]].to_crs(EQUAL_AREA_CRS).reset_index(drop=True)
    ids = cells["unit_id"].astype(str).to_numpy()
    out = pd.DataFrame(
        {"neighbourhood": "", "neighbourhood_share": 0.0, "other_neighbourhoods": 0},
        index=pd.Index(ids, name="unit_id"),
    )
    if cells.empty or hoods.empty:
        return out
    unit_idx, hood_idx = hoods.sindex.query(cells.geometry.to_numpy(), predicate="intersects")
    if not len(unit_idx):
        return out
    cell_geoms = cells.geometry.to_numpy()
    hood_geoms = hoods.geometry.to_numpy()
    shared = shapely.area(shapely.intersection(cell_geoms[unit_idx], hood_geoms[hood_idx]))
    whole = shapely.area(cell_geoms[unit_idx])
    pairs = pd.DataFrame(
        {
            "unit": unit_idx,
            "name": hoods["name"].astype(str).to_numpy()[hood_idx],
            "share": np.where(whole > 0, shared / np.where(whole > 0, whole, 1.0), 0.0),
        }
    )
    pairs = pairs[pairs["share"] > 0].sort_values(["unit", "share"], ascending=[True, False])
    top = pairs.groupby("unit").head(1).set_index("unit")
    counted = pairs[pairs["share"] >= split_share].groupby("unit").size()
    rows = top.index.to_numpy()
    out.iloc[rows, 0] = top["name"].to_numpy()
    out.iloc[rows, 1] = top["share"].to_numpy()
    others = counted.reindex(rows, fill_value=1).to_numpy() - 1
    out.iloc[rows, 2] = np.maximum(others, 0)
    return out


def place_labels(
    units: gpd.GeoDataFrame,
    division_names: pd.Series,
    *,
    path: str | Path | None = None,
) -> pd.DataFrame:
    """Readable place labels of units (see the module docstring).

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with ``unit_id``, ``unit_type`` and polygon geometry.
    division_names : pandas.Series
        Division name per ``unit_id`` (:func:`geo_crime.units.division_names`).
    path : path-like, optional
        The neighbourhood layer (default: :data:`NEIGHBOURHOODS_FILE`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``unit_id``: ``neighbourhood``, ``other_neighbourhoods``, ``place``
        (``"Downtown (Central)"``; a division's own name for division units) and ``label``
        (``"Downtown (Central) - 8829a1d75bfffff"``; the place alone for divisions).
    """
    ids = units["unit_id"].astype(str).to_numpy()
    division = division_names.reindex(ids).fillna("").astype(str).to_numpy()
    kind = (
        units["unit_type"].astype(str).to_numpy() if "unit_type" in units else np.full(len(ids), "")
    )
    is_division = np.char.startswith(kind.astype(str), "division")
    if is_division.all():
        table = pd.DataFrame(
            {"neighbourhood": "", "other_neighbourhoods": 0}, index=pd.Index(ids, name="unit_id")
        )
    else:
        table = neighbourhoods(units, path=path)[["neighbourhood", "other_neighbourhoods"]]
    places, labels = [], []
    for uid, hood, others, name, whole in zip(
        ids,
        table["neighbourhood"].to_numpy(),
        table["other_neighbourhoods"].to_numpy(),
        division,
        is_division,
        strict=True,
    ):
        if whole:
            places.append(name or uid)
            labels.append(name or uid)
            continue
        where = hood + (
            f" and {others} other{'s' if others > 1 else ''}" if hood and others else ""
        )
        place = f"{where} ({name})" if where and name else where or name
        places.append(place)
        labels.append(f"{place} - {uid}" if place else uid)
    table = table.copy()
    table["place"] = places
    table["label"] = labels
    return table


def named_units(
    units: gpd.GeoDataFrame, division_names: pd.Series
) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """A copy of the units whose ``name`` is their place, and their place labels.

    What tooltips, GIS attributes, CSVs and report tables name units by.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units (their ``attrs`` are kept).
    division_names : pandas.Series
        Division name per ``unit_id``.

    Returns
    -------
    (geopandas.GeoDataFrame, pandas.Series)
        The named copy (``name`` = ``"Downtown (Central)"``; a division's own name) and the
        label per unit id (``"Downtown (Central) - 88..."``).
    """
    table = place_labels(units, division_names)
    named = units.copy()
    named.attrs = dict(units.attrs)
    named["name"] = table["place"].reindex(units["unit_id"].astype(str)).to_numpy(dtype=object)
    return named, table["label"]
