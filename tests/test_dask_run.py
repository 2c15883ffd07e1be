"""`geo-crime run DATASET --engine dask` against the in-memory run, on real data.

The run's row-reading stages (report tables, division check, coverage, trend and hour x weekday
figures, study divisions, cubes) run per partition on a cluster; what a person reads must not
depend on that. One dataset of two batches (the 2024 reduced files and West LA 2020, then NIBRS
offence records of 2025, so both records systems are in and the break summary is written) is
run both ways with a city-wide H3 + reporting-district study (every division but the one across
the break: studies of one run share no row or select the same rows), a West LA study and one
division across the break (its emerging hot spots run on the harmonised-category cube).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.cube.panel import Cube
from geo_crime.ingest import load_incidents, read_incident_dataset, write_incident_dataset
from geo_crime.pipeline import run_pipeline
from geo_crime.publish.figures.hours import hour_weekday_matrix
from geo_crime.publish.figures.trends import trend_data
from geo_crime.record.breaks import level_shift
from geo_crime.record.tallies import RunTally, StudyTally
from geo_crime.settings import RunSettings, StudySettings
from geo_crime.units import incidents_outside_division
from tests.fakes.dask_cubes import assert_same_cube, separate_cluster
from tests.fakes.nibrs_fixtures import nibrs_offense_records, write_ndjson_gz
from tests.fakes.shared_data import REDUCED_DIR, WESTLA, crime_file, westla_rd_study

#: A division with NIBRS fixture cases (they take their places from real legacy rows).
BREAK_AREA = 1

STUDIES = [
    StudySettings(
        name="city",
        areas=[area for area in range(1, 22) if area != BREAK_AREA],
        start="2024-01-01",
        end="2024-10-01",
        units=["h3:8", "rd"],
        freq="W",
        forecast=False,
        statistics=["moran", "gi", "emerging"],
    ),
    westla_rd_study(["moran", "gi", "lisa"]),
    StudySettings(
        name="across_break",
        areas=[BREAK_AREA],
        start="2024-01-01",
        end="2026-01-01",
        units=["rd"],
        freq="M",
        forecast=False,
        statistics=["emerging"],
    ),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The 2024 reduced files and West LA 2020 as a dataset, with their in-memory frame."""
    inputs = [crime_file(REDUCED_DIR), crime_file(WESTLA)]
    frame, report = load_incidents(inputs, cache=False)
    folder = tmp_path_factory.mktemp("store")
    path = folder / "incidents"
    write_incident_dataset(frame, report, path, inputs=inputs)
    records = nibrs_offense_records()
    assert any(int(r["area"]) == BREAK_AREA for r in records)
    nibrs = write_ndjson_gz(folder / "nibrs_2025.ndjson.gz", records)
    nibrs_frame, nibrs_report = load_incidents([nibrs], cache=False)
    write_incident_dataset(nibrs_frame, nibrs_report, path, inputs=[nibrs], append=True)
    both, _ = read_incident_dataset(path)  # the two batches, as the store reads them back
    assert len(both) == len(frame) + len(nibrs_frame)
    return path, both


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


