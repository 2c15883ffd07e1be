"""Interactive web maps of crime measures, hot spots and forecasts (folium / Leaflet).

:func:`build_map` turns a :class:`MapLayers` bundle (the units with their measures, plus the
optional hot-spot, emerging hot spot and forecast tables and administrative outlines) into one
``folium.Map`` with a layer per result. :func:`write_map` saves it as a single HTML file.

Layers
------
Each layer can be switched on and off in the layer control (top right) and has its own legend
section (bottom right), shown only while the layer is on. Tooltips give the unit id, incident
count, severity, rate, the layer's class and the period.

=========================  ================================================================
layer                      colours
=========================  ================================================================
Severity rate (default on) sequential classes (YlOrRd) from :func:`classify_values`:
                           quintiles by default (the rate is heavily skewed), or
                           Fisher-Jenks; the static figure uses the same classes
Gi* hot and cold spots     ArcGIS confidence bins, :data:`GI_COLOURS`
LISA clusters              High-High red, Low-Low blue, Low-High light blue, High-Low pink,
                           not significant grey (GeoDa colours, :data:`LISA_COLOURS`)
Emerging hot spots         :data:`geo_crime.emerging.CATEGORY_COLOURS`
Forecast                   sequential classes (Purples) of the ``prediction`` column
LAPD divisions (on)        outline only
Reporting districts        outline only; named "(approximate)" when the layer is derived
=========================  ================================================================

Only one unit layer is visible when the map opens (the severity rate), so the browser draws one
set of polygons; every layer lives in its own Leaflet pane (``gc-<layer>``), whose SVG holds
exactly one ``path`` per feature of that layer. The map opens on the units' extent (centred on
Los Angeles before it fits them).

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
With ``offline=True`` no tile layer is added (a plain background instead) and Leaflet's
JavaScript and CSS, vendored in ``geo_crime/assets/leaflet`` (version :data:`LEAFLET_VERSION`,
BSD-2-Clause), are inlined, so the file needs no network at all. The online map loads Leaflet
from a CDN and uses OpenStreetMap tiles. Coordinates are rounded to 6 decimals and the feature
properties are trimmed to what the tooltips show: a city-wide H3 resolution-8 map (about 1,800
cells) with every layer stays well under 15 MB. Above :data:`MAX_FEATURES` units (e.g. H3
resolution 9 and finer city-wide) a :class:`LargeMapWarning` suggests a coarser resolution or a
GeoPackage export (:func:`geo_crime.export.export_layers`).

Where things are
----------------
This module
    :func:`build_map` (the map, layer by layer), :func:`write_map` (one HTML file) and the
    view defaults (:data:`LA_CENTRE`, :data:`DEFAULT_ZOOM`, :data:`MAX_FEATURES`).
:mod:`~geo_crime.maps.layers`
    :class:`MapLayers` (what a map shows) and the preparation of the units: checks,
    k-anonymity, the measure, the escaped tooltip values.
:mod:`~geo_crime.maps.classify`
    :func:`classify_values`, :class:`Classification`, :func:`sequential_colours`, the fixed
    colours (:data:`GI_COLOURS`, :data:`LISA_COLOURS`...) and the writing of numbers.
:mod:`~geo_crime.maps.draw`
    One function per layer kind (severity, Gi*, LISA, emerging, forecast, outlines), each in
    its pane (:func:`layer_pane`).
:mod:`~geo_crime.maps.legend`
    The legend and the info box.
:mod:`~geo_crime.maps.assets`
    Leaflet from the CDN or inlined (:data:`LEAFLET_VERSION`, :data:`ASSETS_DIR`), and
    :func:`external_references`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import folium
import numpy as np
from branca.element import Element

from geo_crime.errors import ConfigError, OutputError
from geo_crime.io_utils import atomic_write_text
from geo_crime.maps.assets import (
    ASSETS_DIR,
    LEAFLET_VERSION,
    _set_assets,
    external_references,
)
from geo_crime.maps.classify import (
    GI_COLOURS,
    LISA_COLOURS,
    NO_DATA_COLOUR,
    SUPPRESSED_COLOUR,
    Classification,
    Scheme,
    classify_values,
    sequential_colours,
)
from geo_crime.maps.classify import (
    SCHEMES as SCHEMES,
)
from geo_crime.maps.classify import (
    _fmt_num as _fmt_num,
)
from geo_crime.maps.draw import (
    _Canvas,
    _categorical_layer,
    _divisions_layer,
    _forecast_layer,
    _rds_layer,
    _severity_layer,
    layer_pane,
)
from geo_crime.maps.layers import (
    DEFAULT_TOOLTIP_COLUMNS as DEFAULT_TOOLTIP_COLUMNS,
)
from geo_crime.maps.layers import (
    MapLayers,
    _esc,
    _is_approximate,
    _prepare_units,
)
from geo_crime.maps.legend import _BOX_CSS, _InfoBox, _Legend

__all__ = [
    "ASSETS_DIR",
    "DEFAULT_ZOOM",
    "GI_COLOURS",
    "LA_CENTRE",
    "LEAFLET_VERSION",
    "LISA_COLOURS",
    "MAX_FEATURES",
    "NO_DATA_COLOUR",
    "SUPPRESSED_COLOUR",
    "Classification",
    "LargeMapWarning",
    "MapLayers",
    "build_map",
    "classify_values",
    "external_references",
    "layer_pane",
    "sequential_colours",
    "write_map",
]

LA_CENTRE = (34.05, -118.35)
"""Where maps open (latitude, longitude): central Los Angeles."""

DEFAULT_ZOOM = 10
"""Initial zoom level (the whole city)."""

MAX_FEATURES = 20_000
"""Units above which :func:`build_map` warns that the HTML will be large and slow."""


class LargeMapWarning(UserWarning):
    """The map has so many features that the HTML will be large and slow to open."""


def build_map(
    layers: MapLayers | Mapping[str, Any],
    *,
    offline: bool = False,
    title: str = "Los Angeles crime: severity and hot spots",
    k_anonymity: int = 3,
    scheme: Scheme = "quantiles",
    k: int = 5,
    max_features: int = MAX_FEATURES,
    precision: int = 6,
    location: Sequence[float] = LA_CENTRE,
    zoom_start: int = DEFAULT_ZOOM,
    tiles: str | None = "OpenStreetMap",
    fit_units: bool = True,
) -> folium.Map:
    """Build the interactive map of a run's results.

    Parameters
    ----------
    layers : MapLayers or dict
        The units (with ``count`` and ``severity``) and optional result tables; a dict is
        passed to :class:`MapLayers`.
    offline : bool, default False
        Inline Leaflet and use no tile layer, so the HTML works without network.
    title : str
        Shown in the info box and as the page title.
    k_anonymity : int, default 3
        Units with fewer incidents have their values hidden (shown as suppressed).
    scheme : {"quantiles", "fisherjenks"}
        Classification of the choropleths (see :func:`classify_values`); quintiles by default,
        as in :func:`geo_crime.figures.severity_choropleth`, so map and figure share classes.
    k : int, default 5
        Number of choropleth classes.
    max_features : int, default 20,000
        Above this many units a :class:`LargeMapWarning` is issued.
    precision : int, default 6
        Decimals kept in coordinates.
    location : (lat, lon)
        Initial centre (Los Angeles) before the view fits the units.
    zoom_start : int, default 10
        Initial zoom before the view fits the units.
    fit_units : bool, default True
        Open on the units' extent (a West LA study opens on West LA, not on the whole city).
    tiles : str or None, default "OpenStreetMap"
        Base map of online maps (any folium/xyzservices name, or None); offline maps have none.

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
    prepared, extras = _prepare_units(layers, k_anonymity, precision)

    m = _base_map(
        layers,
        offline=offline,
        title=title,
        precision=precision,
        location=location,
        zoom_start=zoom_start,
        tiles=tiles,
        fit_units=fit_units,
    )
    canvas = _Canvas(m, prepared, extras, k_anonymity, scheme, k)
    legend_sections = [_severity_layer(canvas)]
    for key in ("gi", "lisa", "emerging"):
        table = getattr(layers, key)
        if table is not None:
            legend_sections.append(_categorical_layer(canvas, key, table))
    if layers.forecast is not None:
        legend_sections.append(_forecast_layer(canvas, layers.forecast, layers.forecast_period))

    notes: list[str] = []
    if _is_approximate(layers.units):
        notes.append("Units are approximate (derived) reporting districts.")
    if layers.rds is not None and len(layers.rds):
        approx = _is_approximate(layers.rds)
        legend_sections.append(_rds_layer(m, layers.rds, precision, approx))
        if approx:
            notes.append("Reporting district outlines are approximate (derived).")
    if layers.divisions is not None and len(layers.divisions):
        legend_sections.append(_divisions_layer(m, layers.divisions, precision))

    _Legend(legend_sections).add_to(m)
    info = _info_html(title, layers.period, k_anonymity, notes, offline=offline)
    _InfoBox(info, offline=offline).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m._geo_crime_offline = offline  # remembered by write_map
    return m


