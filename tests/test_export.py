"""GIS exports: RFC 7946 GeoJSON, one GeoPackage, GeoParquet; privacy; atomic writes."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from shapely.geometry import Polygon

from geo_crime.core.errors import PrivacyError
from geo_crime.core.schema import VICTIM_COLUMNS
from geo_crime.publish import export as export_mod
from geo_crime.publish.export import (
    export_layers,
    layer_name,
    public_table,
    rfc7946_feature_collection,
)
from geo_crime.publish.privacy import suppress_small_units, victim_columns
from geo_crime.stats.hotspots import gi_star_table

EVIL = '<script>alert(1)</script>" onmouseover="alert(1)'


@pytest.fixture(scope="module")
def unit_table(westla_h3_units) -> gpd.GeoDataFrame:
    """Real West LA H3 units with per-unit measures, names and one donut unit with a hole."""
    units, y = westla_h3_units
    table = units.copy()
    table["count"] = y.astype(np.int64)
    table["severity"] = y * 2.5
    table["rate"] = np.where(y > 0, y / 7.0, np.nan)
    table["name"] = [f"cell {i}" for i in range(len(table))]
    table.loc[0, "name"] = EVIL
    table["flag"] = y > 10
    table["period_start"] = pd.Timestamp("2020-03-01")
    # a clockwise polygon with a counter-clockwise hole: the export must re-orient both
    outer = [(-118.50, 34.00), (-118.50, 34.01), (-118.49, 34.01), (-118.49, 34.00)]
    hole = [(-118.497, 34.003), (-118.493, 34.003), (-118.493, 34.007), (-118.497, 34.007)]
    donut = Polygon(outer, [hole])
    assert not donut.exterior.is_ccw and donut.interiors[0].is_ccw
    extra = gpd.GeoDataFrame(
        {
            "unit_id": ["donut"],
            "unit_type": ["polygon"],
            "count": [12],
            "severity": [30.0],
            "rate": [1.5],
            "name": ["donut"],
            "flag": [True],
            "period_start": [pd.Timestamp("2020-03-01")],
        },
        geometry=[donut],
        crs="EPSG:4326",
    )
    return gpd.GeoDataFrame(pd.concat([table, extra], ignore_index=True), crs="EPSG:4326")


@pytest.fixture(scope="module")
def gi_table(westla_h3_units) -> gpd.GeoDataFrame:
    units, y = westla_h3_units
    return gi_star_table(units, y)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, unit_table, gi_table):
    folder = tmp_path_factory.mktemp("export")
    counts = unit_table.set_index("unit_id")["count"]
    paths = export_layers({"units": unit_table, "Gi* hot spots": gi_table}, folder, counts=counts)
    return folder, paths


def test_files_written(exported):
    folder, paths = exported
    names = [p.name for p in paths]
    assert names == [
        "units.geojson",
        "gi_hot_spots.geojson",
        "geo_crime.gpkg",
        "units.parquet",
        "gi_hot_spots.parquet",
    ]
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def test_geopackage_layers_and_values(exported, unit_table, gi_table):
    folder, _ = exported
    gpkg = folder / "geo_crime.gpkg"
    layers = pyogrio.list_layers(gpkg)
    assert [name for name, _ in layers] == ["units", "gi_hot_spots"]
    info = pyogrio.read_info(gpkg, layer="units")
    assert info["features"] == len(unit_table)
    assert info["crs"] == "EPSG:4326"
    assert dict(zip(info["fields"], info["ogr_types"], strict=True))["count"] == "OFTInteger64"
    units = pyogrio.read_dataframe(gpkg, layer="units")
    ok = unit_table["count"].to_numpy() >= 3
    assert (units["suppressed"].to_numpy() == ~ok).all()
    np.testing.assert_array_equal(units["count"].to_numpy()[ok], unit_table["count"][ok])
    assert units["count"][~ok].isna().all() and units["severity"][~ok].isna().all()
    assert units["rate"][~ok].isna().all()
    assert units["name"].tolist() == unit_table["name"].tolist()  # raw data, not escaped
    gi = pyogrio.read_dataframe(gpkg, layer="gi_hot_spots")
    assert len(gi) == len(gi_table)
    np.testing.assert_array_equal(gi["gi_bin"], gi_table["gi_bin"])
    np.testing.assert_allclose(gi["gi_z"], gi_table["gi_z"])
    small = gi_table["y"].to_numpy() < 3  # y is the count here
    assert gi["y"][small].isna().all() and gi["suppressed"].to_numpy().tolist() == small.tolist()


def test_geojson_read_back_with_gdal(exported, unit_table, gi_table):
    folder, _ = exported
    units = pyogrio.read_dataframe(folder / "units.geojson")
    assert len(units) == len(unit_table)
    assert units.crs.to_epsg() == 4326
    assert units["unit_id"].tolist() == unit_table["unit_id"].tolist()
    ok = unit_table["count"].to_numpy() >= 3
    np.testing.assert_array_equal(units["count"][ok].astype(int), unit_table["count"][ok])
    np.testing.assert_allclose(units["severity"][ok], unit_table["severity"][ok])
    gi = pyogrio.read_dataframe(folder / "gi_hot_spots.geojson")
    assert len(gi) == len(gi_table)
    np.testing.assert_array_equal(gi["gi_bin"], gi_table["gi_bin"])
    # geometry survives within the 6-decimal rounding
    dist = shapely.hausdorff_distance(units.geometry.to_numpy(), unit_table.geometry.to_numpy())
    assert np.nanmax(dist) < 1e-6


def test_geoparquet_read_back(exported, unit_table, gi_table):
    folder, _ = exported
    # the GDAL bundled with pyogrio has no (Geo)Parquet driver; read with geopandas/pyarrow
    if "Parquet" in pyogrio.list_drivers():
        units = pyogrio.read_dataframe(folder / "units.parquet")
    else:
        units = gpd.read_parquet(folder / "units.parquet")
    assert len(units) == len(unit_table) and units.crs.to_epsg() == 4326
    ok = unit_table["count"].to_numpy() >= 3
    assert str(units["count"].dtype) == "Int64"
    np.testing.assert_array_equal(units["count"][ok].to_numpy(int), unit_table["count"][ok])
    assert units["count"][~ok].isna().all()
    meta = json.loads(pq.read_schema(folder / "units.parquet").metadata[b"geo"])
    assert meta["primary_column"] == "geometry"
    gi = gpd.read_parquet(folder / "gi_hot_spots.parquet")
    np.testing.assert_array_equal(gi["gi_bin"], gi_table["gi_bin"])


def test_geojson_follows_rfc7946(exported, unit_table):
    folder, _ = exported
    text = (folder / "units.geojson").read_text(encoding="utf-8")
    doc = json.loads(text)
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc
    assert "NaN" not in text and "Infinity" not in text
    features = doc["features"]
    assert len(features) == len(unit_table)
    for feature, (_, row) in zip(features, unit_table.iterrows(), strict=True):
        assert feature["id"] == row["unit_id"] == feature["properties"]["unit_id"]
        geom = feature["geometry"]
        assert geom["type"] == "Polygon"
        rings = geom["coordinates"]
        for ring_index, ring in enumerate(rings):
            lon, lat = np.asarray(ring).T  # RFC 7946: [longitude, latitude]
            assert ((lon > -119.0) & (lon < -117.0)).all()
            assert ((lat > 33.0) & (lat < 35.0)).all()
            for value in np.asarray(ring).ravel():
                assert round(value, 6) == value
            ccw = shapely.LinearRing(ring).is_ccw
            assert ccw if ring_index == 0 else not ccw  # exterior CCW, holes CW
        props = feature["properties"]
        if row["count"] >= 3:
            assert isinstance(props["count"], int) and props["count"] == row["count"]
            assert props["suppressed"] is False
        else:
            assert props["count"] is None and props["severity"] is None
            assert props["suppressed"] is True
        assert isinstance(props["flag"], bool)
        assert props["period_start"] == "2020-03-01T00:00:00"
    donut = next(f for f in features if f["id"] == "donut")
    assert len(donut["geometry"]["coordinates"]) == 2
    # a NaN rate is null, not NaN
    missing_rate = [f for f in features if f["properties"]["rate"] is None]
    assert missing_rate


def test_feature_collection_reprojects_to_lonlat(unit_table):
    projected = unit_table.to_crs("EPSG:3310")
    doc = rfc7946_feature_collection(projected)
    lon, lat = doc["features"][0]["geometry"]["coordinates"][0][0]
    assert -119 < lon < -117 and 33 < lat < 35


def test_victim_columns_are_refused(tmp_path, unit_table):
    for column in (*VICTIM_COLUMNS, "Vict Age", "Victim_Sex", "vict_age_mean"):
        table = unit_table.assign(**{column: 1})
        with pytest.raises(PrivacyError, match="victim-level"):
            export_layers({"units": table}, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything is written
    assert victim_columns(["count", "vict_sex", "Age_Category"]) == ["vict_sex", "Age_Category"]


def test_incident_level_tables_are_refused(tmp_path, unit_table):
    doubled = gpd.GeoDataFrame(pd.concat([unit_table, unit_table.iloc[:3]]), crs="EPSG:4326")
    with pytest.raises(PrivacyError, match="more than one row per unit"):
        export_layers({"units": doubled}, tmp_path)
    with pytest.raises(PrivacyError, match="incident-level"):
        export_layers({"units": unit_table.assign(incident_id="010304468")}, tmp_path)
    with pytest.raises(PrivacyError, match="unit_id"):
        export_layers({"units": unit_table.drop(columns="unit_id")}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_suppression_threshold_is_configurable(unit_table, gi_table):
    out = suppress_small_units(unit_table, k_anonymity=10)
    small = unit_table["count"].to_numpy() < 10
    assert out["suppressed"].tolist() == small.tolist()
    assert out["count"][small].isna().all() and out["severity"][small].isna().all()
    assert (out["count"][~small] == unit_table["count"][~small]).all()
    assert str(out["count"].dtype) == "Int64"
    assert out["name"].tolist() == unit_table["name"].tolist()  # place names are kept
    # a table with measures but no counts cannot be checked
    with pytest.raises(PrivacyError, match="cannot be suppressed"):
        suppress_small_units(gi_table)
    # outlines have nothing to suppress
    outline = unit_table[["unit_id", "name", "geometry"]]
    assert "suppressed" not in suppress_small_units(outline).columns


def test_public_table_needs_crs_and_geometry(unit_table):
    with pytest.raises(export_mod.DataError, match="GeoDataFrame"):
        public_table(pd.DataFrame(unit_table.drop(columns="geometry")))
    no_crs = unit_table.set_crs(None, allow_override=True)
    with pytest.raises(export_mod.DataError, match="CRS"):
        public_table(no_crs)


def test_failed_geopackage_leaves_nothing(tmp_path, unit_table, gi_table, monkeypatch):
    real = pyogrio.write_dataframe
    calls = []

    def flaky(df, path, **kwargs):
        calls.append(kwargs["layer"])
        if len(calls) == 2:
            raise OSError("disk full")
        return real(df, path, **kwargs)

    monkeypatch.setattr(export_mod.pyogrio, "write_dataframe", flaky)
    counts = unit_table.set_index("unit_id")["count"]
    with pytest.raises(OSError, match="disk full"):
        export_layers(
            {"units": unit_table, "gi": gi_table}, tmp_path, formats=("gpkg",), counts=counts
        )
    assert list(tmp_path.iterdir()) == []


def test_options_are_validated(tmp_path, unit_table):
    with pytest.raises(export_mod.DataError, match="unknown export format"):
        export_layers({"units": unit_table}, tmp_path, formats=("shp",))
    with pytest.raises(export_mod.DataError, match="no layers"):
        export_layers({}, tmp_path)
    with pytest.raises(export_mod.DataError, match="both named"):
        export_layers({"a-b": unit_table, "a b": unit_table}, tmp_path)
    assert layer_name("Gi* hot spots") == "gi_hot_spots"
    only = export_layers({"units": unit_table}, tmp_path, formats=("geojson",), k_anonymity=0)
    assert [p.name for p in only] == ["units.geojson"]
    doc = json.loads(only[0].read_text())
    zero = [f for f in doc["features"] if f["properties"]["suppressed"]]
    assert zero == []  # k = 0 suppresses nothing
