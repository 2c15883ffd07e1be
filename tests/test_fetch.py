"""``geo_crime.net.fetch`` against a local Socrata-like server built from real LAPD rows.

Every test starts its own ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) and talks to nothing
else: the opener has no proxy handler. The server answers ``count(*)`` and keyset pages
(``$order=dr_no``, ``$where=dr_no > '<id>'``, ``$limit``; a request with ``$offset`` or without
the order is a protocol violation that fails the test). It fails chosen requests on purpose (503
with and without ``Retry-After``, 429, a reset connection, a truncated body, a body that is not
JSON, an answer slower than the client's time-out, a permanent 404, and the page faults used by
``tests/test_fetch_integrity.py``). It caps the number of requests it answers and shuts itself
down after a minute at most. Backoff delays go to a recorder instead of ``time.sleep``, so the
retries cost no waiting.
"""

from __future__ import annotations

import bisect
import contextlib
import gzip
import hashlib
import json
import logging
import re
import socket
import struct
import threading
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from geo_crime.core import schema
from geo_crime.core.errors import FetchError
from geo_crime.ingest import read_incidents
from geo_crime.net.fetch import fetch_incidents
from geo_crime.net.http import LOCK_FILE
from geo_crime.net.http import parse_retry_after as _parse_retry_after
from geo_crime.net.partial import partial_dir
from geo_crime.net.soda import TOKEN_ENV
from geo_crime.net.spans import months_path
from geo_crime.units import fetch_boundary
from tests.portal import MAX_REQUESTS, SERVER_LIFETIME
from tests.shared_data import IVANCO, crime_file, require_data

N_ROWS = 2_500
PAGE = 500
RESOURCE = "/resource/2nrs-mtv8.json"
DIVISIONS = "boundaries/lapd_divisions__LAPD_Division_5922489107755548254.geojson"


# --- real rows as API records ---------------------------------------------------------------------


def api_records(raw: pd.DataFrame) -> list[dict]:
    """Official rows as the open-data API serves them: snake_case, ISO dates, strings, no nulls."""
    api_name = {field: column for column, field in schema.API_COLUMNS.items()}
    frame = raw[list(schema.OFFICIAL_COLUMNS)].copy()
    for column in ("DATE OCC", "Date Rptd"):
        frame[column] = pd.to_datetime(frame[column], format="mixed").dt.strftime(
            "%Y-%m-%dT%H:%M:%S.000"
        )
    frame = frame.rename(columns={c: api_name[f] for c, f in schema.OFFICIAL_COLUMNS.items()})
    return [
        {key: value for key, value in row.items() if isinstance(value, str)}
        for row in frame.to_dict("records")
    ]


def real_records(rows: int) -> list[dict]:
    """The first ``rows`` rows of the real official export, as the API serves them."""
    raw = pd.read_csv(
        crime_file(IVANCO), dtype=str, nrows=rows, keep_default_na=False, na_values=[""]
    )
    return api_records(raw)


@pytest.fixture(scope="module")
def raw_rows() -> pd.DataFrame:
    """The first 2,500 rows of the real official export, every value as written."""
    return pd.read_csv(
        crime_file(IVANCO), dtype=str, nrows=N_ROWS, keep_default_na=False, na_values=[""]
    )


@pytest.fixture(scope="module")
def records(raw_rows) -> list[dict]:
    out = api_records(raw_rows)
    assert len(out) == N_ROWS
    assert any(len(r) < len(schema.API_COLUMNS) for r in out)  # null keys really are omitted
    return out


# --- the server -----------------------------------------------------------------------------------

#: ``$where`` of a keyset page: an optional filter in parentheses, then the cursor.
_KEYSET = re.compile(r"^(?:\((?P<filter>.+)\) AND )?dr_no > '(?P<cursor>[0-9]+)'$")
#: The one filter the fake server understands.
_AREA = re.compile(r"^area = '(?P<area>[0-9]+)'$")

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Site Maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1></body></html>"
)


