"""The query index answers exactly what brute force answers, on real West LA incidents."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
from conftest import h3_units

from geo_crime.hotspots import gi_star_table
from geo_crime.ingest import load_incidents
from geo_crime.query import CrimeIndex, unit_results
from tests.shared_data import WESTLA, crime_file, require_data


@pytest.fixture(scope="module")
def westla():
    incidents, _ = load_incidents(crime_file(WESTLA), cache=False)
    valid = incidents[incidents["spatial_valid"]]
    cells = valid.apply(lambda r: h3.latlng_to_cell(r["lat"], r["lon"], 8), axis=1)
    ring = sorted({c for cell in cells.unique() for c in h3.grid_disk(cell, 1)})
    units = h3_units(ring)
    severity = valid.groupby(cells)["severity"].sum().reindex(ring).fillna(0).to_numpy()
    counts = cells.value_counts().reindex(ring).fillna(0).to_numpy()
    gi = gi_star_table(units, severity, permutations=0)
    table = unit_results(units, measures={"severity": severity, "count": counts}, tables=[gi])
    index = CrimeIndex(incidents, units={"h3": table})
    return incidents, valid, table, index


def _metres(frame: pd.DataFrame) -> gpd.GeoSeries:
    return gpd.GeoSeries(gpd.points_from_xy(frame["lon"], frame["lat"]), crs=4326).to_crs(3310)


def test_radius_matches_brute_force_with_filters(westla):
    _, valid, _, index = westla
    lat, lon = 34.0635, -118.4455  # Westwood
    found = index.within_radius(
        lat, lon, 800, start="2020-06-01", end="2021-01-01", category="theft"
    )
    centre = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs=4326).to_crs(3310).iloc[0]
    distance = _metres(valid).distance(centre).to_numpy()
    expected = valid[
        (distance <= 800)
        & (valid["occurred_at"] >= "2020-06-01")
        & (valid["occurred_at"] < "2021-01-01")
        & (valid["crime_category"] == "theft")
    ]
    assert len(found) == len(expected) > 20
    assert set(found["incident_id"]) == set(expected["incident_id"])
    assert found["incident_id"].str.fullmatch(r"\d{9}").all()
    assert not found["incident_id_synthetic"].any()
    assert found["distance_m"].is_monotonic_increasing
    assert found["distance_m"].max() <= 800


def test_polygon_matches_a_geopandas_join_on_a_real_neighbourhood(westla):
    _, valid, _, index = westla
    hoods = gpd.read_file(
        require_data()
        / "boundaries"
        / "la_times_neighborhoods__LA_Times_Neighborhood_Boundaries.geojson"
    )
    westwood = hoods[hoods["name"] == "Westwood"]
    assert len(westwood) == 1
    found = index.within_polygon(westwood, crm_cd=[330, 420])
    points = gpd.GeoDataFrame(
        valid, geometry=gpd.points_from_xy(valid["lon"], valid["lat"]), crs=4326
    )
    joined = gpd.sjoin(points, westwood.to_crs(4326), predicate="intersects")
    expected = joined[joined["crm_cd"].isin([330, 420])]
    assert set(found["incident_id"]) == set(expected["incident_id"])
    assert len(found) > 10


def test_unit_at_top_units_and_nearest_hotspot(westla):
    _, _, table, index = westla
    lat, lon = 34.0522, -118.4437
    unit = index.unit_at(lat, lon)
    assert unit["unit_id"].tolist() == [h3.latlng_to_cell(lat, lon, 8)]
    assert {"severity", "count", "gi_bin", "gi_z"} <= set(unit.columns)
    top = index.top_units(5, by="severity")
    assert top["severity"].tolist() == sorted(table["severity"], reverse=True)[:5]
    nearest = index.nearest_hotspot(34.00, -118.47, min_confidence=95)
    hot = table[table["gi_bin"] >= 2].to_crs(3310)
    point = gpd.GeoSeries(gpd.points_from_xy([-118.47], [34.00]), crs=4326).to_crs(3310).iloc[0]
    distances = hot.distance(point)
    assert nearest["unit_id"].iloc[0] == hot.loc[distances.idxmin(), "unit_id"]
    assert nearest["distance_m"].iloc[0] == pytest.approx(distances.min())
    assert index.unit_at(0.0, 0.0).empty


def test_unknown_category_is_a_clear_error(westla):
    *_, index = westla
    with pytest.raises(Exception, match="unknown crime category"):
        index.within_radius(34.06, -118.44, 100, category="jaywalking")
    assert np.all(index.within_radius(34.06, -118.44, 0.001).columns.notna())


def test_queries_over_2024_rows_return_their_synthetic_ids(incidents):
    index = CrimeIndex(incidents)
    lat, lon = 34.0522, -118.2437  # downtown, Central division
    recent = index.within_radius(lat, lon, 500, start="2024-01-01")
    assert len(recent) == 520
    assert recent["incident_id"].notna().all() and recent["incident_id"].is_unique
    assert recent["incident_id_synthetic"].all()
    assert recent["incident_id"].str.fullmatch(r"S[0-9a-f]{15}").all()
    box = index.within_bbox(-118.26, 34.04, -118.23, 34.06, start="2024-01-01")
    assert len(box) > len(recent)
    assert box["incident_id"].notna().all() and box["incident_id_synthetic"].all()
    by_id = incidents.set_index("incident_id")
    assert (by_id.loc[recent["incident_id"], "source"] == "reduced_2024").all()
    every = index.within_radius(lat, lon, 2_000)
    assert every["incident_id"].notna().all()
    assert every["incident_id_synthetic"].any() and not every["incident_id_synthetic"].all()
