"""The incident cache: safe under concurrent runs, self-healing when corrupt, optional."""

from __future__ import annotations

import errno
import gzip
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings

import pandas as pd
import pyarrow.parquet as pq
import pytest

from geo_crime import ingest
from geo_crime.ingest import cache as incident_cache
from geo_crime.ingest import load_incidents
from geo_crime.ingest.cleaning import CleaningReport
from tests.fakes.shared_data import IVANCO, crime_file


@pytest.fixture(scope="module")
def real_csv_text() -> str:
    with gzip.open(crime_file(IVANCO), "rt", encoding="utf-8") as fh:
        return "".join(next(fh) for _ in range(301))


@pytest.fixture
def export(tmp_path, real_csv_text):
    path = tmp_path / "slice.csv"
    path.write_text(real_csv_text, encoding="utf-8")
    return path


def _cache_files(folder) -> list:
    return sorted(folder.glob("*.parquet"))


def _leftovers(folder) -> list:
    return [p for p in folder.iterdir() if not p.name.endswith(".parquet")]


def test_concurrent_writers_of_one_key_both_succeed(tmp_path, export):
    frame, report = load_incidents(export, cache=False)
    target = tmp_path / "cache" / "0123456789abcdef.parquet"
    target.parent.mkdir()
    writers = 4
    barrier = threading.Barrier(writers, timeout=60)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(5):
                barrier.wait()  # all writers start each round together
                incident_cache.write_cache(target, frame, report)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)
            barrier.abort()  # release the other writers instead of leaving them waiting

    threads = [threading.Thread(target=write) for _ in range(writers)]
    with warnings.catch_warnings(record=True) as caught:  # a failed write only warns
        warnings.simplefilter("always")
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert [str(w.message) for w in caught] == []
    cached, cached_report = incident_cache.read_cache(target)
    pd.testing.assert_frame_equal(cached, frame)
    assert cached_report.to_dict() == report.to_dict()
    assert _leftovers(target.parent) == []


def test_two_processes_loading_the_same_inputs_share_one_cache(tmp_path, export):
    folder = tmp_path / "cache"
    script = textwrap.dedent(
        f"""
        import warnings
        warnings.simplefilter("error")
        from geo_crime.ingest import load_incidents
        frame, report = load_incidents({str(export)!r}, cache={str(folder)!r})
        print(len(frame), report.rows_read)
        """
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err.decode()
        assert out.decode().split() == ["300", "300"]
    assert len(_cache_files(folder)) == 1
    assert _leftovers(folder) == []


def _first_load(export, folder):
    frame, report = load_incidents(export, cache=folder)
    (cache_file,) = _cache_files(folder)
    return frame, report, cache_file


def _assert_served_from_cache(export, folder, monkeypatch, frame) -> None:
    """A further load returns the same frame without reading the inputs (and without warning)."""

    def no_reading(*args, **kwargs):
        raise AssertionError("the inputs were read: the cache was not used")

    with monkeypatch.context() as patch:
        patch.setattr(ingest, "read_incidents", no_reading)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            again, _ = load_incidents(export, cache=folder)
    pd.testing.assert_frame_equal(again, frame)


def test_truncated_cache_is_detected_dropped_and_rebuilt(tmp_path, export, monkeypatch):
    folder = tmp_path / "cache"
    frame, _, cache_file = _first_load(export, folder)
    data = cache_file.read_bytes()
    cache_file.write_bytes(data[: len(data) // 2])
    pattern = (
        rf"^{re.escape(str(cache_file))}: corrupt incident cache \(.+\); removed it and rebuilding$"
    )
    with pytest.warns(UserWarning, match=pattern) as caught:
        rebuilt, report = load_incidents(export, cache=folder)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    pd.testing.assert_frame_equal(rebuilt, frame)
    assert report.rows_read == 300
    assert _cache_files(folder) == [cache_file] and cache_file.stat().st_size == len(data)
    _assert_served_from_cache(export, folder, monkeypatch, frame)


def test_cache_with_damaged_pages_fails_its_checksum_and_is_rebuilt(tmp_path, export):
    folder = tmp_path / "cache"
    frame, _, cache_file = _first_load(export, folder)
    data = bytearray(cache_file.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    cache_file.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"corrupt incident cache"):
        rebuilt, _ = load_incidents(export, cache=folder)
    pd.testing.assert_frame_equal(rebuilt, frame)


def test_cache_whose_row_count_disagrees_with_its_report_is_rebuilt(tmp_path, export):
    folder = tmp_path / "cache"
    frame, report, cache_file = _first_load(export, folder)
    table = pq.read_table(cache_file)
    pq.write_table(table.slice(0, 10), cache_file)  # metadata (and its report) kept
    with pytest.warns(UserWarning, match=r"10 rows where its report says 300"):
        rebuilt, _ = load_incidents(export, cache=folder)
    pd.testing.assert_frame_equal(rebuilt, frame)


def test_no_cache_neither_reads_nor_writes(tmp_path, export, monkeypatch):
    default_folder = tmp_path / "default-cache"
    monkeypatch.setenv("GEO_CRIME_CACHE", str(default_folder))

    def forbidden(*args, **kwargs):
        raise AssertionError("the cache was touched")

    for name in ("read_cache", "write_cache", "cache_slot", "cached_or_built", "content_key"):
        monkeypatch.setattr(incident_cache, name, forbidden)
    frame, report = load_incidents(export, cache=False)
    assert len(frame) == 300 and report.rows_read == 300
    assert not default_folder.exists()


def test_full_disk_while_writing_the_cache_warns_and_goes_on(tmp_path, export, monkeypatch):
    folder = tmp_path / "cache"

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full)
    with pytest.warns(
        UserWarning,
        match=r"\.parquet: cannot write the incident cache \(No space left on device\); "
        r"continuing without it$",
    ):
        frame, _ = load_incidents(export, cache=folder)
    assert len(frame) == 300
    assert list(folder.iterdir()) == []  # no cache, no temporary file


def test_read_only_cache_folder_warns_and_goes_on(tmp_path, export, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(folder))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.warns(
        UserWarning, match=r"cannot write the incident cache \(Read-only file system\)"
    ):
        frame, _ = load_incidents(export, cache=folder)
    assert len(frame) == 300
    assert list(folder.iterdir()) == []


def test_cache_folder_that_is_a_file_warns_and_goes_on(tmp_path, export):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("")
    with pytest.warns(UserWarning, match=r"cannot use the incident cache folder"):
        frame, report = load_incidents(export, cache=not_a_folder)
    assert len(frame) == 300 and isinstance(report, CleaningReport)
    assert not_a_folder.read_text() == ""
