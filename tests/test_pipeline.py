"""`geo-crime run` end to end on the real West LA rows, configured by a TOML file."""

from __future__ import annotations

import json
from pathlib import Path

import pyogrio
from typer.testing import CliRunner

from geo_crime.cli import app
from tests.shared_data import WESTLA, crime_file


def test_run_writes_every_output(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        f"""
[run]
inputs = ["{crime_file(WESTLA)}"]
permutations = 99

[[study]]
name = "westla"
areas = [8]
start = "2020-03-01"
end = "2021-08-01"
units = ["rd"]
freq = "W"
"""
    )
    result = CliRunner().invoke(
        app, ["run", "--config", str(config), "--name", "t", "--outputs", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output + result.stderr
    folder = tmp_path / "out" / "t"
    listed = [line.strip() for line in result.stdout.splitlines()[1:] if line.strip()]
    assert len(listed) > 20 and all(Path(p).is_file() for p in listed)  # the closing summary
    for name in (
        "report.md",
        "report.html",
        "summary.json",
        "cleaning_report.json",
        "coverage.csv",
        "analysis/incidents.parquet",
        "public/westla/map_rd.html",
        "public/westla/gis/geo_crime_rd.gpkg",
        "public/westla/forecast_rd/next_period_forecast.csv",
    ):
        assert (folder / name).is_file(), name
    report = (folder / "report.md").read_text()
    for heading in (
        "## Cleaning",
        "## Coverage",
        "Global Moran's I",
        "Emerging hot spots",
        "#### Forecast and recommendations",
        "## Limitations and responsible use",
        "feedback loops",
        "Recorded crime is not all crime",
    ):
        assert heading.lower() in report.lower(), heading
    summary = json.loads((folder / "summary.json").read_text())
    stats = summary["westla"]["units"]["rd"]["statistics"]
    assert set(stats) == {"moran", "lisa", "gi", "emerging"}
    assert stats["emerging"]["periods"] >= 60
    layers = {
        name for name, _ in pyogrio.list_layers(folder / "public/westla/gis/geo_crime_rd.gpkg")
    }
    assert {"rd_summary", "rd_gi", "rd_lisa", "rd_emerging", "rd_forecast"} <= layers
    html = (folder / "report.html").read_text()
    assert "data:image/png;base64" in html and "<table>" in html
    # nothing victim-level in public outputs
    for path in (folder / "public").rglob("*.geojson"):
        assert "vict_" not in path.read_text()
