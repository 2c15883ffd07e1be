"""The incident cache serves only the rows of the very bytes its key was hashed from.

* A file replaced between the hashing of the key and the reading of the rows (the race a
  hostile tester found: 2,000 of 10,000 real rows cached under the key of all 10,000, and served
  for every later load of the unchanged original) is noticed after the read: what was read is
  not cached under the old key, the inputs are hashed and read again, and the original, put
  back, loads whole. A file that keeps changing fails with one error after a few tries.
* A cache entry that is not what its key and its own record say is removed, rebuilt from the
  inputs and reported in a warning, never served: another input's entry put at the key, an
  entry with rows cut and its cleaning report edited to match, an entry with a retyped column.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geo_crime import ingest
from geo_crime.core.errors import InputError
from geo_crime.ingest import cache as incident_cache
from geo_crime.ingest import load_incidents
from tests.fakes.shared_data import IVANCO, crime_file

ALL_ROWS = 10_000
FEW_ROWS = 2_000


@pytest.fixture(scope="module")
def real_lines() -> list[str]:
    """The header and the 10,000 rows of the real official export (Ivanco19's first 10k)."""
    with gzip.open(crime_file(IVANCO), "rt", encoding="utf-8") as fh:
        lines = fh.readlines()
    assert len(lines) == ALL_ROWS + 1
    return lines


def write_export(path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(lines)


def entries(folder) -> list:
    return sorted(folder.glob("*.parquet"))


def load_quietly(path, folder, monkeypatch=None):
    """A load that must give no warning (and, with ``monkeypatch``, must not read the inputs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if monkeypatch is None:
            return load_incidents(path, cache=folder)
        with monkeypatch.context() as patch:
            patch.setattr(ingest, "read_incidents", _no_reading)
            return load_incidents(path, cache=folder)


def _no_reading(*args, **kwargs):
    raise AssertionError("the inputs were read: the cache was not used")


# --- the key and the rows come from the same bytes ------------------------------------------------


def test_a_file_replaced_between_hashing_and_reading_is_not_cached_under_the_old_key(
    tmp_path, real_lines, monkeypatch
):
    path = tmp_path / "crimes.csv.gz"
    write_export(path, real_lines)
    original = tmp_path / "original.csv.gz"
    shutil.copy(path, original)
    fewer = tmp_path / "fewer.csv.gz"
    write_export(fewer, real_lines[: FEW_ROWS + 1])
    expected_all, _ = load_incidents(path, cache=False)
    folder = tmp_path / "cache"

    read = ingest.read_incidents
    calls = []

    def replaced_after_hashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the key is hashed already: the file is swapped before its read
            os.replace(fewer, path)
        return read(*args, **kwargs)

    monkeypatch.setattr(ingest, "read_incidents", replaced_after_hashing)
    pattern = (
        rf"^{re.escape(str(path))}: the file changed while it was being read \(written to or "
        r"replaced\); what was read is not used: reading the inputs again$"
    )
    with pytest.warns(UserWarning, match=pattern) as caught:
        frame, report = load_incidents(path, cache=folder)
    assert len(caught) == 1 and len(calls) == 2
    monkeypatch.setattr(ingest, "read_incidents", read)
    # what the file holds now, read and cached under the key of those bytes
    assert report.rows_read == FEW_ROWS
    assert len(entries(folder)) == 1

    # the unchanged original comes back: it is read whole, not served the 2,000 rows
    shutil.copy(original, path)
    frame, report = load_quietly(path, folder)
    assert report.rows_read == ALL_ROWS
    pd.testing.assert_frame_equal(frame, expected_all)
    assert len(entries(folder)) == 2
    again, report = load_quietly(path, folder, monkeypatch)  # and now served from the cache
    assert report.rows_read == ALL_ROWS
    pd.testing.assert_frame_equal(again, expected_all)


def test_a_file_that_keeps_changing_fails_after_three_tries_and_caches_nothing(
    tmp_path, real_lines, monkeypatch
):
    path = tmp_path / "crimes.csv.gz"
    versions = [tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"]
    write_export(path, real_lines[:301])
    read = ingest.read_incidents
    calls = []

    def rewritten_every_time(*args, **kwargs):
        calls.append(1)
        write_export(versions[len(calls) % 2], real_lines[: 301 + len(calls)])
        os.replace(versions[len(calls) % 2], path)
        return read(*args, **kwargs)

    monkeypatch.setattr(ingest, "read_incidents", rewritten_every_time)
    folder = tmp_path / "cache"
    with (
        pytest.warns(UserWarning, match="changed while it was being read") as caught,
        pytest.raises(InputError) as info,
    ):
        load_incidents(path, cache=folder)
    assert str(info.value) == (
        f"{path}: the file kept changing while it was being read (3 tries); load it once it is "
        "no longer being written"
    )
    assert len(caught) == len(calls) == 3
    assert entries(folder) == []


# --- every entry is checked against its key and its record ----------------------------------------


@pytest.fixture
def exports(tmp_path, real_lines):
    """Two real exports of 300 rows each (rows 1-300 and 301-600), the same header."""
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("".join(real_lines[:301]), encoding="utf-8")
    second.write_text("".join(real_lines[:1] + real_lines[301:601]), encoding="utf-8")
    return first, second


def _other_inputs(entry, other_entry) -> None:
    shutil.copy(other_entry, entry)  # a sound entry of other rows, placed at this key


def _rows_cut_report_edited(entry, other_entry) -> None:
    table = pq.read_table(entry)
    meta = dict(table.schema.metadata)
    report = meta[b"geo_crime_report"].decode().replace('"rows_out": 300', '"rows_out": 10')
    meta[b"geo_crime_report"] = report.encode()
    pq.write_table(table.slice(0, 10).replace_schema_metadata(meta), entry)


def _column_retyped(entry, other_entry) -> None:
    table = pq.read_table(entry)
    index = table.schema.get_field_index("premis_cd")
    retyped = table.set_column(index, "premis_cd", table["premis_cd"].cast(pa.float64()))
    pq.write_table(retyped.replace_schema_metadata(table.schema.metadata), entry)


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (_other_inputs, r"it holds the rows of other inputs: input digest {other}, not {key}"),
        (_rows_cut_report_edited, r"10 rows where its record says 300 and its report 10"),
        (_column_retyped, r"its columns are not the schema it records: premis_cd double"),
    ],
    ids=["other-inputs", "rows-cut-report-edited", "column-retyped"],
)
def test_a_forged_cache_entry_is_discarded_with_a_warning_and_rebuilt(
    tmp_path, exports, monkeypatch, forge, reason
):
    first, second = exports
    folder = tmp_path / "cache"
    expected, _ = load_incidents(first, cache=folder)
    (entry,) = entries(folder)
    load_incidents(second, cache=folder)
    (other_entry,) = [e for e in entries(folder) if e != entry]
    other_rows, _ = load_incidents(second, cache=False)
    assert not other_rows["incident_id"].isin(expected["incident_id"]).any()

    forge(entry, other_entry)
    message = reason.format(other=other_entry.stem, key=entry.stem)
    pattern = (
        rf"^{re.escape(str(entry))}: incident cache entry rejected \({message}\); removed it "
        r"and rebuilding$"
    )
    with pytest.warns(UserWarning, match=pattern) as caught:
        frame, report = load_incidents(first, cache=folder)
    assert len(caught) == 1
    assert report.rows_read == report.rows_out == 300
    pd.testing.assert_frame_equal(frame, expected)
    served, _ = load_quietly(first, folder, monkeypatch)  # the rebuilt entry is sound again
    pd.testing.assert_frame_equal(served, expected)


def test_each_entry_records_its_input_digest_row_count_and_schema(tmp_path, exports):
    first, _ = exports
    folder = tmp_path / "cache"
    frame, _ = load_incidents(first, cache=folder)
    (entry,) = entries(folder)
    record = json.loads(pq.read_schema(entry).metadata[incident_cache.ENTRY_KEY])
    assert (
        record["input_digest"]
        == entry.stem
        == incident_cache.content_key(
            [first],
            {
                "mapping": {},
                "negative_age": "null",
                "harm_log": False,
                "on_bad_rows": "report",
                "as_of": None,
                "min_occurred_date": "2010-01-01",
                "count": "incidents",
            },
        )
    )
    assert record["rows"] == len(frame) == 300
    assert list(record["schema"]) == list(frame.columns)
    assert record["schema"]["incident_id"] == "large_string"
    assert record["schema"]["premis_cd"] == "int16"
    assert incident_cache.CACHE_FORMAT_VERSION >= 7  # entries carry their record from format 7
