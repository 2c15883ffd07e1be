"""Report tables that cover part of a study say so: the forecast ranking and its division table."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

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
