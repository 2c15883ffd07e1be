"""The few lines of JavaScript and CSS every map carries (inlined: no network).

:data:`RUNTIME_JS` defines ``window.geoCrime``, which turns the map's shared geometry source
(:class:`geo_crime.publish.maps.topology.Topology`, JSON) back into GeoJSON geometries, once per
object and only when a layer first needs them, and makes the map's layers from it:

``geoCrime.layer(data, spec)``
    An ``L.GeoJSON`` of one object of ``data.topo``, styled per layer: filled by class
    (``spec.kind == "fill"``: ``spec.palette[properties.c]``), outlined (``"outline"``) or a
    base map layer (``"base"``). Its features are made the first time the layer is added to
    the map, so a hidden layer costs nothing when the page opens. Each feature's properties are
    the object's shared properties (``data[spec.base][i]``) plus the layer's own record
    (``spec.records[i]``, ``{"id", "properties"}``). The tooltip lists ``spec.fields`` under
    ``spec.aliases``; a missing ``v`` is the class label ``spec.labels[c]`` and a missing
    ``p`` the layer's period. Every value was HTML-escaped in Python.
``geoCrime.labels(map, spec)``
    Place names as ``L.divIcon`` markers: division names (``"d"``) below zoom ``spec.split``,
    neighbourhood names (``"n"``) from it on, a label hidden when it would overlap one of
    higher priority (``spec.items`` come in priority order).

:data:`RUNTIME_CSS` styles the labels and the tooltips.
"""

from __future__ import annotations

__all__ = ["RUNTIME_CSS", "RUNTIME_JS"]

