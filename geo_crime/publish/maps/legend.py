"""The boxes beside the map: the legend, the info box and the HTML of their entries.

:class:`_Legend` is a Leaflet control (bottom right) with one section per layer, each shown only
while its layer is on: one choropleth section (the chosen base layer) and the sections of the
overlays that are on; :class:`_InfoBox` (bottom left) holds the title, the period and the notes.
:func:`_section`, :func:`_swatch` (a fill colour) and :func:`_line` (an outline) write the
sections' HTML; their labels must already be HTML-escaped. :data:`_BOX_CSS` styles both boxes.
"""

from __future__ import annotations

from branca.element import MacroElement
from folium.template import Template

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
.leaflet-container.gc-vector {background: #e3e6e8;}
.leaflet-control-layers-expanded {max-width: 270px; padding: 5px 8px;
  font: 12px/1.3 "Helvetica Neue", Arial, Helvetica, sans-serif;}
.leaflet-control-layers-overlays label {margin: 2px 0;}
.leaflet-control-layers-overlays label > span {display: flex; align-items: flex-start;}
.leaflet-control-layers-selector {flex: none; margin-top: 1px;}
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
            map.on("baselayerchange overlayadd overlayremove", refresh);
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
            {%- if this.vector %}
            {{ this._parent.get_name() }}.getContainer().classList.add("gc-vector");
            {%- endif %}
        })();
        {% endmacro %}
        """
    )

    def __init__(self, content: str, *, vector: bool) -> None:
        super().__init__()
        self._name = "GeoCrimeInfo"
        self.content = content
        self.vector = vector  # no web tiles: the vector base map's background


def _swatch(colour: str, label: str) -> str:
    """A legend entry: a box filled with ``colour`` (any CSS background, e.g. a hatch from
    :func:`geo_crime.publish.maps.classify.swatch_background`), then ``label`` (escaped HTML)."""
    return (
        f'<div class="gc-item"><span class="gc-swatch" style="background:{colour}"></span>'
        f"{label}</div>"
    )


def _line(colour: str, label: str, *, dashed: bool = False) -> str:
    """A legend entry of an outline layer: a line in ``colour``, then ``label``."""
    style = "dashed" if dashed else "solid"
    return (
        f'<div class="gc-item"><span class="gc-line" style="border-top:2px {style} {colour}">'
        f"</span>{label}</div>"
    )


def _section(title: str, items: list[str], note: str = "") -> str:
    """A legend section: its title, its entries and an optional note (all escaped HTML)."""
    body = "".join(items)
    extra = f'<div class="gc-note">{note}</div>' if note else ""
    return f"<h4>{title}</h4>{body}{extra}"
