"""The query index answers exactly what brute force answers, on real West LA incidents; its
answers name their places, and a point it cannot mean is one clear error."""

from __future__ import annotations

import warnings

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_crime.core.errors import InputError
from geo_crime.cube.panel import make_cube
from geo_crime.cube.summary import cube_summary, unit_results
from geo_crime.ingest import load_incidents
from geo_crime.query import CrimeIndex
from geo_crime.stats.hotspots import gi_star_table
from geo_crime.units import division_names, division_units, fill_divisions
from geo_crime.units import h3_units as city_h3
from geo_crime.units.places import named_units
from tests.fakes.h3_units import h3_units
from tests.fakes.shared_data import WESTLA, crime_file, require_data


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
    with pytest.raises(InputError, match=r"lat=0, lon=0 is not a place in Los Angeles County"):
        index.unit_at(0.0, 0.0)


def test_incident_answers_carry_their_neighbourhood_and_division(westla):
    incidents, valid, _, index = westla
    found = index.within_radius(34.0635, -118.4455, 800)  # Westwood
    hoods = gpd.read_file(
        require_data()
        / "boundaries"
        / "la_times_neighborhoods__LA_Times_Neighborhood_Boundaries.geojson"
    ).to_crs(4326)
    points = gpd.GeoDataFrame(
        found[["incident_id"]], geometry=gpd.points_from_xy(found["lon"], found["lat"]), crs=4326
    )
    joined = gpd.sjoin(points, hoods[["name", "geometry"]], predicate="within")
    hood = joined.groupby("incident_id")["name"].first()
    expected = [  # a point in no neighbourhood (on a street between two) has its division only
        f"{hood[i]} (West Los Angeles)" if i in hood.index else "West Los Angeles"
        for i in found["incident_id"]
    ]
    assert found["place"].tolist() == expected
    assert set(found["division"]) == {"West Los Angeles"}
    assert found["place"].value_counts().index[0] == "Westwood (West Los Angeles)"
    assert len(found) > 500
    # the box and polygon answers carry them too
    box = index.within_bbox(-118.45, 34.05, -118.44, 34.06)
    assert (box["division"] == "West Los Angeles").all() and len(box) > 50
    assert box["place"].str.endswith("West Los Angeles)").mean() > 0.9


def test_unit_answers_carry_the_place_the_report_gives_them(westla):
    _, _, table, index = westla
    top = index.top_units(5)
    assert top.attrs["by"] == "severity"  # the table has severity: the default ranks by it
    divisions = division_units()
    located = fill_divisions(table, divisions)
    named, _ = named_units(located, division_names(located, divisions))
    report_name = named.set_index("unit_id")["name"]
    assert top["place"].tolist() == report_name.loc[top["unit_id"]].tolist()
    assert top["place"].iloc[0] == "Sawtelle and 1 other (West Los Angeles)"
    assert set(top["division"]) == {"West Los Angeles"}
    unit = index.unit_at(34.0522, -118.4437)
    assert unit["place"].tolist() == [report_name[unit["unit_id"].iloc[0]]]
    nearest = index.nearest_hotspot(34.00, -118.47)
    assert nearest["place"].iloc[0] == report_name[nearest["unit_id"].iloc[0]]


@pytest.fixture(scope="module")
def winter_2024(incidents):
    """The city's H3-8 cube over the 9 weeks from 2024-01-01 (the reduced 2024 rows)."""
    rows = incidents[incidents["occurred_at"].between("2024-01-01", "2024-03-04", inclusive="left")]
    cube = make_cube(rows, city_h3(8), freq="W")
    return rows, cube


