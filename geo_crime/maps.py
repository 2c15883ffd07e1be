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
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import folium
import geopandas as gpd
import mapclassify
import numpy as np
import pandas as pd
from branca.element import Element, MacroElement
from folium.template import Template
from folium.utilities import JsCode
from matplotlib import colormaps
from matplotlib.colors import to_hex

from geo_crime.emerging import CATEGORIES, CATEGORY_COLOURS
from geo_crime.errors import ConfigError, DataError, OutputError, PrivacyError
from geo_crime.export import geojson_geometries
from geo_crime.hotspots import GI_BIN_LABELS, LISA_LABELS
from geo_crime.io_utils import atomic_write_text
from geo_crime.privacy import victim_columns

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

LEAFLET_VERSION = "1.9.4"
"""Version of the vendored Leaflet (also the CDN version of online maps)."""

ASSETS_DIR = Path(__file__).parent / "assets" / "leaflet"
"""Vendored Leaflet files (``leaflet.js``, ``leaflet.css``, ``images/``, ``LICENSE``)."""

_LEAFLET_CDN_JS = f"https://cdn.jsdelivr.net/npm/leaflet@{LEAFLET_VERSION}/dist/leaflet.js"
_LEAFLET_CDN_CSS = f"https://cdn.jsdelivr.net/npm/leaflet@{LEAFLET_VERSION}/dist/leaflet.css"

GI_COLOURS: dict[int, str] = {
    3: "#d62f27",
    2: "#ed7551",
    1: "#fab984",
    0: "#f7f7f7",
    -1: "#b5c7e8",
    -2: "#7599c9",
    -3: "#4575b5",
}
"""ArcGIS hot spot colours per Gi* bin (99/95/90% hot, not significant, 90/95/99% cold)."""

LISA_COLOURS: dict[int, str] = {
    1: "#ff0000",
    2: "#a7adf9",
    3: "#0000ff",
    4: "#f4ada8",
    0: "#eeeeee",
}
"""GeoDa LISA colours per cluster code: High-High, Low-High, Low-Low, High-Low, not sig."""

SUPPRESSED_COLOUR = "#bdbdbd"
"""Fill of units suppressed for having fewer than k incidents."""

NO_DATA_COLOUR = "#ffffff"
"""Fill of units with no value (e.g. no residents for a rate, or missing from a table)."""

Scheme = Literal["fisherjenks", "quantiles"]
SCHEMES = ("fisherjenks", "quantiles")

#: Exact Fisher-Jenks above this many values is slow in pure Python (mapclassify without numba):
#: the breaks are then computed on this many evenly spaced quantiles of the values.
_JENKS_EXACT_MAX = 500

#: Unit columns shown in tooltips when present: column -> label. ``name`` and ``area`` describe
#: the place; the others derive from incidents and are hidden for suppressed units.
DEFAULT_TOOLTIP_COLUMNS: dict[str, str] = {"name": "Name", "top_crime": "Most common crime"}
_PLACE_COLUMNS = frozenset({"name", "area", "area_name", "unit_type"})

_PANES = {
    "severity": ("gc-severity", 401),
    "gi": ("gc-gi", 402),
    "lisa": ("gc-lisa", 403),
    "emerging": ("gc-emerging", 404),
    "forecast": ("gc-forecast", 405),
    "rds": ("gc-rds", 450),
    "divisions": ("gc-divisions", 451),
}


class LargeMapWarning(UserWarning):
    """The map has so many features that the HTML will be large and slow to open."""


def layer_pane(layer: str) -> str:
    """Name of the Leaflet pane holding ``layer`` (``severity``, ``gi``, ``lisa``,
    ``emerging``, ``forecast``, ``rds`` or ``divisions``); its DOM class is
    ``leaflet-<pane>-pane``."""
    return _PANES[layer][0]


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


