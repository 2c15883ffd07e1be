"""Interactive web maps of crime measures, hot spots and forecasts (folium / Leaflet).

:func:`build_map` turns a :class:`MapLayers` bundle (the units with their measures, plus the
optional hot-spot, emerging hot spot and forecast tables and administrative outlines) into one
``folium.Map`` with a layer per result. :func:`write_map` saves it as a single HTML file.

Layers
------
The unit layers are the map's base layers: radio buttons in the layer control (top right), one
choropleth on at a time, and the legend (bottom right) shows the chosen one's section only. The
outlines and the place names are overlays (checkboxes), each with its legend section while it
is on. Tooltips give the unit id, its incidents, severity points, rate and severity per km²
over the analysis window, the layer's class and the period.

=============================  ============================================================
layer                          colours
=============================  ============================================================
Severity points per km²        sequential classes (YlOrRd) from :func:`classify_values` of
(default)                      the units' severity over the analysis window per km² (where
                               harm happens, whoever lives there); quintiles by default
Severity per resident          the same classes of the per-resident rate; its legend says
                               that residents are not the people exposed
                               (:data:`~geo_crime.publish.maps.draw.RATE_CAVEAT`)
Gi* hot and cold spots         ArcGIS confidence bins, :data:`GI_COLOURS`
LISA clusters                  High-High red, Low-Low blue, Low-High light blue, High-Low
                               pink, not significant grey (GeoDa colours, :data:`LISA_COLOURS`)
Emerging hot spots             :data:`EMERGING_STYLES`: hot reds and oranges, cold blues, the
                               fading kinds hatched; the legend states the periods they rest on
Forecast                       sequential classes (Purples) of the ``prediction`` column, in
                               its unit ("severity points"); units not forecast hatched grey,
                               "not forecast (recording incomplete)"
LAPD divisions (on)            outline only (overlay)
Reporting districts            outline only (overlay); named "(approximate)" when derived
Place names (on)               division names at city scale, neighbourhood names closer in
=============================  ============================================================

Only one unit layer is visible when the map opens (severity per km²), so the browser draws one
set of polygons; a hidden layer builds its features the first time it is switched on. Every
layer lives in its own Leaflet pane (``gc-<layer>``), whose SVG holds exactly one ``path`` per
feature of that layer. The map opens fitted to the units' extent, its study area.

Base map
--------
By default the map is drawn over a light vector base map built from the shipped layers
(:mod:`~geo_crime.publish.maps.basemap`): the City of Los Angeles (the land), the LAPD division and
LA Times neighbourhood boundaries, and their names (division names at city scale, neighbourhood
names from zoom 12 on, overlapping names dropped); it needs no network. ``tiles="carto"`` or
``"osm"`` adds street tiles (CARTO Positron or OpenStreetMap) with their attribution, under the
same boundaries and names. A static page cannot know beforehand whether it will be online, so
the tiles are tried: when none of the first view's tiles loads (offline, or the tile server
blocked), the tile layer is removed and the vector base map's land is filled again
(:class:`~geo_crime.publish.maps.basemap.TileFallback`), so the map never shows broken grey tiles.

Privacy and safety
------------------
* Units with fewer than ``k_anonymity`` incidents (default 3) show no count, severity, rate or
  other incident-derived value (their choropleth class is "suppressed"), and the map says so.
* Every string taken from the data (unit ids, names, crime descriptions, the period label) is
  HTML-escaped in Python before it goes into the GeoJSON properties the tooltips read, because
  folium's ``GeoJsonTooltip`` builds its table with ``innerHTML`` and does not escape values.
  Layer names and legend labels are escaped too (Leaflet's layer control also uses
  ``innerHTML``).

Offline maps and size
---------------------
With ``offline=True`` (the default) Leaflet's JavaScript and CSS, vendored in
``geo_crime/assets/leaflet`` (version :data:`LEAFLET_VERSION`, BSD-2-Clause), are inlined, so the
file needs no network at all unless web tiles were asked for; ``offline=False`` loads Leaflet
from a CDN. Every polygon is stored once (:mod:`~geo_crime.publish.maps.topology`): the layers
share one geometry source, coordinates are quantised to ``10**-precision`` degrees (about 1 m),
borders shared by neighbours are stored and simplified once (no slivers), and each layer carries
only its classes and tooltip values. A city-wide reporting district map of the 2024 rows with every
layer is about 1.5 MB, an H3 resolution-8 one about 2 MB (12.7 and 5.9 MB when each layer
carried its own GeoJSON). Above :data:`MAX_FEATURES` units (e.g. H3
resolution 9 and finer city-wide) a :class:`LargeMapWarning` suggests a coarser resolution or
a GeoPackage export (:func:`geo_crime.publish.export.export_layers`).

Where things are
----------------
This module
    :func:`build_map` (the map, layer by layer), :func:`write_map` (one HTML file) and the
    view defaults (:data:`LA_CENTRE`, :data:`DEFAULT_ZOOM`, :data:`MAX_FEATURES`).
:mod:`~geo_crime.publish.maps.layers`
    :class:`MapLayers` (what a map shows) and the preparation of the units: checks,
    k-anonymity, the measure, the escaped tooltip values.
:mod:`geo_crime.publish.style` (outside this package: the static figures use it too)
    :func:`classify_values`, :class:`Classification`, :func:`sequential_colours`, the fixed
    colours (:data:`GI_COLOURS`, :data:`LISA_COLOURS`...) and the writing of numbers.
:mod:`~geo_crime.publish.maps.classify`
    The hatched fills (SVG patterns and legend swatches).
:mod:`~geo_crime.publish.maps.draw`
    One function per layer kind (severity, Gi*, LISA, emerging, forecast, outlines, base map),
    each in its pane (:func:`layer_pane`), all drawn from the map's shared data.
:mod:`~geo_crime.publish.maps.topology`
    :class:`~geo_crime.publish.maps.topology.Topology`: the shared, quantised, simplified polygons.
:mod:`~geo_crime.publish.maps.basemap`
    The vector base map's layers (:func:`~geo_crime.publish.maps.basemap.load_basemap`) and the web
    tiles (:data:`~geo_crime.publish.maps.basemap.TILES`).
:mod:`~geo_crime.publish.maps.runtime`
    The inlined JavaScript that decodes the shared data and makes the layers.
:mod:`~geo_crime.publish.maps.legend`
    The legend and the info box.
:mod:`~geo_crime.publish.maps.assets`
    Leaflet from the CDN or inlined (:data:`LEAFLET_VERSION`, :data:`ASSETS_DIR`), and
    :func:`external_references`.
"""

