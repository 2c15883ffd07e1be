"""Tests of geo_crime.units on the real LAPD data: H3, divisions, reporting districts, layers."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from geo_crime import units as gu
from geo_crime.core import schema
from geo_crime.core.errors import ConfigError, DataError, FetchError, InputError
from tests.fakes.shared_data import require_data as _data_root


def _boundary(name: str) -> Path:
    path = _data_root() / "boundaries" / name
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data file missing under CI: {path}")
        pytest.skip(f"missing {path}")
    return path


@pytest.fixture(scope="module")
def divisions() -> gpd.GeoDataFrame:
    _data_root()
    return gu.division_units()


@pytest.fixture(scope="module")
def city_h3() -> gpd.GeoDataFrame:
    _data_root()
    return gu.h3_units(8, study_area="city")


@pytest.fixture(scope="module")
def derived_rd(incidents, divisions):
    return gu.derive_rd_layer(incidents, divisions=divisions)


# --- H3 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("res", list(gu.H3_RESOLUTIONS))
def test_h3_cells_equal_scalar_h3_on_real_points(incidents, res):
    valid = incidents[incidents["spatial_valid"]]
    sample = valid.sample(3000, random_state=res)
    lat, lon = sample["lat"].to_numpy(), sample["lon"].to_numpy()
    got = gu.h3_cells(lat, lon, res)
    expected = [h3.latlng_to_cell(a, b, res) for a, b in zip(lat, lon, strict=True)]
    assert got.tolist() == expected


@pytest.mark.parametrize("res", [4, 11, 8.0, True, "8"])
def test_h3_resolution_outside_5_to_10_is_a_config_error(res):
    with pytest.raises(ConfigError):
        gu.h3_cells([34.0], [-118.3], res)


def test_h3_cells_invalid_coordinates():
    lat = np.array([34.05, np.nan, 95.0])
    lon = np.array([-118.25, -118.2, -118.2])
    with pytest.raises(InputError, match="2 of 3"):
        gu.h3_cells(lat, lon, 8)
    got = gu.h3_cells(lat, lon, 8, invalid="null")
    assert got[0] == h3.latlng_to_cell(34.05, -118.25, 8)
    assert got[1] is None and got[2] is None
    with pytest.raises(InputError):
        gu.h3_cells([34.0, 34.1], [-118.0], 8)


def test_h3_polygons_closed_counter_clockwise_lon_lat(city_h3):
    gu.check_units(city_h3)
    for cell, poly in zip(city_h3["unit_id"], city_h3.geometry, strict=True):
        ring = poly.exterior
        coords = np.asarray(ring.coords)
        assert ring.is_closed and tuple(coords[0]) == tuple(coords[-1])
        assert ring.is_ccw
        assert ((coords[:, 0] > -119) & (coords[:, 0] < -117)).all()  # x = longitude
        assert ((coords[:, 1] > 33) & (coords[:, 1] < 35)).all()  # y = latitude
        expected = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
        assert sorted(map(tuple, coords[:-1].tolist())) == sorted(expected)
    assert city_h3.attrs["approximate"] is False
    assert city_h3.attrs["h3_resolution"] == 8
    mean_area = city_h3["area_km2"].mean()
    assert 0.6 < mean_area < 0.9  # res 8 cells are about 0.74 km2


def test_city_fill_contains_zero_incident_cells(incidents, city_h3):
    ids, report = gu.assign_units(incidents, city_h3)
    counts = ids.value_counts().reindex(city_h3["unit_id"], fill_value=0)
    assert (counts == 0).sum() > 10
    assert (counts > 0).sum() > 1000
    assert report.assigned + report.outside + report.not_spatially_valid == report.total
    assert report.total == len(incidents)
    assert report.assigned == int(counts.sum())
    # every cell centre lies in the city outline
    city = gu.study_area("city")
    centres = [Point(h3.cell_to_latlng(c)[::-1]) for c in city_h3["unit_id"]]
    assert all(city.contains(p) for p in centres)


def test_ensure_cells_adds_the_cells_of_outside_incidents(incidents, city_h3):
    ids, report = gu.assign_units(incidents, city_h3, ensure_cells=True)
    assert report.outside == 0
    assert report.added_cells and report.assigned_to_added_cells > 0
    grown = gu.ensure_cells(city_h3, report.added_cells)
    gu.check_units(grown)
    assert len(grown) == len(city_h3) + len(report.added_cells)
    assert set(ids.dropna()) <= set(grown["unit_id"])
    assert not grown.loc[grown["unit_id"].isin(report.added_cells), "in_study_area"].any()
    ids2, report2 = gu.assign_units(incidents, grown)
    assert report2.outside == 0 and ids2.equals(ids)
    with pytest.raises(ConfigError):
        gu.ensure_cells(city_h3, [h3.latlng_to_cell(34.0, -118.3, 7)])


def test_h3_overlap_fill_covers_the_area():
    _data_root()
    area = gu.study_area("divisions")
    units = gu.h3_units(7, study_area=area, contain="overlap")
    covered = shapely.union_all(units.geometry.to_numpy())
    assert area.difference(covered).area < 1e-9
    centre = gu.h3_units(7, study_area=area)
    assert len(units) > len(centre)
    with pytest.raises(ConfigError):
        gu.h3_units(7, study_area=area, contain="full")
    with pytest.raises(ConfigError):
        gu.h3_units(12)


def test_h3_cells_crossing_the_antimeridian_are_refused():
    with pytest.raises(DataError, match="antimeridian"):
        gu.h3_units(5, study_area=box(179.5, -0.5, 180, 0.5))


def test_assign_units_accepts_minimal_units():
    cells = [h3.latlng_to_cell(34.05, -118.25, 9), h3.latlng_to_cell(34.10, -118.30, 9)]
    minimal = gpd.GeoDataFrame(
        {"unit_id": cells, "unit_type": "h3"},
        geometry=[Polygon([(b, a) for a, b in h3.cell_to_boundary(c)]) for c in cells],
        crs="EPSG:4326",
    )
    points = pd.DataFrame({"lat": [34.05, 34.10, 34.2], "lon": [-118.25, -118.30, -118.3]})
    ids, report = gu.assign_units(points, minimal)
    assert ids.tolist()[:2] == cells and pd.isna(ids.iloc[2])
    assert (report.assigned, report.outside, report.not_spatially_valid) == (2, 1, 0)
    with pytest.raises(DataError):
        gu.check_units(minimal)  # no area_km2, no attrs: not a full unit set


def test_study_areas_agree():
    _data_root()
    city = gu.study_area("city")
    divisions = gu.study_area("divisions")
    county = gu.study_area("county")
    to_km2 = 1 / 1e6

    def km2(geom):
        return gpd.GeoSeries([geom], crs="EPSG:4326").to_crs("EPSG:3310").area.iloc[0] * to_km2

    assert 1200 < km2(city) < 1280
    assert km2(city.symmetric_difference(divisions)) < 2.0  # the same outline, 2018 vs GeoHub
    assert km2(city.difference(county)) < 0.01 * km2(city)
    assert km2(county) > 10000
    with pytest.raises(ConfigError):
        gu.study_area("nowhere")


# --- the unit contract ----------------------------------------------------------------------------


def test_unit_area_km2_takes_the_column_else_measures_the_geometry():
    squares = gpd.GeoDataFrame(
        geometry=[box(0, 0, 1000, 1000), box(0, 0, 2000, 500)], crs="EPSG:3310"
    ).to_crs("EPSG:4326")
    assert gu.unit_area_km2(squares) == pytest.approx([1.0, 1.0], rel=1e-6)
    with_column = squares.assign(area_km2=[3.0, "n/a"])
    assert gu.unit_area_km2(with_column)[0] == 3.0
    assert np.isnan(gu.unit_area_km2(with_column)[1])
    assert gu.unit_area_km2(with_column, from_column=False) == pytest.approx([1.0, 1.0], rel=1e-6)
    with pytest.raises(DataError, match="no CRS"):
        gu.unit_area_km2(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]))


def test_units_carry_no_population_and_do_not_import_rates():
    _data_root()
    divisions = gu.make_units("division")
    assert "population" not in divisions.columns
    assert "population" not in divisions.attrs
    code = (
        "import sys, geo_crime.units; "
        "print(sorted(m for m in sys.modules "
        "if m in ('geo_crime.cube.rates', 'geo_crime.net.fetch')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


# --- divisions and assignment -------------------------------------------------------------------


def test_division_units(divisions):
    gu.check_units(divisions)
    assert divisions["unit_id"].tolist() == [str(i) for i in range(1, 22)]
    assert divisions["area"].tolist() == list(range(1, 22))
    assert {schema.APREC_TO_AREA[n] for n in divisions["name"]} == set(range(1, 22))
    assert divisions["unit_type"].eq("division").all()
    assert divisions.attrs["approximate"] is False
    assert 1200 < divisions["area_km2"].sum() < 1280


def test_assign_to_divisions_conserves_counts(incidents, divisions):
    ids, report = gu.assign_units(incidents, divisions)
    assert report.assigned + report.outside + report.not_spatially_valid == len(incidents)
    assert report.not_spatially_valid == int((~incidents["spatial_valid"]).sum())
    assert ids.notna().sum() == report.assigned
    assert ids.index.equals(incidents.index)
    stated = incidents["area"].astype("Int64").astype(str)
    assigned = ids.notna()
    agree = (ids[assigned] == stated[assigned]).mean()
    assert agree > 0.98


def test_incidents_outside_their_division(incidents, divisions):
    check = gu.incidents_outside_division(incidents, divisions)
    # Measured on the shipped data: 975 incidents in another division, 514 in none (1.16%).
    assert check.checked == int(incidents["spatial_valid"].sum())
    assert check.consistent + check.n_outside == check.checked
    assert 700 <= check.in_other_division <= 1300
    assert 300 <= check.outside_all_divisions <= 800
    assert 0.005 < check.share < 0.02
    assert len(check.flagged) == check.n_outside
    assert set(check.flagged["status"]) == {"other_division", "outside_all_divisions"}
    other = check.flagged[check.flagged["status"] == "other_division"]
    assert (other["located_area"] != other["area"]).all()
    recent = check.flagged[check.flagged["source"] == "reduced_2024"]
    assert 800 <= len(recent) <= 1600  # of 105,750 rows of 2024


def test_assign_to_tracts_conserves_counts(incidents):
    tracts = gu.polygon_units(
        _boundary("la_county_census_tracts_2020_population__tract_crimes_per_1000.geojson")
    )
    ids, report = gu.assign_units(incidents, tracts)
    assert report.total == len(incidents)
    assert report.assigned + report.outside + report.not_spatially_valid == report.total
    assert report.outside < 0.001 * report.total  # tracts cover the whole county
    assert ids.dropna().isin(tracts["unit_id"]).all()


def test_points_on_shared_borders_go_to_exactly_one_unit():
    squares = gpd.GeoDataFrame(
        {"unit_id": ["a", "b", "c"], "unit_type": "polygon"},
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 2, 2)],
        crs="EPSG:4326",
    )
    squares["area_km2"] = 1.0
    squares.attrs.update(approximate=False, source="test")
    points = pd.DataFrame(
        {
            "lat": [0.5, 0.5, 1.0, 0.5, 5.0, np.nan],
            "lon": [0.5, 1.0, 1.0, 1.5, 5.0, 0.5],
            "spatial_valid": [True, True, True, True, True, False],
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    ids, report = gu.assign_units(points, squares)
    assert ids.tolist()[:4] == ["a", "a", "a", "b"]
    assert ids.isna().tolist() == [False, False, False, False, True, True]
    assert report.on_shared_border == 2
    assert (report.assigned, report.outside, report.not_spatially_valid) == (4, 1, 1)


# --- reporting districts ------------------------------------------------------------------------


def test_derived_rd_layer_every_2024_district_once_inside_its_division(
    incidents, divisions, derived_rd
):
    rd, report = derived_rd
    gu.check_units(rd)
    assert rd.attrs["approximate"] is True
    assert rd.attrs["source"] == "derived from incident points (Voronoi), approximate"
    assert rd["approximate"].all()
    assert rd["unit_type"].eq("rd").all()
    recent = incidents[(incidents["source"] == "reduced_2024") & incidents["spatial_valid"]]
    codes = set(recent["rpt_dist"].dropna())
    assert len(codes) > 1100
    counts = rd["unit_id"].value_counts()
    assert all(counts.get(code, 0) == 1 for code in codes)
    # inside its own division (RD code // 100 == PREC), up to ~1 cm of rounding
    by_area = dict(zip(divisions["area"], divisions.geometry, strict=True))
    for code, area, geom in zip(rd["unit_id"], rd["area"], rd.geometry, strict=True):
        assert int(code) // 100 == area
        assert by_area[area].buffer(1e-7).contains(geom), code
    # the districts of a division tile it: same area, no overlap
    rd_area = rd.groupby("area")["area_km2"].sum()
    div_area = divisions.set_index("area")["area_km2"]
    assert np.allclose(rd_area.reindex(div_area.index), div_area, rtol=1e-4)
    albers = rd.to_crs("EPSG:3310")
    overlap = albers.area.sum() - shapely.union_all(albers.geometry.to_numpy()).area
    assert overlap < 1000.0  # m2, over 1,239 km2
    # each 2024 incident (inside its division) lies in exactly one district, mostly its own
    ids, assign = gu.assign_units(recent, rd)
    assert assign.on_shared_border < 0.001 * len(recent)
    assert (ids == recent["rpt_dist"]).mean() > 0.93
    # accounting
    assert report.total == len(incidents)
    assert (
        report.not_spatially_valid
        + report.rd_missing_or_malformed
        + report.rd_division_unknown
        + report.outside_own_division
        + report.used
        == report.total
    )
    assert report.districts == len(rd)
    assert report.districts_without_polygon == []
    attributes = gu.load_rd_attributes()
    matched = rd["unit_id"].isin(attributes.index)
    assert matched.mean() > 0.99
    assert rd.loc[matched, "bureau"].notna().all()
    assert (
        rd.loc[matched, "division_name"]
        == attributes.loc[rd["unit_id"][matched], "division_name"].to_numpy()
    ).all()  # noqa: E501


def test_rd_units_auto_derives_without_cached_official_layer(incidents, tmp_path):
    rd = gu.rd_units(incidents, cache=tmp_path)
    assert rd.attrs["approximate"] is True
    assert not (tmp_path / gu.LOCK_FILE).exists()
    with pytest.raises(ConfigError):
        gu.rd_units(None, cache=tmp_path)
    with pytest.raises(ConfigError):
        gu.rd_units(incidents, source="somewhere")


def test_rd_units_uses_a_cached_official_layer(derived_rd, tmp_path):
    rd, _ = derived_rd
    # Stand in for the downloaded official layer: same fields as the GeoHub layer.
    official = gpd.GeoDataFrame(
        {
            "NAME": rd["unit_id"],
            "REPDIST": rd["unit_id"].astype(int),
            "PREC": rd["area"].astype(int),
            "APREC": rd["division_name"],
            "BUREAU": rd["bureau"],
        },
        geometry=rd.geometry.to_numpy(),
        crs="EPSG:4326",
    )
    entry = gu.load_manifest()["layers"][gu.RD_LAYER]
    official.to_file(tmp_path / entry["filename"], driver="GeoJSON")
    units = gu.rd_units(None, cache=tmp_path)
    assert units.attrs["approximate"] is False
    assert not units["approximate"].any()
    assert units["unit_id"].tolist() == rd["unit_id"].tolist()
    lock = json.loads((tmp_path / gu.LOCK_FILE).read_text())
    digest = hashlib.sha256((tmp_path / entry["filename"]).read_bytes()).hexdigest()
    assert lock[gu.RD_LAYER]["sha256"] == digest  # trusted on first use
    with open(tmp_path / entry["filename"], "a") as fh:
        fh.write(" ")
    with pytest.raises(DataError, match="sha256"):
        gu.rd_units(None, cache=tmp_path)


def test_manifest_lists_the_official_rd_layer():
    manifest = gu.load_manifest()
    entry = manifest["layers"]["lapd_reporting_districts"]
    assert entry["url"].startswith("https://")
    assert "f=geojson" in entry["url"]
    assert entry["sha256"] is None  # recorded on first download (trust on first use)
    assert entry["paging"] == "arcgis"


def _write_manifest(tmp_path: Path, url: str) -> Path:
    manifest = {
        "version": 1,
        "layers": {"test_layer": {"url": url, "filename": "test.geojson", "paging": "arcgis"}},
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_fetch_boundary_trusts_on_first_use_and_verifies(divisions, tmp_path):
    source = tmp_path / "source.geojson"
    divisions.iloc[:3][["unit_id", "geometry"]].to_file(source, driver="GeoJSON")
    manifest = _write_manifest(tmp_path, source.as_uri())
    cache = tmp_path / "cache"
    path = gu.fetch_boundary("test_layer", cache_dir=cache, manifest=manifest)
    assert path.read_bytes() == source.read_bytes()
    lock = json.loads((cache / gu.LOCK_FILE).read_text())
    assert lock["test_layer"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert gu.fetch_boundary("test_layer", cache_dir=cache, manifest=manifest) == path
    # the upstream file changes: a new download no longer matches the recorded checksum
    path.unlink()
    divisions.iloc[:4][["unit_id", "geometry"]].to_file(source, driver="GeoJSON")
    with pytest.raises(FetchError, match="differs"):
        gu.fetch_boundary("test_layer", cache_dir=cache, manifest=manifest)
    assert not path.exists()
    with pytest.raises(ConfigError):
        gu.fetch_boundary("nope", cache_dir=cache, manifest=manifest)
    with pytest.raises(FetchError):
        gu.fetch_boundary(
            "test_layer",
            url=(tmp_path / "missing.geojson").as_uri(),
            cache_dir=tmp_path / "c2",
            manifest=manifest,
            retries=0,
        )


def test_fetch_boundary_follows_arcgis_pages(tmp_path):
    features = [
        {
            "type": "Feature",
            "properties": {"NAME": f"{i:04d}"},
            "geometry": {"type": "Point", "coordinates": [-118.0 - i / 100, 34.0]},
        }
        for i in range(5)
    ]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            query = dict(p.split("=") for p in self.path.split("?", 1)[1].split("&"))
            offset = int(query.get("resultOffset", 0))
            page = features[offset : offset + 2]
            doc = {"type": "FeatureCollection", "features": page}
            if offset + 2 < len(features):
                doc["properties"] = {"exceededTransferLimit": True}
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/geo+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/query?where=1%3D1&f=geojson"
        manifest = _write_manifest(tmp_path, url)
        path = gu.fetch_boundary("test_layer", cache_dir=tmp_path / "cache", manifest=manifest)
    finally:
        server.shutdown()
        server.server_close()
    doc = json.loads(path.read_text())
    assert [f["properties"]["NAME"] for f in doc["features"]] == [f"{i:04d}" for i in range(5)]


# --- any polygon layer ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "n", "id_column", "has_name"),
    [
        ("la_times_neighborhoods__LA_Times_Neighborhood_Boundaries.geojson", 114, "OBJECTID", True),
        ("la_city_council_districts__council_districts.geojson", 15, "OBJECTID", True),
        (
            "la_county_census_tracts_2020_population__tract_crimes_per_1000.geojson",
            2495,
            "GEOID",
            False,
        ),
        ("la_city_boundary__CityBoundaryofLosAngeles.zip", 1, "objectid", False),
        ("la_neighborhood_councils__neighborhood_councils.geojson", 99, "NC_ID", True),
    ],
)
def test_polygon_units_on_real_layers(name, n, id_column, has_name):
    units = gu.polygon_units(_boundary(name))
    gu.check_units(units)
    assert len(units) == n
    assert units.attrs["id_column"] == id_column
    assert units["unit_type"].eq("polygon").all()
    assert (units["area_km2"] > 0).all()
    assert units.geometry.is_valid.all()
    minx, miny, maxx, maxy = units.total_bounds
    assert -119.5 < minx < maxx < -117 and 32.5 < miny < maxy < 35
    assert units["name"].notna().all() == has_name
    report = units.attrs["read_report"]
    assert (
        report["features_read"]
        == report["kept"] + report["null_geometry"] + report["non_polygon_dropped"]
    )


def test_polygon_units_repairs_invalid_neighbourhood():
    units = gu.polygon_units(
        _boundary("la_times_neighborhoods__LA_Times_Neighborhood_Boundaries.geojson"),
        name_column="name",
    )
    assert units.attrs["read_report"]["repaired"] == 1
    assert "Adams-Normandie" in set(units["name"])


def test_polygon_units_reprojects_drops_non_polygons_and_picks_ids(tmp_path):
    squares = gpd.GeoDataFrame(
        {
            "code": ["x1", "x2", "x3", "x4", "x5"],
            "label": ["bow tie", "square", "line", "point", "square 2"],
            "value": [1.5, 2.5, 3.5, 4.5, 5.5],
        },
        geometry=[
            Polygon([(0, 0), (1000, 1000), (1000, 0), (0, 1000)]),  # self-intersecting
            box(2000, 0, 3000, 1000),
            LineString([(0, 0), (10, 10)]),
            Point(5, 5),
            box(4000, 0, 5000, 1000),
        ],
        crs="EPSG:3310",
    )
    path = tmp_path / "layer.gpkg"
    squares.to_file(path, layer="mixed", driver="GPKG")
    units = gu.polygon_units(path, name_column="label", columns=["value"])
    gu.check_units(units)
    report = units.attrs["read_report"]
    assert (report["features_read"], report["kept"]) == (5, 3)
    assert (report["non_polygon_dropped"], report["repaired"]) == (2, 1)
    assert units["unit_id"].tolist() == ["x1", "x2", "x5"]
    assert units["value"].tolist() == [1.5, 2.5, 5.5]
    assert units.crs.to_epsg() == 4326
    assert units["area_km2"].iloc[1] == pytest.approx(1.0, rel=1e-6)
    assert units["area_km2"].iloc[0] == pytest.approx(0.5, rel=1e-6)  # the bow tie's 2 halves
    with pytest.raises(ConfigError):
        gu.polygon_units(path, id_column="label_missing")
    with pytest.raises(InputError):
        gu.polygon_units(tmp_path / "missing.geojson")
    row_ids = gu.polygon_units(path, id_column=None, columns=[])
    assert row_ids.attrs["id_column"] == "code"


# --- timings (printed, not asserted) --------------------------------------------------------------


def test_print_timings_at_one_million_points(incidents, capsys):
    valid = incidents[incidents["spatial_valid"]]
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(valid), 1_000_000)
    lat = valid["lat"].to_numpy()[pick]
    lon = valid["lon"].to_numpy()[pick]
    start = time.perf_counter()
    cells = gu.h3_cells(lat, lon, 8)
    t_h3 = time.perf_counter() - start
    # jitter up to ~50 m so that nearly every point is distinct (the benchmark data's case)
    jlat = lat + rng.uniform(-4.5e-4, 4.5e-4, lat.size)
    jlon = lon + rng.uniform(-5.4e-4, 5.4e-4, lon.size)
    start = time.perf_counter()
    gu.h3_cells(jlat, jlon, 8)
    t_h3_distinct = time.perf_counter() - start
    tracts = gu.polygon_units(
        _boundary("la_county_census_tracts_2020_population__tract_crimes_per_1000.geojson")
    )
    frame = pd.DataFrame({"lat": jlat, "lon": jlon, "spatial_valid": True})
    start = time.perf_counter()
    ids, report = gu.assign_units(frame, tracts)
    t_assign = time.perf_counter() - start
    assert len(cells) == 1_000_000 and report.total == 1_000_000
    with capsys.disabled():
        print(
            f"\n[timing] h3_cells 1M resampled real points: {t_h3:.2f} s; "
            f"1M distinct (jittered) points: {t_h3_distinct:.2f} s; "
            f"assign_units 1M distinct points -> {len(tracts):,} tracts: {t_assign:.2f} s"
        )
