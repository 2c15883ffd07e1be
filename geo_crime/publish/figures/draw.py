"""The drawing helpers the static figures share (:mod:`geo_crime.publish.figures`).

A private ``Figure`` on matplotlib's Agg canvas (:func:`new_figure`; pyplot is never used), maps
in longitude/latitude with true distances (:func:`lonlat_frame`, :func:`map_axes`), a map of
category codes with its legend beside it (:func:`categorical_map`, as the Gi*, LISA and
emerging hot spot figures draw), and the title and names of the divisions a figure of time
covers (:func:`division_scope`, :func:`division_names`, :func:`as_tally`). Saving stays with
the figures (:func:`geo_crime.core.io_utils.save_figure`, atomic).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from geo_crime.core.errors import DataError
from geo_crime.publish.style import NO_DATA_COLOUR, SUPPRESSED_COLOUR
from geo_crime.record.tallies import StudyTally

__all__ = [
    "DPI",
    "HATCH_INK",
    "LEGEND_BESIDE",
    "as_tally",
    "categorical_map",
    "division_names",
    "division_scope",
    "lonlat_frame",
    "map_axes",
    "new_figure",
]

#: Resolution of the figures (dots per inch) unless a call says otherwise.
DPI = 150


def new_figure(size: tuple[float, float] = (8.0, 7.0)) -> tuple[Figure, Any]:
    """A private ``Figure`` on the Agg canvas (no pyplot state) and its one axes."""
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


#: Legend placement of the map figures: outside the axes, to the right.
LEGEND_BESIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8}


def lonlat_frame(table: pd.DataFrame, what: str) -> gpd.GeoDataFrame:
    """``table`` in longitude/latitude (EPSG:4326); one clear error when it has no geometry."""
    if not isinstance(table, gpd.GeoDataFrame):
        raise DataError(f"the {what} must be a GeoDataFrame with geometry")
    if table.crs is not None and not table.crs.equals("EPSG:4326"):
        table = table.to_crs("EPSG:4326")
    return table


def map_axes(ax: Any, title: str, outlines: gpd.GeoDataFrame | None, bounds: Any) -> None:
    """Title, no frame, true distances at LA's latitude; ``outlines`` on top, the view on
    ``bounds``."""
    if outlines is not None and len(outlines):
        outlines = lonlat_frame(outlines, "outlines")
        outlines.boundary.plot(ax=ax, color="#333333", linewidth=0.6)
        minx, miny, maxx, maxy = bounds
        pad_x, pad_y = (maxx - minx) * 0.03, (maxy - miny) * 0.03
        ax.set_xlim(minx - pad_x, maxx + pad_x)
        ax.set_ylim(miny - pad_y, maxy + pad_y)
    ax.set_title(title)
    ax.set_axis_off()
    # longitude/latitude: keep distances true at LA's latitude
    mid_lat = (bounds[1] + bounds[3]) / 2.0
    ax.set_aspect(1.0 / np.cos(np.radians(mid_lat)))


#: Ink of the hatching that tells categories of one colour apart.
HATCH_INK = "#ffffff"


def categorical_map(
    table: gpd.GeoDataFrame,
    codes: np.ndarray,
    colours: dict[int, str],
    labels: dict[int, str],
    order: Sequence[int],
    *,
    title: str,
    legend_title: str,
    outlines: gpd.GeoDataFrame | None,
    hatched: Sequence[int] = (),
) -> Figure:
    """A map of category codes, legend beside it; the codes in ``hatched`` are drawn hatched
    over their colour (so categories that share a colour stay apart). The caller saves it."""
    fig, ax = new_figure()
    hidden = (
        table["suppressed"].astype("boolean").fillna(True).to_numpy(dtype=bool)
        if "suppressed" in table.columns
        else np.zeros(len(table), dtype=bool)
    )
    codes = np.where(hidden, np.nan, pd.to_numeric(pd.Series(codes), errors="coerce"))
    fill = [colours.get(int(c), NO_DATA_COLOUR) if pd.notna(c) else NO_DATA_COLOUR for c in codes]
    table.plot(ax=ax, color=fill, edgecolor="#6f6f6f", linewidth=0.15)
    if hidden.any():
        table[hidden].plot(
            ax=ax, color=SUPPRESSED_COLOUR, edgecolor="#8c8c8c", linewidth=0.15, hatch="///"
        )
    striped = np.isin(codes, list(hatched)) if len(hatched) else np.zeros(len(codes), bool)
    if striped.any():
        table[striped].plot(
            ax=ax, facecolor="none", edgecolor=HATCH_INK, linewidth=0.0, hatch="////"
        )
    map_axes(ax, title, outlines, table.total_bounds)
    present = {int(c) for c in codes if pd.notna(c)}
    handles = [
        Patch(
            facecolor=colours[c],
            edgecolor=HATCH_INK if c in hatched else "#6f6f6f",
            hatch="////" if c in hatched else None,
            label=labels[c],
        )
        for c in order
        if c in present
    ]
    if hidden.any():
        handles.append(
            Patch(facecolor=SUPPRESSED_COLOUR, edgecolor="#8c8c8c", hatch="///", label="suppressed")
        )
    # legends sit beside the map, never over a part of the city
    ax.legend(**LEGEND_BESIDE, handles=handles, title=legend_title, frameon=True)
    return fig


def division_scope(areas: list[int], names: dict[int, str]) -> str:
    """Where a figure's incidents are, for its title: one division, the city, or N divisions."""
    if len(areas) == 1:
        return f"{names[areas[0]]} division"
    if len(areas) == 21:
        return "city-wide (all 21 LAPD divisions)"
    return f"{len(areas)} LAPD divisions"


def division_names(tally: StudyTally, areas: list[int], divisions: pd.Series | None) -> dict:
    """Name per area number: from ``divisions`` when given, else the tally's (``Division N``
    for none)."""
    given: dict[int, str] = {}
    if divisions is not None:
        given = {int(a): str(n) for a, n in divisions.items() if pd.notna(a) and pd.notna(n)}
    else:
        given = tally.division_names()
    return {a: given.get(a, f"Division {a}") for a in areas}


def as_tally(incidents: pd.DataFrame | StudyTally) -> StudyTally:
    """The incidents' tally (:class:`geo_crime.record.tallies.StudyTally`; a tally as it is)."""
    return incidents if isinstance(incidents, StudyTally) else StudyTally.of_rows(incidents)
