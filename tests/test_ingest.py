"""Readers for every real LAPD variant, tested on the real files."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from geo_crime.core.errors import InputError
from geo_crime.ingest import (
    detect_schema,
    expand_inputs,
    finalize_dtypes,
    load_incidents,
    read_incidents,
)
from geo_crime.ingest.cleaning import CleaningReport, clean_incidents
from tests.fakes.shared_data import IVANCO, REDUCED_DIR, WESTLA, crime_file, require_data


@pytest.fixture(scope="module")
def official():
    frame, report = read_incidents(crime_file(IVANCO))
    return frame, report


def test_official_export_reads_every_row_with_mixed_date_formats(official):
    frame, report = official
    assert len(frame) == 10_000
    assert report.rows_unparseable == 0
    assert report.files[0].schema == "official"
    assert frame["occurred_at"].dt.year.eq(2020).all()
    # first row: DR_NO 010304468, 01/08/2020 00:00 (re-saved form), TIME OCC 2230, AREA 03, RD 0377
    first = frame.iloc[0]
    assert first["incident_id"] == "010304468"
    assert not frame["incident_id_synthetic"].any() and report.synthetic_ids == 0
    assert first["occurred_at"] == pd.Timestamp("2020-01-08 22:30")
    assert first["area"] == 3 and first["area_name"] == "Southwest"
    assert first["rpt_dist"] == "0377"
    assert first["lat"] == pytest.approx(34.0141) and first["lon"] == pytest.approx(-118.2978)
    # third row uses the original '12:00:00 AM' form: 02/13/2020 + 1200, reported 04/14/2020
    third = frame.iloc[2]
    assert third["occurred_at"] == pd.Timestamp("2020-02-13 12:00")
    assert third["reported_at"] == pd.Timestamp("2020-04-14")
    assert frame["source_line"].iloc[:3].tolist() == [2, 3, 4]
    assert frame["reported_at"].notna().all()


def test_official_counts_of_both_date_formats_match_the_file(official):
    raw = pd.read_csv(crime_file(IVANCO), dtype=str)
    long_form = raw["DATE OCC"].str.len() == 22
    assert int(long_form.sum()) == 5_802 and int((~long_form).sum()) == 4_198
    frame, _ = official
    assert frame["occurred_at"].notna().sum() == 10_000


def test_modified_export_with_duplicate_column_and_stripped_zeros():
    frame, report = read_incidents(crime_file(WESTLA))
    assert report.files[0].schema == "modified"
    assert len(frame) == 12_954
    assert set(frame["area"].unique()) == {8}
    assert frame["rpt_dist"].str.fullmatch(r"08\d\d").all()
    assert (
        frame["occurred_at"].min() == pd.Timestamp("2020-03-15")
        or frame["occurred_at"].min().date() == pd.Timestamp("2020-03-15").date()
    )
    assert frame["occurred_at"].max().date() == pd.Timestamp("2021-07-31").date()
    # DR_NO keeps 9 digits; TIME OCC '100' means 01:00
    assert frame["incident_id"].str.len().eq(9).all()
    raw = pd.read_csv(crime_file(WESTLA), dtype=str)
    row = raw.index[raw["TIME OCC"] == "100"][0]
    assert frame.loc[row, "occurred_at"].strftime("%H:%M") == "01:00"


def test_reduced_2024_files_map_what_exists():
    frame, report = read_incidents(crime_file(REDUCED_DIR))
    assert len(frame) == 105_750
    assert {f.schema for f in report.files} == {"reduced_2024"}
    assert len(report.files) == 21
    assert frame["crm_cd"].notna().all()  # every description resolved, incl. 453 and 926
    assert report.unresolved_descriptions == {}
    assert set(frame["area"].unique()) == set(range(1, 22))
    assert (frame["rpt_dist"].str[:2].astype(int) == frame["area"]).all()
    # no DR_NO in this schema: every row gets a synthetic id instead
    assert frame["incident_id"].notna().all() and frame["incident_id"].is_unique
    assert frame["incident_id"].str.fullmatch(r"S[0-9a-f]{15}").all()
    assert frame["incident_id_synthetic"].all()
    assert report.synthetic_ids == 105_750
    assert not frame["time_known"].any()
    assert int((frame["vict_age_group"] == "child").sum()) == 577
    assert int(frame["weapon_used"].sum()) == 22_811
    assert frame.loc[frame["crm_cd_desc"] == "TRAIN WRECKING", "crm_cd"].eq(926).all()
    monthly = frame["occurred_at"].dt.to_period("M").value_counts().sort_index()
    assert monthly.iloc[0] == 18_872 and monthly.iloc[-1] == 6_944


def _api_records(rows: pd.DataFrame) -> list[dict]:
    """Turn official rows into the open-data API's JSON: snake_case, ISO, nulls omitted."""
    from geo_crime.core import schema

    api_name = {v: k for k, v in schema.API_COLUMNS.items()}
    records = []
    for _, row in rows.iterrows():
        record = {}
        for column, field_name in schema.OFFICIAL_COLUMNS.items():
            value = row[column]
            if pd.isna(value):
                continue
            if column in ("DATE OCC", "Date Rptd"):
                value = pd.to_datetime(value, format="mixed").strftime("%Y-%m-%dT%H:%M:%S.000")
            record[api_name[field_name]] = str(value)
        records.append(record)
    return records


