"""The report's opening briefing, recomputed from the real rows."""

from __future__ import annotations

import pandas as pd
import pytest

from geo_crime.forecast.incidents import INCIDENT_GROUPS
from geo_crime.ingest import load_incidents
from geo_crime.record.coverage import check_coverage
from geo_crime.record.tallies import RunTally
from geo_crime.report.briefing import briefing_lines, division_comparison
from tests.fakes.shared_data import REDUCED_DIR, WESTLA, crime_file


@pytest.fixture(scope="module")
def rows_2024():
    rows, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    return rows


def test_the_briefing_counts_the_window_city_wide_and_per_division(rows_2024):
    rows = rows_2024
    window = {"first": "2024-01-01", "last": "2024-02-26", "periods": 9}
    lines = briefing_lines(
        study="citywide_2024",
        window=window,
        weekly=check_coverage(rows, freq="W"),
        weeks=RunTally.of_rows(rows).weeks,
        division_weeks=RunTally.of_rows(rows).division_weeks,
    )
    text = "\n".join(lines)
    inside = rows[(rows["occurred_at"] >= "2024-01-01") & (rows["occurred_at"] < "2024-03-04")]
    assert f"**What.** {len(inside):,} recorded incidents city-wide over the 9 weeks" in text
    theft = int((inside["crime_category"].astype(str) == "theft").sum())
    assert f"by crime type: theft {theft:,} ({theft / len(inside):.0%}); " in text
    central = inside[inside["area"] == 1]
    category = central["crime_category"].astype(str)
    violent = int(category.isin(INCIDENT_GROUPS["violent"]).sum())
    stolen = int(category.isin(INCIDENT_GROUPS["property"]).sum())
    assert (
        f"| Central | {len(central):,} | {violent:,} | {stolen:,} | not completely recorded |"
    ) in text
    assert "(0 of 21 divisions)" in text  # the shared data holds no 2023 rows
    assert "9 weeks completely recorded in every division, 2024-01-01" in text
    # counts under k are not shown: at k = 100, homicide (55 in the window) is hidden
    homicides = int((inside["crime_category"].astype(str) == "homicide").sum())
    assert homicides < 100
    strict = "\n".join(
        briefing_lines(
            study="citywide_2024",
            window=window,
            weekly=check_coverage(rows, freq="W"),
            weeks=RunTally.of_rows(rows).weeks,
            k_anonymity=100,
        )
    )
    assert "; homicide fewer than 100" in strict
    assert f"homicide {homicides}" not in strict
    # the attack: the total minus the shown types is a sum over two or more hidden types
    what = next(line for line in strict.splitlines() if line.startswith("**What.**"))
    assert what.count("fewer than 100") >= 2


def test_a_division_is_compared_with_the_same_weeks_a_year_earlier():
    """West LA 2020-21: the 2021 weeks against the same weeks of 2020, both complete."""
    rows, _ = load_incidents(crime_file(WESTLA), cache=False)
    weekly = check_coverage(rows, freq="W")
    window = {"first": "2021-03-15", "last": "2021-07-19", "periods": 19}
    table = division_comparison(weekly, window).set_index("division")
    week = rows["occurred_at"].dt.to_period("W-SUN").dt.start_time
    now = int(((week >= "2021-03-15") & (week <= "2021-07-19")).sum())
    then = int(((week >= "2020-03-16") & (week <= "2020-07-20")).sum())
    assert table.loc["West LA", "incidents"] == now
    assert table.loc["West LA", "incidents_year_earlier"] == then
    assert table.loc["West LA", "change"] == pytest.approx(now / then - 1)
    # a week before the data's first complete week is not compared
    early = division_comparison(weekly, {"first": "2021-03-08", "last": "2021-07-19"})
    assert pd.isna(early.set_index("division").loc["West LA", "incidents_year_earlier"])


def test_time_class_is_read_from_the_2024_files_and_computed_from_exact_times(rows_2024):
    """The reduced 2024 files' Time_Class (4-hour blocks) is kept; exact times give theirs."""
    import gzip
    import json

    raw = []
    for path in sorted(crime_file(REDUCED_DIR).glob("*.json.gz")):
        raw += [r.get("Time_Class") for r in json.loads(gzip.decompress(path.read_bytes()))]
    want = pd.Series(raw).value_counts().sort_index()
    got = rows_2024["time_class"].value_counts().sort_index()
    assert got.to_dict() == {int(k): int(v) for k, v in want.items()}
    timed, _ = load_incidents(crime_file(WESTLA), cache=False)
    known = timed[timed["time_known"]]
    assert (known["time_class"] == known["occurred_at"].dt.hour // 4 + 1).all()


def test_the_briefing_says_when_from_the_rows(rows_2024):
    rows = rows_2024
    window = {"first": "2024-01-01", "last": "2024-02-26", "periods": 9}
    tally = RunTally.of_rows(rows)
    text = "\n".join(
        briefing_lines(
            study="citywide_2024",
            window=window,
            weekly=check_coverage(rows, freq="W"),
            weeks=tally.weeks,
            hours=tally.hours,
        )
    )
    inside = rows[(rows["occurred_at"] >= "2024-01-01") & (rows["occurred_at"] < "2024-03-04")]
    evening = int((inside["time_class"] == 5).sum())
    known = int(inside["time_class"].between(1, 6).sum())
    assert f"; 16:00-19:59 {evening:,} ({evening / known:.0%});" in text
    weekly = inside["occurred_at"].dt.to_period("W-SUN").value_counts()
    assert f"{len(inside) / 9:,.0f} recorded incidents a week on average" in text
    assert f"to {int(weekly.max()):,} in the week of" in text
