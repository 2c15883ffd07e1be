"""The forms the live LAPD NIBRS offences set really has, one test per form.

The records are those of :mod:`tests.fakes.nibrs_fixtures`, which follow the live set's published
values (8-digit case numbers, 0-based offence ids, numeric status codes, the NIBRS premise list,
penal-code offence strings, unpadded area and district, 4-decimal coordinates, ``0000`` /
``1200`` times, a ``(0, 0)`` place, a blank offence code) and the retired 2024-25 set's location
keys.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from geo_crime.ingest import load_incidents, read_incidents
from geo_crime.ingest.nibrs import status_table
from tests.fakes.nibrs_fixtures import (
    nibrs_offense_records,
    retired_form,
    write_csv,
    write_json_array,
    write_ndjson,
)
from tests.fakes.shared_data import IVANCO, crime_file


@pytest.fixture(scope="module")
def records() -> list[dict[str, str]]:
    return nibrs_offense_records()


@pytest.fixture(scope="module")
def offence_file(tmp_path_factory, records) -> Path:
    return write_json_array(tmp_path_factory.mktemp("forms") / "offenses.json", records)


@pytest.fixture(scope="module")
def offences(offence_file):
    """The offence rows as read (not cleaned), by offence id, and the read's report."""
    frame, report = read_incidents(offence_file)
    return frame.set_index("offense_id", drop=False), report


