"""Bounds on one HTTP exchange: where a redirect may lead, how long an answer may take, how big.

A server (or whatever answers in its name) must not be able to make a download leak its
credentials, hang, or exhaust memory. :class:`geo_crime.net.http.Retrier` puts every request through
these bounds:

* **Redirects stay on the origin.** A redirect to another origin (scheme, host or port) is
  refused with one :class:`~geo_crime.core.errors.FetchError` naming both origins, before anything
  is sent there: the ``X-App-Token`` header goes only to the server asked, and no other host's rows
  are written as the portal's (as ``curl`` without ``--location-trusted``). A redirect on the same
  origin is followed with the same headers.
* **A deadline for the whole answer.** Each request gets a deadline (``timeout`` seconds from its
  start) that covers connecting, redirects, the status line, the headers and the whole body.
  Every read from the socket may wait only for what is left of it (and at most
  :data:`IDLE_TIMEOUT`), so a server sending a byte now and then ("slow loris") cannot hold a
  request longer: :class:`DeadlineError` (a :class:`TimeoutError`, so retried like one).
* **A cap on the body.** :func:`read_body` reads a body in chunks and inflates ``gzip`` or
  ``deflate`` as it goes, refusing (:class:`~geo_crime.core.errors.FetchError`, naming the URL and
  the cap) as soon as the decoded bytes pass ``limit``: a small compressed page that would inflate
  to gigabytes ("zip bomb") costs at most the cap in memory.

:func:`bounded_opener` adds the handlers that enforce the first two to a :mod:`urllib` opener.
"""

from __future__ import annotations

import http.client
import io
import time
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from email.message import Message

from geo_crime.core.errors import FetchError

#: Seconds one request may take in all, body included, unless the caller says otherwise.
DEFAULT_TIMEOUT = 300.0

#: Seconds a single wait for the server (connecting, one read) may last at most.
IDLE_TIMEOUT = 60.0

#: Bytes a response body may hold once decoded (gzip or deflate inflated), unless set otherwise.
DEFAULT_MAX_BODY_BYTES = 256 * 2**20

#: Seconds of ``Retry-After`` the retries wait at most; a server asking for longer is refused.
DEFAULT_MAX_RETRY_AFTER = 120.0

#: Bytes asked of the socket per read of a body.
CHUNK = 1 << 20

#: ``wbits`` of :func:`zlib.decompressobj` for each supported ``Content-Encoding``.
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> str:
    """The origin of ``url``: ``scheme://host:port``, lower case, default port made explicit.

    Examples
    --------
    >>> origin("https://Data.LACity.org/resource/2nrs-mtv8.json?$limit=5")
    'https://data.lacity.org:443'
    >>> origin("http://127.0.0.1:8080/x")
    'http://127.0.0.1:8080'
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is no number: compare the text as written
        return f"{scheme}://{parts.netloc.lower()}"
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


# --- deadline -------------------------------------------------------------------------------------


class DeadlineError(TimeoutError):
    """The whole answer (headers and body) did not arrive within the request's deadline."""


