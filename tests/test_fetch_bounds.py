"""A hostile server cannot make ``geo_crime.net.fetch`` leak its token, hang, or exhaust memory.

Each test runs the loopback Socrata portal of ``tests/fakes/portal.py`` (127.0.0.1, port 0,
real LAPD rows) and makes it attack the client one way:

* a 302 to a second portal on another port (another origin): refused before anything is sent
  there, so the token never arrives and no other host's rows are written as the portal's; a 301
  on the same origin is still followed, token included;
* a "slow loris" answer, one byte every 0.1 s, which a socket time-out alone never ends: cut at
  the request's deadline (``timeout``, also ``geo-crime fetch --timeout``);
* a gzip (or deflate) "bomb", 0.3 MB inflating to 300 MiB: refused at the page cap, memory
  bounded by the cap (measured with ``tracemalloc``);
* ``Retry-After: 100000``: refused at once, without waiting, above the ``max_retry_after`` cap.
"""

from __future__ import annotations

import json
import time
import tracemalloc
import zlib

import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.core.errors import FetchError
from geo_crime.net.fetch import fetch_incidents
from geo_crime.net.partial import partial_dir
from geo_crime.units import fetch_boundary
from tests.fakes.api_rows import read_ndjson, real_records
from tests.fakes.portal import DIRECT_ENV, Resource, by_key, running_portal

LEGACY_ID = "2nrs-mtv8"
ROWS = 300
PAGE = 100
TOKEN = "secret-app-token"
BOMB_BYTES = 300 * 2**20  # what the bomb inflates to
CAP = 10 * 2**20  # the page cap the bomb tests set


@pytest.fixture(scope="module")
def records() -> list[dict]:
    """The first 300 rows of the real official export, as the API serves them."""
    return real_records(ROWS)


@pytest.fixture
def portal(records):
    with running_portal({LEGACY_ID: Resource("dr_no", records)}) as httpd:
        yield httpd


def fetch(url: str, dest, opener, sleeps: list[float], **options):
    options = {
        "page_size": PAGE,
        "jitter": 0.0,
        "timeout": 5.0,
        "app_token": TOKEN,
        "progress": False,
        "opener": opener,
        "sleep": sleeps.append,
        **options,
    }
    return fetch_incidents(dest, base_url=url, **options)


def cli_error(result) -> str:
    """The one ``error:`` line of a failed command, its wrapping undone."""
    text = " ".join(result.stderr.split())
    assert text.count("error:") == 1, result.stderr
    return text[text.index("error:") :]


# --- redirects ------------------------------------------------------------------------------------


def test_a_redirect_to_another_origin_is_refused_and_the_token_never_leaves(
    portal, opener, tmp_path, records
):
    with running_portal({LEGACY_ID: Resource("dr_no", records[:50])}) as elsewhere:
        portal.moved_to = elsewhere.origin  # 127.0.0.1 too, on another port: another origin
        dest = tmp_path / "lapd.ndjson.gz"
        sleeps: list[float] = []
        with pytest.raises(FetchError) as info:
            fetch(portal.url(LEGACY_ID), dest, opener, sleeps)
        assert elsewhere.log == []  # nothing at all reached the other origin
    message = str(info.value)
    assert f"redirect from {portal.origin} to another origin, {elsewhere.origin}" in message
    assert "refused" in message and "HTTP 302" in message
    assert portal.log == [{"resource": None, "position": "redirect", "token": TOKEN}]
    assert sleeps == []  # refused at once, not retried
    assert list(tmp_path.iterdir()) == []  # no file, no partial folder


def test_the_command_line_refuses_it_with_one_error_line_and_exit_1(portal, tmp_path, records):
    with running_portal({LEGACY_ID: Resource("dr_no", records[:50])}) as elsewhere:
        portal.moved_to = elsewhere.origin
        dest = tmp_path / "lapd.ndjson.gz"
        result = CliRunner().invoke(
            app,
            ["fetch", "--out", str(dest), "--base-url", portal.url(LEGACY_ID)],
            env={**DIRECT_ENV, "GEO_CRIME_SOCRATA_TOKEN": TOKEN},
        )
        assert elsewhere.log == []
    assert result.exit_code == 1
    assert cli_error(result).startswith(
        f"error: {portal.url(LEGACY_ID)}?$select=count(*): HTTP 302 redirect from "
        f"{portal.origin} to another origin, {elsewhere.origin}"
    )
    assert not dest.exists()


def test_a_redirect_on_the_same_origin_is_followed_with_the_token(
    portal, opener, tmp_path, records
):
    moved = f"{portal.origin}/old/resource/{LEGACY_ID}.json"
    dest = tmp_path / "lapd.ndjson.gz"
    result = fetch(moved, dest, opener, [])
    assert result.rows == result.expected_rows == ROWS
    assert read_ndjson(dest) == by_key(records, "dr_no")
    # count, three full pages, the empty page, count: each one redirected, then answered
    positions = [entry["position"] for entry in portal.log]
    assert positions[::2] == ["redirect"] * 6
    assert positions[1::2] == ["count", 0, 100, 200, 300, "count"]
    assert [entry["token"] for entry in portal.log] == [TOKEN] * 12


