"""Download the LAPD crime data sets from the city's open data: paged, verified, resumable.

LAPD publishes two data sets on the City of Los Angeles Socrata portal, both read through the
SODA API (``https://data.lacity.org/resource/<id>.json``). They are named, with their Socrata id,
key field and default file name, in one place, :data:`DATASETS`:

* ``legacy``: "Crime Data from 2020 to 2024" (``2nrs-mtv8``), LAPD's legacy records system;
  frozen: 1,004,894 rows, occurrences from 2020-01-01 to 2024-12-30. One row per incident, keyed
  by the record number ``dr_no``. Its file (``lapd_crime_2nrs-mtv8.ndjson.gz``) is what
  :func:`geo_crime.ingest.read_incidents` reads as the ``api`` schema;
* ``nibrs``: "LAPD NIBRS Offenses" (``k7nn-b2ep``), every NIBRS record from the move of
  2024-03-07 to about two weeks ago (refreshed about every two weeks); one row per offence, keyed
  by ``uniquenibrno`` (``<caseno>_<nibr_code>_<sequence>``, e.g. ``25245851_290_0``). One case
  (``caseno``) has as many rows as offences: they are all kept, since only ``uniquenibrno`` is
  unique. Its file is ``lapd_nibrs_k7nn-b2ep.ndjson.gz``, records as the API serves them.

Through 2024 the two sets split LAPD's reports between them, so a 2024 series needs both. After
each download the rows per month are counted and checked against the set's span
(:mod:`geo_crime.net.spans`): :attr:`FetchResult.months`, and ``<file>.months.tsv``.

:func:`fetch_incidents` downloads one data set (``dataset="legacy"`` by default) into one
newline-delimited JSON gzip file, one record per line; :func:`fetch_datasets` downloads several
(``"all"``: both), one after the other, each into its own file in one folder, each with every
guarantee below. If one fails, its file is not written and the error names the data sets
already written: those keep their new files, each complete and verified against its own count.
``base_url`` points the downloads elsewhere (a test server): an endpoint for one data set, or,
for any number, a template with ``{id}`` or a portal root ending in ``/`` (:func:`dataset_url`).

How the rows are paged, so that none is lost or written twice (below, "the key" is the data
set's :attr:`Dataset.id_field`: ``dr_no`` or ``uniquenibrno``):

* the key (a text field, unique per row) orders the pages. Every page request is
  ``$order=<key>&$limit=<page size>``, and every page after the first adds
  ``$where=<key> > '<last key received>'`` (joined with ``AND`` to the caller's filter). This is
  keyset paging: no ``$offset`` is sent, so a row inserted or deleted during the download cannot
  shift a page boundary, and a resumed run starts after the last key it saved;
* each page is checked before it is saved: every row must carry a non-empty text key (otherwise
  a :class:`~geo_crime.core.errors.FetchError` at once) and the keys must not decrease (a server
  ignoring ``$order`` fails the download). Rows whose key is not after the last key kept (a
  repeated page, an overlapping page, a repeated row) are dropped and counted as duplicates; a
  page made only of such rows is asked for again, as a transient fault. The keys written
  therefore strictly increase, so each appears once. Keys are compared as Python strings, by
  code point, which is how the open-data server orders text (byte order of UTF-8): so
  ``25000001_290_10`` comes before ``25000001_290_2`` and ``25000001_13A_0`` before
  ``2500000_...`` (``1`` < ``_``); nothing parses a key as a number, and ``_`` is sent as it is
  (it is a wildcard only in ``LIKE``, never used here). A server sorting otherwise (a locale
  collation that skips ``_``) fails the order check or the count check rather than losing rows;
* the download ends at an empty page, or at a page shorter than ``$limit`` once the rows kept
  reach the count. A short page while the count says more rows remain is logged as a warning
  and paging goes on after its last key;
* the server's ``count(*)`` (with the caller's filter) is asked before and after the download.
  The file is written only if both counts and the number of distinct keys are equal. Otherwise
  (the data set changed during the download, or the server served fewer or more keys than it
  counts) a warning is logged, the saved pages are discarded and the whole download is made
  again from nothing, once by default (``max_refetches``); if the check fails again, one
  :class:`~geo_crime.core.errors.FetchError` names the counts and the final file is not written.
  With ``count=False`` none of this is checked and the download ends at the first empty page.

How the download survives a bad network and an interrupted run:

* every request is retried on connection errors, time-outs, truncated or undecodable bodies, a
  body that is an HTML page rather than JSON (a maintenance or portal page served with status
  200), a page that only repeats rows already written, and HTTP 429 / 5xx, with exponential
  backoff (plus optional jitter from a seeded generator) or the delay the server asks for in
  ``Retry-After``; any other HTTP error stops at once with one
  :class:`~geo_crime.core.errors.FetchError` naming the URL and the status. When the retries run
  out, the error names the last fault;
* the new rows of each page are saved as they arrive in a folder beside the destination
  (``.<name>.partial/page_000000.json`` ...) with a small ``state.json`` recording each page's
  row count and first and last key. A new run reuses the saved pages that are complete JSON,
  hold the recorded rows and keys and continue the chain of keys; the first page failing that,
  and every page after it, is downloaded again, starting after the last trusted key. A change of
  page size, filter, URL or key field, or of the server's count since the interrupted run,
  starts over. Each data set has its own destination, hence its own partial folder;
* the final file is assembled from the saved pages into a temporary name beside the destination
  (checking once more that the keys strictly increase) and renamed onto it, so the destination
  is whole or absent: it never holds a partial download. The partial folder is then removed.

Requests and retries go through :mod:`geo_crime.net.http`, the package's one HTTP layer (the
official boundary layers of :func:`geo_crime.units.fetch_boundary` are downloaded through it
too); :func:`get_bytes` (one small response, with the same retries) and :func:`sha256_file` are
re-exported from it. Every request is held to the bounds of :mod:`geo_crime.net.bounds`: a
redirect to another origin is refused (the app token is sent to the server of ``base_url``
only), the whole answer must arrive within ``timeout``, a page may inflate to
``max_page_bytes`` at most, and a ``Retry-After`` over ``max_retry_after`` fails the request
instead of being waited for. The SODA side of a request (headers, SoQL, records, the count
query) is :mod:`geo_crime.net.soda`.

Only the standard library talks to the network (:mod:`urllib`); :mod:`rich` draws the progress
bar, which is shown only on a terminal. An app token for the Socrata API (higher rate limits) is
read from the environment variable ``GEO_CRIME_SOCRATA_TOKEN``. Retries, dropped duplicates,
short pages and re-downloads are logged as warnings on the ``geo_crime.net.fetch`` logger.

Long because the paged download, its resumable on-disk state and the count checks are one
protocol (a page is only trusted with the state that says which cursor produced it); split
apart, each half would need the other's private invariants.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from geo_crime.core.errors import ConfigError, FetchError, GeoCrimeError
from geo_crime.core.io_utils import atomic_path, atomic_write_bytes, atomic_write_text
from geo_crime.net.bounds import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_RETRY_AFTER, DEFAULT_TIMEOUT
from geo_crime.net.http import Answer, BadBodyError, Retrier, get_bytes, make_retrier, sha256_file
from geo_crime.net.soda import (
    TOKEN_ENV,
    json_records,
    page_where,
    parse_records,
    request_headers,
    server_count,
    soql_url,
)
from geo_crime.net.spans import MonthCounts, record_months

__all__ = [
    "ALL_DATASETS",
    "DATASETS",
    "ID_PLACEHOLDER",
    "PORTAL_URL",
    "TOKEN_ENV",
    "Dataset",
    "FetchResult",
    "dataset_names",
    "dataset_url",
    "default_downloads_dir",
    "default_incidents_path",
    "fetch_datasets",
    "fetch_incidents",
    "get_bytes",
    "partial_dir",
    "sha256_file",
]

#: The SODA resources of the city's open-data portal: a data set is ``<PORTAL_URL><id>.json``.
PORTAL_URL = "https://data.lacity.org/resource/"


@dataclass(frozen=True)
class Dataset:
    """One LAPD data set on the city's Socrata portal, and the key it is paged on.

    Attributes
    ----------
    name
        The name :func:`fetch_incidents` and ``geo-crime fetch --dataset`` know it by.
    socrata_id
        The Socrata id (``xxxx-xxxx``) of the data set.
    id_field
        Its unique text key: pages are ordered, resumed and de-duplicated on it.
    file_name
        Its file in the download folder (:func:`default_incidents_path`).
    title
        What it holds, for progress bars and messages.
    """

    name: str
    socrata_id: str
    id_field: str
    file_name: str
    title: str

    @property
    def url(self) -> str:
        """The SODA resource endpoint on the city's portal (``<PORTAL_URL><id>.json``)."""
        return f"{PORTAL_URL}{self.socrata_id}.json"


