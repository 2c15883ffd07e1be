"""The reporting-coverage check on the real 2024 rows and on series with a known answer."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.coverage import check_coverage, load_reference_rollup
from geo_crime.ingest import load_incidents
from tests.shared_data import REDUCED_DIR, WESTLA, crime_file


@pytest.fixture(scope="module")
def coverage_2024():
    frame, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    return frame, check_coverage(frame)


def test_early_2024_complete_later_months_flagged(coverage_2024):
    _, result = coverage_2024
    table = result.table
    assert set(table["source"]) == {"reduced_2024"}
    status = table.pivot(index="area", columns="period", values="complete")
    assert status[pd.Timestamp("2024-01-01")].all()
    assert status[pd.Timestamp("2024-02-01")].all()
    # June and September: every area; July and August: all but Central's recovery (19, 20)
    flagged = {m: int((~status[pd.Timestamp(m)]).sum()) for m in ("2024-06-01", "2024-09-01")}
    assert flagged == {"2024-06-01": 21, "2024-09-01": 21}
    for month in ("2024-07-01", "2024-08-01"):
        assert (~status[pd.Timestamp(month)]).sum() >= 19, month
    # the first months are judged against the published roll-up of the full data set
    january = table[table["period"] == pd.Timestamp("2024-01-01")]
    assert (january["baseline_source"] == "reference").all()
    assert january["ratio"].between(0.6, 1.6).all()


def test_citywide_summary_and_incident_mask(coverage_2024):
    frame, result = coverage_2024
    city = result.citywide().set_index("period")
    assert city.loc[pd.Timestamp("2024-01-01"), "count"] == 18_872
    mask = result.complete_mask(frame)
    assert mask.shape == (len(frame),)
    january = frame["occurred_at"].dt.month == 1
    assert mask[january.to_numpy()].all()
    august = (frame["occurred_at"].dt.month == 8).to_numpy()
    assert mask[august].mean() < 0.2


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


def test_thin_months_never_enter_the_baseline():
    counts = [100, 104, 98, 101, 50, 50, 50, 50, 50, 50, 50, 50, 50, 99]
    result = check_coverage(_synthetic(counts), reference=None)
    flags = result.table["complete"].tolist()
    assert flags == [True] * 4 + [False] * 9 + [True]
    assert result.table["baseline"].iloc[12] == pytest.approx(100.5)  # median of the 4 good months
    assert result.table["status"].iloc[0] == "unverified"  # no history and no reference


def test_a_slice_that_starts_or_ends_inside_a_period_marks_it_partial():
    rows = _synthetic([100, 104, 98, 101])
    # cut the slice on 10 January and 20 April: both months are partial, whatever their counts
    rows = rows[(rows["occurred_at"] >= "2021-01-10") & (rows["occurred_at"] <= "2021-04-20")]
    result = check_coverage(rows, reference=None)
    assert result.table["status"].tolist() == ["partial", "unverified", "unverified", "partial"]
    assert result.table["complete"].tolist() == [False, True, True, False]


@pytest.fixture(scope="module")
def coverage_alone_and_combined(incidents):
    """Coverage of the 2024 rows (and West LA rows) alone and loaded with every other file."""
    alone_2024, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    alone_westla, _ = load_incidents(crime_file(WESTLA), cache=False)
    return incidents, alone_2024, alone_westla


@pytest.mark.parametrize("freq", ["M", "W", "D"])
def test_coverage_of_a_source_does_not_depend_on_other_files(coverage_alone_and_combined, freq):
    combined, alone_2024, alone_westla = coverage_alone_and_combined
    assert set(combined["source"].astype(str)) == {"official", "modified", "reduced_2024"}
    everything = check_coverage(combined, freq=freq).table
    for source, alone in (("reduced_2024", alone_2024), ("modified", alone_westla)):
        by_itself = check_coverage(alone, freq=freq).table
        together = everything[everything["source"] == source].reset_index(drop=True)
        pd.testing.assert_frame_equal(by_itself, together)
    if freq == "M":
        # the 2020 head once lent Central (area 1) a January 2020 baseline that made its thin
        # 2024 months "complete"; judged on its own rows, Central is flagged from March 2024
        central = everything[(everything["source"] == "reduced_2024") & (everything["area"] == 1)]
        status = central.set_index("period")["status"]
        assert status[pd.Timestamp("2024-03-01")] == "incomplete"
        assert status[pd.Timestamp("2024-05-01")] == "incomplete"
        june = everything[
            (everything["source"] == "reduced_2024")
            & (everything["period"] == pd.Timestamp("2024-06-01"))
        ]
        assert (~june["complete"]).sum() == 21


def test_cli_coverage_of_2024_rows_is_identical_with_other_files(tmp_path, incidents):
    alone, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    outputs = {}
    for name, frame in (("alone", alone), ("combined", incidents)):
        parquet = tmp_path / f"{name}.parquet"
        frame.to_parquet(parquet, index=False)
        csv = tmp_path / f"{name}.csv"
        result = CliRunner().invoke(app, ["coverage", str(parquet), "-o", str(csv), "--freq", "W"])
        assert result.exit_code == 0, result.output
        table = pd.read_csv(csv)
        outputs[name] = table[table["source"] == "reduced_2024"].reset_index(drop=True)
    pd.testing.assert_frame_equal(outputs["alone"], outputs["combined"])
    assert len(outputs["alone"]) == 21 * 40  # 21 areas x 40 weeks


def test_the_last_week_with_one_day_of_data_is_partial(coverage_2024):
    frame, _ = coverage_2024
    weekly = check_coverage(frame, freq="W").table
    last = weekly[weekly["period"] == pd.Timestamp("2024-09-30")]
    assert len(last) == 21
    assert (last["status"] == "partial").all() and not last["complete"].any()
    assert last["count"].sum() == 48  # one Monday of data


@pytest.mark.parametrize(("freq", "cut"), [("W", "2024-05-05"), ("D", "2024-04-17")])
def test_weeks_and_days_are_judged_from_what_was_known_then(coverage_2024, freq, cut):
    """Flags of periods up to a date are the same when the later data is not loaded yet."""
    frame, _ = coverage_2024
    full = check_coverage(frame, freq=freq).table
    known = check_coverage(
        frame[frame["occurred_at"] < pd.Timestamp(cut) + pd.Timedelta(days=1)], freq=freq
    ).table
    before = full[full["period"] <= pd.Timestamp(cut) - pd.Timedelta(days=6 if freq == "W" else 0)]
    merged = before.merge(known, on=["source", "area", "period"], suffixes=("", "_then"))
    assert len(merged) == len(before) > 0
    assert (merged["status"] == merged["status_then"]).all()
    # a month-long flag would have looked ahead: the week of 26 February is complete everywhere
    # although March is not
    if freq == "W":
        week = full[full["period"] == pd.Timestamp("2024-02-26")]
        assert week["complete"].all()
        monthly = check_coverage(frame, freq="M").table
        march = monthly[monthly["period"] == pd.Timestamp("2024-03-01")]
        assert (~march["complete"]).sum() == 5


def test_reference_rollup_has_every_area_and_year():
    rollup = load_reference_rollup()
    assert rollup is not None
    assert set(rollup["area"]) == set(range(1, 22))
    totals = rollup.groupby("year")["count"].sum()
    assert totals.to_dict() == {2020: 199_365, 2021: 209_288, 2022: 234_060}