def _base_map(
    layers: MapLayers,
    *,
    offline: bool,
    title: str,
    precision: int,
    location: Sequence[float],
    zoom_start: int,
    tiles: str | None,
    fit_units: bool,
) -> folium.Map:
    """The map before its layers: view, base tiles (online only), Leaflet, title and CSS."""
    m = folium.Map(
        location=list(location),
        zoom_start=zoom_start,
        tiles=None,
        control_scale=True,
    )
    if tiles and not offline:
        folium.TileLayer(tiles, control=False).add_to(m)
    if fit_units and len(layers.units):
        west, south, east, north = layers.units.to_crs("EPSG:4326").total_bounds
        if np.isfinite([west, south, east, north]).all():
            corners = [[south, west], [north, east]]
            m.fit_bounds(  # keep the units clear of the legend (bottom right)
                [[round(float(v), precision) for v in c] for c in corners],
                padding_top_left=(30, 30),
                padding_bottom_right=(300, 30),
            )
    _set_assets(m, offline=offline)
    m.get_root().title = _esc(title)
    m.get_root().header.add_child(Element(_BOX_CSS), name="geo_crime_css")
    return m


def _info_html(
    title: str, period: str, k_anonymity: int, notes: list[str], *, offline: bool
) -> str:
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
    if offline:
        info.append('<div class="gc-note">Offline map: no base map tiles.</div>')
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
        Self-contained HTML (inlined Leaflet, no tiles). Default: how the map was built, or
        False when building. An online map written with ``offline=True`` is converted (its
        tile layer removed, Leaflet inlined); an offline map cannot be written online.
    **build_options
        Passed to :func:`build_map` when layers are given (``title``, ``k_anonymity``...).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ConfigError
        Build options given with a built map, or an offline map asked to be written online.
    RuntimeError
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
            m._geo_crime_offline = True
        elif built_offline and not offline:
            raise ConfigError("this map was built offline; rebuild it with offline=False")
    else:
        offline = bool(offline)
        m = build_map(map_or_layers, offline=offline, **build_options)
    text = m.get_root().render()
    if offline:
        refs = external_references(text)
        if refs:
            raise OutputError(f"{path}: the offline map still references the network: {refs[:3]}")
    return atomic_write_text(path, text)