@dataclass
class Deadline:
    """When a request must be over, and how long it was given (for messages)."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def left(self) -> float:
        return self.at - time.monotonic()

    def exceeded(self, received: int) -> DeadlineError:
        return DeadlineError(
            f"no complete answer within the {self.seconds:g} s time-out for the whole response "
            f"({received:,} bytes received)"
        )


class _DeadlineReader(io.RawIOBase):
    """Socket reads that end at a deadline: each waits only for what is left of it."""

    def __init__(self, raw: io.RawIOBase, sock, deadline: Deadline) -> None:
        super().__init__()
        self.raw = raw
        self.sock = sock
        self.deadline = deadline
        self.idle = sock.gettimeout()
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        left = self.deadline.left()
        if left <= 0:
            raise self.deadline.exceeded(self.received)
        self.sock.settimeout(left if self.idle is None else min(self.idle, left))
        try:
            count = self.raw.readinto(buffer)
        except TimeoutError:
            if self.deadline.left() <= 0:
                raise self.deadline.exceeded(self.received) from None
            raise
        self.received += count or 0
        return count

    def close(self) -> None:
        self.raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """A response whose status line, headers and body are all read before the deadline."""

    def __init__(self, sock, *args, deadline: Deadline, **kwargs) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock, deadline))


class _DeadlineMixin:
    """An :mod:`http.client` connection whose responses are read under a :class:`Deadline`."""

    def __init__(self, *args, deadline: Deadline, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def response_class(self, sock, *args, **kwargs) -> _DeadlineResponse:
        return _DeadlineResponse(sock, *args, deadline=self.deadline, **kwargs)


class _DeadlineHTTPConnection(_DeadlineMixin, http.client.HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineMixin, http.client.HTTPSConnection):
    pass


class _DeadlineOpener:
    """Opens requests that carry a deadline with :attr:`connection`, before the opener's own
    handler of their scheme (which opens the others)."""

    handler_order = 400
    connection: type[http.client.HTTPConnection]

    def open_with_deadline(self, req: urllib.request.Request):
        deadline = getattr(req, "deadline", None)
        if deadline is None:
            return None
        return self.do_open(self.connection, req, deadline=deadline)


class _DeadlineHTTPHandler(_DeadlineOpener, urllib.request.HTTPHandler):
    connection = _DeadlineHTTPConnection
    http_open = _DeadlineOpener.open_with_deadline


class _DeadlineHTTPSHandler(_DeadlineOpener, urllib.request.HTTPSHandler):
    """``https`` with the default TLS context."""

    connection = _DeadlineHTTPSConnection
    https_open = _DeadlineOpener.open_with_deadline


# --- redirects ------------------------------------------------------------------------------------


class _SameOriginRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects on the same origin only (before the opener's own redirect handler)."""

    handler_order = 400

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        here, there = origin(req.full_url), origin(newurl)
        if here != there:
            fp.close()
            raise FetchError(
                f"{req.full_url}: HTTP {code} redirect from {here} to another origin, {there} "
                f"({newurl}); refused, so that no header (the app token) is sent there and no "
                f"data from there is taken for {here}'s. If it is trusted, give its address"
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.deadline = getattr(req, "deadline", None)
        return new


_HANDLERS = (_SameOriginRedirectHandler, _DeadlineHTTPHandler, _DeadlineHTTPSHandler)


def bounded_opener(
    opener: urllib.request.OpenerDirector | None = None,
) -> urllib.request.OpenerDirector:
    """``opener`` (urllib's default one when ``None``) with the redirect and deadline handlers.

    The handlers are added once and go before the opener's own ``http``, ``https`` and redirect
    handlers; its proxy handler still applies. A request is held to a deadline when it has a
    ``deadline`` attribute (a :class:`Deadline`), as :class:`geo_crime.net.http.Retrier` gives it.
    """
    opener = opener or urllib.request.build_opener()
    present = {type(handler) for handler in opener.handlers}
    for handler in _HANDLERS:
        if handler not in present:
            opener.add_handler(handler())
    return opener


# --- body -----------------------------------------------------------------------------------------


class _Inflater:
    """Decodes a body as it arrives (``gzip``, ``deflate`` or none), at most ``limit`` bytes."""

    def __init__(self, encoding: str, limit: int, url: str) -> None:
        self.encoding = encoding
        self.limit = limit
        self.url = url
        self.wbits = _WBITS.get(encoding)
        self.decoder = zlib.decompressobj(self.wbits) if self.wbits else None
        self.parts: list[bytes] = []
        self.size = 0
        self.received = 0

    def feed(self, data: bytes) -> None:
        """Decode ``data``, at most :data:`CHUNK` bytes of output at a time (memory: the cap)."""
        self.received += len(data)
        more = True
        while more:
            room = min(CHUNK, self.limit - self.size + 1)
            if self.decoder is None:
                out, data = data[:room], data[room:]
            else:
                if self.decoder.eof and data:  # a further gzip member
                    self.decoder = zlib.decompressobj(self.wbits)
                out = self.decoder.decompress(data, room)
                left = self.decoder.unused_data if self.decoder.eof else None
                data = self.decoder.unconsumed_tail if left is None else left
            self.size += len(out)
            if self.size > self.limit:
                raise self.too_large()
            self.parts.append(out)
            more = bool(data) or len(out) == room  # input left, or output pending in zlib

    def too_large(self) -> FetchError:
        how = f"inflates ({self.encoding}) to" if self.decoder else "holds"
        return FetchError(
            f"{self.url}: the answer {how} more than the cap of {self.limit:,} bytes "
            f"({self.limit / 2**20:.4g} MiB; {self.received:,} bytes received); refused. Ask for "
            "smaller pages, or raise the cap (max_page_bytes) if the server is trusted"
        )

    def result(self) -> bytes:
        if self.decoder is not None:
            tail = self.decoder.flush()
            self.size += len(tail)
            if self.size > self.limit:
                raise self.too_large()
            self.parts.append(tail)
        return b"".join(self.parts)


def decode(data: bytes, headers: Message, *, limit: int, url: str) -> bytes:
    """``data`` decoded as its ``Content-Encoding`` says, refused beyond ``limit`` bytes.

    Raises
    ------
    FetchError
        The decoded body would pass ``limit``.
    zlib.error
        The compressed stream is corrupt.
    """
    inflater = _inflater(headers, limit, url)
    inflater.feed(data)
    return inflater.result()


def _inflater(headers: Message, limit: int, url: str) -> _Inflater:
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", *_WBITS):
        raise zlib.error(f"unsupported Content-Encoding {encoding!r}")
    return _Inflater(encoding if encoding != "identity" else "", limit, url)


def read_body(response: http.client.HTTPResponse, *, limit: int, url: str) -> bytes:
    """The whole body of ``response``, decoded, read and inflated in chunks up to ``limit`` bytes.

    Raises
    ------
    FetchError
        The decoded body passes ``limit`` (nothing more is read).
    http.client.IncompleteRead
        The connection closed before the ``Content-Length`` bytes arrived.
    zlib.error
        The compressed stream is corrupt, cut short or in an unsupported encoding.
    """
    inflater = _inflater(response.headers, limit, url)
    while chunk := response.read(CHUNK):
        inflater.feed(chunk)
    missing = getattr(response, "length", None)  # None: no Content-Length, or not HTTP
    if missing:  # closed early: fewer bytes than Content-Length
        raise http.client.IncompleteRead(b"", missing)
    if inflater.decoder is not None and not inflater.decoder.eof:
        raise zlib.error(f"the {inflater.encoding} stream is cut short")
    return inflater.result()
