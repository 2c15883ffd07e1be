"""The LAPD NIBRS offences form: detected, read, cleaned and collapsed to one row per case."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.core import schema
from geo_crime.core.errors import ConfigError, PrivacyError, SchemaError
from geo_crime.ingest import (
    collapse_offenses_to_cases,
    detect_schema,
    load_incidents,
    read_incidents,
)
from geo_crime.ingest.cleaning import CleaningReport
from geo_crime.publish.privacy import check_public_table, victim_columns
from geo_crime.settings import RunSettings
from tests.fakes.nibrs_fixtures import (
    NIBRS_FIELDS,
    nibrs_offense_records,
    real_places,
    write_csv,
    write_json_array,
    write_ndjson,
    write_ndjson_gz,
)
from tests.fakes.shared_data import IVANCO, crime_file

WRITERS = {
    "json": ("offenses.json", write_json_array),
    "ndjson": ("offenses.ndjson", write_ndjson),
    "ndjson.gz": ("offenses.ndjson.gz", write_ndjson_gz),
    "csv": ("offenses.csv", write_csv),
}

#: Columns compared between the forms of one set of records.
COMPARED = (
    "incident_id",
    "case_id",
    "offense_id",
    "occurred_at",
    "reported_at",
    "area",
    "rpt_dist",
    "nibrs_code",
    "nibrs_group",
    "crime_against",
    "crm_cd_desc",
    "nibrs_description",
    "nibrs_premis_cd",
    "premis_desc",
    "status",
    "status_desc",
    "time_known",
    "weapon_cd",
    "nibrs_weapon_cd",
    "weapon_used",
    "victim_count",
    "victim_shot",
    "flag_domestic_violence",
    "location",
    "lat",
    "lon",
)


@pytest.fixture(scope="module")
def records() -> list[dict[str, str]]:
    return nibrs_offense_records()


@pytest.fixture(scope="module")
def offence_file(tmp_path_factory, records) -> Path:
    """The fixture records as the API's JSON array."""
    return write_json_array(tmp_path_factory.mktemp("nibrs") / "offenses.json", records)


