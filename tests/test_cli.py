"""The command line end to end on real rows: ingest -> cube -> hotspots -> map -> export; clean
help for every command; what ``run`` prints without a terminal and with ``--quiet``."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import typer
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.cube.panel import Cube
from tests.fakes.shared_data import REDUCED_DIR, WESTLA, crime_file

runner = CliRunner()


def _ok(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + result.stderr
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    inputs = [
        str(crime_file(REDUCED_DIR) / f"Crime_Data_{name}.json.gz")
        for name in ("CENTRAL", "RAMPART", "NEWTON", "HOLLENBECK", "NORTHEAST")
    ]
    _ok(
        [
            "ingest",
            *inputs,
            "-o",
            str(folder / "incidents.parquet"),
            "--report",
            str(folder / "report.json"),
            "--no-cache",
        ]
    )
    _ok(
        [
            "cube",
            str(folder / "incidents.parquet"),
            "-o",
            str(folder / "cube.parquet"),
            "--unit",
            "h3:8",
            "--freq",
            "W",
            "--study-area",
            "divisions",
        ]
    )
    return folder


def test_ingest_and_cube(workdir):
    report = json.loads((workdir / "report.json").read_text())
    incidents = pd.read_parquet(workdir / "incidents.parquet")
    assert report["rows_out"] == len(incidents)
    assert set(incidents["area"]) == {1, 2, 4, 11, 13}
    cube = Cube.load(workdir / "cube.parquet")
    assert cube.freq == "W" and cube.units["unit_type"].eq("h3").all()
    assignment = cube.meta["assignment"]
    assert cube.counts.sum() == assignment["assigned"]
    assert assignment["assigned"] + assignment["outside"] + assignment[
        "not_spatially_valid"
    ] == len(incidents)


@pytest.mark.parametrize("unit", ["division", "rd"])
def test_cube_for_other_units(workdir, unit):
    out = workdir / f"cube_{unit}.parquet"
    result = _ok(
        ["cube", str(workdir / "incidents.parquet"), "-o", str(out), "--unit", unit, "--freq", "M"]
    )
    cube = Cube.load(out)
    assert cube.units["unit_type"].eq(unit).all()
    assert "periods complete for every unit" in result.stdout
    if unit == "rd":
        assert cube.meta["approximate"] is True


@pytest.mark.parametrize("stat", ["moran", "lisa", "gi", "emerging"])
def test_hotspots_write_tables_gis_tools_read(workdir, stat):
    out = workdir / f"{stat}.geojson"
    result = _ok(
        [
            "hotspots",
            str(workdir / "cube.parquet"),
            "--stat",
            stat,
            "-o",
            str(out),
            "--permutations",
            "99",
        ]
    )
    table = pyogrio.read_dataframe(out)
    cube = Cube.load(workdir / "cube.parquet")
    assert len(table) == len(cube.units)
    assert stat in result.stdout
    expected = {"moran": "lag_std", "lisa": "cluster", "gi": "gi_bin", "emerging": "category"}
    assert expected[stat] in table.columns


def test_map_and_export(workdir):
    html = workdir / "map.html"
    _ok(
        ["map", str(workdir / "cube.parquet"), "-o", str(html), "--offline", "--permutations", "99"]
    )
    text = html.read_text()
    assert "leaflet" in text.lower() and "https://cdn" not in text
    gis = workdir / "gis"
    _ok(
        [
            "export",
            str(workdir / "cube.parquet"),
            "-o",
            str(gis),
            "--format",
            "gpkg",
            "--permutations",
            "99",
        ]
    )
    layers = {name for name, _ in pyogrio.list_layers(gis / "geo_crime.gpkg")}
    assert {"summary", "gi", "lisa", "emerging"} <= layers
    summary = gpd.read_file(gis / "geo_crime.gpkg", layer="summary")
    cube = Cube.load(workdir / "cube.parquet")
    assert len(summary) == len(cube.units)
    shown = summary.loc[~summary["suppressed"], "count"]
    assert (shown >= 3).all()
    assert summary.loc[summary["suppressed"], "count"].isna().all()


def test_unknown_unit_and_stat_are_clear_errors(workdir):
    bad = runner.invoke(
        app,
        [
            "cube",
            str(workdir / "incidents.parquet"),
            "-o",
            str(workdir / "x.parquet"),
            "--unit",
            "hexes",
        ],
    )
    assert bad.exit_code == 1 and "unknown unit 'hexes'" in bad.stderr
    assert not (workdir / "x.parquet").exists()
    bad = runner.invoke(
        app,
        [
            "hotspots",
            str(workdir / "cube.parquet"),
            "--stat",
            "kriging",
            "-o",
            str(workdir / "k.geojson"),
        ],
    )
    assert bad.exit_code == 1 and "unknown statistic 'kriging'" in bad.stderr
    bad = runner.invoke(
        app,
        [
            "hotspots",
            str(workdir / "incidents.parquet"),
            "--stat",
            "gi",
            "-o",
            str(workdir / "k.geojson"),
        ],
    )
    assert bad.exit_code == 1 and "not a geo_crime cube" in bad.stderr


# --- help: what each option does, no type placeholders -------------------------------------

WIDE = {"COLUMNS": "200"}  # one help text a line
TYPE_PLACEHOLDER = re.compile(r"<(bool|str|int|float|path|file|directory|list\[[^\]]*\])>")


def _command_names() -> list[str]:
    names = [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]
    assert {"ingest", "run", "map", "export"} <= set(names)
    return names


@pytest.mark.parametrize("name", ["", *_command_names()])
def test_help_of_every_command_is_clean(name):
    result = runner.invoke(app, [*([name] if name else []), "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "<bool>" not in text and not TYPE_PLACEHOLDER.search(text), text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    group = typer.main.get_command(app)
    command = group.get_command(click_context(group), name) if name else group
    for param in command.get_params(click_context(command)):
        assert (param.help or "").strip(), f"{name} {param.name}: no help text"
        names = param.opts if isinstance(param, typer.core.TyperOption) else [param.metavar]
        assert all(shown in text for shown in names), f"{names} missing from help"


def click_context(command):
    return command.make_context(command.name, [], resilient_parsing=True)


def test_run_help_documents_quiet():
    text = runner.invoke(app, ["run", "--help"], env=WIDE).stdout
    assert "--quiet" in text and "-q" in text
    assert "print only the output folder" in text


# --- run: plain lines without a terminal, nothing with --quiet -------------------------------


@pytest.fixture(scope="module")
def tiny_run_config(tmp_path_factory):
    """Six months of real West LA rows, reporting districts, one statistic, no forecast."""
    folder = tmp_path_factory.mktemp("run")
    config = folder / "run.toml"
    config.write_text(
        f"""
