"""Drawing the layers onto the map: one function per layer kind, each giving its legend section.

Every polygon of a map is stored once, in the map's shared data (:class:`_MapData`: one
:class:`~geo_crime.publish.maps.topology.Topology` plus the units' shared tooltip properties), and
each layer is a small :class:`_VectorLayer` that says which object of it to draw and how: its
palette, each unit's class and the tooltip values that differ between layers. The browser
builds a layer's features from the shared source the first time the layer is shown
(:data:`geo_crime.publish.maps.runtime.RUNTIME_JS`).

Every layer lives in its own Leaflet pane (:func:`layer_pane`, ``gc-<layer>``), stacked in the
order of :data:`_PANES`: the base map (land, boundaries) under the units, the outlines above
them and the place names on top. The unit layers are the map's base layers (radio buttons:
one choropleth at a time); the outlines and names are overlays (checkboxes). The unit layers
differ in the class each unit gets:

* :func:`_severity_layer`: sequential classes (YlOrRd) of severity points per km² over the
  analysis window (the default layer), or of the per-resident rate (``rate=True``);
* :func:`_categorical_layer`: the Gi* bins, the LISA clusters and the emerging hot spot
  categories, described by :data:`_CATEGORICAL`;
* :func:`_forecast_layer`: sequential classes of the ``prediction`` column (Purples), units
  not forecast hatched grey.

A suppressed unit (fewer than ``k_anonymity`` incidents) shows no class of any layer: its class
could be solved for its value. Its record in every layer says ``"suppressed"`` for every value.
:func:`_outline_layer` draws the reporting districts and the LAPD divisions as outlines,
:func:`_basemap_layers` the vector base map and :func:`_place_names_layer` its names. Each
layer function adds its layer to the map and returns its legend section as ``(layer JS
variable, section HTML)``.
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
import shapely
from branca.element import MacroElement
from folium.map import Layer
from folium.template import Template

from geo_crime.publish.maps.basemap import (
    BASEMAP_ATTRIBUTION,
    BASEMAP_TOLERANCE_M,
    LABEL_SPLIT_ZOOM,
    Basemap,
)
from geo_crime.publish.maps.classify import fill_of, swatch_background
from geo_crime.publish.maps.layers import _aligned, _esc, _Units
from geo_crime.publish.maps.legend import _line, _section, _swatch
from geo_crime.publish.maps.topology import Topology
from geo_crime.publish.style import (
    EMERGING_STYLES,
    GI_COLOURS,
    LISA_COLOURS,
    NO_DATA_COLOUR,
    NOT_FORECAST_STYLE,
    SUPPRESSED_COLOUR,
    Scheme,
    classify_values,
    format_number,
    sequential_colours,
)
from geo_crime.stats.emerging import CATEGORIES
from geo_crime.stats.hotspots import GI_BIN_LABELS, LISA_LABELS

_PANES = {
    "base": ("gc-base", 250),
    "severity": ("gc-severity", 400),
    "rate": ("gc-rate", 401),
    "gi": ("gc-gi", 402),
    "lisa": ("gc-lisa", 403),
    "emerging": ("gc-emerging", 404),
    "forecast": ("gc-forecast", 405),
    "rds": ("gc-rds", 450),
    "divisions": ("gc-divisions", 451),
    "labels": ("gc-labels", 460),
}

UNIT_TOLERANCE_M = 1.0
"""Simplification tolerance of the units and their outlines (metres, about the grid step)."""

#: A legend section: the JavaScript variable of its layer and the section's HTML.
Section = tuple[str, str]

_FILL_STYLE = {"fillOpacity": 0.78, "color": "#5f5f5f", "weight": 0.4, "opacity": 0.7}
_FILL_HOVER = {"weight": 2.2, "color": "#111111", "opacity": 1}


def layer_pane(layer: str) -> str:
    """Name of the Leaflet pane holding ``layer`` (``severity``: per km², ``rate``, ``gi``,
    ``lisa``, ``emerging``, ``forecast``, ``rds``, ``divisions``, ``base`` or ``labels``); its
    DOM class is ``leaflet-<pane>-pane``."""
    return _PANES[layer][0]


def _add_pane(m: folium.Map, layer: str) -> str:
    name, z = _PANES[layer]
    pointer = layer not in ("base", "labels")
    folium.map.CustomPane(name, z_index=z, pointer_events=pointer).add_to(m)
    return name


def _script_json(value: Any, *, compact: bool = False) -> str:
    """JSON safe inside a ``<script>`` element (``<``, ``>`` and ``&`` escaped)."""
    text = json.dumps(value, separators=(",", ":") if compact else None)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _MapData(MacroElement):
    """The data every layer of a map draws from: the topology and shared properties.

    Attributes
    ----------
    topology : Topology
        All the map's polygons, one object per geometry source.
    shared : dict
        Other shared data (``units_base``: the units' place properties).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {{ this.json }};
        {% endmacro %}
        """
    )

    def __init__(self, precision: int) -> None:
        super().__init__()
        self._name = "GeoCrimeData"
        self.topology = Topology(precision=precision)
        self.shared: dict[str, Any] = {}
        self.json: str | None = None

    def finish(self) -> None:
        """Encode the topology (once every object is added)."""
        self.json = _script_json({"topo": self.topology.encode(), **self.shared}, compact=True)

    def render(self, **kwargs: Any) -> None:
        if self.json is None:
            self.finish()
        super().render(**kwargs)


class _VectorLayer(Layer):
    """One GeoJSON layer drawn from the map's shared data (see ``geoCrime.layer``).

    Like a ``folium.GeoJson`` it can be inspected: :attr:`data` holds its features (without
    their geometry, which is in the shared source) and a ``GeoJsonTooltip`` child its tooltip
    fields and aliases.

    Attributes
    ----------
    source : _MapData
        The map's shared data.
    spec : dict
        What the browser needs: ``kind``, ``object``, ``pane``, ``style`` and, for layers with
        tooltips, ``fields``, ``aliases`` and ``records`` (one ``{"id", "properties"}`` per
        feature).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = geoCrime.layer({{ this.source.get_name() }},
            {{ this.spec_json }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        source: _MapData,
        spec: dict[str, Any],
        *,
        name: str | None = None,
        show: bool = True,
        control: bool = True,
        overlay: bool = True,
    ) -> None:
        super().__init__(name=name, overlay=overlay, control=control, show=show)
        self._name = "BaseMapLayer" if spec["kind"] == "base" else "GeoJson"
        self.source = source
        self.spec = spec
        if "fields" in spec:
            self.add_child(_TooltipFields(spec["fields"], spec["aliases"]))

    @property
    def spec_json(self) -> str:
        return _script_json(self.spec)

    @property
    def records(self) -> list[dict]:
        """One ``{"id", "properties"}`` per feature: the layer's own values (empty for base map
        layers)."""
        return self.spec.get("records", [])

    @property
    def data(self) -> dict[str, Any]:
        """The layer's features as the tooltips see them: shared and own properties, with ids
        (the geometry stays in the shared source)."""
        shared = self.source.shared.get(self.spec.get("base", ""), None)
        features = []
        for i, record in enumerate(self.records):
            props = {**shared[i], **record["properties"]} if shared else record["properties"]
            if "v" in self.spec.get("fields", []) and "v" not in props:
                props["v"] = self.spec["labels"][props["c"]]
            if "p" in self.spec.get("fields", []) and "p" not in props:
                props["p"] = self.spec["period"]
            features.append({"type": "Feature", "id": record["id"], "properties": props})
        return {"type": "FeatureCollection", "features": features}


class _TooltipFields(MacroElement):
    """What a layer's tooltip lists (drawn by the layer itself; renders nothing)."""

    def __init__(self, fields: list[str], aliases: list[str]) -> None:
        super().__init__()
        self._name = "GeoJsonTooltip"
        self.fields = fields
        self.aliases = aliases


class _Labels(Layer):
    """Place names (see ``geoCrime.labels``)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = geoCrime.labels({{ this._parent.get_name() }},
            {{ this.spec_json }});
        {% endmacro %}
        """
    )

    def __init__(self, spec: dict[str, Any], *, name: str, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "GeoCrimeLabels"
        self.spec = spec

    @property
    def spec_json(self) -> str:
        return _script_json(self.spec)


# --------------------------------------------------------------------------------------------
# unit layers
# --------------------------------------------------------------------------------------------


@dataclass
class _Canvas:
    """The map being built and what all its unit layers share."""

    m: folium.Map
    data: _MapData
    units: _Units
    extras: list[tuple[str, str]]  # extra tooltip columns shown: (column, label)
    k_anonymity: int
    scheme: Scheme
    k: int
    period: str  # escaped
    tolerance_m: float = UNIT_TOLERANCE_M
    fields: list[str] = field(init=False)  # tooltip fields before the layer's class and period
    aliases: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.fields = ["u", "n", "s", "r", "d", *[f"x{j}" for j in range(len(self.extras))]]
        self.aliases = [
            "Unit",
            "Incidents",
            "Severity points",
            _esc(self.units.rate_label),
            "Severity points per km²",
            *[_esc(a) for _, a in self.extras],
        ]
        self.data.topology.add("units", self.units.geometry, tolerance_m=self.tolerance_m)
        self.data.shared["units_base"] = self.units.base

    def suppressed_items(self) -> list[str]:
        """The legend entry of suppressed units, when there are any."""
        if not self.units.suppressed.any():
            return []
        return [_swatch(SUPPRESSED_COLOUR, f"Suppressed (&lt; {self.k_anonymity} incidents)")]


def _unit_layer(
    canvas: _Canvas,
    key: str,
    name: str,
    classes: np.ndarray,
    palette: list[str],
    labels: list[str],
    class_alias: str,
    *,
    show: bool,
    values: list[str] | None = None,
    period: str | None = None,
) -> _VectorLayer:
    """Add a layer of the units filled by ``classes`` (indices into ``palette`` and ``labels``).

    ``values`` replaces the class label in the tooltips (the forecast's predicted values).
    """
    prepared = canvas.units
    # a suppressed unit shows no class of any layer: its class could be solved for its value
    hidden = len(palette)
    palette = [*palette, SUPPRESSED_COLOUR]
    labels = [*[_esc(lbl) for lbl in labels], "suppressed"]
    records = []
    for i, uid in enumerate(prepared.ids):
        props: dict[str, Any] = dict(prepared.values[i])
        if prepared.suppressed[i]:
            props["c"] = hidden
            props["v"] = "suppressed"
        else:
            props["c"] = int(classes[i])
            if values is not None:
                props["v"] = _esc(values[i])
        records.append({"id": uid, "properties": props})
    spec = {
        "kind": "fill",
        "object": "units",
        "base": "units_base",
        "pane": _add_pane(canvas.m, key),
        "palette": palette,
        "labels": labels,
        "period": canvas.period if period is None else period,
        "fields": [*canvas.fields, "v", "p"],
        "aliases": [*canvas.aliases, _esc(class_alias), "Period"],
        "style": _FILL_STYLE,
        "hover": _FILL_HOVER,
        "records": records,
    }
    layer = _VectorLayer(canvas.data, spec, name=_esc(name), show=show, overlay=False)
    layer.add_to(canvas.m)
    return layer


RATE_CAVEAT = (
    "Residents are not the people exposed: places few people live in and many visit (the "
    "airport, parks, downtown) rank high."
)
"""The per-resident layer's caveat, in its legend."""


def _severity_layer(canvas: _Canvas, *, rate: bool = False) -> Section:
    """A choropleth of severity per km² over the window (the default layer, shown when the map
    opens) or, with ``rate``, of the per-resident rate (hidden at first)."""
    prepared, k_anonymity, scheme = canvas.units, canvas.k_anonymity, canvas.scheme
    values = prepared.measure if rate else prepared.density
    title = prepared.measure_label if rate else prepared.density_label
    measure = np.where(prepared.suppressed, np.nan, values)
    cls = classify_values(measure, scheme=scheme, k=canvas.k)
    colours = sequential_colours(cls.k, "YlOrRd")
    class_labels = cls.labels()
    codes = np.where(cls.codes >= 0, cls.codes, cls.k)  # cls.k: no data
    short = title.split(",")[0].split(" (")[0] if not rate else title.split(" (")[0]
    layer = _unit_layer(
        canvas,
        "rate" if rate else "severity",
        short,
        codes,
        [*colours, NO_DATA_COLOUR],
        [*class_labels, "no data"],
        f"{short} class",
        show=not rate,
    )
    items = [_swatch(c, _esc(lbl)) for c, lbl in zip(colours, class_labels, strict=True)]
    items += canvas.suppressed_items()
    if ((codes == cls.k) & ~prepared.suppressed).any():
        items.append(_swatch(NO_DATA_COLOUR, "No residents" if rate else "No data"))
    scheme_name = "Fisher-Jenks natural breaks" if scheme == "fisherjenks" else "quantiles"
    note = f"Classes: {scheme_name}."
    if k_anonymity > 0:
        note += f" Grey: fewer than {k_anonymity} incidents, values suppressed."
    if rate:
        note = f"<b>{_esc(RATE_CAVEAT)}</b> {note}"
    return layer.get_name(), _section(_esc(title), items, note)


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
    swatches: Mapping[int, str] | None = None  # legend backgrounds, when not the colours


_CATEGORICAL = {
    # the confidence bin only: exact z-scores of the published units would let a
    # least-squares solve recover suppressed values (see geo_crime.publish.privacy)
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
        tuple(sorted(EMERGING_STYLES)),
        {code: fill_of(style) for code, style in EMERGING_STYLES.items()},
        CATEGORIES,
        "Emerging hot spots",
        "Pattern",
        "Emerging hot spots",
        only_present=True,
        swatches={code: swatch_background(style) for code, style in EMERGING_STYLES.items()},
    ),
}
"""The categorical unit layers (Gi*, LISA, emerging hot spots), by layer key."""


def _categorical_layer(canvas: _Canvas, key: str, table: pd.DataFrame, note: str = "") -> Section:
    """The layer ``key`` of :data:`_CATEGORICAL` from its result table (hidden at first), with
    an optional legend ``note`` (escaped HTML)."""
    spec = _CATEGORICAL[key]
    order = list(spec.order)
    values = _aligned(table, canvas.units.ids, spec.column, spec.what)
    palette = [spec.colours[c] for c in order] + [NO_DATA_COLOUR]
    labels = [spec.names[c] for c in order] + ["no data"]
    codes = np.array(
        [order.index(int(v)) if pd.notna(v) and int(v) in order else len(order) for v in values]
    )
    layer = _unit_layer(
        canvas, key, spec.name, codes, palette, labels, spec.class_alias, show=False
    )
    shown = order
    if spec.only_present:
        # a category only suppressed units have is not listed either
        present = {
            order[c]
            for c, small in zip(codes, canvas.units.suppressed, strict=True)
            if c < len(order) and not small
        }
        shown = [c for c in order if c in present]
    swatches = spec.swatches or spec.colours
    items = [_swatch(swatches[c], _esc(spec.names[c])) for c in shown]
    items += canvas.suppressed_items()
    return layer.get_name(), _section(spec.title, items, note)


NOT_FORECAST = "not forecast (recording incomplete)"
"""What the forecast layer says of a unit the forecast left out."""


def _forecast_layer(
    canvas: _Canvas, table: pd.DataFrame, forecast_period: str, unit: str = "severity points"
) -> Section:
    """Classes of the predicted values (hidden at first); units not forecast hatched grey."""
    prepared = canvas.units
    pred = pd.to_numeric(
        pd.Series(_aligned(table, prepared.ids, "prediction", "forecast")),
        errors="coerce",
    ).to_numpy(dtype=float)
    pred = np.where(prepared.suppressed, np.nan, pred)
    fcls = classify_values(pred, scheme=canvas.scheme, k=canvas.k)
    # the lowest class stays clear of white and of the hatched grey of units not forecast
    colours = sequential_colours(fcls.k, "Purples", start=0.3)
    codes = np.where(fcls.codes >= 0, fcls.codes, fcls.k)
    values = [format_number(p) if np.isfinite(p) else NOT_FORECAST for p in pred]
    period = forecast_period or "next period"
    layer = _unit_layer(
        canvas,
        "forecast",
        f"Forecast: {period}",
        codes,
        [*colours, fill_of(NOT_FORECAST_STYLE)],
        [*fcls.labels(), NOT_FORECAST],
        f"Forecast ({unit})",
        show=False,
        values=values,
        period=_esc(period),
    )
    items = [_swatch(c, _esc(lbl)) for c, lbl in zip(colours, fcls.labels(), strict=True)]
    if ((codes == fcls.k) & ~prepared.suppressed).any():
        hatch = swatch_background(NOT_FORECAST_STYLE)
        items.append(_swatch(hatch, _esc(NOT_FORECAST.capitalize())))
    items += canvas.suppressed_items()
    title = f"Forecast, {_esc(unit)} per unit: {_esc(period)}"
    return layer.get_name(), _section(title, items)


# --------------------------------------------------------------------------------------------
# outlines
# --------------------------------------------------------------------------------------------


def _rds_layer(canvas: _Canvas, rds: gpd.GeoDataFrame, approx: bool) -> Section:
    """Reporting district outlines (dashed, hidden at first)."""
    name = "Reporting districts (approximate)" if approx else "Reporting districts"
    layer = _outline_layer(canvas, "rds", rds, name, "#555555", 0.8, "4 3", False)
    note = (
        "Approximate: derived from incident locations, not official boundaries." if approx else ""
    )
    return layer.get_name(), _section(_esc(name), [_line("#555555", _esc(name), dashed=True)], note)


def _divisions_layer(canvas: _Canvas, divisions: gpd.GeoDataFrame) -> Section:
    """LAPD division outlines (shown when the map opens)."""
    layer = _outline_layer(
        canvas, "divisions", divisions, "LAPD divisions", "#1a1a1a", 1.6, None, True
    )
    return layer.get_name(), _section("LAPD divisions", [_line("#1a1a1a", "Division boundary")])


def _outline_layer(
    canvas: _Canvas,
    key: str,
    table: gpd.GeoDataFrame,
    name: str,
    colour: str,
    weight: float,
    dash: str | None,
    show: bool,
) -> _VectorLayer:
    """Add the outlines of ``table`` with a name and id tooltip.

    When ``table`` holds the units themselves (same ids and geometry), the layer draws the
    units' object: nothing more is stored.
    """
    if table.crs is not None and not table.crs.equals("EPSG:4326"):
        table = table.to_crs("EPSG:4326")
    if "name" in table.columns:
        names = table["name"].tolist()
    elif "unit_id" in table.columns:
        names = table["unit_id"].tolist()
    else:
        names = [str(i) for i in range(len(table))]
    ids = table["unit_id"].astype(str).tolist() if "unit_id" in table.columns else None
    geoms = table.geometry.to_numpy()
    obj = "units" if _same_units(ids, geoms, canvas.units) else key
    if obj != "units":
        canvas.data.topology.add(obj, geoms, tolerance_m=canvas.tolerance_m)
    records = []
    for i in range(len(table)):
        props = {"nm": _esc(names[i]), "u": _esc(ids[i] if ids else names[i])}
        records.append({"id": ids[i] if ids else None, "properties": props})
    spec = {
        "kind": "outline",
        "object": obj,
        "pane": _add_pane(canvas.m, key),
        "style": {
            "fill": False,
            "color": colour,
            "weight": weight,
            "opacity": 0.9,
            "dashArray": dash,
        },
        "hover": {"weight": weight + 1.6, "opacity": 1},
        "fields": ["nm", "u"],
        "aliases": ["Name", "Id"],
        "records": records,
    }
    layer = _VectorLayer(canvas.data, spec, name=_esc(name), show=show)
    layer.add_to(canvas.m)
    return layer


def _same_units(ids: list[str] | None, geoms: np.ndarray, units: _Units) -> bool:
    """Whether an outline table is the units themselves (ids and geometry, in order)."""
    if ids is None or ids != units.ids or len(geoms) != len(units.geometry):
        return False
    return bool(np.all(shapely.equals_exact(geoms, units.geometry, tolerance=0.0)))


# --------------------------------------------------------------------------------------------
# base map
# --------------------------------------------------------------------------------------------


LAND_FILL = {"fill": True, "fillColor": "#fbfaf7", "fillOpacity": 1}
"""The fill of the city's land on the vector base map (no web tiles, or tiles that failed)."""


def _basemap_layers(canvas: _Canvas, basemap: Basemap, *, tiles: bool) -> _VectorLayer:
    """The vector base map under the units: the city's land and its boundaries.

    Over web tiles the land is not filled (the tiles show it; :data:`LAND_FILL` fills it when
    they fail to load). Returns the land layer.
    """
    topology, m = canvas.data.topology, canvas.m
    topology.add("base_city", basemap.city, tolerance_m=BASEMAP_TOLERANCE_M)
    topology.add("base_divisions", basemap.divisions, tolerance_m=BASEMAP_TOLERANCE_M)
    topology.add("base_hoods", basemap.neighbourhoods, tolerance_m=BASEMAP_TOLERANCE_M)
    pane = _add_pane(m, "base")
    land = {"stroke": True, "color": "#8f8a80", "weight": 1.2, "opacity": 0.9}
    land |= {"fill": False} if tiles else LAND_FILL
    styles = {
        "base_city": land,
        "base_hoods": {"fill": False, "color": "#c2bdb3", "weight": 0.7, "opacity": 0.9},
        "base_divisions": {"fill": False, "color": "#948e83", "weight": 1.2, "opacity": 0.9},
    }
    layers = []
    for obj, style in styles.items():
        spec = {"kind": "base", "object": obj, "pane": pane, "style": style}
        if obj == "base_city":
            spec["attribution"] = _esc(BASEMAP_ATTRIBUTION)
        layers.append(_VectorLayer(canvas.data, spec, control=False).add_to(m))
    return layers[0]


def _place_names_layer(canvas: _Canvas, basemap: Basemap) -> None:
    """Division and neighbourhood names above every layer (an overlay, on at first)."""
    m = canvas.m
    items = [[lat, lon, _esc(name), kind] for lat, lon, name, kind in basemap.labels]
    spec = {"pane": _add_pane(m, "labels"), "split": LABEL_SPLIT_ZOOM, "items": items}
    _Labels(spec, name="Place names (divisions, neighbourhoods)").add_to(m)
