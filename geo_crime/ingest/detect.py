"""What an input is, found before it is read: a regular file, its format and its schema.

Everything here looks at a file from the outside or at its first bytes, never at its records:

* :func:`require_regular_file` refuses folders, named pipes (FIFOs), devices and sockets by their
  kind, before anything opens them, so a FIFO never blocks a run and ``/dev/zero`` is never read;
* :func:`sniff_format` looks through gzip at the first bytes and the extension: CSV or JSON go on
  to :mod:`geo_crime.ingest.readers`, a Parquet file or a ZIP archive (a zipped export, an
  ``.xlsx`` workbook) is refused with a message saying what it is and what to do instead;
* :func:`geojson_refusal` recognises a GeoJSON boundary layer from the first JSON value the
  reader parses (newline-delimited JSON is told from a JSON array while parsing, in the reader);
* :func:`csv_header` and :func:`detect_schema` name the LAPD schema (``official``, ``modified``,
  ``api``, ``reduced_2024``, ``nibrs`` or a user ``mapped`` one) a header belongs to, and map its
  columns to canonical fields. A NIBRS offences header is told apart by its own keys
  (``caseno``, ``uniquenibrno``, ``nibr_code``, ``hndrdth_lat`` ...: two of them suffice; the
  retired 2024-25 set's ``location`` / ``lat`` / ``lon`` stand for the ``hndrdth_*`` keys); keys
  of it that are not in :data:`~geo_crime.core.schema.NIBRS_COLUMNS` are left out with a warning
  naming them and the file, as the spreadsheet-modified export's added columns are left out
  (Socrata's own ``:``-prefixed fields are left out silently).

A header that names a known column twice (two ``DR_NO`` columns: which one holds the record
numbers?) and a mapping that sends two columns to one field, or a column to a field no reader
knows, are refused naming both columns (or the field); only the modified export's second
``DATE OCC`` (an Excel serial date, left out) is a known repeat.

Each problem raises one :class:`~geo_crime.core.errors.InputError` (or
:class:`~geo_crime.core.errors.SchemaError`) naming the file.
"""

from __future__ import annotations

import csv
import gzip
import re
import stat
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from geo_crime.core import schema
from geo_crime.core.errors import InputError, SchemaError

#: The first bytes of a gzip stream, a Parquet file and a ZIP archive (an .xlsx workbook too).
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"

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


def unreadable(path: Path, exc: OSError) -> InputError:
    """The error for an input the operating system refuses to read (permissions, I/O errors)."""
    return InputError(f"{path}: cannot read ({exc.strerror or exc})")


def data_suffix(path: Path) -> str:
    """The lower-case extension that names the format (a ``.gz`` or ``.gzip`` ending skipped)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".gzip"}:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip signature."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == GZIP_MAGIC
    except OSError as exc:
        raise unreadable(path, exc) from None


def head_bytes(path: Path, size: int = 8) -> bytes:
    """The first bytes of the content (decompressed when gzip; raw if the archive is broken)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
            if head[:2] != GZIP_MAGIC:
                return head
    except OSError as exc:
        raise unreadable(path, exc) from None
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error):
        return head  # the reader reports the broken archive