[run]
inputs = ["{crime_file(WESTLA)}"]
permutations = 9

[[study]]
name = "westla"
areas = [8]
start = "2020-03-01"
end = "2020-09-01"
units = ["rd"]
statistics = ["moran"]
forecast = false
""",
        encoding="utf-8",
    )
    return config


def test_run_without_a_terminal_prints_one_plain_line_pair_per_stage(tiny_run_config, tmp_path):
    result = _ok(
        ["run", "--config", str(tiny_run_config), "--name", "p", "--outputs", str(tmp_path)]
    )
    assert "\x1b" not in result.stderr  # CI logs and pipes get no escape codes
    lines = result.stderr.splitlines()
    stages = [line.removesuffix(" ...") for line in lines[0::2]]
    assert all(line.endswith(" ...") for line in lines[0::2]), lines
    assert all(re.fullmatch(r"  done in \d+\.\d s", line) for line in lines[1::2]), lines
    assert stages[0] == "ingest" and stages[-1] == "report" and len(lines) == 2 * len(stages)
    assert {"coverage", "westla: cube rd", "westla: statistics rd"} <= set(stages)
    assert result.stdout.splitlines()[0].startswith("run 'p' wrote ")


@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_quiet_run_prints_only_the_output_folder(tiny_run_config, tmp_path, flag):
    result = _ok(
        ["run", flag, "--config", str(tiny_run_config), "--name", "q", "--outputs", str(tmp_path)]
    )
    assert result.stderr == ""  # no stage lines, no progress, nothing
    assert result.stdout == f"{tmp_path / 'q'}\n"
    assert (tmp_path / "q" / "report.md").is_file()
