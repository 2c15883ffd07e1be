"""One series across LAPD's two records systems: real legacy rows and NIBRS offence records,
joined, judged for coverage, compared per category, and run through cube, hot spots and the
report.

Through 2024 the two systems split LAPD's reports: the legacy set thins out from the switch of
2024-03-07 and the NIBRS set holds the rest. No real NIBRS rows are available offline, so the
NIBRS side is built from real rows the way the split works: the legacy 2024 rows of the nine
weeks before the switch (Thursday 2024-01-04 to Wednesday 2024-03-06), moved 63 days later (to
Thursday 2024-03-07 .. Wednesday 2024-05-08, same weekdays), and in each division and week after
the switch as many of them as the legacy set is short of that level are written in the NIBRS
offence form (:mod:`tests.fakes.nibrs_fixtures`: 8-digit case numbers, ``<caseno>_<code>_<seq>``
offence ids, numeric status; one case per legacy row, its crime code crosswalked to the FBI
code; one case in fifty gets a second, lesser offence). So the union of both systems keeps the
level before the switch: a correct join keeps every legacy row, shows no level shift, and finds
every week complete.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from geo_crime.core.lapd import RECORDS_SYSTEM_SWITCH, spans_break
from geo_crime.ingest import load_incidents
from geo_crime.ingest.severity import legacy_to_nibrs
from geo_crime.ingest.systems import join_records_systems
from geo_crime.pipeline import run_pipeline
from geo_crime.record.breaks import (
    HARMONISED_CATEGORIES,
    category_moves,
    comparable_groups,
    level_shift,
)
from geo_crime.record.coverage import check_coverage
from geo_crime.settings import RunSettings, StudySettings
from tests.fakes.nibrs_fixtures import write_ndjson_gz
from tests.fakes.shared_data import REDUCED_DIR, crime_file
from tests.fakes.twin_records import SHIFT, nibrs_records_from_legacy, timed_twin_files

FIRST_LEGACY_DAY = pd.Timestamp("2024-01-04")


@pytest.fixture(scope="module")
def legacy_2024(tmp_path_factory) -> pd.DataFrame:
    rows, _ = load_incidents(crime_file(REDUCED_DIR), cache=tmp_path_factory.mktemp("legacy"))
    return rows


def top_up(legacy: pd.DataFrame, source: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """The rows of ``source`` moved by :data:`SHIFT` that NIBRS records: in each division and
    week after the switch, as many as the legacy rows fall short of the moved source's count."""
    moved = source.assign(week=(source["occurred_at"] + SHIFT).dt.to_period("W-SUN"))
    late = legacy[legacy["occurred_at"] >= RECORDS_SYSTEM_SWITCH]
    late = late.assign(week=late["occurred_at"].dt.to_period("W-SUN"))
    have = late.groupby(["area", "week"]).size()
    rng = np.random.default_rng(seed)
    picked = []
    for (area, week), group in moved.groupby(["area", "week"], sort=True):
        short = len(group) - int(have.get((area, week), 0))
        if short > 0:
            picked.append(group.iloc[np.sort(rng.permutation(len(group))[:short])])
    return pd.concat(picked).drop(columns="week").sort_values("occurred_at", kind="stable")


@pytest.fixture(scope="module")
def mixed(legacy_2024, tmp_path_factory):
    """Both files on disk, and the rows loaded together (one series)."""
    folder = tmp_path_factory.mktemp("mixed")
    source = legacy_2024[
        (legacy_2024["occurred_at"] >= FIRST_LEGACY_DAY)
        & (legacy_2024["occurred_at"] < RECORDS_SYSTEM_SWITCH)
    ]
    nibrs_rows = top_up(legacy_2024, source)
    nibrs_file = write_ndjson_gz(folder / "nibrs.ndjson.gz", nibrs_records_from_legacy(nibrs_rows))
    inputs = [*sorted(crime_file(REDUCED_DIR).glob("*.json.gz")), nibrs_file]
    rows, report = load_incidents(inputs, cache=False)
    return nibrs_rows, nibrs_file, rows, report


def test_the_join_keeps_every_legacy_row_and_the_union_keeps_the_level(legacy_2024, mixed):
    nibrs_rows, _, rows, report = mixed
    assert spans_break(rows)
    legacy = rows[rows["source_system"] == "legacy"]
    nibrs = rows[rows["source_system"] == "nibrs"]
    # nothing is cut at the switch: every real legacy row is kept, before and after it
    late = int((legacy_2024["occurred_at"] >= RECORDS_SYSTEM_SWITCH).sum())
    assert len(legacy) == len(legacy_2024)
    assert report.legacy_after_switch == late > 50_000
    # the 2024 legacy rows have no time of day: no legacy row can be matched to a NIBRS row
    assert report.legacy_matchable == 0 and report.cross_system_duplicates_dropped == 0
    assert nibrs["occurred_at"].min() >= RECORDS_SYSTEM_SWITCH
    # one row per case: the 1-in-50 second offences were merged, not counted twice
    crosswalked = int(legacy_to_nibrs(nibrs_rows["crm_cd"]).notna().sum())
    assert len(nibrs) == crosswalked == nibrs["case_id"].nunique()
    assert report.offenses_merged_into_cases == len(range(0, crosswalked, 50))
    assert int(nibrs["offense_count"].sum()) == crosswalked + report.offenses_merged_into_cases
    assert nibrs["case_id"].str.fullmatch(r"24\d{6}").all()
    dropped = report.rows_dropped_by_reason
    assert sum(dropped.values()) + report.rows_out == report.rows_read
    labels = dict(report.lines())
    assert labels["legacy rows on or after the switch to NIBRS (2024-03-07), kept"] == late
    # the union of March 11 - May 5 holds what the moved weeks held: the level before the switch
    week = rows["occurred_at"].dt.to_period("W-SUN").dt.start_time
    after = (week >= "2024-03-11") & (week < "2024-05-06")
    source_week = (legacy_2024["occurred_at"] + SHIFT).dt.to_period("W-SUN").dt.start_time
    moved = (source_week >= "2024-03-11") & (source_week < "2024-05-06")
    moved &= legacy_2024["occurred_at"].between(FIRST_LEGACY_DAY, RECORDS_SYSTEM_SWITCH)
    assert after.sum() >= moved.sum()  # never below it; above it only where legacy exceeds it
    assert after.sum() <= 1.05 * moved.sum()


