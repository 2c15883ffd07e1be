"""Corrupt and malformed inputs: one clear error line, exit 1, and no output file left behind."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from tests.fakes.shared_data import IVANCO, REDUCED_DIR, crime_file, require_data

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


# --- JSON values of the wrong type -----------------------------------------------------------


@pytest.fixture(scope="module")
def reduced_records() -> list[dict]:
    """The first real 2024 records of one area (coordinates are JSON numbers there)."""
    with gzip.open(crime_file(REDUCED_DIR) / "Crime_Data_CENTRAL.json.gz", "rt") as fh:
        return json.load(fh)[:80]


def _ingest_with_cache(tmp_path, *inputs):
    """Ingest with the cache on (in tmp_path/cache), to check a refusal writes no cache either."""
    out = tmp_path / "out.parquet"
    env = {"GEO_CRIME_CACHE": str(tmp_path / "cache")}
    result = runner.invoke(app, ["ingest", *map(str, inputs), "-o", str(out)], env=env)
    return result, out


def _assert_no_cache_written(tmp_path) -> None:
    assert not list((tmp_path / "cache").rglob("*.parquet"))
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def _record_start_line(text: str, index: int) -> int:
    """The line on which record ``index`` of a JSON array written with ``indent=1`` starts."""
    starts = [number for number, line in enumerate(text.splitlines(), 1) if line == " {"]
    return starts[index]


@pytest.mark.parametrize(
    ("value", "kind"),
    [({"a": 1}, r"an object \{\"a\":1\}"), ([1, 2], r"an array \[1,2\]"), (True, "a boolean true")],
)
def test_json_object_array_or_boolean_in_a_field_names_file_key_and_record(
    tmp_path, reduced_records, value, kind
):
    records = [dict(r) for r in reduced_records]
    records[3]["Latitude"] = value
    text = json.dumps(records, indent=1)
    path = _write(tmp_path, "typed.json", text)
    line = _record_start_line(text, 3)
    result, out = _ingest_with_cache(tmp_path, path)
    _assert_clean_failure(
        result, out, rf"typed\.json: record 4 \(line {line}\): key Latitude: {kind} where"
    )
    _assert_no_cache_written(tmp_path)


def test_json_key_mixing_numbers_and_strings_names_both_records(tmp_path, reduced_records):
    records = [dict(r) for r in reduced_records]
    records[9]["Latitude"] = str(records[9]["Latitude"])
    text = json.dumps(records, indent=1)
    path = _write(tmp_path, "mixed.json", text)
    line, first_line = _record_start_line(text, 9), _record_start_line(text, 0)
    result, out = _ingest_with_cache(tmp_path, path)
    _assert_clean_failure(
        result,
        out,
        rf"mixed\.json: record 10 \(line {line}\): key Latitude: a string \"34\.\d+\" where "
        rf"record 1 \(line {first_line}\) has a number; the key mixes JSON types",
    )
    _assert_no_cache_written(tmp_path)


def test_ndjson_value_of_wrong_type_names_its_line(tmp_path, reduced_records):
    lines = [json.dumps(r) for r in reduced_records[:30]]
    broken = dict(reduced_records[20], Report_District=["0195"])
    lines[20] = json.dumps(broken)
    path = _write(tmp_path, "typed.ndjson", "\n".join(lines) + "\n")
    _assert_clean_failure(
        *_ingest(tmp_path, path), r"typed\.ndjson: line 21: key Report_District: an array"
    )


def test_ndjson_syntax_error_names_the_real_line(tmp_path, reduced_records):
    lines = [json.dumps(r) for r in reduced_records[:60]]
    lines.insert(9, "")  # a blank line: record 50 is now on line 51
    lines[50] = lines[50][:-20]  # cut inside a value
    path = _write(tmp_path, "broken.ndjson", "\n".join(lines) + "\n")
    _assert_clean_failure(
        *_ingest(tmp_path, path), r"broken\.ndjson: invalid JSON at line 51 column \d+ \("
    )


def test_json_array_syntax_error_names_line_and_column(tmp_path, reduced_records):
    text = json.dumps(reduced_records[:20], indent=1)
    lines = text.splitlines()
    lines[100] = lines[100].replace(":", "", 1)
    path = _write(tmp_path, "pretty.json", "\n".join(lines))
    _assert_clean_failure(
        *_ingest(tmp_path, path), r"pretty\.json: invalid JSON at line 101 column \d+"
    )


# --- things that are not incident exports ---------------------------------------------------

DIVISIONS_LAYER = "lapd_divisions__LAPD_Division_5922489107755548254.geojson"


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "stream.csv"
    os.mkfifo(fifo)
    out = tmp_path / "out.parquet"
    done = subprocess.run(
        [sys.executable, "-m", "geo_crime", "ingest", str(fifo), "-o", str(out), "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,  # a reader opening the FIFO would block here for ever
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {fifo}: not a regular file but a named pipe (FIFO); save the data to a file "
        "and pass that instead"
    ]
    assert not out.exists()


def test_character_device_is_not_a_regular_file(tmp_path):
    _assert_clean_failure(
        *_ingest(tmp_path, "/dev/null"), r"/dev/null: not a regular file but a character device"
    )


def test_broken_symlink_is_named_as_such(tmp_path):
    link = tmp_path / "gone.csv"
    link.symlink_to(tmp_path / "missing.csv")
    _assert_clean_failure(*_ingest(tmp_path, link), r"gone\.csv: broken symbolic link")


def test_geojson_boundary_layer_is_named(tmp_path):
    layer = require_data() / "boundaries" / DIVISIONS_LAYER
    _assert_clean_failure(
        *_ingest(tmp_path, layer),
        r"LAPD_Division_\d+\.geojson: this is a GeoJSON file \(a FeatureCollection of 21 "
        r"features\), not an incident export",
    )
    collection = json.loads(layer.read_text())
    collection["features"] = collection["features"][:2]
    pretty = _write(tmp_path, "divisions.json", json.dumps(collection, indent=2))
    _assert_clean_failure(
        *_ingest(tmp_path, pretty),
        r"divisions\.json: this is a GeoJSON file \(a FeatureCollection of 2 features\)",
    )


def test_foreign_parquet_is_named_even_with_a_csv_suffix(tmp_path):
    rollup = pd.read_csv(
        require_data() / "lapd_crime" / "reference" / "lapd_crime_2020_2022_rollup__"
        "area_crmcd_year_counts.csv"
    )
    for name in ("rollup.parquet", "rollup.csv"):
        path = tmp_path / name
        rollup.to_parquet(path)
        _assert_clean_failure(
            *_ingest(tmp_path, path),
            rf"{re.escape(name)}: this is a Parquet file, not an incident export",
        )


def test_parquet_written_by_ingest_points_to_the_commands_that_read_it(tmp_path, real_csv_text):
    data = _write(tmp_path, "few.csv", real_csv_text)
    result, first = _ingest(tmp_path, data, name="incidents.parquet")
    assert result.exit_code == 0, result.output
    again, out = _ingest(tmp_path, first, name="again.parquet")
    _assert_clean_failure(
        again,
        out,
        r"incidents\.parquet: this is an incidents Parquet file already written by 'geo-crime "
        r"ingest', not an incident export: pass it to .*'geo-crime cube'",
    )


def test_output_path_that_is_a_folder_is_refused(tmp_path, real_csv_text):
    data = _write(tmp_path, "few.csv", real_csv_text)
    folder = tmp_path / "outdir"
    folder.mkdir()
    result = runner.invoke(app, ["ingest", str(data), "-o", str(folder), "--no-cache"])
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in result.output, err
    assert re.search(rf"error: {re.escape(str(folder))}: .*(folder|directory)", err), err
    assert not list(folder.iterdir())


def test_1900_dates_are_counted_in_the_printed_table_and_the_json_report(tmp_path):
    frame = pd.read_csv(crime_file(IVANCO), dtype=str, nrows=40, keep_default_na=False)
    frame.loc[[3, 30], "DATE OCC"] = "01/01/1900 12:00:00 AM"
    path = tmp_path / "old_dates.csv"
    frame.to_csv(path, index=False)
    report_path = tmp_path / "report.json"
    result, out = _ingest(tmp_path, path, extra=["--report", str(report_path)])
    assert result.exit_code == 0, result.output
    assert re.search(r"occurred before 2010-01-01, dropped\s*│\s*2\b", result.stdout), result.stdout
    report = json.loads(report_path.read_text())
    assert report["occurred_before_min_dropped"] == 2
    assert report["rows_read"] == 40 and report["rows_out"] == 38
    assert pd.read_parquet(out).shape[0] == 38
