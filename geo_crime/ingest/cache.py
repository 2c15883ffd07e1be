"""The incident cache: cleaned, scored frames kept as Parquet files named by their inputs' content.

:func:`~geo_crime.ingest.load_incidents` goes through :func:`cached_or_built`: it asks
:func:`cache_slot` where the frame for its inputs and options would be, serves it with
:func:`read_cache` when it is there and sound, and otherwise builds the frame and stores it with
:func:`write_cache`. The key (:func:`content_key`) hashes the inputs' names and bytes, the loading
options, the package version and :data:`CACHE_FORMAT_VERSION`, so a cache is reused only for the
same inputs and options, and never after the column layout changed.

The key and the rows come from the same bytes: each input's identity (:class:`InputStamp`:
device, inode, size, modification and change times in nanoseconds) is taken from the open file
as it is hashed, and again after the rows are read. When an input changed or was replaced in
between, what was read is neither cached nor returned: the inputs are hashed and read again,
with a warning, :data:`READ_ATTEMPTS` times at most, then an
:class:`~geo_crime.core.errors.InputError`.

Each entry records its input digest (the key it was written under), its row count and its schema
(:data:`ENTRY_KEY` in the Parquet metadata). On load the digest must be the key the file is
named by, the rows must be as many as it records and as its cleaning report says, and the columns
must have the types it records: an entry that disagrees (another key's entry put in its place,
rows cut, a column retyped) is removed and rebuilt with a warning, never served. Files are written
under a unique temporary name and renamed into place, so concurrent runs are safe, with page
checksums: a file failing them, or lacking its cleaning report, is removed and rebuilt with a
warning too. The cache is an optimisation: a folder that cannot be used or a write that fails
(read-only or full disk) only warns.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from geo_crime.core import schema
from geo_crime.core.config import cache_dir
from geo_crime.core.errors import GeoCrimeError, InputError
from geo_crime.core.io_utils import atomic_path
from geo_crime.core.version import __version__
from geo_crime.ingest.cleaning import CleaningReport
from geo_crime.ingest.detect import unreadable
from geo_crime.ingest.nibrs import empty_categorical

#: Version of the cached frame layout; part of the cache key, bumped whenever the columns or
#: their meaning change so that older caches are not reused. 7: each entry records its input
#: digest, row count and schema (:data:`ENTRY_KEY`).
CACHE_FORMAT_VERSION = 8

#: Key of an entry's record (input digest, rows, schema) in its Parquet metadata.
ENTRY_KEY = b"geo_crime_entry"

#: Times the inputs are hashed and read at most while one of them keeps changing.
READ_ATTEMPTS = 3

#: Arrow text types to the canonical pandas string dtype, for reading a canonical frame back.
STRING_TYPES = {pa.string(): schema.STRING, pa.large_string(): schema.STRING}


def restore_empty_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Make canonical category columns that Parquet gave back as all-null plain columns (it keeps
    no dictionary type for a column without a value) category columns again, in place.

    Parameters
    ----------
    frame
        A canonical frame as read from Parquet.

    Returns
    -------
    pandas.DataFrame
        The same frame.
    """
    for col, dtype in schema.CANONICAL_DTYPES.items():
        if dtype != "category" or col not in frame or frame[col].dtype == "category":
            continue
        if frame[col].isna().all():
            frame[col] = empty_categorical(len(frame))
    return frame


