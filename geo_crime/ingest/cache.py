"""The incident cache: cleaned, scored frames kept as Parquet files named by their inputs' content.

:func:`~geo_crime.ingest.load_incidents` asks :func:`cache_file` where the frame for its inputs
and options would be, serves it with :func:`read_cache` when it is there and sound, and otherwise
stores what it built with :func:`write_cache`. The key (:func:`content_key`) hashes the inputs'
names and bytes, the loading options, the package version and :data:`CACHE_FORMAT_VERSION`, so a
cache is reused only for the same inputs and options, and never after the column layout changed.

Files are written under a unique temporary name and renamed into place, so concurrent runs are
safe, with page checksums. A cached file that fails them, lacks its cleaning report or disagrees
with it is removed and rebuilt with a warning. The cache is an optimisation: a folder that cannot
be used or a write that fails (read-only or full disk) only warns.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from geo_crime import schema
from geo_crime.cleaning import CleaningReport
from geo_crime.errors import GeoCrimeError, InputError
from geo_crime.ingest.detect import unreadable
from geo_crime.ingest.nibrs import empty_categorical

#: Version of the cached frame layout; part of the cache key, bumped whenever the columns or
#: their meaning change so that older caches are not reused.
CACHE_FORMAT_VERSION = 6

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
            raise unreadable(path, exc) from None
    return digest.hexdigest()


def cache_file(
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


def write_cache(path: Path, frame: pd.DataFrame, report: CleaningReport) -> None:
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


def read_cache(path: Path) -> tuple[pd.DataFrame, CleaningReport] | None:
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
        frame = restore_empty_categories(table.to_pandas(types_mapper=STRING_TYPES.get))
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
