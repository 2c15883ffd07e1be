"""The space-time cube on real 2024 incidents: conservation, zero-fill, coverage, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo_crime.cube.panel import Cube, build_cube, cube_from_table
from geo_crime.ingest import load_incidents
from geo_crime.record.coverage import check_coverage
from geo_crime.stats.run import run_statistic, statistic_values
from geo_crime.units import assign_units, division_units, h3_units
from tests.fakes.shared_data import REDUCED_DIR, crime_file


@pytest.fixture(scope="module")
def real_2024(tmp_path_factory):
    incidents, _ = load_incidents(crime_file(REDUCED_DIR), cache=tmp_path_factory.mktemp("c"))
    coverage = check_coverage(incidents)
    return incidents, coverage


@pytest.fixture(scope="module")
def h3_cube(real_2024):
    incidents, coverage = real_2024
    units = h3_units(8)
    ids, report = assign_units(incidents, units)
    return build_cube(incidents, units, ids, freq="W", coverage=coverage), report, incidents


def test_counts_and_severity_are_conserved(h3_cube):
    cube, report, incidents = h3_cube
    assert cube.counts.sum() == report.assigned == cube.meta["incidents_in_cube"]
    assert report.assigned + report.outside + report.not_spatially_valid == len(incidents)
    ids, _ = assign_units(incidents, cube.units)
    inside = ids.notna().to_numpy()
    assert cube.severity.sum() == pytest.approx(incidents.loc[inside, "severity"].sum())
    assert cube.harm.sum() == pytest.approx(incidents.loc[inside, "harm"].sum())
    per_category = sum(a.sum() for a in cube.categories.values())
    assert per_category == cube.counts.sum()


def test_zero_filled_units_and_weeks(h3_cube):
    cube, _, _ = h3_cube
    assert cube.shape == (len(cube.units), len(cube.periods))
    assert (cube.counts.sum(axis=1) == 0).sum() > 0  # cells with no incident exist
    assert (cube.periods[1:] - cube.periods[:-1]).unique().tolist() == [pd.Timedelta(days=7)]
    assert cube.periods[0] == pd.Timestamp("2024-01-01")  # a Monday


def test_unit_sums_match_a_direct_groupby(h3_cube):
    cube, _, incidents = h3_cube
    ids, _ = assign_units(incidents, cube.units)
    week = incidents["occurred_at"].dt.to_period("W-SUN").dt.start_time
    direct = incidents.assign(unit=ids, week=week).dropna(subset=["unit"])
    direct = direct.groupby(["unit", "week"]).size()
    unit, period = direct.index[100]
    row = cube.units.index[cube.units["unit_id"] == unit][0]
    col = cube.periods.get_loc(period)
    assert cube.counts[row, col] == direct.iloc[100]


def test_coverage_marks_late_2024_weeks_incomplete(h3_cube):
    cube, _, _ = h3_cube
    share = pd.Series(cube.period_complete_share(), index=cube.periods)
    assert share[:"2024-02-26"].eq(1.0).all()
    assert share["2024-07-01":"2024-08-26"].max() < 0.3
    # the week of 2024-09-30 holds one day of data (the data ends on its Monday): never complete
    assert share["2024-09-30"] == 0.0
    complete = cube.complete_periods()
    # weeks are judged on their own counts: the week of 26 February is complete in every
    # division, whatever March brings (a month-based flag would look a month ahead)
    assert len(complete.periods) == 9
    assert complete.periods[-1] == pd.Timestamp("2024-02-26")
    assert complete.counts.sum() < cube.counts.sum()


def test_division_cube_monthly_matches_coverage_counts(real_2024):
    incidents, coverage = real_2024
    units = division_units()
    ids, report = assign_units(incidents, units)
    cube = build_cube(incidents, units, ids, freq="M", coverage=coverage)
    # a division cube by location is close to, not equal to, the stated-area counts (1.2% of rows
    # lie outside their stated division)
    by_location = cube.counts.sum()
    assert by_location == report.assigned
    january = cube.counts[:, 0].sum()
    assert abs(january - 18_872) / 18_872 < 0.02


def test_save_and_load_round_trip(h3_cube, tmp_path):
    cube, _, _ = h3_cube
    path = cube.save(tmp_path / "cube.parquet")
    again = Cube.load(path)
    assert np.array_equal(again.counts, cube.counts)
    assert np.allclose(again.severity, cube.severity)
    assert np.array_equal(again.complete, cube.complete)
    assert list(again.units["unit_id"]) == list(cube.units["unit_id"])
    assert again.freq == "W" and set(again.categories) == set(cube.categories)
    assert again.meta["incidents_in_cube"] == cube.meta["incidents_in_cube"]


def test_rate_is_nan_without_residents_and_never_inf(h3_cube):
    cube, _, _ = h3_cube
    from geo_crime.cube.rates import attach_population

    units = attach_population(cube.units)
    with_pop = Cube(
        units=units,
        periods=cube.periods,
        freq=cube.freq,
        counts=cube.counts,
        severity=cube.severity,
        harm=cube.harm,
    )
    rate = with_pop.values("rate")
    assert not np.isinf(rate).any()
    empty = units["population"].to_numpy() == 0
    assert empty.any() and np.isnan(rate[empty]).all()


def test_cube_from_preaggregated_rollup():
    from geo_crime.record.coverage import load_reference_rollup

    rollup = load_reference_rollup()
    table = rollup.assign(
        unit_id=rollup["area"].astype(str),
        period=pd.to_datetime(rollup["year"].astype(str) + "-01-01"),
    )
    units = division_units()
    cube = cube_from_table(table, units, count_column="count", severity_column=None, freq="M")
    assert cube.counts.sum() == rollup["count"].sum() == 199_365 + 209_288 + 234_060
    assert cube.freq == "M" and len(cube.periods) == 25  # Jan 2020 .. Jan 2022, zero-filled


def test_statistics_use_mean_per_complete_period(h3_cube):
    cube, _, _ = h3_cube
    values, without = statistic_values(cube, "severity")
    complete = cube.complete
    row = int(np.argmax(cube.severity.sum(axis=1)))
    expected = cube.severity[row, complete[row]].mean()
    assert values[row] == pytest.approx(expected)
    assert without == 0
    gi = run_statistic(cube, "gi", permutations=0)
    assert len(gi.table) == len(cube.units)
    assert gi.table.loc[row, "gi_bin"] == 3  # the heaviest cell is a 99% hot spot


def test_one_mean_over_complete_periods_with_one_rule_for_a_unit_with_none():
    """Statistics, rates, baselines and summaries read the same mean; NaN where there is none."""
    import geopandas as gpd
    from shapely.geometry import box

    from geo_crime.cube.panel import mean_per_complete_period
    from geo_crime.cube.rates import severity_rate
    from geo_crime.cube.summary import cube_summary
    from geo_crime.forecast.baselines import recent_mean

    units = gpd.GeoDataFrame(
        {"unit_id": ["a", "b", "c"], "unit_type": "polygon", "population": [1000.0] * 3},
        geometry=[box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01), box(0.02, 0, 0.03, 0.01)],
        crs=4326,
    )
    severity = np.array([[10.0, 30.0, 50.0], [7.0, 0.0, 2.0], [4.0, 4.0, 4.0]])
    complete = np.array([[True, False, True], [True, True, True], [False, False, False]])
    cube = Cube(
        units=units,
        periods=pd.date_range("2024-01-01", periods=3, freq="7D"),
        freq="W",
        counts=np.ones((3, 3), dtype=np.int64),
        severity=severity,
        harm=severity,
        complete=complete,
    )
    want = [30.0, 3.0, np.nan]  # (10 + 50) / 2, (7 + 0 + 2) / 3, none
    np.testing.assert_array_equal(mean_per_complete_period(severity, complete), want)
    np.testing.assert_array_equal(cube.mean_per_complete_period(), want)
    np.testing.assert_array_equal(recent_mean(severity, complete, None), want)
    np.testing.assert_array_equal(mean_per_complete_period(severity, complete, 1), [50, 2, np.nan])
    summary = cube_summary(cube)
    np.testing.assert_array_equal(summary["severity_per_complete_period"], want)
    assert np.isnan(severity_rate(cube).raw[2])  # no complete period: no rate
    values, filled = statistic_values(cube)  # the spatial statistics need a number: 0, counted
    assert values.tolist() == [30.0, 3.0, 0.0] and filled == 1