from __future__ import annotations

import html
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import folium
import numpy as np
from branca.element import Element, MacroElement
from folium.template import Template

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.errors import ConfigError, OutputError
from geo_crime.core.io_utils import atomic_write_text
from geo_crime.publish.maps.assets import (
    ASSETS_DIR,
    LEAFLET_VERSION,
    _set_assets,
    external_references,
)
from geo_crime.publish.maps.basemap import TILES, TileFallback, load_basemap, tile_layer
from geo_crime.publish.maps.classify import hatch_patterns
from geo_crime.publish.maps.draw import (
    LAND_FILL,
    NOT_FORECAST,
    RATE_CAVEAT,
    UNIT_TOLERANCE_M,
    _basemap_layers,
    _Canvas,
    _categorical_layer,
    _divisions_layer,
    _forecast_layer,
    _MapData,
    _place_names_layer,
    _rds_layer,
    _severity_layer,
    _VectorLayer,
    layer_pane,
)
from geo_crime.publish.maps.layers import (
    DEFAULT_TOOLTIP_COLUMNS as DEFAULT_TOOLTIP_COLUMNS,
)
from geo_crime.publish.maps.layers import (
    MapLayers,
    _esc,
    _is_approximate,
    _prepare_units,
)
from geo_crime.publish.maps.legend import _BOX_CSS, _InfoBox, _Legend
from geo_crime.publish.maps.runtime import RUNTIME_CSS, RUNTIME_JS
from geo_crime.publish.style import (
    EMERGING_STYLES,
    GI_COLOURS,
    LISA_COLOURS,
    NO_DATA_COLOUR,
    NOT_FORECAST_STYLE,
    SUPPRESSED_COLOUR,
    Classification,
    Scheme,
    classify_values,
    sequential_colours,
)
from geo_crime.publish.style import (
    SCHEMES as SCHEMES,
)