@dataclass
class MapLayers:
    """Everything a map can show; only ``units`` is required.

    Attributes
    ----------
    units : geopandas.GeoDataFrame
        One row per unit: ``unit_id``, geometry, ``count`` (incidents in the period, needed for
        k-anonymity), ``severity`` (severity sum) and optionally ``population``, ``area_km2``,
        ``rate``, ``severity_rate``, ``name``, ``top_crime``.
    gi : pandas.DataFrame, optional
        :func:`geo_crime.hotspots.gi_star_table` output (``unit_id``, ``gi_bin``, ``gi_z``...).
    lisa : pandas.DataFrame, optional
        :func:`geo_crime.hotspots.lisa_table` output (``unit_id``, ``cluster_code``...).
    emerging : pandas.DataFrame, optional
        ``emerging_hotspots(...).table`` (``unit_id``, ``code`` 1..17, ``category``).
    forecast : pandas.DataFrame, optional
        ``unit_id`` and ``prediction`` (next-period forecast).
    divisions : geopandas.GeoDataFrame, optional
        Division outlines (``unit_id``, optional ``name``).
    rds : geopandas.GeoDataFrame, optional
        Reporting district outlines; derived ones carry ``attrs["approximate"] = True`` or an
        ``approximate`` column.
    period : str
        Label of the analysed period (e.g. ``"2024-01-01 to 2024-08-31"``).
    forecast_period : str
        Label of the forecast period (default "next period").
    measure : str, default "severity_rate"
        Units column of the choropleth and of the tooltips' rate. :meth:`from_cube` fills
        ``severity_rate`` with :func:`geo_crime.rates.severity_rate`; when a bare units table
        lacks it, the unsmoothed severity per 1,000 residents (else per km²) over the whole
        period is used and labelled so.
    measure_label : str, optional
        Legend title of the choropleth (default: derived from ``measure``).
    tooltip_columns : mapping of str to str
        Extra unit columns shown in tooltips when present (column -> label).
    """

    units: gpd.GeoDataFrame
    gi: pd.DataFrame | None = None
    lisa: pd.DataFrame | None = None
    emerging: pd.DataFrame | None = None
    forecast: pd.DataFrame | None = None
    divisions: gpd.GeoDataFrame | None = None
    rds: gpd.GeoDataFrame | None = None
    period: str = ""
    forecast_period: str = ""
    measure: str = "severity_rate"
    measure_label: str | None = None
    tooltip_columns: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_TOOLTIP_COLUMNS)
    )

    @classmethod
    def from_cube(cls, cube: Any, **kwargs: Any) -> MapLayers:
        """Layers whose units carry a cube's totals over all its periods and its severity rate.

        The choropleth shows :func:`geo_crime.rates.severity_rate` (EB-smoothed severity per
        1,000 residents per complete period), the one rate every output of geo_crime uses.

        Parameters
        ----------
        cube : geo_crime.cube.Cube
            Space-time cube; ``count`` and ``severity`` are its per-unit totals.
        **kwargs
            Other :class:`MapLayers` fields (``gi``, ``lisa``, ``emerging``, ``forecast``,
            ``divisions``, ``rds``, ``period``...). ``period`` defaults to the cube's span.

        Returns
        -------
        MapLayers
        """
        from geo_crime.rates import severity_rate

        units = cube.units.copy()
        units["count"] = np.asarray(cube.counts).sum(axis=1).astype(np.int64)
        units["severity"] = np.asarray(cube.severity, dtype=float).sum(axis=1)
        if "severity_rate" not in units.columns:
            rate = severity_rate(cube)
            units["severity_rate"] = rate.values
            kwargs.setdefault("measure_label", rate.label)
        if "period" not in kwargs and len(cube.periods):
            first, last = cube.periods[0], cube.periods[-1]
            from geo_crime.cube import FREQUENCIES

            word = f"{FREQUENCIES.get(cube.freq, 'period')}s"
            complete = int((np.asarray(cube.complete).all(axis=0)).sum())
            kwargs["period"] = (
                f"{first:%Y-%m-%d} to {last:%Y-%m-%d} ({len(cube.periods)} {word}, "
                f"{complete} completely recorded)"
            )
        return cls(units=units, **kwargs)

    @classmethod
    def coerce(cls, layers: MapLayers | Mapping[str, Any]) -> MapLayers:
        """A :class:`MapLayers` from itself or from a dict of its fields.

        Raises
        ------
        ConfigError
            Unknown keys in the dict.
        """
        if isinstance(layers, cls):
            return layers
        if not isinstance(layers, Mapping):
            raise ConfigError(f"layers must be MapLayers or a dict, got {type(layers).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(layers) - known)
        if unknown:
            raise ConfigError(f"unknown map layer(s) {unknown}; known: {sorted(known)}")
        return cls(**layers)


# --------------------------------------------------------------------------------------------
# classification and colours
# --------------------------------------------------------------------------------------------


@dataclass
class Classification:
    """Classes of a numeric variable.

    Attributes
    ----------
    codes : numpy.ndarray of int
        Class index per value (0 = lowest); -1 where the value is missing.
    bins : numpy.ndarray
        Upper bound of each class (a value ``v`` is in the first class with ``v <= bin``).
    minimum : float
        Smallest classified value (lower bound of the first class).
    scheme : str
        Scheme used.
    """

    codes: np.ndarray
    bins: np.ndarray
    minimum: float
    scheme: str

    @property
    def k(self) -> int:
        """Number of classes."""
        return len(self.bins)

    def labels(self) -> list[str]:
        """``"low – high"`` label per class."""
        if not len(self.bins):
            return []
        lows = [self.minimum, *self.bins[:-1]]
        return [f"{_fmt_num(lo)} – {_fmt_num(hi)}" for lo, hi in zip(lows, self.bins, strict=True)]


def classify_values(values: Any, *, scheme: Scheme = "fisherjenks", k: int = 5) -> Classification:
    """Classify values for a choropleth with mapclassify.

    Parameters
    ----------
    values : array_like
        Numbers; NaN (and infinities) are left unclassified (code -1).
    scheme : {"fisherjenks", "quantiles"}
        Fisher-Jenks natural breaks (default) or quantiles. Above 500 values the Fisher-Jenks
        breaks are computed on 500 evenly spaced quantiles of the values (deterministic, and
        fast without numba).
    k : int, default 5
        Number of classes (fewer when there are fewer distinct values).

    Returns
    -------
    Classification

    Raises
    ------
    ConfigError
        Unknown scheme or ``k < 1``.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown classification scheme {scheme!r}; choose from {SCHEMES}")
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    y = np.asarray(values, dtype=float)
    ok = np.isfinite(y)
    codes = np.full(y.shape, -1, dtype=int)
    if not ok.any():
        return Classification(codes, np.array([]), math.nan, scheme)
    v = y[ok]
    distinct = np.unique(v)
    k_eff = min(k, len(distinct))
    if k_eff == len(distinct):
        bins = distinct
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if scheme == "quantiles":
                bins = mapclassify.Quantiles(v, k=k_eff).bins
            else:
                sample = v
                if len(v) > _JENKS_EXACT_MAX:
                    sample = np.quantile(v, np.linspace(0.0, 1.0, _JENKS_EXACT_MAX))
                bins = mapclassify.FisherJenks(sample, k=k_eff).bins
        bins = np.unique(np.asarray(bins, dtype=float))
        bins[-1] = max(bins[-1], v.max())
    codes[ok] = np.minimum(np.searchsorted(bins, v, side="left"), len(bins) - 1)
    return Classification(codes, bins, float(v.min()), scheme)


def sequential_colours(k: int, cmap: str = "YlOrRd") -> list[str]:
    """``k`` hex colours from light to dark along a matplotlib colormap."""
    if k <= 0:
        return []
    cm = colormaps[cmap]
    positions = [0.5] if k == 1 else np.linspace(0.12, 0.95, k)
    return [to_hex(cm(float(p))) for p in positions]


def _fmt_num(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    ax = abs(x)
    if ax >= 100:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:,.1f}"
    return f"{x:,.2f}"


# --------------------------------------------------------------------------------------------
# preparing the units
# --------------------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    """HTML-escape a data value (quotes too) for tooltips, legends and layer names."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True)


def _is_approximate(gdf: pd.DataFrame | None) -> bool:
    if gdf is None:
        return False
    if bool(gdf.attrs.get("approximate", False)):
        return True
    return "approximate" in gdf.columns and bool(
        gdf["approximate"].fillna(False).astype(bool).any()
    )


def _area_km2(units: gpd.GeoDataFrame) -> np.ndarray:
    if "area_km2" in units.columns:
        return pd.to_numeric(units["area_km2"], errors="coerce").to_numpy(dtype=float)
    # California Albers (equal area), fine for Los Angeles
    return units.geometry.to_crs("EPSG:3310").area.to_numpy() / 1e6


def _rates(units: gpd.GeoDataFrame, numerator: np.ndarray) -> tuple[np.ndarray, str]:
    if "population" in units.columns:
        pop = pd.to_numeric(units["population"], errors="coerce").to_numpy(dtype=float)
        if np.nansum(pop) > 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(pop > 0, numerator / pop * 1000.0, np.nan), "per 1,000 residents"
    area = _area_km2(units)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area > 0, numerator / area, np.nan), "per km²"


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)


