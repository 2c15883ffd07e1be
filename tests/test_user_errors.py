"""One clear line for every user error: a hostile tester's cases, each refused by a
:class:`~geo_crime.core.errors.GeoCrimeError` that the command line prints as one ``error:`` line
naming the file, row, column or setting, with a non-zero exit, no traceback and no output left
behind; and a query API that answers or raises a GeoCrimeError, whatever it is given.

Before these checks a config of ``/dev/zero`` was read until the memory ran out, a UTF-16 config
or a study starting in 1677 ended in a traceback, a study with no rows failed without its name,
``k_anonymity = 0`` published single incidents under a report saying small counts are
suppressed, ``permutations = 0`` and unknown measures were accepted, a study with LISA but not
Moran's I failed while publishing, bad rows after a quoted line break were given the wrong line,
two ``DR_NO`` columns or two columns mapped to one field kept one silently, report dates in the
future went uncounted, and the query API raised TypeError or ValueError for arguments of the
wrong type.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.core.errors import ConfigError, GeoCrimeError, InputError
from geo_crime.cube.summary import unit_results
from geo_crime.ingest import load_incidents
from geo_crime.pipeline import run_pipeline
from geo_crime.query import CrimeIndex, check_point
from geo_crime.settings import RunSettings, StudySettings
from geo_crime.stats.hotspots import gi_star_table
from tests.fakes.h3_units import h3_units
from tests.fakes.shared_data import IVANCO, WESTLA, crime_file

runner = CliRunner()

#: The console script, for the cases that must not run inside the test process.
GEO_CRIME = str(Path(sys.executable).parent / "geo-crime")


def _error(result) -> str:
    """The one line a refused command printed on standard error (no traceback, exit != 0)."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _run(config: Path, outputs: Path, *extra: str):
    return runner.invoke(
        app, ["run", "--config", str(config), "--outputs", str(outputs), "--no-cache", *extra]
    )


def _nothing_left(folder: Path) -> None:
    assert not folder.exists() or not any(folder.iterdir()), list(folder.rglob("*"))


@pytest.fixture(scope="module")
def official_rows() -> list[list[str]]:
    """The header and the first 300 real rows of the official export, as CSV fields."""
    with gzip.open(crime_file(IVANCO), "rt", encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(301)]
    return list(csv.reader(lines))


