"""Fuzzing every reader: any input either loads with every row accounted for, or is refused.

Each reader gets random bytes, real files with random bytes spliced in, and real rows with random
values substituted into random cells. Whatever comes in, ``load_incidents`` must end in exactly
one of two ways: a load whose cleaning report accounts for every row read (kept, or dropped for a
counted reason), or a :class:`~geo_crime.core.errors.GeoCrimeError`. Any other exception is a bug.
"""

from __future__ import annotations

import csv
import gzip
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_crime.core import schema
from geo_crime.core.errors import GeoCrimeError
from geo_crime.ingest import load_incidents
from tests.fakes.shared_data import IVANCO, REDUCED_DIR, WESTLA, crime_file

#: Real rows per fuzzed file: enough for every schema check, small enough to stay fast.
ROWS = 24

FUZZ_SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

#: Values that have broken readers before or sit on a parsing edge, mixed into random text.
EDGE_TEXT = [
    "",
    " ",
    "-0",
    "0",
    "NaN",
    "nan",
    "inf",
    "-1e999",
    "1e999",
    "99999999999999999999",
    "-9223372036854775809",
    "02/30/2020 12:00:00 AM",
    "01/01/1900 12:00:00 AM",
    "12/31/1969 00:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59",
    "2262-04-11T23:59:59",
    "2099-01-01",
    "13/45/2020 00:00",
    "2400",
    "-0100",
    "0377",
    '"',
    "a,b",
    "line\nbreak",
    "\r",
    "\x00",
    "\ufeff",
    "\u2028",
    "𝟘𝟙",
    "١٢٣",
]

