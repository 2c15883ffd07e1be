"""The readers: one CSV or JSON file, plain or gzip, as text columns keyed by canonical fields.

:func:`read_raw` picks the reader (see :func:`~geo_crime.ingest.detect.sniff_format`).
:func:`read_csv_file` reads the official, modified, API and NIBRS offences CSV exports with
pyarrow; :func:`read_json_file` reads a JSON array of records, newline-delimited records (NDJSON)
or one record object, where a key whose value is null may be left out. Both find the schema from
the header (:func:`~geo_crime.ingest.detect.detect_schema`), keep every mapped column as text and
hand a :class:`RawRead` to :mod:`geo_crime.ingest.convert`, which types the values.

Rows with the wrong number of fields are listed in :attr:`RawRead.bad_rows` and left out. A CSV
row's line is the line of the file it starts on, as an editor numbers them: a quoted value holding
a line break, and a blank line, move every later row down (pyarrow numbers records, not lines);
a carriage return inside a quoted value is part of the value, not a line break. What is
wrong with the file as a whole (not UTF-8, a corrupt gzip archive, invalid JSON, GeoJSON, a key
holding an object, an array, a boolean or both numbers and strings) raises one
:class:`~geo_crime.core.errors.InputError` naming the file and, where known, the line and column.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import re
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as paj

from geo_crime.core.errors import InputError
from geo_crime.ingest.cleaning import BadRow
from geo_crime.ingest.detect import (
    GZIP_MAGIC,
    csv_header,
    dedupe_names,
    detect_schema,
    geojson_refusal,
    is_gzip,
    sniff_format,
    unreadable,
)


@dataclass
class RawRead:
    """What a reader hands to the converter: text columns keyed by canonical field names."""

    fields: dict[str, pa.Array]
    n_rows: int
    schema_name: str
    path: Path
    line_numbers: np.ndarray
    bad_rows: list[BadRow] = field(default_factory=list)
    #: The file's own column name of each field, for messages (e.g. ``lat`` in a file of the
    #: retired NIBRS set, ``hndrdth_lat`` in one of the live set).
    source_names: dict[str, str] = field(default_factory=dict)


def _read_bytes(path: Path) -> bytes:
    """Whole file content, decompressed when gzip; corrupt archives raise one clear error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise unreadable(path, exc) from None
    if not raw:
        raise InputError(f"{path}: the file is empty")
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: corrupt or truncated gzip archive ({exc})") from None
        if not raw:
            raise InputError(f"{path}: the gzip archive holds an empty file")
    return raw


# --- CSV ------------------------------------------------------------------------------------------


def _first_bad_utf8_line(path: Path) -> str:
    """Locate the first line that is not UTF-8, for the error message (slow path, errors only)."""
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"line {number} is not valid UTF-8 (byte 0x{line[exc.start]:02x})"
    return "the file is not valid UTF-8"


@contextlib.contextmanager
def _undecodable_invalid_rows(handler: Callable[[pacsv.InvalidRow], str]) -> Iterator[list]:
    """Collect the rows pyarrow could not hand to ``handler`` because they are not UTF-8.

    pyarrow decodes a malformed row before calling the invalid-row handler; when the row is not
    UTF-8 that fails inside pyarrow, which prints "Exception ignored" and then stops the read.
    Such failures are gathered here instead, so the reader can name the offending line.
    """
    caught: list[BaseException] = []
    previous = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if unraisable.object is handler and isinstance(unraisable.exc_value, UnicodeDecodeError):
            caught.append(unraisable.exc_value)
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