def _write_csv(path: Path, rows: list[list[str]], *, terminator: str = "\n") -> Path:
    """Rows as CSV, every field quoted (so a value may hold a line break or a CR)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=terminator, quoting=csv.QUOTE_ALL).writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    return path


@pytest.fixture(scope="module")
def official_csv(official_rows, tmp_path_factory) -> Path:
    return _write_csv(tmp_path_factory.mktemp("official") / "official.csv", official_rows)


#: The light study of :func:`_config`: divisions, months, no statistics, no forecast.
LIGHT_STUDY = {"name": '"s"', "units": '["division"]', "freq": '"M"', "statistics": "[]"}


def _config(folder: Path, run: str = "", study: str = "", inputs: Path | None = None) -> Path:
    """A config of one light study (:data:`LIGHT_STUDY`) with ``run`` and ``study`` lines added
    (a key ``study`` sets replaces the light study's)."""
    head = f'inputs = ["{inputs}"]\n' if inputs else ""
    given = {line.split("=")[0].strip() for line in study.splitlines()}
    light = "".join(f"{k} = {v}\n" for k, v in LIGHT_STUDY.items() if k not in given)
    path = folder / "run.toml"
    path.write_text(
        f"[run]\n{head}{run}\n[[study]]\n{light}forecast = false\n{study}", encoding="utf-8"
    )
    return path


# --- settings files --------------------------------------------------------------------------


def _limit_memory() -> None:
    """Keep a runaway read from taking the machine with it (2 GB of address space)."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["run", "--config", "/dev/zero"], "error: /dev/zero: not a regular file"),
        (["ingest", "{csv}", "--mapping", "/dev/zero", "-o", "{out}/x.parquet"], "/dev/zero"),
    ],
)
def test_a_settings_file_that_is_a_device_is_refused_before_it_is_read(
    tmp_path, official_csv, command, expected
):
    out = tmp_path / "out"
    args = [part.format(csv=official_csv, out=out) for part in command]
    done = subprocess.run(
        [GEO_CRIME, *args, *(["--outputs", str(out)] if args[0] == "run" else [])],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_memory,  # noqa: PLW1509 (a child of its own, limited before exec)
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: /dev/zero: not a regular file"), lines
    assert expected in lines[0]
    _nothing_left(out)


def test_a_config_over_a_megabyte_is_refused_naming_it(tmp_path, official_csv):
    config = tmp_path / "huge.toml"
    config.write_text(
        f'[run]\ninputs = ["{official_csv}"]\n' + "# padding\n" * 110_000, encoding="utf-8"
    )
    line = _error(_run(config, tmp_path / "out"))
    assert line == f"error: {config}: larger than 1,000,000 bytes, too large for a config file"
    _nothing_left(tmp_path / "out")


def test_a_utf16_config_is_one_line_not_a_traceback(tmp_path):
    config = tmp_path / "utf16.toml"
    config.write_bytes('[run]\nname = "x"\n'.encode("utf-16"))  # starts with FF FE
    assert config.read_bytes()[:2] == b"\xff\xfe"
    line = _error(_run(config, tmp_path / "out"))
    assert line == (
        f"error: {config}: the config file is UTF-16 text (it starts with the bytes FF FE); "
        "save it as UTF-8"
    )
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[run]\nname = "r\xe9sum\xe9"\n')
    assert _error(_run(latin1, tmp_path / "out")).startswith(
        f"error: {latin1}: line 2 of the config file is not UTF-8 text (byte 0xe9"
    )
    _nothing_left(tmp_path / "out")


def test_a_config_that_is_a_folder_is_named_as_one(tmp_path):
    assert _error(_run(tmp_path, tmp_path / "out")) == (
        f"error: {tmp_path}: is a folder, not a config file"
    )


# --- settings values -------------------------------------------------------------------------


def _refused_setting(folder: Path, inputs: Path, table: str, line: str) -> tuple[Path, str]:
    """The config with ``line`` in its ``[run]`` or ``[[study]]`` table, and the one error line
    a run of it prints (after checking it left no output)."""
    config = _config(
        folder,
        run=line + "\n" if table == "run" else "",
        study=line + "\n" if table == "study" else "",
        inputs=inputs,
    )
    message = _error(_run(config, folder / "out"))
    _nothing_left(folder / "out")
    return config, message


def test_settings_built_in_python_get_the_same_checks(tmp_path, official_csv):
    """Settings check themselves when built, and the run checks them again (a setting changed
    after it was built), with the same one-line errors as a config file."""
    with pytest.raises(ConfigError, match=r"^study early: start must be an ISO date .*1677"):
        StudySettings(name="early", start="1677-01-01", units=["division"], forecast=False)
    with pytest.raises(ConfigError, match=r"^run: permutations must be an integer from 1"):
        RunSettings(name="py", permutations=0)
    study = StudySettings(name="early", units=["division"], forecast=False)
    study.start = "1677-01-01"  # changed after it was built: the run checks it again
    settings = RunSettings(
        name="py", inputs=[str(official_csv)], outputs=tmp_path / "out", studies=[study]
    )
    with pytest.raises(ConfigError, match=r"^study early: start must be an ISO date .*1677"):
        run_pipeline(settings, quiet=True)
    settings.studies, settings.permutations = [], 0
    with pytest.raises(ConfigError, match=r"^run: permutations must be an integer from 1"):
        run_pipeline(settings, quiet=True)
    _nothing_left(tmp_path / "out")


def test_a_study_that_selects_no_incident_names_the_study_and_its_window(tmp_path, official_csv):
    config = _config(
        tmp_path,
        study='areas = [8]\nstart = "2030-01-01"\nend = "2031-01-01"\n',
        inputs=official_csv,
    )
    assert _error(_run(config, tmp_path / "out")) == (
        "error: study s: no incident falls in its window (divisions 8, from 2030-01-01 to before "
        "2031-01-01); the run's incidents occur from 2020-01-01 to 2020-12-28"
    )
    _nothing_left(tmp_path / "out")


#: How a date setting outside its range is refused (after the setting's name).
DATES = 'must be an ISO date such as "20'


@pytest.mark.parametrize(
    ("table", "line", "expected"),
    [
        ("study", 'start = "1677-01-01"', f"[[study]] 1: start {DATES}"),
        ("study", 'end = "2300-01-01"', f"[[study]] 1: end {DATES}"),
        ("run", 'min_date = "1600-01-01"', f"[run]: min_date {DATES}"),
        ("run", "permutations = 0", "[run]: permutations must be an integer from 1 to 99999"),
        ("study", 'measure = "cat:burglry"', "[[study]] 1: measure must be 'severity'"),
        ("study", 'statistics = ["gi", "gi"]', "[[study]] 1: statistics must be a list of"),
        ("study", "[[study]]\n[[study]]", "[[study]] 2 needs a name"),
    ],
)
def test_impossible_settings_are_refused_before_any_work(
    tmp_path, official_csv, table, line, expected
):
    """Dates outside 1900-2100 (pandas cannot hold 1677), no permutations, an unknown crime
    category, a statistic twice, a study without a name: one line naming file, table and key."""
    config, message = _refused_setting(tmp_path, official_csv, table, line)
    assert message.startswith(f"error: {config}: {expected}"), message
    if "=" in line:
        assert f"got {line.split('= ')[1]}".replace('"', "'") in message  # the value given
    if DATES in expected:
        assert "(from 1900-01-01 to 2100-12-31)" in message
    if "burglry" in line:
        assert "burglary" in message  # the known categories are listed


def test_k_anonymity_0_warns_before_any_work_and_every_summary_says_suppression_is_off(
    tmp_path, official_csv
):
    config = _config(tmp_path, run="k_anonymity = 0\n", inputs=official_csv)
    command = [GEO_CRIME, "run", "--config", str(config), "--outputs", str(tmp_path / "out")]
    done = subprocess.run(
        [*command, "--name", "k0", "--no-cache"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]  # before the first stage
    assert first.startswith("warning: k_anonymity = 0 turns small-count suppression off: units")
    assert done.stderr.splitlines()[1] == "ingest ..."
    summary = json.loads((tmp_path / "out" / "k0" / "summary.json").read_text())
    assert summary["privacy"]["k_anonymity"] == 0
    assert summary["privacy"]["small_counts_suppressed"] is False
    report = (tmp_path / "out" / "k0" / "report.md").read_text()
    assert "small counts are suppressed" not in report
    assert "small counts are **not** suppressed: k_anonymity = 0 turns" in report
    # the default run says nothing of the kind
    default = RunSettings(name="d", outputs=tmp_path / "d", inputs=[str(official_csv)])
    assert default.suppression_off() == ""


@pytest.fixture(scope="module")
def every_subset(tmp_path_factory):
    """One run of 16 studies: every subset of the four statistics on West LA's reporting
    districts, spring 2020 (real rows)."""
    names = ("moran", "lisa", "gi", "emerging")
    subsets = [list(c) for r in range(5) for c in itertools.combinations(names, r)]
    studies = [
        StudySettings(
            name="s_" + ("_".join(subset) or "none"),
            areas=[8],
            start="2020-03-01",
            end="2020-06-01",
            units=["rd"],
            statistics=subset,
            forecast=False,
        )
        for subset in subsets
    ]
    settings = RunSettings(
        name="subsets",
        inputs=[str(crime_file(WESTLA))],
        outputs=tmp_path_factory.mktemp("subsets"),
        permutations=9,
        cache=False,
        studies=studies,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_pipeline(settings, quiet=True)
    return subsets, json.loads((result.folder / "summary.json").read_text())


def test_every_subset_of_the_statistics_runs(every_subset):
    subsets, summary = every_subset
    for subset in subsets:
        unit = summary["s_" + ("_".join(subset) or "none")]["units"]["rd"]
        assert sorted(unit["statistics"]) == sorted(subset)
        assert not [s for s, v in unit["statistics"].items() if "not_computed" in v], unit
        figures = {Path(p).name for p in unit["public_files"] if p.endswith(".png")}
        # the Moran scatterplot comes from Moran's I, else from the LISA run (binned)
        assert ("moran_scatterplot.png" in figures) == bool({"moran", "lisa"} & set(subset))


# --- ingest ----------------------------------------------------------------------------------


def _ingest(tmp_path: Path, *paths: Path, extra: tuple[str, ...] = ()):
    out, report = tmp_path / "out.parquet", tmp_path / "report.json"
    result = runner.invoke(
        app,
        ["ingest", *map(str, paths), "-o", str(out), "--report", str(report), "--no-cache", *extra],
    )
    return result, out, report


def test_bad_row_lines_count_the_lines_of_the_file(tmp_path, official_rows):
    """A quoted value holding a line break, another holding a CR and two blank lines come before
    the bad rows: each is listed with the line it is on in the file (as an editor numbers them),
    and every kept row keeps its line."""
    rows = [list(row) for row in official_rows[:13]]
    mocodes, crm_cd = rows[0].index("Mocodes"), rows[0].index("Crm Cd")
    rows[2][mocodes] = "0416\n0400"  # one row over two lines
    rows[3][mocodes] = "0416\r0400"  # a CR inside quotes is part of the value
    rows[7][crm_cd] = "six-two-four"
    rows[11] = rows[11][:5]  # too few fields
    text = io.StringIO()
    csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(rows)
    data = text.getvalue().replace(f'\n"{rows[5][0]}"', f'\n\n\n"{rows[5][0]}"')
    path = tmp_path / "quoted.csv"
    path.write_bytes(data.encode())
    result, out, report = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    lines = data.split("\n")  # the file's lines, as sed, grep -n and editors number them
    listed = {row["column"]: row["line"] for row in json.loads(report.read_text())["bad_rows"]}
    assert listed == {"Crm Cd": 11, "*": 15}
    assert "six-two-four" in lines[listed["Crm Cd"] - 1]
    assert lines[listed["*"] - 1].startswith(f'"{rows[11][0]}"')
    kept = pd.read_parquet(out)
    assert kept["source_line"].tolist() == [2, 3, 5, 6, 9, 10, 12, 13, 14, 16]
    for line, dr_no in zip(kept["source_line"], kept["incident_id"], strict=True):
        assert lines[line - 1].startswith(f'"{dr_no}"')
    assert kept.loc[kept["incident_id"] == rows[3][0], "mocodes"].item() == "0416\r0400"


def test_two_columns_with_one_name_are_refused_naming_both(tmp_path, official_rows):
    rows = [[*row, row[0]] for row in official_rows[:20]]  # a second DR_NO, last
    path = _write_csv(tmp_path / "twice.csv", rows)
    result, out, _ = _ingest(tmp_path, path)
    assert _error(result) == (
        f"error: {path}: columns 1 and 29 are both named 'DR_NO': which one to read is "
        "unclear; rename or remove one"
    )
    assert not out.exists()
    # the modified export's known second DATE OCC is still read
    westla, _ = load_incidents(crime_file(WESTLA), cache=False)
    assert len(westla) > 12_000


#: A user mapping of a spreadsheet export onto the canonical fields.
MAPPING = {
    "Case": "incident_id",
    "When": "occurred_date",
    "Offense": "crm_cd_desc",
    "Y": "lat",
    "X": "lon",
}


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        (
            {**MAPPING, "Lat2": "lat"},
            "columns 'Y' and 'Lat2' both map to the field 'lat'; map only one of them",
        ),
        (
            {**MAPPING, "Case": "incident_idd"},
            "the column mapping sends 'Case' to 'incident_idd', which is no canonical field",
        ),
    ],
)
def test_a_mapping_that_collides_or_names_no_field_is_refused(tmp_path, mapping, expected):
    data = tmp_path / "custom.csv"
    data.write_text(
        "Case,When,Offense,Y,X,Lat2\n1,2024-03-01,ROBBERY,34.05,-118.25,34.06\n", encoding="utf-8"
    )
    mapping_file = tmp_path / "map.json"
    mapping_file.write_text(json.dumps(mapping), encoding="utf-8")
    result, out, _ = _ingest(tmp_path, data, extra=("--mapping", str(mapping_file)))
    assert _error(result).startswith(f"error: {data}: {expected}")
    assert not out.exists()


def test_report_dates_in_the_future_are_counted_and_flagged(tmp_path, official_rows):
    rows = [list(row) for row in official_rows[:30]]
    reported = rows[0].index("Date Rptd")
    for row in rows[3:5]:
        row[reported] = "01/02/2099 12:00:00 AM"
    path = _write_csv(tmp_path / "later.csv", rows)
    result, out, report = _ingest(tmp_path, path)
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["reported_in_future"] == 2
    assert "reported in the future (flagged)" in result.stdout
    kept = pd.read_parquet(out).set_index("incident_id")
    assert len(kept) == 29  # kept: the occurrence can be placed in time
    flagged = kept.loc[[rows[3][0], rows[4][0]]]
    assert flagged["date_suspect"].all() and (flagged["reported_at"].dt.year == 2099).all()


# --- the query API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index() -> CrimeIndex:
    """Real West LA incidents and a Gi* table of their H3 cells."""
    incidents, _ = load_incidents(crime_file(WESTLA), cache=False)
    valid = incidents[incidents["spatial_valid"]]
    cells = [h3.latlng_to_cell(a, b, 8) for a, b in zip(valid["lat"], valid["lon"], strict=True)]
    ring = sorted({c for cell in set(cells) for c in h3.grid_disk(cell, 1)})
    counts = pd.Series(cells).value_counts().reindex(ring).fillna(0).to_numpy()
    units = h3_units(ring)
    table = unit_results(units, measures={"count": counts}, tables=[gi_star_table(units, counts)])
    return CrimeIndex(incidents, units={"h3": table})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ix: ix.within_radius(34.05, -118.44, -5), "radius_m must be 0 metres or more"),
        (lambda ix: ix.within_radius(34.05, -118.44, float("inf")), "radius_m must be a finite"),
        (lambda ix: ix.within_radius(34.05, -118.44, "500"), "radius_m must be a number, got '5"),
        (lambda ix: ix.within_radius(34.05, -118.44, 10**400), "radius_m must be a finite"),
        (lambda ix: ix.within_radius(34.05, -118.44, True), "radius_m must be a number, got True"),
        (lambda ix: ix.within_radius("34.05", -118.44, 500), "lat must be a number, got '34.05'"),
        (lambda ix: ix.within_radius(-118.44, 34.05, 500), "look swapped"),
        (lambda ix: ix.within_radius(37.77, -122.42, 500), "are outside Los Angeles County"),
        (lambda ix: ix.within_radius(34.05, -118.44, 9, start="May"), "start must be a date"),
        (lambda ix: ix.within_radius(34.05, -118.44, 9, end=3), "end must be a date"),
        (lambda ix: ix.within_radius(34.05, -118.44, 9, crm_cd=6.5), "crm_cd must be a whole"),
        (lambda ix: ix.within_radius(34.05, -118.44, 9, category=7), "category must be a name"),
        (lambda ix: ix.within_bbox("a", 34.0, -118.4, 34.1), "west must be a number, got 'a'"),
        (lambda ix: ix.within_bbox(-118.5, -95.0, -118.4, 34.1), "south=-95 is no latitude"),
        (lambda ix: ix.within_polygon("POLYGON EMPTY"), "polygon must be a shapely Polygon"),
        (lambda ix: ix.within_polygon(shapely.Polygon()), "polygon must be a shapely Polygon"),
        (lambda ix: ix.unit_at(34.05, -118.44, unit_type=["h3"]), "unit_type must be a name"),
        (lambda ix: ix.nearest_hotspot(34.05, -118.44, min_confidence=[95]), "min_confidence"),
        (lambda ix: ix.nearest_hotspot(34.05, -118.44, min_confidence=80), "must be 90, 95 or"),
        (lambda ix: ix.top_units(3, by=["count"]), "by must be a name (text), got ['count']"),
        (lambda ix: ix.top_units(3, ascending="yes"), "ascending must be True or False"),
        (lambda ix: CrimeIndex("incidents.parquet"), "incidents must be a DataFrame"),
    ],
)
def test_query_arguments_of_the_wrong_kind_are_one_clear_error(index, call, message):
    with pytest.raises(InputError) as raised:
        call(index)
    assert message in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1


#: Anything a caller might pass: numbers of every size, text, None, booleans, containers.
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["34.05", "-118.44", "500", "nan", "2020-05-01", "robbery", "h3", 95, 90]),
    st.lists(st.one_of(st.integers(-5, 1000), st.text(max_size=3)), max_size=3),
    st.sampled_from([34.05, -118.44, 34.0, -118.5, 0.0, 500.0, np.float64(34.04)]),
)

#: Every public entry of the API, fed three arbitrary values.
QUERY_CALLS = {
    "check_point": lambda ix, a, b, c: check_point(a, b),
    "within_radius": lambda ix, a, b, c: ix.within_radius(a, b, c),
    "within_radius filters": lambda ix, a, b, c: ix.within_radius(
        34.05, -118.44, 200, start=a, end=b, category=c
    ),
    "within_radius crm_cd": lambda ix, a, b, c: ix.within_radius(34.05, -118.44, 200, crm_cd=a),
    "within_bbox": lambda ix, a, b, c: ix.within_bbox(a, b, c, 34.06),
    "within_polygon": lambda ix, a, b, c: ix.within_polygon(a),
    "unit_at": lambda ix, a, b, c: ix.unit_at(a, b, unit_type=c),
    "nearest_hotspot": lambda ix, a, b, c: ix.nearest_hotspot(a, b, min_confidence=c),
    "nearest_hotspot unit_type": lambda ix, a, b, c: ix.nearest_hotspot(
        34.05, -118.44, unit_type=a
    ),
    "top_units": lambda ix, a, b, c: ix.top_units(a, by=b, unit_type=c),
    "top_units ascending": lambda ix, a, b, c: ix.top_units(3, ascending=a),
}


@pytest.mark.parametrize("name", sorted(QUERY_CALLS))
def test_the_query_api_answers_or_raises_a_geo_crime_error_whatever_it_is_given(index, name):
    call = QUERY_CALLS[name]

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(anything, anything, anything)
    def check(a, b, c):
        try:
            answer = call(index, a, b, c)
        except GeoCrimeError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert isinstance(answer, pd.DataFrame | tuple)

    check()
