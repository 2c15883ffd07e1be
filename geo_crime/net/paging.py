"""Keyset paging of one data set: one pass over its pages, and the count check of a pass.

How the rows are paged, so that none is lost or written twice (below, "the key" is the data
set's :attr:`~geo_crime.net.catalogue.Dataset.id_field`: ``dr_no`` or ``uniquenibrno``):

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
* the pass ends at an empty page, or at a page shorter than ``$limit`` once the rows kept
  reach the count. A short page while the count says more rows remain is logged as a warning
  and paging goes on after its last key;
* ``_count_problem`` says why a pass cannot be trusted: the server's ``count(*)`` asked before
  and after it differ, or differ from the number of distinct keys kept.
  :func:`~geo_crime.net.fetch.fetch_incidents` then starts the download again from nothing.

``_download_pass`` first takes the pages an interrupted run saved and
:mod:`geo_crime.net.partial` still trusts, then pages on after the last of them, saving each new
page there. The SoQL of a page and the key checks of its rows are :mod:`geo_crime.net.soda`.
Dropped duplicates and short pages are logged as warnings on the ``geo_crime.net.fetch`` logger.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from geo_crime.core.errors import FetchError
from geo_crime.net.http import Answer, BadBodyError, Retrier
from geo_crime.net.partial import _reuse_saved_pages, _save_page
from geo_crime.net.soda import _new_rows, json_records, page_where, soql_url

#: The download's one logger (``geo-crime fetch`` shows its warnings).
_log = logging.getLogger("geo_crime.net.fetch")


@dataclass(frozen=True)
class _Query:
    """What every page request of one download asks: the endpoint, its key, filter and size."""

    base_url: str
    id_field: str
    where: str | None
    page_size: int

    def identity(self) -> dict:
        """What a saved state must match to be resumed (see ``geo_crime.net.partial``)."""
        return {
            "base_url": self.base_url,
            "where": self.where,
            "page_size": self.page_size,
            "order": self.id_field,
        }

    def page_url(self, cursor: str | None) -> str:
        """The URL of the page after ``cursor`` (the first page when ``None``)."""
        return soql_url(
            self.base_url,
            {
                "$where": page_where(self.where, cursor, id_field=self.id_field),
                "$order": self.id_field,
                "$limit": self.page_size,
            },
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
    #: Rows dropped since the last saved page (repeated pages included).
    pending_duplicates: int = 0


def _download_pass(
    retrier: Retrier,
    headers: Mapping[str, str],
    query: _Query,
    *,
    folder: Path,
    state: dict,
    expected: int | None,
    advance: Callable[[int], None],
    on_page: Callable[[int, int], None] | None,
) -> _Pass:
    """Reuse the trusted saved pages, then page on by the key until the end of the data set."""
    run = _Pass(state=state)

    def counted(index: int, rows: int) -> None:
        advance(rows)
        if on_page is not None:
            on_page(index, rows)

    def reused(index: int, meta: dict) -> None:
        run.rows += meta["rows"]
        run.duplicates += meta.get("duplicates", 0)
        run.reused += 1
        counted(index, meta["rows"])

    cursor, index = _reuse_saved_pages(
        folder, state, page_size=query.page_size, id_field=query.id_field, on_trusted=reused
    )
    while True:
        url = query.page_url(cursor)
        consume = functools.partial(_checked_page, query=query, run=run, url=url, cursor=cursor)
        served, new, new_ids = retrier.call(url, headers, consume)
        if new:
            _save_page(folder, state, index, new, new_ids, duplicates=run.pending_duplicates)
            run.duplicates += run.pending_duplicates
            run.pending_duplicates = 0
            cursor = new_ids[-1]
            run.rows += len(new)
            run.downloaded += 1
            counted(index, len(new))
            index += 1
        if served == 0:
            break
        if served < query.page_size and expected is not None:
            if run.rows >= expected:
                break
            run.short_pages += 1
            _log.warning(
                "%s: short page (%d of %d rows) with %d counted rows still to come; "
                "paging on after %s %r",
                url,
                served,
                query.page_size,
                expected - run.rows,
                query.id_field,
                cursor,
            )
    run.duplicates += run.pending_duplicates
    return run


def _checked_page(
    answer: Answer, *, query: _Query, run: _Pass, url: str, cursor: str | None
) -> tuple[int, list[dict], list[str]]:
    """The rows served, and the new rows of a page with their keys (``Retrier.call``'s consume).

    Dropped rows are added to ``run.pending_duplicates``, in every attempt; a page of nothing but
    dropped rows raises :class:`BadBodyError`, so that it is asked for again.
    """
    records = json_records(answer)
    if len(records) > query.page_size:
        raise FetchError(f"{url}: the server sent {len(records)} rows for $limit={query.page_size}")
    new, new_ids = _new_rows(records, cursor, url, id_field=query.id_field)
    dropped = len(records) - len(new)
    run.pending_duplicates += dropped
    if records and not new:  # a repeated page: nothing to page on from, ask again
        raise BadBodyError(
            f"the page repeats {dropped} rows already written (every {query.id_field} is at or "
            f"before {cursor!r})"
        )
    if dropped:
        _log.warning("%s: %d duplicate rows dropped (ids already written)", url, dropped)
    return len(records), new, new_ids


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
