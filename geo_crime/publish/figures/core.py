"""Static figures (PNG) of a run: maps, the Moran scatterplot and forecast accuracy.

Five figures, each drawn with matplotlib's Agg renderer on a private ``Figure`` (pyplot and its
global state are never used, so this is safe in scripts, servers and threads) and written
atomically (temporary file, then rename):

* :func:`severity_choropleth`: classed map of a severity measure (Fisher-Jenks or quantiles,
  the colours and classes of the web maps, from :mod:`geo_crime.publish.style`); units with fewer
  than ``k_anonymity`` incidents are drawn grey and hatched, as "suppressed".
* :func:`hotspot_map`: Getis-Ord Gi* confidence bins in the ArcGIS colours.
* :func:`moran_scatterplot`: standardised value against its spatial lag, with the regression
  line through the origin whose slope is Moran's I (``sum(z * lag) / sum(z ** 2)`` for
  row-standardised weights, which is what :mod:`geo_crime.stats.hotspots` uses), points coloured by
  LISA cluster when known.
* :func:`lisa_cluster_map`: LISA clusters in the GeoDa colours.
* :func:`forecast_vs_actual`: a time series of both when they are indexed by dates, otherwise a
  scatter of predicted against actual with the 1:1 line; MAE and RMSE in the title.

:func:`write_figures` writes all of them that its inputs allow into one folder. The figures of
time are in :mod:`geo_crime.publish.figures.trends` (trends with coverage breaks) and
:mod:`geo_crime.publish.figures.hours` (hour x weekday), the emerging hot spot map in
:mod:`geo_crime.publish.figures.emerging`; the drawing helpers all of them share are in
:mod:`geo_crime.publish.figures.draw`. Every figure is saved through this module's
``save_figure`` (:func:`geo_crime.core.io_utils.save_figure`).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.errors import DataError
from geo_crime.core.io_utils import save_figure
from geo_crime.publish.figures.draw import (
    DPI,
    LEGEND_BESIDE,
    categorical_map,
    lonlat_frame,
    map_axes,
    new_figure,
)
from geo_crime.publish.style import (
    GI_COLOURS,
    LISA_COLOURS,
    NO_DATA_COLOUR,
    SUPPRESSED_COLOUR,
    Scheme,
    classify_values,
    sequential_colours,
)
from geo_crime.stats.hotspots import GI_BIN_LABELS, LISA_LABELS

__all__ = [
    "FIGURE_NAMES",
    "forecast_vs_actual",
    "hotspot_map",
    "lisa_cluster_map",
    "moran_scatterplot",
    "moran_slope",
    "severity_choropleth",
    "write_figures",
]

FIGURE_NAMES = {
    "severity": "severity_choropleth.png",
    "gi": "gi_hotspots.png",
    "moran": "moran_scatterplot.png",
    "lisa": "lisa_clusters.png",
    "forecast": "forecast_vs_actual.png",
}
"""File name of each figure written by :func:`write_figures`."""

# --------------------------------------------------------------------------------------------
# the five figures
# --------------------------------------------------------------------------------------------


def severity_choropleth(
    units: gpd.GeoDataFrame,
    path: str | os.PathLike,
    *,
    column: str = "severity",
    scheme: Scheme = "quantiles",
    k: int = 5,
    k_anonymity: int = DEFAULT_K,
    count_column: str = "count",
    title: str | None = None,
    outlines: gpd.GeoDataFrame | None = None,
    dpi: int = DPI,
) -> Path:
    """Classed map of a severity measure.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with ``column`` and (for suppression) ``count_column``.
    path : path-like
        Destination PNG.
    column : str, default "severity"
        The measure (e.g. ``severity``, ``severity_rate``).
    scheme : {"quantiles", "fisherjenks"}
        Classification (see :func:`geo_crime.publish.style.classify_values`); quintiles by default,
        as on the map, so figure and map share classes.
    k : int, default 5
        Number of classes.
    k_anonymity : int, default 3
        Units with fewer incidents are drawn as suppressed (no class).
    count_column : str, default "count"
        Incidents per unit; without it (and without a ``suppressed`` column) no unit is
        suppressed. Units whose ``suppressed`` column is true (or missing) are suppressed too.
    title : str, optional
        Figure title.
    outlines : geopandas.GeoDataFrame, optional
        Boundaries drawn on top (e.g. divisions); the view stays on the units.
    dpi : int, default 150
        Resolution.

    Returns
    -------
    pathlib.Path
        The legend sits beside the map, outside its axes, so no unit is covered.
    """
    units = lonlat_frame(units, "units")
    if column not in units.columns:
        raise DataError(f"units have no {column!r} column")
    values = pd.to_numeric(units[column], errors="coerce").to_numpy(dtype=float)
    if count_column in units.columns:
        counts = pd.to_numeric(units[count_column], errors="coerce").to_numpy(dtype=float)
        suppressed = ~(counts >= k_anonymity)
    else:
        suppressed = np.zeros(len(units), dtype=bool)
    if "suppressed" in units.columns:  # secondary suppression decided upstream is kept
        suppressed |= units["suppressed"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    cls = classify_values(np.where(suppressed, np.nan, values), scheme=scheme, k=k)
    colours = sequential_colours(cls.k, "YlOrRd")
    fill = [colours[c] if c >= 0 else NO_DATA_COLOUR for c in cls.codes]
    fig, ax = new_figure()
    units.plot(ax=ax, color=fill, edgecolor="#6f6f6f", linewidth=0.15)
    handles = [
        Patch(facecolor=c, edgecolor="#6f6f6f", label=label)
        for c, label in zip(colours, cls.labels(), strict=True)
    ]
    if suppressed.any():
        units[suppressed].plot(
            ax=ax, color=SUPPRESSED_COLOUR, edgecolor="#8c8c8c", linewidth=0.15, hatch="///"
        )
        handles.append(
            Patch(
                facecolor=SUPPRESSED_COLOUR,
                edgecolor="#8c8c8c",
                hatch="///",
                label=f"suppressed (< {k_anonymity} incidents)",
            )
        )
    missing = (cls.codes < 0) & ~suppressed
    if missing.any():
        handles.append(Patch(facecolor=NO_DATA_COLOUR, edgecolor="#6f6f6f", label="no data"))
    map_axes(
        ax,
        textwrap.fill(title or f"{column.replace('_', ' ').capitalize()}", 60),
        outlines,
        units.total_bounds,
    )
    scheme_name = "Fisher-Jenks" if scheme == "fisherjenks" else "quantiles"
    legend_title = f"{title or column} ({scheme_name})"
    # the classes go into the PNG's text chunk too, so anyone can check them against the map
    description = f"{legend_title}: " + "; ".join(cls.labels())
    # beside the map, never over it; the figure title already names the measure
    shown_title = f"Classes ({scheme_name})" if title else legend_title
    ax.legend(**LEGEND_BESIDE, handles=handles, title=textwrap.fill(shown_title, 40))
    return save_figure(fig, path, dpi, description=description)


def hotspot_map(
    gi: gpd.GeoDataFrame,
    path: str | os.PathLike,
    *,
    title: str = "Getis-Ord Gi* hot and cold spots",
    outlines: gpd.GeoDataFrame | None = None,
    dpi: int = DPI,
) -> Path:
    """Map of Gi* confidence bins (``gi_bin`` -3..3) in the ArcGIS colours.

    Parameters
    ----------
    gi : geopandas.GeoDataFrame
        :func:`geo_crime.stats.hotspots.gi_star_table` output.
    path : path-like
        Destination PNG.
    title : str
        Figure title.
    outlines : geopandas.GeoDataFrame, optional
        Boundaries drawn on top.
    dpi : int, default 150
        Resolution.

    Returns
    -------
    pathlib.Path
    """
    gi = lonlat_frame(gi, "Gi* table")
    if "gi_bin" not in gi.columns:
        raise DataError("the Gi* table has no 'gi_bin' column")
    fig = categorical_map(
        gi,
        gi["gi_bin"].to_numpy(),
        GI_COLOURS,
        GI_BIN_LABELS,
        [3, 2, 1, 0, -1, -2, -3],
        title=title,
        legend_title="Gi* bin",
        outlines=outlines,
    )
    return save_figure(fig, path, dpi)


def lisa_cluster_map(
    lisa: gpd.GeoDataFrame,
    path: str | os.PathLike,
    *,
    title: str = "LISA clusters (local Moran's I)",
    outlines: gpd.GeoDataFrame | None = None,
    dpi: int = DPI,
) -> Path:
    """Map of LISA clusters (``cluster_code`` 0..4) in the GeoDa colours.

    Parameters
    ----------
    lisa : geopandas.GeoDataFrame
        :func:`geo_crime.stats.hotspots.lisa_table` output.
    path : path-like
        Destination PNG.
    title : str
        Figure title.
    outlines : geopandas.GeoDataFrame, optional
        Boundaries drawn on top.
    dpi : int, default 150
        Resolution.

    Returns
    -------
    pathlib.Path
    """
    lisa = lonlat_frame(lisa, "LISA table")
    if "cluster_code" not in lisa.columns:
        raise DataError("the LISA table has no 'cluster_code' column")
    fig = categorical_map(
        lisa,
        lisa["cluster_code"].to_numpy(),
        LISA_COLOURS,
        LISA_LABELS,
        [1, 3, 2, 4, 0],
        title=title,
        legend_title="Cluster",
        outlines=outlines,
    )
    return save_figure(fig, path, dpi)


def moran_slope(y_std: Any, lag_std: Any) -> float:
    """Slope through the origin of ``lag_std`` on ``y_std``: Moran's I for row-standardised
    weights (``sum(z * lag) / sum(z ** 2)``), over the finite pairs."""
    x = np.asarray(y_std, dtype=float)
    lag = np.asarray(lag_std, dtype=float)
    ok = np.isfinite(x) & np.isfinite(lag)
    return float(np.sum(x[ok] * lag[ok]) / np.sum(x[ok] ** 2))


def moran_scatterplot(
    data: Any,
    path: str | os.PathLike,
    *,
    I: float | None = None,  # noqa: E741 - the statistic's name
    title: str | None = None,
    binned: bool = False,
    dpi: int = DPI,
) -> Path:
    """Moran scatterplot: standardised value against its spatial lag, slope = Moran's I.

    Parameters
    ----------
    data : GlobalMoran, LocalMoran or pandas.DataFrame
        Anything with ``y_std`` and ``lag_std`` (attributes or columns); ``cluster_code``
        (or a LocalMoran's ``codes``) colours the points by LISA cluster.
    path : path-like
        Destination PNG.
    I : float, optional
        Moran's I; default ``data.I`` when present, else the slope through the origin
        ``sum(y_std * lag_std) / sum(y_std ** 2)`` (equal to I for row-standardised weights).
    title : str, optional
        Figure title (default names I).
    binned : bool, default False
        Draw the density of units in hexagonal bins instead of one point per unit: a public
        figure must not let anyone read off each unit's value and lag (the lag mixes in
        suppressed neighbours, see :mod:`geo_crime.publish.privacy`).
    dpi : int, default 150
        Resolution.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DataError
        No ``y_std``/``lag_std``, different lengths or no finite pair.
    """
    if isinstance(data, pd.DataFrame):
        if not {"y_std", "lag_std"} <= set(data.columns):
            raise DataError("the Moran table needs 'y_std' and 'lag_std' columns")
        x, lag = data["y_std"].to_numpy(float), data["lag_std"].to_numpy(float)
        codes = data["cluster_code"].to_numpy() if "cluster_code" in data.columns else None
    else:
        if not (hasattr(data, "y_std") and hasattr(data, "lag_std")):
            raise DataError("moran_scatterplot needs y_std and lag_std")
        x = np.asarray(data.y_std, dtype=float)
        lag = np.asarray(data.lag_std, dtype=float)
        codes = getattr(data, "codes", None)
        if I is None and hasattr(data, "I"):
            I = float(data.I)  # noqa: E741
    if x.shape != lag.shape:
        raise DataError("y_std and lag_std differ in length")
    ok = np.isfinite(x) & np.isfinite(lag)
    if not ok.any():
        raise DataError("no finite (y_std, lag_std) pair to plot")
    if I is None:
        I = moran_slope(x, lag)  # noqa: E741
    fig, ax = new_figure((8.5, 6.5))
    if binned:
        cells = ax.hexbin(x[ok], lag[ok], gridsize=25, mincnt=1, cmap="Blues", zorder=2)
        fig.colorbar(cells, ax=ax, label="units per hexagon", shrink=0.6, location="left")
    elif codes is not None:
        codes = np.asarray(codes)
        for code in (0, 2, 4, 1, 3):
            sel = ok & (codes == code)
            if sel.any():
                ax.scatter(
                    x[sel],
                    lag[sel],
                    s=14,
                    color=LISA_COLOURS[code],
                    edgecolors="#555555",
                    linewidths=0.3,
                    label=LISA_LABELS[code],
                    zorder=3,
                )
    else:
        ax.scatter(x[ok], lag[ok], s=14, color="#4575b5", alpha=0.7, zorder=3)
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.axvline(0, color="#888888", linewidth=0.8)
    lo, hi = float(np.min(x[ok])), float(np.max(x[ok]))
    grid = np.linspace(lo, hi, 2)
    ax.plot(grid, I * grid, color="#d62f27", linewidth=1.6, label=f"slope = I = {I:.3f}", zorder=4)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    for (qx, qy), name in zip(
        ((0.97, 0.97), (0.03, 0.97), (0.03, 0.03), (0.97, 0.03)),
        ("HH", "LH", "LL", "HL"),
        strict=True,
    ):
        ax.text(
            qx,
            qy,
            name,
            transform=ax.transAxes,
            ha="right" if qx > 0.5 else "left",
            va="top" if qy > 0.5 else "bottom",
            color="#666666",
            fontsize=10,
        )
    ax.set_xlabel("standardised value (z)")
    ax.set_ylabel("spatial lag of z")
    ax.set_title(title or f"Moran scatterplot (Moran's I = {I:.3f}, n = {int(ok.sum())})")
    return save_figure(fig, path, dpi)


def forecast_vs_actual(
    actual: Any,
    predicted: Any,
    path: str | os.PathLike,
    *,
    title: str = "Forecast vs actual",
    dpi: int = DPI,
) -> Path:
    """Compare a forecast with what happened.

    Parameters
    ----------
    actual, predicted : array_like or pandas.Series
        Same length. When both are Series indexed by dates (e.g. a city-wide weekly series), a
        time-series chart is drawn; otherwise a scatter of predicted against actual (one point
        per unit or unit-period) with the 1:1 line.
    path : path-like
        Destination PNG.
    title : str
        Title prefix; MAE and RMSE are appended.
    dpi : int, default 150
        Resolution.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DataError
        Different lengths or no finite pair.
    """
    a = np.asarray(actual, dtype=float).ravel()
    p = np.asarray(predicted, dtype=float).ravel()
    if a.shape != p.shape:
        raise DataError(f"actual and predicted differ in length ({a.size} vs {p.size})")
    ok = np.isfinite(a) & np.isfinite(p)
    if not ok.any():
        raise DataError("no finite (actual, predicted) pair to plot")
    mae = float(np.mean(np.abs(a[ok] - p[ok])))
    rmse = float(np.sqrt(np.mean((a[ok] - p[ok]) ** 2)))
    timeline = (
        isinstance(actual, pd.Series)
        and isinstance(predicted, pd.Series)
        and isinstance(actual.index, pd.DatetimeIndex)
        and isinstance(predicted.index, pd.DatetimeIndex)
    )
    fig, ax = new_figure((8.0, 5.0) if timeline else (6.5, 6.5))
    if timeline:
        ax.plot(actual.index, a, color="#333333", linewidth=1.4, marker="o", ms=3, label="actual")
        ax.plot(
            predicted.index, p, color="#d62f27", linewidth=1.4, marker="s", ms=3, label="forecast"
        )
        ax.set_xlabel("period")
        ax.set_ylabel("value")
        ax.legend()
        fig.autofmt_xdate()
    else:
        ax.scatter(a[ok], p[ok], s=14, color="#4575b5", alpha=0.7, zorder=3)
        lo = float(min(a[ok].min(), p[ok].min()))
        hi = float(max(a[ok].max(), p[ok].max()))
        ax.plot([lo, hi], [lo, hi], color="#888888", linestyle="--", linewidth=1, label="1:1")
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
        ax.legend(loc="upper left")
    ax.set_title(f"{title} (MAE {mae:.2f}, RMSE {rmse:.2f}, n = {int(ok.sum())})")
    ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi)


def write_figures(
    folder: str | os.PathLike,
    *,
    units: gpd.GeoDataFrame | None = None,
    gi: gpd.GeoDataFrame | None = None,
    lisa: gpd.GeoDataFrame | None = None,
    moran: Any = None,
    actual: Any = None,
    predicted: Any = None,
    outlines: gpd.GeoDataFrame | None = None,
    severity_column: str = "severity",
    severity_label: str | None = None,
    scheme: Scheme = "quantiles",
    k: int = 5,
    k_anonymity: int = DEFAULT_K,
    public: bool = False,
    dpi: int = DPI,
    context: str = "",
) -> list[Path]:
    """Write every figure the inputs allow into ``folder`` (names in :data:`FIGURE_NAMES`).

    Parameters
    ----------
    folder : path-like
        Output folder (created if needed).
    units : geopandas.GeoDataFrame, optional
        Units with ``severity_column`` and ``count``: severity choropleth.
    gi : geopandas.GeoDataFrame, optional
        Gi* table: hot spot map.
    lisa : geopandas.GeoDataFrame, optional
        LISA table: cluster map, and the Moran scatterplot when ``moran`` is not given.
    moran : GlobalMoran, LocalMoran or pandas.DataFrame, optional
        Scatterplot data (its ``I`` is used when present).
    actual, predicted : array_like or pandas.Series, optional
        Forecast comparison (both needed).
    outlines : geopandas.GeoDataFrame, optional
        Boundaries drawn on the maps.
    severity_column, scheme, k, k_anonymity
        Options of :func:`severity_choropleth`.
    severity_label : str, optional
        Title of the choropleth: what the number is, with its unit and scope.
    public : bool, default False
        Figures for publication: the Moran scatterplot is binned (see
        :func:`moran_scatterplot`); pass the public tables of
        :func:`geo_crime.publish.privacy.public_tables` so suppressed units are drawn grey.
    dpi : int, default 150
        Resolution.
    context : str, default ""
        The study, unit set and window, added as a second line to every title
        (``study citywide_2024, H3 cells (resolution 8), 9 weeks 2024-01-01 to 2024-02-26``).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order severity, Gi*, Moran, LISA, forecast.
    """

    def titled(title: str | None) -> str | None:
        if not context:
            return title
        return f"{title}\n{context}" if title else None

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if units is not None:
        written.append(
            severity_choropleth(
                units,
                folder / FIGURE_NAMES["severity"],
                column=severity_column,
                title=titled(severity_label),
                scheme=scheme,
                k=k,
                k_anonymity=k_anonymity,
                outlines=outlines,
                dpi=dpi,
            )
        )
    if gi is not None:
        gi_title = titled("Getis-Ord Gi* hot and cold spots")
        written.append(
            hotspot_map(gi, folder / FIGURE_NAMES["gi"], outlines=outlines, dpi=dpi, title=gi_title)
        )
    scatter = moran if moran is not None else lisa
    if scatter is not None:
        written.append(
            moran_scatterplot(scatter, folder / FIGURE_NAMES["moran"], binned=public, dpi=dpi)
        )
    if lisa is not None:
        written.append(
            lisa_cluster_map(
                lisa,
                folder / FIGURE_NAMES["lisa"],
                outlines=outlines,
                dpi=dpi,
                title=titled("LISA clusters (local Moran's I)"),
            )
        )
    if actual is not None and predicted is not None:
        written.append(
            forecast_vs_actual(
                actual,
                predicted,
                folder / FIGURE_NAMES["forecast"],
                dpi=dpi,
                title=titled("Forecast vs actual") or "Forecast vs actual",
            )
        )
    return written
