"""Corrupt and malformed inputs: one clear error line, exit 1, and no output file left behind."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from tests.shared_data import IVANCO, crime_file

runner = CliRunner()


@pytest.fixture(scope="module")
def real_csv_text() -> str:
    with gzip.open(crime_file(IVANCO), "rt", encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(40)]
    return "".join(lines)


def _ingest(tmp_path, *inputs, extra=(), name="out.parquet"):
    out = tmp_path / name
    result = runner.invoke(app, ["ingest", *map(str, inputs), "-o", str(out), "--no-cache", *extra])
    return result, out


def _assert_clean_failure(result, out, pattern: str) -> None:
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert "Traceback" not in result.output + result.stderr
    assert pytest.importorskip("re").search(pattern, err), err
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*"))  # no temp file left either


def _write(tmp_path, name: str, data: bytes | str):
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def test_truncated_gzip(tmp_path):
    data = crime_file(IVANCO).read_bytes()
    path = _write(tmp_path, "cut.csv.gz", data[: len(data) // 2])
    _assert_clean_failure(*_ingest(tmp_path, path), r"cut\.csv\.gz: corrupt or truncated")


def test_wrong_delimiter(tmp_path, real_csv_text):
    path = _write(tmp_path, "semi.csv", real_csv_text.replace(",", ";"))
    _assert_clean_failure(*_ingest(tmp_path, path), r"semi\.csv: .*not comma separated")


def test_empty_file(tmp_path):
    path = _write(tmp_path, "empty.csv", b"")
    _assert_clean_failure(*_ingest(tmp_path, path), r"empty\.csv: the file is empty")


def test_header_only(tmp_path, real_csv_text):
    path = _write(tmp_path, "header.csv", real_csv_text.splitlines()[0] + "\n")
    _assert_clean_failure(*_ingest(tmp_path, path), r"header\.csv: .*header but no data rows")


def test_non_utf8_bytes_name_the_line(tmp_path, real_csv_text):
    lines = real_csv_text.encode().splitlines(keepends=True)
    lines[5] = lines[5].replace(b"BATTERY", b"BATT\xe9RY").replace(b"VANDALISM", b"VAND\xe9LISM")
    lines[5] = lines[5].replace(b"Central", b"C\xe9ntral").replace(b"Southwest", b"S\xe9uthwest")
    assert b"\xe9" in lines[5]
    path = _write(tmp_path, "latin1.csv", b"".join(lines))
    _assert_clean_failure(*_ingest(tmp_path, path), r"latin1\.csv: line 6 is not valid UTF-8")


def test_missing_required_column(tmp_path, real_csv_text):
    frame = pd.read_csv(pd.io.common.StringIO(real_csv_text), dtype=str).drop(columns=["LAT"])
    path = tmp_path / "nolat.csv"
    frame.to_csv(path, index=False)
    _assert_clean_failure(*_ingest(tmp_path, path), r"nolat\.csv: .*lacks column\(s\) \['LAT'\]")


def test_swapped_lat_lon_columns(tmp_path, real_csv_text):
    frame = pd.read_csv(pd.io.common.StringIO(real_csv_text), dtype=str)
    frame = frame.rename(columns={"LAT": "LON", "LON": "LAT"})
    path = tmp_path / "swapped.csv"
    frame.to_csv(path, index=False)
    _assert_clean_failure(*_ingest(tmp_path, path), r"LAT and LON look swapped")


def test_text_throughout_a_numeric_column(tmp_path, real_csv_text):
    frame = pd.read_csv(pd.io.common.StringIO(real_csv_text), dtype=str)
    frame["LAT"] = "north"
    path = tmp_path / "textlat.csv"
    frame.to_csv(path, index=False)
    _assert_clean_failure(*_ingest(tmp_path, path), r"column LAT: 100% of values is not a number")


def test_text_in_one_row_is_listed_with_its_line_or_stops_strict(tmp_path, real_csv_text):
    frame = pd.read_csv(pd.io.common.StringIO(real_csv_text), dtype=str)
    frame.loc[6, "Crm Cd"] = "six-two-four"
    frame.loc[9, "DATE OCC"] = "13/45/2020 00:00"
    path = tmp_path / "onebad.csv"
    frame.to_csv(path, index=False)
    report_path = tmp_path / "report.json"
    result, out = _ingest(tmp_path, path, extra=["--report", str(report_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    listed = {(row["line"], row["column"]) for row in report["bad_rows"]}
    assert listed == {(8, "Crm Cd"), (11, "DATE OCC")}  # data row 6 is file line 8
    assert pd.read_parquet(out).shape[0] == len(frame) - 2
    strict, out2 = _ingest(tmp_path, path, extra=["--strict"], name="strict.parquet")
    _assert_clean_failure(strict, out2, r"line 11: column DATE OCC: '13/45/2020 00:00'")


def test_rows_with_wrong_field_count_are_listed(tmp_path, real_csv_text):
    lines = real_csv_text.splitlines(keepends=True)
    lines[3] = "1,2,3\n"
    path = _write(tmp_path, "ragged.csv", "".join(lines))
    report_path = tmp_path / "r.json"
    result, out = _ingest(tmp_path, path, extra=["--report", str(report_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["rows_unparseable"] == 1
    assert report["bad_rows"][0]["reason"] == "wrong number of fields"
    frame = pd.read_parquet(out)
    assert len(frame) == len(lines) - 2
    assert frame["source_line"].tolist()[2:4] == [5, 6]  # line 4 skipped, numbering kept


def test_invalid_json(tmp_path):
    path = _write(tmp_path, "broken.json", '[{"Date": "2024-01-01",')
    _assert_clean_failure(*_ingest(tmp_path, path), r"broken\.json: invalid JSON at line 1")


def test_json_that_is_not_records(tmp_path):
    path = _write(tmp_path, "scalar.json", "42")
    _assert_clean_failure(*_ingest(tmp_path, path), r"scalar\.json: expected a JSON array")


def test_unknown_schema_names_expected_and_found(tmp_path):
    path = _write(tmp_path, "other.csv", "city,population\nLos Angeles,3898700\n")
    _assert_clean_failure(
        *_ingest(tmp_path, path), r"other\.csv: unknown schema: expected .*DR_NO.*found \['city'"
    )


def test_missing_file(tmp_path):
    _assert_clean_failure(*_ingest(tmp_path, tmp_path / "nope.csv"), r"nope\.csv: no such file")


def test_bad_mapping_file(tmp_path, real_csv_text):
    data = _write(tmp_path, "d.csv", real_csv_text)
    mapping = _write(tmp_path, "map.json", "{not json")
    _assert_clean_failure(
        *_ingest(tmp_path, data, extra=["--mapping", str(mapping)]), r"map\.json: invalid JSON"
    )


def test_real_console_script_exit_codes(tmp_path):
    out = tmp_path / "x.parquet"
    bad = subprocess.run(
        [sys.executable, "-m", "geo_crime", "ingest", str(tmp_path / "none.csv"), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [f"error: {tmp_path / 'none.csv'}: no such file"]
    good = subprocess.run(
        [
            sys.executable,
            "-m",
            "geo_crime",
            "ingest",
            str(crime_file(IVANCO)),
            "-o",
            str(out),
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert pd.read_parquet(out).shape[0] == 10_000
    assert "wrote 10,000 incidents" in good.stdout