cell_text = st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=24))
json_scalar = st.one_of(
    cell_text,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_value = st.one_of(
    json_scalar,
    st.lists(json_scalar, max_size=3),
    st.dictionaries(st.text(max_size=4), json_scalar, max_size=2),
)
#: Marks a key to remove from a JSON record.
DELETE = object()


@dataclass(frozen=True)
class Source:
    """One reader's input: real records and how to write them as a file."""

    name: str
    suffix: str
    records: list[dict]
    write: Callable[[list[dict]], bytes]
    json_values: bool


def _csv_line(values: list[str]) -> str:
    """One CSV line, quoting what needs it (RFC 4180; a lone CR is quoted too)."""
    cells = []
    for value in values:
        if any(ch in value for ch in ',"\r\n'):
            value = '"' + value.replace('"', '""') + '"'
        cells.append(value)
    return ",".join(cells) + "\n"


def _csv_bytes(records: list[dict]) -> bytes:
    """Records as CSV with their keys as the header."""
    lines = [_csv_line(list(records[0]))] + [_csv_line(list(r.values())) for r in records]
    return "".join(lines).encode("utf-8", errors="surrogatepass")


def _csv_records(name: str) -> tuple[list[dict], list[str]]:
    """The first real rows of a CSV export, keyed by column, and the header as written."""
    with gzip.open(crime_file(name), "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = [next(reader) for _ in range(ROWS)]
    # the modified export repeats a column name: the copy is keyed the way the reader names it
    # (DATE OCC.1), and the file is written back under the original header
    return [dict(zip(_unique(header), row, strict=True)) for row in rows], header


def _unique(names: list[str]) -> list[str]:
    """Column names made unique with ``.1``, ``.2`` suffixes."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, -1) + 1
        out.append(f"{name}.{seen[name]}" if seen[name] else name)
    return out


def _csv_writer(header: list[str]) -> Callable[[list[dict]], bytes]:
    """A writer of records as CSV under a fixed header (repeated names kept)."""

    def write(records: list[dict]) -> bytes:
        lines = [_csv_line(header)] + [_csv_line(list(r.values())) for r in records]
        return "".join(lines).encode("utf-8", errors="surrogatepass")

    return write


def _api_records(rows: list[dict]) -> list[dict]:
    """Official rows as the open-data API gives them: snake_case, ISO dates, null keys omitted."""
    api_name = {v: k for k, v in schema.API_COLUMNS.items()}
    records = []
    for row in rows:
        record = {}
        for column, field_name in schema.OFFICIAL_COLUMNS.items():
            value = row[column]
            if value == "":
                continue
            if column in ("DATE OCC", "Date Rptd"):
                value = pd.to_datetime(value, format="mixed").strftime("%Y-%m-%dT%H:%M:%S.000")
            record[api_name[field_name]] = value
        records.append(record)
    return records


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


def _json_array(records: list[dict]) -> bytes:
    return _json_text(records).encode("utf-8", errors="surrogatepass")


def _ndjson(records: list[dict]) -> bytes:
    return "\n".join(_json_text(r) for r in records).encode("utf-8", errors="surrogatepass")


def _dense(records: list[dict]) -> list[dict]:
    """Records with every key of any record (missing ones empty), for a CSV of API rows."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    return [{k: r.get(k, "") for k in keys} for r in records]


@pytest.fixture(scope="module")
def sources() -> dict[str, Source]:
    official, official_header = _csv_records(IVANCO)
    modified, modified_header = _csv_records(WESTLA)
    api = _api_records(official)
    with gzip.open(crime_file(REDUCED_DIR) / "Crime_Data_CENTRAL.json.gz", "rt") as fh:
        reduced = json.load(fh)[:ROWS]
    return {
        s.name: s
        for s in (
            Source("official", ".csv", official, _csv_writer(official_header), False),
            Source("modified", ".csv", modified, _csv_writer(modified_header), False),
            Source("api_json", ".json", api, _json_array, True),
            Source("api_ndjson", ".ndjson", api, _ndjson, True),
            Source("api_csv", ".csv", _dense(api), _csv_bytes, False),
            Source("reduced_2024", ".json", reduced, _json_array, True),
        )
    }


SOURCE_NAMES = ["official", "modified", "api_json", "api_ndjson", "api_csv", "reduced_2024"]


def _load_or_refuse(path: Path, *, strict: bool, expected_rows: int | None) -> None:
    """Load ``path``; a load must account for every row, a refusal must be a GeoCrimeError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            frame, report = load_incidents(
                path,
                cache=False,
                on_bad_rows="raise" if strict else "report",
                as_of=pd.Timestamp("2026-01-01"),
            )
    except GeoCrimeError as exc:
        assert str(exc).strip() and "\n" not in str(exc)
        return
    dropped = report.rows_dropped_by_reason
    assert report.rows_out == len(frame)
    assert report.rows_read == len(frame) + sum(dropped.values()), (report.rows_read, dropped)
    if expected_rows is not None:
        assert report.rows_read == expected_rows


@pytest.mark.parametrize("name", SOURCE_NAMES)
@FUZZ_SETTINGS
@given(data=st.binary(max_size=600), gzipped=st.booleans())
def test_random_bytes_are_loaded_or_refused(tmp_path, sources, name, data, gzipped):
    source = sources[name]
    path = tmp_path / f"random{source.suffix}{'.gz' if gzipped else ''}"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    _load_or_refuse(path, strict=False, expected_rows=None)


@pytest.mark.parametrize("name", SOURCE_NAMES)
@FUZZ_SETTINGS
@given(data=st.data(), strict=st.booleans())
def test_real_files_with_spliced_bytes_are_loaded_or_refused(tmp_path, sources, name, data, strict):
    source = sources[name]
    content = source.write(source.records)
    start = data.draw(st.integers(0, len(content)), label="start")
    cut = data.draw(st.integers(0, 40), label="cut")
    inserted = data.draw(st.binary(max_size=12), label="inserted")
    path = tmp_path / f"spliced{source.suffix}"
    path.write_bytes(content[:start] + inserted + content[start + cut :])
    _load_or_refuse(path, strict=strict, expected_rows=None)


@pytest.mark.parametrize("name", SOURCE_NAMES)
@FUZZ_SETTINGS
@given(data=st.data(), strict=st.booleans())
def test_real_rows_with_random_cells_are_loaded_or_refused(tmp_path, sources, name, data, strict):
    source = sources[name]
    records = [dict(r) for r in source.records]
    keys = sorted({k for r in records for k in r})
    value_strategy = st.one_of(json_value, st.just(DELETE)) if source.json_values else cell_text
    edits = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(records) - 1), st.sampled_from(keys), value_strategy),
            min_size=1,
            max_size=6,
        ),
        label="edits",
    )
    for row, key, value in edits:
        if value is DELETE:
            records[row].pop(key, None)
        elif source.json_values or key in records[row]:
            records[row][key] = value
    path = tmp_path / f"cells{source.suffix}"
    path.write_bytes(source.write(records))
    _load_or_refuse(path, strict=strict, expected_rows=len(records))
