"""A pipeline that cannot lose or corrupt data: inputs never overwritten, names that stay under
the outputs folder, reports that render data as data, atomic runs, one line for every error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import typer

from geo_crime.cli.app import user_errors
from geo_crime.core.errors import ConfigError
from geo_crime.core.io_utils import atomic_path
from geo_crime.report import markdown_to_html, md_code, md_text
from geo_crime.settings import STUDY_SCHEMA, RunSettings, StudySettings
from geo_crime.units.spec import unit_label
from tests.fakes.cli_errors import cli as _cli
from tests.fakes.cli_errors import error_line as _error_line
from tests.fakes.cli_errors import official_rows


@pytest.fixture(scope="module")
def small_official(tmp_path_factory) -> Path:
    """300 real rows of the official export as a plain CSV."""
    return official_rows(tmp_path_factory.mktemp("official") / "official.csv")


# --- inputs are never overwritten -----------------------------------------------------------


def test_ingest_refuses_to_overwrite_its_input(small_official, tmp_path):
    copy = tmp_path / "x.csv"
    copy.write_bytes(small_official.read_bytes())
    before = copy.read_bytes()
    result = _cli("ingest", str(copy), "-o", str(copy))
    assert result.exit_code == 1
    assert "would overwrite an input file" in _error_line(result)
    assert copy.read_bytes() == before
    # through a symlink, and as the cleaning report, too
    link = tmp_path / "link.parquet"
    link.symlink_to(copy)
    result = _cli("ingest", str(copy), "-o", str(link))
    assert result.exit_code == 1 and "overwrite an input" in _error_line(result)
    result = _cli("ingest", str(copy), "-o", str(tmp_path / "ok.parquet"), "--report", str(copy))
    assert result.exit_code == 1 and copy.read_bytes() == before
    assert not (tmp_path / "ok.parquet").exists()


def test_outputs_never_go_into_the_data_folder(small_official, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("GEO_CRIME_DATA", str(data))
    result = _cli("ingest", str(small_official), "-o", str(data / "sub" / "incidents.parquet"))
    assert result.exit_code == 1
    assert "outputs never go into the data folder" in _error_line(result)
    assert list(data.iterdir()) == []


def test_output_that_is_a_folder_a_device_or_unwritable_is_one_line(small_official, tmp_path):
    result = _cli("ingest", str(small_official), "-o", str(tmp_path))
    assert result.exit_code == 1 and _error_line(result).endswith("is a folder, not a file")
    result = _cli("ingest", str(small_official), "-o", "/dev/null")
    assert result.exit_code == 1 and "is not a regular file" in _error_line(result)
    assert Path("/dev/null").is_char_device()
    # /sys refuses new files even to root: the check runs before any work is done
    result = _cli("ingest", str(small_official), "-o", "/sys/incidents.parquet")
    assert result.exit_code == 1
    assert "cannot write into /sys" in _error_line(result)


def test_disk_full_is_one_line_naming_the_output_and_leaves_nothing(capsys, tmp_path):
    output = tmp_path / "cube.parquet"
    full = open("/dev/full", "w")  # noqa: SIM115 - closed below, inside the guarded block
    with pytest.raises(typer.Exit) as stopped, user_errors(), atomic_path(output):
        full.write("x" * 100_000)
        full.close()  # a real ENOSPC while the output is written
    assert stopped.value.exit_code == 1
    assert capsys.readouterr().err.strip() == f"error: {output}: no space left on the device"
    assert list(tmp_path.iterdir()) == []


# --- typed settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "line", "expected"),
    [
        (
            "run",
            'permutations = "many"',
            "permutations must be an integer from 1 to 99999, got 'many'",
        ),
        (
            "run",
            'k_anonymity = "3"',
            "k_anonymity must be an integer from 0 to 1000, got '3' (str)",
        ),
        ("run", "offline_map = 1", "offline_map must be true or false, got 1 (int)"),
        ("run", "coverage_threshold = 1.5", "coverage_threshold must be a number between 0 and 1"),
        ("run", "permutations = true", "permutations must be an integer"),
        ("run", 'min_date = "1/1/10"', 'min_date must be an ISO date such as "2010-01-01"'),
        ("run", 'name = "../escape"', "run name '../escape' may only use letters"),
        ("study", 'areas = "8"', "areas must be a list of LAPD division numbers 1-21, e.g. [8]"),
        ("study", "areas = [8, 22]", "areas must be a list of LAPD division numbers 1-21"),
        ("study", 'start = "yesterday"', 'start must be an ISO date such as "2024-01-01"'),
        ("study", 'units = ["h3:12"]', "units must be a list of unit specs"),
        ("study", 'freq = "weekly"', "freq must be 'D', 'W' or 'M', got 'weekly'"),
        ("study", 'statistics = ["gi", "kriging"]', "statistics must be a list of 'moran'"),
        ("study", "forecast = 0", "forecast must be true or false, got 0 (int)"),
    ],
)
def test_every_bad_setting_is_one_line_naming_key_type_and_value(tmp_path, table, line, expected):
    config = tmp_path / "run.toml"
    study = 'name = "s"\n' + (line + "\n" if table == "study" else "")
    run = line + "\n" if table == "run" else ""
    config.write_text(f"[run]\n{run}\n[[study]]\n{study}", encoding="utf-8")
    out = tmp_path / "out"
    result = _cli("run", "--config", str(config), "--outputs", str(out))
    assert result.exit_code == 1
    message = _error_line(result)
    assert expected in message, message
    assert str(config) in message or "run name" in message
    assert not out.exists()  # refused before any work


def test_study_names_are_never_paths(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[[study]]\nname = "../../etc/evil"\n', encoding="utf-8")
    result = _cli("run", "--config", str(config), "--outputs", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "study name '../../etc/evil' may only use letters" in _error_line(result)
    assert unit_label("/tmp/a b/../my layer.geojson") == "my_layer"
    assert unit_label("h3:8") == "h38" and unit_label("rd") == "rd"


def test_the_settings_schema_covers_every_study_field():
    assert set(STUDY_SCHEMA) == set(StudySettings.__dataclass_fields__)
    assert RunSettings.from_sources(cache=False).cache is False
    with pytest.raises(ConfigError, match="command line: cache must be true or false"):
        RunSettings.from_sources(cache="no")


# --- reports render data as data -----------------------------------------------------------


def test_markdown_from_the_data_cannot_embed_a_local_file(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nSECRET-BYTES")
    base = tmp_path / "run"
    base.mkdir()
    figure = base / "fig.png"
    figure.write_bytes(b"\x89PNG\r\n\x1a\nFIGURE")
    hostile = f"`` ![a]({secret}) `` <img src=x onerror=alert(1)> | ![b](../secret.png)"
    text = (
        f"- {md_code(hostile)}\n\n| unit |\n| --- |\n| {md_text(hostile)} |\n\n"
        f"![b](../secret.png)\n\n![fig](fig.png)\n"
    )
    html = markdown_to_html(text, base=base, images=[figure])
    import base64

    assert base64.b64encode(secret.read_bytes()).decode() not in html
    assert base64.b64encode(figure.read_bytes()).decode() in html
    assert "onerror=alert(1)>" not in html and "&lt;img" in html
    assert html.count("<img") == 2  # the report's own image reference and the figure


def test_a_hostile_cell_in_real_rows_stays_text_in_the_report(small_official, tmp_path):
    rows = pd.read_csv(small_official, dtype=str)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nSECRET-BYTES")
    rows.loc[5, "LAT"] = f"`` ![a]({secret}) ``"
    rows.loc[6, "LON"] = "<script>alert(1)</script>"
    source = tmp_path / "hostile.csv"
    rows.to_csv(source, index=False)
    config = tmp_path / "run.toml"
    config.write_text(
        f'[run]\ninputs = ["{source}"]\n\n[[study]]\nname = "s"\nunits = ["division"]\n'
        'freq = "M"\nstatistics = []\nforecast = false\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = _cli(
        "run", "--config", str(config), "--outputs", str(out), "--name", "h", "--no-cache"
    )
    assert result.exit_code == 0, result.output
    report = (out / "h" / "report.md").read_text()
    html = (out / "h" / "report.html").read_text()
    assert "SECRET" not in html and "U0VDUkVU" not in html  # neither raw nor base64
    assert "<script>alert(1)" not in html
    assert "First unparseable rows" in report


# --- atomic runs ---------------------------------------------------------------------------


def test_a_failed_run_leaves_no_output_folder(small_official, tmp_path):
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    config = tmp_path / "run.toml"
    config.write_text(
        f'[run]\ninputs = ["{small_official}"]\n\n[[study]]\nname = "s"\nunits = ["{broken}"]\n'
        "statistics = []\nforecast = false\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = _cli("run", "--config", str(config), "--outputs", str(out), "--name", "f")
    assert result.exit_code == 1
    assert "broken.geojson" in _error_line(result)
    assert list(out.iterdir()) == []  # no outputs/f/, no staging folder


def test_a_killed_run_is_marked_incomplete_and_a_finished_one_replaces_the_old(
    small_official, tmp_path
):
    out = tmp_path / "out"
    config = tmp_path / "run.toml"
    config.write_text(
        f'[run]\ninputs = ["{small_official}"]\n\n[[study]]\nname = "s"\nunits = ["division"]\n'
        'freq = "M"\nstatistics = []\nforecast = false\n',
        encoding="utf-8",
    )
    command = [str(Path(sys.executable).parent / "geo-crime"), "run", "--config", str(config)]
    command += ["--outputs", str(out), "--name", "k"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    staging = []
    while time.monotonic() < deadline and not staging:
        staging = list(out.glob(".k.incomplete-*")) if out.exists() else []
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert staging, "the run never started"
    assert not (out / "k").exists()
    assert (staging[0] / "INCOMPLETE").read_text().startswith("This run did not finish")
    # a finished run of the same name: complete, no marker, replaces any older one
    for attempt in range(2):
        result = _cli("run", "--config", str(config), "--outputs", str(out), "--name", "k")
        assert result.exit_code == 0, result.output
        assert (out / "k" / "report.html").is_file()
        assert not (out / "k" / "INCOMPLETE").exists()
        assert not list(out.glob(".k.replaced-*")), attempt
