"""``geo_crime.net.fetch`` cannot silently lose or duplicate rows: keyset pages, de-duplication,
counts.

The server is the loopback Socrata fake of ``tests/fakes/portal.py`` (:class:`LapdApi`, the one
legacy resource; 127.0.0.1, port 0, at most 200 answered requests, a one-minute lifetime; the
opener has no proxy handler), serving 2,500 real LAPD rows. Each test makes it misbehave one way
(a repeated or overlapping page, a row inserted mid-download, an HTML page with status 200,
truncated JSON, a short page, a row without ``dr_no``, a count that keeps changing) and checks
what was written: the distinct ``dr_no`` against the server's count, no duplicates, and no file
at the destination after a failure.
"""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.core.errors import FetchError
from geo_crime.net.partial import partial_dir
from tests.fakes.api_rows import (
    N_ROWS,
    PAGE,
    api_records,
    by_id,
    download_files,
    fetch,
    read_ndjson,
)
from tests.fakes.shared_data import IVANCO, crime_file


@pytest.fixture(scope="module")
def records() -> list[dict]:
    """The first 2,500 rows of the real official export as API records."""
    raw = pd.read_csv(
        crime_file(IVANCO), dtype=str, nrows=N_ROWS, keep_default_na=False, na_values=[""]
    )
    out = api_records(raw)
    assert len(out) == len({r["dr_no"] for r in out}) == N_ROWS
    return out


def ids(rows: list[dict]) -> list[str]:
    return [r["dr_no"] for r in rows]


def assert_complete(dest, expected: list[dict]) -> None:
    """``dest`` holds exactly ``expected``, each ``dr_no`` once, in ``dr_no`` order."""
    written = read_ndjson(dest)
    assert len(set(ids(written))) == len(written) == len(expected)
    assert written == by_id(expected)


def assert_nothing_written(dest) -> None:
    assert not dest.exists()
    assert not [
        p
        for p in dest.parent.iterdir()
        if p.name.startswith(f".{dest.name}.") and not p.name.endswith(".partial")
    ]  # no temporary file either


def new_id_after(records: list[dict], position: int) -> str:
    """A new ``dr_no`` that sorts right after the one at ``position`` (or a few places later)."""
    ordered = ids(by_id(records))
    for before, after in zip(
        ordered[position:], ordered[position + 1 : position + 10], strict=False
    ):
        candidate = f"{int(before) + 1:09d}"
        if before < candidate < after:
            return candidate
    raise AssertionError(f"no free dr_no after position {position}")


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "geo_crime.net.fetch"]


# --- the protocol ---------------------------------------------------------------------------------


def test_happy_path_pages_by_key_with_the_filter_and_checks_both_counts(
    server, opener, tmp_path, records, caplog
):
    caplog.set_level(logging.WARNING, logger="geo_crime.net.fetch")
    area = [r for r in records if r.get("area") == "01"]
    assert len(area) == 1_096
    dest = tmp_path / "central.ndjson.gz"
    sleeps: list[float] = []
    result = fetch(server, dest, opener, sleeps, where="area = '01'", page_size=250)

    assert_complete(dest, area)
    assert result.rows == result.expected_rows == 1_096
    assert (result.pages, result.pages_downloaded, result.requests, result.retries) == (5, 5, 7, 0)
    assert (result.duplicates, result.short_pages, result.refetches) == (0, 0, 0)
    assert sleeps == [] and warnings_of(caplog) == []

    # count, 4 full pages and a short last one (1,096 = 4 x 250 + 96), count again
    queries = [entry["query"] for entry in server.log]
    assert queries[0] == queries[-1] == {"$select": "count(*)", "$where": "area = '01'"}
    ordered = ids(by_id(area))
    assert queries[1] == {"$where": "area = '01'", "$order": "dr_no", "$limit": "250"}
    for number, query in enumerate(queries[2:-1], start=1):
        after = ordered[number * 250 - 1]  # the last id of the page before
        assert query == {
            "$where": f"(area = '01') AND dr_no > '{after}'",
            "$order": "dr_no",
            "$limit": "250",
        }
    assert server.offsets() == [0, 250, 500, 750, 1000]
    assert not partial_dir(dest).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == download_files(dest.name)