@dataclass
class _Units:
    """Units ready for mapping: geometry features and per-unit display values."""

    ids: list[str]
    features: list[dict]  # {"type", "id", "geometry"} shared by every layer
    base: list[dict]  # tooltip properties shared by every layer
    suppressed: np.ndarray
    measure: np.ndarray
    measure_label: str
    rate_label: str


def _prepare_units(
    layers: MapLayers, k_anonymity: int, precision: int
) -> tuple[_Units, list[tuple[str, str]]]:
    units = layers.units
    if not isinstance(units, gpd.GeoDataFrame):
        raise DataError("MapLayers.units must be a GeoDataFrame")
    for column in ("unit_id", "count"):
        if column not in units.columns:
            raise DataError(
                f"map units need a {column!r} column"
                + (" (incidents per unit, for k-anonymity)" if column == "count" else "")
            )
    if units["unit_id"].duplicated().any():
        raise DataError("map units have duplicated unit_id values")
    if units.crs is not None and not units.crs.equals("EPSG:4326"):
        units = units.to_crs("EPSG:4326")
    ids = units["unit_id"].astype(str).tolist()
    count = _column(units, "count")
    severity = (
        _column(units, "severity") if "severity" in units.columns else np.full(len(ids), np.nan)
    )
    suppressed = ~(count >= k_anonymity)
    if "suppressed" in units.columns:  # secondary suppression decided upstream
        suppressed |= units["suppressed"].astype("boolean").fillna(True).to_numpy(dtype=bool)

    if layers.measure in units.columns:
        measure = _column(units, layers.measure)
        measure_label = layers.measure_label or layers.measure.replace("_", " ").capitalize()
    elif layers.measure == "severity_rate":
        measure, basis = _rates(units, severity)
        measure_label = layers.measure_label or f"Severity {basis} (whole period, unsmoothed)"
    else:
        raise DataError(f"map units have no {layers.measure!r} column")
    # the tooltip's rate is the choropleth's rate: one number, one label, everywhere
    if layers.measure == "severity_rate":
        rate, rate_label = measure, measure_label
    elif "rate" in units.columns:
        rate, rate_label = _column(units, "rate"), "Rate"
    else:
        rate, rate_basis = _rates(units, count)
        rate_label = f"Incidents {rate_basis} (whole period)"

    victims = victim_columns(layers.tooltip_columns)
    if victims:
        raise PrivacyError(f"victim-level columns {victims} cannot be shown on a public map")
    period = _esc(layers.period)
    extras = [(c, a) for c, a in layers.tooltip_columns.items() if c in units.columns]
    extra_values = {c: units[c].tolist() for c, _ in extras}
    hidden = "suppressed"
    geoms = geojson_geometries(units.geometry.to_numpy(), precision=precision)
    features, base = [], []
    for i, uid in enumerate(ids):
        features.append({"type": "Feature", "id": uid, "geometry": geoms[i]})
        small = bool(suppressed[i])
        props = {
            "u": _esc(uid),
            "n": hidden if small else _fmt_num(count[i]),
            "s": hidden if small else _fmt_num(severity[i]),
            "r": hidden if small else _fmt_num(rate[i]),
        }
        for j, (column, _alias) in enumerate(extras):
            value = extra_values[column][i]
            props[f"x{j}"] = hidden if small and column not in _PLACE_COLUMNS else _esc(value)
        props["p"] = period
        base.append(props)
    return _Units(ids, features, base, suppressed, measure, measure_label, rate_label), extras


