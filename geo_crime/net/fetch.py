"""Download the LAPD crime data sets from the city's open data: paged, verified, resumable.

:func:`fetch_incidents` downloads one data set of :data:`~geo_crime.net.catalogue.DATASETS`
(``dataset="legacy"`` by default) into one newline-delimited JSON gzip file, one record per line;
:func:`fetch_datasets` downloads several (``"all"``: both), one after the other, each into its
own file in one folder, each with every guarantee below. If one fails, its file is not written
and the error names the data sets already written: those keep their new files, each complete and
verified against its own count. ``base_url`` points the downloads elsewhere (a test server): an
endpoint for one data set, or, for any number, a template with ``{id}`` or a portal root ending
in ``/`` (:func:`~geo_crime.net.catalogue.dataset_url`). After each download the rows per month
are counted and checked against the set's span (:mod:`geo_crime.net.spans`):
:attr:`FetchResult.months`, and ``<file>.months.tsv``.

This module is the orchestration; each concern has its own module:

* :mod:`geo_crime.net.catalogue`: the two data sets, their ids, keys, URLs and file names;
* :mod:`geo_crime.net.paging`: keyset paging on the data set's key (no row lost or written
  twice) and the count check of a pass;
* :mod:`geo_crime.net.partial`: the saved pages and ``state.json`` of an interrupted run, and
  the final file assembled from them and renamed onto the destination (whole or absent);
* :mod:`geo_crime.net.soda`: the SODA side of a request (headers, SoQL, records, keys, the
  count query);
* :mod:`geo_crime.net.http`: requests and retries, the package's one HTTP layer.

The server's ``count(*)`` (with the caller's filter) is asked before and after each pass. The
file is written only if both counts and the number of distinct keys are equal. Otherwise (the
data set changed during the download, or the server served fewer or more keys than it counts) a
warning is logged, the saved pages are discarded and the whole download is made again from
nothing, once by default (``max_refetches``); if the check fails again, one
:class:`~geo_crime.core.errors.FetchError` names the counts and the final file is not written.
With ``count=False`` none of this is checked and the download ends at the first empty page.

Every request is retried on connection errors, time-outs, truncated or undecodable bodies, a
body that is an HTML page rather than JSON (a maintenance or portal page served with status 200),
a page that only repeats rows already written, and HTTP 429 / 5xx, with exponential backoff
(plus optional jitter from a seeded generator) or the delay the server asks for in
``Retry-After``; any other HTTP error stops at once with one
:class:`~geo_crime.core.errors.FetchError` naming the URL and the status. When the retries run
out, the error names the last fault. Every request is held to the bounds of
:mod:`geo_crime.net.bounds`: a redirect to another origin is refused (the app token is sent to
the server of ``base_url`` only), the whole answer must arrive within ``timeout``, a page may
inflate to ``max_page_bytes`` at most, and a ``Retry-After`` over ``max_retry_after`` fails the
request instead of being waited for.

Only the standard library talks to the network (:mod:`urllib`); :mod:`rich` draws the progress
bar, which is shown only on a terminal. An app token for the Socrata API (higher rate limits) is
read from the environment variable ``GEO_CRIME_SOCRATA_TOKEN``. Retries, dropped duplicates,
short pages and re-downloads are logged as warnings on the ``geo_crime.net.fetch`` logger.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from geo_crime.core.errors import ConfigError, FetchError, GeoCrimeError
from geo_crime.net.bounds import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_RETRY_AFTER, DEFAULT_TIMEOUT
from geo_crime.net.catalogue import (
    ALL_DATASETS,
    DATASETS,
    ID_PLACEHOLDER,
    _dataset,
    _serves_every_dataset,
    dataset_names,
    dataset_url,
    default_downloads_dir,
    default_incidents_path,
)
from geo_crime.net.http import Retrier, make_retrier, sha256_file
from geo_crime.net.paging import _count_problem, _download_pass, _Pass, _Query
from geo_crime.net.partial import _assemble, _open_state, partial_dir
from geo_crime.net.soda import TOKEN_ENV, request_headers, server_count
from geo_crime.net.spans import MonthCounts, record_months

__all__ = ["FetchResult", "fetch_datasets", "fetch_incidents"]

#: Added to the message of an HTTP 401 or 403 answer of the Socrata API.
_AUTH_HINT = f" (check the app token in {TOKEN_ENV})"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_incidents` did.

    Attributes
    ----------
    path
        The newline-delimited JSON gzip file written.
    rows
        Records in it: distinct keys (``dr_no``, ``uniquenibrno``: the data set's
        :attr:`~geo_crime.net.catalogue.Dataset.id_field`), each written once.
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
        The name of the data set downloaded (a key of :data:`~geo_crime.net.catalogue.DATASETS`).
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


def _progress_bar(enabled: bool):
    """A rich progress bar on standard error, disabled unless asked for and on a terminal."""

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
    ``uniquenibrno`` for ``nibrs``: :attr:`~geo_crime.net.catalogue.Dataset.id_field`) after the
    last key received (keyset paging), each key is written once, and the number of distinct keys
    must equal the server's ``count(*)`` taken before and after the download (see
    :mod:`geo_crime.net.paging` for the whole protocol, :mod:`geo_crime.net.partial` for the
    resume).

    Parameters
    ----------
    dest
        The output file (``.ndjson.gz`` by convention); ``default_incidents_path(dataset)``
        when ``None``. It appears only when complete and verified.
    dataset
        Which data set: a key of :data:`~geo_crime.net.catalogue.DATASETS` (``"legacy"``, the
        default, or ``"nibrs"``). It sets the key the pages are ordered, resumed and
        de-duplicated on, and the default ``base_url`` and ``dest``.
    base_url
        The SODA resource endpoint (``.../resource/<id>.json``), or a template containing
        ``{id}`` or a portal root ending in ``/`` that the data set's Socrata id is put into
        (:func:`~geo_crime.net.catalogue.dataset_url`); ``None``: the data set on the city's portal.
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
    query = _Query(
        base_url=dataset_url(chosen.name, base_url),
        id_field=chosen.id_field,
        where=where,
        page_size=page_size,
    )
    if page_size < 1:
        raise ConfigError(f"page_size must be at least 1, not {page_size}")
    if max_refetches < 0:
        raise ConfigError(f"max_refetches must be 0 or more, not {max_refetches}")
    dest = Path(dest) if dest is not None else default_incidents_path(chosen.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
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
    download = _Download(
        retrier=retrier,
        headers=request_headers(app_token, "application/json"),
        query=query,
        folder=partial_dir(dest),
        dest=dest,
        count=count,
        resume=resume,
        max_refetches=max_refetches,
    )
    with _progress_bar(progress) as bar:
        task = bar.add_task(chosen.title, total=None)
        passes, expected = _verified_passes(
            download,
            advance=lambda rows: bar.advance(task, rows),
            on_page=on_page,
            reset=lambda total: bar.reset(task, total=total),
        )

    run = passes[-1]
    _assemble(download.folder, run.state["pages"], dest, rows=run.rows, id_field=query.id_field)
    shutil.rmtree(download.folder, ignore_errors=True)
    return FetchResult(
        path=dest,
        rows=run.rows,
        expected_rows=expected,
        pages=len(run.state["pages"]),
        pages_downloaded=sum(one.downloaded for one in passes),
        pages_reused=sum(one.reused for one in passes),
        requests=retrier.requests,
        retries=retrier.retries,
        sha256=sha256_file(dest),
        elapsed=time.monotonic() - start,
        duplicates=run.duplicates,
        short_pages=sum(one.short_pages for one in passes),
        refetches=len(passes) - 1,
        dataset=chosen.name,
        months=record_months(dest, dataset=chosen.name, socrata_id=chosen.socrata_id, where=where),
    )


@dataclass(frozen=True)
class _Download:
    """One data set's download: how it asks, where its pages go, and how far it checks them."""

    retrier: Retrier
    headers: Mapping[str, str]
    query: _Query
    folder: Path
    dest: Path
    count: bool
    resume: bool
    max_refetches: int