def sniff_format(path: Path) -> Literal["csv", "json"]:
    """Name the reader a file calls for, from its first bytes and its extension.

    Parameters
    ----------
    path
        The file: CSV or JSON, plain or gzip.

    Returns
    -------
    {"csv", "json"}
        ``"json"`` for ``.json``, ``.ndjson`` and ``.geojson``, ``"csv"`` for ``.csv``, ``.txt``,
        ``.tsv`` and no extension (a ``.gz`` ending is looked through); with any other extension,
        ``"json"`` when the first non-blank byte opens an array or an object, else ``"csv"``.

    Raises
    ------
    InputError
        The path is no regular file, is empty, or holds another format (Parquet, ZIP).
    """
    require_regular_file(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    head = head_bytes(path)
    if head[:4] == PARQUET_MAGIC:
        raise _parquet_refusal(path)
    if head[:4] == _ZIP_MAGIC:
        raise InputError(
            f"{path}: this is a ZIP archive (a zipped export or an .xlsx workbook), not an "
            "incident export: unzip it, or save the sheet as CSV"
        )
    suffix = data_suffix(path)
    if suffix in {".json", ".ndjson", ".geojson"}:
        return "json"
    if suffix in {".csv", ".txt", ".tsv", ""}:
        return "csv"
    # unknown extension: sniff the first non-blank byte
    if head_bytes(path, 64).lstrip()[:1] in (b"[", b"{"):
        return "json"
    return "csv"


def _parquet_refusal(path: Path) -> InputError:
    """The error for a Parquet file given as a crime export (pointing to what reads it)."""

    try:
        names = set(pq.read_schema(path).names)
    except (pa.ArrowException, OSError):
        names = set()
    if set(schema.LEGACY_CANONICAL_COLUMNS) <= names:
        return InputError(
            f"{path}: this is an incidents Parquet file already written by 'geo-crime ingest', "
            "not an incident export: pass it to the commands that take incidents ('geo-crime "
            "cube', 'geo-crime coverage') or read it with geo_crime.ingest.read_incidents_parquet"
        )
    return InputError(
        f"{path}: this is a Parquet file, not an incident export; ingest reads LAPD crime "
        "records (CSV or JSON exports)"
    )


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


def geojson_refusal(path: Path, value: object) -> InputError | None:
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


def csv_header(path: Path) -> list[str]:
    """The column names on the first line of a CSV file (plain or gzip), as written."""
    compressed = is_gzip(path)
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as fh:
            first = fh.readline()
    except (OSError, EOFError, zlib.error) as exc:
        if not compressed or (isinstance(exc, OSError) and exc.errno is not None):
            raise unreadable(path, exc) from None
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


def dedupe_names(names: Sequence[str]) -> list[str]:
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


#: The canonical fields a column can be mapped to: those the readers fill from some LAPD schema
#: (a mapping may also keep a column as text under an ``extra_`` name).
MAPPING_TARGETS: frozenset[str] = frozenset(
    {
        *schema.OFFICIAL_COLUMNS.values(),
        *schema.API_COLUMNS.values(),
        *schema.REDUCED_2024_COLUMNS.values(),
        *schema.NIBRS_COLUMNS.values(),
    }
)


def _header_position(columns: Sequence[str], name: str) -> int:
    """The 1-based position of ``name`` in the header, for messages."""
    return list(columns).index(name) + 1


def _repeated_column(
    columns: Sequence[str], path: Path | str, mapping: Mapping[str, str] | None
) -> None:
    """Refuse a header naming a column it reads twice (``DR_NO`` and ``DR_NO.1`` after
    :func:`dedupe_names`): a known LAPD column, or a column of the user's mapping; the modified
    export's second ``DATE OCC`` is known and left out."""
    if mapping:
        known = set(mapping)
    else:
        known = set(schema.OFFICIAL_COLUMNS) | set(schema.API_COLUMNS)
        known |= set(schema.REDUCED_2024_COLUMNS) | set(schema.NIBRS_COLUMNS)
    present = set(columns)
    for name in columns:
        base, dot, number = name.rpartition(".")
        if not dot or not number.isdigit() or base not in known or base not in present:
            continue
        if name in schema.MODIFIED_EXTRA_COLUMNS:
            continue
        raise SchemaError(
            f"{path}: columns {_header_position(columns, base)} and "
            f"{_header_position(columns, name)} are both named {base!r}: which one to read "
            "is unclear; rename or remove one"
        )


def _one_column_per_field(mapping: Mapping[str, str], path: Path | str) -> dict[str, str]:
    """``mapping`` after checking that no two source columns feed the same canonical field."""
    first: dict[str, str] = {}
    for source, target in mapping.items():
        if target in first:
            raise SchemaError(
                f"{path}: columns {first[target]!r} and {source!r} both map to the field "
                f"{target!r}; map only one of them"
            )
        first[target] = source
    return dict(mapping)


def _check_mapping_targets(mapping: Mapping[str, str], path: Path | str) -> None:
    """Refuse a mapping onto a field no reader knows (a typo would silently drop the column)."""
    for source, target in mapping.items():
        if target not in MAPPING_TARGETS and not target.startswith(schema.EXTRA_PREFIX):
            raise SchemaError(
                f"{path}: the column mapping sends {source!r} to {target!r}, which is no "
                f"canonical field; known fields: {', '.join(sorted(MAPPING_TARGETS))} (or "
                f"{schema.EXTRA_PREFIX}<name> to keep a column as text)"
            )


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
        The schema name (``official``, ``modified``, ``api``, ``reduced_2024``, ``nibrs`` or
        ``mapped``) and the mapping from source column to canonical field for the columns present.

    Raises
    ------
    SchemaError
        The header matches no known schema (the message names the expected and found columns),
        a NIBRS offences header lacks required keys (the message names all of them), a known
        column is named twice, or two columns map to one field, or a mapped field is unknown.

    Warns
    -----
    UserWarning
        A NIBRS offences header has keys the reader does not know (named in the warning); they
        are left out.
    """
    cols = list(columns)
    if mapping:
        _check_mapping_targets(mapping, path)
    _repeated_column(cols, path, mapping)
    name, colmap = _schema_and_mapping(cols, path, mapping)
    return name, _one_column_per_field(colmap, path)


def _schema_and_mapping(
    cols: list[str], path: Path | str, mapping: Mapping[str, str] | None
) -> tuple[str, dict[str, str]]:
    """The schema and column mapping of a header (:func:`detect_schema` before its checks)."""
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
    if "dr_no" not in present and len(present & schema.NIBRS_ONLY_COLUMNS) >= 2:
        return "nibrs", _nibrs_mapping(cols, path)
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
        f"reduced 2024 keys (Date, Report_District, ...), or the NIBRS offence keys (caseno, "
        f"uniquenibrno, nibr_code, ...); found {cols[:12]}"
        + (" ..." if len(cols) > 12 else "")
        + " (pass a column mapping for other exports)"
    )


def _nibrs_mapping(columns: list[str], path: Path | str) -> dict[str, str]:
    """The column mapping of a NIBRS offences header: required keys checked, unknown ones warned.

    The retired set's location keys (``location``, ``lat``, ``lon``:
    :data:`~geo_crime.core.schema.NIBRS_RETIRED_KEYS`) stand for the live set's ``hndrdth_*`` keys
    when the header lacks those.
    """
    retired = {
        old: live
        for old, live in schema.NIBRS_RETIRED_KEYS.items()
        if old in columns and live not in columns
    }
    present = {retired.get(c, c) for c in columns}
    missing = [c for c in schema.NIBRS_REQUIRED_COLUMNS if c not in present]
    if missing:
        raise SchemaError(
            f"{path}: looks like the LAPD NIBRS offences schema but lacks key(s) {missing}"
        )
    # Socrata's own fields (``:id``, ``:@computed_region_...``) are portal artefacts, not data
    unknown = [
        c
        for c in columns
        if c not in schema.NIBRS_COLUMNS and c not in retired and not c.startswith(":")
    ]
    if unknown:
        shown = ", ".join(unknown[:20]) + (" ..." if len(unknown) > 20 else "")
        warnings.warn(
            f"{path}: {len(unknown)} field(s) the NIBRS offences reader does not know, kept as "
            f"text in the analysis table ({schema.EXTRA_PREFIX}<name>): {shown}",
            UserWarning,
            stacklevel=4,
        )
    mapping = {
        c: schema.NIBRS_COLUMNS[retired.get(c, c)]
        for c in columns
        if retired.get(c, c) in schema.NIBRS_COLUMNS
    }
    mapping.update({c: schema.extra_column(c) for c in unknown})
    return mapping
