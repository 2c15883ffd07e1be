"""What a download holds: keys with ``_`` in keyset order, rows per month, the span warnings.

Every test serves rows from :class:`tests.fakes.portal.FakePortal` on 127.0.0.1 and downloads them
with :func:`geo_crime.net.fetch.fetch_incidents` or ``geo-crime fetch``.

Where the rows come from:

* NIBRS keys have the published form of ``uniquenibrno``, ``<caseno>_<nibr_code>_<sequence>``
  with an 8-digit case number (``YY`` and a 6-digit serial) and a 0-based sequence, as in
  ``25245851_290_0`` and ``25245765_240_1``; a few 7-digit case numbers test keys of different
  lengths. Only the key and ``date_occ`` (ISO, midnight, as the API serves it) are read here;
* legacy rows are the first rows of the real official export (``tests/fakes/shared_data.py``) as the
  API serves them, with ``date_occ`` and ``date_rptd`` moved onto the days a test needs (the
  real rows are all of 2020).
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.core.errors import FetchError
from geo_crime.net.fetch import fetch_incidents
from geo_crime.net.partial import partial_dir
from geo_crime.net.spans import format_month_table, months_path
from tests.fakes.api_rows import api_records, download_files, read_ndjson
from tests.fakes.portal import DIRECT_ENV, Resource, running_portal
from tests.fakes.shared_data import IVANCO, crime_file

LEGACY_ID = "2nrs-mtv8"
NIBRS_ID = "k7nn-b2ep"
LEGACY_FILE = "lapd_crime_2nrs-mtv8.ndjson.gz"
NIBRS_FILE = "lapd_nibrs_k7nn-b2ep.ndjson.gz"
WIDE = {"COLUMNS": "200"}
_TIMESTAMP = "%Y-%m-%dT00:00:00.000"

#: The warning of a NIBRS download without 2024 rows (a copy made before 2026-08-18).
NO_2024 = (
    "warning: nibrs (k7nn-b2ep): the download holds no 2024 rows, but the set has held every "
    "NIBRS record from 2024-03-07 since 2026-08-18 (before that it held only the current "
    "year's): the 2024 and 2025 records are missing; download it again"
)


# --- rows -----------------------------------------------------------------------------------------


def underscore_keys() -> list[str]:
    """``uniquenibrno`` keys of several lengths, with sequences past 9, in no order."""
    keys = []
    cases = ("25000001", "2500000", "25245851", "25245765", "2524576", "25000010")
    codes = ("13A", "290", "240", "23F", "90Z")
    for number, caseno in enumerate(cases):
        for code in codes[: 2 + number % 4]:
            sequences = 12 if (caseno, code) == ("25000001", "290") else 2 + number % 2
            keys += [f"{caseno}_{code}_{seq}" for seq in range(sequences)]
    return keys[::-1]


def nibrs_rows(days: list[str], keys: list[str] | None = None) -> list[dict]:
    """NIBRS offence rows occurring on ``days`` (``""``: a row without ``date_occ``)."""
    keys = keys or [f"{25000001 + n}_13A_0" for n in range(len(days))]
    rows = []
    for key, day in zip(keys, days, strict=False):
        row = {"uniquenibrno": key, "caseno": key.split("_")[0], "nibr_code": key.split("_")[1]}
        if day:
            row["date_occ"] = f"{day}T00:00:00.000"
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def real_legacy() -> list[dict]:
    """The first 120 rows of the real official export as legacy API records."""
    raw = pd.read_csv(crime_file(IVANCO), dtype=str, nrows=120, keep_default_na=False)
    return api_records(raw)


def legacy_rows(real: list[dict], first: date, last: date, count: int = 60) -> list[dict]:
    """``count`` real legacy rows moved onto days spread evenly from ``first`` to ``last``."""
    step = (last - first) / (count - 1)
    rows = []
    for n, record in enumerate(real[:count]):
        day = (first + step * n) if n < count - 1 else last
        rows.append(
            {**record, "date_occ": f"{day:{_TIMESTAMP}}", "date_rptd": f"{day:{_TIMESTAMP}}"}
        )
    return rows


def fetch_nibrs(portal, dest, opener, page_size: int, **options):
    """Download the portal's NIBRS rows into ``dest``, without waiting between retries."""
    return fetch_incidents(
        dest,
        dataset="nibrs",
        base_url=portal.url(NIBRS_ID),
        page_size=page_size,
        jitter=0.0,
        timeout=5.0,
        opener=opener,
        progress=False,
        sleep=[].append,
        **options,
    )


