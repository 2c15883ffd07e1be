"""One series across the March 2024 records-system break: real legacy rows up to the switch and
NIBRS offence records from it, joined, judged for coverage, compared per category, and run through
cube, hot spots and the report.

No real NIBRS rows are available offline. The NIBRS side is built from real rows: the legacy 2024
rows of the nine weeks before the switch (Thursday 2024-01-04 to Wednesday 2024-03-06), moved
63 days later (to Thursday 2024-03-07 .. Wednesday 2024-05-08, same weekdays) and written in the
NIBRS offence form of :mod:`tests.nibrs_fixtures` (one case per legacy row, its crime code
crosswalked to the FBI code; one case in fifty gets a second, lesser offence). So the NIBRS weeks
have the legacy weeks' volume and mix: a correct join shows no level shift in any harmonised
category, every period holding the switch is complete, and nothing is counted twice.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from geo_crime.coverage import check_coverage
from geo_crime.ingest import load_incidents
from geo_crime.pipeline import run_pipeline
from geo_crime.series import (
    HARMONISED_CATEGORIES,
    RECORDS_SYSTEM_SWITCH,
    category_moves,
    combine_across_break,
    comparable_groups,
    level_shift,
    spans_break,
)
from geo_crime.settings import RunSettings, StudySettings
from geo_crime.severity import legacy_to_nibrs, nibrs_severity_table
from tests.nibrs_fixtures import write_ndjson_gz
from tests.shared_data import REDUCED_DIR, crime_file

SHIFT = pd.Timedelta(days=63)
FIRST_LEGACY_DAY = pd.Timestamp("2024-01-04")


@pytest.fixture(scope="module")
def legacy_2024(tmp_path_factory) -> pd.DataFrame:
    rows, _ = load_incidents(crime_file(REDUCED_DIR), cache=tmp_path_factory.mktemp("legacy"))
    return rows


def nibrs_records_from_legacy(rows: pd.DataFrame) -> list[dict[str, str]]:
    """NIBRS offence records (API form: strings, null keys left out) made from legacy rows."""
    table = nibrs_severity_table().set_index("nibrs_code")
    codes = legacy_to_nibrs(rows["crm_cd"])
    keep = codes.notna().to_numpy()
    rows, codes = rows.loc[keep].reset_index(drop=True), codes[keep].reset_index(drop=True)
    occurred = (rows["occurred_at"] + SHIFT).dt.strftime("%Y-%m-%dT00:00:00.000")
    records = []
    for i, (row, code, when) in enumerate(zip(rows.itertuples(), codes, occurred, strict=True)):
        caseno = f"24{int(row.area):02d}{i:05d}"
        offences = [code] if i % 50 else [code, "90Z"]
        for sequence, offence in enumerate(offences, start=1):
            info = table.loc[offence]
            records.append(
                {
                    "caseno": caseno,
                    "uniquenibrno": f"{caseno}{offence}{sequence}",
                    "date_rptd": when,
                    "date_occ": when,
                    "time_occ": "1200",
                    "area": str(int(row.area)),
                    "area_name": str(row.area_name),
                    "rpt_dist_no": str(row.rpt_dist),
                    "totaloffensecount": str(len(offences)),
                    "group": str(info["group"]),
                    "nibr_code": offence,
                    "nibr_description": str(info["nibrs_desc"]),
                    "crime_against": str(info["crime_against"]),
                    "status": "IC",
                    "status_desc": "Invest Cont",
                    "totalvictimcount": "1",
                    "victim_shot": "No",
                    "domestic_violence_crime": "No",
                    "hate_crime": "No",
                    "gang_related_crime": "No",
                    "transit_related_crime": "No",
                    "homeless_victim_crime": "No",
                    "homeless_suspect_crime": "No",
                    "homeless_arrestee_crime": "No",
                    "hndrdth_lat": f"{row.lat:.4f}",
                    "hndrdth_lon": f"{row.lon:.4f}",
                }
            )
    return records


@pytest.fixture(scope="module")
def mixed(legacy_2024, tmp_path_factory):
    """Both files on disk, and the rows loaded together (one series)."""
    folder = tmp_path_factory.mktemp("mixed")
    source = legacy_2024[
        (legacy_2024["occurred_at"] >= FIRST_LEGACY_DAY)
        & (legacy_2024["occurred_at"] < RECORDS_SYSTEM_SWITCH)
    ]
    nibrs_file = write_ndjson_gz(folder / "nibrs.ndjson.gz", nibrs_records_from_legacy(source))
    inputs = [*sorted(crime_file(REDUCED_DIR).glob("*.json.gz")), nibrs_file]
    rows, report = load_incidents(inputs, cache=False)
    return source, nibrs_file, rows, report


def test_the_join_keeps_legacy_before_and_nibrs_from_the_switch(legacy_2024, mixed):
    source, _, rows, report = mixed
    assert spans_break(rows)
    legacy = rows[rows["source_system"] == "legacy"]
    nibrs = rows[rows["source_system"] == "nibrs"]
    assert legacy["occurred_at"].max() < RECORDS_SYSTEM_SWITCH <= nibrs["occurred_at"].min()
    # every legacy row from the switch on was left out and counted
    late = int((legacy_2024["occurred_at"] >= RECORDS_SYSTEM_SWITCH).sum())
    assert report.legacy_after_switch_dropped == late > 50_000
    assert report.nibrs_before_switch_dropped == 0
    assert len(legacy) == len(legacy_2024) - late
    # one row per case: the 1-in-50 second offences were merged, not counted twice
    crosswalked = int(legacy_to_nibrs(source["crm_cd"]).notna().sum())
    assert len(nibrs) == crosswalked == nibrs["case_id"].nunique()
    assert report.offenses_merged_into_cases == len(range(0, crosswalked, 50))
    assert int(nibrs["offense_count"].sum()) == crosswalked + report.offenses_merged_into_cases
    dropped = report.rows_dropped_by_reason
    assert sum(dropped.values()) + report.rows_out == report.rows_read
    labels = dict(report.lines())
    assert labels["legacy rows on or after the switch to NIBRS (2024-03-07), dropped"] == late
    # a frame already joined is left as it is
    again, counts = combine_across_break(rows)
    assert len(again) == len(rows) and counts == {
        "legacy_after_switch": 0,
        "nibrs_before_switch": 0,
    }


@pytest.mark.parametrize("freq", ["W", "M"])
def test_the_period_holding_the_switch_is_a_break_not_a_thin_period(mixed, freq):
    _, _, rows, _ = mixed
    coverage = check_coverage(rows, freq=freq)
    table = coverage.table
    switch_period = RECORDS_SYSTEM_SWITCH.to_period("W-SUN" if freq == "W" else "M").start_time
    at_switch = table[table["period"] == switch_period]
    # each system is judged on its own days of the period: 3 of 7 (legacy Mon-Wed) and 4 of 7
    # (NIBRS Thu-Sun) of the week; 6 and 25 of the 31 days of March
    shares = at_switch.groupby("source")["switch_share"].first().sort_index()
    expected = {"W": (3 / 7, 4 / 7), "M": (6 / 31, 25 / 31)}[freq]
    assert shares["nibrs"] == pytest.approx(expected[1])
    assert shares["reduced_2024"] == pytest.approx(expected[0])
    assert set(at_switch["status"]) == {"complete"}, at_switch
    combined = coverage.combined()
    here = combined[combined["period"] == switch_period]
    assert len(here) == 21 and here["complete"].all()
    # the legacy set alone thins out after the switch; with the NIBRS rows instead, the weeks
    # (months) after it are complete in every division
    after = combined[
        (combined["period"] > switch_period) & (combined["period"] < pd.Timestamp("2024-04-29"))
    ]
    assert len(after) and after["complete"].all()


def test_no_level_shift_when_the_nibrs_weeks_repeat_the_legacy_weeks(mixed):
    source, _, rows, _ = mixed
    shift = level_shift(rows)
    assert shift["weeks_before"].iloc[0] == 8 and shift["weeks_after"].iloc[0] == 8
    # by hand: the 8 whole weeks before the switch week (weeks starting 2024-01-08 .. 02-26)
    # and the 8 after it (03-11 .. 04-29); the switch week (starting 03-04) is left out
    week = rows["occurred_at"].dt.to_period("W-SUN").dt.start_time
    before = (week >= "2024-01-08") & (week < "2024-03-04")
    after = (week >= "2024-03-11") & (week < "2024-05-06")
    assert shift.loc["all", "before"] == pytest.approx(before.sum() / 8)
    assert shift.loc["all", "after"] == pytest.approx(after.sum() / 8)
    for category in ("robbery", "vehicle_theft", "simple_assault", "burglary + theft"):
        assert shift.loc[category, "harmonised"] and shift.loc[category, "comparable_alone"]
        assert 0.9 < shift.loc[category, "ratio"] < 1.1, shift.loc[category]
    # legacy "burglary from vehicle" is NIBRS theft from a motor vehicle: burglary alone drops
    # and theft alone rises across the break, though nothing changed but the recording
    assert not shift.loc["burglary", "comparable_alone"]
    assert shift.loc["burglary", "ratio"] < 0.7 and shift.loc["theft", "ratio"] > 1.1
    assert set(shift.index[shift["harmonised"]]) <= {*HARMONISED_CATEGORIES, "burglary + theft"}


def test_the_harmonised_categories_are_closed_under_the_crosswalk():
    """No legacy code of a harmonised category is scored outside them in NIBRS, or back."""
    moves = category_moves()
    inside_legacy = moves["legacy_category"].isin(HARMONISED_CATEGORIES)
    inside_nibrs = moves["nibrs_category"].isin(HARMONISED_CATEGORIES)
    assert (inside_legacy == inside_nibrs).all(), moves[inside_legacy != inside_nibrs]
    assert set(moves.loc[inside_legacy, "crm_cd"]) == {330, 410}  # burglary from vehicle
    assert comparable_groups() == [("burglary", "theft")]


def test_a_mixed_run_through_cube_hot_spots_and_report(mixed, tmp_path):
    _, nibrs_file, rows, _ = mixed
    inputs = [str(p) for p in sorted(crime_file(REDUCED_DIR).glob("*.json.gz"))]
    settings = RunSettings(
        inputs=[*inputs, str(nibrs_file)],
        outputs=str(tmp_path),
        name="mixed",
        permutations=99,
        cache=False,
        studies=[
            StudySettings(
                name="city",
                start="2024-01-01",
                end="2024-05-06",
                units=["rd"],
                freq="W",
                forecast=False,
                statistics=["gi", "emerging"],
            )
        ],
    )
    result = run_pipeline(settings, quiet=True)
    summary = json.loads((result.folder / "summary.json").read_text())
    unit = summary["city"]["units"]["rd"]
    # 18 weeks: 9 legacy, the switch week, 8 NIBRS; every one complete in all 21 divisions
    assert unit["periods"] == 18 and unit["complete_periods"] == 18
    emerging = unit["statistics"]["emerging"]
    assert "not_computed" not in emerging, emerging
    assert emerging["crime_categories"] == list(HARMONISED_CATEGORIES)
    assert emerging["periods"] == 18
    from geo_crime.cube import Cube

    cube = Cube.load(result.folder / "analysis" / "city" / "cube_rd.parquet")
    in_study = rows[(rows["occurred_at"] >= "2024-01-01") & (rows["occurred_at"] < "2024-05-06")]
    # every row of the study with usable coordinates is counted once, legacy and NIBRS alike:
    # in the cube, or outside every reporting district (and said so)
    placed = in_study[in_study["spatial_valid"]]
    assignment = cube.meta["assignment"]
    assert assignment["total"] == len(placed)
    assert int(np.asarray(cube.counts).sum()) == assignment["assigned"]
    assert assignment["assigned"] + assignment["outside"] == len(placed)
    assert assignment["outside"] < 0.005 * len(placed)
    report = (result.folder / "report.md").read_text()
    assert "## The March 2024 records-system break" in report
    assert "use the categories recorded alike in both systems only" in report
    assert "hundred block" in report
    assert (result.folder / "public" / "figures" / "break_level_shift.png").is_file()
    breaks = summary["records_system_break"]
    assert breaks["legacy_after_switch_dropped"] > 50_000
    # no victim-level NIBRS fact and no case or offence id in any public table
    for path in (result.folder / "public").rglob("*.csv"):
        header = path.read_text(encoding="utf-8").splitlines()[0]
        for column in ("victim_shot", "flag_", "victim_count", "case_id", "offense_id"):
            assert column not in header, (path, column)
    import pyogrio

    for gpkg in (result.folder / "public").rglob("*.gpkg"):
        for layer, _ in pyogrio.list_layers(gpkg):
            columns = set(pyogrio.read_info(gpkg, layer=layer)["fields"])
            assert not columns & {"lat", "lon", "hndrdth_lat", "victim_shot", "case_id"}, layer
    # sexual offences: no public map, layer or table locates them (no point, no per-unit
    # category); they appear only inside city-wide totals and figures
    for path in (result.folder / "public").rglob("*"):
        if path.suffix in (".html", ".geojson", ".csv", ".json"):
            text = path.read_text(encoding="utf-8").lower()
            assert "sexual" not in text and "rape" not in text, path