def _aligned(table: pd.DataFrame, ids: list[str], column: str, what: str) -> np.ndarray:
    if "unit_id" not in table.columns or column not in table.columns:
        raise DataError(f"the {what} table needs 'unit_id' and {column!r} columns")
    keyed = pd.Series(table[column].to_numpy(), index=table["unit_id"].astype(str).to_numpy())
    keyed = keyed[~keyed.index.duplicated()]
    return keyed.reindex(ids).to_numpy()


# --------------------------------------------------------------------------------------------
# map elements
# --------------------------------------------------------------------------------------------

_BOX_CSS = """
<style>
.gc-box {background: rgba(255,255,255,0.93); padding: 6px 9px; border-radius: 4px;
  font: 12px/1.35 "Helvetica Neue", Arial, Helvetica, sans-serif; color: #222;
  box-shadow: 0 1px 5px rgba(0,0,0,0.35); max-width: 300px;}
.gc-box h4 {margin: 0 0 4px; font-size: 13px;}
.gc-legend-section + .gc-legend-section {margin-top: 8px;}
.gc-item {display: flex; align-items: center; margin: 1px 0;}
.gc-swatch {display: inline-block; width: 16px; height: 12px; margin-right: 6px; flex: none;
  border: 1px solid #888;}
.gc-line {display: inline-block; width: 16px; margin-right: 6px; flex: none; height: 0;}
.gc-note {margin-top: 4px; color: #444; font-size: 11px;}
.gc-title {font-weight: bold; font-size: 14px;}
.leaflet-container.gc-offline {background: #f4f3ef;}
</style>
"""


