"""Read LAPD crime exports, in every form they exist in the wild, into canonical incidents.

The LAPD "Crime Data from 2020 to Present" set circulates in several shapes: the official
28-column CSV (with two date formats mixed in one column after a spreadsheet re-save), spreadsheet
modified copies (extra columns, leading zeros stripped, ``M/D/YYYY H:MM``), the open-data API's
snake_case CSV and JSON (ISO timestamps, every value a string, null keys omitted) and reduced
derived files such as the per-area 2024 JSON. Each file's schema is detected from its header; a
user mapping handles anything else.

Reading is vectorised with pyarrow: every column is read as text, then converted with
``pyarrow.compute`` (explicit date formats tried in order, no per-row Python). Values that cannot
be parsed do not crash the load: the row is listed with its file, line and column in the
:class:`~geo_crime.cleaning.CleaningReport` and left out (or, with ``on_bad_rows="raise"``, the
first one raises). File-level problems (missing, empty, corrupt gzip, unknown schema, a column
that is text throughout, a FIFO or device, a Parquet, ZIP or GeoJSON file, a JSON key holding an
object, an array, a boolean or both numbers and strings) raise one
:class:`~geo_crime.errors.InputError` naming the file and, where known, the line and column.

:func:`load_incidents` is the entry point: read, clean, score, with a Parquet cache keyed by the
content of the inputs.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import gzip
import json
import os
import re
import stat
import sys
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from geo_crime import schema
from geo_crime.cleaning import (
    AGE_GROUPS,
    LA_COUNTY_BBOX,
    MIN_OCCURRED_DATE,
    BadRow,
    CleaningReport,
    FileSummary,
    clean_incidents,
    parse_min_occurred_date,
)
from geo_crime.errors import ConfigError, GeoCrimeError, InputError, SchemaError
from geo_crime.severity import crime_code_lookup, score_incidents

#: Datetime formats tried in order; the first two are the official export and its spreadsheet
#: re-save, then the modified export, then ISO forms from the API and the 2024 files.
DATETIME_FORMATS: tuple[str, ...] = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
)

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
#: Whole numbers of up to 18 digits always fit an int64; longer ones are out of range.
_INT_PATTERN = r"^-?\d{1,18}$"
_LONG_INT_PATTERN = r"^-?\d{19,}$"
_FLOAT_PATTERN = r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_DAY_PATTERN = r"^(?:\d{1,2}/(?P<slash>\d{1,2})/|\d{4}-\d{1,2}-(?P<iso>\d{1,2}))"
#: A required column whose values fail to parse in more than this share of rows is a file error.
_COLUMN_FAILURE_SHARE = 0.5

#: First character of every synthetic incident id: a letter, so one never equals a ``DR_NO``
#: (which is all digits).
SYNTHETIC_ID_PREFIX = "S"

#: How many hex digits of the xxh3-64 hash a synthetic incident id keeps (60 bits).
SYNTHETIC_ID_HEX_DIGITS = 15

#: Version of the cached frame layout; part of the cache key, bumped whenever the columns or
#: their meaning change so that older caches are not reused.
CACHE_FORMAT_VERSION = 4

#: Whole days a ``datetime64[ns]`` column holds at any time of day; dates outside are bad values.
_FIRST_STAMP = np.datetime64("1677-09-22T00:00:00", "s")
_LAST_STAMP = np.datetime64("2262-04-10T00:00:00", "s")


def synthetic_incident_ids(
    source_file: str | os.PathLike, source_lines: Iterable[int]
) -> list[str]:
    """Stable ids for records that carry no record number (``DR_NO``).

    The id of a record is ``"S"`` followed by the first 15 hex digits of the xxh3-64 hash (seed 0)
    of ``"{file name}:{source_line}"`` in UTF-8. Only the file's name counts, not its folder, so
    the same file gives the same ids on every machine and run. The id follows the record's
    position, not its content: a corrected value keeps the id, a record moved within the file (or
    a file renamed) gets a new one, and two different files with the same name share ids. The
    leading letter keeps synthetic ids apart from real record numbers, which are digits only.

    Parameters
    ----------
    source_file
        The file the records come from (a path or a name; only the name is used).
    source_lines
        The records' ``source_line`` values: the 1-based record number in a JSON file, the line
        number in a CSV file.

    Returns
    -------
    list of str
        One 16-character id per record, in the order given.

    Examples
    --------
    >>> synthetic_incident_ids("/any/folder/Crime_Data_CENTRAL.json.gz", [1, 2])
    ['Sbda0cc2a62c6573', 'S63eba91450d22fe']
    >>> synthetic_incident_ids("Crime_Data_CENTRAL.json.gz", [1])
    ['Sbda0cc2a62c6573']
    """
    import xxhash

    name = Path(source_file).name
    hexdigest = xxhash.xxh3_64_hexdigest
    return [
        SYNTHETIC_ID_PREFIX + hexdigest(f"{name}:{int(line)}".encode())[:SYNTHETIC_ID_HEX_DIGITS]
        for line in source_lines
    ]


@dataclass
class RawRead:
    """What a reader hands to the converter: text columns keyed by canonical field names."""

    fields: dict[str, pa.Array]
    n_rows: int
    schema_name: str
    path: Path
    line_numbers: np.ndarray
    bad_rows: list[BadRow] = field(default_factory=list)


# --- input discovery ------------------------------------------------------------------------------


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files, directories and glob patterns into a sorted list of files.

    Parameters
    ----------
    inputs
        One path or many. A directory contributes every ``.csv``, ``.json`` and ``.ndjson`` file
        in it (compressed or not, recursively); a pattern with ``*`` or ``?`` is globbed.

    Returns
    -------
    list of pathlib.Path
        Existing files, without repeats, in input order.

    Raises
    ------
    InputError
        A path does not exist, or a directory or pattern matches no file.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    files: list[Path] = []
    for item in inputs:
        text = str(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not matches:
                raise InputError(f"{text}: the pattern matches no file")
            regular = [m for m in matches if m.is_file()]
            if not regular:
                for match in matches:
                    if not match.is_dir():
                        require_regular_file(match)
                raise InputError(f"{text}: the pattern matches folders only, no file")
            files.extend(regular)
            continue
        path = Path(text)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and _data_suffix(p) in {".csv", ".json", ".ndjson"}
            )
            if not found:
                raise InputError(f"{path}: the directory holds no .csv or .json crime file")
            files.extend(found)
        else:
            require_regular_file(path)
            files.append(path)
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


#: Names of the kinds of file that are not regular files, for error messages.
_SPECIAL_FILE_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def require_regular_file(path: Path) -> None:
    """Check that ``path`` is an existing regular file, without opening it.

    Named pipes, devices and sockets are refused before anything reads them, so a FIFO never
    blocks a run and ``/dev/zero`` is never read for ever.

    Parameters
    ----------
    path
        The file to check (symbolic links are followed).

    Raises
    ------
    InputError
        The path does not exist, is a broken link, a folder, or not a regular file.
    """
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        if path.is_symlink():
            raise InputError(f"{path}: broken symbolic link (its target does not exist)") from None
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory, not a file")
    kind = next((name for test, name in _SPECIAL_FILE_KINDS if test(mode)), "a special file")
    raise InputError(
        f"{path}: not a regular file but {kind}; save the data to a file and pass that instead"
    )


def _unreadable(path: Path, exc: OSError) -> InputError:
    """The error for an input the operating system refuses to read (permissions, I/O errors)."""
    return InputError(f"{path}: cannot read ({exc.strerror or exc})")


def _data_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".gzip"}:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _is_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == _GZIP_MAGIC
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _read_bytes(path: Path) -> bytes:
    """Whole file content, decompressed when gzip; corrupt archives raise one clear error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if not raw:
        raise InputError(f"{path}: the file is empty")
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: corrupt or truncated gzip archive ({exc})") from None
        if not raw:
            raise InputError(f"{path}: the gzip archive holds an empty file")
    return raw


