"""`geo-crime run` end to end on the real West LA rows, configured by a TOML file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyogrio
from typer.testing import CliRunner

from geo_crime.cli import app
from tests.fakes.shared_data import WESTLA, crime_file


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
    _check_one_rate_and_dated_forecast(folder)


def _check_one_rate_and_dated_forecast(folder: Path) -> None:
    """The map, its figure, the GIS layer and the report show one rate; the forecast is dated."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    from geo_crime.publish.maps import classify_values

    report = (folder / "report.md").read_text()
    label = "Severity per 1,000 residents per complete week (Empirical Bayes smoothed)"
    summary = pyogrio.read_dataframe(folder / "public/westla/gis/geo_crime_rd.gpkg", "rd_summary")
    rate = summary["severity_rate"].to_numpy(dtype=float)
    suppressed = summary["suppressed"].to_numpy(dtype=bool)
    assert np.isnan(rate[suppressed]).all()  # suppressed units carry no rate
    classes = classify_values(np.where(suppressed, np.nan, rate), scheme="quantiles").labels()
    figure = Image.open(folder / "public/westla/figures_rd/severity_choropleth.png")
    description = figure.text["Description"]
    assert description.startswith(label) and description.endswith("; ".join(classes))
    html = (folder / "public/westla/map_rd.html").read_text()
    assert json.dumps(label)[1:-1] in html
    for text in classes:  # the same class breaks on the map and in the figure
        assert json.dumps(text)[1:-1] in html, text
    # the report's rate ranking shows the GIS layer's numbers
    ranking = report[report.index(f"Top units by {label[0].lower()}{label[1:]}") :]
    # rows name units by place: "| Sawtelle (West Los Angeles) - 0853 | ..."
    first = next(line for line in ranking.splitlines() if re.match(r"\| .+ - 08\d\d \|", line))
    place, *_, smoothed = (cell.strip() for cell in first.strip("|").split("|"))
    unit = place.rsplit(" - ", 1)[1]
    value = summary.set_index("unit_id").loc[unit, "severity_rate"]
    assert f"{value:.2f}" == smoothed
    assert place.endswith(f"(West Los Angeles) - {unit}")  # the division by name, not a number
    # the forecast names its period, the last complete week and why they differ from the data end
    table = pd.read_csv(folder / "public/westla/forecast_rd/next_period_forecast.csv")
    assert {"period", "last_complete_period", "data_end"} <= set(table.columns)
    assert table["period"].iloc[0] == "2021-07-26"
    assert table["last_complete_period"].iloc[0] == "2021-07-19"
    assert table["data_end"].iloc[0] == "2021-07-31"
    assert "**Forecast period: the week starting 2021-07-26**" in report
    assert "cut off by the end of the data (2021-07-31)" in report
    # every metric table says what it scored
    metrics = json.loads((folder / "public/westla/forecast_rd/forecast_metrics.json").read_text())
    per_origin = metrics["scored_units_per_origin"]
    # every usable origin is scored (the default), each model refit at most six times
    assert len(per_origin) == len(metrics["origins"]) > 50 and min(per_origin) >= 60
    assert all(t["fits"] <= 6 for t in metrics["timings"].values())
    assert {"zero", "clairvoyant"} <= set(metrics["metrics"])
    assert metrics["scored_divisions"] == [8]
    assert f"**Scored:** {min(per_origin)}" in report
    markdown = (folder / "public/westla/forecast_rd/forecast_metrics.md").read_text()
    assert f"Scored: {min(per_origin)}-{max(per_origin)} of {len(summary)} units per origin" in (
        markdown
    )
    assert "coverage 80%" in report