def fetch_cli(portal, out, *args: str, page_size: int = 25):
    command = ["fetch", "--out", str(out), "--base-url", portal.root, "--page-size", str(page_size)]
    return CliRunner().invoke(app, [*command, *args], env=DIRECT_ENV)


# --- keys with "_" --------------------------------------------------------------------------------


def test_keys_with_underscores_are_paged_in_byte_order_once_each_and_resumed(opener, tmp_path):
    keys = underscore_keys()
    served = sorted(keys, key=lambda key: key.encode())  # how the open-data server orders text
    assert served != sorted(keys, key=lambda key: key.replace("_", ""))  # "_" decides the order
    position = served.index
    assert position("25000001_13A_0") + 1 == position("25000001_13A_1")
    assert position("25000001_290_10") < position("25000001_290_2")  # text, not numbers
    assert position("25000001_290_9") < position("2500000_13A_0")  # "1" < "_"
    assert position("2524576_13A_0") > position("25245765_240_0")
    rows = nibrs_rows(["2024-03-07"] * len(keys), keys)
    dest = tmp_path / "nibrs.ndjson.gz"
    page = 7

    def crash_after_fifth_page(index: int, rows: int) -> None:
        if index == 4:
            raise RuntimeError("interrupted")

    with running_portal({NIBRS_ID: Resource("uniquenibrno", rows)}) as portal:
        with pytest.raises(RuntimeError, match="interrupted"):
            fetch_nibrs(portal, dest, opener, page, on_page=crash_after_fifth_page)
        assert not dest.exists() and partial_dir(dest).is_dir()
        first_run = len(portal.log)
        result = fetch_nibrs(portal, dest, opener, page)
    assert portal.violations == []

    written = [r["uniquenibrno"] for r in read_ndjson(dest)]
    assert written == served and len(set(written)) == len(keys) == 59
    assert (result.rows, result.duplicates, result.pages_reused) == (59, 0, 5)
    assert result.pages == 9 and result.pages_downloaded == 4
    # each page asked after the last key of the page before, "_" and all, in both runs
    cursors = [e["cursor"] for e in portal.log if e["position"] != "count"]
    boundaries = [served[n * page - 1] for n in range(1, 9)]
    assert cursors == [None, *boundaries[:4], *boundaries[4:]]
    assert [e["cursor"] for e in portal.log[first_run:] if e["position"] != "count"][0] == (
        "25245765_13A_2"
    )
    assert served[5 * page - 1] == "25245765_13A_2"


def test_a_server_ordering_keys_as_a_locale_collation_fails_instead_of_losing_rows(
    opener, tmp_path
):
    # 2524576_... sorts after 25245765_... by code point, before it when "_" is skipped
    keys = [key for key in underscore_keys() if key.startswith("252457")]
    with running_portal(
        {NIBRS_ID: Resource("uniquenibrno", nibrs_rows(["2024-03-07"] * len(keys), keys))}
    ) as portal:
        portal.faults = {(NIBRS_ID, 0, 0): "collate"}  # fails at once: no retry mends it
        dest = tmp_path / "nibrs.ndjson.gz"
        with pytest.raises(FetchError) as info:
            fetch_nibrs(portal, dest, opener, 20)
    assert str(info.value) == (
        f"{portal.url(NIBRS_ID)}?$order=uniquenibrno&$limit=20: rows are not in uniquenibrno "
        "order ('25245765_13A_0' after '2524576_290_1'); the server did not honour "
        "$order=uniquenibrno"
    )
    assert not dest.exists()