@pytest.fixture(scope="module")
def both_runs(dataset, tmp_path_factory):
    """The dataset run in memory (the API), then by ``geo-crime run DIR --engine dask
    --scheduler ADDRESS`` on a separate cluster on 127.0.0.1, with the same TOML settings."""
    path, _ = dataset
    outputs = tmp_path_factory.mktemp("runs")
    fields = ("name", "areas", "start", "end", "units", "freq", "forecast", "statistics")
    lines = ["[run]", "permutations = 19", "cache = false", ""]
    for study in STUDIES:
        lines.append("[[study]]")
        lines += [f"{key} = {_toml(getattr(study, key))}" for key in fields]
        lines.append("")
    config = outputs / "run.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    common = {"config_file": config, "inputs": [str(path)], "outputs": str(outputs)}
    memory = run_pipeline(RunSettings.from_sources(name="memory", **common), quiet=True).folder
    with separate_cluster() as cluster:
        args = ["run", str(path), "--config", str(config), "--outputs", str(outputs)]
        args += ["--name", "dask", "--engine", "dask", "--scheduler", cluster.scheduler_address]
        result = CliRunner().invoke(app, [*args, "--quiet"])
        assert result.exit_code == 0, result.output
    dask = Path(result.output.strip().splitlines()[-1])
    assert dask == outputs / "dask"
    return memory, dask


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_dask_run_reads_as_the_memory_run(both_runs):
    """Same report (one engine sentence more), same summary, same public files."""
    memory, dask = both_runs
    text = {
        name: (folder / "report.md").read_text().splitlines()
        for name, folder in (("memory", memory), ("dask", dask))
    }
    extra = [line for line in text["dask"] if line not in text["memory"]]
    assert len(extra) == 1 and extra[0].startswith("Engine: a Dask cluster of 2 worker(s)")
    assert [line for line in text["dask"] if line != extra[0]] == text["memory"]
    # the numbers a reader checks first are really there
    counted = r"[\d,]+ incidents from the incident dataset `incidents` \(2 batch\(es\)\)\."
    assert any(re.fullmatch(counted, line) for line in text["dask"])
    assert any("records system" in line.lower() for line in text["dask"])
    summary = {
        n: json.loads((f / "summary.json").read_text())
        for n, f in (("memory", memory), ("dask", dask))
    }
    assert summary["dask"] == summary["memory"]
    assert summary["dask"]["city"]["incidents"] > 10_000
    assert "records_system_break" in summary["dask"]
    # the division across the break: its emerging hot spots use the harmonised categories
    emerging = summary["dask"]["across_break"]["units"]["rd"]["statistics"]["emerging"]
    assert "crime_categories" in emerging or "not_computed" in emerging, emerging
    assert summary["dask"]["across_break"]["incidents"] > 1_000
    assert summary["dask"]["division_check"]["checked"] > 10_000
    public = _files(memory / "public")
    assert public == _files(dask / "public")
    assert any(p.endswith("trend.png") for p in public)
    assert any(p.endswith("hour_weekday.png") for p in public)
    for name in sorted(public):
        a, b = memory / "public" / name, dask / "public" / name
        if name.endswith(".html"):  # folium names its elements at random
            strip = re.compile(r"[0-9a-f]{32}")
            assert strip.sub("", a.read_text()) == strip.sub("", b.read_text()), name
        elif name.endswith(".gpkg"):  # the file stamps its writing time: compare every layer
            for layer, _ in pyogrio.list_layers(a):
                pd.testing.assert_frame_equal(
                    pyogrio.read_dataframe(a, layer=layer), pyogrio.read_dataframe(b, layer=layer)
                )
        else:  # figures, GeoJSON, CSV: byte for byte
            assert a.read_bytes() == b.read_bytes(), name


def test_dask_run_cubes_equal_and_no_row_copy(both_runs, dataset):
    """Every cube equals the in-memory one; the dask run writes no copy of the rows."""
    memory, dask = both_runs
    cubes = sorted(p.relative_to(memory).as_posix() for p in memory.glob("analysis/*/cube_*"))
    assert len(cubes) == 4
    for name in cubes:
        got, want = Cube.load(dask / name), Cube.load(memory / name)
        assert_same_cube(got, want)
        assert got.meta["engine"] == "dask"
    assert (memory / "analysis" / "incidents.parquet").exists()
    assert not (dask / "analysis" / "incidents.parquet").exists()
    note = (dask / "analysis" / "README.txt").read_text()
    assert str(dataset[0]) in note and "no copy" in note
    cleaning = {
        n: json.loads((f / "cleaning_report.json").read_text())
        for n, f in (("memory", memory), ("dask", dask))
    }
    assert cleaning["dask"] == cleaning["memory"]


