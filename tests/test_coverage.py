"""The reporting-coverage check on the real 2024 rows and on series with a known answer."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.ingest import load_incidents
from geo_crime.record.coverage import check_coverage, load_reference_rollup
from tests.fakes.shared_data import REDUCED_DIR, WESTLA, crime_file


@pytest.fixture(scope="module")
def coverage_2024():
    frame, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    return frame, check_coverage(frame)


def test_early_2024_complete_later_months_flagged(coverage_2024):
    _, result = coverage_2024
    assert set(result.table["source"]) == {"reduced_2024"}
    union = result.union
    status = union.pivot(index="area", columns="period", values="complete")
    assert status[pd.Timestamp("2024-01-01")].all()
    assert status[pd.Timestamp("2024-02-01")].all()
    # from May the legacy set alone holds too little in every division (June, September: all
    # 21; July, August: all but Central, whose legacy rows recover to 60-65%)
    flagged = {m: int((~status[pd.Timestamp(m)]).sum()) for m in ("2024-06-01", "2024-09-01")}
    assert flagged == {"2024-06-01": 21, "2024-09-01": 21}
    for month in ("2024-05-01", "2024-07-01", "2024-08-01"):
        assert (~status[pd.Timestamp(month)]).sum() >= 20, month
    # the first months are judged against the published roll-up of the full data set, the
    # months after the switch against each division's level in the weeks before it
    january = union[union["period"] == pd.Timestamp("2024-01-01")]
    assert (january["baseline_source"] == "reference").all()
    assert january["ratio"].between(0.6, 1.6).all()
    june = union[union["period"] == pd.Timestamp("2024-06-01")]
    assert set(june["baseline_source"]) == {"before_break", "weeks"}  # Central: see below


def test_pacific_june_to_september_is_incomplete_a_decline_never_becomes_its_own_baseline(
    coverage_2024,
):
    """Pacific (division 14) records about 55% of its January-March level from June to
    September 2024. A baseline of recent "complete" periods slid with it (234.5 to 131 a week)
    and kept every such week complete; the reference here is the level before the break."""
    frame, result = coverage_2024
    pacific = result.union[result.union["area"] == 14].set_index("period")
    summer = pacific.loc["2024-06-01":"2024-09-01"]
    assert len(summer) == 4 and not summer["complete"].any()
    assert summer["ratio"].between(0.45, 0.6).all()
    # recomputed from the rows: the reference is Pacific's incidents per day over its complete
    # months inside the 84 days before the switch (January and February 2024: 60 days)
    early = frame[(frame["area"] == 14) & (frame["occurred_at"] < "2024-03-01")]
    per_day = len(early) / 60
    june = frame[(frame["area"] == 14) & (frame["occurred_at"].dt.strftime("%Y-%m") == "2024-06")]
    assert pacific.loc["2024-06-01", "baseline"] == pytest.approx(per_day * 30)
    assert pacific.loc["2024-06-01", "ratio"] == pytest.approx(len(june) / (per_day * 30))
    weekly = check_coverage(frame, freq="W").union
    weeks = weekly[(weekly["area"] == 14) & weekly["period"].between("2024-06-03", "2024-09-23")]
    assert len(weeks) == 17
    assert (~weeks["complete"]).sum() >= 14  # 2 weeks reach 61-63%
    assert (weeks["baseline"] == weeks["baseline"].iloc[0]).all()  # no drift


def test_no_month_is_complete_when_most_of_its_days_are_in_incomplete_weeks(coverage_2024):
    frame, result = coverage_2024
    weekly = check_coverage(frame, freq="W").union.set_index(["area", "period"])["complete"]
    months = result.union
    for row in months.itertuples():
        days = pd.date_range(row.period, row.period + pd.offsets.MonthEnd(0), freq="D")
        weeks = days.to_period("W-SUN").start_time
        good = weekly.reindex(pd.MultiIndex.from_arrays([[row.area] * len(days), weeks]))
        good = good.fillna(False).to_numpy(dtype=bool)
        if row.complete:
            assert good.sum() * 2 >= len(days), row
    # by its own count May 2024 reaches 60% of the level before the break in five divisions
    # (Van Nuys and four more Valley divisions), but most of its days lie in weeks below it:
    # the month follows its weeks
    overruled = months[months["baseline_source"] == "weeks"]
    assert set(overruled.loc[overruled["period"] == "2024-05-01", "area"]) == {9, 15, 16, 17, 19}
    assert not overruled["complete"].any()


def _synthetic(counts: list[int], area: int = 1) -> pd.DataFrame:
    """``counts[i]`` incidents spread over the days of month ``i`` from January 2021."""
    months = pd.period_range("2021-01", periods=len(counts), freq="M")
    stamps = []
    for month, count in zip(months, counts, strict=True):
        days = pd.date_range(month.start_time, month.end_time.normalize(), freq="D")
        stamps += [days[i % len(days)] for i in range(count)]
    return pd.DataFrame(
        {
            "area": pd.array([area] * len(stamps), dtype="Int8"),
            "occurred_at": pd.to_datetime(stamps),
            "source": "official",
        }
    )


def test_a_slow_decline_is_judged_against_the_same_months_a_year_earlier():
    """A year at 100 a month, then a decline of 5 a month: the months under 60% of the same
    months a year earlier (mean of that month and its neighbours) are incomplete, however
    gradual the decline. A median of recent complete months would have followed it down."""
    decline = [100 - 5 * (i + 1) for i in range(12)]  # 95 .. 40
    result = check_coverage(_synthetic([100] * 12 + decline), reference=None)
    union = result.union
    assert union["status"].iloc[:12].eq("unverified").all()  # no reference for the first year
    second = union.iloc[12:].reset_index(drop=True)
    assert (second["baseline_source"] == "year_before").all()
    expected = [c / b >= 0.6 for c, b in zip(decline, second["baseline"], strict=True)]
    assert second["complete"].tolist() == expected
    assert expected == [True] * 7 + [False] * 5  # 60 (July) passes, 55 (August) does not
    # the reference of March 2022: incidents per day in February-April 2021, times 31 days
    per_day = (100 / 28 + 100 / 31 + 100 / 30) / 3
    assert second["baseline"].iloc[2] == pytest.approx(per_day * 31)


def test_a_slice_that_starts_or_ends_inside_a_period_marks_it_partial():
    rows = _synthetic([100, 104, 98, 101])
    # cut the slice on 10 January and 20 April: both months are partial, whatever their counts
    rows = rows[(rows["occurred_at"] >= "2021-01-10") & (rows["occurred_at"] <= "2021-04-20")]
    result = check_coverage(rows, reference=None)
    assert result.union["status"].tolist() == ["partial", "unverified", "unverified", "partial"]
    assert result.union["complete"].tolist() == [False, True, True, False]


def test_the_union_of_two_sources_is_judged_where_neither_is_complete_alone():
    """Two sources that split each month's reports: each holds half, the union all of it."""
    rows = _synthetic([100] * 24)
    rows["source"] = ["official", "api"] * (len(rows) // 2)
    result = check_coverage(rows, reference=None)
    second_year = result.union.iloc[12:]
    assert second_year["complete"].all() and second_year["ratio"].between(0.9, 1.1).all()
    per_source = result.table[result.table["period"] >= pd.Timestamp("2022-01-01")]
    assert set(per_source["source"]) == {"official", "api"}
    assert not per_source["complete"].any()  # each alone holds half of the reference
    assert per_source["share"].between(0.45, 0.55).all()


@pytest.fixture(scope="module")
def coverage_alone_and_combined(incidents):
    """Coverage of the 2024 rows (and West LA rows) alone and loaded with every other file."""
    alone_2024, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    alone_westla, _ = load_incidents(crime_file(WESTLA), cache=False)
    return incidents, alone_2024, alone_westla


@pytest.mark.parametrize("freq", ["M", "W", "D"])
def test_coverage_of_2024_does_not_depend_on_other_files(coverage_alone_and_combined, freq):
    """The 2020-21 files hold no 2024 rows: the 2024 periods are judged the same without them."""
    combined, alone_2024, _ = coverage_alone_and_combined
    assert set(combined["source"].astype(str)) == {"official", "modified", "reduced_2024"}
    everything = check_coverage(combined, freq=freq).union
    by_itself = check_coverage(alone_2024, freq=freq).union
    cols = ["area", "period", "count", "baseline", "baseline_source", "ratio", "status"]
    late = everything[everything["period"] >= by_itself["period"].min()].reset_index(drop=True)
    pd.testing.assert_frame_equal(by_itself[cols], late[cols])
    if freq == "M":
        central = late[late["area"] == 1].set_index("period")["status"]
        assert central[pd.Timestamp("2024-05-01")] == "incomplete"
        assert (~late.loc[late["period"] == pd.Timestamp("2024-06-01"), "complete"]).sum() == 21


def test_cli_coverage_of_2024_rows_is_identical_with_other_files(tmp_path, incidents):
    alone, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    outputs = {}
    for name, frame in (("alone", alone), ("combined", incidents)):
        parquet = tmp_path / f"{name}.parquet"
        frame.to_parquet(parquet, index=False)
        csv = tmp_path / f"{name}.csv"
        result = CliRunner().invoke(app, ["coverage", str(parquet), "-o", str(csv), "--freq", "W"])
        assert result.exit_code == 0, result.output
        assert "judged on all sources together" in result.output
        table = pd.read_csv(csv)
        outputs[name] = table[table["period"] >= "2024-01-01"].reset_index(drop=True)
    pd.testing.assert_frame_equal(outputs["alone"], outputs["combined"])
    assert len(outputs["alone"]) == 21 * 40  # 21 areas x 40 weeks


def test_the_last_week_with_one_day_of_data_is_partial(coverage_2024):
    frame, _ = coverage_2024
    weekly = check_coverage(frame, freq="W").union
    last = weekly[weekly["period"] == pd.Timestamp("2024-09-30")]
    assert len(last) == 21
    assert (last["status"] == "partial").all() and not last["complete"].any()
    assert last["count"].sum() == 48  # one Monday of data


@pytest.mark.parametrize(("freq", "cut"), [("W", "2024-05-05"), ("D", "2024-04-17")])
def test_weeks_and_days_are_judged_from_what_was_known_then(coverage_2024, freq, cut):
    """Flags of periods up to a date are the same when the later data is not loaded yet."""
    frame, _ = coverage_2024
    full = check_coverage(frame, freq=freq).union
    known = check_coverage(
        frame[frame["occurred_at"] < pd.Timestamp(cut) + pd.Timedelta(days=1)], freq=freq
    ).union
    before = full[full["period"] <= pd.Timestamp(cut) - pd.Timedelta(days=6 if freq == "W" else 0)]
    merged = before.merge(known, on=["area", "period"], suffixes=("", "_then"))
    assert len(merged) == len(before) > 0
    assert (merged["status"] == merged["status_then"]).all()
    # a month-long flag would have looked ahead: the week of 26 February is complete everywhere
    # although March is not
    if freq == "W":
        week = full[full["period"] == pd.Timestamp("2024-02-26")]
        assert week["complete"].all()
        monthly = check_coverage(frame, freq="M").union
        march = monthly[monthly["period"] == pd.Timestamp("2024-03-01")]
        assert (~march["complete"]).sum() == 5


def test_reference_rollup_has_every_area_and_year():
    rollup = load_reference_rollup()
    assert rollup is not None
    assert set(rollup["area"]) == set(range(1, 22))
    totals = rollup.groupby("year")["count"].sum()
    assert totals.to_dict() == {2020: 199_365, 2021: 209_288, 2022: 234_060}
