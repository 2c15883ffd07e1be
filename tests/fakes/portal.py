"""A loopback Socrata-like open-data portal for the fetch tests, serving any rows handed to it.

:class:`FakePortal` is a ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) serving several resources
at once, each at ``/resource/<socrata id>.json`` and keyed by its own unique text field
(:class:`Resource`). It answers ``count(*)`` and keyset pages (``$order=<key>``,
``$where=<key> > '<cursor>'``, ``$limit``), ordering text by code point as the open-data server
does, and the ``$where`` filters a resource declares (alone, or in parentheses before the
cursor). A page request ordered on another field, with ``$offset``, with a cursor on another
field or with an unknown filter is a protocol violation, answered 400 and recorded in
:attr:`FakePortal.violations`. It fails chosen requests on purpose (:attr:`FakePortal.faults`:
a repeated page, a repeated row, a lost row, a row without its key, a page ordered by a locale
collation that skips ``_``) or answers them as a hostile server would (:data:`HOSTILE`: an
answer dribbled a byte at a time, a compressed "bomb", a ``Retry-After`` of 100,000 s). It
answers at most ``max_requests`` requests (then 410) and stops after ``lifetime`` seconds at most
(:func:`running_portal`). Every request is logged with the ``X-App-Token`` it carried. A request
under :data:`OLD_PREFIX` is redirected (301) to the same path without it, on the same origin;
with :attr:`FakePortal.moved_to` set, every request is redirected (302) to that other origin.

It also fails requests the way a flaky network or a busy server does (:data:`TRANSPORT`: 503
with and without ``Retry-After``, 429, 404, an HTML page with status 200, a reset connection, a
truncated body, a body that is not complete JSON, an answer slower than the client's time-out),
serves static files at their path (:attr:`FakePortal.files`, e.g. a boundary layer), and adds
rows to a resource just before a chosen request (:attr:`Resource.inserts`).

Used as::

    with running_portal({"k7nn-b2ep": Resource("uniquenibrno", rows)}) as portal:
        fetch_incidents(dest, dataset="nibrs", base_url=portal.url("k7nn-b2ep"), ...)
    assert portal.violations == []

:class:`LapdApi` is the same portal serving the one legacy LAPD resource (``2nrs-mtv8``, keyed by
``dr_no``, filtered by ``area = 'NN'``), with its faults and attempts keyed by page position
alone (``(position, attempt)``) as ``tests/test_fetch.py`` and ``tests/test_fetch_integrity.py``
write them; :func:`running_server` runs it. It was once a second fake server of its own in
``tests/test_fetch.py``.
"""

from __future__ import annotations

import bisect
import contextlib
import gzip
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_REQUESTS = 200  # the server answers 410 Gone after this many: no loop can run away
SERVER_LIFETIME = 60.0  # seconds; the server shuts itself down after this
#: Environment of a command-line run that goes straight to 127.0.0.1 (``CliRunner(env=...)``:
#: ``None`` removes a variable), whatever proxy the machine sets.
DIRECT_ENV = {
    **dict.fromkeys(("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy")),
    "no_proxy": "*",
}


def by_key(records: list[dict], key: str) -> list[dict]:
    """Records in the order of ``key``, as the client pages and writes them."""
    return sorted(records, key=lambda r: r[key])


