"""Every incident has an id: its DR_NO, or a stable synthetic id where the source has none."""

from __future__ import annotations

import gzip
import json
import shutil
import warnings

import pandas as pd
import pyarrow.parquet as pq
import pytest

from geo_crime.ingest import load_incidents, read_incidents, synthetic_incident_ids
from geo_crime.ingest.cleaning import CleaningReport, clean_incidents
from tests.fakes.shared_data import IVANCO, REDUCED_DIR, crime_file

CENTRAL = "Crime_Data_CENTRAL.json.gz"
SYNTHETIC_PATTERN = r"S[0-9a-f]{15}"


def _reduced_files() -> list:
    return sorted(crime_file(REDUCED_DIR).glob("*.json.gz"))


@pytest.fixture(scope="module")
def reduced_loaded(tmp_path_factory):
    """The 21 reduced 2024 files read, cleaned and scored, with their cleaning report."""
    return load_incidents(_reduced_files(), cache=tmp_path_factory.mktemp("reduced_cache"))


def test_every_reduced_row_gets_a_unique_synthetic_id(incidents):
    reduced = incidents[incidents["source"] == "reduced_2024"]
    assert len(reduced) == 105_750
    ids = reduced["incident_id"]
    assert ids.notna().all()
    assert ids.is_unique
    assert ids.str.fullmatch(SYNTHETIC_PATTERN).all()
    assert reduced["incident_id_synthetic"].all()
    # the documented rule: S + 15 hex digits of xxh3-64("{file name}:{source_line}")
    for name, rows in reduced.groupby("source_file", observed=True):
        assert rows["incident_id"].tolist() == synthetic_incident_ids(name, rows["source_line"])
    first_central = reduced[(reduced["source_file"] == CENTRAL) & (reduced["source_line"] == 1)]
    assert first_central["incident_id"].tolist() == ["Sbda0cc2a62c6573"]


def test_official_rows_keep_their_dr_no(incidents):
    official = incidents[incidents["source"].isin(["official", "modified"])]
    assert len(official) == 10_000 + 12_954 - 464  # the slices share 464 DR_NOs
    assert official["incident_id"].str.fullmatch(r"\d{9}").all()
    assert not official["incident_id_synthetic"].any()
    first = official[official["incident_id"] == "010304468"]
    assert len(first) == 1 and not first["incident_id_synthetic"].iloc[0]
    assert incidents["incident_id"].notna().all()
    assert incidents["incident_id"].is_unique
    assert len(incidents) == 128_240


def test_ids_are_stable_across_reads_and_folders(incidents, tmp_path):
    original = crime_file(REDUCED_DIR) / CENTRAL
    copied = tmp_path / "copied" / "deeper"
    linked = tmp_path / "linked"
    copied.mkdir(parents=True)
    linked.mkdir()
    shutil.copy(original, copied / CENTRAL)
    (linked / CENTRAL).symlink_to(original)
    first, _ = read_incidents(original)
    again, _ = read_incidents(original)
    from_copy, _ = read_incidents(copied / CENTRAL)
    from_link, _ = read_incidents(linked)
    ids = first["incident_id"].tolist()
    assert len(ids) == len(set(ids)) > 5_000
    assert again["incident_id"].tolist() == ids
    assert from_copy["incident_id"].tolist() == ids
    assert from_link["incident_id"].tolist() == ids
    in_session = incidents.loc[incidents["source_file"] == CENTRAL, "incident_id"]
    assert in_session.tolist() == ids


def test_cleaning_report_counts_synthetic_ids(reduced_loaded, tmp_path):
    frame, report = reduced_loaded
    assert report.synthetic_ids == 105_750 == int(frame["incident_id_synthetic"].sum())
    assert report.duplicates_dropped == 0
    assert report.rows_out == 105_750 == len(frame)
    text = str(report)
    line = next(row for row in text.splitlines() if "synthetic id" in row)
    assert line.split()[-1] == "105,750"
    assert "no DR_NO: synthetic id from file name + record" in line
    saved = json.loads(report.write_json(tmp_path / "report.json").read_text())
    assert saved["synthetic_ids"] == 105_750
    assert CleaningReport.from_dict(saved).synthetic_ids == 105_750