class _LineCounter(io.RawIOBase):
    """A file's bytes (through gzip when compressed) handed to pyarrow, counting the lines they
    hold on the way: LF, CRLF and a lone CR each end a line, as they end a CSV record."""

    def __init__(self, path: Path) -> None:
        self._handle = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115
        self.breaks = 0
        self._last = b""  # the last byte passed on

    def readable(self) -> bool:  # noqa: D102 (io's)
        return True

    def read(self, size: int = -1) -> bytes:  # noqa: D102 (io's; what pyarrow calls)
        data = self._handle.read(size)
        if data:
            self.breaks += data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
            if self._last == b"\r" and data[:1] == b"\n":
                self.breaks -= 1  # a CRLF split between two reads
            self._last = data[-1:]
        return data

    def readinto(self, buffer) -> int:  # noqa: D102 (io's)
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:  # noqa: D102 (io's)
        self._handle.close()
        super().close()

    @property
    def lines(self) -> int:
        """Lines passed on so far (a last line without a line break counts)."""
        return self.breaks + (self._last not in (b"", b"\n", b"\r"))


def _record_lines(path: Path, counted_lines: int, records: int) -> np.ndarray:
    """The line of the file each CSV record starts on (index 0: the header), blank lines
    skipped as pyarrow skips them.

    When the file has as many lines as records (no quoted line break, no blank line: every
    export LAPD writes) record ``k`` is on line ``k``. Otherwise the file is read once more with
    Python's ``csv`` module, which splits records as pyarrow does: a line ends at LF or CRLF, or
    at a lone CR that ends a record (a CR inside a quoted value is part of the value).
    """
    numbers = np.arange(1, records + 1, dtype=np.int64)
    if counted_lines == records:
        return numbers
    ends: list[bool] = []  # per line the reader took for the current record: ends with LF

    def physical(handle) -> Iterator[str]:
        for line in handle:  # newline="": split at LF, CRLF and lone CR, endings kept
            ends.append(line.endswith("\n"))
            yield line

    starts = []
    line = 1
    limit = csv.field_size_limit()
    csv.field_size_limit(1 << 30)  # a long quoted value is data, not a broken file
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
            for record in csv.reader(physical(handle)):
                if record:
                    starts.append(line)
                # inside the record only LF breaks a line; its last line ends with the record
                line += sum(ends[:-1]) + 1
                ends.clear()
    except (csv.Error, OSError, EOFError, zlib.error):
        starts = []
    finally:
        csv.field_size_limit(limit)
    if len(starts) != records:
        warnings.warn(
            f"{path}: the rows could not be matched to the lines of the file; the line numbers "
            "given for its rows count records (the header is 1), not lines",
            UserWarning,
            stacklevel=4,
        )
        return numbers
    return np.asarray(starts, dtype=np.int64)


#: Canonical fields whose values are (nearly) all distinct: read as plain text, not dictionaries.
_IDENTIFIER_FIELDS = frozenset({"incident_id", "case_id", "offense_id"})