#: Every data set :func:`fetch_incidents` can download, by name: the one place their Socrata ids,
#: key fields and file names are set. ``legacy`` is the frozen legacy records system, 2020-01-01 to
#: 2024-12-30 (one row per incident); ``nibrs`` is every NIBRS record from 2024-03-07 on (one row
#: per offence, several per case number ``caseno``). Spans: :data:`geo_crime.net.spans.SPANS`.
DATASETS: Mapping[str, Dataset] = MappingProxyType(
    {
        "legacy": Dataset(
            name="legacy",
            socrata_id="2nrs-mtv8",
            id_field="dr_no",
            file_name="lapd_crime_2nrs-mtv8.ndjson.gz",
            title="LAPD crime rows",
        ),
        "nibrs": Dataset(
            name="nibrs",
            socrata_id="k7nn-b2ep",
            id_field="uniquenibrno",
            file_name="lapd_nibrs_k7nn-b2ep.ndjson.gz",
            title="LAPD NIBRS offence rows",
        ),
    }
)

#: The name that stands for every data set of :data:`DATASETS` (``geo-crime fetch --dataset all``).
ALL_DATASETS = "all"

#: Placeholder of a base URL template, replaced by a data set's Socrata id (:func:`dataset_url`).
ID_PLACEHOLDER = "{id}"