class _Legend(MacroElement):
    """A legend control whose sections follow their layers' visibility."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            var sections = [
            {%- for layer, content in this.sections %}
                {layer: {{ layer }}, html: {{ content|tojson }}},
            {%- endfor %}
            ];
            var legend = L.control({position: "bottomright"});
            legend.onAdd = function () {
                var div = L.DomUtil.create("div", "gc-box gc-legend");
                sections.forEach(function (s) {
                    s.el = L.DomUtil.create("div", "gc-legend-section", div);
                    s.el.innerHTML = s.html;
                });
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            legend.addTo(map);
            function refresh() {
                sections.forEach(function (s) {
                    s.el.style.display = map.hasLayer(s.layer) ? "" : "none";
                });
            }
            map.on("overlayadd overlayremove", refresh);
            refresh();
        })();
        {% endmacro %}
        """
    )

    def __init__(self, sections: list[tuple[str, str]]) -> None:
        super().__init__()
        self._name = "GeoCrimeLegend"
        self.sections = sections  # (layer JS variable, escaped HTML)


class _InfoBox(MacroElement):
    """A static control with the title, period and notes (already escaped HTML)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var info = L.control({position: "bottomleft"});
            info.onAdd = function () {
                var div = L.DomUtil.create("div", "gc-box gc-info");
                div.innerHTML = {{ this.content|tojson }};
                L.DomEvent.disableClickPropagation(div);
                return div;
            };
            info.addTo({{ this._parent.get_name() }});
            {%- if this.offline %}
            {{ this._parent.get_name() }}.getContainer().classList.add("gc-offline");
            {%- endif %}
        })();
        {% endmacro %}
        """
    )

    def __init__(self, content: str, *, offline: bool) -> None:
        super().__init__()
        self._name = "GeoCrimeInfo"
        self.content = content
        self.offline = offline


def _swatch(colour: str, label: str) -> str:
    return (
        f'<div class="gc-item"><span class="gc-swatch" style="background:{colour}"></span>'
        f"{label}</div>"
    )


def _line(colour: str, label: str, *, dashed: bool = False) -> str:
    style = "dashed" if dashed else "solid"
    return (
        f'<div class="gc-item"><span class="gc-line" style="border-top:2px {style} {colour}">'
        f"</span>{label}</div>"
    )


def _section(title: str, items: list[str], note: str = "") -> str:
    body = "".join(items)
    extra = f'<div class="gc-note">{note}</div>' if note else ""
    return f"<h4>{title}</h4>{body}{extra}"


def _fill_style(palette: list[str]) -> JsCode:
    return JsCode(
        "function (feature) {\n"
        f"    var palette = {json.dumps(palette)};\n"
        "    return {fillColor: palette[feature.properties.c], fillOpacity: 0.78,\n"
        "            color: '#5f5f5f', weight: 0.4, opacity: 0.7};\n"
        "}"
    )


def _outline_style(colour: str, weight: float, dash: str | None) -> JsCode:
    dash_js = json.dumps(dash) if dash else "null"
    return JsCode(
        "function (feature) {\n"
        f"    return {{fill: false, color: {json.dumps(colour)}, weight: {weight},\n"
        f"            opacity: 0.9, dashArray: {dash_js}}};\n"
        "}"
    )


def _add_pane(m: folium.Map, layer: str) -> str:
    name, z = _PANES[layer]
    folium.map.CustomPane(name, z_index=z, pointer_events=True).add_to(m)
    return name