def test_resume_starts_after_the_last_id_written(server, opener, tmp_path, records):
    dest = tmp_path / "lapd.ndjson.gz"

    def crash(index: int, rows: int) -> None:
        if index == 2:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        fetch(server, dest, opener, [], on_page=crash)
    assert not dest.exists()
    ordered = ids(by_id(records))
    state = json.loads((partial_dir(dest) / "state.json").read_text())
    assert [page["last"] for page in state["pages"]] == [ordered[499], ordered[999], ordered[1499]]

    seen = len(server.log)
    result = fetch(server, dest, opener, [])
    assert server.cursors(seen) == [ordered[1499], ordered[1999], ordered[2499]]
    assert (result.pages_reused, result.pages_downloaded, result.pages) == (3, 2, 5)
    assert result.rows == result.expected_rows == N_ROWS
    assert_complete(dest, records)
    assert not partial_dir(dest).exists()


# --- duplicates -----------------------------------------------------------------------------------


def test_a_repeated_page_is_asked_again_and_written_once(server, opener, tmp_path, records, caplog):
    caplog.set_level(logging.WARNING, logger="geo_crime.net.fetch")
    server.faults = {(1000, 0): "repeat"}  # the page of rows 500-999 once more
    dest = tmp_path / "lapd.ndjson.gz"
    sleeps: list[float] = []
    result = fetch(server, dest, opener, sleeps)

    assert_complete(dest, records)
    assert result.rows == result.expected_rows == N_ROWS
    assert (result.duplicates, result.retries, result.refetches) == (PAGE, 1, 0)
    assert server.offsets() == [0, 500, 1000, 1000, 1500, 2000, 2500]
    assert sleeps == [1.0]
    (message,) = warnings_of(caplog)
    assert "the page repeats 500 rows already written" in message and "retry 1 of 5" in message


def test_a_page_that_never_moves_on_fails_after_the_retries(server, opener, tmp_path):
    server.faults = {(500, n): "repeat" for n in range(3)}  # as if $where were ignored
    dest = tmp_path / "lapd.ndjson.gz"
    with pytest.raises(FetchError) as info:
        fetch(server, dest, opener, [], max_retries=2)
    message = str(info.value)
    assert "giving up after 3 attempts" in message
    assert "the page repeats 500 rows already written" in message
    assert server.offsets() == [0, 500, 500, 500]
    assert_nothing_written(dest)
    assert sorted(p.name for p in partial_dir(dest).iterdir()) == ["page_000000.json", "state.json"]


def test_an_overlapping_page_drops_the_rows_already_written(
    server, opener, tmp_path, records, caplog
):
    caplog.set_level(logging.WARNING, logger="geo_crime.net.fetch")
    server.faults = {(1000, 0): "overlap"}  # rows 900-1399: 100 already written
    dest = tmp_path / "lapd.ndjson.gz"
    result = fetch(server, dest, opener, [])

    assert_complete(dest, records)
    assert (result.rows, result.duplicates, result.retries, result.pages) == (N_ROWS, 100, 0, 6)
    assert server.offsets() == [0, 500, 1000, 1400, 1900, 2400]
    (message,) = warnings_of(caplog)
    assert "100 duplicate rows dropped" in message


# --- the data set changing ------------------------------------------------------------------------