def read_csv_file(path: Path, *, mapping: Mapping[str, str] | None = None) -> RawRead:
    """Read one CSV export (plain or gzip) as text columns keyed by canonical fields.

    Parameters
    ----------
    path
        The CSV file.
    mapping
        Optional user mapping ``{source column: canonical field}``.

    Returns
    -------
    RawRead
        Text columns, row count, schema name and source line numbers.
    """
    header = dedupe_names(csv_header(path))
    schema_name, colmap = detect_schema(header, path=path, mapping=mapping)
    invalid: list[tuple[int | None, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    convert_opts = _csv_convert_options(colmap)
    table, counter = _read_csv_table(path, header, convert_opts, on_invalid, use_threads=True)
    if any(num is None for num, _ in invalid):
        # the threaded reader does not know line numbers: re-read the (broken) file serially
        invalid.clear()
        table, counter = _read_csv_table(path, header, convert_opts, on_invalid, use_threads=False)
    n = table.num_rows
    if n == 0 and not invalid:
        raise InputError(f"{path}: the file has a header but no data rows")
    lines, bad_rows = _csv_lines(path, header, n, invalid, counted_lines=counter.lines)
    fields = {colmap[c]: table.column(c) for c in colmap}
    source_names = {target: c for c, target in colmap.items()}
    return RawRead(fields, n, schema_name, path, lines, bad_rows, source_names)


def _csv_convert_options(colmap: Mapping[str, str]) -> pacsv.ConvertOptions:
    """Every mapped column as text: a dictionary column, so that each distinct value is decoded
    once, except the identifiers (unique: plain text)."""
    return pacsv.ConvertOptions(
        column_types={
            c: pa.string()
            if colmap[c] in _IDENTIFIER_FIELDS
            else pa.dictionary(pa.int32(), pa.string())
            for c in colmap
        },
        include_columns=list(colmap),
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )


def _read_csv_table(
    path: Path,
    header: list[str],
    convert_opts: pacsv.ConvertOptions,
    on_invalid: Callable[[pacsv.InvalidRow], str],
    *,
    use_threads: bool,
) -> tuple[pa.Table, _LineCounter]:
    """The CSV's table, and the counter of the lines read; a file pyarrow cannot read (not
    UTF-8, not CSV, corrupt or truncated) raises :class:`InputError`."""
    read_opts = pacsv.ReadOptions(
        column_names=header, skip_rows=1, block_size=1 << 24, use_threads=use_threads
    )
    parse_opts = pacsv.ParseOptions(invalid_row_handler=on_invalid)
    undecodable: list[BaseException] = []
    try:
        counter = _LineCounter(path)
        source = pa.PythonFile(counter, mode="r")
        with _undecodable_invalid_rows(on_invalid) as undecodable, source:
            table = pacsv.read_csv(
                source,
                read_options=read_opts,
                parse_options=parse_opts,
                convert_options=convert_opts,
            )
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if undecodable or "UTF8" in message or "utf8" in message.lower():
            raise InputError(f"{path}: {_first_bad_utf8_line(path)}") from None
        raise InputError(f"{path}: cannot parse CSV ({message.splitlines()[0]})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: corrupt or truncated file ({exc})") from None
    return table, counter


def _csv_lines(
    path: Path,
    header: list[str],
    n: int,
    invalid: list[tuple[int | None, str]],
    *,
    counted_lines: int,
) -> tuple[np.ndarray, list[BadRow]]:
    """The line of each of the ``n`` rows read, and the rows skipped as :class:`BadRow`.

    A file where every row was skipped raises :class:`InputError` (a wrong delimiter).
    """
    # InvalidRow.number is the 1-based record in the file (header included, blank lines not)
    records = n + len(invalid) + 1
    record_lines = _record_lines(path, counted_lines, records)
    data_records = np.arange(2, records + 1, dtype=np.int64)
    bad_rows: list[BadRow] = []
    if invalid:
        skipped = np.asarray(sorted(num for num, _ in invalid if num is not None))
        data_records = np.setdiff1d(data_records, skipped)
        for num, text in invalid:
            bad_rows.append(
                BadRow(
                    file=str(path),
                    line=None if num is None else int(record_lines[num - 1]),
                    column="*",
                    value=text[:80],
                    reason="wrong number of fields",
                )
            )
        if n == 0:
            raise InputError(
                f"{path}: no row has the header's {len(header)} fields "
                f"(first bad line: {invalid[0][1][:60]!r}); wrong delimiter or a broken file"
            )
    return record_lines[data_records[:n] - 1], bad_rows


# --- JSON -----------------------------------------------------------------------------------------


_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")


@dataclass
class _JsonRecords:
    """The records of one JSON file and what is needed to say where each one is."""

    path: Path
    records: list
    text: str
    layout: str  # "array", "lines" (newline-delimited) or "object" (one record)
    record_lines: list[int] | None = None  # for "lines": the file line of each record

    def where(self, index: int) -> str:
        """Where record ``index`` (0-based) is, for messages: its line, and record number."""
        if self.layout == "lines" and self.record_lines is not None:
            return f"line {self.record_lines[index]}"
        if self.layout == "object":
            return "record 1 (line 1)"
        return f"record {index + 1} (line {_array_element_line(self.text, index)})"


def _array_element_line(text: str, index: int) -> int:
    """The 1-based line where element ``index`` of a top-level JSON array starts (errors only)."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    for _ in range(index):
        pos = _JSON_WHITESPACE.match(text, pos).end()
        _, pos = decoder.raw_decode(text, pos)
        pos = _JSON_WHITESPACE.match(text, pos).end() + 1  # past the comma
    pos = _JSON_WHITESPACE.match(text, pos).end()
    return text.count("\n", 0, pos) + 1


def _json_kind(value: object) -> str:
    """A JSON type named for messages (``an object``, ``a boolean`` ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _short_json(value: object, limit: int = 40) -> str:
    """A value as compact JSON text, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_json_lines(path: Path, text: str) -> _JsonRecords:
    """Parse newline-delimited JSON, one value per non-blank line, naming the real line on error."""
    records: list = []
    record_lines: list[int] = []
    # JSON strings cannot hold a raw CR or LF, so splitting on them never cuts a record
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}: invalid JSON at line {number} column {exc.colno} ({exc.msg})"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise InputError(
                f"{path}: invalid JSON at line {number} ({_json_failure(exc)})"
            ) from None
        record_lines.append(number)
    return _JsonRecords(path, records, text, "lines", record_lines)


def _json_failure(exc: BaseException) -> str:
    """Why Python's JSON parser gave up, for values it refuses beyond syntax errors."""
    if isinstance(exc, RecursionError):
        return "values nested too deeply"
    return str(exc).split("\n")[0][:120]


def _records_from_json(path: Path) -> _JsonRecords:
    """Parse a JSON array of records, newline-delimited records or one record object."""
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line} is not valid UTF-8") from None
    stripped = text.lstrip()
    if not stripped:
        raise InputError(f"{path}: the file is empty")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data" or stripped[0] == "[":
            raise InputError(
                f"{path}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
            ) from None
        parsed = _parse_json_lines(path, text)  # one value per line: newline-delimited JSON
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path}: invalid JSON ({_json_failure(exc)})") from None
    else:
        if isinstance(document, list):
            parsed = _JsonRecords(path, document, text, "array")
        else:
            parsed = _JsonRecords(path, [document], text, "object")
    records = parsed.records
    if isinstance(records, list) and records:
        refusal = geojson_refusal(path, records[0] if parsed.layout != "object" else document)
        if refusal is not None:
            raise refusal
    if not records:
        raise InputError(f"{path}: the JSON array holds no records")
    if parsed.layout == "object" and not isinstance(document, dict):
        raise InputError(f"{path}: expected a JSON array of objects, found {_json_kind(document)}")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(
                f"{path}: {parsed.where(index)}: expected a JSON array of objects (one per "
                f"incident), found {_json_kind(record)} {_short_json(record)}"
            )
    return parsed


def _json_column_text(parsed: _JsonRecords, key: str) -> pa.Array:
    """One key of every record as text, refusing values no LAPD export holds.

    Strings are kept; numbers become their decimal text (the 2024 files store coordinates as
    numbers), ``NaN`` (which Python writes for a missing float) becomes null. Objects, arrays and
    booleans are refused, and so is a key holding numbers in some
    records and strings in others: the file was not written by one exporter, so its values cannot
    be trusted to mean the same thing.
    """
    values = [record.get(key) for record in parsed.records]
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if kinds <= {str}:
        return pa.array(values, pa.string())
    if kinds <= {int, float}:
        try:
            return pc.cast(pa.array(values, from_pandas=True), pa.string())
        except (OverflowError, pa.ArrowException):  # integers beyond int64
            text = [None if v is None or v != v else repr(v) for v in values]
            return pa.array(text, pa.string())
    path = parsed.path
    odd = kinds - {str, int, float}
    if odd:
        index = next(i for i, v in enumerate(values) if type(v) in odd)
        raise InputError(
            f"{path}: {parsed.where(index)}: key {key}: {_json_kind(values[index])} "
            f"{_short_json(values[index])} where a string or a number is expected"
        )
    first = next(i for i, v in enumerate(values) if v is not None)
    first_kind = _json_kind(values[first])
    index = next(i for i, v in enumerate(values) if v is not None and _json_kind(v) != first_kind)
    raise InputError(
        f"{path}: {parsed.where(index)}: key {key}: {_json_kind(values[index])} "
        f"{_short_json(values[index])} where {parsed.where(first)} has {first_kind}; the key "
        "mixes JSON types"
    )


def _arrow_json_lines(path: Path) -> pa.Table | None:
    """A newline-delimited JSON file of flat records of strings (the open-data API's form) as
    text columns, read by Arrow's JSON reader (a million records without a Python object each),
    or ``None`` for any other file: an array, one object, a number, boolean, object or array
    value, text that is not UTF-8 or not JSON. The Python reader then reads it, with its checks
    and messages, so both give the same columns for every file."""

    raw = _read_bytes(path)
    body = raw[3:] if raw[:3] == b"\xef\xbb\xbf" else raw
    head = body.lstrip()[:1]
    first_line = body.lstrip().split(b"\n", 1)
    if head != b"{" or len(first_line) < 2 or not first_line[1].strip():
        return None  # an array, one object or one line: the Python reader
    try:
        first = json.loads(first_line[0])
        if geojson_refusal(path, first) is not None:
            return None
        table = paj.read_json(
            pa.BufferReader(body), read_options=paj.ReadOptions(block_size=1 << 25)
        )
    except (ValueError, pa.ArrowException):
        return None
    try:
        table.validate(full=True)  # text that is not UTF-8: the Python reader names its line
    except (ValueError, pa.ArrowException):
        return None
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_null(column.type):
            column = pa.nulls(len(column), pa.string())
        elif not pa.types.is_string(column.type):
            return None
        columns[name] = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return pa.table(columns)


def read_json_file(path: Path, *, mapping: Mapping[str, str] | None = None) -> RawRead:
    """Read one JSON export (array of objects or newline-delimited, plain or gzip).

    Keys whose value is null may be omitted from an object (as the open-data API does); the union
    of keys over all records is the header.

    Parameters
    ----------
    path
        The JSON file.
    mapping
        Optional user mapping ``{source key: canonical field}``.

    Returns
    -------
    RawRead
        Text columns keyed by canonical fields.

    Raises
    ------
    InputError
        The file is not JSON, is GeoJSON, holds no records, or a mapped key holds an object, an
        array, a boolean or a mix of numbers and strings (the message names the key, the record
        and its line).
    """
    fast = _arrow_json_lines(path)
    if fast is not None:
        schema_name, colmap = detect_schema(fast.column_names, path=path, mapping=mapping)
        fields = {target: fast.column(col) for col, target in colmap.items()}
        lines = np.arange(1, fast.num_rows + 1, dtype=np.int64)
        source_names = {target: col for col, target in colmap.items()}
        return RawRead(fields, fast.num_rows, schema_name, path, lines, source_names=source_names)
    parsed = _records_from_json(path)
    records = parsed.records
    keys: dict[str, None] = {}
    for rec in records[:1000]:
        keys.update(dict.fromkeys(rec))
    if len(records) > 1000:
        for rec in records[1000:]:
            if rec.keys() - keys.keys():
                keys.update(dict.fromkeys(rec))
    schema_name, colmap = detect_schema(list(keys), path=path, mapping=mapping)
    fields = {target: _json_column_text(parsed, col) for col, target in colmap.items()}
    n = len(records)
    lines = np.arange(1, n + 1, dtype=np.int64)
    source_names = {target: col for col, target in colmap.items()}
    return RawRead(fields, n, schema_name, path, lines, source_names=source_names)


# --- either format --------------------------------------------------------------------------------


def read_raw(path: Path, *, mapping: Mapping[str, str] | None = None) -> RawRead:
    """Read one file with the reader its extension (or content) calls for.

    Parameters
    ----------
    path
        The file: CSV or JSON, plain or gzip.
    mapping
        Optional user mapping ``{source column: canonical field}``.

    Returns
    -------
    RawRead
        Text columns keyed by canonical fields.

    Raises
    ------
    InputError
        The path is no regular file, is empty, or holds another format (Parquet, ZIP, GeoJSON).
    """
    if sniff_format(path) == "json":
        return read_json_file(path, mapping=mapping)
    return read_csv_file(path, mapping=mapping)