# --- schema detection -----------------------------------------------------------------------------


def _dedupe_names(names: Sequence[str]) -> list[str]:
    """Make column names unique the way pandas does (second ``DATE OCC`` -> ``DATE OCC.1``)."""
    counts: dict[str, int] = {}
    out = []
    for name in names:
        if name in counts:
            counts[name] += 1
            out.append(f"{name}.{counts[name]}")
        else:
            counts[name] = 0
            out.append(name)
    return out


def detect_schema(
    columns: Sequence[str],
    *,
    path: Path | str = "<input>",
    mapping: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """Name the schema a header belongs to and return its column mapping.

    Parameters
    ----------
    columns
        The header, as read (duplicates already suffixed ``.1``).
    path
        Used in error messages only.
    mapping
        A user mapping ``{source column: canonical field}``; when given it wins.

    Returns
    -------
    (str, dict)
        The schema name (``official``, ``modified``, ``api``, ``reduced_2024`` or ``mapped``) and
        the mapping from source column to canonical field for the columns present.

    Raises
    ------
    SchemaError
        The header matches no known schema; the message names the expected and found columns.
    """
    cols = list(columns)
    present = set(cols)
    if mapping:
        missing = [c for c in mapping if c not in present]
        if missing:
            raise SchemaError(
                f"{path}: the column mapping names columns the file lacks: {missing}; "
                f"found {cols[:30]}"
            )
        fields = set(mapping.values())
        needed = [f for f in schema.REQUIRED_FIELDS if f not in fields]
        if "crm_cd" in fields and "crm_cd_desc" in needed:
            needed.remove("crm_cd_desc")
        if needed:
            raise SchemaError(
                f"{path}: the column mapping provides no column for {needed} "
                "(map a source column to each)"
            )
        return "mapped", dict(mapping)
    if len(cols) == 1 and any(sep in cols[0] for sep in (";", "\t", "|")):
        raise SchemaError(
            f"{path}: the header is one column {cols[0][:60]!r}: the file is not comma separated "
            "(wrong delimiter?)"
        )
    official = set(schema.OFFICIAL_COLUMNS)
    api = set(schema.API_COLUMNS)
    reduced = set(schema.REDUCED_2024_COLUMNS)
    if official <= present:
        extra = present - official
        kind = "modified" if extra else "official"
        return kind, {c: schema.OFFICIAL_COLUMNS[c] for c in cols if c in official}
    if reduced <= present:
        return "reduced_2024", {c: schema.REDUCED_2024_COLUMNS[c] for c in cols if c in reduced}
    for name, expected, table in (
        ("official", official, schema.OFFICIAL_COLUMNS),
        ("api", api, schema.API_COLUMNS),
    ):
        required = {c for c, f in table.items() if f in schema.FULL_SCHEMA_REQUIRED}
        if len(present & expected) >= len(expected) // 2:
            missing_req = sorted(required - present)
            if not missing_req:
                return name, {c: table[c] for c in cols if c in expected}
            raise SchemaError(
                f"{path}: looks like the {name} LAPD schema but lacks column(s) {missing_req}"
            )
    raise SchemaError(
        f"{path}: unknown schema: expected the official LAPD columns (DR_NO, DATE OCC, TIME OCC, "
        "AREA, Rpt Dist No, Crm Cd, LAT, LON, ...), the API's (dr_no, date_occ, ...) or the "
        f"reduced 2024 keys (Date, Report_District, ...); found {cols[:12]}"
        + (" ..." if len(cols) > 12 else "")
        + " (pass a column mapping for other exports)"
    )


# --- readers --------------------------------------------------------------------------------------


def _csv_header(path: Path) -> list[str]:
    compressed = _is_gzip(path)
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as fh:
            first = fh.readline()
    except (OSError, EOFError, zlib.error) as exc:
        if not compressed or (isinstance(exc, OSError) and exc.errno is not None):
            raise _unreadable(path, exc) from None
        raise InputError(f"{path}: corrupt or truncated gzip archive ({exc})") from None
    if not first.strip():
        raise InputError(f"{path}: the file is empty (no header line)")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: line 1 is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    text = re.split(r"\r\n?|\n", text, maxsplit=1)[0]  # a lone CR ends a line, as for pyarrow
    try:
        return next(csv.reader([text]))
    except csv.Error as exc:
        raise InputError(f"{path}: line 1: cannot parse the header ({exc})") from None


def _first_bad_utf8_line(path: Path) -> str:
    """Locate the first line that is not UTF-8, for the error message (slow path, errors only)."""
    opener = gzip.open if _is_gzip(path) else open
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
    header = _dedupe_names(_csv_header(path))
    schema_name, colmap = detect_schema(header, path=path, mapping=mapping)
    invalid: list[tuple[int | None, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    convert_opts = pacsv.ConvertOptions(
        # dictionary columns: each distinct value is decoded once (DR_NO is unique: plain text)
        column_types={
            c: pa.string() if colmap[c] == "incident_id" else pa.dictionary(pa.int32(), pa.string())
            for c in colmap
        },
        include_columns=list(colmap),
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )

    def read(use_threads: bool) -> pa.Table:
        read_opts = pacsv.ReadOptions(
            column_names=header, skip_rows=1, block_size=1 << 24, use_threads=use_threads
        )
        parse_opts = pacsv.ParseOptions(invalid_row_handler=on_invalid)
        undecodable: list[BaseException] = []
        try:
            source = pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None)
            with _undecodable_invalid_rows(on_invalid) as undecodable:
                return pacsv.read_csv(
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

    table = read(use_threads=True)
    if any(num is None for num, _ in invalid):
        # the threaded reader does not know line numbers: re-read the (broken) file serially
        invalid.clear()
        table = read(use_threads=False)
    n = table.num_rows
    if n == 0 and not invalid:
        raise InputError(f"{path}: the file has a header but no data rows")
    lines = np.arange(n, dtype=np.int64) + 2
    bad_rows: list[BadRow] = []
    if invalid:
        # InvalidRow.number is the 1-based line in the file (header included)
        skipped = np.asarray(sorted(num for num, _ in invalid if num is not None))
        if len(skipped):
            every = np.arange(2, n + len(skipped) + 2, dtype=np.int64)
            lines = np.setdiff1d(every, skipped)[:n]
        for num, text in invalid:
            bad_rows.append(
                BadRow(
                    file=str(path),
                    line=num,
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
    fields = {colmap[c]: table.column(c) for c in colmap}
    return RawRead(fields, n, schema_name, path, lines, bad_rows)


#: GeoJSON object types (RFC 7946), to recognise a boundary layer given as a crime export.
_GEOJSON_TYPES = frozenset(
    {
        "FeatureCollection",
        "Feature",
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)
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


def _geojson_refusal(path: Path, value: object) -> InputError | None:
    """The error for a GeoJSON document (or GeoJSON feature sequence) given as a crime export."""
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    features = value.get("features")
    if kind == "FeatureCollection" or (kind is None and isinstance(features, list)):
        count = len(features) if isinstance(features, list) else 0
        what = f"a FeatureCollection of {count:,} feature{'s' if count != 1 else ''}"
    elif kind == "Feature" and "geometry" in value:
        what = "GeoJSON features"
    elif kind in _GEOJSON_TYPES and ("coordinates" in value or "geometries" in value):
        what = f"a {kind} geometry"
    else:
        return None
    return InputError(
        f"{path}: this is a GeoJSON file ({what}), not an incident export; ingest reads LAPD "
        "crime records (CSV or JSON exports)"
    )


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
        refusal = _geojson_refusal(path, records[0] if parsed.layout != "object" else document)
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
    return RawRead(fields, n, schema_name, path, np.arange(1, n + 1, dtype=np.int64))


def _head_bytes(path: Path, size: int = 8) -> bytes:
    """The first bytes of the content (decompressed when gzip; raw if the archive is broken)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
            if head[:2] != _GZIP_MAGIC:
                return head
    except OSError as exc:
        raise _unreadable(path, exc) from None
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error):
        return head  # the reader reports the broken archive


def _parquet_refusal(path: Path) -> InputError:
    """The error for a Parquet file given as a crime export (pointing to what reads it)."""
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except (pa.ArrowException, OSError):
        names = set()
    if set(schema.CANONICAL_COLUMNS) <= names:
        return InputError(
            f"{path}: this is an incidents Parquet file already written by 'geo-crime ingest', "
            "not an incident export: pass it to the commands that take incidents ('geo-crime "
            "cube', 'geo-crime coverage') or read it with geo_crime.ingest.read_incidents_parquet"
        )
    return InputError(
        f"{path}: this is a Parquet file, not an incident export; ingest reads LAPD crime "
        "records (CSV or JSON exports)"
    )


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
    require_regular_file(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    head = _head_bytes(path)
    if head[:4] == _PARQUET_MAGIC:
        raise _parquet_refusal(path)
    if head[:4] == _ZIP_MAGIC:
        raise InputError(
            f"{path}: this is a ZIP archive (a zipped export or an .xlsx workbook), not an "
            "incident export: unzip it, or save the sheet as CSV"
        )
    suffix = _data_suffix(path)
    if suffix in {".json", ".ndjson", ".geojson"}:
        return read_json_file(path, mapping=mapping)
    if suffix in {".csv", ".txt", ".tsv", ""}:
        return read_csv_file(path, mapping=mapping)
    # unknown extension: sniff the first non-blank byte
    if _head_bytes(path, 64).lstrip()[:1] in (b"[", b"{"):
        return read_json_file(path, mapping=mapping)
    return read_csv_file(path, mapping=mapping)


# --- conversion to canonical types ----------------------------------------------------------------


@dataclass
class _Distinct:
    """A text column split into its distinct values and, per row, the index of its value.

    LAPD columns repeat heavily (about 1,800 distinct ``DATE OCC`` strings in a million rows), so
    every conversion runs on the distinct values only and is spread back with one ``take``.
    """

    values: pa.Array
    codes: np.ndarray  # int64, -1 = null

    @classmethod
    def of(cls, arr: pa.Array | pa.ChunkedArray) -> _Distinct:
        if isinstance(arr, pa.ChunkedArray):
            if pa.types.is_dictionary(arr.type):
                arr = arr.unify_dictionaries()
                if arr.num_chunks == 0:
                    return cls(pa.array([], pa.string()), np.zeros(0, dtype=np.int64))
                dictionary = arr.chunk(0).dictionary
                codes = np.concatenate(
                    [pc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False) for c in arr.chunks]
                ).astype(np.int64)
                return cls(dictionary.cast(pa.string()), codes)
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            encoded = arr
        else:
            encoded = pc.dictionary_encode(arr.cast(pa.string()))
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        return cls(encoded.dictionary.cast(pa.string()), codes)

    def rows(self, mask_of_values: np.ndarray) -> np.ndarray:
        """Spread a per-value boolean mask to rows (null rows are False)."""
        padded = np.append(mask_of_values, False)
        return padded[self.codes]

    def spread(self, per_value: np.ndarray, fill: object) -> np.ndarray:
        """Spread a per-value numpy array to rows, ``fill`` for null rows."""
        padded = np.append(per_value, np.array([fill], dtype=per_value.dtype))
        return padded[self.codes]

    def first_row(self, value_index: np.ndarray) -> np.ndarray:
        """For each value index, the first row holding it."""
        order = np.argsort(self.codes, kind="stable")
        starts = np.searchsorted(self.codes[order], value_index)
        return order[starts]


class _Converter:
    """Turns the text columns of one :class:`RawRead` into typed pandas columns.

    Bad values of required fields mark their row bad (listed with file and line, then left out);
    bad values of optional fields become null and are counted as fixed.
    """

    def __init__(self, raw: RawRead, report: CleaningReport, *, on_bad_rows: str) -> None:
        self.raw = raw
        self.report = report
        self.on_bad_rows = on_bad_rows
        self.bad = np.zeros(raw.n_rows, dtype=bool)
        self._cache: dict[str, _Distinct] = {}

    def has(self, name: str) -> bool:
        return name in self.raw.fields

    def distinct(self, name: str) -> _Distinct:
        if name not in self._cache:
            self._cache[name] = _Distinct.of(self.raw.fields[name])
        return self._cache[name]

    def flag(
        self, rows: np.ndarray, column: str, values: list[str], reason: str, *, required: bool
    ) -> None:
        """Record failed values: required -> row listed and left out; optional -> nulled.

        ``rows`` is a boolean mask over rows, ``values`` the text of each row (lazily indexed).
        """
        count = int(rows.sum())
        if not count:
            return
        source_col = _source_column(self.raw.schema_name, column)
        if not required:
            key = f"{source_col}: {reason}"
            self.report.values_nulled[key] = self.report.values_nulled.get(key, 0) + count
            return
        idx = np.flatnonzero(rows)
        first = int(idx[0])
        where = f"line {self.raw.line_numbers[first]}"
        share = count / max(self.raw.n_rows, 1)
        if share > _COLUMN_FAILURE_SHARE and self.raw.n_rows >= 4:
            raise SchemaError(
                f"{self.raw.path}: column {source_col}: {share:.0%} of values {reason} "
                f"(e.g. {values[first]!r} on {where}); wrong column order or a different export?"
            )
        if self.on_bad_rows == "raise":
            raise InputError(
                f"{self.raw.path}: {where}: column {source_col}: {values[first]!r} {reason}"
            )
        self.bad |= rows
        for i in idx[:200]:
            self.report.add_bad_row(
                BadRow(
                    file=str(self.raw.path),
                    line=int(self.raw.line_numbers[i]),
                    column=source_col,
                    value=str(values[int(i)])[:80],
                    reason=reason,
                )
            )
        by_column = self.report.rows_unparseable_by_column
        by_column[source_col] = by_column.get(source_col, 0) + count

    def _row_text(self, name: str) -> _RowText:
        return _RowText(self.distinct(name))

    def _check_missing(self, name: str) -> None:
        d = self.distinct(name)
        empty = np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(d.values), ""), True))
        missing = (d.codes < 0) | d.rows(empty)
        self.flag(missing, name, self._row_text(name), "is missing", required=True)

    def number_values(
        self, name: str, *, integer: bool, required: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-row numbers (float64 or int64) and a validity mask."""
        d = self.distinct(name)
        text = pc.utf8_trim_whitespace(d.values)
        pattern = _INT_PATTERN if integer else _FLOAT_PATTERN
        ok = np.asarray(pc.fill_null(pc.match_substring_regex(text, pattern), False))
        empty = np.asarray(pc.fill_null(pc.equal(text, ""), False))
        bad_values = ~ok & ~empty
        if integer:
            too_long = np.asarray(
                pc.fill_null(pc.match_substring_regex(text, _LONG_INT_PATTERN), False)
            )
            if too_long.any():
                self.flag(
                    d.rows(too_long),
                    name,
                    self._row_text(name),
                    "is out of range",
                    required=required,
                )
                bad_values &= ~too_long
        clean = pc.if_else(pa.array(ok), text, pa.scalar(None, pa.string()))
        target = pa.int64() if integer else pa.float64()
        per_value = pc.cast(clean, target)
        valid_values = np.asarray(pc.is_valid(per_value))
        numbers = pc.fill_null(per_value, 0).to_numpy(zero_copy_only=False)
        if bad_values.any():
            reason = "is not a whole number" if integer else "is not a number"
            self.flag(d.rows(bad_values), name, self._row_text(name), reason, required=required)
        if required:
            self._check_missing(name)
        return d.spread(numbers, 0), d.rows(valid_values)

    def integer(
        self, name: str, dtype: str = "Int16", *, required: bool = False
    ) -> pd.arrays.IntegerArray:
        """A nullable integer column (``Int8``/``Int16``/``Int64``)."""
        if not self.has(name):
            return pd.array([pd.NA] * self.raw.n_rows, dtype=dtype)
        values, valid = self.number_values(name, integer=True, required=required)
        info = np.iinfo(pd.api.types.pandas_dtype(dtype).numpy_dtype)
        fits = (values >= info.min) & (values <= info.max)
        if (valid & ~fits).any():
            self.flag(
                valid & ~fits, name, self._row_text(name), "is out of range", required=required
            )
            valid &= fits
        np_type = pd.api.types.pandas_dtype(dtype).numpy_dtype
        return pd.arrays.IntegerArray(np.where(valid, values, 0).astype(np_type), ~valid)

    def real(self, name: str, *, required: bool = False) -> np.ndarray:
        """A float64 column, NaN where missing."""
        if not self.has(name):
            return np.full(self.raw.n_rows, np.nan)
        values, valid = self.number_values(name, integer=False, required=required)
        return np.where(valid, values, np.nan)

    def timestamp(self, name: str, *, required: bool) -> np.ndarray:
        """Parse a date/time text column (see :func:`parse_datetimes`) to ``datetime64[s]``."""
        if not self.has(name):
            return np.full(self.raw.n_rows, np.datetime64("NaT"), dtype="datetime64[s]")
        d = self.distinct(name)
        parsed, bad = parse_datetimes(d.values)
        seconds = pc.fill_null(parsed.cast(pa.int64()), _NULL_STAMP).to_numpy(zero_copy_only=False)
        self.flag(
            d.rows(bad),
            name,
            self._row_text(name),
            "is not a date in a known format",
            required=required,
        )
        # pandas keeps nanoseconds: a year such as 0001 or 9999 cannot be held (and would wrap)
        stamps = seconds.astype("datetime64[s]")
        unrepresentable = (seconds != _NULL_STAMP) & (
            (stamps < _FIRST_STAMP) | (stamps > _LAST_STAMP)
        )
        if unrepresentable.any():
            self.flag(
                d.rows(unrepresentable),
                name,
                self._row_text(name),
                f"is not a date between {_FIRST_STAMP.astype('datetime64[D]')} and "
                f"{_LAST_STAMP.astype('datetime64[D]')}",
                required=required,
            )
            seconds = np.where(unrepresentable, _NULL_STAMP, seconds)
        if required:
            self._check_missing(name)
        return d.spread(seconds.astype(np.int64), _NULL_STAMP).view("datetime64[s]")

    def strings(self, name: str, *, squeeze: bool = False) -> pd.api.extensions.ExtensionArray:
        """A text column (trimmed; ``squeeze`` folds runs of spaces, as in LAPD addresses)."""
        if not self.has(name):
            return pd.array([None] * self.raw.n_rows, dtype=schema.STRING)
        d = self.distinct(name)
        text = pc.utf8_trim_whitespace(d.values)
        if squeeze:
            text = pc.replace_substring_regex(text, r"\s{2,}", " ")
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        indices = pa.array(d.codes, mask=d.codes < 0)
        return pd.arrays.ArrowStringArray(pa.chunked_array([pc.take(text, indices)]))

    def category(self, name: str) -> pd.Categorical:
        """A low-cardinality text column as a pandas Categorical (trimmed, empty = null)."""
        if not self.has(name):
            return pd.Categorical([None] * self.raw.n_rows)
        d = self.distinct(name)
        text = np.asarray(
            pc.fill_null(pc.utf8_trim_whitespace(d.values), "").to_pylist(), dtype=object
        )
        return _categorical(text, d.codes)


def _categorical(per_value_text: np.ndarray, codes: np.ndarray) -> pd.Categorical:
    """Build a Categorical from per-value text (may repeat after trimming) and row codes."""
    if len(per_value_text) == 0:
        return pd.Categorical.from_codes(np.full(len(codes), -1), categories=[])
    categories, inverse = np.unique(per_value_text.astype(str), return_inverse=True)
    keep = categories != ""
    remap = np.where(keep, np.cumsum(keep) - 1, -1)[inverse]
    row_codes = np.append(remap, -1)[codes]
    return pd.Categorical.from_codes(row_codes, categories=categories[keep])


class _RowText:
    """Lazy per-row text for error messages (only the few rows reported are materialised)."""

    def __init__(self, distinct: _Distinct) -> None:
        self.distinct = distinct

    def __getitem__(self, row: int) -> str | None:
        code = int(self.distinct.codes[row])
        return None if code < 0 else self.distinct.values[code].as_py()


_SOURCE_NAMES = {
    schema_name: {v: k for k, v in table.items()}
    for schema_name, table in (
        ("official", schema.OFFICIAL_COLUMNS),
        ("modified", schema.OFFICIAL_COLUMNS),
        ("api", schema.API_COLUMNS),
        ("reduced_2024", schema.REDUCED_2024_COLUMNS),
    )
}


def _source_column(schema_name: str, field_name: str) -> str:
    return _SOURCE_NAMES.get(schema_name, {}).get(field_name, field_name)


_NULL_STAMP = np.iinfo(np.int64).min


def parse_datetimes(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Parse LAPD date/time text in any of :data:`DATETIME_FORMATS`, vectorised.

    Formats are tried in order on the values still unparsed (``pyarrow.compute.strptime``), so a
    column mixing ``01/08/2020 12:00:00 AM`` and ``01/08/2020 00:00`` parses in two passes. ISO
    values may carry fractional seconds (``2020-01-08T00:00:00.000``), which are dropped.
    Impossible dates (``02/30/2020``) are rejected rather than rolled over to March.

    Parameters
    ----------
    arr
        Text values (nulls allowed).

    Returns
    -------
    (pyarrow.Array, numpy.ndarray)
        ``timestamp[s]`` values (null where missing or bad) and a boolean mask of the values that
        were present but matched no format.

    Examples
    --------
    >>> import pyarrow as pa
    >>> values, bad = parse_datetimes(pa.array(["01/08/2020 12:00:00 AM", "4/28/2020 0:00",
    ...                                         "2020-01-08T13:05:00.000", "02/30/2020 0:00"]))
    >>> [str(v) for v in values.to_pylist()]
    ['2020-01-08 00:00:00', '2020-04-28 00:00:00', '2020-01-08 13:05:00', 'None']
    >>> bad.tolist()
    [False, False, False, True]
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    n = len(arr)
    present = np.asarray(pc.fill_null(pc.not_equal(arr, ""), False))
    seconds = np.full(n, _NULL_STAMP, dtype=np.int64)
    todo = present.copy()
    for fmt in DATETIME_FORMATS:
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        subset = arr if len(idx) == n else arr.take(pa.array(idx))
        if fmt.startswith("%Y"):
            subset = pc.utf8_slice_codeunits(subset, 0, 19)
        parsed = pc.strptime(subset, format=fmt, unit="s", error_is_null=True)
        if parsed.null_count == len(parsed):
            continue
        ok = np.asarray(pc.is_valid(parsed))
        values = pc.fill_null(parsed.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        hit = idx[ok]
        seconds[hit] = values[ok].astype(np.int64)
        todo[hit] = False
    # strptime rolls 02/30 over to 03/01: such results land on day 1-3, so only those are checked
    parsed_mask = seconds != _NULL_STAMP
    stamps = np.where(parsed_mask, seconds, 0).astype("datetime64[s]")
    day_of_month = (stamps.astype("datetime64[D]") - stamps.astype("datetime64[M]")).astype(
        np.int64
    ) + 1
    suspects = np.flatnonzero(parsed_mask & (day_of_month <= 3))
    if len(suspects):
        days = pc.extract_regex(arr.take(pa.array(suspects)), _DAY_PATTERN)
        slash_day = pc.struct_field(days, "slash")
        day_text = pc.if_else(pc.equal(slash_day, ""), pc.struct_field(days, "iso"), slash_day)
        written = pc.fill_null(pc.cast(day_text, pa.int64()), 0).to_numpy(zero_copy_only=False)
        rolled = suspects[written != day_of_month[suspects]]
        seconds[rolled] = _NULL_STAMP
        todo[rolled] = True
    out = pa.array(seconds, type=pa.int64(), mask=seconds == _NULL_STAMP).cast(pa.timestamp("s"))
    return out, todo


def convert_raw(
    raw: RawRead, report: CleaningReport, *, on_bad_rows: str = "report"
) -> pd.DataFrame:
    """Convert one file's text columns to the canonical schema (typed, bad rows left out).

    Parameters
    ----------
    raw
        A reader's output.
    report
        The cleaning report that collects unparseable rows and nulled values.
    on_bad_rows
        ``"report"`` lists bad rows and leaves them out; ``"raise"`` raises on the first.

    Returns
    -------
    pandas.DataFrame
        Canonical columns (see :mod:`geo_crime.schema`), one row per good input row.
    """
    conv = _Converter(raw, report, on_bad_rows=on_bad_rows)
    n = raw.n_rows
    reduced = raw.schema_name == "reduced_2024"
    cols: dict[str, object] = {}

    # identifiers: the record number, or a synthetic id where the source has none
    if conv.has("incident_id"):
        ident = raw.fields["incident_id"]
        if isinstance(ident, pa.ChunkedArray):
            ident = ident.combine_chunks()
        ident = ident.cast(pa.string())
        ok = pc.fill_null(pc.match_substring_regex(ident, r"^\d{1,12}$"), True)
        if not pc.all(ok).as_py():
            ident = pc.utf8_trim_whitespace(ident)
            ok = np.asarray(pc.fill_null(pc.match_substring_regex(ident, r"^\d{1,12}$"), True))
            conv.flag(
                ~ok, "incident_id", ident.to_pylist(), "is not a record number", required=True
            )
        ident = pc.utf8_lpad(ident, 9, "0")
    else:
        ident = pa.nulls(n, pa.string())
    synthetic = np.asarray(pc.is_null(ident), dtype=bool)
    if synthetic.any():
        made_up = pa.array(
            synthetic_incident_ids(raw.path.name, raw.line_numbers[synthetic]), pa.string()
        )
        ident = (
            made_up
            if synthetic.all()
            else pc.replace_with_mask(ident, pa.array(synthetic), made_up)
        )
    cols["incident_id"] = pd.arrays.ArrowStringArray(pa.chunked_array([ident]))
    cols["incident_id_synthetic"] = synthetic

    # when: DATE OCC is midnight in every real export; TIME OCC is HHMM with stripped zeros
    day = conv.timestamp("occurred_date", required=True).astype("datetime64[D]")
    known = np.zeros(n, dtype=bool)
    offset = np.zeros(n, dtype=np.int64)
    if conv.has("occurred_time"):
        hhmm, present = conv.number_values("occurred_time", integer=True, required=False)
        hours, minutes = hhmm // 100, hhmm % 100
        known = present & (hhmm >= 0) & (hours < 24) & (minutes < 60)
        conv.flag(
            present & ~known,
            "occurred_time",
            conv._row_text("occurred_time"),
            "is not a time HHMM",
            required=False,
        )
        offset = np.where(known, (hours * 60 + minutes) * 60, 0)
    cols["occurred_at"] = (day.astype("datetime64[s]") + offset.astype("timedelta64[s]")).astype(
        "datetime64[ns]"
    )
    cols["time_known"] = known
    cols["reported_at"] = conv.timestamp("reported_at", required=False).astype("datetime64[ns]")

    # where (administrative)
    rd = conv.integer("rpt_dist", "Int64")
    rd_values = rd.to_numpy(dtype=np.int64, na_value=-1)
    if conv.has("rpt_dist"):
        d = conv.distinct("rpt_dist")
        per_value = pc.utf8_lpad(pc.utf8_trim_whitespace(d.values), 4, "0")
        ok = np.asarray(pc.fill_null(pc.match_substring_regex(per_value, r"^\d{4}$"), False))
        per_value = pc.if_else(pa.array(ok), per_value, pa.scalar(None, pa.string()))
        rd_text = pc.take(per_value, pa.array(d.codes, mask=d.codes < 0))
        cols["rpt_dist"] = pd.arrays.ArrowStringArray(pa.chunked_array([rd_text]))
    else:
        cols["rpt_dist"] = pd.array([None] * n, dtype=schema.STRING)
    if conv.has("area"):
        area = conv.integer("area", "Int64", required=True).to_numpy(dtype=np.int64, na_value=-1)
    elif conv.has("aprec"):
        d = conv.distinct("aprec")
        names = pc.utf8_upper(pc.utf8_trim_whitespace(d.values)).to_pylist()
        per_value = np.array([schema.APREC_TO_AREA.get(x, -1) for x in names], dtype=np.int64)
        area = d.spread(per_value, -1)
        conv.flag(
            (area < 0) & (d.codes >= 0),
            "aprec",
            conv._row_text("aprec"),
            "is not an LAPD division name",
            required=True,
        )
    else:
        area = np.where(rd_values >= 0, rd_values // 100, -1)
    out_of_range = (area != -1) & ((area < 1) | (area > 21))
    if out_of_range.any():
        conv.flag(
            out_of_range, "area", [str(a) for a in area], "is not an LAPD area 1-21", required=True
        )
    area = np.where(out_of_range, -1, area)
    cols["area"] = pd.arrays.IntegerArray(np.maximum(area, 0).astype(np.int8), area < 0)
    names_by_area = np.array([schema.AREA_NAMES.get(i, "") for i in range(22)], dtype=object)
    cols["area_name"] = _categorical(names_by_area, area)
    report.district_outside_area += int(
        ((rd_values >= 0) & (area > 0) & (rd_values // 100 != area)).sum()
    )

    # what
    lookup = crime_code_lookup()
    if conv.has("crm_cd"):
        crm = conv.integer("crm_cd", required=True)
        desc = (
            conv.category("crm_cd_desc") if conv.has("crm_cd_desc") else pd.Categorical([None] * n)
        )
        if desc.isna().any():
            fill = pd.Series(crm).map(lookup.desc_by_code)
            desc = pd.Categorical(pd.Series(desc).astype(object).fillna(fill))
    else:
        desc = conv.category("crm_cd_desc")
        codes_by_category = np.array(
            [lookup.code_by_desc.get(c, -1) for c in desc.categories] + [-1], dtype=np.int64
        )
        crm_values = codes_by_category[desc.codes]
        unresolved = (crm_values < 0) & (desc.codes >= 0)
        if unresolved.any():
            for text, count in pd.Series(np.asarray(desc)[unresolved]).value_counts().items():
                report.unresolved_descriptions[str(text)] = report.unresolved_descriptions.get(
                    str(text), 0
                ) + int(count)
        crm = pd.arrays.IntegerArray(np.maximum(crm_values, 0).astype(np.int16), crm_values < 0)
    cols["crm_cd_desc"] = desc
    cols["crm_cd"] = crm
    part = conv.integer("part", "Int8")
    if part.isna().any():
        fill = pd.Series(crm).map(lookup.part_by_code).astype("Int8").array
        part = pd.Series(part).fillna(pd.Series(fill)).astype("Int8").array
    cols["part"] = part
    for k in (2, 3, 4):
        cols[f"crm_cd_{k}"] = conv.integer(f"crm_cd_{k}")
    cols["mocodes"] = conv.strings("mocodes")

    # who (victim)
    if reduced:
        cols["vict_age"] = pd.array([pd.NA] * n, dtype="Int16")
        bands = conv.category("age_category")
        cols["vict_age_group"] = (
            pd.Series(bands)
            .map(schema.REDUCED_AGE_GROUPS)
            .fillna("unknown")
            .astype(object)
            .to_numpy()
        )
        cols["vict_sex"] = pd.Categorical(
            pd.Series(conv.category("vict_sex")).map(schema.REDUCED_SEX_CODES).astype(object)
        )
        cols["vict_descent"] = pd.Categorical([None] * n)
    else:
        cols["vict_age"] = conv.integer("vict_age")
        cols["vict_age_group"] = pd.Categorical.from_codes(  # set by the age policy
            np.full(n, -1, dtype=np.int8), categories=AGE_GROUPS
        )
        cols["vict_sex"] = conv.category("vict_sex")
        cols["vict_descent"] = conv.category("vict_descent")

    # how / status / address
    cols["premis_cd"] = conv.integer("premis_cd")
    cols["premis_desc"] = conv.category("premis_desc")
    if reduced:
        cols["weapon_cd"] = pd.array([pd.NA] * n, dtype="Int16")
        cols["weapon_desc"] = pd.Categorical([None] * n)
        category = pd.Series(conv.category("weapon_category")).astype(object)
        cols["weapon_used"] = pd.array(
            category.map({"Weapon Used": True, "No Weapon Used": False}), dtype="boolean"
        )
    else:
        weapon = conv.integer("weapon_cd")
        cols["weapon_cd"] = weapon
        cols["weapon_desc"] = conv.category("weapon_desc")
        cols["weapon_used"] = pd.array(~weapon.isna(), dtype="boolean")
    cols["status"] = conv.category("status")
    cols["status_desc"] = conv.category("status_desc")
    cols["location"] = conv.strings("location", squeeze=True)
    cols["cross_street"] = conv.strings("cross_street", squeeze=True)
    lat = conv.real("lat", required=True)
    lon = conv.real("lon", required=True)
    lat, lon = _unswap_coordinates(lat, lon, raw, report)
    cols["lat"], cols["lon"] = lat, lon
    cols["source"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [raw.schema_name])
    cols["source_file"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [raw.path.name])
    cols["source_line"] = pd.arrays.IntegerArray(
        raw.line_numbers.astype(np.int64), np.zeros(n, dtype=bool)
    )

    frame = pd.DataFrame(cols, copy=False)
    if conv.bad.any():
        frame = frame.loc[~conv.bad].reset_index(drop=True)
    report.synthetic_ids += int(frame["incident_id_synthetic"].sum())
    report.add_file(
        FileSummary(
            path=str(raw.path),
            schema=raw.schema_name,
            rows_read=n + len(raw.bad_rows),
            rows_kept=len(frame),
        )
    )
    for row in raw.bad_rows:
        report.add_bad_row(row)
    if raw.bad_rows:
        by_column = report.rows_unparseable_by_column
        by_column["*"] = by_column.get("*", 0) + len(raw.bad_rows)
    return frame


def _unswap_coordinates(
    lat: np.ndarray, lon: np.ndarray, raw: RawRead, report: CleaningReport
) -> tuple[np.ndarray, np.ndarray]:
    """Swap back rows whose latitude holds an LA longitude and vice versa.

    A few such rows are typing slips and are fixed (and counted). When most rows of a file are
    swapped, the columns themselves are mislabelled: that is a schema error, not a fix to apply
    silently.
    """
    west, south, east, north = LA_COUNTY_BBOX
    swapped = (lat >= west) & (lat <= east) & (lon >= south) & (lon <= north)
    count = int(swapped.sum())
    if not count:
        return lat, lon
    if count > _COLUMN_FAILURE_SHARE * len(lat) and len(lat) >= 4:
        first = int(np.flatnonzero(swapped)[0])
        lat_col = _source_column(raw.schema_name, "lat")
        lon_col = _source_column(raw.schema_name, "lon")
        raise SchemaError(
            f"{raw.path}: columns {lat_col} and {lon_col} look swapped: {count / len(lat):.0%} of "
            f"rows have a longitude in {lat_col} (e.g. {lat[first]} on line "
            f"{raw.line_numbers[first]})"
        )
    report.coordinates_swapped_fixed += count
    return np.where(swapped, lon, lat), np.where(swapped, lat, lon)


def finalize_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Put the canonical columns in order with their canonical dtypes (extra columns kept after)."""
    for col, dtype in schema.CANONICAL_DTYPES.items():
        if col not in frame:
            frame[col] = pd.Series([pd.NA] * len(frame), dtype=object)
        if str(frame[col].dtype) != str(dtype):
            if dtype == "category":
                frame[col] = frame[col].astype("string").astype("category")
            else:
                frame[col] = frame[col].astype(dtype)
    extra = [c for c in frame.columns if c not in schema.CANONICAL_DTYPES]
    return frame[schema.CANONICAL_COLUMNS + extra]


def read_incidents(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    mapping: Mapping[str, str] | None = None,
    on_bad_rows: str = "report",
    report: CleaningReport | None = None,
    progress: Callable[[Path], None] | None = None,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Read files of any supported form into one canonical frame (before cleaning).

    Parameters
    ----------
    inputs
        Files, directories or glob patterns; formats may be mixed.
    mapping
        A user mapping ``{source column: canonical field}`` applied to every file, for exports
        with other headers. Canonical fields are those of :data:`geo_crime.schema.OFFICIAL_COLUMNS`
        values (``incident_id``, ``occurred_date``, ``occurred_time``, ``crm_cd``, ``lat`` ...).
    on_bad_rows
        ``"report"`` (default) or ``"raise"``.
    report
        A report to add to; a new one by default.
    progress
        Called with each file before it is read.

    Returns
    -------
    (pandas.DataFrame, CleaningReport)

    Examples
    --------
    A spreadsheet export with its own headers, mapped onto the canonical fields:

    >>> mapping = {"Case": "incident_id", "When": "occurred_date", "Offense": "crm_cd_desc",
    ...            "Y": "lat", "X": "lon"}
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "custom.csv"
    >>> _ = p.write_text("Case,When,Offense,Y,X\\n1,2024-03-01,ROBBERY,34.05,-118.25\\n")
    >>> frame, rep = read_incidents(p, mapping=mapping)
    >>> int(frame.loc[0, "crm_cd"]), frame.loc[0, "incident_id"]
    (210, '000000001')
    """
    if on_bad_rows not in {"report", "raise"}:
        raise ConfigError(f"on_bad_rows must be 'report' or 'raise', got {on_bad_rows!r}")
    report = report or CleaningReport()
    frames = []
    first_path_by_name: dict[str, Path] = {}
    for path in expand_inputs(inputs):
        if progress:
            progress(path)
        raw = read_raw(path, mapping=mapping)
        frame = convert_raw(raw, report, on_bad_rows=on_bad_rows)
        frames.append(frame)
        _warn_on_shared_synthetic_ids(path, frame, first_path_by_name)
    if len(frames) == 1:
        return frames[0], report
    frames = [f for f in frames if len(f)]
    with warnings.catch_warnings():  # all-null columns (e.g. 2024 weapon_desc) are expected
        warnings.simplefilter("ignore", FutureWarning)
        frame = pd.concat(frames, ignore_index=True)
    for col, dtype in schema.CANONICAL_DTYPES.items():
        if dtype == "category" and frame[col].dtype != "category":
            frame[col] = frame[col].astype("category")
    return frame, report


def _warn_on_shared_synthetic_ids(
    path: Path, frame: pd.DataFrame, first_path_by_name: dict[str, Path]
) -> None:
    """Warn when a file given synthetic ids has the name of an earlier input (their ids clash)."""
    if not frame["incident_id_synthetic"].any():
        return
    earlier = first_path_by_name.setdefault(path.name, path)
    if earlier != path:
        warnings.warn(
            f"{path} and {earlier} have the same name, so their records without a DR_NO get the "
            "same synthetic incident ids; rename one to keep ids unique",
            UserWarning,
            stacklevel=3,
        )


# --- the cached entry point -----------------------------------------------------------------------


def content_key(paths: Sequence[Path], options: Mapping[str, object]) -> str:
    """A cache key: the xxh3-128 hash of the inputs' names and bytes and the loading options.

    The package version and :data:`CACHE_FORMAT_VERSION` are hashed too, so a cache written with
    an older column layout is never reused.

    Parameters
    ----------
    paths
        The input files, in order.
    options
        The loading options that change the result (JSON-serialisable).

    Returns
    -------
    str
        32 hex digits.

    Raises
    ------
    InputError
        An input cannot be read.
    """
    import xxhash

    from geo_crime import __version__

    digest = xxhash.xxh3_128()
    header = {"v": __version__, "format": CACHE_FORMAT_VERSION, **options}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for path in paths:
        digest.update(path.name.encode())
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 24):
                    digest.update(chunk)
        except OSError as exc:
            raise _unreadable(path, exc) from None
    return digest.hexdigest()


def load_incidents(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    mapping: Mapping[str, str] | None = None,
    negative_age: str = "null",
    harm_log: bool = False,
    on_bad_rows: str = "report",
    as_of: pd.Timestamp | None = None,
    min_occurred_date: str | pd.Timestamp | None = MIN_OCCURRED_DATE,
    cache: bool | str | os.PathLike = True,
    progress: Callable[[Path], None] | None = None,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Read, clean and score incidents: the cleaned, typed, scored frame every stage starts from.

    Parameters
    ----------
    inputs
        Files, directories or glob patterns, formats mixed (see :func:`read_incidents`).
    mapping
        Optional user column mapping.
    negative_age
        Policy for negative victim ages: ``"null"`` (default: treat as unknown) or ``"abs"``
        (the original study's absolute value).
    harm_log
        Store ``log1p`` of the custody days in ``harm`` (see
        :func:`geo_crime.severity.score_incidents`).
    on_bad_rows
        ``"report"`` or ``"raise"``.
    as_of
        Dates after this are "in the future" (default: now).
    min_occurred_date
        Occurrences before this date are data errors, left out and counted (default
        :data:`~geo_crime.cleaning.MIN_OCCURRED_DATE`, 2010-01-01; ``None`` keeps every date).
    cache
        ``True`` uses the default cache folder, a path uses that folder, ``False`` neither reads
        nor writes any cache. The key is the content of the inputs plus these options (see
        :func:`content_key`). A cached file that lacks a canonical column is rebuilt; one that
        cannot be read (truncated, corrupt) is removed and rebuilt with a warning. When the cache
        cannot be written (read-only or full disk) a warning is given and the load goes on.
    progress
        Called with each file before it is read.

    Returns
    -------
    (pandas.DataFrame, CleaningReport)
        Canonical columns plus ``spatial_valid``, ``date_suspect``, ``crime_category``,
        ``severity`` and ``harm``.

    Raises
    ------
    InputError
        An input is missing, unreadable or corrupt (the message names the file).
    ConfigError
        ``min_occurred_date`` is not a date.
    """
    paths = expand_inputs(inputs)
    options = {
        "mapping": dict(mapping or {}),
        "negative_age": negative_age,
        "harm_log": harm_log,
        "on_bad_rows": on_bad_rows,
        "as_of": None if as_of is None else str(pd.Timestamp(as_of).date()),
        "min_occurred_date": _date_option(min_occurred_date),
    }
    cache_file = _cache_file(cache, paths, options) if cache else None
    if cache_file is not None and cache_file.exists():
        cached = _read_cache(cache_file)
        if cached is not None:
            return cached
    frame, report = read_incidents(
        paths, mapping=mapping, on_bad_rows=on_bad_rows, progress=progress
    )
    frame = finalize_dtypes(frame)
    frame = clean_incidents(
        frame,
        report,
        negative_age=negative_age,
        as_of=as_of,
        min_occurred_date=min_occurred_date,
    )
    frame = score_incidents(frame, report=report, harm_log=harm_log)
    if cache_file is not None:
        _write_cache(cache_file, frame, report)
    return frame, report


def _date_option(value: str | pd.Timestamp | None) -> str | None:
    """A date option as ISO text for the cache key (``None`` stays ``None``)."""
    floor = parse_min_occurred_date(value)
    return None if floor is None else str(floor.date())


def _cache_file(
    cache: bool | str | os.PathLike, paths: Sequence[Path], options: Mapping[str, object]
) -> Path | None:
    """The cache file for these inputs, or None (with a warning) when no cache folder is usable."""
    from geo_crime.config import cache_dir

    try:
        folder = Path(cache) if not isinstance(cache, bool) else cache_dir() / "incidents"
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = exc.filename or cache
        warnings.warn(
            f"{where}: cannot use the incident cache folder ({exc.strerror or exc}); "
            "continuing without the cache",
            UserWarning,
            stacklevel=3,
        )
        return None
    return folder / f"{content_key(paths, options)}.parquet"


def _write_cache(path: Path, frame: pd.DataFrame, report: CleaningReport) -> None:
    """Write the cache under a unique temporary name, then rename it into place.

    Concurrent runs on the same inputs each write their own temporary file; the last rename wins
    and every reader sees one whole file. A write that fails (full or read-only disk) leaves no
    file behind and only warns: the cache is an optimisation.
    """
    import pyarrow.parquet as pq

    from geo_crime.io_utils import atomic_path

    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"geo_crime_report"] = json.dumps(report.to_dict()).encode()
    table = table.replace_schema_metadata(meta)
    try:
        with atomic_path(path, suffix=".tmp") as tmp:
            pq.write_table(table, tmp, compression="lz4", write_page_checksum=True)
    except (OSError, pa.ArrowException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).split("\n")[0]
        warnings.warn(
            f"{path}: cannot write the incident cache ({reason}); continuing without it",
            UserWarning,
            stacklevel=3,
        )


def _read_cache(path: Path) -> tuple[pd.DataFrame, CleaningReport] | None:
    """The cached frame and report, or None when the file is stale or broken.

    A file that lacks a canonical column (an older layout) is simply rebuilt. A file that cannot
    be read (truncated, a page failing its checksum, a report that does not parse, a row count
    that disagrees with its report) is removed with a warning naming it, then rebuilt.
    """
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, page_checksum_verification=True)
        if not set(schema.CANONICAL_COLUMNS) <= set(table.column_names):
            return None
        stored = (table.schema.metadata or {}).get(b"geo_crime_report")
        if stored is None:
            raise InputError("no cleaning report in its metadata")
        report = CleaningReport.from_dict(json.loads(stored))
        if table.num_rows != report.rows_out:
            raise InputError(f"{table.num_rows:,} rows where its report says {report.rows_out:,}")
        frame = table.to_pandas(types_mapper=_STRING_TYPES.get)
    except FileNotFoundError:  # removed meanwhile by a concurrent run
        return None
    except (OSError, pa.ArrowException, GeoCrimeError, ValueError, TypeError, KeyError) as exc:
        reason = str(exc).split("\n")[0][:160] or type(exc).__name__
        with_removal = "removed it and rebuilding"
        try:
            path.unlink(missing_ok=True)
        except OSError:
            with_removal = "rebuilding"
        warnings.warn(
            f"{path}: corrupt incident cache ({reason}); {with_removal}",
            UserWarning,
            stacklevel=3,
        )
        return None
    return frame, report


_STRING_TYPES = {pa.string(): schema.STRING, pa.large_string(): schema.STRING}


def read_incidents_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """Read an incidents Parquet file written by ``geo-crime ingest`` (canonical dtypes kept).

    Parameters
    ----------
    path
        The Parquet file.

    Returns
    -------
    pandas.DataFrame
        The incidents, with the dtypes they were written with.

    Raises
    ------
    InputError
        The path is no regular file, or not a readable Parquet file (a crime export given here
        is named as such: it must go through ``geo-crime ingest`` first).
    """
    import pyarrow.parquet as pq

    path = Path(path)
    require_regular_file(path)
    head = _head_bytes(path)
    if head[:4] != _PARQUET_MAGIC:
        if head and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
            raise InputError(
                f"{path}: this is a text file (a crime export?), not an incidents Parquet file: "
                "run 'geo-crime ingest' on crime exports first"
            )
        raise InputError(f"{path}: not a Parquet file (no PAR1 signature)")
    try:
        return pq.read_table(path).to_pandas(types_mapper=_STRING_TYPES.get)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