class FakeSocrata(ThreadingHTTPServer):
    """A Socrata-like API: ``count(*)``, keyset pages in ``dr_no`` order, and static files.

    Pages honour ``$order=dr_no``, ``$limit`` and ``$where=[(area = 'NN') AND ]dr_no > '<id>'``;
    ``$offset`` is refused. A page's key is its position: the number of rows of the sorted
    (filtered) data set before its first row, i.e. the offset it would have.

    ``faults`` maps ``(key, attempt)`` to a failure, where ``key`` is ``"count"``, a page position
    or a file path and ``attempt`` counts the requests for that key from 0. ``inserts`` maps a
    request number (from 0, over all requests) to records added to the data set just before that
    request is answered.
    """

    daemon_threads = True

    def __init__(self, records: list[dict]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.records = list(records)
        self.files: dict[str, bytes] = {}
        self.faults: dict[tuple[object, int], str] = {}
        self.inserts: dict[int, list[dict]] = {}
        self.attempts: Counter = Counter()
        self.violations: list[str] = []
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.base_url + RESOURCE

    def rows(self, area: str | None = None) -> list[dict]:
        """The data set (optionally one area) in ``dr_no`` order."""
        rows = [r for r in self.records if area is None or r.get("area") == area]
        return sorted(rows, key=lambda r: r["dr_no"])

    def offsets(self, start: int = 0) -> list[int]:
        """Page positions requested (retries included), from log entry ``start`` on."""
        return [e["key"] for e in self.log[start:] if isinstance(e["key"], int)]

    def cursors(self, start: int = 0) -> list[str | None]:
        """The ``dr_no`` each page request started after (``None``: the first page)."""
        return [e["cursor"] for e in self.log[start:] if isinstance(e["key"], int)]

    def handle_error(self, request, client_address) -> None:  # noqa: D102
        pass  # broken pipes after a client time-out are expected here


def _parse_where(where: str | None) -> tuple[str | None, str | None]:
    """``(area, cursor)`` of a ``$where`` (``ValueError`` if the fake server does not know it)."""
    if where is None:
        return None, None
    keyset = _KEYSET.match(where)
    cursor, rest = (keyset["cursor"], keyset["filter"]) if keyset else (None, where)
    if rest is None:
        return None, cursor
    area = _AREA.match(rest)
    if area is None:
        raise ValueError(f"unexpected $where: {where}")
    return area["area"], cursor


class _Handler(BaseHTTPRequestHandler):
    server: FakeSocrata

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        server = self.server
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        try:
            area, cursor = _parse_where(query.get("$where"))
        except ValueError as exc:
            server.violations.append(str(exc))
            return self._send(400, json.dumps({"message": str(exc)}).encode())
        with server.lock:
            number = len(server.log)
            server.records.extend(server.inserts.get(number, []))
            rows = server.rows(area)
            if url.path in server.files:
                key: object = url.path
            elif query.get("$select") == "count(*)":
                key = "count"
            else:
                if query.get("$order") != "dr_no" or "$offset" in query:
                    # the client must page by key in a stable order, never by offset
                    server.violations.append(f"not a keyset page request: {query}")
                ids = [r["dr_no"] for r in rows]
                key = 0 if cursor is None else bisect.bisect_right(ids, cursor)
            attempt = server.attempts[key]
            server.attempts[key] += 1
            fault = server.faults.get((key, attempt))
            server.log.append(
                {
                    "key": key,
                    "fault": fault,
                    "cursor": cursor,
                    "query": query,
                    "token": self.headers.get("X-App-Token"),
                }
            )
        if server.violations:
            return self._send(400, json.dumps({"message": server.violations[-1]}).encode())
        if number >= MAX_REQUESTS:
            return self._send(410, b'{"message": "request budget exhausted"}')
        if fault == "503":
            return self._send(503, b"busy", {"Retry-After": "0"})
        if fault == "503-plain":
            return self._send(503, b"busy")
        if fault == "429":
            return self._send(429, b'{"message": "slow down"}', {"Retry-After": "7"})
        if fault == "404":
            return self._send(404, b'{"error": true, "message": "no such data set"}')
        if fault == "html":
            return self._send(200, HTML_PAGE, {"Content-Type": "text/html; charset=utf-8"})
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return None
        if fault == "slow":
            server.stopping.wait(3.0)  # well beyond the client's time-out
        body = self._body(key, query, rows, fault)
        if fault == "garbage":
            body = body[: len(body) // 3]  # complete response, but not complete JSON
        if fault == "truncated":
            return self._send(200, body, truncate=True)
        try:
            return self._send(200, body)
        except OSError:  # the client gave up (slow answer)
            return None

    def _body(self, key: object, query: dict[str, str], rows: list[dict], fault) -> bytes:
        server = self.server
        if isinstance(key, str) and key in server.files:
            return server.files[key]
        if key == "count":
            return json.dumps([{"count": str(len(rows))}]).encode()
        assert isinstance(key, int)
        limit = int(query["$limit"])
        page = rows[key : key + limit]
        if fault == "repeat":  # the previous page again (as a stale cache would serve it)
            page = rows[max(0, key - limit) : key]
        elif fault == "overlap":  # starts 100 rows early, as after a shift of offsets
            page = rows[max(0, key - 100) : max(0, key - 100) + limit]
        elif fault == "short":  # half a page, though more rows follow
            page = page[: limit // 2]
        elif fault == "omit":  # one row silently missing
            page = page[:9] + page[10:]
        elif fault == "no-id":
            page = [dict(r) for r in page]
            del page[36]["dr_no"]
        elif fault == "unordered":
            page = page[::-1]
        return json.dumps(page).encode()

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        truncate: bool = False,
    ) -> None:
        headers = {"Content-Type": "application/json", **(headers or {})}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if truncate else body)
        self.close_connection = True


@contextlib.contextmanager
def running_server(records: list[dict]) -> Iterator[FakeSocrata]:
    """A :class:`FakeSocrata` on 127.0.0.1 that stops after the block or its lifetime."""
    httpd = FakeSocrata(records)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    timer = threading.Timer(SERVER_LIFETIME, httpd.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield httpd
    finally:
        timer.cancel()
        httpd.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def by_id(records: list[dict]) -> list[dict]:
    """Records in ``dr_no`` order, as the client pages and writes them."""
    return sorted(records, key=lambda r: r["dr_no"])


def download_files(*names: str) -> list[str]:
    """The files a finished download of each file name leaves: it and its months table."""
    return sorted([*names, *(months_path(name).name for name in names)])


def read_ndjson(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def fetch(server, dest, opener, sleeps, **options):
    options = {
        "base_url": server.api_url,
        "page_size": PAGE,
        "jitter": 0.0,
        "timeout": 5.0,
        "opener": opener,
        "sleep": sleeps.append,
        **options,
    }
    return fetch_incidents(dest, **options)


# --- incidents ------------------------------------------------------------------------------------


def test_paged_download_survives_every_kind_of_failure(
    server, opener, tmp_path, records, raw_rows, monkeypatch, caplog
):
    monkeypatch.setenv(TOKEN_ENV, "test-token")
    caplog.set_level(logging.WARNING, logger="geo_crime.net.fetch")
    server.faults = {
        ("count", 0): "503",  # Retry-After: 0
        (0, 0): "429",  # Retry-After: 7
        (500, 0): "reset",
        (1000, 0): "truncated",
        (1000, 1): "slow",
        (1500, 0): "503-plain",
        (1500, 1): "503-plain",
        (1500, 2): "503-plain",
        (2000, 0): "garbage",
    }
    dest = tmp_path / "out" / "lapd.ndjson.gz"
    sleeps: list[float] = []
    result = fetch(server, dest, opener, sleeps, timeout=1.0, backoff=1.0, progress=True)

    # every row once, in dr_no order, exactly as served
    written = read_ndjson(dest)
    assert written == by_id(records)
    assert len({r["dr_no"] for r in written}) == len(written) == N_ROWS
    assert result.rows == result.expected_rows == N_ROWS
    assert (result.duplicates, result.short_pages, result.refetches) == (0, 0, 0)
    assert (result.pages, result.pages_downloaded, result.pages_reused) == (5, 5, 0)
    assert result.sha256 == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert not partial_dir(dest).exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == download_files(dest.name)

    # retries happened, server side and client side, and only where a fault was served
    # count before, 5 full pages, the empty page that ends the data set, count after
    assert len(server.log) == 8 + len(server.faults) == result.requests
    assert result.retries == len(server.faults)
    assert Counter(server.offsets()) == {0: 2, 500: 2, 1000: 3, 1500: 4, 2000: 2, 2500: 1}
    assert [e["key"] for e in server.log].count("count") == 3  # 503, before, after
    assert all(entry["token"] == "test-token" for entry in server.log)
    # Retry-After is honoured; otherwise the delay doubles with each retry of one request
    assert sleeps == [0.0, 7.0, 1.0, 1.0, 2.0, 1.0, 2.0, 4.0, 1.0]
    # each fault was seen by the client as what it is
    reasons = [r.getMessage() for r in caplog.records]
    expected_reasons = [
        "count(*): HTTP 503",
        "HTTP 429",
        "reset",
        "cut short",
        "time-out",
        "HTTP 503",
        "HTTP 503",
        "HTTP 503",
        "not complete JSON",
    ]
    assert len(reasons) == len(expected_reasons)
    for message, reason in zip(reasons, expected_reasons, strict=True):
        assert reason in message, (reason, message)

    # the file reads as the API schema and gives the same incidents as the original rows
    head = tmp_path / "head.csv"
    raw_rows.sort_values("DR_NO").to_csv(head, index=False)
    fetched, report = read_incidents(dest)
    expected, _ = read_incidents(head)
    assert report.files[0].schema == "api" and report.rows_unparseable == 0
    assert len(fetched) == len(expected) == N_ROWS
    for column in ("incident_id", "occurred_at", "reported_at", "area", "rpt_dist", "crm_cd"):
        left = fetched[column].astype(object).where(fetched[column].notna(), None).tolist()
        right = expected[column].astype(object).where(expected[column].notna(), None).tolist()
        assert left == right, column
    assert fetched["lat"].tolist() == pytest.approx(expected["lat"].tolist())


def test_interrupted_run_resumes_with_only_the_missing_pages(server, opener, tmp_path, records):
    dest = tmp_path / "lapd.ndjson.gz"
    sleeps: list[float] = []

    def crash_after_second_page(index: int, rows: int) -> None:
        if index == 1:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        fetch(server, dest, opener, sleeps, on_page=crash_after_second_page)
    assert server.offsets() == [0, 500]
    assert not dest.exists()
    folder = partial_dir(dest)
    assert sorted(p.name for p in folder.iterdir()) == [
        "page_000000.json",
        "page_000001.json",
        "state.json",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no stray temp file
    ordered = by_id(records)
    pages = json.loads((folder / "state.json").read_text())["pages"]
    assert [(p["rows"], p["first"], p["last"]) for p in pages] == [
        (PAGE, ordered[0]["dr_no"], ordered[PAGE - 1]["dr_no"]),
        (PAGE, ordered[PAGE]["dr_no"], ordered[2 * PAGE - 1]["dr_no"]),
    ]

    # a page cut short (as by a crash while writing it) is not trusted: it is fetched again,
    # starting after the last id of the last trusted page
    second = folder / "page_000001.json"
    second.write_bytes(second.read_bytes()[:1000])
    seen = len(server.log)
    result = fetch(server, dest, opener, sleeps)
    assert server.offsets(seen) == [500, 1000, 1500, 2000, 2500]
    assert server.cursors(seen)[0] == ordered[PAGE - 1]["dr_no"]
    assert (result.pages_reused, result.pages_downloaded) == (1, 4)
    assert read_ndjson(dest) == ordered
    assert not folder.exists()
    assert sleeps == []


def test_a_changed_data_set_or_page_size_starts_over(server, opener, tmp_path, records):
    dest = tmp_path / "lapd.ndjson.gz"

    def crash(index: int, rows: int) -> None:
        if index == 2:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        fetch(server, dest, opener, [], on_page=crash)
    server.records = records[:2_400]  # the city published a new version meanwhile
    seen = len(server.log)
    result = fetch(server, dest, opener, [])
    assert server.offsets(seen) == [0, 500, 1000, 1500, 2000]
    assert result.rows == 2_400 and result.pages_reused == 0
    assert read_ndjson(dest) == by_id(records[:2_400])

    # without the count query the download ends at the first empty page (2,400 = 4 x 500 + 400)
    seen = len(server.log)
    result = fetch(server, dest, opener, [], count=False)
    assert [e["key"] for e in server.log[seen:]] == [0, 500, 1000, 1500, 2000, 2400]
    assert result.expected_rows is None and result.rows == 2_400
    assert read_ndjson(dest) == by_id(records[:2_400])

    with pytest.raises(RuntimeError):
        fetch(server, dest, opener, [], on_page=crash, page_size=400)
    seen = len(server.log)
    result = fetch(server, dest, opener, [], page_size=600)  # other page size: old pages unusable
    assert server.offsets(seen) == [0, 600, 1200, 1800, 2400]  # four full pages, then empty
    assert result.rows == 2_400 and result.pages == 4


def test_permanent_client_error_fails_at_once_and_keeps_the_pages(
    server, opener, tmp_path, records
):
    server.faults = {(1000, 0): "404"}
    dest = tmp_path / "lapd.ndjson.gz"
    sleeps: list[float] = []
    with pytest.raises(FetchError) as info:
        fetch(server, dest, opener, sleeps)
    message = str(info.value)
    assert "HTTP 404" in message and "no such data set" in message
    cursor = by_id(records)[999]["dr_no"]
    assert f"{server.api_url}?" in message and "$order=dr_no" in message
    assert f"$where=dr_no+%3E+'{cursor}'" in message
    assert server.offsets() == [0, 500, 1000]  # no retry of a 404
    assert sleeps == []
    assert not dest.exists()
    assert sorted(p.name for p in partial_dir(dest).iterdir()) == [
        "page_000000.json",
        "page_000001.json",
        "state.json",
    ]


def test_retries_are_bounded_and_delays_grow_exponentially(server, opener, tmp_path):
    server.faults = {("count", n): "503-plain" for n in range(10)}
    dest = tmp_path / "lapd.ndjson.gz"
    sleeps: list[float] = []
    with pytest.raises(FetchError, match=r"giving up after 4 attempts.*HTTP 503") as info:
        fetch(server, dest, opener, sleeps, max_retries=3, backoff=0.5, jitter=0.25, seed=7)
    assert "count(*)" in str(info.value) and server.base_url in str(info.value)
    assert len(server.log) == 4
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        assert 0.5 * 2**attempt <= delay < 0.5 * 2**attempt * 1.25
    assert sleeps[0] < sleeps[1] < sleeps[2]
    assert list(tmp_path.iterdir()) == []  # nothing written before the count is known


def test_retry_after_as_an_http_date():
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 < _parse_retry_after(format_datetime(later, usegmt=True)) <= 30
    assert _parse_retry_after("12") == 12.0
    assert _parse_retry_after(None) is None
    assert _parse_retry_after("soon") is None


# --- single files and boundaries ------------------------------------------------------------------


@pytest.fixture(scope="module")
def divisions() -> bytes:
    """The real LAPD divisions layer (21 polygons)."""
    return (require_data() / DIVISIONS).read_bytes()


def test_boundary_download_retries_checks_the_sha256_and_writes_atomically(
    server, tmp_path, divisions, monkeypatch
):
    monkeypatch.setenv("no_proxy", "*")  # the boundary download uses urllib's default opener
    server.files["/layers/divisions"] = divisions
    server.files["/layers/error"] = json.dumps(
        {"error": {"code": 400, "message": "Invalid or missing input parameters."}}
    ).encode()
    server.faults = {("/layers/divisions", 0): "truncated"}
    layers = {
        name: {"url": f"{server.base_url}/layers/{name}", "filename": f"{name}.geojson"}
        for name in ("divisions", "error")
    }
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"layers": layers}))
    cache = tmp_path / "cache"

    path = fetch_boundary("divisions", cache_dir=cache, manifest=manifest)
    assert path.read_bytes() == divisions  # after one retry of the truncated answer
    assert server.attempts["/layers/divisions"] == 2
    lock = json.loads((cache / LOCK_FILE).read_text())
    assert lock["divisions"]["sha256"] == hashlib.sha256(divisions).hexdigest()

    with pytest.raises(FetchError, match="Invalid or missing") as info:
        fetch_boundary("error", cache_dir=cache, manifest=manifest)
    assert server.base_url + "/layers/error" in str(info.value)
    # the upstream layer changes: the new download is refused and the cache left as it was
    path.unlink()
    server.files["/layers/divisions"] = divisions.replace(b"}", b"} ", 1)
    with pytest.raises(FetchError, match="differs from the recorded"):
        fetch_boundary("divisions", cache_dir=cache, manifest=manifest)
    assert sorted(p.name for p in cache.iterdir()) == [LOCK_FILE]  # no file, no temp file