RUNTIME_JS = r"""
window.geoCrime = (function () {
    "use strict";
    function arcs(topo) {
        if (!topo._arcs) {
            var x0 = topo.q[0], y0 = topo.q[1], k = topo.q[2];
            topo._arcs = topo.arcs.map(function (a) {
                var out = new Array(a.length / 2), x = x0, y = y0;
                for (var i = 0, j = 0; i < a.length; i += 2, j += 1) {
                    x += a[i];
                    y += a[i + 1];
                    out[j] = [x / k, y / k];
                }
                return out;
            });
        }
        return topo._arcs;
    }
    function ring(refs, all) {
        var out = [];
        for (var r = 0; r < refs.length; r += 1) {
            var a = refs[r] >= 0 ? all[refs[r]] : all[~refs[r]].slice().reverse();
            for (var i = out.length ? 1 : 0; i < a.length; i += 1) { out.push(a[i]); }
        }
        return out;
    }
    function geometries(topo, name) {
        topo._geoms = topo._geoms || {};
        if (!topo._geoms[name]) {
            var all = arcs(topo);
            topo._geoms[name] = topo.objects[name].map(function (feature) {
                return {type: "MultiPolygon", coordinates: feature.map(function (polygon) {
                    return polygon.map(function (refs) { return ring(refs, all); });
                })};
            });
        }
        return topo._geoms[name];
    }
    function styler(spec) {
        var s = spec.style;
        if (spec.kind === "fill") {
            return function (feature) {
                return {fillColor: spec.palette[feature.properties.c], fillOpacity: s.fillOpacity,
                        color: s.color, weight: s.weight, opacity: s.opacity};
            };
        }
        return function () { return s; };
    }
    function tooltip(spec) {
        return function (layer) {
            var p = layer.feature.properties, html = "<table>";
            for (var i = 0; i < spec.fields.length; i += 1) {
                var f = spec.fields[i], v = p[f];
                if (v === undefined && f === "v") { v = spec.labels[p.c]; }
                if (v === undefined && f === "p") { v = spec.period; }
                if (v === undefined || v === null) { v = ""; }
                html += "<tr><th>" + spec.aliases[i] + "</th><td>" + v + "</td></tr>";
            }
            return html + "</table>";
        };
    }
    function layer(data, spec) {
        var interactive = !!spec.fields;
        var group = L.geoJSON(null, {pane: spec.pane, style: styler(spec),
                                     interactive: interactive, attribution: spec.attribution});
        var filled = false;
        group.on("add", function () {
            if (filled) { return; }
            filled = true;
            var geoms = geometries(data.topo, spec.object), records = spec.records;
            var shared = spec.base ? data[spec.base] : null, features = new Array(geoms.length);
            for (var i = 0; i < geoms.length; i += 1) {
                var own = records ? records[i] : {id: undefined, properties: {}};
                var props = shared ? Object.assign({}, shared[i], own.properties) : own.properties;
                features[i] = {type: "Feature", id: own.id, properties: props, geometry: geoms[i]};
            }
            group.addData({type: "FeatureCollection", features: features});
        });
        if (interactive) {
            group.bindTooltip(tooltip(spec), {sticky: true, className: "foliumtooltip gc-tooltip"});
            group.on("mouseover", function (e) {
                if (e.layer && e.layer.setStyle) {
                    e.layer.setStyle(spec.hover);
                    if (spec.kind === "fill") { e.layer.bringToFront(); }
                }
            });
            group.on("mouseout", function (e) {
                if (e.layer && e.layer.feature) { group.resetStyle(e.layer); }
            });
        }
        return group;
    }
    function labels(map, spec) {
        var group = L.layerGroup();
        var items = spec.items.map(function (it) {
            var marker = L.marker([it[0], it[1]], {
                pane: spec.pane, interactive: false, keyboard: false,
                icon: L.divIcon({className: "gc-label gc-label-" + it[3],
                                 html: "<span>" + it[2] + "</span>", iconSize: null})
            });
            group.addLayer(marker);
            return {marker: marker, kind: it[3]};
        });
        function refresh() {
            if (!map.hasLayer(group)) { return; }
            var z = map.getZoom(), boxes = [];
            items.forEach(function (it) {
                it.el = it.marker.getElement();
                it.show = !!it.el && (it.kind === "d" ? z < spec.split : z >= spec.split);
                if (it.el) {
                    it.el.style.display = it.show ? "" : "none";
                    it.el.firstChild.style.top = "0px";
                }
            });
            var rects = items.map(function (it) {
                return it.show ? it.el.firstChild.getBoundingClientRect() : null;
            });
            function free(r, dy) {
                return boxes.every(function (b) {
                    return r.right + 6 < b.left || r.left - 6 > b.right ||
                           r.bottom + dy + 2 < b.top || r.top + dy - 2 > b.bottom;
                });
            }
            items.forEach(function (it, i) {
                if (!it.show) { return; }
                // where the name is, else just above or below it, else hidden
                var r = rects[i], h = r.height + 2, shifts = [0, -h, h], dy = null;
                for (var k = 0; k < shifts.length && dy === null; k += 1) {
                    if (free(r, shifts[k])) { dy = shifts[k]; }
                }
                it.el.style.visibility = dy === null ? "hidden" : "";
                it.el.classList.toggle("gc-label-hidden", dy === null);
                if (dy !== null) {
                    it.el.firstChild.style.top = dy + "px";
                    boxes.push({left: r.left, right: r.right, top: r.top + dy,
                                bottom: r.bottom + dy});
                }
            });
        }
        group.on("add", refresh);
        map.on("zoomend resize", refresh);
        return group;
    }
    return {layer: layer, labels: labels, geometries: geometries};
})();
"""
"""``window.geoCrime``: the shared geometry decoder, the lazy layers and the place names."""

RUNTIME_CSS = """
.gc-label {pointer-events: none;}
.gc-label span {position: absolute; transform: translate(-50%, -50%); white-space: nowrap;
  font: 600 11px/1.15 "Helvetica Neue", Arial, Helvetica, sans-serif; color: #333;
  text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff, 0 0 5px #fff;}
.gc-label-d span {text-transform: uppercase; letter-spacing: 0.08em; font-size: 11px;
  color: #2a2a2a;}
.gc-label-n span {font-weight: 500; font-size: 11.5px; color: #3a3a3a;}
.gc-tooltip table {border-collapse: collapse;}
.gc-tooltip th {text-align: left; padding: 1px 8px 1px 0; font-weight: 600; color: #444;}
.gc-tooltip td {padding: 1px 0;}
"""
"""Styles of the place names and the tooltips."""