def test_a_row_inserted_mid_download_shifts_no_page_and_is_caught_by_the_count(
    server, opener, tmp_path, records, caplog
):
    caplog.set_level(logging.WARNING, logger="geo_crime.net.fetch")
    ordered = ids(by_id(records))
    inserted = {**by_id(records)[100], "dr_no": new_id_after(records, 100)}
    server.inserts = {3: [inserted]}  # before the third page: every later offset shifts by one
    dest = tmp_path / "lapd.ndjson.gz"
    result = fetch(server, dest, opener, [])

    # first pass: the pages follow the ids, not offsets, so nothing is repeated or skipped ...
    first_pass = server.log[:8]
    assert [e["key"] for e in first_pass] == ["count", 0, 500, 1001, 1501, 2001, 2501, "count"]
    assert [e["cursor"] for e in first_pass[2:7]] == [
        ordered[i] for i in (499, 999, 1499, 1999, 2499)
    ]
    # ... but the row landed behind the cursor; the second count tells, and all is downloaded again
    (message,) = warnings_of(caplog)
    assert (
        "the data set changed during the download: the server counted 2,500 rows before and "
        "2,501 after (2,500 distinct dr_no downloaded); downloading everything again (1 of 1)"
    ) in message
    assert_complete(dest, [*records, inserted])
    assert result.rows == result.expected_rows == N_ROWS + 1
    assert (result.refetches, result.duplicates, result.retries) == (1, 0, 0)
    assert len(server.log) == result.requests == 8 + 8
    assert not partial_dir(dest).exists()


def test_a_count_that_keeps_changing_fails_loudly_and_writes_nothing(
    server, opener, tmp_path, records
):
    first = {**records[0], "dr_no": new_id_after(records, 100)}
    second = {**records[0], "dr_no": new_id_after([*records, first], 200)}
    dest = tmp_path / "lapd.ndjson.gz"

    server.inserts = {3: [first]}
    with pytest.raises(FetchError) as info:
        fetch(server, dest, opener, [], max_refetches=0)
    assert str(info.value) == (
        f"{server.api_url}: the data set changed during the download: the server counted 2,500 "
        "rows before and 2,501 after (2,500 distinct dr_no downloaded); "
        f"{dest} was not written and the saved pages were discarded: run again"
    )
    assert_nothing_written(dest)
    assert not partial_dir(dest).exists()

    # with the default single re-download, a change during both passes fails too
    seen = len(server.log)
    server.records = list(records)
    server.inserts = {seen + 3: [first], seen + 11: [second]}
    with pytest.raises(FetchError) as info:
        fetch(server, dest, opener, [])
    message = str(info.value)
    assert "the server counted 2,501 rows before and 2,502 after" in message
    assert "(also after 1 complete re-download)" in message
    assert f"{dest} was not written" in message
    assert len(server.log) - seen == 16
    assert_nothing_written(dest)
    assert not partial_dir(dest).exists()


def test_a_server_that_loses_rows_is_caught_by_the_count(server, opener, tmp_path, records):
    # once: the second pass is complete and the file is written
    server.faults = {(1000, 0): "omit"}
    dest = tmp_path / "lapd.ndjson.gz"
    result = fetch(server, dest, opener, [])
    assert_complete(dest, records)
    assert (result.rows, result.refetches, result.short_pages) == (N_ROWS, 1, 1)

    # twice: one clear error naming both numbers
    server.faults = {(1000, n): "omit" for n in (2, 3)}  # attempts 0 and 1 were above
    other = tmp_path / "other.ndjson.gz"
    with pytest.raises(FetchError) as info:
        fetch(server, other, opener, [])
    message = str(info.value)
    assert (
        "the server counts 2,500 rows but 2,499 distinct dr_no were downloaded "
        "(0 duplicate rows dropped) (also after 1 complete re-download)"
    ) in message
    assert_nothing_written(other)
    assert not partial_dir(other).exists()


# --- bad answers ----------------------------------------------------------------------------------


def test_a_short_page_in_the_middle_is_not_taken_for_the_end(
    server, opener, tmp_path, records, caplog
):
    caplog.set_level(logging.WARNING, logger="geo_crime.net.fetch")
    server.faults = {(1000, 0): "short"}  # 250 rows, though 1,500 remain
    dest = tmp_path / "lapd.ndjson.gz"
    result = fetch(server, dest, opener, [])

    assert_complete(dest, records)
    assert (result.rows, result.short_pages, result.retries, result.refetches) == (N_ROWS, 1, 0, 0)
    assert server.offsets() == [0, 500, 1000, 1250, 1750, 2250]
    (message,) = warnings_of(caplog)
    ordered = ids(by_id(records))
    assert "short page (250 of 500 rows) with 1250 counted rows still to come" in message
    assert f"paging on after dr_no '{ordered[1249]}'" in message