_STATE_NAME = "state.json"
_STATE_FORMAT = 2
_PAGE_PATTERN = "page_{:06d}.json"

#: Added to the message of an HTTP 401 or 403 answer of the Socrata API.
_AUTH_HINT = f" (check the app token in {TOKEN_ENV})"

_log = logging.getLogger(__name__)


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_incidents` did.

    Attributes
    ----------
    path
        The newline-delimited JSON gzip file written.
    rows
        Records in it: distinct keys (``dr_no``, ``uniquenibrno``: the data set's
        :attr:`Dataset.id_field`), each written once.
    expected_rows
        The server's ``count(*)``, equal before and after the download and to ``rows``
        (``None`` with ``count=False``).
    pages
        Pages the file was assembled from.
    pages_downloaded
        Pages downloaded and saved by this call (all passes).
    pages_reused
        Pages taken from an earlier, interrupted run.
    requests
        HTTP requests made, retries and count queries included.
    retries
        Requests that were retries of a failed one.
    sha256
        SHA-256 of the file written (hex).
    elapsed
        Wall-clock seconds.
    duplicates
        Rows received but not written because their key was already written (repeated pages or
        rows), in the pass that produced the file.
    short_pages
        Pages shorter than ``$limit`` received while the count said more rows remained.
    refetches
        Times the whole download was made again after a failed count check.
    dataset
        The name of the data set downloaded (a key of :data:`DATASETS`).
    months
        Its rows per month of occurrence and the check of its span
        (:func:`geo_crime.net.spans.record_months`).
    """

    path: Path
    rows: int
    expected_rows: int | None
    pages: int
    pages_downloaded: int
    pages_reused: int
    requests: int
    retries: int
    sha256: str
    elapsed: float
    duplicates: int = 0
    short_pages: int = 0
    refetches: int = 0
    dataset: str = "legacy"
    months: MonthCounts | None = None


# --- progress -------------------------------------------------------------------------------------


def _progress_bar(enabled: bool):
    """A rich progress bar on standard error, disabled unless asked for and on a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    show = enabled and sys.stderr.isatty() and console.is_terminal
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
    )


# --- incidents ------------------------------------------------------------------------------------


def dataset_names(dataset: str | Iterable[str]) -> list[str]:
    """The data set names ``dataset`` stands for, checked: ``"all"`` is every one.

    Parameters
    ----------
    dataset
        A key of :data:`DATASETS`, :data:`ALL_DATASETS`, or several keys.

    Returns
    -------
    list of str
        Keys of :data:`DATASETS`, each once, in the order given (``"all"``: the order of
        :data:`DATASETS`).

    Raises
    ------
    ConfigError
        A name is not a key of :data:`DATASETS` (nor ``"all"``), or none is given.

    Examples
    --------
    >>> dataset_names("all")
    ['legacy', 'nibrs']
    >>> dataset_names(["nibrs", "legacy", "nibrs"])
    ['nibrs', 'legacy']
    """
    names = [dataset] if isinstance(dataset, str) else list(dataset)
    known = [*DATASETS, ALL_DATASETS]
    chosen: list[str] = []
    for name in names:
        if name not in known:
            choices = ", ".join(known[:-1]) + f" or {known[-1]}"
            raise ConfigError(f"unknown data set {name!r}: choose {choices}")
        for one in DATASETS if name == ALL_DATASETS else [name]:
            if one not in chosen:
                chosen.append(one)
    if not chosen:
        raise ConfigError("no data set given: choose " + ", ".join(known))
    return chosen


def _dataset(name: str) -> Dataset:
    """The :class:`Dataset` called ``name`` (a :class:`ConfigError` for any other name)."""
    if name not in DATASETS:
        choices = ", ".join(DATASETS)
        raise ConfigError(f"unknown data set {name!r}: choose one of {choices}")
    return DATASETS[name]


def dataset_url(dataset: str, base_url: str | None = None) -> str:
    """The SODA resource endpoint of a data set, on the city's portal or on ``base_url``.

    Parameters
    ----------
    dataset
        A key of :data:`DATASETS`.
    base_url
        ``None``: the city's portal (:attr:`Dataset.url`). A URL containing ``{id}``: a
        template, ``{id}`` replaced by the data set's Socrata id. A URL ending in ``/``: a portal
        root (like :data:`PORTAL_URL`), to which ``<id>.json`` is added. Any other URL: the
        endpoint itself, used as it is (it can serve one data set only).

    Returns
    -------
    str
        The URL the pages and counts are asked of.

    Raises
    ------
    ConfigError
        ``dataset`` is unknown.

    Examples
    --------
    >>> dataset_url("nibrs")
    'https://data.lacity.org/resource/k7nn-b2ep.json'
    >>> dataset_url("legacy", "http://127.0.0.1:8080/resource/{id}.json")
    'http://127.0.0.1:8080/resource/2nrs-mtv8.json'
    >>> dataset_url("nibrs", "http://127.0.0.1:8080/resource/")
    'http://127.0.0.1:8080/resource/k7nn-b2ep.json'
    """
    chosen = _dataset(dataset)
    if base_url is None:
        return chosen.url
    socrata_id = chosen.socrata_id
    if ID_PLACEHOLDER in base_url:
        return base_url.replace(ID_PLACEHOLDER, socrata_id)
    if base_url.endswith("/"):
        return f"{base_url}{socrata_id}.json"
    return base_url


def _serves_every_dataset(base_url: str | None) -> bool:
    """Whether ``base_url`` gives each data set its own endpoint (see :func:`dataset_url`)."""
    return base_url is None or ID_PLACEHOLDER in base_url or base_url.endswith("/")


def default_downloads_dir() -> Path:
    """The folder the data sets are downloaded into by default: ``<cache>/downloads``.

    Returns
    -------
    pathlib.Path
        ``cache_dir() / "downloads"`` (not created here).
    """
    from geo_crime.core.config import cache_dir

    return cache_dir() / "downloads"


def default_incidents_path(dataset: str = "legacy") -> Path:
    """Default destination of :func:`fetch_incidents`: ``<cache>/downloads/<file name>``.

    Parameters
    ----------
    dataset
        A key of :data:`DATASETS`.

    Returns
    -------
    pathlib.Path
        ``cache_dir() / "downloads" / DATASETS[dataset].file_name``, i.e.
        ``lapd_crime_2nrs-mtv8.ndjson.gz`` (legacy) or ``lapd_nibrs_k7nn-b2ep.ndjson.gz``
        (nibrs).

    Raises
    ------
    ConfigError
        ``dataset`` is unknown.
    """
    return default_downloads_dir() / _dataset(dataset).file_name


def partial_dir(dest: str | os.PathLike) -> Path:
    """The folder holding the pages of an unfinished download of ``dest``.

    Parameters
    ----------
    dest
        The final file of :func:`fetch_incidents`.

    Returns
    -------
    pathlib.Path
        ``<dest folder>/.<dest name>.partial``.
    """
    dest = Path(dest)
    return dest.parent / f".{dest.name}.partial"


def _record_ids(records: list[dict], where: str, *, id_field: str) -> list[str]:
    """The key (``id_field``) of each record; a record without a non-empty text one is an error."""
    ids = []
    for number, record in enumerate(records, 1):
        value = record.get(id_field)
        if not isinstance(value, str) or not value:
            keys = ", ".join(sorted(record)[:8]) or "none"
            raise FetchError(
                f"{where}: row {number} of {len(records)} has no {id_field} "
                f"(got {value!r}; fields: {keys}); rows cannot be de-duplicated or paged without it"
            )
        ids.append(value)
    return ids


def _new_rows(
    records: list[dict], cursor: str | None, url: str, *, id_field: str
) -> tuple[list[dict], list[str]]:
    """The rows of a page that come after ``cursor``, each id once, with their ids.

    Rows at or before ``cursor`` and repeats of the previous row's id are left out (the caller
    counts them as duplicates). Rows not in ``id_field`` order mean the server ignored
    ``$order``, which makes keyset paging unsafe: that raises
    :class:`~geo_crime.core.errors.FetchError`.
    """
    ids = _record_ids(records, url, id_field=id_field)
    for before, after in itertools.pairwise(ids):
        if after < before:
            raise FetchError(
                f"{url}: rows are not in {id_field} order ({after!r} after {before!r}); "
                f"the server did not honour $order={id_field}"
            )
    new: list[dict] = []
    new_ids: list[str] = []
    last = cursor
    for record, value in zip(records, ids, strict=True):
        if last is None or value > last:
            new.append(record)
            new_ids.append(value)
            last = value
    return new, new_ids


def _read_state(folder: Path) -> dict | None:
    try:
        state = json.loads((folder / _STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("pages"), list):
        return None
    return state


def _write_state(folder: Path, state: Mapping[str, Any]) -> None:
    atomic_write_text(folder / _STATE_NAME, json.dumps(state, indent=1) + "\n")


def _open_state(
    folder: Path, identity: Mapping[str, Any], expected: int | None, *, resume: bool
) -> dict:
    """The saved state of the same download with the same server count, or a fresh one."""
    state = _read_state(folder) if resume else None
    if (
        state is None
        or state.get("format") != _STATE_FORMAT
        or any(state.get(k) != v for k, v in identity.items())
        or state.get("expected_rows") != expected
    ):
        # nothing to resume, other options, or the data set changed since: start over
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        state = {
            "format": _STATE_FORMAT,
            **identity,
            "expected_rows": expected,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "pages": [],
        }
        _write_state(folder, state)
    return state


def _saved_page_ok(
    path: Path, meta: Any, cursor: str | None, page_size: int, *, id_field: str
) -> bool:
    """Whether a saved page is whole and continues the chain of ids after ``cursor``."""
    if not isinstance(meta, dict) or not path.is_file():
        return False
    try:
        records = parse_records(path.read_bytes())
        ids = _record_ids(records, str(path), id_field=id_field)
    except (OSError, BadBodyError, FetchError):
        return False
    return (
        0 < len(ids) == meta.get("rows") <= page_size
        and ids[0] == meta.get("first")
        and ids[-1] == meta.get("last")
        and (cursor is None or ids[0] > cursor)
        and all(a < b for a, b in itertools.pairwise(ids))
    )


@dataclass
class _Pass:
    """One pass over the data set: what it found saved, downloaded and dropped."""

    state: dict
    rows: int = 0
    downloaded: int = 0
    reused: int = 0
    short_pages: int = 0
    duplicates: int = 0


def _download_pass(
    retrier: Retrier,
    headers: Mapping[str, str],
    *,
    base_url: str,
    id_field: str,
    where: str | None,
    page_size: int,
    folder: Path,
    state: dict,
    expected: int | None,
    advance: Callable[[int], None],
    on_page: Callable[[int, int], None] | None,
) -> _Pass:
    """Reuse the trusted saved pages, then page on by ``id_field`` until the end of the data set."""
    run = _Pass(state=state)
    pages: list = state["pages"]
    cursor: str | None = None
    trusted = 0
    for index, meta in enumerate(pages):
        page = folder / _PAGE_PATTERN.format(index)
        if not _saved_page_ok(page, meta, cursor, page_size, id_field=id_field):
            break
        cursor = meta["last"]
        run.rows += meta["rows"]
        run.duplicates += meta.get("duplicates", 0)
        run.reused += 1
        trusted += 1
        advance(meta["rows"])
        if on_page is not None:
            on_page(index, meta["rows"])
    if trusted < len(pages):  # a damaged page and every page after it are downloaded again
        del pages[trusted:]
        _write_state(folder, state)
    for path in folder.glob("page_*.json"):
        if path.name >= _PAGE_PATTERN.format(trusted):
            path.unlink(missing_ok=True)

    index = trusted
    pending_duplicates = 0  # dropped since the last saved page (repeated pages included)
    while True:
        url = soql_url(
            base_url,
            {
                "$where": page_where(where, cursor, id_field=id_field),
                "$order": id_field,
                "$limit": page_size,
            },
        )

        def consume(
            answer: Answer, url: str = url, cursor: str | None = cursor
        ) -> tuple[int, list[dict], list[str]]:
            nonlocal pending_duplicates
            records = json_records(answer)
            if len(records) > page_size:
                raise FetchError(
                    f"{url}: the server sent {len(records)} rows for $limit={page_size}"
                )
            new, new_ids = _new_rows(records, cursor, url, id_field=id_field)
            dropped = len(records) - len(new)
            pending_duplicates += dropped
            if records and not new:  # a repeated page: nothing to page on from, ask again
                raise BadBodyError(
                    f"the page repeats {dropped} rows already written (every {id_field} is at or "
                    f"before {cursor!r})"
                )
            if dropped:
                _log.warning("%s: %d duplicate rows dropped (ids already written)", url, dropped)
            return len(records), new, new_ids

        served, new, new_ids = retrier.call(url, headers, consume)
        if new:
            atomic_write_bytes(
                folder / _PAGE_PATTERN.format(index),
                json.dumps(new, separators=(",", ":")).encode("ascii"),
            )
            pages.append(
                {
                    "rows": len(new),
                    "first": new_ids[0],
                    "last": new_ids[-1],
                    "duplicates": pending_duplicates,
                }
            )
            _write_state(folder, state)
            run.duplicates += pending_duplicates
            pending_duplicates = 0
            cursor = new_ids[-1]
            run.rows += len(new)
            run.downloaded += 1
            advance(len(new))
            if on_page is not None:
                on_page(index, len(new))
            index += 1
        if served == 0:
            break
        if served < page_size and expected is not None:
            if run.rows >= expected:
                break
            run.short_pages += 1
            _log.warning(
                "%s: short page (%d of %d rows) with %d counted rows still to come; "
                "paging on after %s %r",
                url,
                served,
                page_size,
                expected - run.rows,
                id_field,
                cursor,
            )
    run.duplicates += pending_duplicates
    return run


def _count_problem(
    before: int, after: int, distinct: int, duplicates: int, *, id_field: str
) -> str | None:
    """Why a pass cannot be trusted (``None`` when both counts and the distinct ids agree)."""
    if before != after:
        return (
            f"the data set changed during the download: the server counted {before:,} rows "
            f"before and {after:,} after ({distinct:,} distinct {id_field} downloaded)"
        )
    if distinct != before:
        return (
            f"the server counts {before:,} rows but {distinct:,} distinct {id_field} were "
            f"downloaded ({duplicates:,} duplicate rows dropped)"
        )
    return None


def fetch_incidents(
    dest: str | os.PathLike | None = None,
    *,
    dataset: str = "legacy",
    base_url: str | None = None,
    where: str | None = None,
    page_size: int = 50_000,
    count: bool = True,
    max_refetches: int = 1,
    max_retries: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 120.0,
    jitter: float = 0.1,
    seed: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_page_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    app_token: str | None = None,
    progress: bool = True,
    resume: bool = True,
    opener: urllib.request.OpenerDirector | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_page: Callable[[int, int], None] | None = None,
) -> FetchResult:
    """Download one LAPD data set in pages into one newline-delimited JSON gzip file.

    Pages are requested in the order of the data set's key (``dr_no`` for ``legacy``,
    ``uniquenibrno`` for ``nibrs``: :attr:`Dataset.id_field`) after the last key received
    (keyset paging), each key is written once, and the number of distinct keys must equal the
    server's ``count(*)`` taken before and after the download (see the module documentation for
    the whole protocol).

    Parameters
    ----------
    dest
        The output file (``.ndjson.gz`` by convention); ``default_incidents_path(dataset)``
        when ``None``. It appears only when complete and verified.
    dataset
        Which data set: a key of :data:`DATASETS` (``"legacy"``, the default, or ``"nibrs"``).
        It sets the key the pages are ordered, resumed and de-duplicated on, and the default
        ``base_url`` and ``dest``.
    base_url
        The SODA resource endpoint (``.../resource/<id>.json``), or a template containing
        ``{id}`` or a portal root ending in ``/`` that the data set's Socrata id is put into
        (:func:`dataset_url`); ``None``: the data set on the city's portal.
    where
        An optional SoQL ``$where`` filter, e.g. ``"date_occ >= '2024-01-01'"``; the page
        requests add ``AND <key> > '<last key>'`` to it.
    page_size
        Rows per request (``$limit``).
    count
        Verify the download against the server's ``count(*)``, asked before and after it: the
        distinct ids written must equal both. Without it nothing checks completeness and the
        download ends at the first empty page.
    max_refetches
        Whole downloads started again, from nothing, after a failed count check (0: fail at the
        first).
    max_retries
        Retries per request after the first attempt.
    backoff
        First retry delay in seconds; it doubles at each retry of the same request.
    max_backoff
        Cap of the exponential delay, in seconds.
    jitter
        Each delay is multiplied by ``1 + jitter * u`` with ``u`` uniform in [0, 1); 0 disables.
    seed
        Seed of the jitter's random generator (``None``: unseeded).
    timeout
        Seconds one request may take in all: connecting, redirects, headers and the whole body
        (a server sending a byte now and then cannot hold it longer); no single wait for the
        server is longer than a minute either. Past it the attempt fails as a time-out, and is
        retried.
    max_page_bytes
        Cap of one answer's body once decoded (a gzip page inflated), in bytes: an answer
        passing it fails at once, without retry (256 MiB by default; a 50,000-row page is about
        25 MB).
    max_retry_after
        The longest ``Retry-After`` delay waited for, in seconds; a server asking for longer
        fails the request at once, with a message saying so.
    app_token
        Socrata app token; the ``GEO_CRIME_SOCRATA_TOKEN`` environment variable when ``None``.
        It is sent to the server of ``base_url`` only: a redirect to another origin (another
        host, port or scheme) fails the download.
    progress
        Show a progress bar (only on a terminal).
    resume
        Reuse the pages of an interrupted run of the same download; ``False`` starts afresh.
    opener
        The :mod:`urllib` opener to use (the default one, which honours proxy variables, when
        ``None``).
    sleep
        Called with each backoff delay (tests pass a recorder).
    on_page
        Called as ``on_page(index, rows)`` after each page is saved or found saved; ``rows`` is
        the number of new ids in it.

    Returns
    -------
    FetchResult
        Where the file is, its row count and checksum, and what the download took.

    Raises
    ------
    FetchError
        A request failed permanently (HTTP 4xx other than 429, a redirect to another origin, an
        answer over ``max_page_bytes``, a ``Retry-After`` over ``max_retry_after``) or after all
        retries (an HTML page, incomplete JSON or no complete answer within ``timeout`` in every
        attempt, a page that only repeats rows already written), a row has no key, the rows
        are not in key order, or the count check failed after ``max_refetches`` new downloads.
        ``dest`` is not written. The saved pages are kept for the next run, except after a
        failed count check, which makes them suspect.
    ConfigError
        An option is invalid, or ``dataset`` is unknown.

    Examples
    --------
    Download 2024 onwards (needs the internet)::

        fetch_incidents("lapd.ndjson.gz", where="date_occ >= '2024-01-01'")
        fetch_incidents("nibrs.ndjson.gz", dataset="nibrs")
    """
    start = time.monotonic()
    chosen = _dataset(dataset)
    base_url = dataset_url(chosen.name, base_url)
    id_field = chosen.id_field
    if page_size < 1:
        raise ConfigError(f"page_size must be at least 1, not {page_size}")
    if max_refetches < 0:
        raise ConfigError(f"max_refetches must be 0 or more, not {max_refetches}")
    dest = Path(dest) if dest is not None else default_incidents_path(chosen.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    folder = partial_dir(dest)
    retrier = make_retrier(
        max_retries=max_retries,
        backoff=backoff,
        max_backoff=max_backoff,
        jitter=jitter,
        seed=seed,
        timeout=timeout,
        sleep=sleep,
        opener=opener,
        auth_hint=_AUTH_HINT,
        max_body_bytes=max_page_bytes,
        max_retry_after=max_retry_after,
    )
    headers = request_headers(app_token, "application/json")
    identity = {"base_url": base_url, "where": where, "page_size": page_size, "order": id_field}

    downloaded = reused = short_pages = refetches = 0
    with _progress_bar(progress) as bar:
        task = bar.add_task(chosen.title, total=None)
        while True:
            expected = server_count(retrier, base_url, where, headers) if count else None
            bar.reset(task, total=expected)
            state = _open_state(folder, identity, expected, resume=resume and not refetches)
            run = _download_pass(
                retrier,
                headers,
                base_url=base_url,
                id_field=id_field,
                where=where,
                page_size=page_size,
                folder=folder,
                state=state,
                expected=expected,
                advance=lambda rows: bar.advance(task, rows),
                on_page=on_page,
            )
            downloaded += run.downloaded
            reused += run.reused
            short_pages += run.short_pages
            if expected is None:
                break
            after = server_count(retrier, base_url, where, headers)
            problem = _count_problem(expected, after, run.rows, run.duplicates, id_field=id_field)
            if problem is None:
                break
            shutil.rmtree(folder, ignore_errors=True)
            if refetches >= max_refetches:
                again = (
                    f" (also after {refetches} complete re-download{'s' if refetches > 1 else ''})"
                    if refetches
                    else ""
                )
                raise FetchError(
                    f"{base_url}: {problem}{again}; {dest} was not written and the saved pages "
                    "were discarded: run again"
                )
            refetches += 1
            _log.warning(
                "%s: %s; downloading everything again (%d of %d)",
                base_url,
                problem,
                refetches,
                max_refetches,
            )

    _assemble(folder, state["pages"], dest, rows=run.rows, id_field=id_field)
    shutil.rmtree(folder, ignore_errors=True)
    return FetchResult(
        path=dest,
        rows=run.rows,
        expected_rows=expected,
        pages=len(state["pages"]),
        pages_downloaded=downloaded,
        pages_reused=reused,
        requests=retrier.requests,
        retries=retrier.retries,
        sha256=sha256_file(dest),
        elapsed=time.monotonic() - start,
        duplicates=run.duplicates,
        short_pages=short_pages,
        refetches=refetches,
        dataset=chosen.name,
        months=record_months(dest, dataset=chosen.name, socrata_id=chosen.socrata_id, where=where),
    )


def fetch_datasets(
    folder: str | os.PathLike | None = None,
    *,
    datasets: str | Iterable[str] = ALL_DATASETS,
    base_url: str | None = None,
    on_written: Callable[[FetchResult], None] | None = None,
    **options: Any,
) -> dict[str, FetchResult]:
    """Download several LAPD data sets, one after the other, each into its own file in ``folder``.

    Each data set is downloaded by :func:`fetch_incidents` with all its guarantees (keyset pages
    on its own key, de-duplication, count check, resume, atomic write) into
    ``folder / DATASETS[name].file_name``.

    Parameters
    ----------
    folder
        Where the files go (created if needed); :func:`default_downloads_dir` when ``None``.
    datasets
        ``"all"`` (every key of :data:`DATASETS`, in its order), one key, or several.
    base_url
        ``None`` (the city's portal), a template containing ``{id}`` (e.g.
        ``http://127.0.0.1:8080/resource/{id}.json``) or a portal root ending in ``/``; see
        :func:`dataset_url`. A plain endpoint is accepted only for a single data set.
    on_written
        Called with the :class:`FetchResult` of each data set as soon as its file is written.
    **options
        Passed on to :func:`fetch_incidents` for every data set (``where``, ``page_size``,
        ``resume``, ``opener``, ...).

    Returns
    -------
    dict of str to FetchResult
        The result of each data set, by name, in download order.

    Raises
    ------
    ConfigError
        A data set name is unknown, or one plain endpoint was given for several data sets. Raised
        before any request.
    FetchError
        A data set failed (its error, prefixed with its name). Its file is not written (an older
        complete file at that path is left as it was) and its saved pages are kept as
        :func:`fetch_incidents` keeps them. The data sets written before it keep their new files,
        each complete and verified against its own count; the message names them. The data sets
        after it are not downloaded.

    Examples
    --------
    Both data sets into one folder (needs the internet)::

        results = fetch_datasets("downloads")
        results["nibrs"].rows
    """
    names = dataset_names(datasets)
    if len(names) > 1 and not _serves_every_dataset(base_url):
        raise ConfigError(
            f"{base_url}: one endpoint cannot serve the data sets {', '.join(names)}; give a "
            f"template containing {ID_PLACEHOLDER} or a portal root ending in /"
        )
    for reserved in ("dest", "dataset"):
        if reserved in options:
            raise ConfigError(f"fetch_datasets sets {reserved!r} itself; pass folder and datasets")
    folder = Path(folder) if folder is not None else default_downloads_dir()
    results: dict[str, FetchResult] = {}
    for name in names:
        dest = folder / DATASETS[name].file_name
        try:
            result = fetch_incidents(dest, dataset=name, base_url=base_url, **options)
        except GeoCrimeError as exc:
            kept = "; ".join(
                f"{done.dataset} kept: {done.rows:,} rows, verified, in {done.path}"
                for done in results.values()
            )
            message = f"{name} data set: {exc}" + (f" ({kept})" if kept else "")
            raise type(exc)(message) from exc
        results[name] = result
        if on_written is not None:
            on_written(result)
    return results


def _assemble(folder: Path, pages: list[dict], dest: Path, *, rows: int, id_field: str) -> None:
    """Write the saved pages, in order, as one NDJSON gzip file (atomically), checking the ids.

    Every key (``id_field``) must come after the one before it, so the file holds each key once.
    Records are written with ASCII escapes so that no record holds a Unicode line separator (which
    a line splitter would break on), and the gzip header carries no time stamp, so the same rows
    always give the same bytes.
    """
    written = 0
    last: str | None = None
    with atomic_path(dest) as tmp:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
        ):
            for index in range(len(pages)):
                page = folder / _PAGE_PATTERN.format(index)
                try:
                    records = parse_records(page.read_bytes())
                except (OSError, BadBodyError) as exc:
                    raise FetchError(f"{page}: saved page unreadable ({exc})") from None
                for value in _record_ids(records, str(page), id_field=id_field):
                    if last is not None and value <= last:
                        raise FetchError(
                            f"{page}: {id_field} {value!r} does not come after {last!r}; "
                            f"{dest} was not written"
                        )
                    last = value
                lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
                out.write(lines.encode("ascii"))
                written += len(records)
        if written != rows:  # a page file changed under us: dest stays as it was
            raise FetchError(f"{folder}: the pages hold {written} rows, {rows} were downloaded")