def test_tallies_of_two_halves_add_up(dataset):
    """Tallies of two batches of rows, added, finish into the numbers of all rows at once."""
    _, frame = dataset
    halves = frame.iloc[::2], frame.iloc[1::2]
    whole = RunTally.of_rows(frame)
    added = RunTally.of_rows(halves[0]) + RunTally.of_rows(halves[1])
    assert added.total == len(frame) == whole.total
    pd.testing.assert_frame_equal(added.data_summary(), whole.data_summary())
    pd.testing.assert_frame_equal(added.severity_by_category(), whole.severity_by_category())
    pd.testing.assert_frame_equal(level_shift(added), level_shift(frame))
    assert added.systems == {"legacy", "nibrs"}
    # the category table against its definition on the rows
    theft = frame[frame["crime_category"].astype("string") == "theft"]
    row = whole.severity_by_category().set_index("crime_category").loc["theft"]
    assert row["incidents"] == len(theft)
    assert row["severity_sum"] == int(theft["severity"].sum())
    study = frame[frame["area"] == 8]
    parts = StudyTally.of_rows(study.iloc[::3]) + StudyTally.of_rows(study.iloc[1::3])
    parts = parts + StudyTally.of_rows(study.iloc[2::3])
    from geo_crime.record.coverage import check_coverage

    coverage = check_coverage(frame, freq="W")
    got, want = trend_data(parts, coverage), trend_data(study, coverage)
    pd.testing.assert_frame_equal(got.city, want.city)
    pd.testing.assert_frame_equal(got.areas, want.areas)
    pd.testing.assert_frame_equal(got.spans, want.spans)
    assert got.names == want.names and (got.first_day, got.last_day) == (
        want.first_day,
        want.last_day,
    )
    hours_got, hours_want = hour_weekday_matrix(parts), hour_weekday_matrix(study)
    pd.testing.assert_frame_equal(hours_got.matrix, hours_want.matrix)
    pd.testing.assert_frame_equal(hours_got.placeholders, hours_want.placeholders)
    assert (hours_got.n_known, hours_got.n_unknown) == (hours_want.n_known, hours_want.n_unknown)
    assert int(hours_want.matrix.to_numpy().sum()) == hours_want.n_known > 1_000
    assert parts.last_occurred == study["occurred_at"].max()
    checks = [incidents_outside_division(h) for h in halves]
    summed, direct = (checks[0] + checks[1]).to_dict(), incidents_outside_division(frame).to_dict()
    assert summed == direct and direct["checked"] > 10_000


def test_dask_run_bad_options(dataset, tmp_path):
    """A crime file or several inputs with --engine dask, or cluster flags in memory: one
    error line each, exit 1, no output folder."""
    path, _ = dataset
    runner = CliRunner()
    cases = [
        ([str(crime_file(WESTLA)), "--engine", "dask"], "reads one dataset folder"),
        ([str(path), str(crime_file(WESTLA)), "--engine", "dask"], "reads one dataset folder"),
        ([str(path), "--workers", "2"], "apply to --engine dask only"),
        ([str(path), "--engine", "spark"], "--engine must be"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["run", *args, "--outputs", str(tmp_path), "--name", "x"])
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert not (tmp_path / "x").exists()


def test_derived_districts_from_point_counts(dataset):
    """Reporting districts drawn from the incidents per distinct point (what a cluster sends)
    are those drawn from every row: same polygons, same incident counts, same report."""
    from geo_crime.cube.dask_incidents import _add_counts, _point_counts, unit_columns
    from geo_crime.units.districts import derive_rd_layer

    _, frame = dataset
    columns = unit_columns("rd")
    points = _add_counts(
        _point_counts(frame.iloc[::2], columns), _point_counts(frame.iloc[1::2], columns)
    )
    assert len(points) < len(frame) / 2  # hundred-block coordinates repeat
    from_rows, report_rows = derive_rd_layer(frame)
    from_points, report_points = derive_rd_layer(points)
    assert report_points.to_dict() == report_rows.to_dict()
    assert report_rows.total == len(frame) and report_rows.used > 100_000
    pd.testing.assert_frame_equal(
        from_points.drop(columns="geometry"), from_rows.drop(columns="geometry")
    )
    assert from_points.geometry.geom_equals_exact(from_rows.geometry, 0).all()
    assert int(from_rows["n_incidents"].sum()) == report_rows.used
