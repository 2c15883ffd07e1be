"""Drawing the layers onto the map: one function per layer kind, each giving its legend section.

Every layer lives in its own Leaflet pane (:func:`layer_pane`, ``gc-<layer>``), stacked in the
order of :data:`_PANES` (outlines above the unit layers). The unit layers share the units'
features and tooltip values (a :class:`_Canvas`) and differ in the class each unit gets:

* :func:`_severity_layer`: sequential classes of the choropleth measure (YlOrRd);
* :func:`_categorical_layer`: the Gi* bins, the LISA clusters and the emerging hot spot
  categories, described by :data:`_CATEGORICAL`;
* :func:`_forecast_layer`: sequential classes of the ``prediction`` column (Purples).

A suppressed unit (fewer than ``k_anonymity`` incidents) shows no class of any layer: its class
could be solved for its value. :func:`_outline_layer` draws the reporting districts and the LAPD
divisions as outlines. Each function adds its layer to the map and returns its legend section as
``(layer JS variable, section HTML)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium.utilities import JsCode

from geo_crime.emerging import CATEGORIES, CATEGORY_COLOURS
from geo_crime.export import geojson_geometries
from geo_crime.hotspots import GI_BIN_LABELS, LISA_LABELS
from geo_crime.maps.classify import (
    GI_COLOURS,
    LISA_COLOURS,
    NO_DATA_COLOUR,
    SUPPRESSED_COLOUR,
    Scheme,
    _fmt_num,
    classify_values,
    sequential_colours,
)
from geo_crime.maps.layers import _aligned, _esc, _Units
from geo_crime.maps.legend import _line, _section, _swatch

_PANES = {
    "severity": ("gc-severity", 401),
    "gi": ("gc-gi", 402),
    "lisa": ("gc-lisa", 403),
    "emerging": ("gc-emerging", 404),
    "forecast": ("gc-forecast", 405),
    "rds": ("gc-rds", 450),
    "divisions": ("gc-divisions", 451),
}

#: A legend section: the JavaScript variable of its layer and the section's HTML.
Section = tuple[str, str]


def layer_pane(layer: str) -> str:
    """Name of the Leaflet pane holding ``layer`` (``severity``, ``gi``, ``lisa``,
    ``emerging``, ``forecast``, ``rds`` or ``divisions``); its DOM class is
    ``leaflet-<pane>-pane``."""
    return _PANES[layer][0]


def _add_pane(m: folium.Map, layer: str) -> str:
    name, z = _PANES[layer]
    folium.map.CustomPane(name, z_index=z, pointer_events=True).add_to(m)
    return name


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


# --------------------------------------------------------------------------------------------
# unit layers
# --------------------------------------------------------------------------------------------


@dataclass
class _Canvas:
    """The map being built and what all its unit layers share."""

    m: folium.Map
    units: _Units
    extras: list[tuple[str, str]]  # extra tooltip columns shown: (column, label)
    k_anonymity: int
    scheme: Scheme
    k: int
    fields: list[str] = field(init=False)  # tooltip fields before the layer's class and period
    aliases: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.fields = ["u", "n", "s", "r", *[f"x{j}" for j in range(len(self.extras))]]
        self.aliases = [
            "Unit",
            "Incidents",
            "Severity",
            _esc(self.units.rate_label),
            *[_esc(a) for _, a in self.extras],
        ]

    def suppressed_items(self) -> list[str]:
        """The legend entry of suppressed units, when there are any."""
        if not self.units.suppressed.any():
            return []
        return [_swatch(SUPPRESSED_COLOUR, f"Suppressed (&lt; {self.k_anonymity} incidents)")]


def _unit_layer(
    canvas: _Canvas,
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
    """Add a layer of the units filled by ``classes`` (indices into ``palette``)."""
    prepared = canvas.units
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
    pane = _add_pane(canvas.m, key)
    layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=_esc(name),
        show=show,
        pane=pane,
        style=_fill_style(palette),
        tooltip=folium.GeoJsonTooltip(
            fields=[*canvas.fields, "v", "p"],
            aliases=[*canvas.aliases, _esc(class_alias), "Period"],
            sticky=True,
        ),
    )
    layer.add_to(canvas.m)
    return layer


def _severity_layer(canvas: _Canvas) -> Section:
    """The choropleth of the measure (shown when the map opens)."""
    prepared, k_anonymity, scheme = canvas.units, canvas.k_anonymity, canvas.scheme
    measure = np.where(prepared.suppressed, np.nan, prepared.measure)
    cls = classify_values(measure, scheme=scheme, k=canvas.k)
    colours = sequential_colours(cls.k, "YlOrRd")
    palette = [*colours, SUPPRESSED_COLOUR, NO_DATA_COLOUR]
    class_labels = cls.labels()
    codes = np.where(cls.codes >= 0, cls.codes, np.where(prepared.suppressed, cls.k, cls.k + 1))
    labels = [
        "suppressed" if prepared.suppressed[i] else (class_labels[c] if c < cls.k else "no data")
        for i, c in enumerate(codes)
    ]
    label = _esc(prepared.measure_label)
    layer = _unit_layer(
        canvas,
        "severity",
        f"{prepared.measure_label} (classes)",
        labels,
        codes,
        palette,
        f"{prepared.measure_label} class",
        show=True,
    )
    items = [_swatch(c, _esc(lbl)) for c, lbl in zip(colours, class_labels, strict=True)]
    items += canvas.suppressed_items()
    if (codes == cls.k + 1).any():
        items.append(_swatch(NO_DATA_COLOUR, "No data"))
    scheme_name = "Fisher-Jenks natural breaks" if scheme == "fisherjenks" else "quantiles"
    small_note = (
        f"Grey: fewer than {k_anonymity} incidents, values suppressed." if k_anonymity > 0 else ""
    )
    return layer.get_name(), _section(label, items, f"Classes: {scheme_name}. {small_note}")


@dataclass(frozen=True)
class _Categorical:
    """A layer of the units by a result table's category code."""

    column: str  # the code column of the table
    what: str  # the table, in error messages
    order: tuple[int, ...]  # codes in legend (and palette) order
    colours: Mapping[int, str]
    names: Mapping[int, str]
    name: str  # in the layer control
    class_alias: str  # in the tooltips
    title: str  # of the legend section
    only_present: bool = False  # the legend lists only the codes some unit has


