"""``geo_crime.net.fetch`` of the LAPD NIBRS data set, and of both data sets at once, over loopback.

The server is :class:`tests.fakes.portal.FakePortal`, a ``ThreadingHTTPServer`` on 127.0.0.1
(port 0) serving two Socrata resources at once, each keyed by its own field:
``/resource/2nrs-mtv8.json`` (legacy, the first 600 real rows of the official export, keyed by
``dr_no``) and ``/resource/k7nn-b2ep.json`` (NIBRS, :func:`nibrs_records`, keyed by
``uniquenibrno``). It answers ``count(*)`` and keyset pages and fails chosen requests on purpose
(see ``tests/fakes/portal.py``). The opener has no proxy handler; backoff delays go to a list
instead of ``time.sleep``. It is the same fake server ``tests/test_fetch.py`` runs (there as
:class:`tests.fakes.portal.LapdApi`, the one legacy resource).

Where the NIBRS records' shape comes from (:func:`nibrs_records`):

* field names, and that every value is a string and null fields are left out of a record: the
  field list of the "LAPD NIBRS Offenses" data set (Socrata ``k7nn-b2ep``) as the SODA API
  serves it, the same JSON conventions as the legacy rows of ``tests/test_fetch.py``;
* ``uniquenibrno`` is the case number, the NIBRS offence code and the offence's sequence number
  in the case, run together (assumed without separators); one case (``caseno``) has one row per
  offence, and ``totaloffensecount`` is the number of those rows;
* case numbers are assumed to keep the legacy ``dr_no`` layout: two-digit year, two-digit area,
  five-digit serial (``241012345``);
* ``date_occ`` is midnight of the day with the time in ``time_occ`` (``HHMM``), as in the legacy
  data; ``date_rptd`` carries a time of day (the published set has report times such as 19:52);
  timestamps are ISO without a zone, ``2024-03-07T00:00:00.000``, from the NIBRS start
  (2024-03-07) on;
* offence codes, descriptions, groups (``A``, ``B``) and ``crime_against`` (Person, Property,
  Society) follow the FBI NIBRS offence code list; the published descriptions may be worded
  otherwise, which does not matter here (only the key is read);
* area codes and names, reporting districts and premise and weapon codes are those of the
  legacy LAPD data; the weapon fields are present only when a weapon was recorded;
* ``status`` / ``status_desc`` pairs use descriptions seen in the published set (Investigation
  Continued, Cleared by Arrest); the short codes are assumed;
* the flags (``victim_shot``, ``domestic_violence_crime``, ``hate_crime`` ...) are assumed to be
  ``Yes`` / ``No``, as public code reading the data set treats them;
* ``hndrdth_loc_chk`` is the address rounded to the hundred block, ``hndrdth_lat`` /
  ``hndrdth_lon`` its coordinates with four decimals.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.core.errors import ConfigError, FetchError
from geo_crime.net.catalogue import DATASETS, dataset_url, default_incidents_path
from geo_crime.net.fetch import fetch_datasets, fetch_incidents
from geo_crime.net.partial import partial_dir
from tests.fakes.api_rows import download_files, read_ndjson, real_records
from tests.fakes.portal import FakePortal, Resource, by_key, running_portal

LEGACY_ID = "2nrs-mtv8"
NIBRS_ID = "k7nn-b2ep"
LEGACY_ROWS = 600
NIBRS_CASES = 260
PAGE = 100
LEGACY_FILE = "lapd_crime_2nrs-mtv8.ndjson.gz"
NIBRS_FILE = "lapd_nibrs_k7nn-b2ep.ndjson.gz"


# --- records --------------------------------------------------------------------------------------

#: (area, area name, reporting districts, hundred-block streets, centre latitude, longitude)
_AREAS = [
    ("01", "Central", ("0152", "0163", "0176"), ("S MAIN ST", "W 7TH ST"), 34.0440, -118.2480),
    ("03", "Southwest", ("0353", "0374"), ("W ADAMS BL", "S VERMONT AV"), 34.0100, -118.3050),
    ("12", "77th Street", ("1241", "1256"), ("S FIGUEROA ST", "W 84TH ST"), 33.9700, -118.2900),
    ("14", "Pacific", ("1431", "1457", "1494"), ("W 111TH ST", "LINCOLN BL"), 33.9900, -118.4200),
    ("20", "Olympic", ("2031", "2049"), ("S WESTERN AV", "W OLYMPIC BL"), 34.0500, -118.2950),
]

#: (NIBRS code, description, group, crime against)
_OFFENCES = [
    ("13B", "Simple Assault", "A", "Person"),
    ("13A", "Aggravated Assault", "A", "Person"),
    ("13C", "Intimidation", "A", "Person"),
    ("120", "Robbery", "A", "Property"),
    ("220", "Burglary/Breaking & Entering", "A", "Property"),
    ("23F", "Theft From Motor Vehicle", "A", "Property"),
    ("240", "Motor Vehicle Theft", "A", "Property"),
    ("290", "Destruction/Damage/Vandalism of Property", "A", "Property"),
    ("26F", "Identity Theft", "A", "Property"),
    ("35A", "Drug/Narcotic Violations", "A", "Society"),
    ("90Z", "All Other Offenses", "B", "Society"),
]

_PREMISES = [
    ("101", "STREET"),
    ("108", "PARKING LOT"),
    ("501", "SINGLE FAMILY DWELLING"),
    ("502", "MULTI-UNIT DWELLING (APARTMENT, DUPLEX, ETC)"),
    ("102", "SIDEWALK"),
]

_WEAPONS = [
    ("400", "STRONG-ARM (HANDS, FIST, FEET OR BODILY FORCE)"),
    ("500", "UNKNOWN WEAPON/OTHER WEAPON"),
    ("200", "KNIFE WITH BLADE 6INCHES OR LESS"),
]

_STATUSES = [("IC", "Investigation Continued"), ("AA", "Cleared by Arrest (CA/DA Filed)")]

_TIMESTAMP = "%Y-%m-%dT%H:%M:%S.000"


def nibrs_records(cases: int = NIBRS_CASES, seed: int = 2024) -> list[dict]:
    """NIBRS offence rows as the SODA API serves them, one to three per case, in no order.

    Every value is a string and a field without a value is left out of its record (see the
    module docstring for where each field's shape comes from). Deterministic for a ``seed``.
    """
    rng = random.Random(seed)
    start = datetime(2024, 3, 7)  # the day LAPD began recording in NIBRS
    records: list[dict] = []
    for serial in range(cases):
        area, area_name, districts, streets, lat, lon = rng.choice(_AREAS)
        occurred = start + timedelta(days=rng.randrange(420))
        reported = occurred + timedelta(
            days=rng.randrange(4), hours=rng.randrange(7, 22), minutes=rng.randrange(60)
        )
        caseno = f"{reported:%y}{area}{10001 + serial:05d}"
        offences = rng.sample(_OFFENCES, k=rng.choice([1, 1, 1, 2, 2, 3]))
        status, status_desc = rng.choice(_STATUSES)
        premis_cd, premis_desc = rng.choice(_PREMISES)
        case = {
            "caseno": caseno,
            "date_rptd": reported.strftime(_TIMESTAMP),
            "date_occ": occurred.strftime(_TIMESTAMP),
            "time_occ": f"{rng.randrange(24):02d}{rng.randrange(0, 60, 5):02d}",
            "area": area,
            "area_name": area_name,
            "rpt_dist_no": rng.choice(districts),
            "totaloffensecount": str(len(offences)),
            "premis_cd": premis_cd,
            "premis_desc": premis_desc,
            "status": status,
            "status_desc": status_desc,
            "totalvictimcount": str(rng.choice([1, 1, 1, 2])),
            "hndrdth_loc_chk": f"{rng.randrange(1, 120) * 100} {rng.choice(streets)}",
            "hndrdth_lat": f"{lat + rng.uniform(-0.02, 0.02):.4f}",
            "hndrdth_lon": f"{lon + rng.uniform(-0.02, 0.02):.4f}",
        }
        domestic = rng.random() < 0.15
        for sequence, (code, description, group, against) in enumerate(offences, 1):
            record = {
                "uniquenibrno": f"{caseno}{code}{sequence}",
                **case,
                "group": group,
                "nibr_code": code,
                "nibr_description": description,
                "crime_against": against,
                "victim_shot": "No",
                "domestic_violence_crime": "Yes" if domestic and against == "Person" else "No",
                "hate_crime": "No",
                "gang_related_crime": "Yes" if rng.random() < 0.05 else "No",
                "transit_related_crime": "No",
                "homeless_victim_crime": "No",
                "homeless_suspect_crime": "Yes" if rng.random() < 0.05 else "No",
                "homeless_arrestee_crime": "No",
            }
            if against == "Person" or code == "120":
                record["weapon_used_cd"], record["weapon_desc"] = rng.choice(_WEAPONS)
            records.append(record)
    rng.shuffle(records)  # the server, not the data, must give the order
    return records


@pytest.fixture(scope="module")
def nibrs() -> list[dict]:
    """The NIBRS rows, checked to hold what the tests rely on."""
    records = nibrs_records()
    keys = [r["uniquenibrno"] for r in records]
    assert len(set(keys)) == len(keys)
    assert all(isinstance(v, str) for r in records for v in r.values())
    assert any("weapon_used_cd" not in r for r in records)  # null keys really are left out
    ordered = by_key(records, "uniquenibrno")
    assert ordered != records
    per_case = Counter(r["caseno"] for r in records)
    assert max(per_case.values()) == 3 and len(records) > len(per_case)
    # a case whose offences straddle a page boundary: its rows come from two requests
    assert any(
        ordered[i - 1]["caseno"] == ordered[i]["caseno"] for i in range(PAGE, len(ordered), PAGE)
    )
    return records


@pytest.fixture(scope="module")
def legacy() -> list[dict]:
    """The first 600 rows of the real official export as legacy API records."""
    return real_records(LEGACY_ROWS)


# --- the server -----------------------------------------------------------------------------------


@pytest.fixture
def portal(legacy, nibrs) -> Iterator[FakePortal]:
    """Both LAPD data sets on a loopback portal, checked for protocol violations at the end."""
    resources = {
        LEGACY_ID: Resource("dr_no", list(legacy)),
        NIBRS_ID: Resource("uniquenibrno", list(nibrs)),
    }
    with running_portal(resources) as httpd:
        yield httpd
    assert httpd.violations == []


@pytest.fixture
def no_proxy(monkeypatch) -> None:
    """The command line's default opener goes straight to 127.0.0.1."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")


def fetch_nibrs(portal: FakePortal, dest, opener, sleeps: list[float], **options):
    options = {
        "dataset": "nibrs",
        "base_url": portal.url(NIBRS_ID),
        "page_size": PAGE,
        "jitter": 0.0,
        "timeout": 5.0,
        "opener": opener,
        "sleep": sleeps.append,
        "progress": False,
        **options,
    }
    return fetch_incidents(dest, **options)


def keys(records: list[dict]) -> list[str]:
    return [r["uniquenibrno"] for r in records]


def assert_no_stray_files(folder: Path, *downloads: str) -> None:
    """``folder`` holds exactly the ``downloads`` and their months tables: no temporary file, no
    partial folder."""
    assert sorted(p.name for p in folder.iterdir()) == download_files(*downloads)


def errors_of(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


# --- the data set settings ------------------------------------------------------------------------


def test_the_data_sets_are_set_in_one_place_and_legacy_is_the_default(tmp_path, monkeypatch):
    assert {name: (d.socrata_id, d.id_field) for name, d in DATASETS.items()} == {
        "legacy": (LEGACY_ID, "dr_no"),
        "nibrs": (NIBRS_ID, "uniquenibrno"),
    }
    assert f"https://data.lacity.org/resource/{LEGACY_ID}.json" == DATASETS["legacy"].url
    assert dataset_url("nibrs") == f"https://data.lacity.org/resource/{NIBRS_ID}.json"
    assert dataset_url("nibrs", "http://h/r/{id}.json?x=1") == f"http://h/r/{NIBRS_ID}.json?x=1"
    assert dataset_url("legacy", "http://h/resource/") == f"http://h/resource/{LEGACY_ID}.json"
    assert dataset_url("nibrs", "http://h/any.json") == "http://h/any.json"
    monkeypatch.setenv("GEO_CRIME_CACHE", str(tmp_path))
    assert default_incidents_path() == tmp_path / "downloads" / LEGACY_FILE
    assert default_incidents_path("nibrs") == tmp_path / "downloads" / NIBRS_FILE
    with pytest.raises(
        ConfigError, match="unknown data set 'offences': choose one of legacy, nibrs"
    ):
        fetch_incidents(tmp_path / "x.ndjson.gz", dataset="offences")
    with pytest.raises(ConfigError, match="one endpoint cannot serve the data sets legacy, nibrs"):
        fetch_datasets(tmp_path, base_url="http://127.0.0.1:9/resource/k7nn-b2ep.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # refused before anything


# --- NIBRS ----------------------------------------------------------------------------------------


def test_nibrs_is_ordered_and_paged_on_uniquenibrno_and_keeps_every_offence_of_a_case(
    portal, opener, tmp_path, nibrs, monkeypatch
):
    monkeypatch.setenv("GEO_CRIME_CACHE", str(tmp_path))
    sleeps: list[float] = []
    result = fetch_nibrs(portal, None, opener, sleeps)  # the default file in the cache

    dest = tmp_path / "downloads" / NIBRS_FILE
    assert result.path == dest and result.dataset == "nibrs"
    written = read_ndjson(dest)
    ordered = by_key(nibrs, "uniquenibrno")
    assert written == ordered  # every row once, in uniquenibrno order, exactly as served
    assert result.rows == result.expected_rows == len(nibrs)
    assert (result.duplicates, result.retries, result.refetches) == (0, 0, 0)
    # several offences of one case (same caseno) are separate rows, all kept
    assert Counter(r["caseno"] for r in written) == Counter(r["caseno"] for r in nibrs)
    assert len(written) > len({r["caseno"] for r in written})
    assert_no_stray_files(dest.parent, NIBRS_FILE)
    assert sleeps == []

    # count, pages in uniquenibrno order after the last key of the page before, count again
    requests = portal.requests_of(NIBRS_ID)
    assert requests[0]["query"] == requests[-1]["query"] == {"$select": "count(*)"}
    pages = portal.page_queries(NIBRS_ID)
    full_pages, rest = divmod(len(nibrs), PAGE)
    assert rest  # the last page is short: it ends the download without an empty page
    assert len(pages) == full_pages + 1 == result.pages
    assert pages[0] == {"$order": "uniquenibrno", "$limit": str(PAGE)}
    for number, query in enumerate(pages[1:], start=1):
        last = ordered[number * PAGE - 1]["uniquenibrno"]
        assert query == {
            "$where": f"uniquenibrno > '{last}'",
            "$order": "uniquenibrno",
            "$limit": str(PAGE),
        }
    assert portal.requests_of(LEGACY_ID) == []


def test_a_repeated_page_and_a_repeated_row_are_dropped_and_counted(
    portal, opener, tmp_path, nibrs, caplog
):
    caplog.set_level("WARNING", logger="geo_crime.net.fetch")
    portal.faults = {
        (NIBRS_ID, 200, 0): "repeat",  # rows 100-199 again: asked once more
        (NIBRS_ID, 300, 0): "repeat-row",  # row 309 twice: 99 new rows, paging goes on at 399
    }
    dest = tmp_path / "nibrs.ndjson.gz"
    sleeps: list[float] = []
    result = fetch_nibrs(portal, dest, opener, sleeps)

    written = read_ndjson(dest)
    assert written == by_key(nibrs, "uniquenibrno")
    assert len(set(keys(written))) == len(written) == len(nibrs)
    assert (result.rows, result.duplicates, result.retries) == (len(nibrs), PAGE + 1, 1)
    positions = [e["position"] for e in portal.requests_of(NIBRS_ID)]
    assert positions[:7] == ["count", 0, 100, 200, 200, 300, 399]
    assert sleeps == [1.0]
    messages = [r.getMessage() for r in caplog.records if r.name == "geo_crime.net.fetch"]
    assert len(messages) == 2
    assert (
        f"the page repeats {PAGE} rows already written (every uniquenibrno is at or"
        in (messages[0])
    )
    assert "1 duplicate rows dropped" in messages[1]
    assert_no_stray_files(tmp_path, dest.name)


def test_an_interrupted_nibrs_download_resumes_after_the_last_saved_key(
    portal, opener, tmp_path, nibrs
):
    dest = tmp_path / "nibrs.ndjson.gz"

    def crash_after_second_page(index: int, rows: int) -> None:
        if index == 1:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        fetch_nibrs(portal, dest, opener, [], on_page=crash_after_second_page)
    assert not dest.exists()
    ordered = keys(by_key(nibrs, "uniquenibrno"))
    state = json.loads((partial_dir(dest) / "state.json").read_text())
    assert state["order"] == "uniquenibrno"
    assert [(p["first"], p["last"]) for p in state["pages"]] == [
        (ordered[0], ordered[PAGE - 1]),
        (ordered[PAGE], ordered[2 * PAGE - 1]),
    ]

    seen = len(portal.log)
    result = fetch_nibrs(portal, dest, opener, [])
    resumed = portal.page_queries(NIBRS_ID, seen)
    assert resumed[0]["$where"] == f"uniquenibrno > '{ordered[2 * PAGE - 1]}'"
    assert [e["cursor"] for e in portal.log[seen:] if e["position"] != "count"][:2] == [
        ordered[2 * PAGE - 1],
        ordered[3 * PAGE - 1],
    ]
    assert (result.pages_reused, result.pages_downloaded) == (2, result.pages - 2)
    assert read_ndjson(dest) == by_key(nibrs, "uniquenibrno")
    assert_no_stray_files(tmp_path, dest.name)


def test_a_nibrs_count_mismatch_fails_and_writes_nothing(portal, opener, tmp_path, nibrs):
    portal.faults = {(NIBRS_ID, 0, attempt): "omit" for attempt in (0, 1)}  # both passes
    dest = tmp_path / "nibrs.ndjson.gz"
    with pytest.raises(FetchError) as info:
        fetch_nibrs(portal, dest, opener, [])
    assert str(info.value) == (
        f"{portal.url(NIBRS_ID)}: the server counts {len(nibrs):,} rows but {len(nibrs) - 1:,} "
        "distinct uniquenibrno were downloaded (0 duplicate rows dropped) (also after 1 "
        f"complete re-download); {dest} was not written and the saved pages were discarded: "
        "run again"
    )
    assert_no_stray_files(tmp_path)  # no file, no temporary file, no partial folder


def test_a_nibrs_row_without_uniquenibrno_fails_at_once(portal, opener, tmp_path):
    portal.faults = {(NIBRS_ID, 100, 0): "no-key"}
    dest = tmp_path / "nibrs.ndjson.gz"
    with pytest.raises(FetchError, match="row 4 of 100 has no uniquenibrno"):
        fetch_nibrs(portal, dest, opener, [])
    assert not dest.exists()


# --- both data sets -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["template", "root"])
def test_cli_dataset_all_writes_both_files_with_their_counts(
    portal, tmp_path, legacy, nibrs, no_proxy, form
):
    base_url = portal.template if form == "template" else portal.root
    out = tmp_path / "downloads"
    args = ["fetch", "--dataset", "all", "--out", str(out), "--base-url", base_url]
    result = CliRunner().invoke(app, [*args, "--page-size", str(PAGE)])
    assert result.exit_code == 0, result.output

    assert read_ndjson(out / LEGACY_FILE) == by_key(legacy, "dr_no")
    assert read_ndjson(out / NIBRS_FILE) == by_key(nibrs, "uniquenibrno")
    assert_no_stray_files(out, LEGACY_FILE, NIBRS_FILE)
    lines = result.stdout.splitlines()
    assert len(lines) == 9
    assert lines[0].startswith(f"legacy: {len(legacy):,} rows -> {out / LEGACY_FILE} (sha256 ")
    assert lines[4].startswith(f"nibrs: {len(nibrs):,} rows -> {out / NIBRS_FILE} (sha256 ")
    # each file's rows per month of date_occ: the real 2020 rows, then the NIBRS fixture
    assert lines[1:4] + lines[5:] == [
        "legacy (2nrs-mtv8): 600 rows by month of date_occ, 2020-01-01 to 2020-12-28",
        "year    Jan    Feb    Mar    Apr    May    Jun    Jul    Aug    Sep    Oct    Nov    Dec"
        "  total",
        "2020    467     14      9      5     12      8      9      4     17     10     22     23"
        "    600",
        "nibrs (k7nn-b2ep): 447 rows by month of date_occ, 2024-03-10 to 2025-04-29",
        "year    Jan    Feb    Mar    Apr    May    Jun    Jul    Aug    Sep    Oct    Nov    Dec"
        "  total",
        "2024      -      -     25     20     33     33     40     26     39     46     28     35"
        "    325",
        "2025     35     28     41     18      -      -      -      -      -      -      -      -"
        "    122",
    ]
    months = Counter(r["date_occ"][:7] for r in nibrs)
    assert (months["2024-03"], months["2025-04"], len(nibrs)) == (25, 18, 447)
    # the first 600 rows of the export are all of 2020: an old copy of the frozen legacy set
    assert result.stderr.splitlines() == [
        "warning: legacy (2nrs-mtv8): the download ends on 2020-12-28, but the legacy set is "
        "frozen with occurrences from 2020-01-01 to 2024-12-30 (1,004,894 rows): this copy "
        "misses its end (an older or partial copy)"
    ]
    # each resource was paged on its own key, legacy first
    assert portal.log[0]["resource"] == LEGACY_ID and portal.log[-1]["resource"] == NIBRS_ID
    assert {q["$order"] for q in portal.page_queries(LEGACY_ID)} == {"dr_no"}
    assert {q["$order"] for q in portal.page_queries(NIBRS_ID)} == {"uniquenibrno"}


def test_cli_dataset_all_keeps_the_finished_file_when_the_other_fails(
    portal, tmp_path, legacy, nibrs, no_proxy
):
    portal.faults = {(NIBRS_ID, 0, attempt): "omit" for attempt in (0, 1)}
    out = tmp_path / "downloads"
    args = ["fetch", "--dataset", "all", "--out", str(out), "--base-url", portal.template]
    result = CliRunner().invoke(app, [*args, "--page-size", str(PAGE)])
    assert result.exit_code == 1

    assert errors_of(result) == [
        f"error: nibrs data set: {portal.url(NIBRS_ID)}: the server counts {len(nibrs):,} rows "
        f"but {len(nibrs) - 1:,} distinct uniquenibrno were downloaded (0 duplicate rows dropped) "
        f"(also after 1 complete re-download); {out / NIBRS_FILE} was not written and the saved "
        f"pages were discarded: run again (legacy kept: {len(legacy):,} rows, verified, in "
        f"{out / LEGACY_FILE})"
    ]
    assert result.stdout.startswith(f"legacy: {len(legacy):,} rows -> {out / LEGACY_FILE}")
    assert read_ndjson(out / LEGACY_FILE) == by_key(legacy, "dr_no")  # complete and verified
    assert_no_stray_files(out, LEGACY_FILE)  # no NIBRS file, no temporary file of either


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--dataset", "offences"],
            "error: unknown data set 'offences': choose legacy, nibrs or all",
        ),
        (
            ["--dataset", "all", "--base-url", "http://127.0.0.1:9/resource/k7nn-b2ep.json"],
            "error: http://127.0.0.1:9/resource/k7nn-b2ep.json: one endpoint cannot serve the "
            "data sets legacy, nibrs; give a template containing {id} or a portal root ending "
            "in /",
        ),
    ],
)
def test_cli_refuses_an_unknown_dataset_with_one_error_line(tmp_path, args, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["fetch", "--out", str(out), *args])
    assert result.exit_code == 1
    assert errors_of(result) == [message]
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