@pytest.mark.parametrize("form", ["json", "ndjson.gz", "csv"])
def test_api_forms_read_the_same_as_the_official_export(tmp_path, form):
    raw = pd.read_csv(crime_file(IVANCO), dtype=str, nrows=300)
    records = _api_records(raw)
    assert any(len(r) < 28 for r in records)  # null keys really are omitted
    if form == "json":
        path = tmp_path / "page.json"
        path.write_text(json.dumps(records))
    elif form == "ndjson.gz":
        path = tmp_path / "page.ndjson.gz"
        with gzip.open(path, "wt") as fh:
            fh.write("\n".join(json.dumps(r) for r in records))
    else:
        path = tmp_path / "page.csv"
        pd.DataFrame(records).to_csv(path, index=False)
    api, report = read_incidents(path)
    assert report.files[0].schema == "api"
    expected, _ = read_incidents(crime_file(IVANCO))
    expected = expected.iloc[:300].reset_index(drop=True)
    for column in (
        "incident_id",
        "occurred_at",
        "reported_at",
        "area",
        "rpt_dist",
        "crm_cd",
        "crm_cd_2",
        "vict_age",
        "weapon_cd",
        "lat",
        "lon",
        "location",
    ):
        left = api[column].astype(object).where(api[column].notna(), None).tolist()
        right = expected[column].astype(object).where(expected[column].notna(), None).tolist()
        assert left == right, column