#: ``$where`` of a keyset page: an optional filter in parentheses, then ``<field> > '<cursor>'``.
KEYSET = re.compile(r"^(?:\((?P<filter>.+)\) AND )?(?P<field>\w+) > '(?P<cursor>(?:[^']|'')*)'$")
RESOURCE_PATH = re.compile(r"^/resource/(?P<id>[a-z0-9]{4}-[a-z0-9]{4})\.json$")
#: Paths under this prefix are answered with a same-origin redirect to the path without it.
OLD_PREFIX = "/old"
#: Seconds between two bytes of a dribbled answer, and how long the dribbling lasts at most.
DRIBBLE_INTERVAL = 0.1
DRIBBLE_FOR = 8.0
#: Faults that attack the client rather than the paging: ``dribble`` sends the headers, then the
#: body a byte at a time; ``dribble-head`` the status line, then the headers a byte at a time;
#: ``bomb`` sends :attr:`FakePortal.bomb`; ``retry-later`` is a 429 asking to wait 100,000 s.
HOSTILE = ("dribble", "dribble-head", "bomb", "retry-later")
#: Faults of a flaky network or a busy server: ``503`` (``Retry-After: 0``), ``503-plain`` (no
#: ``Retry-After``), ``429`` (``Retry-After: 7``), ``404``, ``html`` (a maintenance page with
#: status 200), ``reset`` (the connection reset), ``slow`` (an answer after 3 s, beyond the
#: client's time-out), ``garbage`` (a complete answer that is not complete JSON), ``truncated``
#: (half the announced body).
TRANSPORT = ("503", "503-plain", "429", "404", "html", "reset", "slow", "garbage", "truncated")

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Site Maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1></body></html>"
)


@dataclass
class Resource:
    """One data set of the portal: its rows and the unique text field they are keyed by.

    ``filters`` maps each ``$where`` filter the resource understands, as the client sends it, to
    the test a row must pass; any other filter is a protocol violation. ``inserts`` maps a request
    number (from 0, over all requests to the portal) to rows added to the resource just before
    that request is answered, as a data set updated mid-download.
    """

    key_field: str
    records: list[dict]
    filters: Mapping[str, Callable[[dict], bool]] = field(default_factory=dict)
    inserts: dict[int, list[dict]] = field(default_factory=dict)

    def rows(self, where: str | None = None) -> list[dict]:
        """The rows passing the filter ``where`` (all without one), in key order."""
        keep = self.filters[where] if where is not None else None
        return by_key([r for r in self.records if keep is None or keep(r)], self.key_field)


class AreaFilters(Mapping):
    """The ``$where`` filters ``area = 'NN'`` of any area code, as a :attr:`Resource.filters`."""

    PATTERN = re.compile(r"^area = '(?P<area>[0-9]+)'$")

    def __getitem__(self, where: str) -> Callable[[dict], bool]:
        match = self.PATTERN.match(where) if isinstance(where, str) else None
        if match is None:
            raise KeyError(where)
        area = match["area"]
        return lambda row: row.get("area") == area

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class FakePortal(ThreadingHTTPServer):
    """A Socrata-like portal serving several resources, each paged on its own key.

    ``faults`` maps ``(socrata id, position, attempt)`` to a failure, where ``position`` is
    ``"count"`` or the number of rows (in key order) before a page's first row, and ``attempt``
    counts the requests for that resource and position from 0; a file of :attr:`files` is
    failed by ``(path, attempt)``. :attr:`attempts` counts the requests by the same keys
    (:meth:`attempt_key`), and each :attr:`log` entry carries its ``key`` (a redirect's entry
    has none).
    """

    daemon_threads = True

    def __init__(self, resources: dict[str, Resource], *, max_requests: int = MAX_REQUESTS) -> None:
        super().__init__(("127.0.0.1", 0), PortalHandler)
        self.resources = resources
        self.max_requests = max_requests
        self.faults: dict[tuple, str] = {}
        self.attempts: Counter = Counter()
        self.violations: list[str] = []
        self.log: list[dict] = []
        self.lock = threading.Lock()
        #: ``http://host:port`` every request is redirected to (302), when set.
        self.moved_to: str | None = None
        #: The ``Content-Encoding`` and body of the ``bomb`` fault.
        self.bomb: tuple[str, bytes] = ("identity", b"[]")
        #: Static files served at their path (``/layers/divisions``), whatever the query.
        self.files: dict[str, bytes] = {}
        #: Set when the portal stops, ending the wait of a ``slow`` answer.
        self.stopping = threading.Event()

    def attempt_key(self, socrata_id: str, position: object) -> object:
        """What :attr:`attempts` counts a request to a resource by (the faults' key, less the
        attempt)."""
        return (socrata_id, position)

    def fault_for(self, key: object, attempt: int) -> str | None:
        """The fault chosen for the ``attempt``-th request with this :meth:`attempt_key`."""
        index = (*key, attempt) if isinstance(key, tuple) else (key, attempt)
        return self.faults.get(index)

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def root(self) -> str:
        """The portal root, ending in ``/resource/``."""
        return f"{self.origin}/resource/"

    @property
    def template(self) -> str:
        """The resource URL template, with ``{id}`` for the Socrata id."""
        return self.root + "{id}.json"

    def url(self, socrata_id: str) -> str:
        return f"{self.root}{socrata_id}.json"

    def requests_of(self, socrata_id: str) -> list[dict]:
        return [entry for entry in self.log if entry["resource"] == socrata_id]

    def page_queries(self, socrata_id: str, start: int = 0) -> list[dict]:
        """The query of each page request to a resource (retries included), from log ``start``."""
        return [
            e["query"]
            for e in self.log[start:]
            if e["resource"] == socrata_id and e["position"] != "count"
        ]

    def handle_error(self, request, client_address) -> None:  # noqa: D102
        pass


