"""No command destroys an input: an output that is, holds or lies inside an input (incident
files, polygon unit layers, cubes, models, configs), named directly or through a symbolic or hard
link, is refused before any work; a run never replaces a folder it did not create; staging
folders of dead runs are cleaned; formats are judged up front; a file named like a glob is read
as that file. Every attack here exited 0 and destroyed its input before."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.fakes.cli_errors import cli, error_line, official_rows
from tests.fakes.shared_data import require_data

DIVISIONS_LAYER = "boundaries/lapd_divisions__LAPD_Division_5922489107755548254.geojson"

LIGHT_STUDY = (
    '[[study]]\nname = "s"\nunits = ["{units}"]\nfreq = "M"\nstatistics = []\nforecast = false\n'
)


def _ok(*args: str):
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result


def _refused(*args: str) -> str:
    """Run a command that must be refused: exit status 1 and its one error line."""
    result = cli(*args)
    assert result.exit_code == 1, result.output
    return error_line(result)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _light_config(path: Path, units: str = "division") -> Path:
    """A run config with one quick study (divisions, months, no statistics, no forecast)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LIGHT_STUDY.format(units=units), encoding="utf-8")
    return path


def _polygons(path: Path) -> Path:
    """A real polygon unit layer (the LAPD divisions) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(require_data() / DIVISIONS_LAYER, path)
    return path


def _dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """300 real rows of the official export, ingested and cubed (divisions x months)."""
    folder = tmp_path_factory.mktemp("no_destroy")
    rows = official_rows(folder / "lapd.csv")
    _ok("ingest", str(rows), "-o", str(folder / "incidents.parquet"), "--no-cache")
    _ok(
        "cube",
        str(folder / "incidents.parquet"),
        "-o",
        str(folder / "cube.parquet"),
        *("--unit", "division", "--freq", "M", "--no-population", "--include-incomplete"),
    )
    return folder


# --- the four attacks ----------------------------------------------------------------------


def test_a_run_named_after_the_folder_of_its_input_leaves_that_folder_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    official_rows(tmp_path / "mydata" / "lapd.csv")
    (tmp_path / "mydata" / "notes.txt").write_text("where the rows came from\n", encoding="utf-8")
    before = _snapshot(tmp_path / "mydata")
    _light_config(tmp_path / "cfg" / "run.toml")
    line = _refused(
        "run", "mydata/lapd.csv", "--config", "cfg/run.toml", "--outputs", ".", "--name", "mydata"
    )
    assert line == (
        "error: mydata: the output folder holds the input mydata/lapd.csv; choose another output"
    )
    assert _snapshot(tmp_path / "mydata") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg", "mydata"]  # no staging left


def test_train_into_the_folder_of_its_cube_is_refused(work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    shutil.copyfile(work / "cube.parquet", tmp_path / "work" / "cube.parquet")
    before = _snapshot(tmp_path / "work")
    line = _refused("train", "work/cube.parquet", "-o", "work", "--fast")
    assert line == (
        "error: work: the output folder holds the input work/cube.parquet; choose another output"
    )
    assert _snapshot(tmp_path / "work") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_export_over_its_own_cube_is_refused(work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g").mkdir()
    shutil.copyfile(work / "cube.parquet", tmp_path / "g" / "summary.parquet")
    before = _snapshot(tmp_path / "g")
    line = _refused("export", "g/summary.parquet", "-o", "g", "--format", "parquet", "--stats", "")
    assert line == (
        "error: g: the output folder holds the input g/summary.parquet; choose another output"
    )
    assert _snapshot(tmp_path / "g") == before


def test_a_cube_over_its_polygon_unit_layer_is_refused(work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(work / "incidents.parquet", tmp_path / "inc.parquet")
    _polygons(tmp_path / "poly.geojson")
    before = (tmp_path / "poly.geojson").read_bytes()
    line = _refused("cube", "inc.parquet", "--unit", "poly.geojson", "-o", "poly.geojson")
    assert line == (
        "error: poly.geojson: the output would overwrite an input file (poly.geojson); "
        "choose another output"
    )
    assert (tmp_path / "poly.geojson").read_bytes() == before
    # the same layer as the study area is an input too
    line = _refused(
        "cube",
        "inc.parquet",
        *("--unit", "h3:7", "--study-area", "poly.geojson", "-o", "poly.geojson"),
    )
    assert "would overwrite an input file (poly.geojson)" in line
    assert (tmp_path / "poly.geojson").read_bytes() == before


def test_the_files_of_a_shapefile_unit_layer_are_inputs_too(work, tmp_path, monkeypatch):
    import geopandas as gpd

    from geo_crime.units import unit_files

    monkeypatch.chdir(tmp_path)
    (tmp_path / "shp").mkdir()
    gpd.read_file(_polygons(tmp_path / "poly.geojson")).to_file(tmp_path / "shp" / "poly.shp")
    Path("shp/poly.parquet").write_bytes(b"an output of an earlier cube\n")  # not a part
    parts = [Path(f"shp/poly{ext}") for ext in (".shp", ".cpg", ".dbf", ".prj", ".shx")]
    assert unit_files("h3:8", "rd", "shp/poly.shp", "city", "data") == parts
    before = _snapshot(tmp_path / "shp")
    line = _refused(
        "cube", str(work / "incidents.parquet"), "--unit", "shp/poly.shp", "-o", "shp/poly.dbf"
    )
    assert line == (
        "error: shp/poly.dbf: the output would overwrite an input file (shp/poly.dbf); "
        "choose another output"
    )
    assert _snapshot(tmp_path / "shp") == before


# --- through links -------------------------------------------------------------------------


def test_a_symbolic_link_does_not_hide_an_input(work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    shutil.copyfile(work / "cube.parquet", tmp_path / "work" / "cube.parquet")
    _polygons(tmp_path / "poly.geojson")
    Path("link").symlink_to("work", target_is_directory=True)
    Path("units.parquet").symlink_to("poly.geojson")
    before = _snapshot(tmp_path)
    # the output folder is a link to the folder of the cube
    line = _refused("train", "work/cube.parquet", "-o", "link", "--fast")
    assert line.startswith("error: link: the output folder holds the input work/cube.parquet")
    # the input is named through a linked folder
    line = _refused("export", "link/cube.parquet", "-o", "work", "--format", "parquet")
    assert line.startswith("error: work: the output folder holds the input link/cube.parquet")
    # the output file is a link to the polygon layer
    line = _refused(
        "cube", str(work / "incidents.parquet"), "--unit", "poly.geojson", "-o", "units.parquet"
    )
    assert "units.parquet: the output would overwrite an input file (poly.geojson)" in line
    assert _snapshot(tmp_path) == before
    assert Path("units.parquet").is_symlink()


def test_a_hard_link_does_not_hide_an_input(work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(work / "cube.parquet", tmp_path / "cube.parquet")
    _polygons(tmp_path / "poly.geojson")
    os.link("poly.geojson", "units.parquet")
    os.link("cube.parquet", "gi.parquet")
    before = _snapshot(tmp_path)
    line = _refused(
        "cube", str(work / "incidents.parquet"), "--unit", "poly.geojson", "-o", "units.parquet"
    )
    assert line == (
        "error: units.parquet: the output would overwrite an input file (poly.geojson); "
        "choose another output"
    )
    line = _refused("hotspots", "cube.parquet", "-o", "gi.parquet", "--permutations", "9")
    assert "gi.parquet: the output would overwrite an input file (cube.parquet)" in line
    assert _snapshot(tmp_path) == before
    assert os.stat("poly.geojson").st_nlink == 2


def test_an_output_inside_an_input_folder_is_refused(work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _ok("ingest", str(work / "lapd.csv"), "--dataset", "ds", "--no-cache")
    before = _snapshot(tmp_path / "ds")
    line = _refused("coverage", "ds", "-o", "ds/coverage.csv")
    assert line == (
        "error: ds/coverage.csv: the output lies inside the input folder ds; choose another output"
    )
    # a folder named as input of ingest is an input too
    official_rows(tmp_path / "raw" / "lapd.csv")
    line = _refused("ingest", "raw", "-o", "raw/incidents.parquet")
    assert line.startswith("error: raw/incidents.parquet: the output lies inside the input")
    assert _snapshot(tmp_path / "ds") == before
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["lapd.csv"]


@pytest.mark.parametrize("held", ["config", "polygons"])
def test_a_run_folder_holding_its_config_or_unit_layer_is_refused(tmp_path, monkeypatch, held):
    monkeypatch.chdir(tmp_path)
    official_rows(tmp_path / "rows" / "lapd.csv")
    if held == "config":
        _light_config(tmp_path / "mydata" / "run.toml")
        config, inside = "mydata/run.toml", "mydata/run.toml"
    else:
        _polygons(tmp_path / "mydata" / "poly.geojson")
        _light_config(tmp_path / "run.toml", units="mydata/poly.geojson")
        config, inside = "run.toml", "mydata/poly.geojson"
    before = _snapshot(tmp_path / "mydata")
    line = _refused(
        "run", "rows/lapd.csv", "--config", config, "--outputs", ".", "--name", "mydata"
    )
    assert (
        line == f"error: mydata: the output folder holds the input {inside}; choose another output"
    )
    assert _snapshot(tmp_path / "mydata") == before


# --- run folders ---------------------------------------------------------------------------


def test_a_run_never_replaces_a_folder_it_did_not_create(work, tmp_path):
    from geo_crime.core.io_utils import OWNED_MARKER

    config = str(_light_config(tmp_path / "run.toml"))
    out = tmp_path / "out"
    (out / "k").mkdir(parents=True)
    (out / "k" / "notes.txt").write_text("my own notes\n", encoding="utf-8")
    run = ("run", str(work / "lapd.csv"), "--config", config, "--outputs", str(out), "--name")
    line = _refused(*run, "k")
    assert line == (
        f"error: {out / 'k'}: a folder geo-crime did not make (no {OWNED_MARKER} in it) and not "
        "empty; it is never replaced: choose another name or output, or remove it yourself"
    )
    assert _snapshot(out / "k") == {"notes.txt": b"my own notes\n"}
    assert sorted(p.name for p in out.iterdir()) == ["k"]
    # an empty folder is used; the run marks it as its own, so the next run may replace it
    (out / "e").mkdir()
    for _ in range(2):
        _ok(*run, "e")
        assert (out / "e" / OWNED_MARKER).is_file()
        assert (out / "e" / "report.html").is_file()
        assert not (out / "e" / "INCOMPLETE").exists()
    assert sorted(p.name for p in out.iterdir()) == ["e", "k"]
    # a model folder is replaced whole too: never over a folder of something else
    line = _refused("train", str(work / "cube.parquet"), "-o", str(out / "k"), "--fast")
    assert line.startswith(f"error: {out / 'k'}: a folder geo-crime did not make")
    assert _snapshot(out / "k") == {"notes.txt": b"my own notes\n"}


def test_stale_staging_folders_of_dead_runs_are_cleaned_and_counted(work, tmp_path):
    from geo_crime.core.io_utils import OWNED_MARKER, clean_stale_staging

    out = tmp_path / "out"
    dead = _dead_pid()
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        folders = {
            "killed": out / f".k.incomplete-{dead}",  # its run died
            "aside": out / f".k.replaced-{dead}",  # a finished run moved aside, then killed
            "running": out / f".j.incomplete-{sleeper.pid}",  # a live run
            "forgotten": out / f".f.incomplete-{sleeper.pid}",  # live pid, untouched for days
            "foreign": out / f".notes.incomplete-{dead}",  # named alike, but not ours
        }
        for key, folder in folders.items():
            folder.mkdir(parents=True)
            marker = {"aside": OWNED_MARKER, "foreign": "draft.txt"}.get(key, "INCOMPLETE")
            (folder / marker).write_text("x\n", encoding="utf-8")
        days_ago = time.time() - 3 * 86_400
        for path in (folders["forgotten"] / "INCOMPLETE", folders["forgotten"]):
            os.utime(path, (days_ago, days_ago))
        assert clean_stale_staging(tmp_path / "nowhere") == []
        result = _ok(
            "run",
            str(work / "lapd.csv"),
            *("--config", str(_light_config(tmp_path / "run.toml"))),
            *("--outputs", str(out), "--name", "k"),
        )
        removed = sorted(folders[k].name for k in ("killed", "aside", "forgotten"))
        assert f"removed 3 stale staging folders of runs that died: {', '.join(removed)}" in (
            result.output
        )
        left = {folders[k].name for k in ("running", "foreign")} | {"k"}
        assert {p.name for p in out.iterdir()} == left
        assert clean_stale_staging(out) == []  # nothing more to clean; the live run is kept
    finally:
        sleeper.kill()
        sleeper.wait()
    assert clean_stale_staging(out) == [folders["running"]]


# --- formats before work, literal paths ----------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            ["export", "{bad}", "-o", "{out}/layers", "--format", "shp"],
            "error: unknown export format(s) ['shp']; choose from ['geojson', 'gpkg', 'parquet']",
        ),
        (
            ["hotspots", "{bad}", "-o", "{out}/gi.txt"],
            "error: {out}/gi.txt: unknown output format '.txt' "
            "(use .geojson, .json, .gpkg, .parquet, .csv)",
        ),
        (
            ["cube", "{work}/incidents.parquet", "-o", "{out}/cube.csv"],
            "error: {out}/cube.csv: unknown output format '.csv' (use .parquet)",
        ),
        (
            ["map", "{bad}", "-o", "{out}/map.png"],
            "error: {out}/map.png: unknown output format '.png' (use .html, .htm)",
        ),
        (
            ["ingest", "{work}/lapd.csv", "-o", "{out}/incidents.csv"],
            "error: {out}/incidents.csv: unknown output format '.csv' (use .parquet)",
        ),
    ],
)
def test_an_unknown_output_format_is_refused_before_any_work(work, tmp_path, command, expected):
    """The input named ``{bad}`` is not a cube: a command that judged the format after reading
    it would complain about the input instead."""
    bad = tmp_path / "notacube.parquet"
    bad.write_text("not a cube\n", encoding="utf-8")
    out = tmp_path / "out"
    names = {"bad": bad, "out": out, "work": work}
    assert _refused(*(part.format(**names) for part in command)) == expected.format(**names)
    assert not out.exists()


def test_a_file_named_like_a_glob_is_read_as_that_file(tmp_path):
    from geo_crime.ingest import expand_inputs

    literal = official_rows(tmp_path / "lapd[1].csv")
    decoy = official_rows(tmp_path / "lapd1.csv", rows=120, skip=300)  # what the glob matches
    assert expand_inputs([str(literal)]) == [literal]
    _ok("ingest", str(literal), "-o", str(tmp_path / "literal.parquet"), "--no-cache")
    assert len(pd.read_parquet(tmp_path / "literal.parquet")) == 300
    # a pattern that names no file is still a pattern
    assert expand_inputs([str(tmp_path / "lapd*.csv")]) == [decoy, literal]
    _ok("ingest", str(tmp_path / "lapd*.csv"), "-o", str(tmp_path / "both.parquet"), "--no-cache")
    assert len(pd.read_parquet(tmp_path / "both.parquet")) == 420
