"""The package's one HTTP layer: GET with retries, file checksums, and trust-on-first-use records.

Used by :mod:`geo_crime.net.fetch` (the paged crime data set) and :mod:`geo_crime.units.boundaries`
(the official boundary layers); nothing else in geo_crime talks to the network.

* :class:`Retrier` runs GET requests through a :mod:`urllib` opener and retries connection
  errors, time-outs, truncated or unusable bodies (:class:`BadBodyError`) and HTTP 429 / 5xx,
  with exponential backoff (optional jitter from a seeded generator) or the delay the server asks
  for in ``Retry-After``. A ``Retry-After`` longer than the cap (``max_retry_after``, two minutes
  by default) is not waited for: the request fails at once, saying so. Any other HTTP status
  stops at once; both end in one :class:`~geo_crime.core.errors.FetchError` naming the URL and the
  fault. Retries are logged as warnings on the ``geo_crime.net.fetch`` logger, which the command
  line shows. Every attempt is held to the bounds of :mod:`geo_crime.net.bounds`: no redirect to
  another origin, a deadline for the whole answer (``timeout``), a cap on the decoded body
  (``max_body_bytes``); the body reaches the caller whole and decoded, as an :class:`Answer`.
* :func:`get_bytes` is one small response with those retries.
* :func:`sha256_file` is the checksum of a downloaded file.
* :class:`ChecksumLock` keeps the SHA-256 of each file's first download in a JSON lock file
  (trust on first use), so that a later download or a cached copy that differs is noticed.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import logging
import os
import random
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

from geo_crime.core.errors import ConfigError, DataError, FetchError
from geo_crime.core.io_utils import atomic_write_text
from geo_crime.net.bounds import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_TIMEOUT,
    IDLE_TIMEOUT,
    Deadline,
    DeadlineError,
    bounded_opener,
    decode,
    read_body,
)

#: Characters of a server's answer quoted in an error message at most.
SNIPPET = 300

#: Bytes of an HTTP error's body decoded at most (for its message).
_DETAIL_BYTES = 1 << 16

#: Name of the file (in a download folder) where first-download checksums are recorded.
LOCK_FILE = "manifest.lock.json"

T = TypeVar("T")

#: Every download is logged here: the logger ``geo-crime fetch`` shows on the terminal.
_log = logging.getLogger("geo_crime.net.fetch")


# --- retries --------------------------------------------------------------------------------------


class BadBodyError(ValueError):
    """A response arrived whole but its content is unusable (for instance truncated JSON)."""


#: Failures worth another attempt (HTTP status errors are sorted separately).
_RETRYABLE: tuple[type[BaseException], ...] = (
    urllib.error.URLError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    OSError,
    EOFError,
    zlib.error,
    BadBodyError,
)


@dataclass(frozen=True)
class Answer:
    """A whole answer: where from, its status and headers, and its body, decoded."""

    url: str
    status: int
    headers: Message
    data: bytes


@dataclass
class Retrier:
    """Runs requests with retries and counts them; one per public call.

    ``timeout`` is the deadline of each attempt, whole body included (no single wait is longer
    than ``idle_timeout`` either); ``max_body_bytes`` caps the decoded body; a ``Retry-After``
    above ``max_retry_after`` fails the request instead of being waited for. ``auth_hint`` is
    added to the message of an HTTP 401 or 403 answer (what to check). ``opener`` must have the
    handlers of :func:`~geo_crime.net.bounds.bounded_opener` (:func:`make_retrier` adds them).
    """

    max_retries: int
    backoff: float
    max_backoff: float
    jitter: float
    timeout: float
    sleep: Callable[[float], None]
    opener: urllib.request.OpenerDirector
    rng: random.Random = field(default_factory=random.Random)
    auth_hint: str = ""
    idle_timeout: float = IDLE_TIMEOUT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    requests: int = 0
    retries: int = 0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if retry_after is not None:
            return retry_after
        base = min(self.backoff * 2.0**attempt, self.max_backoff)
        if self.jitter:
            base *= 1.0 + self.jitter * self.rng.random()
        return base

    def call(
        self,
        url: str,
        headers: Mapping[str, str],
        consume: Callable[[Answer], T],
    ) -> T:
        """GET ``url`` and hand the whole answer to ``consume``, retrying transient failures.

        The body is read within the bounds (deadline, size cap) before ``consume`` sees it; an
        error while it is read (reset, time-out, truncation) or a :class:`BadBodyError` raised by
        ``consume`` is retried like a failed request. A :class:`~geo_crime.core.errors.FetchError`
        is not (a refused redirect, a body over the cap, one raised by ``consume``).
        """
        last = "no attempt made"
        longest_wait = min(self.idle_timeout, self.timeout)
        for attempt in range(self.max_retries + 1):
            retry_after = None
            self.requests += 1
            if attempt:
                self.retries += 1
            request = urllib.request.Request(url, headers=dict(headers))
            request.deadline = Deadline.after(self.timeout)
            try:
                with self.opener.open(request, timeout=longest_wait) as response:
                    data = read_body(response, limit=self.max_body_bytes, url=url)
                    answer = Answer(url, response.status, response.headers, data)
                return consume(answer)
            except urllib.error.HTTPError as exc:
                status = exc.code
                detail = _error_detail(exc)
                if status != 429 and status < 500:
                    hint = self.auth_hint if status in (401, 403) else ""
                    raise FetchError(
                        f"HTTP {status} {exc.reason} from {url}{detail}{hint}"
                    ) from None
                retry_after = parse_retry_after(exc.headers.get("Retry-After"))
                last = f"HTTP {status} {exc.reason}{detail}"
                if retry_after is not None and retry_after > self.max_retry_after:
                    raise FetchError(
                        f"{url}: {last}; the server asks to wait {retry_after:,.0f} s before "
                        f"trying again (Retry-After), more than the {self.max_retry_after:g} s "
                        "cap: not waiting and not retrying. Try again later"
                    ) from None
            except FetchError:
                raise
            except _RETRYABLE as exc:
                last = _describe(exc, longest_wait)
            if attempt < self.max_retries:
                wait = self.delay(attempt, retry_after)
                _log.warning(
                    "%s: %s; retry %d of %d in %.1f s",
                    url,
                    last,
                    attempt + 1,
                    self.max_retries,
                    wait,
                )
                self.sleep(wait)
        raise FetchError(
            f"{url}: giving up after {self.max_retries + 1} attempts; last error: {last}"
        )


def make_retrier(
    *,
    max_retries: int,
    backoff: float,
    max_backoff: float,
    jitter: float,
    seed: int | None,
    timeout: float,
    sleep: Callable[[float], None],
    opener: urllib.request.OpenerDirector | None,
    auth_hint: str = "",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
) -> Retrier:
    """A :class:`Retrier` after checking its options (:class:`ConfigError` when one is invalid).

    ``opener=None`` is urllib's default opener, which honours the proxy environment variables;
    the redirect and deadline handlers of :func:`~geo_crime.net.bounds.bounded_opener` are
    added to it (or to the opener given).
    """
    if max_retries < 0:
        raise ConfigError(f"max_retries must be 0 or more, not {max_retries}")
    if backoff < 0 or max_backoff < 0 or jitter < 0 or max_retry_after < 0:
        raise ConfigError("backoff, max_backoff, jitter and max_retry_after must not be negative")
    if timeout <= 0:
        raise ConfigError(f"timeout must be positive, not {timeout}")
    if max_body_bytes < 1:
        raise ConfigError(f"the body size cap must be at least 1 byte, not {max_body_bytes}")
    return Retrier(
        max_retries=max_retries,
        backoff=backoff,
        max_backoff=max_backoff,
        jitter=jitter,
        timeout=timeout,
        sleep=sleep,
        opener=bounded_opener(opener),
        rng=random.Random(seed),
        auth_hint=auth_hint,
        max_body_bytes=max_body_bytes,
        max_retry_after=max_retry_after,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); ``None`` if absent."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """A short text from an HTTP error body (Socrata sends JSON with a ``message``)."""
    try:
        body = exc.read(4096)
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        exc.close()
    if not body:
        return ""
    try:
        body = decode(body, exc.headers, limit=_DETAIL_BYTES, url=exc.geturl())
    except (FetchError, zlib.error):
        return ""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        message = doc.get("message") or doc.get("error")
        if isinstance(message, dict):
            message = message.get("message")
        if message:
            text = str(message)
    text = " ".join(text.split())
    return f": {text[:SNIPPET]}" if text else ""


def _describe(exc: BaseException, wait: float) -> str:
    """What went wrong in a failed attempt, in a few words (``wait``: the longest single wait)."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, DeadlineError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"no answer within {wait:g} s (time-out)"
    if isinstance(exc, http.client.IncompleteRead):
        return (
            f"body cut short after {len(exc.partial)} bytes"
            if exc.partial
            else f"body cut short ({exc.expected:,} bytes missing)"
        )
    if isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError):
        return "connection closed or reset by the server"
    if isinstance(exc, BadBodyError):
        return str(exc)[:SNIPPET]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:SNIPPET]