def keyset_problem(resource: Resource, query: dict[str, str]) -> tuple[str, str | None, str | None]:
    """Why a request breaks keyset paging on the resource's key (``""``: it does not).

    Returns
    -------
    tuple
        The problem, the cursor (``None`` on a first page or a count) and the filter, if any.
    """
    cursor = row_filter = None
    where = query.get("$where")
    if where in resource.filters:
        row_filter = where
    elif where is not None:
        keyset = KEYSET.match(where)
        if keyset is None or (
            keyset["filter"] is not None and keyset["filter"] not in resource.filters
        ):
            return f"unexpected $where: {where}", None, None
        if keyset["field"] != resource.key_field:
            return f"cursor on {keyset['field']}, not on {resource.key_field}: {where}", None, None
        cursor = keyset["cursor"].replace("''", "'")
        row_filter = keyset["filter"]
    if query.get("$select") == "count(*)":
        return ("" if cursor is None else f"a count after a cursor: {query}"), None, row_filter
    if query.get("$order") != resource.key_field or "$offset" in query or "$limit" not in query:
        return f"not a keyset page request on {resource.key_field}: {query}", None, None
    return "", cursor, row_filter


class PortalHandler(BaseHTTPRequestHandler):
    server: FakePortal

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        server = self.server
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        token = self.headers.get("X-App-Token")
        if server.moved_to is not None or url.path.startswith(OLD_PREFIX + "/"):
            with server.lock:
                server.log.append({"resource": None, "position": "redirect", "token": token})
            if server.moved_to is not None:
                return self._redirect(302, server.moved_to + self.path)
            return self._redirect(301, self.path[len(OLD_PREFIX) :])
        path = RESOURCE_PATH.match(url.path)
        socrata_id = path["id"] if path else url.path
        is_file = url.path in server.files
        resource = None if is_file else server.resources.get(socrata_id)
        with server.lock:
            number = len(server.log)
            for each in server.resources.values():  # rows published mid-download
                if number in each.inserts:
                    each.records = [*each.records, *each.inserts[number]]
            entry = {
                "resource": None if is_file else socrata_id,
                "position": None,
                "key": None,
                "cursor": None,
                "query": query,
                "token": token,
                "fault": None,
            }
            server.log.append(entry)
            problem, cursor, row_filter = (
                ("", None, None) if resource is None else keyset_problem(resource, query)
            )
            if problem:
                server.violations.append(problem)
            rows: list[dict] = []
            position: object = None
            key: object = url.path if is_file else None
            if resource is not None and not problem:
                rows = resource.rows(row_filter)
                if query.get("$select") == "count(*)":
                    position = "count"
                else:
                    keys = [r[resource.key_field] for r in rows]
                    position = 0 if cursor is None else bisect.bisect_right(keys, cursor)
                key = server.attempt_key(socrata_id, position)
            fault = None
            if key is not None:
                attempt = server.attempts[key]
                server.attempts[key] += 1
                fault = server.fault_for(key, attempt)
            entry.update(position=position, key=key, cursor=cursor, fault=fault)
        if resource is None and not is_file:
            return self._send(404, b'{"error": true, "message": "no such data set"}')
        if problem:
            return self._send(400, json.dumps({"message": problem}).encode())
        if number >= server.max_requests:
            return self._send(410, b'{"message": "request budget exhausted"}')
        if fault in HOSTILE:
            return self._attack(fault)
        if fault in TRANSPORT and fault not in ("slow", "garbage", "truncated"):
            return self._fail(fault)
        if fault == "slow":
            server.stopping.wait(3.0)  # well beyond the client's time-out
        if is_file:
            body = server.files[url.path]
        elif position == "count":
            body = json.dumps([{"count": str(len(rows))}]).encode()
        else:
            assert isinstance(position, int) and resource is not None
            body = json.dumps(self._page(resource, rows, position, query, fault)).encode()
        if fault == "garbage":
            body = body[: len(body) // 3]  # complete response, but not complete JSON
        try:
            return self._send(200, body, truncate=fault == "truncated")
        except OSError:  # the client gave up (slow answer)
            return None

    @staticmethod
    def _page(
        resource: Resource, rows: list[dict], position: int, query: dict[str, str], fault
    ) -> list[dict]:
        """The rows of the page starting at ``position``, as the ``fault`` spoils them."""
        limit = int(query["$limit"])
        page = rows[position : position + limit]
        if fault == "repeat":  # the page before once more, as a stale cache would serve it
            page = rows[max(0, position - limit) : position]
        elif fault == "overlap":  # starts 100 rows early, as after a shift of offsets
            page = rows[max(0, position - 100) : max(0, position - 100) + limit]
        elif fault == "short":  # half a page, though more rows follow
            page = page[: limit // 2]
        elif fault == "repeat-row":  # the tenth row twice; the page stays full
            page = [*page[:10], page[9], *page[10 : limit - 1]]
        elif fault == "omit":  # one row silently missing
            page = page[:9] + page[10:]
        elif fault == "collate":  # ordered as a locale collation would, ignoring "_"
            page = sorted(page, key=lambda r: r[resource.key_field].replace("_", ""))
        elif fault == "unordered":  # the page backwards
            page = page[::-1]
        elif fault in ("no-key", "no-id"):  # the 4th (no-key) or 37th (no-id) row keyless
            page = [dict(r) for r in page]
            del page[3 if fault == "no-key" else 36][resource.key_field]
        return page

    def _fail(self, fault: str) -> None:
        """Answer as a flaky network or a busy server would (:data:`TRANSPORT`)."""
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
        assert fault == "reset", fault
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
        return None

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
        self._send_raw(status, body, headers, truncate=truncate)

    def _send_raw(
        self, status: int, body: bytes, headers: dict[str, str], *, truncate: bool = False
    ) -> None:
        """Send ``body`` (only its first half, though all of it is announced, if ``truncate``)."""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if truncate else body)
        self.close_connection = True

    def _redirect(self, status: int, location: str) -> None:
        self._send_raw(status, b"", {"Location": location})

    def _attack(self, fault: str) -> None:
        """Answer as a hostile server (:data:`HOSTILE`)."""
        if fault == "retry-later":
            return self._send(429, b'{"message": "come back tomorrow"}', {"Retry-After": "100000"})
        if fault == "bomb":
            encoding, body = self.server.bomb
            return self._send_raw(
                200, body, {"Content-Type": "application/json", "Content-Encoding": encoding}
            )
        body = b"[" + b" " * 100_000 + b"]"  # valid JSON, if it ever arrived
        if fault == "dribble":  # the headers at once, announcing the whole body
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            trickle = body
        else:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            trickle = b"X-Padding: " + b"x" * 100_000 + b"\r\n\r\n" + body
        self.close_connection = True
        stop = time.monotonic() + DRIBBLE_FOR
        for byte in trickle:
            if time.monotonic() > stop:
                return None
            try:
                self.wfile.write(bytes([byte]))
            except OSError:  # the client hung up
                return None
            time.sleep(DRIBBLE_INTERVAL)
        return None


@contextlib.contextmanager
def running_portal(
    resources: dict[str, Resource],
    *,
    max_requests: int = MAX_REQUESTS,
    lifetime: float = SERVER_LIFETIME,
) -> Iterator[FakePortal]:
    """A :class:`FakePortal` on 127.0.0.1 that stops after the block or ``lifetime`` seconds.

    Parameters
    ----------
    resources
        The data sets served, by Socrata id.
    max_requests
        Requests answered before every further one gets 410 Gone.
    lifetime
        Seconds after which the server shuts itself down, whatever the block is doing.
    """
    with _serving(FakePortal(resources, max_requests=max_requests), lifetime) as httpd:
        yield httpd


@contextlib.contextmanager
def _serving(httpd: FakePortal, lifetime: float) -> Iterator[FakePortal]:
    """Serve ``httpd`` on a thread until the block ends or ``lifetime`` seconds have passed."""
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    timer = threading.Timer(lifetime, httpd.shutdown)
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


# --- the one legacy LAPD resource -----------------------------------------------------------------

#: The legacy LAPD crime data set (2020 to present) on the city's portal.
LAPD_ID = "2nrs-mtv8"


class LapdApi(FakePortal):
    """The portal serving only the legacy LAPD resource: keyset pages in ``dr_no`` order,
    ``$where=[(area = 'NN') AND ]dr_no > '<id>'``, and :attr:`files`.

    Faults and attempts are keyed by position alone: ``faults`` maps ``(position, attempt)``
    (``position`` a page position or ``"count"``) or ``(file path, attempt)`` to a failure; each
    :attr:`log` entry's ``key`` is that position or path. ``inserts`` maps a request number to
    records added to the data set just before that request is answered.
    """

    def __init__(self, records: list[dict], *, max_requests: int = MAX_REQUESTS) -> None:
        resource = Resource("dr_no", list(records), AreaFilters())
        super().__init__({LAPD_ID: resource}, max_requests=max_requests)

    def attempt_key(self, socrata_id: str, position: object) -> object:  # noqa: D102
        return position

    @property
    def resource(self) -> Resource:
        return self.resources[LAPD_ID]

    @property
    def records(self) -> list[dict]:
        """The data set served (assign to publish a new version)."""
        return self.resource.records

    @records.setter
    def records(self, rows: list[dict]) -> None:
        self.resource.records = list(rows)

    @property
    def inserts(self) -> dict[int, list[dict]]:
        return self.resource.inserts

    @inserts.setter
    def inserts(self, inserts: dict[int, list[dict]]) -> None:
        self.resource.inserts = inserts

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.origin

    @property
    def api_url(self) -> str:
        """The resource URL, ``.../resource/2nrs-mtv8.json``."""
        return self.url(LAPD_ID)

    def offsets(self, start: int = 0) -> list[int]:
        """Page positions requested (retries included), from log entry ``start`` on."""
        return [e["key"] for e in self.log[start:] if isinstance(e.get("key"), int)]

    def cursors(self, start: int = 0) -> list[str | None]:
        """The ``dr_no`` each page request started after (``None``: the first page)."""
        return [e["cursor"] for e in self.log[start:] if isinstance(e.get("key"), int)]


@contextlib.contextmanager
def running_server(records: list[dict], *, lifetime: float = SERVER_LIFETIME) -> Iterator[LapdApi]:
    """A :class:`LapdApi` on 127.0.0.1 serving ``records``, stopped as :func:`running_portal`
    stops its portal."""
    with _serving(LapdApi(records), lifetime) as httpd:
        yield httpd
