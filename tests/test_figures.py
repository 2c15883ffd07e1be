"""Static PNG figures: the five figures, Moran's slope, forecast comparison, atomic writes."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest

from geo_crime.core.errors import DataError
from geo_crime.publish.figures.core import (
    FIGURE_NAMES,
    forecast_vs_actual,
    moran_scatterplot,
    moran_slope,
    severity_choropleth,
    write_figures,
)
from geo_crime.stats.hotspots import getis_ord_gi_star, global_moran, local_moran

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def results(westla_h3_units):
    units, y = westla_h3_units
    units = units.assign(count=y.astype(int), severity=y * 2.0)
    gi = getis_ord_gi_star(units, y).table
    lm = local_moran(units, y, permutations=99, seed=3)
    gm = global_moran(units, y, permutations=0)
    return units, y, gi, lm, gm


def test_write_figures_writes_all_five(tmp_path, results):
    units, y, gi, lm, gm = results
    rng = np.random.default_rng(0)
    paths = write_figures(
        tmp_path / "figs",
        units=units,
        gi=gi,
        lisa=lm.table,
        moran=gm,
        actual=y,
        predicted=y + rng.normal(0, 2, len(y)),
    )
    assert [p.name for p in paths] == [
        FIGURE_NAMES[k] for k in ("severity", "gi", "moran", "lisa", "forecast")
    ]
    for path in paths:
        width, height = _png_size(path)
        assert width > 500 and height > 500
        assert path.stat().st_size > 20_000
    # atomic writes: only the five PNGs, no temporary files
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(FIGURE_NAMES.values())


def test_write_figures_skips_missing_inputs(tmp_path, results):
    units, *_ = results
    paths = write_figures(tmp_path, units=units)
    assert [p.name for p in paths] == [FIGURE_NAMES["severity"]]


def test_moran_slope_is_morans_i(results):
    _, _, _, lm, gm = results
    assert moran_slope(gm.y_std, gm.lag_std) == pytest.approx(gm.I, rel=1e-9)
    # the local table's standardised values and lags give the same slope
    assert moran_slope(lm.table["y_std"], lm.table["lag_std"]) == pytest.approx(gm.I, rel=1e-9)


def test_moran_scatterplot_inputs(tmp_path, results):
    _, _, _, lm, gm = results
    assert moran_scatterplot(lm, tmp_path / "local.png").exists()
    assert moran_scatterplot(lm.table, tmp_path / "table.png", I=gm.I).exists()
    with pytest.raises(DataError, match="y_std"):
        moran_scatterplot(pd.DataFrame({"x": [1.0]}), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_forecast_vs_actual_series_and_scatter(tmp_path):
    index = pd.date_range("2024-01-07", periods=30, freq="W")
    actual = pd.Series(np.linspace(100, 130, 30), index=index)
    predicted = pd.Series(actual.to_numpy() + 3.0, index=index)
    assert _png_size(forecast_vs_actual(actual, predicted, tmp_path / "ts.png"))[0] > 500
    assert forecast_vs_actual([1, 2, 3], [1.5, 2.5, 2.0], tmp_path / "xy.png").exists()
    with pytest.raises(DataError, match="differ in length"):
        forecast_vs_actual([1, 2, 3], [1, 2], tmp_path / "bad.png")
    with pytest.raises(DataError, match="finite"):
        forecast_vs_actual([np.nan], [1.0], tmp_path / "bad.png")


def test_severity_choropleth_checks_column(tmp_path, results):
    units, *_ = results
    with pytest.raises(DataError, match="no 'harm' column"):
        severity_choropleth(units, tmp_path / "x.png", column="harm")
    out = severity_choropleth(units, tmp_path / "q.png", scheme="quantiles", k_anonymity=10)
    assert out.exists()