def test_top_units_works_with_its_defaults_on_a_real_cube(winter_2024):
    rows, cube = winter_2024
    summary = cube_summary(cube)
    top = CrimeIndex(rows, units={"h3": summary}).top_units()
    assert top.attrs["by"] == "severity" and len(top) == 10
    assert top["severity"].tolist() == sorted(cube.total("severity"), reverse=True)[:10]
    assert top["place"].iloc[0] == "Downtown and 1 other (Central)"
    # a table of Gi* results alone ranks by the Gi* z-score
    gi = gi_star_table(cube.units, cube.total("severity"), permutations=0)
    hottest = CrimeIndex(rows, units={"h3": unit_results(cube.units, tables=[gi])}).top_units()
    assert hottest.attrs["by"] == "gi_z"
    assert hottest["gi_z"].tolist() == sorted(gi["gi_z"], reverse=True)[:10]
    assert hottest["division"].iloc[0] == "Central"
    with pytest.raises(InputError, match=r"k must be a whole number of units, 1 or more, got 0"):
        CrimeIndex(rows, units={"h3": summary}).top_units(0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda ix: ix.within_radius(34.05, -118.24, -5),
            r"^radius_m must be 0 metres or more, got -5$",
        ),
        (
            lambda ix: ix.within_radius(-118.24, 34.05, 500),
            r"^lat=-118\.24, lon=34\.05 look swapped: .* call with lat=34\.05, lon=-118\.24$",
        ),
        (lambda ix: ix.within_radius(0, 0, 500), r"^lat=0, lon=0 is not a place in Los Angeles"),
        (
            lambda ix: ix.within_radius(40.7128, -74.006, 500),
            r"^lat=40\.7128 and lon=-74\.006 are outside Los Angeles County \(lat 32\.80",
        ),
        (lambda ix: ix.within_radius(34.05, -119.5, 500), r"^lon=-119\.5 is outside Los Angeles"),
        (lambda ix: ix.within_radius(34.05, -118.24, float("nan")), r"^radius_m must be a finite"),
        (lambda ix: ix.within_radius("north", -118.24, 50), r"^lat must be a number, got 'north'"),
        (lambda ix: ix.unit_at(-118.44, 34.05), r"^lat=-118\.44, lon=34\.05 look swapped"),
        (lambda ix: ix.nearest_hotspot(0.0, 0.0), r"^lat=0, lon=0 is not a place"),
        (
            lambda ix: ix.within_bbox(34.04, -118.46, 34.06, -118.43),
            r"^the box west=34\.04, south=-118\.46, east=34\.06, north=-118\.43 looks like lat/lon",
        ),
        (
            lambda ix: ix.within_bbox(-118.43, 34.04, -118.46, 34.06),
            r"^the box is inverted: west=-118\.43 > east=-118\.46$",
        ),
        (
            lambda ix: ix.within_polygon(shapely.box(-74.1, 40.7, -74.0, 40.8)),
            r"^the box west=-74\.1, south=40\.7, east=-74\.0, north=40\.8 lies outside",
        ),
    ],
)
def test_a_point_that_cannot_be_meant_is_one_clear_error(westla, call, message):
    *_, index = westla
    with pytest.raises(InputError, match=message):
        call(index)


def test_the_same_point_given_right_finds_real_rows(westla):
    *_, index = westla
    assert len(index.within_radius(34.05, -118.44, 500)) > 300
    assert len(index.within_radius(34.05, -118.44, 0)) == 0  # a radius of 0 is allowed


def test_a_cube_over_sources_with_disjoint_periods_warns_naming_them(incidents):
    divisions = division_units()
    with pytest.warns(UserWarning) as caught:
        make_cube(incidents, divisions, freq="M")
    (message,) = [str(w.message) for w in caught if "do not overlap" in str(w.message)]
    assert message.startswith(
        "the cube mixes sources whose periods do not overlap: "
        "official (2020-01-01 to 2020-12-31) and modified (2020-03-15 to 2021-07-31); "
        "then reduced_2024 (2024-01-01 to 2024-09-30). "
    )
    assert "select one window (make_cube start and end, or filter occurred_at)" in message
    for quiet in (
        dict(start="2024-01-01"),  # one window of the 2024 files
        dict(end="2021-12-31"),  # the 2020 files overlap each other
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            make_cube(incidents, divisions, freq="M", **quiet)


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
