"""The Socrata SODA API as :mod:`geo_crime.net.fetch` speaks it: headers, SoQL, records, keys.

* :func:`request_headers`: what every request sends, the app token (``X-App-Token``, from
  ``app_token`` or the environment variable :data:`TOKEN_ENV`) included. The token goes only to
  the server asked: :mod:`geo_crime.net.bounds` refuses redirects to any other origin;
* :func:`soql_url` and :func:`page_where`: a resource URL with its SoQL parameters, and the
  ``$where`` of the keyset page after a cursor (the caller's filter ``AND <key> > '<cursor>'``);
* ``_record_ids`` and ``_new_rows``: the keyset side of a page's records: each row's text key
  (a row without one is an error), keys in order (else the server ignored ``$order``), and the
  rows after the cursor, each key once (the paging of :mod:`geo_crime.net.paging` and the saved
  pages of :mod:`geo_crime.net.partial` check records with them);
* :func:`json_records`: the records of an answer (a JSON array of objects); an HTML page, an
  incomplete or other JSON document raises :class:`~geo_crime.net.http.BadBodyError`, which the
  retries treat as a transient fault;
* :func:`server_count`: the server's ``count(*)`` with a filter.

The answers arrive through :class:`~geo_crime.net.http.Retrier`, already decoded and within its
bounds (deadline, body size cap).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from geo_crime.core.errors import FetchError
from geo_crime.core.version import __version__
from geo_crime.net.http import SNIPPET, Answer, BadBodyError, Retrier

#: Environment variable holding an optional Socrata app token (sent as ``X-App-Token``).
TOKEN_ENV = "GEO_CRIME_SOCRATA_TOKEN"


def request_headers(app_token: str | None, accept: str) -> dict[str, str]:
    """The headers of a request: ``accept``, gzip, the user agent and the app token if any.

    ``app_token=None`` takes the token from :data:`TOKEN_ENV` (none when it is unset).
    """
    headers = {
        "Accept": accept,
        "Accept-Encoding": "gzip",
        "User-Agent": f"geo-crime/{__version__} (Python urllib)",
    }
    token = app_token if app_token is not None else os.environ.get(TOKEN_ENV)
    if token:
        headers["X-App-Token"] = token
    return headers


def soql_url(base_url: str, params: Mapping[str, Any]) -> str:
    """``base_url`` with the SoQL parameters that are not ``None``."""
    query = urllib.parse.urlencode(
        {k: v for k, v in params.items() if v is not None}, safe="$:(),*'"
    )
    return f"{base_url}{'&' if '?' in base_url else '?'}{query}"


def soql_text(value: str) -> str:
    """``value`` as a SoQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def page_where(where: str | None, cursor: str | None, *, id_field: str) -> str | None:
    """The ``$where`` of the page after ``cursor``: the caller's filter and ``<key> > cursor``."""
    if cursor is None:
        return where
    after = f"{id_field} > {soql_text(cursor)}"
    return after if where is None else f"({where}) AND {after}"


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


def json_records(answer: Answer) -> list[dict]:
    """The records of an answer; bad content raises :class:`BadBodyError`.

    An HTML page (by its ``Content-Type`` or its first character) is bad content even with
    status 200: portals and proxies answer so while the API is down.
    """
    data = answer.data
    content_type = answer.headers.get("Content-Type", "")
    if "html" in content_type.lower() or data.lstrip()[:1] == b"<":
        raise BadBodyError(
            f"HTTP {answer.status} with an HTML page instead of JSON "
            f"(Content-Type: {content_type or 'none'}): {_html_summary(data)}"
        )
    return parse_records(data)


def _html_summary(data: bytes) -> str:
    """The title of an HTML page, else its first words."""
    text = data[:4096].decode("utf-8", errors="replace")
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    text = title.group(1) if title else re.sub(r"<[^>]*>", " ", text)
    return " ".join(text.split())[:100] or "(no text)"


def parse_records(data: bytes) -> list[dict]:
    """A JSON array of objects; anything else raises :class:`BadBodyError`."""
    try:
        records = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBodyError(f"the body is not complete JSON ({exc})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise BadBodyError(f"expected a JSON array of records, got {type(records).__name__}")
    return records


def server_count(
    retrier: Retrier, base_url: str, where: str | None, headers: Mapping[str, str]
) -> int:
    """The server's ``count(*)`` of the resource at ``base_url`` with the filter ``where``.

    Raises
    ------
    FetchError
        The request failed, or the answer is not one non-negative count.
    """
    url = soql_url(base_url, {"$select": "count(*)", "$where": where})
    records = retrier.call(url, headers, json_records)
    try:
        (record,) = records
        (value,) = record.values()
        count = int(value)
    except (ValueError, TypeError):
        raise FetchError(
            f"{url}: unexpected answer to the count query: {json.dumps(records)[:SNIPPET]}"
        ) from None
    if count < 0:
        raise FetchError(f"{url}: the server reported a negative row count ({count})")
    return count
