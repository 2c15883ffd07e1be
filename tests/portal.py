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

Used as::

    with running_portal({"k7nn-b2ep": Resource("uniquenibrno", rows)}) as portal:
        fetch_incidents(dest, dataset="nibrs", base_url=portal.url("k7nn-b2ep"), ...)
    assert portal.violations == []
"""

from __future__ import annotations

import bisect
import contextlib
import gzip
import json
import re
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


@dataclass
class Resource:
    """One data set of the portal: its rows and the unique text field they are keyed by.

    ``filters`` maps each ``$where`` filter the resource understands, as the client sends it, to
    the test a row must pass; any other filter is a protocol violation.
    """

    key_field: str
    records: list[dict]
    filters: Mapping[str, Callable[[dict], bool]] = field(default_factory=dict)

    def rows(self, where: str | None = None) -> list[dict]:
        """The rows passing the filter ``where`` (all without one), in key order."""
        keep = self.filters[where] if where is not None else None
        return by_key([r for r in self.records if keep is None or keep(r)], self.key_field)


class FakePortal(ThreadingHTTPServer):
    """A Socrata-like portal serving several resources, each paged on its own key.

    ``faults`` maps ``(socrata id, position, attempt)`` to a failure, where ``position`` is
    ``"count"`` or the number of rows (in key order) before a page's first row, and ``attempt``
    counts the requests for that resource and position from 0.
    """

    daemon_threads = True

    def __init__(self, resources: dict[str, Resource], *, max_requests: int = MAX_REQUESTS) -> None:
        super().__init__(("127.0.0.1", 0), PortalHandler)
        self.resources = resources
        self.max_requests = max_requests
        self.faults: dict[tuple[str, object, int], str] = {}
        self.attempts: Counter = Counter()
        self.violations: list[str] = []
        self.log: list[dict] = []
        self.lock = threading.Lock()
        #: ``http://host:port`` every request is redirected to (302), when set.
        self.moved_to: str | None = None
        #: The ``Content-Encoding`` and body of the ``bomb`` fault.
        self.bomb: tuple[str, bytes] = ("identity", b"[]")

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
        if keyset is None or keyset["filter"] not in (None, *resource.filters):
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
        resource = server.resources.get(socrata_id)
        with server.lock:
            number = len(server.log)
            entry = {
                "resource": socrata_id,
                "position": None,
                "cursor": None,
                "query": query,
                "token": token,
            }
            server.log.append(entry)
            problem, cursor, row_filter = (
                ("", None, None) if resource is None else keyset_problem(resource, query)
            )
            if problem:
                server.violations.append(problem)
        if resource is None:
            return self._send(404, b'{"error": true, "message": "no such data set"}')
        if problem:
            return self._send(400, json.dumps({"message": problem}).encode())
        with server.lock:
            rows = resource.rows(row_filter)
            if query.get("$select") == "count(*)":
                position: object = "count"
            else:
                keys = [r[resource.key_field] for r in rows]
                position = 0 if cursor is None else bisect.bisect_right(keys, cursor)
            attempt = server.attempts[socrata_id, position]
            server.attempts[socrata_id, position] += 1
            fault = server.faults.get((socrata_id, position, attempt))
            entry.update(position=position, cursor=cursor, fault=fault)
        if number >= server.max_requests:
            return self._send(410, b'{"message": "request budget exhausted"}')
        if fault in HOSTILE:
            return self._attack(fault)
        if position == "count":
            return self._send(200, json.dumps([{"count": str(len(rows))}]).encode())
        assert isinstance(position, int)
        limit = int(query["$limit"])
        page = rows[position : position + limit]
        if fault == "repeat":  # the page before once more, as a stale cache would serve it
            page = rows[max(0, position - limit) : position]
        elif fault == "repeat-row":  # the tenth row twice; the page stays full
            page = [*page[:10], page[9], *page[10 : limit - 1]]
        elif fault == "omit":  # one row silently missing
            page = page[:9] + page[10:]
        elif fault == "collate":  # ordered as a locale collation would, ignoring "_"
            page = sorted(page, key=lambda r: r[resource.key_field].replace("_", ""))
        elif fault == "no-key":
            page = [dict(r) for r in page]
            del page[3][resource.key_field]
        return self._send(200, json.dumps(page).encode())

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json", **(headers or {})}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        self._send_raw(status, body, headers)

    def _send_raw(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
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
    httpd = FakePortal(resources, max_requests=max_requests)
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
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
