"""Report tables that cover part of a study say so: the forecast ranking and its division table."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from geo_crime.report.study import forecast_section


def test_forecast_tables_name_how_many_units_and_divisions_they_cover():
    units = pd.DataFrame({"unit_id": [f"u{i}" for i in range(6)], "area": [1, 1, 2, 2, 3, 3]})
    # division 3 has no published forecast (not completely recorded); u1 is suppressed
    table = pd.DataFrame(
        {
            "unit_id": units["unit_id"],
            "period": "2024-05-13",
            "prediction": [50.0, np.nan, 30.0, 20.0, np.nan, np.nan],
            "lower": [40.0, np.nan, 20.0, 10.0, np.nan, np.nan],
            "upper": [60.0, np.nan, 40.0, 30.0, np.nan, np.nan],
            "suppressed": [False, True, False, False, False, False],
        }
    )
    metric = {"mae": 1.0, "rmse": 1.0, "poisson_deviance": 1.0}
    backtest = {
        "metrics": {"keras": metric, "last": metric},
        "origins": ["2024-03-04", "2024-03-11"],
        "next_period": "2024-05-13",
        "last_complete_period": "2024-05-06",
        "data_end": "2024-09-30",
        "complete_share_at_origin": 0.5,
    }
    text = "\n".join(
        forecast_section("h3:8", SimpleNamespace(freq="W"), units, table, backtest, "h38")
    )
    assert "3 of the 6 units have a published forecast; 1 are suppressed" in text
    assert "Units with the highest forecast severity, of the 3 with a published forecast" in text
    assert "By division (2 of the study's 3 divisions have a published forecast" in text
    ranking = text[text.index("| rank |") :].split("\n\n")[0]
    assert "u1" not in ranking and "u4" not in ranking  # suppressed and unforecast units


def test_a_window_share_below_one_is_said_in_the_sentence_that_uses_it():
    """A study may take the periods complete for 80% of its units: the unit set's sentence
    and the key finding say so, and that a unit's values are per complete period."""
    import geopandas as gpd
    from shapely.geometry import box

    from geo_crime.cube.panel import Cube
    from geo_crime.report.findings import key_findings_lines, unit_findings
    from geo_crime.report.study import statistics_section

    units = gpd.GeoDataFrame(
        {"unit_id": [f"u{i}" for i in range(5)], "unit_type": "polygon"},
        geometry=[box(i, 0, i + 1, 1) for i in range(5)],
        crs=4326,
    )
    complete = np.ones((5, 4), dtype=bool)
    complete[0, 1] = False  # week 2: 4 of 5 units complete (80%)
    complete[:3, 3] = False  # week 4: 2 of 5 (40%)
    cube = Cube(
        units=units,
        periods=pd.date_range("2024-01-01", periods=4, freq="7D"),
        freq="W",
        counts=np.full((5, 4), 5, dtype=np.int64),
        severity=np.full((5, 4), 50.0),
        harm=np.full((5, 4), 50.0),
        complete=complete,
    )
    window = cube.complete_periods(min_share=0.8)
    assert [str(p.date()) for p in window.periods] == ["2024-01-01", "2024-01-08", "2024-01-15"]
    summary = {
        "units": 5,
        "approximate": False,
        "periods": 4,
        "complete_periods": 3,
        "window": {**window.span(), "share": 0.8},
        "assignment": {"outside": 0},
        "statistics": {},
    }
    text = "\n".join(statistics_section("rd", window, units, summary, {}, 3))
    assert "4 weeks, 3 of them completely recorded for at least 80% of the units." in text
    assert (
        "The analysis window is the 3 weeks (2024-01-01 to 2024-01-15) completely recorded for "
        "at least 80% of the units" in text
    )
    assert "a unit's values are means per week over the window's weeks completely recorded" in text
    findings = unit_findings(
        study="s",
        spec="rd",
        cube=window,
        labels=pd.Series(dtype=str),
        suppressed=None,
        tables={},
        backtest=None,
    )
    findings["window"]["share"] = 0.8
    assert "window: 3 completely recorded weeks (for at least 80% of the units), 2024-01-01" in (
        "\n".join(key_findings_lines([findings]))
    )


def test_the_window_share_setting_is_checked(tmp_path):
    from geo_crime.core.errors import ConfigError
    from geo_crime.settings import RunSettings

    config = tmp_path / "run.toml"
    config.write_text('[[study]]\nname = "s"\nwindow_share = 0.3\n')
    with pytest.raises(ConfigError, match="window_share must be a share of the units from 0.5"):
        RunSettings.from_sources(config_file=config)
    config.write_text('[[study]]\nname = "s"\nwindow_share = 0.8\n')
    assert RunSettings.from_sources(config_file=config).studies[0].window_share == 0.8
