"""Cleaning counts on the real files and the policies on small hand-made rows."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from geo_crime.core.config import default_crime_inputs
from geo_crime.core.errors import ConfigError, OutputError
from geo_crime.ingest import load_incidents, read_incidents
from geo_crime.ingest.cleaning import CleaningReport, clean_incidents
from tests.fakes.shared_data import IVANCO, WESTLA, crime_file, require_data


@pytest.fixture(scope="module")
def all_real(tmp_path_factory):
    require_data()
    cache = tmp_path_factory.mktemp("cache")
    return load_incidents(default_crime_inputs(), cache=cache)


def test_cleaning_counts_on_the_real_files(all_real):
    frame, report = all_real
    assert report.rows_read == 128_704
    assert report.duplicates_dropped == 464  # the two 2020 slices overlap by 464 DR_NOs
    assert report.rows_out == 128_704 - 464 == len(frame)
    assert report.coordinates_zero == 43
    assert report.negative_ages == 5
    assert report.age_zero_no_person_victim == 4_508
    assert report.coordinates_outside_county == 0
    assert report.rows_unparseable == 0
    assert report.spatially_valid == int(frame["spatial_valid"].sum()) == 128_240 - 43
    assert frame["incident_id"].dropna().is_unique
    # the 3,427 identical 2024 records are several victims of one incident: never deduplicated
    reduced = frame[frame["source"] == "reduced_2024"]
    assert len(reduced) == 105_750
    # every count appears in the printed report
    text = str(report)
    assert "duplicate DR_NO dropped" in text and "464" in text


def test_report_round_trips_through_json(all_real, tmp_path):
    _, report = all_real
    path = report.write_json(tmp_path / "report.json")
    again = CleaningReport.from_dict(__import__("json").loads(path.read_text()))
    assert again.to_dict() == report.to_dict()


def test_negative_age_policies_on_real_rows():
    paths = [crime_file(IVANCO), crime_file(WESTLA)]
    raw = pd.concat([pd.read_csv(p, dtype=str) for p in paths]).drop_duplicates("DR_NO")
    negative_ids = set(raw.loc[raw["Vict Age"].astype(int) < 0, "DR_NO"].str.zfill(9))
    assert len(negative_ids) == 5
    nulled, _ = load_incidents(paths, cache=False)
    absolute, report = load_incidents(paths, cache=False, negative_age="abs")
    assert report.negative_age_policy == "abs"
    rows_null = nulled[nulled["incident_id"].isin(negative_ids)]
    rows_abs = absolute[absolute["incident_id"].isin(negative_ids)]
    assert rows_null["vict_age"].isna().all()
    assert (rows_abs["vict_age"] > 0).all()
    expected = sorted(abs(int(a)) for a in raw.loc[raw["Vict Age"].astype(int) < 0, "Vict Age"])
    assert sorted(rows_abs["vict_age"].astype(int)) == expected


def _rows(**columns) -> pd.DataFrame:
    frame, _ = read_incidents(crime_file(IVANCO))
    base = frame.iloc[: len(next(iter(columns.values())))].copy().reset_index(drop=True)
    for name, values in columns.items():
        base[name] = values
    return base


def test_dates_after_reported_are_flagged_and_future_rows_dropped():
    rows = _rows(
        occurred_at=pd.to_datetime(["2020-01-05", "2020-01-09", "2031-01-01"]),
        reported_at=pd.to_datetime(["2020-01-06", "2020-01-08", "2031-01-02"]),
    )
    report = CleaningReport()
    out = clean_incidents(rows, report, as_of=pd.Timestamp("2026-01-01"))
    assert report.occurred_in_future_dropped == 1
    assert report.occurred_after_reported == 1
    assert out["date_suspect"].tolist() == [False, True]


def test_zero_and_out_of_county_coordinates_are_kept_but_not_spatial():
    rows = _rows(lat=[0.0, 40.7, 34.05, np.nan], lon=[0.0, -74.0, -118.25, np.nan])
    report = CleaningReport()
    out = clean_incidents(rows, report)
    assert len(out) == 4
    assert out["spatial_valid"].tolist() == [False, False, True, False]
    assert (
        report.coordinates_zero,
        report.coordinates_outside_county,
        report.coordinates_missing,
    ) == (1, 1, 1)


def test_age_zero_means_no_person_victim_and_age_groups():
    rows = _rows(vict_age=pd.array([0, 10, 40, 70, None], dtype="Int16"))
    report = CleaningReport()
    out = clean_incidents(rows, report)
    assert report.age_zero_no_person_victim == 1
    assert out["vict_age_group"].astype(str).tolist() == [
        "unknown",
        "child",
        "adult",
        "elderly",
        "unknown",
    ]


def test_dates_before_the_minimum_are_dropped_and_counted_like_future_dates():
    rows = _rows(
        occurred_at=pd.to_datetime(
            [
                "1900-01-01 00:00",
                "2009-12-31 23:59",
                "2010-01-01 00:00",
                "2020-01-05 00:00",
                "2031-01-01 00:00",
            ]
        ),
        reported_at=pd.to_datetime(
            ["2020-01-06", "2020-01-06", "2020-01-06", "2020-01-06", "2031-01-02"]
        ),
    )
    report = CleaningReport()
    out = clean_incidents(rows, report, as_of=pd.Timestamp("2026-01-01"))
    assert out["occurred_at"].tolist() == [pd.Timestamp("2010-01-01"), pd.Timestamp("2020-01-05")]
    assert report.occurred_before_min_dropped == 2
    assert report.occurred_in_future_dropped == 1
    assert report.min_occurred_date == "2010-01-01"
    saved = report.to_dict()
    assert saved["occurred_before_min_dropped"] == 2
    assert saved["rows_dropped_by_reason"]["occurred before the minimum date"] == 2
    assert ("occurred before 2010-01-01, dropped", 2) in report.lines()
    assert re.search(r"occurred before 2010-01-01, dropped +2\n", str(report))
    assert CleaningReport.from_dict(saved).to_dict() == saved


def test_minimum_date_is_configurable_and_can_be_switched_off():
    dates = pd.to_datetime(["1900-01-01", "2015-06-01", "2020-01-05"])
    report = CleaningReport()
    out = clean_incidents(_rows(occurred_at=dates), report, min_occurred_date="2020-01-01")
    assert len(out) == 1 and report.occurred_before_min_dropped == 2
    report = CleaningReport()
    out = clean_incidents(_rows(occurred_at=dates), report, min_occurred_date=None)
    assert len(out) == 3 and report.occurred_before_min_dropped == 0
    with pytest.raises(ConfigError, match=r"min_occurred_date: 'someday' is not a date"):
        clean_incidents(_rows(occurred_at=dates), CleaningReport(), min_occurred_date="someday")


@pytest.fixture(scope="module")
def real_rows() -> pd.DataFrame:
    return pd.read_csv(crime_file(IVANCO), dtype=str, nrows=40, keep_default_na=False)


def test_1900_dates_in_a_real_export_are_counted_not_kept(tmp_path, real_rows):
    rows = real_rows.copy()
    rows.loc[[4, 17], "DATE OCC"] = "01/01/1900 12:00:00 AM"
    path = tmp_path / "old.csv"
    rows.to_csv(path, index=False)
    frame, report = load_incidents(path, cache=False)
    assert report.rows_read == 40 and len(frame) == 38
    assert report.occurred_before_min_dropped == 2
    assert report.rows_read == report.rows_out + sum(report.rows_dropped_by_reason.values())
    assert not frame["occurred_at"].lt("2010-01-01").any()
    kept, report = load_incidents(path, cache=False, min_occurred_date=None)
    assert len(kept) == 40 and report.occurred_before_min_dropped == 0


def test_dates_pandas_cannot_hold_are_listed_as_unparseable(tmp_path, real_rows):
    rows = real_rows.copy()
    rows.loc[3, "DATE OCC"] = "01/01/0001 12:00:00 AM"
    rows.loc[5, "DATE OCC"] = "12/31/9999 00:00"
    rows.loc[6, "Date Rptd"] = "12/31/9999 00:00"  # optional: set to null, counted
    path = tmp_path / "far.csv"
    rows.to_csv(path, index=False)
    frame, report = load_incidents(path, cache=False)
    assert len(frame) == 38
    listed = {(b.line, b.column, b.reason) for b in report.bad_rows}
    reason = "is not a date between 1677-09-22 and 2262-04-10"
    assert listed == {(5, "DATE OCC", reason), (7, "DATE OCC", reason)}
    assert report.values_nulled == {f"Date Rptd: {reason}": 1}
    assert frame["occurred_at"].dt.year.between(2010, 2026).all()


def test_report_written_to_a_folder_is_refused(tmp_path):
    with pytest.raises(OutputError, match=rf"{re.escape(str(tmp_path))}: is a directory"):
        CleaningReport().write_json(tmp_path)
    assert not list(tmp_path.iterdir())