# --------------------------------------------------------------------------------------------
# build and write
# --------------------------------------------------------------------------------------------


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

    m = folium.Map(
        location=list(location),
        zoom_start=zoom_start,
        tiles=None,
        control_scale=True,
    )
    if tiles and not offline:
        folium.TileLayer(tiles, control=False).add_to(m)
    if fit_units and n_units:
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

    base_fields = ["u", "n", "s", "r", *[f"x{j}" for j in range(len(extras))]]
    base_aliases = [
        "Unit",
        "Incidents",
        "Severity",
        _esc(prepared.rate_label),
        *[_esc(a) for _, a in extras],
    ]
    legend_sections: list[tuple[str, str]] = []
    small_note = (
        f"Grey: fewer than {k_anonymity} incidents, values suppressed." if k_anonymity > 0 else ""
    )

    def unit_layer(
        key: str,
        name: str,
        labels: list[str],
        classes: np.ndarray,
        palette: list[str],
        class_alias: str,
        *,
        show: bool,
        period: str | None = None,
    ) -> folium.GeoJson:
        # a suppressed unit shows no class of any layer: its class could be solved for its value
        hidden = len(palette)
        palette = [*palette, SUPPRESSED_COLOUR]
        features = []
        for i, feature in enumerate(prepared.features):
            props = dict(prepared.base[i])
            small = bool(prepared.suppressed[i])
            props["v"] = "suppressed" if small else _esc(labels[i])
            props["c"] = hidden if small else int(classes[i])
            if period is not None:
                props["p"] = period
            features.append({**feature, "properties": props})
        pane = _add_pane(m, key)
        layer = folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name=_esc(name),
            show=show,
            pane=pane,
            style=_fill_style(palette),
            tooltip=folium.GeoJsonTooltip(
                fields=[*base_fields, "v", "p"],
                aliases=[*base_aliases, _esc(class_alias), "Period"],
                sticky=True,
            ),
        )
        layer.add_to(m)
        return layer

    # severity-rate choropleth --------------------------------------------------------------
    measure = np.where(prepared.suppressed, np.nan, prepared.measure)
    cls = classify_values(measure, scheme=scheme, k=k)
    colours = sequential_colours(cls.k, "YlOrRd")
    palette = [*colours, SUPPRESSED_COLOUR, NO_DATA_COLOUR]
    class_labels = cls.labels()
    codes = np.where(cls.codes >= 0, cls.codes, np.where(prepared.suppressed, cls.k, cls.k + 1))
    labels = [
        "suppressed" if prepared.suppressed[i] else (class_labels[c] if c < cls.k else "no data")
        for i, c in enumerate(codes)
    ]
    label = _esc(prepared.measure_label)
    layer = unit_layer(
        "severity",
        f"{prepared.measure_label} (classes)",
        labels,
        codes,
        palette,
        f"{prepared.measure_label} class",
        show=True,
    )
    items = [_swatch(c, _esc(lbl)) for c, lbl in zip(colours, class_labels, strict=True)]
    if prepared.suppressed.any():
        items.append(_swatch(SUPPRESSED_COLOUR, f"Suppressed (&lt; {k_anonymity} incidents)"))
    if (codes == cls.k + 1).any():
        items.append(_swatch(NO_DATA_COLOUR, "No data"))
    scheme_name = "Fisher-Jenks natural breaks" if scheme == "fisherjenks" else "quantiles"
    legend_sections.append(
        (layer.get_name(), _section(label, items, f"Classes: {scheme_name}. {small_note}"))
    )

    suppressed_items = (
        [_swatch(SUPPRESSED_COLOUR, f"Suppressed (&lt; {k_anonymity} incidents)")]
        if prepared.suppressed.any()
        else []
    )

    # Gi* --------------------------------------------------------------------------------------
    if layers.gi is not None:
        # the confidence bin only: exact z-scores of the published units would let a
        # least-squares solve recover suppressed values (see geo_crime.privacy)
        bins = _aligned(layers.gi, prepared.ids, "gi_bin", "Gi*")
        order = [3, 2, 1, 0, -1, -2, -3]
        palette = [GI_COLOURS[b] for b in order] + [NO_DATA_COLOUR]
        codes = np.array(
            [order.index(int(b)) if pd.notna(b) and int(b) in order else len(order) for b in bins]
        )
        labels = [GI_BIN_LABELS[order[c]] if c < len(order) else "no data" for c in codes]
        layer = unit_layer(
            "gi", "Gi* hot and cold spots", labels, codes, palette, "Gi* bin", show=False
        )
        items = [_swatch(GI_COLOURS[b], _esc(GI_BIN_LABELS[b])) for b in order]
        items += suppressed_items
        legend_sections.append((layer.get_name(), _section("Getis-Ord Gi* hot spots", items)))

    # LISA -------------------------------------------------------------------------------------
    if layers.lisa is not None:
        cluster = _aligned(layers.lisa, prepared.ids, "cluster_code", "LISA")
        order = [1, 3, 2, 4, 0]
        palette = [LISA_COLOURS[c] for c in order] + [NO_DATA_COLOUR]
        codes = np.array(
            [
                order.index(int(c)) if pd.notna(c) and int(c) in order else len(order)
                for c in cluster
            ]
        )
        labels = [LISA_LABELS[order[c]] if c < len(order) else "no data" for c in codes]
        layer = unit_layer(
            "lisa", "LISA clusters", labels, codes, palette, "LISA cluster", show=False
        )
        items = [_swatch(LISA_COLOURS[c], LISA_LABELS[c]) for c in order] + suppressed_items
        legend_sections.append((layer.get_name(), _section("Local Moran's I (LISA)", items)))

    # emerging hot spots -------------------------------------------------------------------
    if layers.emerging is not None:
        code = _aligned(layers.emerging, prepared.ids, "code", "emerging hot spot")
        order = sorted(CATEGORY_COLOURS)
        palette = [CATEGORY_COLOURS[c] for c in order] + [NO_DATA_COLOUR]
        codes = np.array(
            [order.index(int(c)) if pd.notna(c) and int(c) in order else len(order) for c in code]
        )
        labels = [CATEGORIES[order[c]] if c < len(order) else "no data" for c in codes]
        layer = unit_layer(
            "emerging", "Emerging hot spots", labels, codes, palette, "Pattern", show=False
        )
        present = sorted({order[c] for c in codes if c < len(order)})
        items = [_swatch(CATEGORY_COLOURS[c], CATEGORIES[c]) for c in present]
        items += suppressed_items
        legend_sections.append((layer.get_name(), _section("Emerging hot spots", items)))

    # forecast ---------------------------------------------------------------------------------
    if layers.forecast is not None:
        pred = pd.to_numeric(
            pd.Series(_aligned(layers.forecast, prepared.ids, "prediction", "forecast")),
            errors="coerce",
        ).to_numpy(dtype=float)
        pred = np.where(prepared.suppressed, np.nan, pred)
        fcls = classify_values(pred, scheme=scheme, k=k)
        colours = sequential_colours(fcls.k, "Purples")
        palette = [*colours, NO_DATA_COLOUR]
        codes = np.where(fcls.codes >= 0, fcls.codes, fcls.k)
        labels = [_fmt_num(p) if np.isfinite(p) else "no data" for p in pred]
        fperiod = _esc(layers.forecast_period or "next period")
        layer = unit_layer(
            "forecast",
            f"Forecast: {layers.forecast_period or 'next period'}",
            labels,
            codes,
            palette,
            "Predicted",
            show=False,
            period=fperiod,
        )
        items = [_swatch(c, _esc(lbl)) for c, lbl in zip(colours, fcls.labels(), strict=True)]
        if (codes == fcls.k).any():
            items.append(_swatch(NO_DATA_COLOUR, "No data"))
        items += suppressed_items
        legend_sections.append(
            (layer.get_name(), _section(f"Forecast ({fperiod})", items, "Predicted value."))
        )

    # outlines ---------------------------------------------------------------------------------
    notes: list[str] = []
    if _is_approximate(layers.units):
        notes.append("Units are approximate (derived) reporting districts.")
    if layers.rds is not None and len(layers.rds):
        approx = _is_approximate(layers.rds)
        name = "Reporting districts (approximate)" if approx else "Reporting districts"
        layer = _outline_layer(m, "rds", layers.rds, name, "#555555", 0.8, "4 3", False, precision)
        note = (
            "Approximate: derived from incident locations, not official boundaries."
            if approx
            else ""
        )
        legend_sections.append(
            (
                layer.get_name(),
                _section(_esc(name), [_line("#555555", _esc(name), dashed=True)], note),
            )
        )
        if approx:
            notes.append("Reporting district outlines are approximate (derived).")
    if layers.divisions is not None and len(layers.divisions):
        layer = _outline_layer(
            m,
            "divisions",
            layers.divisions,
            "LAPD divisions",
            "#1a1a1a",
            1.6,
            None,
            True,
            precision,
        )
        legend_sections.append(
            (layer.get_name(), _section("LAPD divisions", [_line("#1a1a1a", "Division boundary")]))
        )

    _Legend(legend_sections).add_to(m)
    info = [f'<div class="gc-title">{_esc(title)}</div>']
    if layers.period:
        info.append(f"<div>Period: {_esc(layers.period)}</div>")
    if k_anonymity > 0:
        info.append(
            f'<div class="gc-note">Privacy: units with fewer than {k_anonymity} incidents are '
            "suppressed (counts, severity and rates hidden).</div>"
        )
    info.extend(f'<div class="gc-note">{_esc(n)}</div>' for n in notes)
    if offline:
        info.append('<div class="gc-note">Offline map: no base map tiles.</div>')
    _InfoBox("".join(info), offline=offline).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m._geo_crime_offline = offline  # remembered by write_map
    return m