def test_a_boundary_layer_redirected_to_another_origin_is_refused(portal, tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "*")  # the boundary download uses urllib's default opener
    with running_portal({}) as elsewhere:
        portal.moved_to = elsewhere.origin
        manifest = tmp_path / "manifest.json"
        layer = {"url": f"{portal.origin}/layers/divisions", "filename": "divisions.geojson"}
        manifest.write_text(json.dumps({"layers": {"divisions": layer}}))
        with pytest.raises(FetchError, match=f"to another origin, {elsewhere.origin}"):
            fetch_boundary("divisions", cache_dir=tmp_path / "cache", manifest=manifest)
        assert elsewhere.log == []
    assert list((tmp_path / "cache").iterdir()) == []


# --- deadline -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["dribble", "dribble-head"])
def test_a_slow_loris_answer_is_cut_at_the_deadline(portal, opener, tmp_path, fault):
    portal.faults = {(LEGACY_ID, "count", n): fault for n in range(2)}
    dest = tmp_path / "lapd.ndjson.gz"
    sleeps: list[float] = []
    start = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch(portal.url(LEGACY_ID), dest, opener, sleeps, timeout=1.0, max_retries=1)
    elapsed = time.monotonic() - start
    # two attempts of one second each, though a byte came every 0.1 s: no wait ever timed out
    assert 2.0 <= elapsed < 3.0, elapsed
    message = str(info.value)
    assert "giving up after 2 attempts; last error: no complete answer within the 1 s " in message
    assert "time-out for the whole response" in message
    received = int(message.split("(")[-1].split(" bytes received")[0].replace(",", ""))
    assert 0 < received < 300  # the status line, some headers, ten dribbled bytes at most
    assert sleeps == [1.0]
    assert not dest.exists()


def test_the_fetch_command_sets_the_deadline_with_timeout(portal, tmp_path, records):
    portal.faults = {(LEGACY_ID, 0, 0): "dribble"}  # the first page, once
    dest = tmp_path / "lapd.ndjson.gz"
    start = time.monotonic()
    result = CliRunner().invoke(
        app,
        ["fetch", "--out", str(dest), "--base-url", portal.url(LEGACY_ID), "--timeout", "1"],
        env=DIRECT_ENV,
    )
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    # one second lost to the dribbled page, about one more waiting before its retry
    assert 2.0 <= elapsed < 5.0, elapsed
    output = " ".join(result.output.split())
    assert "no complete answer within the 1 s time-out for the whole response" in output
    assert "retry 1 of 5" in output
    assert read_ndjson(dest) == by_key(records, "dr_no")
    assert not partial_dir(dest).exists()


# --- decompressed size ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """A JSON array of 300 MiB of spaces, gzip and deflate compressed (about 0.3 MB each)."""
    out = {}
    for encoding, wbits in (("gzip", 31), ("deflate", 15)):
        packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
        spaces = b" " * 2**20
        parts = [packer.compress(b"[")]
        parts += [packer.compress(spaces) for _ in range(BOMB_BYTES // len(spaces))]
        parts += [packer.compress(b"]"), packer.flush()]
        out[encoding] = b"".join(parts)
    return out


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_refused_at_the_cap_in_bounded_memory(
    portal, opener, tmp_path, bombs, encoding
):
    bomb = bombs[encoding]
    assert len(bomb) < 2**20  # 0.3 MB on the wire
    portal.bomb = (encoding, bomb)
    portal.faults = {(LEGACY_ID, "count", n): "bomb" for n in range(3)}
    dest = tmp_path / "lapd.ndjson.gz"
    sleeps: list[float] = []
    tracemalloc.start()
    try:
        with pytest.raises(FetchError) as info:
            fetch(portal.url(LEGACY_ID), dest, opener, sleeps, max_page_bytes=CAP)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    url = f"{portal.url(LEGACY_ID)}?$select=count(*)"
    message = str(info.value)
    assert message.startswith(
        f"{url}: the answer inflates ({encoding}) to more than the cap of 10,485,760 bytes "
        "(10 MiB; "
    )
    assert "refused" in message
    assert peak < 2 * CAP, f"peak {peak / 2**20:.0f} MiB"  # not the 300 MiB it inflates to
    assert len(portal.log) == 1 and sleeps == []  # refused, not retried
    assert not dest.exists()


# --- Retry-After ----------------------------------------------------------------------------------


def test_a_retry_after_beyond_the_cap_is_refused_without_waiting(portal, opener, tmp_path):
    portal.faults = {(LEGACY_ID, "count", n): "retry-later" for n in range(6)}
    dest = tmp_path / "lapd.ndjson.gz"
    sleeps: list[float] = []
    start = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch(portal.url(LEGACY_ID), dest, opener, sleeps)  # the default cap: 120 s
    assert time.monotonic() - start < 1.0
    assert str(info.value) == (
        f"{portal.url(LEGACY_ID)}?$select=count(*): HTTP 429 Too Many Requests: come back "
        "tomorrow; the server asks to wait 100,000 s before trying again (Retry-After), more "
        "than the 120 s cap: not waiting and not retrying. Try again later"
    )
    assert sleeps == [] and len(portal.log) == 1
    assert not dest.exists()

    sleeps.clear()
    with pytest.raises(FetchError, match=r"100,000 s .* more than the 5 s cap"):
        fetch(portal.url(LEGACY_ID), dest, opener, sleeps, max_retry_after=5.0)
    assert sleeps == []