def test_directory_glob_and_list_inputs_mix_formats(tmp_path):
    data = require_data() / "lapd_crime"
    # the real folder also holds the annual roll-up, which is no incident file: a clear error
    with pytest.raises(Exception, match=r"rollup.*unknown schema"):
        read_incidents(data)
    mixed = tmp_path / "mixed"
    (mixed / "2024").mkdir(parents=True)
    for path in data.glob("*.csv.gz"):
        (mixed / path.name).symlink_to(path)
    for path in (data / REDUCED_DIR).glob("*.json.gz"):
        (mixed / "2024" / path.name).symlink_to(path)
    frame, report = read_incidents(mixed)  # 2 CSV.gz + 21 JSON.gz, recursively
    assert len(report.files) == 23
    assert report.rows_read == 10_000 + 12_954 + 105_750
    by_glob, _ = read_incidents(str(data / REDUCED_DIR / "Crime_Data_C*.json.gz"))
    assert set(by_glob["area"].unique()) == {1}  # CENTRAL only
    plain = tmp_path / "official.csv"
    with gzip.open(crime_file(IVANCO), "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    listed, report = read_incidents([plain, crime_file(WESTLA)])
    assert [f.schema for f in report.files] == ["official", "modified"]
    assert len(listed) == 22_954


def test_user_mapping_for_other_headers(tmp_path):
    raw = pd.read_csv(crime_file(IVANCO), dtype=str, nrows=50)
    custom = pd.DataFrame(
        {
            "Case Number": raw["DR_NO"],
            "Occurred": raw["DATE OCC"],
            "Hour": raw["TIME OCC"],
            "Division": raw["AREA"],
            "Offense Code": raw["Crm Cd"],
            "Latitude": raw["LAT"],
            "Longitude": raw["LON"],
        }
    )
    path = tmp_path / "custom.csv"
    custom.to_csv(path, index=False)
    mapping = {
        "Case Number": "incident_id",
        "Occurred": "occurred_date",
        "Hour": "occurred_time",
        "Division": "area",
        "Offense Code": "crm_cd",
        "Latitude": "lat",
        "Longitude": "lon",
    }
    frame, report = read_incidents(path, mapping=mapping)
    assert report.files[0].schema == "mapped"
    expected, _ = read_incidents(crime_file(IVANCO))
    assert frame["occurred_at"].tolist() == expected["occurred_at"].iloc[:50].tolist()
    # the description comes from the severity table when the export has none
    assert frame["crm_cd_desc"].iloc[0] == "BATTERY - SIMPLE ASSAULT"


def test_schema_detection_names_expected_and_found_columns():
    kind, _ = detect_schema(
        [
            "Date",
            "Report_District",
            "Crime_Description",
            "Victim_Sex",
            "Latitude",
            "Longitude",
            "Weapon_Category",
            "Age_Category",
            "Victim_Descent_Category",
            "APREC",
            "Time_Class",
        ]
    )
    assert kind == "reduced_2024"
    with pytest.raises(Exception, match=r"unknown schema.*found \['a', 'b'\]"):
        detect_schema(["a", "b"])


def test_load_incidents_cache_returns_identical_frame(tmp_path):
    paths = [crime_file(IVANCO), crime_file(WESTLA)]
    first, report1 = load_incidents(paths, cache=tmp_path)
    assert len(list(tmp_path.glob("*.parquet"))) == 1
    second, report2 = load_incidents(paths, cache=tmp_path)
    pd.testing.assert_frame_equal(first, second)
    assert report1.to_dict() == report2.to_dict()
    # a different option is a different cache entry
    load_incidents(paths, cache=tmp_path, negative_age="abs")
    assert len(list(tmp_path.glob("*.parquet"))) == 2


def test_every_real_row_is_scored_within_bounds():
    frame, _ = load_incidents(crime_file(IVANCO), cache=False)
    assert frame["severity"].between(0, 100).all()
    assert np.isfinite(frame["harm"]).all() and (frame["harm"] > 0).all()


@pytest.fixture(scope="module")
def real_csv_lines() -> list[str]:
    with gzip.open(crime_file(IVANCO), "rt", encoding="utf-8") as fh:
        return [next(fh) for _ in range(41)]


def test_numbers_too_long_for_int64_are_out_of_range_not_a_crash(tmp_path, real_csv_lines):
    rows = pd.read_csv(io.StringIO("".join(real_csv_lines)), dtype=str, keep_default_na=False)
    rows.loc[2, "Crm Cd"] = "99999999999999999999"  # required: row listed and left out
    rows.loc[5, "Vict Age"] = "-99999999999999999999"  # optional: set to null, counted
    path = tmp_path / "long.csv"
    rows.to_csv(path, index=False)
    frame, report = read_incidents(path)
    assert len(frame) == 39
    assert [(b.line, b.column, b.reason) for b in report.bad_rows] == [
        (4, "Crm Cd", "is out of range")
    ]
    assert report.values_nulled == {"Vict Age: is out of range": 1}


def test_malformed_row_that_is_not_utf8_names_its_line_quietly(tmp_path, real_csv_lines, capfd):
    lines = [line.encode() for line in real_csv_lines]
    lines[7] = b"010304468,01/08/2020 00:00,Sou\xe9thwest\n"  # too few fields, and not UTF-8
    path = tmp_path / "mixed_bad.csv"
    path.write_bytes(b"".join(lines))
    with pytest.raises(InputError, match=r"mixed_bad\.csv: line 8 is not valid UTF-8"):
        read_incidents(path)
    assert "Exception ignored" not in capfd.readouterr().err


def test_header_ending_in_a_lone_carriage_return_is_read(tmp_path, real_csv_lines):
    text = real_csv_lines[0].rstrip("\n") + "\r" + "".join(real_csv_lines[1:])
    path = tmp_path / "cr.csv"
    path.write_text(text, encoding="utf-8", newline="")
    frame, report = read_incidents(path)
    assert report.files[0].schema == "official" and len(frame) == 40


def test_pattern_matching_only_a_fifo_names_it(tmp_path):
    fifo = tmp_path / "feed.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"feed\.csv: not a regular file but a named pipe"):
        expand_inputs(str(tmp_path / "*.csv"))


def test_pretty_json_array_record_lines_and_numbers_beyond_int64(tmp_path):
    with gzip.open(crime_file(REDUCED_DIR) / "Crime_Data_CENTRAL.json.gz", "rt") as fh:
        records = json.load(fh)[:12]
    records[2]["Latitude"] = 2**70  # a JSON number no int64 holds, among floats
    path = tmp_path / "big.json"
    path.write_text(json.dumps(records, indent=2))
    frame, _ = read_incidents(path)
    assert len(frame) == 12 and frame.loc[2, "lat"] == float(2**70)
    assert clean_incidents(finalize_dtypes(frame), CleaningReport())["spatial_valid"].sum() == 11
    records[5]["Latitude"] = None
    records[5]["Longitude"] = [34.05, -118.25]
    text = json.dumps(records, indent=2)
    path.write_text(text)
    line = [n for n, row in enumerate(text.splitlines(), 1) if row == "  {"][5]
    with pytest.raises(InputError, match=rf"record 6 \(line {line}\): key Longitude: an array"):
        read_incidents(path)