_CATEGORICAL = {
    # the confidence bin only: exact z-scores of the published units would let a
    # least-squares solve recover suppressed values (see geo_crime.privacy)
    "gi": _Categorical(
        "gi_bin",
        "Gi*",
        (3, 2, 1, 0, -1, -2, -3),
        GI_COLOURS,
        GI_BIN_LABELS,
        "Gi* hot and cold spots",
        "Gi* bin",
        "Getis-Ord Gi* hot spots",
    ),
    "lisa": _Categorical(
        "cluster_code",
        "LISA",
        (1, 3, 2, 4, 0),
        LISA_COLOURS,
        LISA_LABELS,
        "LISA clusters",
        "LISA cluster",
        "Local Moran's I (LISA)",
    ),
    "emerging": _Categorical(
        "code",
        "emerging hot spot",
        tuple(sorted(CATEGORY_COLOURS)),
        CATEGORY_COLOURS,
        CATEGORIES,
        "Emerging hot spots",
        "Pattern",
        "Emerging hot spots",
        only_present=True,
    ),
}
"""The categorical unit layers (Gi*, LISA, emerging hot spots), by layer key."""


def _categorical_layer(canvas: _Canvas, key: str, table: pd.DataFrame) -> Section:
    """The layer ``key`` of :data:`_CATEGORICAL` from its result table (hidden at first)."""
    spec = _CATEGORICAL[key]
    order = list(spec.order)
    values = _aligned(table, canvas.units.ids, spec.column, spec.what)
    palette = [spec.colours[c] for c in order] + [NO_DATA_COLOUR]
    codes = np.array(
        [order.index(int(v)) if pd.notna(v) and int(v) in order else len(order) for v in values]
    )
    labels = [spec.names[order[c]] if c < len(order) else "no data" for c in codes]
    layer = _unit_layer(
        canvas, key, spec.name, labels, codes, palette, spec.class_alias, show=False
    )
    shown = order
    if spec.only_present:
        present = {order[c] for c in codes if c < len(order)}
        shown = [c for c in order if c in present]
    items = [_swatch(spec.colours[c], _esc(spec.names[c])) for c in shown]
    items += canvas.suppressed_items()
    return layer.get_name(), _section(spec.title, items)


def _forecast_layer(canvas: _Canvas, table: pd.DataFrame, forecast_period: str) -> Section:
    """Classes of the predicted values (hidden at first)."""
    prepared = canvas.units
    pred = pd.to_numeric(
        pd.Series(_aligned(table, prepared.ids, "prediction", "forecast")),
        errors="coerce",
    ).to_numpy(dtype=float)
    pred = np.where(prepared.suppressed, np.nan, pred)
    fcls = classify_values(pred, scheme=canvas.scheme, k=canvas.k)
    colours = sequential_colours(fcls.k, "Purples")
    palette = [*colours, NO_DATA_COLOUR]
    codes = np.where(fcls.codes >= 0, fcls.codes, fcls.k)
    labels = [_fmt_num(p) if np.isfinite(p) else "no data" for p in pred]
    fperiod = _esc(forecast_period or "next period")
    layer = _unit_layer(
        canvas,
        "forecast",
        f"Forecast: {forecast_period or 'next period'}",
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
    items += canvas.suppressed_items()
    return layer.get_name(), _section(f"Forecast ({fperiod})", items, "Predicted value.")


# --------------------------------------------------------------------------------------------
# outlines
# --------------------------------------------------------------------------------------------


def _rds_layer(m: folium.Map, rds: gpd.GeoDataFrame, precision: int, approx: bool) -> Section:
    """Reporting district outlines (dashed, hidden at first)."""
    name = "Reporting districts (approximate)" if approx else "Reporting districts"
    layer = _outline_layer(m, "rds", rds, name, "#555555", 0.8, "4 3", False, precision)
    note = (
        "Approximate: derived from incident locations, not official boundaries." if approx else ""
    )
    return layer.get_name(), _section(_esc(name), [_line("#555555", _esc(name), dashed=True)], note)


def _divisions_layer(m: folium.Map, divisions: gpd.GeoDataFrame, precision: int) -> Section:
    """LAPD division outlines (shown when the map opens)."""
    layer = _outline_layer(
        m, "divisions", divisions, "LAPD divisions", "#1a1a1a", 1.6, None, True, precision
    )
    return layer.get_name(), _section("LAPD divisions", [_line("#1a1a1a", "Division boundary")])


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
    """Add the outlines of ``table`` with a name and id tooltip."""
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