__all__ = [
    "ASSETS_DIR",
    "DEFAULT_ZOOM",
    "EMERGING_STYLES",
    "GI_COLOURS",
    "LA_CENTRE",
    "LEAFLET_VERSION",
    "LISA_COLOURS",
    "MAX_FEATURES",
    "NOT_FORECAST",
    "NOT_FORECAST_STYLE",
    "NO_DATA_COLOUR",
    "RATE_CAVEAT",
    "SUPPRESSED_COLOUR",
    "TILES",
    "UNIT_TOLERANCE_M",
    "Classification",
    "LargeMapWarning",
    "MapLayers",
    "build_map",
    "map_layers",
    "classify_values",
    "external_references",
    "layer_pane",
    "sequential_colours",
    "write_map",
]

LA_CENTRE = (34.05, -118.35)
"""Where maps open (latitude, longitude) before they fit their units: central Los Angeles."""

DEFAULT_ZOOM = 10
"""Initial zoom level (the whole city) before the map fits its units."""

MAX_FEATURES = 20_000
"""Units above which :func:`build_map` warns that the HTML will be large and slow."""

ZOOM_SNAP = 0.25
"""Zoom steps the map may take, so the view fits the study area closely."""


class LargeMapWarning(UserWarning):
    """The map has so many features that the HTML will be large and slow to open."""


def build_map(
    layers: MapLayers | Mapping[str, Any],
    *,
    offline: bool = True,
    title: str = "Los Angeles crime: severity and hot spots",
    k_anonymity: int = DEFAULT_K,
    scheme: Scheme = "quantiles",
    k: int = 5,
    max_features: int = MAX_FEATURES,
    precision: int = 5,
    location: Sequence[float] = LA_CENTRE,
    zoom_start: int = DEFAULT_ZOOM,
    tiles: str | None = None,
    fit_units: bool = True,
    basemap: bool = True,
    tolerance_m: float = UNIT_TOLERANCE_M,
) -> folium.Map:
    """Build the interactive map of a run's results.

    Parameters
    ----------
    layers : MapLayers or dict
        The units (with ``count`` and ``severity``) and optional result tables; a dict is
        passed to :class:`MapLayers`.
    offline : bool, default True
        Inline Leaflet, so the HTML needs no network (False: Leaflet from a CDN).
    title : str
        Shown in the info box and as the page title.
    k_anonymity : int, default 3
        Units with fewer incidents have their values hidden (shown as suppressed).
    scheme : {"quantiles", "fisherjenks"}
        Classification of the choropleths (see :func:`classify_values`); quintiles by default,
        as in :func:`geo_crime.publish.figures.core.severity_choropleth`, so map and figure share
        classes.
    k : int, default 5
        Number of choropleth classes.
    max_features : int, default 20,000
        Above this many units a :class:`LargeMapWarning` is issued.
    precision : int, default 5
        Decimals of a degree kept in coordinates (5: a grid of about 1 m).
    location : (lat, lon)
        Initial centre (Los Angeles) before the view fits the units.
    zoom_start : int, default 10
        Initial zoom before the view fits the units.
    tiles : str, optional
        Street tiles under the vector base map: ``"carto"`` (CARTO Positron; its API key from
        ``GEO_CRIME_CARTO_KEY``), ``"osm"`` (OpenStreetMap) or any folium tile name; their
        attribution is shown (see :func:`geo_crime.publish.maps.basemap.tile_layer`). They are
        tried: when none of them loads, the offline vector base map is shown instead. Default: none,
        the map needs no network.
    fit_units : bool, default True
        Open on the units' extent (a West LA study opens on West LA, not on the whole city).
    basemap : bool, default True
        Draw the vector base map (city, division and neighbourhood boundaries and names) from
        the data folder (:func:`geo_crime.publish.maps.basemap.load_basemap`); skipped, with a note,
        when the folder lacks its layers.
    tolerance_m : float, default UNIT_TOLERANCE_M
        Simplification of the units and outlines (metres; shared borders stay shared).

    Returns
    -------
    folium.Map
        Write it with :func:`write_map` (``offline`` is remembered).

    Raises
    ------
    DataError
        Units without ``unit_id`` or ``count``, or result tables without their columns.
    PrivacyError
        Victim-level columns asked for in ``tooltip_columns``.
    ConfigError
        Invalid options.

    Warns
    -----
    LargeMapWarning
        More than ``max_features`` units.
    """
    layers = MapLayers.coerce(layers)
    n_units = len(layers.units)
    if n_units > max_features:
        warnings.warn(
            f"the map has {n_units:,} units (more than {max_features:,}): the HTML will be large "
            "and slow to open. Use a coarser H3 resolution (e.g. 7 or 8) for the web map, and "
            "export_layers(..., formats=('gpkg',)) to a GeoPackage for the fine-grained data.",
            LargeMapWarning,
            stacklevel=2,
        )
    if k_anonymity < 0:
        raise ConfigError(f"k_anonymity must be >= 0, got {k_anonymity}")
    if not 0 <= precision <= 7:
        raise ConfigError(f"precision must be 0..7 decimals, got {precision}")
    prepared, extras = _prepare_units(layers, k_anonymity)

    m = _base_map(
        layers,
        offline=offline,
        title=title,
        location=location,
        zoom_start=zoom_start,
        tiles=tiles,
        fit_units=fit_units,
    )
    data = _MapData(precision)
    data.add_to(m)
    canvas = _Canvas(
        m, data, prepared, extras, k_anonymity, scheme, k, _esc(layers.period), tolerance_m
    )
    shipped = load_basemap() if basemap else None
    land = _basemap_layers(canvas, shipped, tiles=bool(tiles)) if shipped is not None else None
    tiles_layer = getattr(m, "_geo_crime_tiles", None)
    if tiles_layer is not None:
        TileFallback(tiles_layer, land, LAND_FILL).add_to(m)
    legend_sections = [_severity_layer(canvas), _severity_layer(canvas, rate=True)]
    for key in ("gi", "lisa", "emerging"):
        table = getattr(layers, key)
        if table is not None:
            note = _emerging_note(layers.emerging_periods) if key == "emerging" else ""
            legend_sections.append(_categorical_layer(canvas, key, table, note))
    if layers.forecast is not None:
        legend_sections.append(
            _forecast_layer(canvas, layers.forecast, layers.forecast_period, layers.forecast_unit)
        )
    hatched = [colour for colour, hatch in [*EMERGING_STYLES.values(), NOT_FORECAST_STYLE] if hatch]
    m.get_root().html.add_child(Element(hatch_patterns(hatched)), name="geo_crime_hatches")

    notes: list[str] = []
    units_approximate = _is_approximate(layers.units)
    if units_approximate:
        notes.append("Units are approximate (derived) reporting districts.")
    if layers.rds is not None and len(layers.rds):
        approx = _is_approximate(layers.rds)
        legend_sections.append(_rds_layer(canvas, layers.rds, approx))
        if approx and not units_approximate:  # said once when the units are those districts
            notes.append("Reporting district outlines are approximate (derived).")
    if layers.divisions is not None and len(layers.divisions):
        legend_sections.append(_divisions_layer(canvas, layers.divisions))
    if shipped is not None:
        _place_names_layer(canvas, shipped)
        if not tiles:
            notes.append(
                "Base map: City of Los Angeles, LAPD division and LA Times neighbourhood "
                "boundaries (no web tiles)."
            )
    elif basemap:
        notes.append("No base map: its boundary layers were not found in the data folder.")
    data.finish()

    _Legend(legend_sections).add_to(m)
    info = _info_html(title, layers.period, k_anonymity, notes)
    _InfoBox(info, vector=not tiles).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m._geo_crime_offline = offline  # remembered by write_map
    return m


