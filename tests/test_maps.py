"""Interactive maps: layers, legends, privacy, escaping, offline assets, size, a real browser."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_crime.core.errors import ConfigError, DataError, PrivacyError
from geo_crime.publish.maps import (
    DEFAULT_ZOOM,
    EMERGING_STYLES,
    LA_CENTRE,
    MAX_FEATURES,
    NO_DATA_COLOUR,
    NOT_FORECAST,
    LargeMapWarning,
    MapLayers,
    build_map,
    classify_values,
    external_references,
    layer_pane,
    map_layers,
    write_map,
)
from geo_crime.stats.emerging import emerging_hotspots
from geo_crime.stats.hotspots import gi_star_table, lisa_table
from tests.fakes.browser import headless_chromium
from tests.fakes.h3_units import h3_units
from tests.fakes.shared_data import data_dir

EVIL = '<script>alert(1)</script>" onmouseover="alert(1)'
DIVISIONS = "boundaries/lapd_divisions__LAPD_Division_5922489107755548254.geojson"


def _divisions() -> gpd.GeoDataFrame:
    path = data_dir() / DIVISIONS
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data file missing: {path}")
        pytest.skip(f"real data file missing: {path}")
    raw = gpd.read_file(path)
    return gpd.GeoDataFrame(
        {"unit_id": raw["PREC"].astype(int).astype(str), "name": raw["APREC"].astype(str)},
        geometry=raw.geometry.to_numpy(),
        crs="EPSG:4326",
    )


@pytest.fixture(scope="module")
def layers(westla_h3_units) -> MapLayers:
    """Real West LA units and real hot-spot results, with hostile strings in the data."""
    units, y = westla_h3_units
    units = units.copy()
    units["count"] = y.astype(np.int64)
    units["severity"] = y * 3.2
    units["name"] = [f"Cell {i}" for i in range(len(units))]
    units["top_crime"] = "BURGLARY FROM VEHICLE"
    evil_row = int(np.argmax(y))
    units.loc[evil_row, "top_crime"] = EVIL
    units.loc[evil_row, "name"] = EVIL
    units.attrs["evil_unit"] = units.loc[evil_row, "unit_id"]
    gi = gi_star_table(units, y)
    lisa = lisa_table(units, y, permutations=99, seed=1)
    rng = np.random.default_rng(7)
    periods = pd.date_range("2020-03-01", periods=12, freq="MS")
    cube = rng.poisson(np.outer(y / 12.0 + 0.2, np.linspace(0.6, 1.4, 12)))
    emerging = emerging_hotspots(units, cube, periods).table
    forecast = pd.DataFrame({"unit_id": units["unit_id"], "prediction": y / 17.0})
    divisions = _divisions()
    divisions.loc[0, "name"] = EVIL
    parents = sorted({h3.cell_to_parent(c, 7) for c in units["unit_id"]})
    rds = h3_units(parents).assign(name=[f"RD {i:04d}" for i in range(len(parents))])
    rds.attrs["approximate"] = True
    return MapLayers(
        units=units,
        gi=gi,
        lisa=lisa,
        emerging=emerging,
        forecast=forecast,
        divisions=divisions,
        rds=rds,
        period="2020-03-15 to 2021-07-31",
        forecast_period="2021-08",
    )


@pytest.fixture(scope="module")
def offline_html(tmp_path_factory, layers) -> Path:
    path = tmp_path_factory.mktemp("maps") / "map.html"
    write_map(layers, path, offline=True)
    return path


def test_map_opens_on_los_angeles_with_all_layers(layers):
    m = build_map(layers)
    assert m.location == list(LA_CENTRE) and m.options["zoom"] == DEFAULT_ZOOM
    assert pytest.approx((34.05, -118.35)) == LA_CENTRE
    html = m.get_root().render()
    for name in (
        "Severity points per km\\u00b2",
        "Severity per km\\u00b2",  # the rate's fallback: these units carry no residents
        "Gi* hot and cold spots",
        "LISA clusters",
        "Emerging hot spots",
        "Forecast: 2021-08",
        "LAPD divisions",
        "Reporting districts (approximate)",
    ):
        assert f'"{name}"' in html, name
    assert html.count("L.control.layers(") == 1
    # one legend section per layer, each naming its classes
    for text in (
        "Getis-Ord Gi* hot spots",
        "Hot Spot - 99% Confidence",
        "High-High",
        "Emerging hot spots",
        "Approximate: derived",
        "Classes: quantiles",
    ):
        assert text in html, text
    assert "fewer than 3 incidents" in html
    assert html.count("#d62f27") >= 1 and "#4575b5" in html


def test_only_severity_and_divisions_are_visible_at_start(layers):
    m = build_map(layers)
    shown = {name: layer.show for name, layer in map_layers(m).items()}
    assert [name for name, show in shown.items() if show] == [
        "Severity points per km²",
        "LAPD divisions",
    ]
    # the choropleths are base layers (radio buttons), the outlines overlays (checkboxes)
    kinds = {name: layer.overlay for name, layer in map_layers(m).items()}
    assert [name for name, overlay in kinds.items() if not overlay] == [
        "Severity points per km²",
        "Severity per km²",
        "Gi* hot and cold spots",
        "LISA clusters",
        "Emerging hot spots",
        "Forecast: 2021-08",
    ]
    assert [name for name, overlay in kinds.items() if overlay] == [
        "Reporting districts (approximate)",
        "LAPD divisions",
    ]
    html = m.get_root().render()
    assert '"Place names (divisions, neighbourhoods)"' in html  # an overlay, on at first


def _unit_layer_props(m, name_start: str) -> tuple[dict, list[dict]]:
    """A unit layer's spec and each unit's tooltip properties (shared ones + the layer's)."""
    layer = next(v for k, v in map_layers(m).items() if k.startswith(name_start))
    shared = layer.source.shared[layer.spec["base"]]
    props = [{**base, **rec["properties"]} for base, rec in zip(shared, layer.records, strict=True)]
    return layer.spec, props


def test_tooltips_show_the_fields_and_suppress_small_units(layers):
    m = build_map(layers, k_anonymity=5)
    label = "Severity per km² (whole period, unsmoothed)"
    spec, features = _unit_layer_props(m, "Severity per km²")
    # the tooltip's rate is the rate layer's measure, under the same label
    density = "Severity points per km²"
    assert spec["aliases"][:5] == ["Unit", "Incidents", "Severity points", label, density]
    assert spec["aliases"][-2:] == ["Severity per km² class", "Period"]
    assert spec["fields"][-2:] == ["v", "p"]
    assert spec["period"] == "2020-03-15 to 2021-07-31"
    counts = layers.units["count"].to_numpy()
    suppressed_class = len(spec["palette"]) - 1
    assert spec["labels"][suppressed_class] == "suppressed"
    for props, count in zip(features, counts, strict=True):
        if count < 5:
            assert props["n"] == props["s"] == props["r"] == props["d"] == "suppressed"
            assert props["v"] == "suppressed" and props["c"] == suppressed_class
            assert props["x1"] == "suppressed"  # the most common crime is hidden too
            assert set(props) == {"u", "n", "s", "r", "d", "x0", "x1", "c", "v"}
        else:
            assert props["n"] == f"{count:,}"
            assert props["c"] != suppressed_class
            assert set(props) == {"u", "n", "s", "r", "d", "x0", "x1", "c"}  # v: labels[c]
    forecast, fprops = _unit_layer_props(m, "Forecast")
    assert forecast["period"] == "2021-08"
    assert all(p["v"] == "suppressed" for p, c in zip(fprops, counts, strict=True) if c < 5)


def test_data_strings_are_html_escaped(layers, offline_html):
    html = offline_html.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    assert 'onmouseover="alert' not in html and 'onmouseover=\\"alert' not in html
    # escaped in Python (&lt; ...), then JSON-escaped for the script (& -> \u0026)
    assert "\\u0026lt;script\\u0026gt;alert(1)\\u0026lt;/script\\u0026gt;" in html
    assert "\\u0026quot; onmouseover=\\u0026quot;alert(1)" in html
    m = build_map(layers)
    spec, features = _unit_layer_props(m, "Severity")
    ids = layers.units["unit_id"].astype(str).tolist()  # the records follow the units
    evil = features[ids.index(layers.units.attrs["evil_unit"])]
    assert evil["x1"] == ("&lt;script&gt;alert(1)&lt;/script&gt;&quot; onmouseover=&quot;alert(1)")


def test_offline_html_needs_no_network(offline_html):
    html = offline_html.read_text(encoding="utf-8")
    assert external_references(html) == []
    assert not re.search(r"""<(script|link)[^>]*(src|href)=["']?(https?:)?//""", html, re.I)
    assert "Leaflet 1.9.4" in html and "L.map(" in html
    assert "tile.openstreetmap" not in html and "L.tileLayer" not in html
    assert "sourceMappingURL" not in html
    assert "data:image/png;base64," in html  # the layer-control icons are inlined


def test_online_map_uses_cdn_and_tiles(layers, tmp_path, monkeypatch):
    # the default is offline with the vector base map: no CDN, no tiles
    default = build_map(layers).get_root().render()
    assert "L.tileLayer" not in default and "https://cdn" not in default
    with pytest.warns(UserWarning, match="CARTO tiles need an API key"):
        path = write_map(layers, tmp_path / "online.html", offline=False, tiles="carto")
    html = path.read_text(encoding="utf-8")
    assert "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.js" in html
    assert "L.tileLayer" in html and "basemaps.cartocdn.com" in html
    assert "carto.com/attributions" in html  # the tiles' attribution
    monkeypatch.setenv("GEO_CRIME_CARTO_KEY", "k3y")
    assert (
        "light_all/{z}/{x}/{y}{r}.png?key=k3y"
        in build_map(layers, tiles="carto").get_root().render()
    )
    assert "jquery" not in html.lower() and "bootstrap" not in html.lower()
    # tiles can be asked for on an offline (inlined) map too
    osm = build_map(layers, tiles="osm").get_root().render()
    assert "tile.openstreetmap.org" in osm and "openstreetmap.org/copyright" in osm
    assert external_references(osm) == []
    # a built online map can still be written offline: Leaflet inlined, tiles dropped
    m = build_map(layers, offline=False, tiles="osm")
    offline = write_map(m, tmp_path / "converted.html", offline=True)
    text = offline.read_text(encoding="utf-8")
    assert external_references(text) == [] and "L.tileLayer" not in text


def test_inputs_are_checked(layers):
    with pytest.raises(DataError, match="count"):
        build_map({"units": layers.units.drop(columns="count")})
    with pytest.raises(ConfigError, match="unknown map layer"):
        build_map({"units": layers.units, "heatmap": None})
    with pytest.raises(ConfigError, match="scheme"):
        build_map(layers, scheme="equal")
    with pytest.raises(PrivacyError, match="victim-level"):
        build_map(MapLayers(units=layers.units, tooltip_columns={"vict_age": "Age"}))
    with pytest.raises(DataError, match="gi_bin"):
        build_map(MapLayers(units=layers.units, gi=layers.gi.drop(columns="gi_bin")))
    with pytest.raises(ConfigError, match="build options"):
        write_map(build_map(layers), "never.html", title="x")
    with pytest.raises(ConfigError, match="built offline"):
        write_map(build_map(layers), "never.html", offline=False)


def test_layers_from_a_cube_and_from_a_dict(westla_h3_units, tmp_path):
    from geo_crime.cube.panel import Cube

    units, y = westla_h3_units
    periods = pd.date_range("2024-01-01", periods=4, freq="MS")
    counts = np.repeat(y[:, None], 4, axis=1).astype(np.int64)
    cube = Cube(
        units=units,
        periods=periods,
        freq="M",
        counts=counts,
        severity=counts * 2.0,
        harm=counts * 1.0,
    )
    layers = MapLayers.from_cube(cube, forecast_period="2024-05")
    assert layers.units["count"].tolist() == (y * 4).astype(int).tolist()
    assert layers.period == "4 complete months, 2024-01-01 to 2024-04-01"
    path = write_map(
        {"units": layers.units, "period": layers.period}, tmp_path / "m.html", title="Cube <b>"
    )
    html = path.read_text(encoding="utf-8")
    assert "<title>Cube &lt;b&gt;</title>" in html
    assert "4 complete months, 2024-01-01 to 2024-04-01" in html


def test_forecast_layer_says_which_units_were_not_forecast(layers):
    """Units left out of the forecast are hatched grey and say why, unlike a forecast of 0."""
    import dataclasses

    units = layers.units
    forecast = layers.forecast.iloc[: len(units) // 2]  # the other half was not forecast
    m = build_map(dataclasses.replace(layers, forecast=forecast), k_anonymity=0)
    spec, props = _unit_layer_props(m, "Forecast")
    hatch = "url(#gc-hatch-9e9e9e)"
    predicted = dict(zip(forecast["unit_id"], forecast["prediction"], strict=True))
    zeros = 0
    for uid, p in zip(units["unit_id"], props, strict=True):
        if uid not in predicted:
            assert p["v"] == NOT_FORECAST and spec["palette"][p["c"]] == hatch
        else:
            shown = float(p["v"].replace(",", ""))
            assert shown == pytest.approx(predicted[uid], rel=0.01, abs=0.006)
            assert spec["palette"][p["c"]] not in (hatch, NO_DATA_COLOUR)
            zeros += predicted[uid] == 0
            if predicted[uid] == 0:
                assert p["c"] == 0  # a forecast of zero is in the lowest class
    assert zeros > 10  # the empty ring cells around West LA
    html = m.get_root().render()
    assert "Forecast, severity points per unit: 2021-08" in html
    assert "Not forecast (recording incomplete)" in html
    assert 'id="gc-hatch-9e9e9e"' in html  # the pattern the hatched fill names
    assert spec["palette"][0] != "#ffffff" and spec["palette"][0] != NO_DATA_COLOUR


def test_emerging_categories_are_distinct_and_state_their_periods(layers):
    import dataclasses

    assert len(set(EMERGING_STYLES.values())) == 17
    for code, (colour, hatched) in EMERGING_STYLES.items():
        red, _, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        if code < 9:
            assert red > blue, code  # hot: reds and oranges
        elif code > 9:
            assert blue > red, code  # cold: blues
        assert hatched == (code in (5, 6, 7, 8, 14, 15, 16, 17)), code
    m = build_map(dataclasses.replace(layers, emerging_periods="9 weeks"))
    html = m.get_root().render()
    assert "The categories rest on 9 weeks. Fewer than ten periods" in html
    present = set(layers.emerging["code"].astype(int))
    spec, _ = _unit_layer_props(m, "Emerging")
    fills = [f for f, label in zip(spec["palette"], spec["labels"], strict=True) if label]
    assert len(set(fills)) == len(fills)  # no two categories share a fill
    from geo_crime.stats.emerging import CATEGORIES

    assert present and all(CATEGORIES[c] in html for c in present)


def test_large_maps_warn(layers):
    assert MAX_FEATURES == 20_000
    with pytest.warns(LargeMapWarning, match="coarser H3 resolution.*GeoPackage"):
        build_map(MapLayers(units=layers.units), max_features=100)


def test_classification_schemes():
    y = np.r_[np.arange(1.0, 101.0), np.nan]
    jenks = classify_values(y, k=4)
    assert jenks.k == 4 and jenks.codes[-1] == -1
    assert jenks.codes[:-1].min() == 0 and jenks.codes[:-1].max() == 3
    assert (np.diff(jenks.codes[:-1]) >= 0).all()
    quant = classify_values(y, scheme="quantiles", k=4)
    assert np.bincount(quant.codes[:-1]).tolist() == [25, 25, 25, 25]
    assert classify_values([1.0, 1.0, 2.0], k=5).k == 2
    big = np.random.default_rng(0).gamma(2.0, 10.0, 3000)
    first, second = classify_values(big), classify_values(big)
    assert (first.codes == second.codes).all()  # deterministic, even when sampled
    assert first.labels()[0].startswith(f"{big.min():,.2f}"[:3])


def test_city_wide_res8_map_size(tmp_path):
    """A city-wide H3 resolution-8 map (about 1,800 cells) with every layer stays < 3 MB."""
    divisions = _divisions()
    try:
        from geo_crime.units import h3_units as city_h3_units

        units = city_h3_units(8, contain="overlap")
    except Exception:  # units.py unavailable: the same cells from the division outline
        area = shapely.union_all(divisions.geometry.to_numpy())
        cells = set(h3.geo_to_cells(area, 8))
        cells |= {n for c in list(cells) for n in h3.grid_disk(c, 1)}
        units = h3_units(sorted(cells))
    n = len(units)
    assert 1_500 <= n <= 2_500
    rng = np.random.default_rng(3)
    count = rng.poisson(40, n)
    units = units.assign(count=count, severity=count * rng.uniform(1, 5, n))
    units["population"] = rng.integers(0, 6000, n)
    ids = units["unit_id"]
    gi = pd.DataFrame(
        {"unit_id": ids, "gi_bin": rng.integers(-3, 4, n), "gi_z": rng.normal(size=n)}
    )
    lisa = pd.DataFrame({"unit_id": ids, "cluster_code": rng.integers(0, 5, n)})
    emerging = pd.DataFrame({"unit_id": ids, "code": rng.integers(1, 18, n)})
    forecast = pd.DataFrame({"unit_id": ids, "prediction": rng.gamma(2, 10, n)})
    # ~1,135 derived reporting districts: Voronoi cells of random points, clipped to the city
    area = shapely.union_all(divisions.geometry.to_numpy())
    minx, miny, maxx, maxy = area.bounds
    pts = shapely.points(rng.uniform(minx, maxx, 4000), rng.uniform(miny, maxy, 4000))
    pts = pts[shapely.contains(area, pts)][:1135]
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=area))
    rd_geoms = shapely.intersection(cells, area)
    rds = gpd.GeoDataFrame(
        {"unit_id": [f"{i:04d}" for i in range(len(rd_geoms))]}, geometry=rd_geoms, crs=4326
    )
    rds.attrs["approximate"] = True
    path = tmp_path / "city.html"
    start = time.perf_counter()
    write_map(
        MapLayers(
            units=units,
            gi=gi,
            lisa=lisa,
            emerging=emerging,
            forecast=forecast,
            divisions=divisions,
            rds=rds,
            period="2024-01-01 to 2024-08-31",
        ),
        path,
        offline=True,
    )
    elapsed = time.perf_counter() - start
    size_mb = path.stat().st_size / 1e6
    print(f"\ncity-wide res-8 map: {n} cells, {len(rds)} RDs, {size_mb:.2f} MB in {elapsed:.1f} s")
    assert size_mb < 3  # the real city-wide maps are checked in test_map_browser.py
    # coordinates are quantised integers (no decimal degrees beyond 5 decimals anywhere)
    assert not re.search(r"-118\.\d{6,}", path.read_text(encoding="utf-8"))
    assert "Severity per 1,000 residents" in path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# a real browser
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through /usr/bin/chromedriver; a failure (not a skip) under CI."""
    # any alert/confirm/prompt (an XSS payload firing) is counted instead of shown
    count_alerts = (
        "window.__xss = 0; window.alert = window.confirm = window.prompt = "
        "function () { window.__xss += 1; };"
    )
    with headless_chromium(scripts=[count_alerts]) as driver:
        yield driver


_PATHS_IN_PANE = (
    "return document.querySelectorAll('.leaflet-' + arguments[0] + '-pane path').length;"
)

_FIND_FEATURE = """
var target = arguments[0], pane = arguments[1], found = null;
var map = window[document.querySelector('.folium-map').id];
map.eachLayer(function (l) {
    if (l.feature && l.feature.id === target && l.options.pane === pane) { found = l.getElement(); }
});
return found;
"""

_OPEN_HOSTILE_TOOLTIPS = """
var map = window[document.querySelector('.folium-map').id], out = [];
map.eachLayer(function (group) {
    if (!(group instanceof L.GeoJSON) || !group.getTooltip()) { return; }
    group.eachLayer(function (l) {
        if (JSON.stringify(l.feature.properties).indexOf('alert(1)') < 0) { return; }
        l.fire('mouseover', {latlng: l.getBounds().getCenter()}, true);
        var el = group.getTooltip().getElement();
        out.push({pane: group.options.pane, text: el.textContent,
                  bad: el.querySelectorAll('script, [onmouseover]').length});
        l.fire('mouseout', {}, true);
    });
});
return out;
"""


def test_offline_map_in_headless_chromium(browser, offline_html, layers, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    n_units = len(layers.units)
    browser.get(offline_html.as_uri())
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(_PATHS_IN_PANE, layer_pane("severity")) >= n_units
    )
    assert browser.execute_script("return typeof L !== 'undefined' && L.version") == "1.9.4"
    assert browser.find_elements("css selector", ".leaflet-container")
    # one SVG path per feature of the visible layer; the hidden layers draw nothing
    assert browser.execute_script(_PATHS_IN_PANE, layer_pane("severity")) == n_units
    assert browser.execute_script(_PATHS_IN_PANE, layer_pane("divisions")) == len(layers.divisions)
    for hidden in ("rate", "gi", "lisa", "emerging", "forecast", "rds"):
        assert browser.execute_script(_PATHS_IN_PANE, layer_pane(hidden)) == 0, hidden
    assert browser.execute_script("return document.querySelectorAll('.leaflet-tile').length") == 0
    legend = browser.find_element("css selector", ".gc-legend").text
    assert "Severity points per km², 2020-03-15 to 2021-07-31" in legend
    assert "Severity per km²" not in legend and "Getis-Ord" not in legend
    screenshot = tmp_path / "offline_map.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    print(f"\nscreenshot: {screenshot}")

    # a real mouse hover over the hostile unit shows its strings as text
    evil = browser.execute_script(_FIND_FEATURE, layers.units.attrs["evil_unit"], "gc-severity")
    assert evil is not None
    ActionChains(browser).move_to_element(evil).perform()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_elements("css selector", ".leaflet-tooltip-pane .leaflet-tooltip")
    )
    tip = browser.find_element("css selector", ".leaflet-tooltip-pane .leaflet-tooltip").text
    assert "<script>alert(1)</script>" in tip and 'onmouseover="alert(1)' in tip

    # switch every overlay on, then each choropleth in turn: it draws one path per feature,
    # the one before is gone, and every tooltip of a hostile feature renders text, never markup
    browser.execute_script(
        "document.querySelectorAll('.leaflet-control-layers-overlays input')"
        ".forEach(function (i) { if (!i.checked) { i.click(); } });"
    )
    assert browser.execute_script(_PATHS_IN_PANE, layer_pane("rds")) == len(layers.rds)
    radios = browser.find_elements("css selector", ".leaflet-control-layers-base input")
    assert len(radios) == 6
    opened = []
    for radio, key in zip(radios[1:], ("rate", "gi", "lisa", "emerging", "forecast"), strict=True):
        radio.click()
        assert browser.execute_script(_PATHS_IN_PANE, layer_pane(key)) == n_units, key
        assert browser.execute_script(_PATHS_IN_PANE, layer_pane("severity")) == 0, key
        opened += browser.execute_script(_OPEN_HOSTILE_TOOLTIPS)
    legend = browser.find_element("css selector", ".gc-legend").text
    assert "Forecast" in legend and "Reporting districts (approximate)" in legend
    assert "Getis-Ord" not in legend  # the legend follows the chosen layer
    radios[0].click()
    opened += browser.execute_script(_OPEN_HOSTILE_TOOLTIPS)
    panes = {o["pane"] for o in opened}
    assert {
        "gc-severity",
        "gc-rate",
        "gc-gi",
        "gc-lisa",
        "gc-emerging",
        "gc-forecast",
        "gc-divisions",
    } <= panes
    for item in opened:
        assert "<script>alert(1)</script>" in item["text"], item
        assert item["bad"] == 0, item
    assert browser.execute_script("return document.querySelectorAll('[onmouseover]').length") == 0
    assert browser.execute_script("return document.scripts.length") == len(
        re.findall(r"<script\b", offline_html.read_text(encoding="utf-8"))
    )
    assert browser.execute_script("return window.__xss") == 0

    logs = browser.get_log("browser")
    severe = [entry for entry in logs if entry["level"] == "SEVERE"]
    assert severe == [], json.dumps(severe, indent=1)


def test_vendored_leaflet_is_complete():
    from geo_crime.publish.maps import ASSETS_DIR, LEAFLET_VERSION

    assert "BSD 2-Clause" in (ASSETS_DIR / "LICENSE").read_text(encoding="utf-8")
    js = (ASSETS_DIR / "leaflet.js").read_text(encoding="utf-8")
    assert f'version="{LEAFLET_VERSION}"' in js
    css = (ASSETS_DIR / "leaflet.css").read_text(encoding="utf-8")
    for image in re.findall(r"url\((images/[^)]+\.png)\)", css):
        assert (ASSETS_DIR / image).exists(), image
    total = sum(p.stat().st_size for p in ASSETS_DIR.rglob("*") if p.is_file())
    assert total < 250_000  # small: Leaflet only


# --------------------------------------------------------------------------------------------
# the shared geometry source
# --------------------------------------------------------------------------------------------


def _decode(encoded: dict, name: str) -> list:
    """Polygons of one object of an encoded topology (what the browser runtime does)."""
    x0, y0, scale = encoded["q"]
    arcs = [(np.cumsum(np.reshape(a, (-1, 2)), axis=0) + [x0, y0]) / scale for a in encoded["arcs"]]
    out = []
    for feature in encoded["objects"][name]:
        polygons = []
        for polygon in feature:
            rings = []
            for refs in polygon:
                points: list = []
                for r in refs:
                    arc = arcs[r] if r >= 0 else arcs[~r][::-1]
                    points.extend(arc if not points else arc[1:])
                rings.append(points)
            polygons.append(shapely.Polygon(rings[0], rings[1:]))
        out.append(shapely.MultiPolygon(polygons))
    return out


def test_topology_shares_borders_and_simplifies_without_slivers(westla_h3_units):
    from geo_crime.publish.maps.topology import Topology

    cells = westla_h3_units[0].geometry.to_numpy()
    divisions = _divisions().geometry.to_numpy()
    topo = Topology(precision=5)
    topo.add("cells", cells, tolerance_m=1.0)
    topo.add("divisions", divisions, tolerance_m=15.0)
    topo.add("again", divisions, tolerance_m=15.0)  # a second layer of the same polygons
    encoded = topo.encode()
    refs = [
        abs(r) if r >= 0 else ~r
        for f in encoded["objects"]["cells"]
        for p in f
        for g in p
        for r in g
    ]
    counts = np.bincount(refs)
    assert (counts == 2).sum() > len(cells)  # inner borders are stored once for two cells
    assert encoded["objects"]["again"] == encoded["objects"]["divisions"]  # nothing repeated
    metres = gpd.GeoSeries(cells, crs=4326).to_crs(3310)
    decoded = gpd.GeoSeries(_decode(encoded, "cells"), crs=4326).to_crs(3310)
    assert decoded.is_valid.all()
    worst = max(a.hausdorff_distance(b) for a, b in zip(decoded, metres, strict=True))
    assert worst < 2.0  # ~1 m grid, 1 m tolerance
    # neighbours share their border exactly: no overlap, no gap
    union = decoded.union_all()
    assert abs(decoded.area.sum() - union.area) < 1e-6 * union.area
    assert abs(union.area - metres.union_all().area) < 1e-4 * union.area
    # the divisions are simplified more, and still tile without slivers
    dmetres = gpd.GeoSeries(divisions, crs=4326).to_crs(3310)
    ddecoded = gpd.GeoSeries(_decode(encoded, "divisions"), crs=4326).to_crs(3310)
    n_original = int(shapely.get_num_coordinates(divisions).sum())
    n_kept = sum(len(a) // 2 for a in encoded["arcs"])
    assert n_kept < 0.6 * (n_original + len(metres) * 7)
    assert max(a.hausdorff_distance(b) for a, b in zip(ddecoded, dmetres, strict=True)) < 20
    dunion = ddecoded.union_all()
    assert abs(ddecoded.area.sum() - dunion.area) < 1e-5 * dunion.area


def test_outlines_of_the_units_reuse_their_geometry(layers):
    rds = layers.units[["unit_id", "name", "geometry"]]
    m = build_map(MapLayers(units=layers.units, rds=rds, divisions=layers.divisions))
    outline = map_layers(m)["Reporting districts"]
    assert outline.spec["object"] == "units"  # stored once, drawn twice
    assert [r["id"] for r in outline.records] == layers.units["unit_id"].tolist()
    assert map_layers(m)["LAPD divisions"].spec["object"] == "divisions"
    alone = build_map(MapLayers(units=layers.units, divisions=layers.divisions))

    def shared(built) -> str:
        return next(c for c in built._children.values() if c._name == "GeoCrimeData").json

    assert shared(m) == shared(alone)  # no geometry added: only the outlines' names and ids


def test_approximate_districts_said_once(layers):
    """Derived districts are named approximate once: as the units, or else as the outlines."""
    import dataclasses

    outline_note = "Reporting district outlines are approximate (derived)."
    units_note = "Units are approximate (derived) reporting districts."
    html = build_map(layers).get_root().render()
    assert html.count(outline_note) == 1 and units_note not in html
    derived = layers.units.copy()
    derived.attrs["approximate"] = True
    html = build_map(dataclasses.replace(layers, units=derived)).get_root().render()
    assert html.count(units_note) == 1 and outline_note not in html