def _load(path, **options):
    """load_incidents without a cache, with severity warnings about new codes silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_incidents(path, cache=False, **options)


def _without(record: dict[str, str], *keys: str) -> dict[str, str]:
    return {key: value for key, value in record.items() if key not in keys}


def _values(frame: pd.DataFrame, column: str) -> list:
    return frame[column].astype(object).where(frame[column].notna(), None).tolist()


# --- detection and reading -------------------------------------------------------------------


def test_header_of_the_documented_fields_is_the_nibrs_schema():
    kind, mapping = detect_schema(list(NIBRS_FIELDS))
    assert kind == "nibrs"
    assert mapping == schema.NIBRS_COLUMNS
    assert mapping["hndrdth_lat"] == "lat" and mapping["uniquenibrno"] == "offense_id"
    # the legacy API header is still the API schema
    assert detect_schema(list(schema.API_COLUMNS))[0] == "api"


@pytest.mark.parametrize("form", list(WRITERS))
def test_every_form_is_detected_and_reads_the_same(tmp_path, records, offence_file, form):
    name, write = WRITERS[form]
    path = write(tmp_path / name, records)
    frame, report = read_incidents(path)
    assert [f.schema for f in report.files] == ["nibrs"]
    assert len(frame) == 14 and report.rows_unparseable == 0
    assert set(frame["source"].astype(str)) == {"nibrs"}
    assert set(frame["source_system"].astype(str)) == {"nibrs"}
    expected, _ = read_incidents(offence_file)
    for column in COMPARED:
        assert _values(frame, column) == _values(expected, column), column


def test_offence_rows_become_canonical_columns(offence_file):
    frame, report = read_incidents(offence_file)
    first = frame.iloc[1]
    assert first["incident_id"] == first["case_id"] == "25245851"
    assert not frame["incident_id_synthetic"].any() and report.synthetic_ids == 0
    assert first["offense_id"] == "25245851_13A_1"
    assert first["nibrs_code"] == "13A" and first["nibrs_group"] == "A"
    assert first["crime_against"] == "Person"
    assert first["crm_cd_desc"] == "Aggravated Assault"
    assert pd.isna(first["crm_cd"]) and pd.isna(first["part"])
    assert first["nibrs_weapon_cd"] == "12" and first["weapon_cd"] == 12
    assert first["weapon_desc"] == "Handgun" and first["weapon_used"]
    assert first["occurred_at"] == pd.Timestamp("2025-01-14 22:30")
    assert first["reported_at"] == pd.Timestamp("2025-01-15")
    assert first["victim_count"] == 2
    assert first["victim_shot"] and first["flag_domestic_violence"]
    assert not first["flag_hate_crime"]
    assert frame["offense_count"].eq(1).all()
    # the places are real legacy rows: Southwest RD 0377 at 1100 W 39TH PL
    assert first["area"] == 3 and first["area_name"] == "Southwest"
    assert first["rpt_dist"] == "0377" and first["location"] == "1100 W 39TH PL"
    assert first["lat"] == pytest.approx(34.0141) and first["lon"] == pytest.approx(-118.2978)
    places = real_places()
    assert sorted(frame["area"].unique().tolist()) == sorted(places["AREA"].astype(int).tolist())
    assert (frame["rpt_dist"].str[:2].astype(int) == frame["area"]).all()
    assert frame["case_id"].nunique() == 9 and frame["offense_id"].is_unique


def test_omitted_keys_read_as_null(records, offence_file):
    no_weapon = [i for i, r in enumerate(records) if "weapon_used_cd" not in r]
    no_report_date = [i for i, r in enumerate(records) if "date_rptd" not in r]
    assert len(no_weapon) == 12 and len(no_report_date) == 2  # the keys really are left out
    frame, report = read_incidents(offence_file)
    rows = frame.iloc[no_weapon]
    assert rows["nibrs_weapon_cd"].isna().all() and rows["weapon_cd"].isna().all()
    assert rows["weapon_desc"].isna().all()
    assert not rows["weapon_used"].any()
    assert frame["reported_at"].isna().tolist() == [i in no_report_date for i in range(14)]
    # no omitted key is counted as a bad value; the blank code and the unknown times are
    assert report.values_nulled == {
        "nibr_code: is blank (offence unknown, row kept)": 1,
        "time_occ: is 0000 or 1200 (unknown time)": 3,
    }


def test_weapon_codes_keep_their_text_and_fill_weapon_cd_when_plain(tmp_path, records):
    changed = [dict(r) for r in records[:3]]
    changed[0]["weapon_used_cd"] = "11A"  # FBI code for a fully automatic firearm
    changed[1]["weapon_used_cd"] = "99"  # FBI code for "None"
    frame, _ = read_incidents(write_json_array(tmp_path / "weapons.json", changed))
    assert _values(frame, "nibrs_weapon_cd") == ["11A", "99", None]
    assert _values(frame, "weapon_cd") == [None, 99, None]
    assert frame["weapon_used"].tolist() == [True, False, False]


def test_flags_other_than_yes_or_no_become_null_and_are_counted(tmp_path, records):
    changed = [dict(r) for r in records[:3]]
    changed[0]["hate_crime"] = "Unknown"
    changed[1]["hate_crime"] = "Y"
    frame, report = read_incidents(write_json_array(tmp_path / "flags.json", changed))
    assert _values(frame, "flag_hate_crime") == [None, True, False]
    assert report.values_nulled == {"hate_crime: is not yes or no": 1}


# --- incidents, not only offences ------------------------------------------------------------


def _most_serious(offences: pd.DataFrame) -> pd.DataFrame:
    """The documented rule, written independently: highest severity, group A, lowest id."""
    ranked = offences.assign(
        group_rank=offences["nibrs_group"].astype(object).map({"A": 0, "B": 1}).fillna(2)
    )
    ranked = ranked.sort_values(
        ["case_id", "severity", "group_rank", "offense_id"], ascending=[True, False, True, True]
    )
    return ranked.drop_duplicates("case_id").set_index("case_id")


def test_offences_of_a_case_collapse_to_its_most_serious_one(offence_file):
    incidents, report = _load(offence_file)
    offences, offence_report = _load(offence_file, count="offenses")
    assert len(offences) == 13  # 14 offences, one on the placeholder date
    assert len(incidents) == 8 and incidents["incident_id"].is_unique
    assert report.offenses_merged_into_cases == 5
    assert offence_report.offenses_merged_into_cases == 0
    assert report.rows_out == len(incidents)
    assert report.rows_read == report.rows_out + sum(report.rows_dropped_by_reason.values())
    assert ("NIBRS offences merged into their case", 5) in report.lines()
    by_case = incidents.set_index("case_id")
    # aggravated assault with a handgun over vandalism and a group B offence
    assaulted = by_case.loc["25245851"]
    assert assaulted["nibrs_code"] == "13A" and assaulted["offense_count"] == 3
    assert assaulted["offense_id"] == "25245851_13A_1"
    assert assaulted["victim_shot"] and assaulted["flag_domestic_violence"]
    assert assaulted["weapon_cd"] == 12
    # a robbery over the simple assault filed first
    robbed = by_case.loc["25031877"]
    assert robbed["nibrs_code"] == "120" and robbed["offense_count"] == 2
    assert robbed["crm_cd_desc"] == "Robbery"
    assert by_case.loc["25010342", "offense_count"] == 1
    # each case keeps the row the rule picks, with its severity and category
    expected = _most_serious(offences)
    for column in ("offense_id", "nibrs_code", "severity", "crime_category", "crm_cd_desc"):
        assert by_case[column].astype(str).to_dict() == expected[column].astype(str).to_dict()
    assert by_case["offense_count"].to_dict() == offences["case_id"].value_counts().to_dict()
    assert int(incidents["offense_count"].sum()) == len(offences)
    assert offences["offense_count"].eq(1).all() and offences["offense_id"].is_unique
    assert offences.groupby("case_id").size().max() == 3


def test_ties_go_to_group_a_then_to_the_lowest_offence_id():
    rows = pd.DataFrame(
        {
            "source_system": ["nibrs"] * 5 + ["legacy"],
            "case_id": ["1", "1", "2", "2", "2", "010304468"],
            "offense_id": ["190D1", "135A2", "223H2", "223F1", "290Z3", "010304468"],
            "nibrs_code": ["90D", "35A", "23H", "23F", "90Z", None],
            "nibrs_group": ["B", "A", "A", "A", "B", None],
            "severity": pd.array([15, 15, 18, 18, 40], dtype="int16").tolist() + [25],
            "offense_count": pd.array([1] * 6, dtype="Int16"),
            "victim_count": pd.array([0, 1, None, None, None, None], dtype="Int16"),
            "flag_hate_crime": pd.array([None, False, None, None, True, None], dtype="boolean"),
            "spatial_valid": [True] * 6,
        }
    )
    report = CleaningReport()
    cases = collapse_offenses_to_cases(rows, report)
    # case 1: equal severity, group A wins over the lower id of group B; case 2: highest severity
    assert cases["nibrs_code"].tolist() == ["35A", "90Z", None]
    assert cases["offense_count"].tolist() == [2, 3, 1]
    assert _values(cases, "victim_count") == [1, None, None]
    assert _values(cases, "flag_hate_crime") == [False, True, None]
    assert report.offenses_merged_into_cases == 3 and report.rows_out == 3
    rows.loc[4, "severity"] = 18  # now a three-way tie in case 2: A before B, then lowest id
    assert collapse_offenses_to_cases(rows, CleaningReport())["nibrs_code"].tolist()[1] == "23F"
    legacy_only = rows.iloc[[5]]
    assert collapse_offenses_to_cases(legacy_only, CleaningReport()) is legacy_only


def test_the_cache_keeps_incidents_and_offences_apart(tmp_path, offence_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        incidents, _ = load_incidents(offence_file, cache=tmp_path)
        offences, _ = load_incidents(offence_file, cache=tmp_path, count="offenses")
        assert len(list(tmp_path.glob("*.parquet"))) == 2
        cached, report = load_incidents(offence_file, cache=tmp_path)
        cached_offences, _ = load_incidents(offence_file, cache=tmp_path, count="offenses")
    pd.testing.assert_frame_equal(cached, incidents)
    pd.testing.assert_frame_equal(cached_offences, offences)
    assert (len(cached), len(cached_offences)) == (8, 13)
    assert report.offenses_merged_into_cases == 5


def test_count_must_be_incidents_or_offenses(offence_file):
    with pytest.raises(ConfigError, match=r"count must be 'incidents' or 'offenses', got 'cases'"):
        load_incidents(offence_file, cache=False, count="cases")


def test_repeated_offence_ids_are_dropped_not_counted_as_offences(tmp_path, records):
    first = write_json_array(tmp_path / "page1.json", records)
    again = write_ndjson(tmp_path / "page2.ndjson", records)
    incidents, report = _load([first, again])
    assert report.duplicate_offenses_dropped == 14 and report.duplicates_dropped == 0
    assert len(incidents) == 8 and int(incidents["offense_count"].sum()) == 13
    assert report.occurred_placeholder_date == 1
    assert report.rows_read == report.rows_out + sum(report.rows_dropped_by_reason.values())
    assert incidents["also_in_files"].dropna().unique().tolist() == ["page2.ndjson"]


# --- dates -----------------------------------------------------------------------------------


def test_placeholder_date_is_flagged_and_counted(offence_file):
    frame, report = _load(offence_file, count="offenses")
    assert report.occurred_before_min_dropped == 1 and report.occurred_placeholder_date == 1
    assert not frame["occurred_at"].lt("2010-01-01").any()
    assert ("occurred on a placeholder date (1800-01-06)", 1) in report.lines()
    assert report.to_dict()["occurred_placeholder_date"] == 1
    kept, report = _load(offence_file, count="offenses", min_occurred_date=None)
    assert len(kept) == 14 and report.occurred_placeholder_date == 1
    placeholder = kept["occurred_at"].dt.year == 1800
    assert kept.loc[placeholder, "case_id"].tolist() == ["25068810"]
    assert kept["date_suspect"].tolist() == placeholder.tolist()


# --- schema problems -------------------------------------------------------------------------


def test_an_unknown_field_warns_naming_it_and_the_file(tmp_path, records):
    extended = [dict(r, zone_code="Z7") for r in records]
    extended[0][":@computed_region_abcd"] = "12"  # Socrata's own fields are no data
    path = write_ndjson(tmp_path / "extended.ndjson", extended)
    with pytest.warns(
        UserWarning, match=r"extended\.ndjson: 1 field\(s\) .* kept as text .*: zone_code$"
    ):
        frame, report = read_incidents(path)
    assert len(frame) == 14 and (frame["extra_zone_code"] == "Z7").all()
    assert not [c for c in frame.columns if "computed_region" in c]
    assert report.files[0].schema == "nibrs"
    # kept through cleaning, scoring and the cache (analysis table), null on legacy rows
    legacy = crime_file(IVANCO)
    rows, _ = load_incidents([legacy, path], cache=tmp_path / "cache")
    again, _ = load_incidents([legacy, path], cache=tmp_path / "cache")
    nibrs = rows["source_system"] == "nibrs"
    assert rows.loc[nibrs, "extra_zone_code"].eq("Z7").all()
    assert rows.loc[~nibrs, "extra_zone_code"].isna().all()
    pd.testing.assert_frame_equal(rows, again)
    # and never in a public table: an unknown field may hold anything
    with pytest.raises(PrivacyError):
        check_public_table(rows.loc[nibrs, ["extra_zone_code"]].assign(unit_id="a"))


@pytest.mark.parametrize("field", schema.NIBRS_REQUIRED_COLUMNS)
def test_a_missing_required_field_is_one_error_naming_it_and_the_file(tmp_path, records, field):
    path = write_csv(tmp_path / "short.csv", [_without(r, field) for r in records])
    with pytest.raises(SchemaError) as caught:
        read_incidents(path)
    message = str(caught.value)
    assert message == (
        f"{path}: looks like the LAPD NIBRS offences schema but lacks key(s) ['{field}']"
    )


def test_all_missing_required_fields_are_named_at_once(tmp_path, records):
    path = write_json_array(
        tmp_path / "no_place.json", [_without(r, "hndrdth_lat", "hndrdth_lon") for r in records]
    )
    with pytest.raises(SchemaError, match=r"no_place\.json: .* \['hndrdth_lat', 'hndrdth_lon'\]$"):
        read_incidents(path)


def test_ingest_command_prints_one_error_line_for_a_missing_field(tmp_path, records):
    path = write_ndjson_gz(
        tmp_path / "no_code.ndjson.gz", [_without(r, "nibr_code") for r in records]
    )
    output = tmp_path / "incidents.parquet"
    result = CliRunner().invoke(app, ["ingest", str(path), "-o", str(output), "--no-cache"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {path}: looks like the LAPD NIBRS offences schema but lacks key(s) ['nibr_code']"
    ]
    assert not output.exists()


def test_ingest_command_counts_incidents_or_offences(tmp_path, offence_file):
    for count, rows in (("incidents", 8), ("offenses", 13)):
        output = tmp_path / f"{count}.parquet"
        result = CliRunner().invoke(
            app, ["ingest", str(offence_file), "-o", str(output), "--no-cache", "--count", count]
        )
        assert result.exit_code == 0, result.output
        assert f"wrote {rows:,} incidents to {output}" in result.output
        assert len(pd.read_parquet(output)) == rows
    result = CliRunner().invoke(
        app, ["ingest", str(offence_file), "-o", str(tmp_path / "x.parquet"), "--count", "rows"]
    )
    assert result.exit_code == 1
    assert "error: --count must be 'incidents' or 'offenses', got 'rows'" in result.output


def test_count_is_a_run_setting(tmp_path):
    assert RunSettings.from_sources(name="r").count == "incidents"
    assert RunSettings.from_sources(name="r", count="offenses").count == "offenses"
    config = tmp_path / "run.toml"
    config.write_text('[run]\nname = "r"\ncount = "offenses"\n')
    assert RunSettings.from_sources(config_file=config).count == "offenses"
    config.write_text('[run]\nname = "r"\ncount = "cases"\n')
    with pytest.raises(ConfigError, match=r"\[run\]: count must be 'incidents' or 'offenses'"):
        RunSettings.from_sources(config_file=config)
    result = CliRunner().invoke(app, ["run", "--count", "cases", "--name", "r"])
    assert result.exit_code == 1
    assert result.output == (
        "error: command line: count must be 'incidents' or 'offenses', got 'cases' (str)\n"
    )


# --- with the legacy set ---------------------------------------------------------------------


def test_legacy_and_nibrs_files_load_together(tmp_path, offence_file):
    legacy_alone, _ = _load(crime_file(IVANCO))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mixed, report = load_incidents([crime_file(IVANCO), offence_file], cache=tmp_path)
        cached, cached_report = load_incidents([crime_file(IVANCO), offence_file], cache=tmp_path)
    pd.testing.assert_frame_equal(mixed, cached)
    assert cached_report.to_dict() == report.to_dict()
    assert mixed["source_system"].value_counts().to_dict() == {"legacy": 10_000, "nibrs": 8}
    assert [f.schema for f in report.files] == ["official", "nibrs"]
    assert report.duplicates_dropped == 0 and report.offenses_merged_into_cases == 5
    assert mixed["incident_id"].is_unique
    legacy = mixed[mixed["source_system"] == "legacy"].reset_index(drop=True)
    # legacy rows are read as before, with their legacy values in the new columns
    for column in ("incident_id", "occurred_at", "crm_cd", "severity", "harm", "lat", "lon"):
        assert _values(legacy, column) == _values(legacy_alone, column), column
    assert (legacy["case_id"] == legacy["incident_id"]).all()
    assert (legacy["offense_id"] == legacy["incident_id"]).all()
    assert legacy["offense_count"].eq(1).all()
    for column in ("nibrs_code", "nibrs_group", "nibrs_weapon_cd", "crime_against"):
        assert legacy[column].isna().all(), column
    assert legacy[["nibrs_premis_cd", "nibrs_description"]].isna().all().all()
    assert legacy["premis_cd"].notna().all()
    nibrs = mixed[mixed["source_system"] == "nibrs"]
    assert nibrs["crm_cd"].isna().all() and nibrs["premis_cd"].isna().all()
    # every case but the one with a blank code has its offence; all but (0, 0) are placed
    assert nibrs["nibrs_code"].isna().sum() == 1
    assert nibrs["spatial_valid"].sum() == 7
    assert nibrs["vict_age_group"].eq("unknown").all()


def test_the_nibrs_victim_fields_never_reach_public_tables():
    nibrs_victim = ["victim_count", *schema.NIBRS_FLAG_COLUMNS]
    assert len(nibrs_victim) == 9 and "flag_hate_crime" in nibrs_victim
    assert set(nibrs_victim) <= set(schema.VICTIM_COLUMNS)
    assert victim_columns(["unit_id", "count", *nibrs_victim]) == nibrs_victim
    for column in nibrs_victim:
        table = pd.DataFrame({"unit_id": ["a", "b"], "count": [3, 4], column: [1, 0]})
        with pytest.raises(PrivacyError, match=column):
            check_public_table(table, name="layer")


def test_fixture_records_follow_the_documented_form(records):
    assert all(set(r) <= set(NIBRS_FIELDS) for r in records)
    assert all(isinstance(v, str) for r in records for v in r.values())
    assert {r["date_occ"][10:] for r in records} == {"T00:00:00.000"}
    assert json.loads(json.dumps(records)) == records
    by_case = pd.DataFrame(records).groupby("caseno")
    assert (by_case["totaloffensecount"].first().astype(int) == by_case.size()).all()
    by_case = pd.DataFrame(records).groupby("caseno", sort=False)
    for caseno, rows in by_case:
        expected = [f"{caseno}_{c}_{i}" for i, c in enumerate(rows["nibr_code"].fillna(""))]
        assert rows["uniquenibrno"].tolist() == expected
        assert len(caseno) == 8 and caseno.isdigit()