def _outline_layer(
    m: folium.Map,
    key: str,
    table: gpd.GeoDataFrame,
    name: str,
    colour: str,
    weight: float,
    dash: str | None,
    show: bool,
    precision: int,
) -> folium.GeoJson:
    if table.crs is not None and not table.crs.equals("EPSG:4326"):
        table = table.to_crs("EPSG:4326")
    if "name" in table.columns:
        names = table["name"].tolist()
    elif "unit_id" in table.columns:
        names = table["unit_id"].tolist()
    else:
        names = [str(i) for i in range(len(table))]
    ids = table["unit_id"].astype(str).tolist() if "unit_id" in table.columns else None
    geoms = geojson_geometries(table.geometry.to_numpy(), precision=precision)
    features = []
    for i, geom in enumerate(geoms):
        feature: dict[str, Any] = {"type": "Feature"}
        if ids is not None:
            feature["id"] = ids[i]
        feature["geometry"] = geom
        feature["properties"] = {"nm": _esc(names[i]), "u": _esc(ids[i] if ids else names[i])}
        features.append(feature)
    pane = _add_pane(m, key)
    layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=_esc(name),
        show=show,
        pane=pane,
        style=_outline_style(colour, weight, dash),
        tooltip=folium.GeoJsonTooltip(fields=["nm", "u"], aliases=["Name", "Id"], sticky=True),
    )
    layer.add_to(m)
    return layer