def test_a_legacy_row_recorded_in_nibrs_too_is_removed_only_on_evidence(tmp_path):
    """Real legacy rows with times (the 2020 export), moved into June 2024, and NIBRS records
    of some of them: same day and time, district, crosswalked offence, 20 m away (removed);
    300 m away, an hour later, or in the next district (kept)."""
    twins = timed_twin_files(tmp_path)
    rows, report = load_incidents([twins.legacy_file, twins.nibrs_file], cache=False)
    assert report.cross_system_duplicates_dropped == 40
    assert report.legacy_after_switch == len(twins.legacy)  # counted before the removal
    assert report.legacy_matchable == len(twins.legacy)
    legacy_ids = set(rows.loc[rows["source_system"] == "legacy", "incident_id"])
    assert not legacy_ids & twins.twin_ids
    assert set(twins.legacy["incident_id"]) - twins.twin_ids <= legacy_ids
    assert (rows["source_system"] == "nibrs").sum() == 70
    kept_twins = rows[rows["also_in_sources"].astype("string").str.contains("api", na=False)]
    assert len(kept_twins) == 40 and (kept_twins["source_system"] == "nibrs").all()
    # the function alone agrees, and joining again removes nothing more
    again, counts = join_records_systems(rows)
    assert len(again) == len(rows) and counts["cross_system_duplicates"] == 0


@pytest.mark.parametrize("freq", ["W", "M"])
def test_the_union_is_complete_where_neither_system_is_alone(mixed, freq):
    _, _, rows, _ = mixed
    coverage = check_coverage(rows, freq=freq)
    union = coverage.union
    switch_period = RECORDS_SYSTEM_SWITCH.to_period("W-SUN" if freq == "W" else "M").start_time
    last = pd.Timestamp("2024-04-29" if freq == "W" else "2024-04-01")
    around = union[(union["period"] >= switch_period) & (union["period"] <= last)]
    assert len(around) == 21 * (9 if freq == "W" else 2)
    assert around["complete"].all(), around.loc[~around["complete"]]
    assert set(around["sources"]) <= {"nibrs,reduced_2024", "reduced_2024"}
    assert (around["sources"] == "nibrs,reduced_2024").mean() > 0.7
    # per source (the diagnostic), each system holds only part of the periods after the switch
    table = coverage.table
    after = table[(table["period"] > switch_period) & (table["period"] <= last)]
    legacy = after[after["source"] == "reduced_2024"]
    nibrs = after[after["source"] == "nibrs"]
    assert (~legacy["complete"]).sum() > 0 and (~nibrs["complete"]).sum() > 0
    shares = (
        legacy["share"]
        + nibrs.set_index(["area", "period"])["share"]
        .reindex(pd.MultiIndex.from_frame(legacy[["area", "period"]]))
        .to_numpy()
    )
    assert np.allclose(shares, 1.0)


def test_the_union_keeps_the_level_across_the_switch(mixed):
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
    # the union of both systems keeps the level before the switch (a cut at the switch would
    # have measured the legacy set's thinning: about x0.6)
    assert 0.98 < shift.loc["all", "ratio"] < 1.05
    assert 0.95 < shift.loc["burglary + theft", "ratio"] < 1.15
    # per category, by hand: the rows of the category in those weeks
    for category in ("robbery", "vehicle_theft", "simple_assault"):
        assert shift.loc[category, "harmonised"] and shift.loc[category, "comparable_alone"]
        of = rows["crime_category"].astype("string").eq(category).to_numpy()
        expected = (after.to_numpy() & of).sum() / (before.to_numpy() & of).sum()
        assert shift.loc[category, "ratio"] == pytest.approx(expected)
    # legacy "burglary from vehicle" is NIBRS theft from a motor vehicle: burglary alone drops
    # and theft alone rises across the break, though nothing changed but the recording
    assert not shift.loc["burglary", "comparable_alone"]
    assert shift.loc["burglary", "ratio"] < 0.9 and shift.loc["theft", "ratio"] > 1.1
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
    from geo_crime.cube.panel import Cube

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
    assert breaks["legacy_after_switch"] > 50_000 and breaks["cross_system_duplicates"] == 0
    # what each system contributes per month, recomputed from the rows
    months = breaks["incidents_per_month"]
    april = rows[rows["occurred_at"].dt.strftime("%Y-%m") == "2024-04"]
    assert months["2024-04"] == {
        "legacy": int((april["source_system"] == "legacy").sum()),
        "nibrs": int((april["source_system"] == "nibrs").sum()),
    }
    assert "| 2024-04 |" in report and "including the" in report
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
