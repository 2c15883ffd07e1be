"""The public outputs of one cube, composed once: used by the pipeline and the command line.

Every public artefact of a unit set is made here from the same three things: the cube's
per-unit summary, which units are suppressed (:func:`geo_crime.publish.privacy.cube_disclosure`)
and the statistics and forecast tables. :func:`public_cube` passes them through
:func:`geo_crime.publish.privacy.publishable` (suppressed units blank everywhere, statistics as
classes); then

* :func:`write_public_map` writes the folium map (``geo-crime map`` and each run's
  ``map_<units>.html``);
* :func:`write_public_layers` writes the GIS layers (``geo-crime export`` and each run's
  ``gis/``);
* :func:`write_public_figures` writes the static figures of a run's unit set.

``geo-crime map`` and ``geo-crime export`` on a run's cube therefore publish exactly what the
run published for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.errors import InputError
from geo_crime.core.options import Tiles
from geo_crime.publish.export import EXPORT_FORMATS, export_layers
from geo_crime.publish.figures.emerging import emerging_hotspot_figure
from geo_crime.publish.privacy import cube_disclosure, hidden_mask, publishable

__all__ = [
    "RATE_SCHEME",
    "PublicCube",
    "public_cube",
    "read_forecast_table",
    "write_public_figures",
    "write_public_layers",
    "write_public_map",
]

#: Classes of the severity rate on maps and figures (the rate is heavily skewed: quintiles).
RATE_SCHEME = "quantiles"


@dataclass(frozen=True)
class PublicCube:
    """The disclosure-safe tables of one cube and who is hidden.

    Attributes
    ----------
    cube
        The cube (its units and periods; never published itself).
    tables
        :func:`~geo_crime.publish.privacy.publishable` tables: ``summary``, any of ``gi`` /
        ``lisa`` / ``emerging`` and ``forecast``.
    suppressed
        Suppression flags by ``unit_id``.
    counts
        Each unit's incidents (what the exports' suppression is checked against).
    """

    cube: Any
    tables: dict[str, pd.DataFrame]
    suppressed: pd.Series
    counts: pd.Series


def public_cube(
    cube: Any,
    statistics: Mapping[str, pd.DataFrame] | None = None,
    *,
    k_anonymity: int = DEFAULT_K,
    forecast: pd.DataFrame | None = None,
    disclosure: tuple[pd.DataFrame, pd.Series] | None = None,
) -> PublicCube:
    """The public tables of ``cube``: its summary, statistics and forecast, disclosure-safe.

    Parameters
    ----------
    cube : geo_crime.cube.panel.Cube
        The cube (a run passes its analysis window).
    statistics
        Result tables by statistic name (only ``gi``, ``lisa`` and ``emerging`` are published).
    k_anonymity
        Units with fewer incidents are suppressed.
    forecast
        ``unit_id`` and prediction columns (:func:`read_forecast_table`).
    disclosure
        ``(summary, suppressed)`` when already decided
        (:func:`~geo_crime.publish.privacy.cube_disclosure`); decided here otherwise.
    """
    summary, suppressed = disclosure or cube_disclosure(cube, k_anonymity)
    tables = publishable(summary, suppressed, statistics=statistics, forecast=forecast)
    return PublicCube(cube, tables, suppressed, summary.set_index("unit_id")["count"])


def write_public_map(
    public: PublicCube,
    path: str | Path,
    *,
    divisions: gpd.GeoDataFrame,
    rds: gpd.GeoDataFrame | None = None,
    forecast_period: str = "",
    offline: bool = True,
    k_anonymity: int = DEFAULT_K,
    tiles: Tiles | str = Tiles.OSM,
    scheme: str | None = None,
) -> Path:
    """The folium map of a public cube (suppressed units drawn hidden), written atomically."""
    from geo_crime.publish.maps import MapLayers, write_map  # folium: loaded for maps only

    tables = public.tables
    layers = MapLayers.from_cube(
        public.cube,
        gi=tables.get("gi"),
        lisa=tables.get("lisa"),
        emerging=tables.get("emerging"),
        forecast=tables.get("forecast"),
        divisions=divisions,
        rds=rds,
        forecast_period=forecast_period,
    )
    layers.units["suppressed"] = hidden_mask(public.suppressed, layers.units["unit_id"])
    options: dict[str, Any] = {"scheme": scheme} if scheme is not None else {}
    return write_map(
        layers,
        path,
        offline=offline,
        k_anonymity=k_anonymity,
        tiles=Tiles(tiles).provider,
        **options,
    )


def write_public_layers(
    public: PublicCube,
    folder: str | Path,
    *,
    k_anonymity: int = DEFAULT_K,
    formats: Sequence[str] = EXPORT_FORMATS,
    prefix: str = "",
    gpkg_name: str | None = None,
) -> list[Path]:
    """The GIS layers of a public cube (GeoJSON, GeoPackage, GeoParquet), privacy-checked
    against each unit's count; layer names start with ``prefix`` (a run's unit label)."""
    layers = {f"{prefix}{kind}": table for kind, table in public.tables.items()}
    options: dict[str, Any] = {"gpkg_name": gpkg_name} if gpkg_name else {}
    return export_layers(
        layers,
        folder,
        formats=formats,
        k_anonymity=k_anonymity,
        counts=public.counts,
        **options,
    )


def write_public_figures(
    public: PublicCube,
    folder: Path,
    *,
    outlines: gpd.GeoDataFrame,
    moran: Any = None,
    severity_label: str,
    k_anonymity: int = DEFAULT_K,
    context: str = "",
) -> list[Path]:
    """The static figures of a public cube: the emerging hot spot map (when emerging hot spots
    were run) and the choropleths and scatterplot of :func:`~geo_crime.publish.figures.core.
    write_figures`."""
    from geo_crime.publish.figures.core import write_figures  # matplotlib: figures only

    tables, files = public.tables, []
    if "emerging" in tables:
        files.append(
            emerging_hotspot_figure(
                tables["summary"],
                tables["emerging"],
                folder / "emerging_hot_spots.png",
                suppressed=public.suppressed,
                outlines=outlines,
            )
        )
    files += write_figures(
        folder,
        units=tables["summary"],
        gi=tables.get("gi"),
        lisa=tables.get("lisa"),
        moran=moran,
        outlines=outlines,
        severity_column="severity_rate",
        severity_label=severity_label,
        scheme=RATE_SCHEME,
        k_anonymity=k_anonymity,
        public=True,
        context=context,
    )
    return files


def read_forecast_table(path: Path | None) -> pd.DataFrame | None:
    """A forecast table from ``geo-crime predict`` (``unit_id`` and ``prediction``), or one
    :class:`~geo_crime.core.errors.InputError` naming the file."""
    if path is None:
        return None
    try:
        frame = pd.read_csv(path, dtype={"unit_id": str})
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    if not {"unit_id", "prediction"} <= set(frame.columns):
        raise InputError(
            f"{path}: a forecast table needs unit_id and prediction columns; "
            f"found {list(frame.columns)}"
        )
    return frame