# --------------------------------------------------------------------------------------------
# assets
# --------------------------------------------------------------------------------------------

_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)
_CSS_URL = re.compile(r"url\((images/[A-Za-z0-9_.-]+\.png)\)")


def _inline_leaflet() -> str:
    """``<style>`` and ``<script>`` elements holding the vendored Leaflet."""
    js = _SOURCE_MAP.sub("", (ASSETS_DIR / "leaflet.js").read_text(encoding="utf-8"))
    css = (ASSETS_DIR / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(match: re.Match) -> str:
        data = base64.b64encode((ASSETS_DIR / match.group(1)).read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    css = _CSS_URL.sub(data_uri, css)
    js = js.replace("</script", "<\\/script")
    css = css.replace("</style", "<\\/style")
    return (
        f"<style>/* Leaflet {LEAFLET_VERSION} (BSD-2-Clause) */\n{css}</style>\n"
        f"<script>/* Leaflet {LEAFLET_VERSION} (BSD-2-Clause, (c) Volodymyr Agafonkin) */\n"
        f"{js}</script>\n"
    )


def _set_assets(m: folium.Map, *, offline: bool) -> None:
    """Use only Leaflet: inlined when offline, from the CDN otherwise."""
    root = m.get_root()
    for name in ("leaflet", "jquery", "bootstrap", "awesome_markers"):
        root.header._children.pop(name, None)
    for name in (
        "leaflet_css",
        "bootstrap_css",
        "glyphicons_css",
        "awesome_markers_font_css",
        "awesome_markers_css",
        "awesome_rotate_css",
    ):
        root.header._children.pop(name, None)
    if offline:
        m.default_js = []
        m.default_css = []
        root.header.add_child(Element(_inline_leaflet()), name="geo_crime_leaflet", index=0)
        for key, child in list(m._children.items()):
            if isinstance(child, folium.TileLayer):
                del m._children[key]
    else:
        m.default_js = [("leaflet", _LEAFLET_CDN_JS)]
        m.default_css = [("leaflet_css", _LEAFLET_CDN_CSS)]
        root.header._children.pop("geo_crime_leaflet", None)


_EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//|@import""",
    re.IGNORECASE,
)


def external_references(text: str) -> list[str]:
    """Network references in an HTML page: ``<script src>``, ``<link href>``, ``<img src>``,
    ``<iframe src>`` pointing to ``http(s)://`` or ``//``, CSS ``url(http...)`` and
    ``@import``. An offline map has none."""
    return [m.group(0) for m in _EXTERNAL.finditer(text)]


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