@dataclass(frozen=True)
class InputStamp:
    """What identifies the content of an input file without reading it again."""

    path: Path
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path, st: os.stat_result) -> InputStamp:
        return cls(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def changed(self) -> bool:
        """Whether the path now holds another file, or this one was written to since."""
        try:
            return InputStamp.of(self.path, os.stat(self.path)) != self
        except OSError:
            return True


def _hash_inputs(
    paths: Sequence[Path], options: Mapping[str, object]
) -> tuple[str, tuple[InputStamp, ...]]:
    """The cache key of :func:`content_key` and the stamp of each file as it was hashed."""

    digest = xxhash.xxh3_128()
    header = {"v": __version__, "format": CACHE_FORMAT_VERSION, **options}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    stamps = []
    for path in paths:
        digest.update(path.name.encode())
        try:
            with open(path, "rb") as fh:
                stamps.append(InputStamp.of(path, os.fstat(fh.fileno())))
                while chunk := fh.read(1 << 24):
                    digest.update(chunk)
        except OSError as exc:
            raise unreadable(path, exc) from None
    return digest.hexdigest(), tuple(stamps)


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
    return _hash_inputs(paths, options)[0]


@dataclass(frozen=True)
class CacheSlot:
    """Where the entry for some inputs goes, and the inputs as they were when hashed."""

    path: Path
    inputs: tuple[InputStamp, ...]

    def changed_input(self) -> Path | None:
        """The first input that changed since it was hashed, else ``None``."""
        return next((stamp.path for stamp in self.inputs if stamp.changed()), None)


def cache_slot(
    cache: bool | str | os.PathLike, paths: Sequence[Path], options: Mapping[str, object]
) -> CacheSlot | None:
    """The cache entry's place for these inputs, or None (with a warning) when no cache folder
    is usable."""

    try:
        folder = Path(cache) if not isinstance(cache, bool) else cache_dir() / "incidents"
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = exc.filename or cache
        warnings.warn(
            f"{where}: cannot use the incident cache folder ({exc.strerror or exc}); "
            "continuing without the cache",
            UserWarning,
            stacklevel=4,
        )
        return None
    key, stamps = _hash_inputs(paths, options)
    return CacheSlot(folder / f"{key}.parquet", stamps)


def cached_or_built(
    cache: bool | str | os.PathLike,
    paths: Sequence[Path],
    options: Mapping[str, object],
    build: Callable[[], tuple[pd.DataFrame, CleaningReport]],
) -> tuple[pd.DataFrame, CleaningReport]:
    """The cached frame for these inputs and options, else ``build()``'s, cached.

    What ``build`` read is kept only when no input changed between its hashing and the end of
    ``build``; otherwise the inputs are hashed and read again (a warning names the file), at
    most :data:`READ_ATTEMPTS` times.

    Raises
    ------
    InputError
        An input kept changing while it was read.
    """
    changed = None
    for _ in range(READ_ATTEMPTS):
        slot = cache_slot(cache, paths, options)
        if slot is None:
            return build()
        if slot.path.exists():
            cached = read_cache(slot.path)
            if cached is not None:
                return cached
        frame, report = build()
        changed = slot.changed_input()
        if changed is None:
            write_cache(slot.path, frame, report)
            return frame, report
        warnings.warn(
            f"{changed}: the file changed while it was being read (written to or replaced); "
            "what was read is not used: reading the inputs again",
            UserWarning,
            stacklevel=3,
        )
    raise InputError(
        f"{changed}: the file kept changing while it was being read ({READ_ATTEMPTS} tries); "
        "load it once it is no longer being written"
    )


def write_cache(path: Path, frame: pd.DataFrame, report: CleaningReport) -> None:
    """Write the cache under a unique temporary name, then rename it into place.

    Concurrent runs on the same inputs each write their own temporary file; the last rename wins
    and every reader sees one whole file. A write that fails (full or read-only disk) leaves no
    file behind and only warns: the cache is an optimisation.
    """

    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"geo_crime_report"] = json.dumps(report.to_dict()).encode()
    entry = {"input_digest": path.stem, "rows": table.num_rows, "schema": _schema(table)}
    meta[ENTRY_KEY] = json.dumps(entry).encode()
    table = table.replace_schema_metadata(meta)
    try:
        with atomic_path(path, suffix=".tmp") as tmp:
            pq.write_table(table, tmp, compression="lz4", write_page_checksum=True)
    except (OSError, pa.ArrowException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).split("\n")[0]
        warnings.warn(
            f"{path}: cannot write the incident cache ({reason}); continuing without it",
            UserWarning,
            stacklevel=4,
        )


def _schema(table: pa.Table) -> dict[str, str]:
    """Each column's name and Arrow type, as an entry records them.

    A category column without a value is a dictionary of nulls in memory and plain nulls once
    written: both are recorded as ``null``.
    """
    return {field.name: _type_name(field.type) for field in table.schema}


def _type_name(kind: pa.DataType) -> str:
    if pa.types.is_dictionary(kind) and pa.types.is_null(kind.value_type):
        return "null"
    return str(kind)


class _MismatchError(InputError):
    """A readable cache entry that is not what its key and its own record say."""


def _check_entry(path: Path, table: pa.Table, report: CleaningReport) -> None:
    """Raise :class:`_MismatchError` unless the entry's record agrees with its key and content."""
    stored = (table.schema.metadata or {}).get(ENTRY_KEY)
    if stored is None:
        raise _MismatchError("no record of its input digest, row count and schema")
    entry = json.loads(stored)
    if not isinstance(entry, dict):
        raise _MismatchError(f"its record is not an object: {str(entry)[:40]}")
    if entry.get("input_digest") != path.stem:
        raise _MismatchError(
            f"it holds the rows of other inputs: input digest {entry.get('input_digest')}, "
            f"not {path.stem}"
        )
    if not table.num_rows == entry.get("rows") == report.rows_out:
        raise _MismatchError(
            f"{table.num_rows:,} rows where its record says {entry.get('rows')} and its report "
            f"{report.rows_out:,}"
        )
    actual = _schema(table)
    recorded = entry.get("schema")
    if not isinstance(recorded, dict):
        raise _MismatchError("no schema in its record")
    differ = sorted(k for k in {*actual, *recorded} if actual.get(k) != recorded.get(k))
    if differ:
        found = ", ".join(f"{k} {actual.get(k, 'missing')}" for k in differ[:3])
        raise _MismatchError(f"its columns are not the schema it records: {found}")


def read_cache(path: Path) -> tuple[pd.DataFrame, CleaningReport] | None:
    """The cached frame and report, or None when the file is stale, broken or not its key's.

    A file that lacks a canonical column (an older layout) is simply rebuilt. A file that cannot
    be read (truncated, a page failing its checksum, a report that does not parse, a row count
    that disagrees with its report) or whose record disagrees with its key or its content (the
    rows of other inputs, another row count, another schema) is removed with a warning naming
    it, then rebuilt.
    """

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
        _check_entry(path, table, report)
        frame = restore_empty_categories(table.to_pandas(types_mapper=STRING_TYPES.get))
    except FileNotFoundError:  # removed meanwhile by a concurrent run
        return None
    except (OSError, pa.ArrowException, GeoCrimeError, ValueError, TypeError, KeyError) as exc:
        reason = str(exc).split("\n")[0][:160] or type(exc).__name__
        what = (
            "incident cache entry rejected"
            if isinstance(exc, _MismatchError)
            else "corrupt incident cache"
        )
        with_removal = "removed it and rebuilding"
        try:
            path.unlink(missing_ok=True)
        except OSError:
            with_removal = "rebuilding"
        warnings.warn(
            f"{path}: {what} ({reason}); {with_removal}",
            UserWarning,
            stacklevel=4,
        )
        return None
    return frame, report
