"""The command line end to end on real rows: ingest -> cube -> hotspots -> map -> export."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.cube import Cube
from tests.shared_data import REDUCED_DIR, crime_file

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