# --- rows per month -------------------------------------------------------------------------------


def test_the_rows_written_are_counted_per_month_in_a_table_and_beside_the_file(opener, tmp_path):
    days = ["2024-03-07"] * 3 + ["2024-03-31", *["2024-05-02"] * 5, "2025-01-15", "2025-01-31"]
    rows = nibrs_rows([*days, "2026-11-14", ""])  # the last row has no date_occ
    dest = tmp_path / "nibrs.ndjson.gz"
    with running_portal({NIBRS_ID: Resource("uniquenibrno", rows)}) as portal:
        result = fetch_nibrs(portal, dest, opener, 4)
    months = result.months
    assert months.months == {"2024-03": 4, "2024-05": 5, "2025-01": 2, "2026-11": 1}
    assert (months.rows, months.undated, months.first, months.last) == (
        13,
        1,
        "2024-03-07",
        "2026-11-14",
    )
    assert (months.warnings, months.notes) == ((), ())
    assert months.path == months_path(dest) == tmp_path / "nibrs.ndjson.gz.months.tsv"
    assert months.path.read_text() == (
        "month\trows\n2024-03\t4\n2024-05\t5\n2025-01\t2\n2026-11\t1\nundated\t1\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == download_files(dest.name)
    assert format_month_table(months).splitlines() == [
        "nibrs (k7nn-b2ep): 13 rows by month of date_occ, 2024-03-07 to 2026-11-14",
        "year    Jan    Feb    Mar    Apr    May    Jun    Jul    Aug    Sep    Oct    Nov    Dec"
        "  total",
        "2024      -      -      4      0      5      0      0      0      0      0      0      0"
        "      9",
        "2025      2      0      0      0      0      0      0      0      0      0      0      0"
        "      2",
        "2026      0      0      0      0      0      0      0      0      0      0      1      -"
        "      1",
        "1 rows without a date_occ",
    ]


# --- the span of each data set --------------------------------------------------------------------


def test_a_nibrs_download_without_2024_rows_is_warned_about_and_still_written(tmp_path):
    days = [f"2026-{month:02d}-{day:02d}" for month in range(1, 8) for day in (3, 17)]
    out = tmp_path / "nibrs.ndjson.gz"
    with running_portal({NIBRS_ID: Resource("uniquenibrno", nibrs_rows(days))}) as portal:
        result = fetch_cli(portal, out, "--dataset", "nibrs", page_size=5)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [NO_2024]
    assert result.stdout.splitlines()[1:] == [
        "nibrs (k7nn-b2ep): 14 rows by month of date_occ, 2026-01-03 to 2026-07-17",
        "year    Jan    Feb    Mar    Apr    May    Jun    Jul    Aug    Sep    Oct    Nov    Dec"
        "  total",
        "2026      2      2      2      2      2      2      2      -      -      -      -      -"
        "     14",
    ]
    assert len(read_ndjson(out)) == 14


def test_a_nibrs_download_starting_after_march_2024_is_warned_about(tmp_path):
    days = ["2024-06-01", "2024-06-02", "2025-02-10"]
    out = tmp_path / "nibrs.ndjson.gz"
    with running_portal({NIBRS_ID: Resource("uniquenibrno", nibrs_rows(days))}) as portal:
        result = fetch_cli(portal, out, "--dataset", "nibrs")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: nibrs (k7nn-b2ep): the download starts on 2024-06-01, after 2024-03-31, but "
        "the set holds occurrences from 2024-03-07 to today: its first weeks are missing"
    ]