# --- one response ---------------------------------------------------------------------------------


def get_bytes(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = 5,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> bytes:
    """GET ``url`` and return the body, with the same retries, backoff and bounds as the downloads.

    Parameters
    ----------
    url
        What to fetch.
    timeout, max_retries, backoff, sleep
        As in :func:`geo_crime.net.fetch.fetch_incidents` (``timeout``: seconds for the whole
        answer).
    headers
        Extra request headers.
    max_bytes
        Cap of the decoded body, in bytes.

    Returns
    -------
    bytes
        The response body, decoded.

    Raises
    ------
    FetchError
        A permanent HTTP error, a redirect to another origin, a body over ``max_bytes``, or
        every attempt failed.
    """
    retrier = make_retrier(
        max_retries=max_retries,
        backoff=backoff,
        max_backoff=120.0,
        jitter=0.1,
        seed=None,
        timeout=timeout,
        sleep=sleep,
        opener=None,
        max_body_bytes=max_bytes,
    )
    request_headers = {"User-Agent": "geo_crime", **dict(headers or {})}
    return retrier.call(url, request_headers, lambda answer: answer.data)


# --- checksums ------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class ChecksumLock:
    """The SHA-256 of each file's first download, kept in ``<folder>/manifest.lock.json``.

    Trust on first use: a file without a pinned checksum is trusted the first time it is seen and
    recorded (``name`` -> ``url``, ``sha256``, ``bytes``, ``recorded_at``); every later download
    or cached copy must match the record. A record is for one URL: the same name from another URL
    needs the entry removed first.

    Parameters
    ----------
    folder
        The download folder holding the lock file.

    Raises
    ------
    DataError
        The lock file is not valid JSON.
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.records: dict[str, Any] = {}
        if self.path.exists():
            try:
                self.records = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{self.path} is corrupt ({exc}); delete it to re-record checksums"
                ) from None

    def expected(self, name: str, url: str, pinned: str | None = None) -> str | None:
        """The checksum ``name`` must have: ``pinned``, else the one recorded, else ``None``.

        Raises
        ------
        ConfigError
            The recorded checksum is for another URL.
        """
        if pinned:
            return str(pinned).lower()
        record = self.records.get(name)
        if record is None:
            return None
        if record.get("url") != url:
            raise ConfigError(
                f"{name}: the checksum recorded in {LOCK_FILE} is for {record.get('url')}, not "
                f"{url}; remove that entry to trust the new source"
            )
        return str(record["sha256"]).lower()

    def record(self, name: str, url: str, sha256: str, path: Path) -> None:
        """Record (and write at once) the checksum of ``name``'s first download at ``path``."""
        self.records[name] = {
            "url": url,
            "sha256": sha256,
            "bytes": path.stat().st_size,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        text = json.dumps(self.records, indent=2, sort_keys=True) + "\n"
        atomic_write_text(self.path, text)

    def check_cached(self, name: str, url: str, path: Path, expected: str | None) -> str:
        """The checksum of a cached file, recorded when nothing was ``expected``.

        Raises
        ------
        DataError
            The file no longer has the ``expected`` checksum.
        """
        actual = sha256_file(path)
        if expected is None:
            self.record(name, url, actual, path)
        elif actual != expected:
            raise DataError(
                f"{path}: sha256 {actual} differs from the recorded {expected}; the cached file "
                "changed. Delete it to download it again."
            )
        return actual
