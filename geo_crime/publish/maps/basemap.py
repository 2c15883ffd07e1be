"""The base map: a light vector map of Los Angeles from the shipped layers, or web tiles.

Offline (the default) a map is drawn over :func:`load_basemap`: the City of Los Angeles outline
(the land, filled), the 21 LAPD division boundaries and the 114 LA Times "Mapping L.A."
neighbourhood boundaries, read from the shared data folder (:func:`geo_crime.core.config.data_dir`,
the files :data:`~geo_crime.units.h3.CITY_BOUNDARY_FILE`,
:data:`~geo_crime.units.polygons.DIVISIONS_FILE` and
:data:`~geo_crime.units.places.NEIGHBOURHOODS_FILE`), with their names as labels: division
names at city scale, neighbourhood names from zoom :data:`LABEL_SPLIT_ZOOM` on. The layers are
context, so the map simplifies them more (:data:`BASEMAP_TOLERANCE_M`) than the units.

On request a map also gets web tiles (:func:`tile_layer`, :data:`TILES`: ``"carto"``, CARTO
Positron, or ``"osm"``, OpenStreetMap), with their attribution; the vector boundaries and labels
stay on top of them. Whether the page will be online cannot be known when it is written, so the
tiles are tried (:class:`TileFallback`): when none of the first view's tiles loads, the tile
layer is removed and the vector base map's land is filled, as on an offline map. CARTO's tiles
need an API key (:data:`CARTO_KEY_VARIABLE`), which ends up in the page.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import shapely
import xyzservices.providers as xyz
from branca.element import MacroElement
from folium.template import Template
from shapely.ops import polylabel

from geo_crime.core.config import EQUAL_AREA_CRS, data_dir
from geo_crime.core.errors import ConfigError, InputError
from geo_crime.units.h3 import CITY_BOUNDARY_FILE
from geo_crime.units.places import NEIGHBOURHOODS_FILE
from geo_crime.units.polygons import DIVISIONS_FILE, read_polygon_layer

__all__ = [
    "BASEMAP_ATTRIBUTION",
    "CARTO_KEY_VARIABLE",
    "BASEMAP_TOLERANCE_M",
    "LABEL_SPLIT_ZOOM",
    "TILES",
    "Basemap",
    "TileFallback",
    "load_basemap",
    "tile_layer",
]

BASEMAP_TOLERANCE_M = 15.0
"""Simplification tolerance of the base map's boundaries (metres): context, not analysis."""

LABEL_SPLIT_ZOOM = 12
"""Division names are shown below this zoom level, neighbourhood names from it on."""

BASEMAP_ATTRIBUTION = (
    "Base map: City of Los Angeles and LAPD boundaries (LA GeoHub), "
    "neighbourhoods (Los Angeles Times, Mapping L.A.)"
)
"""Credit of the vector base map (in the map's attribution control)."""

TILES: dict[str, str] = {"carto": "CARTO Positron (light)", "osm": "OpenStreetMap"}
"""Web tiles a map can ask for by short name (other folium tile names work too)."""

CARTO_KEY_VARIABLE = "GEO_CRIME_CARTO_KEY"
"""Environment variable holding a CARTO basemaps API key (https://carto.com/basemaps/apikey/)."""


@dataclass(frozen=True)
class Basemap:
    """The vector base map's layers, in EPSG:4326.

    Attributes
    ----------
    city : numpy.ndarray
        The city outline (one geometry).
    divisions : numpy.ndarray
        LAPD division polygons.
    division_names : tuple of str
    neighbourhoods : numpy.ndarray
        LA Times neighbourhood polygons.
    neighbourhood_names : tuple of str
    labels : tuple of (lat, lon, name, kind)
        Label positions (inside each polygon, far from its edges), ``kind`` ``"d"`` (division)
        or ``"n"`` (neighbourhood), largest areas first within each kind.
    """

    city: np.ndarray
    divisions: np.ndarray
    division_names: tuple[str, ...]
    neighbourhoods: np.ndarray
    neighbourhood_names: tuple[str, ...]
    labels: tuple[tuple[float, float, str, str], ...]


def load_basemap(folder: str | Path | None = None) -> Basemap | None:
    """The vector base map from the data folder (read once per folder), or None if missing.

    Parameters
    ----------
    folder : path-like, optional
        The data folder (default: :func:`geo_crime.core.config.data_dir`).

    Returns
    -------
    Basemap or None
        None when the folder or one of its three layers is missing or unreadable.
    """
    try:
        root = Path(folder) if folder is not None else data_dir()
    except ConfigError:
        return None
    return _load(str(root.expanduser().resolve()))