def _load(paths, **options):
    """load_incidents without a cache, the warning about the blank offence code silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_incidents(paths, cache=False, **options)


def test_case_and_offence_ids_stay_exactly_as_published(offences, offence_file):
    frame, _ = offences
    row = frame.loc["25245851_290_0"]
    assert (row["incident_id"], row["case_id"]) == ("25245851", "25245851")
    assert frame.loc["25245765_240_1", "incident_id"] == "25245765"
    assert frame["incident_id"].str.fullmatch(r"\d{8}").all()
    assert not frame["incident_id_synthetic"].any()
    # one row per case after collapsing, still under the published number
    incidents, _ = _load(offence_file)
    assert sorted(incidents["incident_id"]) == [
        "25010342",
        "25031877",
        "25090127",
        "25112093",
        "25130456",
        "25150731",
        "25245765",
        "25245851",
    ]
    assert incidents.set_index("case_id").loc["25245765", "offense_id"] == "25245765_240_1"


def test_nibrs_premise_codes_stay_text_apart_from_legacy_codes(offences, offence_file):
    frame, report = offences
    home, lot = frame.loc["25245851_290_0"], frame.loc["25245765_240_1"]
    assert (home["nibrs_premis_cd"], home["premis_desc"]) == ("RA", "Single Family Home")
    assert (lot["nibrs_premis_cd"], lot["premis_desc"]) == ("32", "Parking Lot / Garage / Drop Lot")
    assert frame["premis_cd"].isna().all()
    assert not [key for key in report.values_nulled if "premis" in key]
    # beside legacy rows: each list in its own column
    mixed, _ = _load([crime_file(IVANCO), offence_file])
    legacy = mixed["source_system"] == "legacy"
    assert mixed.loc[legacy, "premis_cd"].notna().sum() == 10_000
    assert mixed.loc[legacy, "nibrs_premis_cd"].isna().all()
    assert mixed.loc[~legacy, "premis_cd"].isna().all()
    assert mixed.loc[~legacy, "nibrs_premis_cd"].value_counts().to_dict() == {"32": 5, "RA": 3}
    assert str(mixed["premis_cd"].dtype) == "Int16"
    assert str(mixed["nibrs_premis_cd"].dtype).startswith("string")


def test_status_codes_map_to_their_descriptions(offences, tmp_path, records):
    frame, report = offences
    assert frame.loc["25031877_120_1", ["status", "status_desc"]].tolist() == [
        "14",
        "Cleared by Arrest - CA Filed",
    ]
    # the record without a published description gets the one of its code
    assert "status_desc" not in records[6] and records[6]["status"] == "40"
    assert frame.loc["25245765_240_1", "status_desc"] == "Investigation Continued"
    assert status_table()[["status", "status_desc"]].values.tolist() == [
        ["14", "Cleared by Arrest - CA Filed"],
        ["40", "Investigation Continued"],
    ]
    # a code the table does not know keeps a published description, else stays blank, counted
    changed = [dict(r) for r in records[:3]]
    changed[0]["status"] = "97"
    del changed[0]["status_desc"]
    changed[1].update(status="98", status_desc="Unfounded")
    del changed[2]["status_desc"]
    read, report = read_incidents(write_json_array(tmp_path / "status.json", changed))
    assert read["status"].astype(str).tolist() == ["97", "98", "40"]
    assert read["status_desc"].astype(object).tolist()[1:] == [
        "Unfounded",
        "Investigation Continued",
    ]
    assert pd.isna(read["status_desc"].iloc[0])
    assert report.values_nulled["status: has no description and is not in nibrs_status.csv"] == 1


def test_each_offence_gets_the_fbi_label_and_keeps_its_legal_string(offences, offence_file):
    frame, _ = offences
    theft = frame.loc["25245765_240_1"]
    assert theft["crm_cd_desc"] == "Motor Vehicle Theft"
    assert theft["nibrs_description"] == "487(D)(1) - PC - F - Grand Theft Auto - GTA  - 240"
    vandalism = frame.loc[frame["nibrs_code"] == "290"]
    assert vandalism["crm_cd_desc"].unique().tolist() == [
        "Destruction/Damage/Vandalism of Property"
    ]
    assert vandalism["nibrs_description"].tolist() == [
        "594(B)(2)(A) - PC - M - Vandalism Less Than $400 - Misd - 290",
        "10852 - VC - M - Tamper With Vehicle - 290",
    ]
    assert frame.loc["25090127_35A_1", "crm_cd_desc"] == "Drug/Narcotic Violations"
    # the incident of a case is labelled by its most serious offence: the vehicle theft
    incidents, _ = _load(offence_file)
    case = incidents.set_index("case_id").loc["25245765"]
    assert (case["crm_cd_desc"], case["nibrs_code"]) == ("Motor Vehicle Theft", "240")


def test_a_code_missing_from_the_table_keeps_its_published_string(tmp_path, records):
    changed = [dict(records[0], nibr_code="99X", nibr_description="123 - PC - M - New - 99X")]
    frame, _ = read_incidents(write_json_array(tmp_path / "new.json", changed))
    assert frame["crm_cd_desc"].tolist() == ["123 - PC - M - New - 99X"]


def test_times_0000_and_1200_are_unknown_times(offences, offence_file):
    frame, report = offences
    by_time = frame.set_index("case_id")
    for case, day in (("25090127", "2025-04-11"), ("25130456", "2025-05-28")):  # 0000, 1200
        assert not by_time.loc[[case], "time_known"].any()
        assert (by_time.loc[[case], "occurred_at"] == pd.Timestamp(day)).all()
    assert by_time.loc["25150731", "occurred_at"] == pd.Timestamp("2025-06-17 00:01")
    assert by_time.loc["25150731", "time_known"]
    assert int((~frame["time_known"]).sum()) == 3
    assert report.values_nulled["time_occ: is 0000 or 1200 (unknown time)"] == 3
    # legacy 12:00 rows keep their time (measured by the hour x weekday figure instead)
    legacy, _ = read_incidents(crime_file(IVANCO))
    noon = legacy["occurred_at"].dt.strftime("%H:%M") == "12:00"
    assert noon.sum() > 0 and legacy.loc[noon, "time_known"].all()


def test_unpadded_area_and_district_and_unresolved_places(offences, offence_file, records):
    van_nuys = [r for r in records if r["area_name"] == "Van Nuys"][0]
    assert (van_nuys["area"], van_nuys["rpt_dist_no"]) == ("9", "932")
    frame, _ = offences
    row = frame.loc[van_nuys["uniquenibrno"]]
    assert (row["area"], row["area_name"], row["rpt_dist"]) == (9, "Van Nuys", "0932")
    assert (row["lat"], row["lon"]) == (34.1857, -118.4574)
    assert frame["rpt_dist"].str.fullmatch(r"\d{4}").all()
    assert (frame["rpt_dist"].str[:2].astype(int) == frame["area"]).all()
    # (0, 0) is no place: kept for the counts, counted, never mapped
    offences_kept, report = _load(offence_file, count="offenses")
    assert report.coordinates_zero == 1
    unresolved = offences_kept.loc[~offences_kept["spatial_valid"], "offense_id"].tolist()
    assert unresolved == ["25112093_23F_0"]


def test_a_blank_offence_code_is_kept_as_an_unknown_offence_and_counted(offences, offence_file):
    frame, report = offences
    row = frame.loc["25150731__0"]
    assert pd.isna(row["nibrs_code"]) and pd.isna(row["crm_cd_desc"])
    assert report.values_nulled["nibr_code: is blank (offence unknown, row kept)"] == 1
    assert report.rows_unparseable == 0
    incidents, load_report = _load(offence_file)
    case = incidents.set_index("case_id").loc["25150731"]
    assert case["crime_category"] == "other" and case["severity"] == 20
    assert load_report.unknown_crime_codes == {"missing": 1}


@pytest.mark.parametrize("writer", [write_json_array, write_ndjson, write_csv])
def test_the_retired_sets_location_keys_read_as_the_same_form(tmp_path, offences, records, writer):
    retired = retired_form(records)
    assert {"location", "lat", "lon"} <= set(retired[0]) and "hndrdth_lat" not in retired[0]
    suffix = {write_json_array: "json", write_ndjson: "ndjson", write_csv: "csv"}[writer]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no key of it is unknown
        frame, report = read_incidents(writer(tmp_path / f"y8y3-fqfu.{suffix}", retired))
    assert [f.schema for f in report.files] == ["nibrs"] and len(frame) == 14
    live, _ = offences
    for column in ("location", "lat", "lon", "offense_id", "crm_cd_desc", "status_desc"):
        assert frame[column].tolist() == live[column].tolist(), column
    assert frame.loc[0, ["location", "lat", "lon"]].tolist() == [
        "1100 W 39TH PL",
        34.0141,
        -118.2978,
    ]


def test_a_bad_value_of_the_retired_set_is_reported_under_its_own_key(tmp_path, records):
    retired = retired_form(records)
    retired[2]["lat"] = "north"
    frame, report = read_incidents(write_ndjson(tmp_path / "y8y3-fqfu.ndjson", retired))
    assert len(frame) == 13 and report.rows_unparseable_by_column == {"lat": 1}
    assert str(report.bad_rows[0]).endswith("line 3: column lat: 'north' is not a number")