def _verified_passes(
    download: _Download,
    *,
    advance: Callable[[int], None],
    reset: Callable[[int | None], None],
    on_page: Callable[[int, int], None] | None,
) -> tuple[list[_Pass], int | None]:
    """Passes over the data set until one agrees with the server's counts before and after it.

    Returns every pass, the one agreeing last, and the count (``None`` without ``count``). A
    failed check discards the saved pages and starts again from nothing, at most
    ``max_refetches`` times (:func:`_refetch_or_fail`).
    """
    query, retrier, headers = download.query, download.retrier, download.headers
    passes: list[_Pass] = []
    while True:
        expected = (
            server_count(retrier, query.base_url, query.where, headers) if download.count else None
        )
        reset(expected)
        state = _open_state(
            download.folder, query.identity(), expected, resume=download.resume and not passes
        )
        run = _download_pass(
            retrier,
            headers,
            query,
            folder=download.folder,
            state=state,
            expected=expected,
            advance=advance,
            on_page=on_page,
        )
        passes.append(run)
        if expected is None:
            return passes, expected
        after = server_count(retrier, query.base_url, query.where, headers)
        problem = _count_problem(expected, after, run.rows, run.duplicates, id_field=query.id_field)
        if problem is None:
            return passes, expected
        shutil.rmtree(download.folder, ignore_errors=True)
        _refetch_or_fail(download, problem, refetches=len(passes) - 1)


def _refetch_or_fail(download: _Download, problem: str, *, refetches: int) -> None:
    """Warn that the whole download starts again, or raise when ``refetches`` used them all."""
    base_url = download.query.base_url
    if refetches >= download.max_refetches:
        again = (
            f" (also after {refetches} complete re-download{'s' if refetches > 1 else ''})"
            if refetches
            else ""
        )
        raise FetchError(
            f"{base_url}: {problem}{again}; {download.dest} was not written and the saved pages "
            "were discarded: run again"
        )
    _log.warning(
        "%s: %s; downloading everything again (%d of %d)",
        base_url,
        problem,
        refetches + 1,
        download.max_refetches,
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
        Where the files go (created if needed);
        :func:`~geo_crime.net.catalogue.default_downloads_dir` when ``None``.
    datasets
        ``"all"`` (every key of :data:`~geo_crime.net.catalogue.DATASETS`, in its order), one
        key, or several.
    base_url
        ``None`` (the city's portal), a template containing ``{id}`` (e.g.
        ``http://127.0.0.1:8080/resource/{id}.json``) or a portal root ending in ``/``; see
        :func:`~geo_crime.net.catalogue.dataset_url`. A plain endpoint is accepted only for a
        single data set.
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
