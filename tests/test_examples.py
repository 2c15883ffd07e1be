"""The example configurations under examples/: they load, and what they configure runs.

``examples/forecast_panels.toml`` replaces a hard-coded report of the forecast panels: its
``[[study]]`` tables are the five real panels (West LA weekly RD and H3-9, city-wide 2024 weekly
H3-8 and RD, divisions daily with the original study's protocol) and ``geo-crime run --config``
runs them like any other study.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from geo_crime.core.errors import ConfigError
from geo_crime.forecast.registry import make_forecaster
from geo_crime.pipeline import run_pipeline
from geo_crime.settings import RunSettings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PANELS = EXAMPLES / "forecast_panels.toml"


def test_the_forecast_panels_config_holds_the_five_real_panels():
    settings = RunSettings.from_sources(config_file=PANELS)
    panels = [(s.name, unit, s.freq) for s in settings.studies for unit in s.units]
    assert panels == [
        ("westla_2020_21_weekly", "rd", "W"),
        ("westla_2020_21_weekly", "h3:9", "W"),
        ("citywide_2024_weekly", "h3:8", "W"),
        ("citywide_2024_weekly", "rd", "W"),
        ("divisions_2024_daily", "division", "D"),
    ]
    westla, city, daily = settings.studies
    assert westla.areas == [8] and (westla.start, westla.end) == ("2020-03-01", "2021-08-01")
    assert westla.tuning() == {"max_trials": 8, "max_seconds": 180}
    # every usable weekly origin, at most six fits per model (0 and 0: the defaults)
    assert (westla.forecast_origins, westla.refit_every) == (0, 0)
    assert (city.forecast_origins, city.refit_every, city.keras_config().lags) == (0, 0, 4)
    assert (daily.forecast_origins, daily.refit_every, daily.keras_config().lags) == (400, 14, 14)
    assert daily.reproduce_study and not westla.reproduce_study
    assert all(
        s.statistics == [] and s.keras_config().target == "severity" for s in settings.studies
    )
    # every forecaster it names exists in the registry
    assert [type(make_forecaster(m)).__name__ for m in daily.forecast_models][:3] == [
        "KerasForecaster",
        "GradientBoosting",
        "StudyConv1D",
    ]


def test_the_daily_division_panel_runs_with_the_original_study_beside_it(tmp_path):
    """The divisions-daily study of the example, on two months and a few origins."""
    settings = RunSettings.from_sources(
        config_file=PANELS, name="panels", outputs=str(tmp_path), permutations=1
    )
    daily = dataclasses.replace(
        settings.studies[2],
        end="2024-03-01",
        forecast_config="fast",
        forecast_origins=3,
        refit_every=3,
        forecast_models=["keras", "study_conv1d", "last", "ma8"],
    )
    settings.studies = [daily]
    result = run_pipeline(settings)
    summary = json.loads((result.folder / "summary.json").read_text())
    forecast = summary["divisions_2024_daily"]["units"]["division"]["forecast"]
    models = {"keras", "study_conv1d", "last", "ma8"}
    assert set(forecast["metrics"]) == models | {"zero", "clairvoyant"}  # and the references
    assert len(forecast["origins"]) == 3
    report = next((result.folder / "public" / "divisions_2024_daily").rglob("*.md")).read_text()
    assert "The original study's protocol (80/20 split" in report
    assert "2024-01-01 .. 2024-02-29" in report  # the days complete for all 21 divisions
    # the study's table has the field's methods and the references beside its own rows
    study_table = report.split("The original study's protocol (80/20 split")[1]
    for row in ("study_conv1d", "mean_7d", "hist_mean", "kde", "prospective", "sepp", "keras"):
        assert f"| {row} |" in study_table
    assert "| zero (reference) |" in study_table and "| clairvoyant (reference) |" in study_table


def test_an_unknown_forecaster_in_a_config_is_refused_naming_the_known_ones(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[[study]]\nname = "a"\nforecast_models = ["arima"]\n')
    with pytest.raises(
        ConfigError,
        match=r"forecast_models must be a list of forecaster names: "
        r"keras, gbm, .*got \['arima'\]",
    ):
        RunSettings.from_sources(config_file=config)