def test_identical_reduced_records_are_all_kept_with_distinct_ids(reduced_loaded):
    frame, _ = reduced_loaded
    keyed = []
    for path in _reduced_files():
        with gzip.open(path, "rt") as fh:
            records = json.load(fh)
        for number, record in enumerate(records, start=1):
            keyed.append((path.name, number, json.dumps(record, sort_keys=True)))
    raw = pd.DataFrame(keyed, columns=["source_file", "source_line", "record"])
    assert int(raw["record"].duplicated().sum()) == 3_427
    repeated = raw[raw["record"].duplicated(keep=False)]
    kept = frame.astype({"source_file": str}).merge(
        repeated, on=["source_file", "source_line"], how="inner"
    )
    assert len(kept) == len(repeated) > 3_427
    assert kept["incident_id"].is_unique
    assert kept["incident_id_synthetic"].all()


def test_synthetic_ids_are_never_used_to_drop_duplicates():
    reduced, _ = read_incidents(crime_file(REDUCED_DIR) / CENTRAL)
    official, _ = read_incidents(crime_file(IVANCO))
    with warnings.catch_warnings():  # all-null columns (e.g. 2024 weapon_desc) are expected
        warnings.simplefilter("ignore", FutureWarning)
        twice = pd.concat([reduced, reduced, official.iloc[:100], official.iloc[:100]])
    report = CleaningReport()
    out = clean_incidents(twice.reset_index(drop=True), report)
    assert report.duplicates_dropped == 100  # the repeated DR_NOs only
    assert len(out) == 2 * len(reduced) + 100
    assert int(out["incident_id_synthetic"].sum()) == 2 * len(reduced)


def test_sources_without_a_record_number_get_synthetic_ids(tmp_path):
    raw = pd.read_csv(crime_file(IVANCO), dtype=str, nrows=50)
    custom = pd.DataFrame(
        {
            "Occurred": raw["DATE OCC"],
            "Offense Code": raw["Crm Cd"],
            "Y": raw["LAT"],
            "X": raw["LON"],
        }
    )
    path = tmp_path / "custom.csv"
    custom.to_csv(path, index=False)
    mapping = {"Occurred": "occurred_date", "Offense Code": "crm_cd", "Y": "lat", "X": "lon"}
    frame, report = read_incidents(path, mapping=mapping)
    assert frame["source_line"].tolist() == list(range(2, 52))
    assert frame["incident_id"].tolist() == synthetic_incident_ids("custom.csv", range(2, 52))
    assert frame["incident_id_synthetic"].all()
    assert report.synthetic_ids == 50
    # an official export with two blank DR_NOs: only those two rows get synthetic ids
    blanked = raw.copy()
    blanked.loc[[3, 7], "DR_NO"] = None
    partial_path = tmp_path / "blanked.csv"
    blanked.to_csv(partial_path, index=False)
    partial, partial_report = read_incidents(partial_path)
    assert partial_report.files[0].schema == "official"
    assert partial["incident_id_synthetic"].tolist() == [i in (3, 7) for i in range(50)]
    assert partial.loc[[3, 7], "incident_id"].tolist() == synthetic_incident_ids(
        partial_path, [5, 9]
    )
    kept = partial["incident_id"].drop([3, 7]).tolist()
    assert kept == raw["DR_NO"].drop([3, 7]).str.zfill(9).tolist()
    assert partial_report.synthetic_ids == 2


def test_files_sharing_a_name_warn_that_their_ids_clash(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(crime_file(REDUCED_DIR) / CENTRAL, tmp_path / folder / CENTRAL)
    with pytest.warns(UserWarning, match="same name.*same synthetic incident ids"):
        frame, _ = read_incidents([tmp_path / "a", tmp_path / "b"])
    assert frame["incident_id"].duplicated().sum() == len(frame) // 2


def test_a_stale_cache_without_the_flag_column_is_rebuilt(tmp_path):
    path = crime_file(REDUCED_DIR) / CENTRAL
    fresh, _ = load_incidents(path, cache=tmp_path)
    (cache_file,) = tmp_path.glob("*.parquet")
    table = pq.read_table(cache_file)
    stale = table.drop_columns(["incident_id_synthetic"]).replace_schema_metadata(
        table.schema.metadata
    )
    pq.write_table(stale, cache_file)
    again, report = load_incidents(path, cache=tmp_path)
    assert again["incident_id_synthetic"].all()
    assert report.synthetic_ids == len(fresh) == len(again)
    pd.testing.assert_frame_equal(again, fresh)
