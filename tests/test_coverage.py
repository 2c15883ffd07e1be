"""The reporting-coverage check on the real 2024 rows and on series with a known answer."""

from __future__ import annotations

import pandas as pd
import pytest

from geo_crime.coverage import check_coverage, load_reference_rollup
from geo_crime.ingest import load_incidents
from tests.shared_data import REDUCED_DIR, crime_file


@pytest.fixture(scope="module")
def coverage_2024():
    frame, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    return frame, check_coverage(frame)


def test_early_2024_complete_later_months_flagged(coverage_2024):
    _, result = coverage_2024
    table = result.table
    status = table.pivot(index="area", columns="month", values="complete")
    assert status[pd.Timestamp("2024-01-01")].all()
    assert status[pd.Timestamp("2024-02-01")].all()
    for month in ("2024-06-01", "2024-07-01", "2024-08-01", "2024-09-01"):
        assert (~status[pd.Timestamp(month)]).sum() >= 19, month
    # the first months are judged against the published roll-up of the full data set
    january = table[table["month"] == pd.Timestamp("2024-01-01")]
    assert (january["baseline_source"] == "reference").all()
    assert january["ratio"].between(0.6, 1.6).all()


def test_citywide_summary_and_incident_mask(coverage_2024):
    frame, result = coverage_2024
    city = result.citywide().set_index("month")
    assert city.loc[pd.Timestamp("2024-01-01"), "count"] == 18_872
    mask = result.complete_mask(frame)
    assert mask.shape == (len(frame),)
    january = frame["occurred_at"].dt.month == 1
    assert mask[january.to_numpy()].all()
    august = (frame["occurred_at"].dt.month == 8).to_numpy()
    assert mask[august].mean() < 0.2


def _synthetic(counts: list[int], area: int = 1) -> pd.DataFrame:
    months = pd.period_range("2021-01", periods=len(counts), freq="M").start_time
    stamps = [m for m, c in zip(months, counts, strict=True) for _ in range(c)]
    return pd.DataFrame(
        {
            "area": pd.array([area] * len(stamps), dtype="Int8"),
            "occurred_at": pd.to_datetime(stamps),
        }
    )


def test_thin_months_never_enter_the_baseline():
    counts = [100, 104, 98, 101, 50, 50, 50, 50, 50, 50, 50, 50, 50, 99]
    result = check_coverage(_synthetic(counts), reference=None)
    flags = result.table["complete"].tolist()
    assert flags == [True] * 4 + [False] * 9 + [True]
    assert result.table["baseline"].iloc[12] == pytest.approx(100.5)  # median of the 4 good months
    assert result.table["status"].iloc[0] == "unverified"  # no history and no reference


def test_reference_rollup_has_every_area_and_year():
    rollup = load_reference_rollup()
    assert rollup is not None
    assert set(rollup["area"]) == set(range(1, 22))
    totals = rollup.groupby("year")["count"].sum()
    assert totals.to_dict() == {2020: 199_365, 2021: 209_288, 2022: 234_060}