@functools.lru_cache(maxsize=4)
def _load(root: str) -> Basemap | None:
    base = Path(root)
    try:
        city, _ = read_polygon_layer(base / CITY_BOUNDARY_FILE)
        divisions, _ = read_polygon_layer(base / DIVISIONS_FILE)
        hoods, _ = read_polygon_layer(base / NEIGHBOURHOODS_FILE)
    except InputError:
        return None
    cols = {c.upper(): c for c in divisions.columns}
    if "APREC" not in cols or "name" not in hoods.columns:
        return None
    division_names = tuple(divisions[cols["APREC"]].astype(str).str.strip())
    hood_names = tuple(hoods["name"].astype(str).str.strip())
    labels = [
        *_label_points(divisions, division_names, "d"),
        *_label_points(hoods, hood_names, "n"),
    ]
    return Basemap(
        city=np.array([shapely.union_all(city.geometry.to_numpy())], dtype=object),
        divisions=divisions.geometry.to_numpy(),
        division_names=division_names,
        neighbourhoods=hoods.geometry.to_numpy(),
        neighbourhood_names=hood_names,
        labels=tuple(labels),
    )


def _label_points(
    layer: gpd.GeoDataFrame, names: tuple[str, ...], kind: str
) -> list[tuple[float, float, str, str]]:
    """A label point per polygon (pole of inaccessibility of its largest part), largest first."""
    metric = layer.geometry.to_crs(EQUAL_AREA_CRS).to_numpy()
    points, areas = [], []
    for geom in metric:
        parts = shapely.get_parts(geom)
        largest = parts[int(np.argmax(shapely.area(parts)))]
        points.append(polylabel(largest, tolerance=25.0))
        areas.append(float(shapely.area(geom)))
    lonlat = gpd.GeoSeries(points, crs=EQUAL_AREA_CRS).to_crs("EPSG:4326")
    out = [
        (round(float(p.y), 5), round(float(p.x), 5), name, kind)
        for p, name in zip(lonlat, names, strict=True)
    ]
    order = np.argsort(-np.asarray(areas), kind="stable")
    return [out[i] for i in order]


def tile_layer(tiles: str, *, api_key: str | None = None) -> folium.TileLayer:
    """A web tile layer with its attribution, kept out of the layer control.

    Parameters
    ----------
    tiles : str
        ``"carto"`` (CARTO Positron), ``"osm"`` (OpenStreetMap) or any folium tile name.
    api_key : str, optional
        CARTO API key (default: the :data:`CARTO_KEY_VARIABLE` environment variable). It is
        written into the page, as web map keys are.

    Returns
    -------
    folium.TileLayer

    Warns
    -----
    UserWarning
        CARTO tiles asked for without a key: the tile server may refuse them.
    """
    name = tiles.lower()
    if name == "osm":
        return folium.TileLayer("OpenStreetMap", control=False)
    if name != "carto":
        return folium.TileLayer(tiles, control=False)
    key = api_key or os.environ.get(CARTO_KEY_VARIABLE)
    provider = xyz.CartoDB.Positron
    if key:
        return folium.TileLayer(provider(apikey=key), control=False)
    warnings.warn(
        f"CARTO tiles need an API key: set {CARTO_KEY_VARIABLE} "
        "(https://carto.com/basemaps/apikey/), or use tiles='osm'; without one the tiles may "
        "not load (the vector base map is drawn anyway)",
        UserWarning,
        stacklevel=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        url = provider.build_url(scale_factor="{r}")
    return folium.TileLayer(
        url, attr=provider.html_attribution, name=provider.name, control=False, max_zoom=20
    )


class TileFallback(MacroElement):
    """Web tiles that are tried: when none of the first view's tiles loads, the vector base map.

    Leaflet fires ``load`` on a tile layer once every tile of the view has loaded or failed.
    If by then no tile has loaded (no network, the server refused them), the tile layer (and
    its attribution) is removed, the land of the vector base map is filled with ``land_fill``
    and the map gets the vector background (class ``gc-vector``). A tile that loads keeps the
    tiles, even if others fail later.

    Parameters
    ----------
    tiles : folium.TileLayer
        The web tiles, on the map.
    land : folium layer or None
        The vector base map's land (drawn unfilled under the tiles), if any.
    land_fill : dict
        Leaflet path style filling the land.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, tiles = {{ this.tiles.get_name() }};
            var land = {{ this.land.get_name() if this.land else "null" }};
            var fill = {{ this.land_fill|tojson }}, loaded = 0, failed = 0;
            tiles.on("tileload", function () { loaded += 1; });
            tiles.on("tileerror", function () { failed += 1; });
            tiles.on("load", function () {
                if (loaded > 0 || failed === 0 || !map.hasLayer(tiles)) { return; }
                map.removeLayer(tiles);
                if (land) {
                    var style = Object.assign({}, land.options.style(), fill);
                    land.options.style = function () { return style; };
                    land.setStyle(style);
                }
                map.getContainer().classList.add("gc-vector", "gc-tiles-failed");
            });
        })();
        {% endmacro %}
        """
    )

    def __init__(self, tiles: folium.TileLayer, land: object | None, land_fill: dict) -> None:
        super().__init__()
        self._name = "GeoCrimeTileFallback"
        self.tiles = tiles
        self.land = land
        self.land_fill = land_fill