def map_layers(m: folium.Map) -> dict[str, _VectorLayer]:
    """The layers of a built map that appear in its layer control, by name.

    Parameters
    ----------
    m : folium.Map
        From :func:`build_map`.

    Returns
    -------
    dict of str to layer
        Each layer's ``show`` (on when the map opens), ``records`` (one ``{"id",
        "properties"}`` per feature: its own tooltip values), ``data`` (its features with all
        their tooltip properties, without geometry) and ``spec`` (what the browser gets).
    """
    return {
        html.unescape(c.layer_name): c
        for c in m._children.values()
        if isinstance(c, _VectorLayer) and c.control
    }


def _base_map(
    layers: MapLayers,
    *,
    offline: bool,
    title: str,
    location: Sequence[float],
    zoom_start: int,
    tiles: str | None,
    fit_units: bool,
) -> folium.Map:
    """The map before its layers: view, Leaflet, web tiles (on request), title and CSS."""
    m = folium.Map(
        location=list(location),
        zoom_start=zoom_start,
        tiles=None,
        control_scale=True,
        zoom_snap=ZOOM_SNAP,
    )
    _set_assets(m, offline=offline)
    if tiles:
        m._geo_crime_tiles = tile_layer(tiles).add_to(m)
    if fit_units and len(layers.units):
        west, south, east, north = layers.units.to_crs("EPSG:4326").total_bounds
        if np.isfinite([west, south, east, north]).all():
            corners = [[south, west], [north, east]]
            _FitView([[round(float(v), 5) for v in c] for c in corners]).add_to(m)
    root = m.get_root()
    root.title = _esc(title)
    root.header.add_child(Element(_BOX_CSS), name="geo_crime_css")
    runtime = f"<style>{RUNTIME_CSS}</style>\n<script>{RUNTIME_JS}</script>\n"
    root.header.add_child(Element(runtime), name="geo_crime_runtime")
    return m


