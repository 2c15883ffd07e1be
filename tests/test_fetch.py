"""``geo_crime.net.fetch`` against a local Socrata-like server built from real LAPD rows.

Every test starts its own server on 127.0.0.1 (port 0), the fake portal of
``tests/fakes/portal.py`` serving the one legacy resource (:class:`tests.fakes.portal.LapdApi`),
and talks to nothing else: the opener has no proxy handler. The server answers ``count(*)`` and
keyset pages (``$order=dr_no``, ``$where=dr_no > '<id>'``, ``$limit``; a request with ``$offset``
or without the order is a protocol violation that fails the test). It fails chosen requests on
purpose (503 with and without ``Retry-After``, 429, a reset connection, a truncated body, a body
that is not JSON, an answer slower than the client's time-out, a permanent 404, and the page
faults used by ``tests/test_fetch_integrity.py``). It caps the number of requests it answers and
shuts itself down after a minute at most. Backoff delays go to a recorder instead of
``time.sleep``, so the retries cost no waiting."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pandas as pd
import pytest

from geo_crime.core import schema
from geo_crime.core.errors import FetchError
from geo_crime.ingest import read_incidents
from geo_crime.net.http import LOCK_FILE
from geo_crime.net.http import parse_retry_after as _parse_retry_after
from geo_crime.net.partial import partial_dir
from geo_crime.net.soda import TOKEN_ENV
from geo_crime.units import fetch_boundary
from tests.fakes.api_rows import (
    N_ROWS,
    PAGE,
    api_records,
    by_id,
    download_files,
    fetch,
    read_ndjson,
)
from tests.fakes.shared_data import IVANCO, crime_file, require_data

DIVISIONS = "boundaries/lapd_divisions__LAPD_Division_5922489107755548254.geojson"


# --- real rows as API records ---------------------------------------------------------------------


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
