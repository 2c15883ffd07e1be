"""The fast reader of newline-delimited JSON (the open-data API's form) gives the Python
reader's columns, and leaves every other file to the Python reader."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from geo_crime.ingest import read_incidents, readers
from tests.fakes.nibrs_fixtures import nibrs_offense_records, write_ndjson_gz
from tests.fakes.shared_data import IVANCO, crime_file
from tests.fakes.twin_records import legacy_records


@pytest.fixture(scope="module")
def api_files(tmp_path_factory):
    """Real legacy rows (the 2020 export) in the legacy API form, and NIBRS offence records."""
    folder = tmp_path_factory.mktemp("api")
    official, _ = read_incidents([crime_file(IVANCO)])
    legacy = write_ndjson_gz(folder / "legacy.ndjson.gz", legacy_records(official.head(3000)))
    nibrs = write_ndjson_gz(folder / "nibrs.ndjson.gz", nibrs_offense_records())
    return [legacy, nibrs]


def test_api_files_read_fast_give_the_python_readers_columns(api_files, monkeypatch):
    for path in api_files:
        assert readers._arrow_json_lines(path) is not None, path
    fast, fast_report = read_incidents(api_files)
    assert int((fast["source_system"] == "legacy").sum()) == 3000
    monkeypatch.setattr(readers, "_arrow_json_lines", lambda path: None)
    slow, slow_report = read_incidents(api_files)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast_report.rows_read == slow_report.rows_read
    assert fast_report.rows_unparseable_by_column == slow_report.rows_unparseable_by_column


@pytest.mark.parametrize(
    "lines",
    [
        [b'{"dr_no": "1", "lat": 34.05}', b'{"dr_no": "2", "lat": 34.06}'],  # a number
        [b'{"dr_no": "1", "x": {"a": "b"}}', b'{"dr_no": "2", "x": {"a": "c"}}'],  # an object
        [b'{"dr_no": "1", "x": true}', b'{"dr_no": "2", "x": false}'],  # a boolean
        [b'{"dr_no": "\xff"}', b'{"dr_no": "2"}'],  # not UTF-8
        [b'[{"dr_no": "1"},', b'{"dr_no": "2"}]'],  # an array
        [b'{"dr_no": "1"}'],  # one record
        [b'{"dr_no": "1"}', b'{"dr_no": '],  # truncated
    ],
)
def test_other_files_go_to_the_python_reader(tmp_path, lines):
    path = tmp_path / "x.ndjson.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    assert readers._arrow_json_lines(path) is None


def test_a_key_missing_from_some_records_is_null_there(tmp_path):
    rows = [{"a": "1", "b": "x"}, {"a": "2"}, {"a": "3", "b": "z"}]
    path = tmp_path / "x.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    table = readers._arrow_json_lines(path)
    assert table.column("b").to_pylist() == ["x", None, "z"]
