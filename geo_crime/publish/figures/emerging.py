"""The emerging hot spot categories (:mod:`geo_crime.stats.emerging`) as a static map (PNG).

Same conventions as :mod:`geo_crime.publish.figures.core` (legend beside the map, atomic writes);
suppressed units (:mod:`geo_crime.publish.privacy`) are grey and hatched, with no category. The
pipeline draws it for each unit set with emerging hot spots;
:mod:`geo_crime.publish.figures.trends` names it too.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.core.errors import DataError
from geo_crime.publish.figures import core as figures_core  # its save_figure saves every figure
from geo_crime.publish.figures.draw import DPI, categorical_map, lonlat_frame
from geo_crime.publish.privacy import hidden_mask
from geo_crime.stats.emerging import CATEGORIES, CATEGORY_COLOURS, CATEGORY_STYLES

__all__ = ["emerging_hotspot_figure"]


def emerging_hotspot_figure(
    units: gpd.GeoDataFrame,
    emerging_table: pd.DataFrame | Any,
    path: str | os.PathLike,
    *,
    suppressed: pd.Series | None = None,
    outlines: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    dpi: int = DPI,
) -> Path:
    """Static map of the emerging hot spot categories, legend beside the map.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        The units (``unit_id``, geometry); units missing from the table are drawn as no data.
    emerging_table : pandas.DataFrame or EmergingHotSpots
        :func:`geo_crime.stats.emerging.emerging_hotspots` (its ``.table``, or the result itself,
        whose periods then go into the default title) or its public copy
        (:func:`geo_crime.publish.privacy.public_tables`): ``unit_id`` and ``code`` (1..17) or
        ``category`` (label), optionally ``suppressed``.
    path : path-like
        Destination PNG.
    suppressed : pandas.Series, optional
        Boolean per ``unit_id`` (:func:`geo_crime.publish.privacy.suppressed_units`); a unit missing
        from it is suppressed. Suppressed units (from it or the table's ``suppressed`` column)
        are grey and hatched, with no category, and their categories stay out of the legend.
    outlines : geopandas.GeoDataFrame, optional
        Boundaries drawn on top (e.g. divisions); the view stays on the units.
    title : str, optional
        Figure title.
    dpi : int, default 150
        Resolution.

    Returns
    -------
    pathlib.Path
    """
    periods = getattr(emerging_table, "periods", None)
    table = getattr(emerging_table, "table", emerging_table)
    units = lonlat_frame(units, "units")
    if "unit_id" not in units or "unit_id" not in table:
        raise DataError("the units and the emerging hot spot table need a 'unit_id' column")
    if "code" in table:
        codes = pd.to_numeric(table["code"], errors="coerce")
    elif "category" in table:
        codes = table["category"].map({label: c for c, label in CATEGORIES.items()})
    else:
        raise DataError("the emerging hot spot table has no 'code' or 'category' column")
    keyed = pd.DataFrame({"code": codes.to_numpy(dtype=float)}, index=table["unit_id"].astype(str))
    if "suppressed" in table:
        flags = table["suppressed"].astype("boolean").fillna(True).to_numpy(dtype=bool)
        keyed["suppressed"] = flags
    ids = units["unit_id"].astype(str)
    layer = units[["unit_id", "geometry"]].copy()
    layer["code"] = keyed["code"].reindex(ids).to_numpy()
    hidden = np.zeros(len(layer), dtype=bool)
    if "suppressed" in keyed:
        hidden |= keyed["suppressed"].reindex(ids).astype("boolean").fillna(False).to_numpy(bool)
    if suppressed is not None:
        series = pd.Series(suppressed.to_numpy(), index=suppressed.index.astype(str))
        hidden |= hidden_mask(series, ids)
    layer["suppressed"] = hidden
    layer.loc[hidden, "code"] = np.nan  # nothing of a suppressed unit reaches the drawing
    if title is None:
        title = f"Emerging hot spot categories, {len(layer):,} units"
        if periods is not None and len(periods):
            first, last = (pd.Timestamp(periods[i]).date() for i in (0, -1))
            title += f", {len(periods)} periods (the first starting {first}, the last {last})"
    fig = categorical_map(
        layer,
        layer["code"].to_numpy(),
        CATEGORY_COLOURS,
        CATEGORIES,
        sorted(CATEGORIES),
        title=textwrap.fill(title, 70),
        legend_title="Emerging hot spot category"
        + (f" ({len(periods)} periods)" if periods is not None and len(periods) else ""),
        outlines=outlines,
        hatched=[code for code, (_, hatch) in CATEGORY_STYLES.items() if hatch],
    )
    return figures_core.save_figure(fig, path, dpi)