def test_an_html_page_with_status_200_is_retried(server, opener, tmp_path, records, caplog):
    caplog.set_level(logging.WARNING, logger="geo_crime.net.fetch")
    server.faults = {(500, 0): "html"}
    dest = tmp_path / "lapd.ndjson.gz"
    sleeps: list[float] = []
    result = fetch(server, dest, opener, sleeps)
    assert_complete(dest, records)
    assert (result.rows, result.retries) == (N_ROWS, 1)
    assert sleeps == [1.0]
    (message,) = warnings_of(caplog)
    assert "HTTP 200 with an HTML page instead of JSON" in message
    assert "Site Maintenance" in message


def test_html_pages_every_time_fail_clearly_before_anything_is_written(server, opener, tmp_path):
    server.faults = {("count", n): "html" for n in range(3)}
    dest = tmp_path / "lapd.ndjson.gz"
    with pytest.raises(FetchError) as info:
        fetch(server, dest, opener, [], max_retries=2)
    assert str(info.value) == (
        f"{server.api_url}?$select=count(*): giving up after 3 attempts; last error: "
        "HTTP 200 with an HTML page instead of JSON (Content-Type: text/html; charset=utf-8): "
        "Site Maintenance"
    )
    assert len(server.log) == 3
    assert list(tmp_path.iterdir()) == []


def test_truncated_json_fails_after_the_retries_and_the_next_run_resumes(
    server, opener, tmp_path, records
):
    server.faults = {(1000, n): "garbage" for n in range(3)}
    dest = tmp_path / "lapd.ndjson.gz"
    with pytest.raises(FetchError) as info:
        fetch(server, dest, opener, [], max_retries=2)
    message = str(info.value)
    assert "giving up after 3 attempts; last error: the body is not complete JSON" in message
    assert_nothing_written(dest)
    assert sorted(p.name for p in partial_dir(dest).iterdir()) == [
        "page_000000.json",
        "page_000001.json",
        "state.json",
    ]

    seen = len(server.log)
    result = fetch(server, dest, opener, [])
    assert server.offsets(seen) == [1000, 1500, 2000, 2500]
    assert (result.pages_reused, result.pages_downloaded, result.rows) == (2, 3, N_ROWS)
    assert_complete(dest, records)


def test_a_row_without_dr_no_fails_at_once(server, opener, tmp_path):
    server.faults = {(1500, 0): "no-id"}
    dest = tmp_path / "lapd.ndjson.gz"
    sleeps: list[float] = []
    with pytest.raises(FetchError) as info:
        fetch(server, dest, opener, sleeps)
    message = str(info.value)
    assert "row 37 of 500 has no dr_no (got None;" in message
    assert "rows cannot be de-duplicated or paged without it" in message
    assert server.offsets() == [0, 500, 1000, 1500]  # not retried
    assert sleeps == []
    assert_nothing_written(dest)


def test_rows_out_of_dr_no_order_fail_at_once(server, opener, tmp_path):
    server.faults = {(500, 0): "unordered"}
    dest = tmp_path / "lapd.ndjson.gz"
    with pytest.raises(FetchError, match=r"rows are not in dr_no order .* did not honour \$order"):
        fetch(server, dest, opener, [])
    assert server.offsets() == [0, 500]
    assert_nothing_written(dest)


# --- the command line -----------------------------------------------------------------------------


def test_cli_prints_one_error_line_and_exits_1_on_a_failed_check(
    server, tmp_path, records, monkeypatch
):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")  # the CLI's default opener must not use a proxy
    server.faults = {(0, n): "omit" for n in (0, 1)}  # 2,500 rows on one page, one of them lost
    dest = tmp_path / "lapd.ndjson.gz"
    result = CliRunner().invoke(
        app, ["fetch", "--out", str(dest), "--base-url", server.api_url, "--page-size", "5000"]
    )
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {server.api_url}: the server counts 2,500 rows but 2,499 distinct dr_no were "
        f"downloaded (0 duplicate rows dropped) (also after 1 complete re-download); {dest} was "
        "not written and the saved pages were discarded: run again"
    ]
    assert list(tmp_path.iterdir()) == []
