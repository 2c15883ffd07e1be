"""The crime mix of the top places, repeat locations and what to try, recomputed from the rows."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pytest

from geo_crime.engines import MemoryStudy
from geo_crime.ingest import load_incidents
from geo_crime.publish.places import (
    MIXED_RESPONSE,
    RESPONSES,
    profile_place,
    profile_places,
    top_places,
)
from geo_crime.publish.privacy import cube_disclosure
from geo_crime.record.coverage import check_coverage
from geo_crime.report.places import place_lines, profile_record
from geo_crime.settings import StudySettings
from geo_crime.units import make_units
from tests.fakes.shared_data import REDUCED_DIR, crime_file

#: The weeks of the default run's city-wide window (2024-01-01 to the week of 2024-02-26).
FIRST, END = "2024-01-01", "2024-03-04"


@pytest.fixture(scope="module")
def central():
    """Central and Rampart (divisions 1 and 2) in the 2024 reduced files, first 9 weeks."""
    rows, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    rows = rows[rows["area"].isin([1, 2])].reset_index(drop=True)
    settings = StudySettings(name="c", areas=[1, 2], start=FIRST, end=END, units=["h3:8"])
    study = MemoryStudy(settings.select(rows), settings)
    units = make_units("h3:8", study.unit_input(), study_area="data")
    cube = study.cube(units, freq="W", coverage=check_coverage(rows, freq="W"))
    window = cube.complete_periods()
    return study, units, window


def test_the_top_places_profile_matches_the_rows(central):
    study, units, window = central
    assert len(window.periods) == 9
    _, suppressed = cube_disclosure(window, 3)
    keep = top_places(window, suppressed, n=10)
    rows = study.place_rows(units, keep, window.periods, "W")
    profiles = profile_places(rows, keep, 3)
    assert [p.unit_id for p in profiles] == keep
    # independently: the rows of the window, indexed to H3 by the h3 library
    raw = study.rows
    inside = raw[(raw["occurred_at"] >= FIRST) & (raw["occurred_at"] < END)]
    inside = inside[inside["spatial_valid"].astype(bool)]
    cell = [h3.latlng_to_cell(a, b, 8) for a, b in zip(inside["lat"], inside["lon"], strict=True)]
    inside = inside.assign(cell=cell)
    severity = inside.groupby("cell")["severity"].sum().sort_values(ascending=False)
    assert keep[0] == severity.index[0]
    for profile in profiles:
        mine = inside[inside["cell"] == profile.unit_id]
        assert profile.incidents == len(mine)
        types = mine["crime_category"].astype(str).value_counts()
        name, count = profile.mix[0]
        assert (name, count) == (types.index[0].replace("_", " "), int(types.iloc[0]))
        assert profile.other_types == int(types[types < 3].sum())
        points = mine.groupby([mine["lat"].round(5), mine["lon"].round(5)]).size()
        if profile.repeat is not None:
            at, offence, n_offence = profile.repeat
            assert at == int(points.max()) and at >= 0.25 * len(mine) and at >= 10
            lat, lon = points.idxmax()
            there = mine[(mine["lat"].round(5) == lat) & (mine["lon"].round(5) == lon)]
            assert n_offence == int((there["crm_cd_desc"].astype(str) == offence).sum())
            assert n_offence >= 0.5 * at
        else:  # no address qualifies: too few there, or no offence holds half of them
            lat, lon = points.idxmax()
            there = mine[(mine["lat"].round(5) == lat) & (mine["lon"].round(5) == lon)]
            lead = int(there["crm_cd_desc"].astype(str).value_counts().iloc[0])
            at = int(points.max())
            assert at < max(10, 0.25 * len(mine)) or lead < 0.5 * at
    # the default run's first place: a repeat shoplifting address in downtown
    first = profiles[0]
    assert first.repeat is not None and "SHOPLIFTING" in first.repeat[1]
    assert first.response.startswith("a repeat location")
    # a repeat trespass location in Westlake
    trespass = [p for p in profiles if p.repeat and p.repeat[1] == "TRESPASSING"]
    assert trespass and "trespassing problem" in trespass[0].response


def test_suppressed_units_are_never_profiled(central):
    _, units, window = central
    _, suppressed = cube_disclosure(window, 3)
    first = top_places(window, suppressed, n=3)
    hidden = suppressed.copy()
    hidden.loc[first[0]] = True
    assert first[0] not in top_places(window, hidden, n=3)


def _rows(spec: list[tuple[str, str, float, float, int]]) -> pd.DataFrame:
    """Rows from (category, offence, lat, lon, how many)."""
    out = []
    for category, offence, lat, lon, n in spec:
        out += [(category, offence, lat, lon, True, 5)] * n
    return pd.DataFrame(
        out, columns=["crime_category", "crm_cd_desc", "lat", "lon", "spatial_valid", "time_class"]
    )


def test_a_site_with_one_offence_is_a_repeat_location_and_vehicle_crime_is_found_by_offence():
    site = _rows(
        [
            ("public_order", "TRESPASSING", 34.05, -118.25, 30),
            ("theft", "THEFT PLAIN - PETTY ($950 & UNDER)", 34.051, -118.251, 20),
            ("simple_assault", "BATTERY - SIMPLE ASSAULT", 34.052, -118.252, 2),
        ]
    )
    profile = profile_place("u", site, k=3)
    assert profile.repeat == (30, "TRESPASSING", 30)
    assert "trespassing problem" in profile.response
    assert profile.mix == (("public order", 30), ("theft", 20))
    assert profile.other_types == 2  # fewer than k: folded, never named
    assert profile.peak == ("16:00-19:59", 52, 52)
    # thefts and burglaries from vehicles are vehicle crime, spread over many addresses
    lat = np.linspace(34.0, 34.01, 40)
    cars = pd.concat(
        [
            _rows([("theft", "THEFT FROM MOTOR VEHICLE - PETTY ($950 & UNDER)", a, -118.3, 1)])
            for a in lat[:15]
        ]
        + [_rows([("burglary", "BURGLARY FROM VEHICLE", a, -118.3, 1)]) for a in lat[15:25]]
        + [_rows([("burglary", "BURGLARY", a, -118.3, 1)]) for a in lat[25:]],
        ignore_index=True,
    )
    profile = profile_place("v", cars, k=3)
    assert profile.repeat is None
    assert profile.problem == "vehicle crime" and profile.problem_share == pytest.approx(25 / 40)
    assert profile.response == RESPONSES["vehicle crime"]
    # no problem holds 40%: a review first
    mixed = _rows(
        [
            ("theft", "THEFT PLAIN - PETTY ($950 & UNDER)", 34.0, -118.3, 3),
            ("burglary", "BURGLARY", 34.001, -118.3, 3),
            ("robbery", "ROBBERY", 34.002, -118.3, 3),
        ]
    )
    assert profile_place("w", mixed, k=3).response == MIXED_RESPONSE


def test_the_report_names_scope_and_never_an_address():
    site = _rows([("public_order", "TRESPASSING", 34.05, -118.25, 30)])
    site["location"] = "100 S MAIN ST"
    record = profile_record(profile_place("u", site, k=3), "Downtown (Central) - u")
    text = "\n".join(place_lines("h3:8", [record], "the 9 completely recorded weeks ...", 3))
    assert "the 1 published `h3:8` units with the most severity over the 9 completely" in text
    assert "| Downtown (Central) - u | 30 | public order 100% |" in text
    assert "MAIN" not in text and "34.05" not in text


def test_a_profile_does_not_depend_on_the_order_of_the_rows(central):
    """The engines read rows in different orders: ties (crime types, offences, time blocks,
    addresses) are broken by name, so both give the same profile."""
    study, units, window = central
    keep = top_places(window, None, n=10)
    rows = study.place_rows(units, keep, window.periods, "W")
    shuffled = rows.sample(frac=1.0, random_state=7).reset_index(drop=True)
    assert profile_places(rows, keep, 3) == profile_places(shuffled, keep, 3)
    tied = _rows([("theft", "B", 34.0, -118.3, 4), ("burglary", "A", 34.1, -118.3, 4)])
    assert profile_place("t", tied, 3).mix == (("burglary", 4), ("theft", 4))
    assert profile_place("t", tied.iloc[::-1], 3).mix == (("burglary", 4), ("theft", 4))