class _FitView(MacroElement):
    """Open the map on ``bounds`` at once (no zoom animation), clear of the boxes on the right.

    Attributes
    ----------
    bounds : list
        ``[[south, west], [north, east]]``.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.fitBounds({{ this.bounds|tojson }}, {
            paddingTopLeft: [20, 20], paddingBottomRight: [290, 20], animate: false
        });
        {% endmacro %}
        """
    )

    def __init__(self, bounds: list[list[float]]) -> None:
        super().__init__()
        self._name = "GeoCrimeFitView"
        self.bounds = bounds


def _emerging_note(periods: str) -> str:
    """The emerging hot spot legend's note: the periods the categories rest on (escaped)."""
    hatch = "Hatched: the fading or intermittent kinds."
    if not periods:
        return hatch
    note = f"The categories rest on {_esc(periods)}."
    first = periods.split()[0]
    if first.isdigit() and int(first) < 10:
        note += " Fewer than ten periods: read the trends as indications only."
    return f"{note} {hatch}"


def _info_html(title: str, period: str, k_anonymity: int, notes: list[str]) -> str:
    """The info box's HTML: title, period, privacy and other notes (escaped)."""
    info = [f'<div class="gc-title">{_esc(title)}</div>']
    if period:
        info.append(f"<div>Period: {_esc(period)}</div>")
    if k_anonymity > 0:
        info.append(
            f'<div class="gc-note">Privacy: units with fewer than {k_anonymity} incidents are '
            "suppressed (counts, severity and rates hidden).</div>"
        )
    info.extend(f'<div class="gc-note">{_esc(n)}</div>' for n in notes)
    return "".join(info)


def write_map(
    map_or_layers: folium.Map | MapLayers | Mapping[str, Any],
    path: str | os.PathLike,
    *,
    offline: bool | None = None,
    **build_options: Any,
) -> Path:
    """Write a map (or build one from layers and write it) as one HTML file, atomically.

    Parameters
    ----------
    map_or_layers : folium.Map, MapLayers or dict
        A map from :func:`build_map`, or layers to build one from.
    path : path-like
        Destination ``.html`` file.
    offline : bool, optional
        Inline Leaflet (no CDN). Default: how the map was built, or True when building. An
        online map written with ``offline=True`` is converted (Leaflet inlined, its web tiles
        removed, so it needs no network); an offline map cannot be written online.
    **build_options
        Passed to :func:`build_map` when layers are given (``title``, ``k_anonymity``,
        ``tiles``...).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ConfigError
        Build options given with a built map, or an offline map asked to be written online.
    OutputError
        An offline page still references the network (a bug).
    """
    if isinstance(map_or_layers, folium.Map):
        if build_options:
            raise ConfigError("build options can only be given with layers, not a built map")
        m = map_or_layers
        built_offline = bool(getattr(m, "_geo_crime_offline", False))
        offline = built_offline if offline is None else offline
        if offline and not built_offline:
            _set_assets(m, offline=True)
            _drop_tiles(m)
            m._geo_crime_offline = True
        elif built_offline and not offline:
            raise ConfigError("this map was built offline; rebuild it with offline=False")
    else:
        offline = True if offline is None else bool(offline)
        m = build_map(map_or_layers, offline=offline, **build_options)
    text = m.get_root().render()
    if offline:
        refs = external_references(text)
        if refs:
            raise OutputError(f"{path}: the offline map still references the network: {refs[:3]}")
    return atomic_write_text(path, text)


def _drop_tiles(m: folium.Map) -> None:
    """Remove a map's web tile layers (and their fallback: the vector land stays filled)."""
    for key, child in list(m._children.items()):
        if isinstance(child, folium.TileLayer | TileFallback):
            del m._children[key]