def test_a_legacy_download_ending_in_2023_is_warned_about(tmp_path, real_legacy):
    rows = legacy_rows(real_legacy, date(2020, 1, 1), date(2023, 12, 31), count=48)
    out = tmp_path / "legacy.ndjson.gz"
    with running_portal({LEGACY_ID: Resource("dr_no", rows)}) as portal:
        result = fetch_cli(portal, out, "--dataset", "legacy")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: legacy (2nrs-mtv8): the download ends on 2023-12-31, but the legacy set is "
        "frozen with occurrences from 2020-01-01 to 2024-12-30 (1,004,894 rows): this copy "
        "misses its end (an older or partial copy)"
    ]
    lines = result.stdout.splitlines()
    assert lines[1] == "legacy (2nrs-mtv8): 48 rows by month of date_occ, 2020-01-01 to 2023-12-31"
    assert [line[:4] for line in lines[3:]] == ["2020", "2021", "2022", "2023"]
    assert sum(int(line.split()[-1]) for line in lines[3:]) == 48


def test_complete_spans_of_both_sets_give_no_warning(tmp_path, real_legacy):
    legacy = legacy_rows(real_legacy, date(2020, 1, 1), date(2024, 12, 30), count=60)
    start = date(2024, 3, 7)
    days = [f"{start + timedelta(days=16 * n)}" for n in range(61)]  # to 2026-10-23
    resources = {
        LEGACY_ID: Resource("dr_no", legacy),
        NIBRS_ID: Resource("uniquenibrno", nibrs_rows(days)),
    }
    out = tmp_path / "downloads"
    with running_portal(resources) as portal:
        result = fetch_cli(portal, out, "--dataset", "all")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "warning" not in result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "legacy (2nrs-mtv8): 60 rows by month of date_occ, 2020-01-01 to 2024-12-30"
    assert lines[9] == "nibrs (k7nn-b2ep): 61 rows by month of date_occ, 2024-03-07 to 2026-10-23"
    assert [line[:4] for line in lines[3:8] + lines[11:]] == [
        *map(str, range(2020, 2025)),
        "2024",
        "2025",
        "2026",
    ]
    assert sorted(p.name for p in out.iterdir()) == download_files(LEGACY_FILE, NIBRS_FILE)
    assert months_path(out / NIBRS_FILE).read_text().splitlines()[:3] == [
        "month\trows",
        "2024-03\t2",
        "2024-04\t2",
    ]


def test_a_filtered_download_is_not_warned_about_and_the_note_names_the_filter(
    tmp_path, real_legacy
):
    before_2023 = "date_occ < '2023-01-01'"
    rows = legacy_rows(real_legacy, date(2020, 1, 1), date(2024, 12, 30), count=60)
    resource = Resource(
        "dr_no", rows, filters={before_2023: lambda r: r["date_occ"] < "2023-01-01"}
    )
    out = tmp_path / "legacy.ndjson.gz"
    with running_portal({LEGACY_ID: resource}) as portal:
        result = fetch_cli(portal, out, "--dataset", "legacy", "--where", before_2023, page_size=10)
    assert portal.violations == []
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    written = read_ndjson(out)
    assert len(written) == sum(r["date_occ"] < "2023-01-01" for r in rows) == 36
    assert result.stdout.splitlines()[-1] == (
        "note: legacy (2nrs-mtv8): filtered with $where \"date_occ < '2023-01-01'\", which may "
        "explain it: the download ends on 2022-12-18, but the legacy set is frozen with "
        "occurrences from 2020-01-01 to 2024-12-30 (1,004,894 rows): this copy misses its end "
        "(an older or partial copy)"
    )


def test_fetch_help_states_the_real_spans_of_both_sets():
    text = CliRunner().invoke(app, ["fetch", "--help"], env=WIDE).stdout
    assert "2024-12-30" in text and "2024-03-07" in text
    assert "Crime Data from 2020 to 2024" in text and "frozen" in text
    assert "12-14 days behind" in text and "y8y3-fqfu answers 403" in text
    assert "to Present" not in text
