"""Studies an analyst can trust: study area, backtest scope, one rate, a dated forecast.

Each test is on the real LAPD rows and fails on the behaviour it guards against: a West LA file
filled into the whole city, a backtest scored on one division, four different "rates", a
forecast of February from data that runs to September.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.cube.panel import Cube, build_cube
from geo_crime.cube.rates import MIN_RESIDENTS, attach_population, eb_smooth, severity_rate
from geo_crime.forecast.evaluate import BacktestResult, evaluate
from geo_crime.forecast.origin import forecast_origin
from geo_crime.ingest import load_incidents
from geo_crime.publish.maps import MapLayers, build_map, classify_values
from geo_crime.publish.style import format_number
from geo_crime.record.coverage import check_coverage
from geo_crime.report.study import scope_lines, top_rate_lines
from geo_crime.units import assign_units, covered_divisions, make_units
from tests.fakes.shared_data import REDUCED_DIR, WESTLA, crime_file


@pytest.fixture(scope="module")
def westla(tmp_path_factory):
    frame, _ = load_incidents(crime_file(WESTLA), cache=tmp_path_factory.mktemp("w"))
    return frame


@pytest.fixture(scope="module")
def rows_2024(tmp_path_factory):
    frame, _ = load_incidents(crime_file(REDUCED_DIR), cache=tmp_path_factory.mktemp("r"))
    return frame


def _cube(incidents, spec, freq="W", **unit_options) -> Cube:
    units = attach_population(make_units(spec, incidents, **unit_options))
    ids, report = assign_units(incidents, units)
    cube = build_cube(
        incidents, units, ids, freq=freq, coverage=check_coverage(incidents, freq=freq)
    )
    cube.meta["assignment"] = report.to_dict()
    return cube


@pytest.fixture(scope="module")
def city_h3(rows_2024) -> Cube:
    return _cube(rows_2024, "h3:8")


# --- the study area is where the data is -----------------------------------------------------


def test_cli_cube_of_west_la_at_h3_9_keeps_west_la_cells(tmp_path, westla):
    parquet = tmp_path / "westla.parquet"
    westla.to_parquet(parquet, index=False)
    out = tmp_path / "cube.parquet"
    result = CliRunner().invoke(app, ["cube", str(parquet), "--unit", "h3:9", "-o", str(out)])
    assert result.exit_code == 0, result.output
    cube = Cube.load(out)
    assert cube.shape[0] == 1_430  # the cells of the West LA division, not 10,557 city cells
    assert set(cube.units["area"].astype(int)) == {8}
    assert cube.counts.sum() == 12_555  # every valid West LA point but the edge cells' 368
    # Gi* on the study area compares West LA cells with West LA, not with 20 empty divisions
    hotspots = tmp_path / "gi.csv"
    result = CliRunner().invoke(app, ["hotspots", str(out), "--stat", "gi", "-o", str(hotspots)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(hotspots)) == 1_430


def test_asking_for_the_whole_city_warns_that_the_data_covers_one_division(westla):
    assert covered_divisions(westla) == [8]
    with pytest.warns(UserWarning, match=r"9,128 of 10,557 units \(86%\) lie in divisions"):
        units = make_units("h3:9", westla, study_area="city")
    assert len(units) == 10_557
    assert "LAPD division 8" in units.attrs["footprint_note"]


def test_reporting_districts_and_divisions_follow_the_data(westla):
    rds = make_units("rd", westla)
    assert set(rds["area"].astype(int)) == {8} and 60 <= len(rds) <= 70
    divisions = make_units("division", westla)
    assert divisions["unit_id"].tolist() == ["8"]
    assert rds.attrs["study_area"] == "LAPD division 8"


# --- a backtest that says what it scored -----------------------------------------------------


@pytest.fixture(scope="module")
def city_backtest(city_h3) -> BacktestResult:
    return evaluate(city_h3, models=["hist_mean", "ma4", "last"], n_origins=8, name="city h3:8")


def test_backtest_origins_are_where_most_of_the_city_is_recorded(city_h3, city_backtest):
    scope = city_backtest.scope
    per_origin = scope["scored_units_per_origin"]
    assert len(per_origin) == 8 and all(isinstance(k, int) for k in per_origin)
    assert min(per_origin) >= 0.5 * city_h3.shape[0]  # not 14 cells of Central
    assert scope["covers_study_area"] is True
    assert len(scope["scored_divisions"]) >= 15
    assert scope["study_divisions"] == list(range(1, 22))
    # the last usable origins of the data hold a corner of the city only, and are not used
    assert city_backtest.origins[-1] <= pd.Timestamp("2024-05-06")
    assert any("fewer than 50% of the units" in note for note in city_backtest.notes)
    data = json.loads(json.dumps(city_backtest.to_dict(), default=str))
    assert data["scored_units_per_origin"] == per_origin
    assert data["scored_divisions"] == scope["scored_divisions"]
    assert data["n_scored_cells"] == sum(per_origin)


def test_pai_is_reported_only_where_the_share_holds_five_units(westla):
    rds = _cube(westla, "rd")
    result = evaluate(rds, models=["hist_mean", "ma4"], n_origins=4)
    # 1% of West LA's 69 districts' area holds fewer than 5 typical districts
    assert result.metrics["pai_1"].isna().all() and result.metrics["pei_1"].isna().all()
    assert result.metrics["pai_10"].notna().all()
    assert 0.01 not in result.scope["pai_reported"]
    assert any("PAI@1%" in note and "fewer than 5 units" in note for note in result.notes)
    verdicts = " ".join(result.verdicts(reference="ma4"))
    assert "harm-weighted PAI@5%" in verdicts and "PAI@1%" not in verdicts


def test_equal_pai_is_a_tie_never_the_highest():
    metrics = pd.DataFrame(
        {"n": [70.0, 70.0], "mae": [3.0, 2.0], "pai_5": [4.25, 4.25]},
        index=pd.Index(["keras", "ma4"], name="model"),
    )
    origins = pd.date_range("2024-01-01", periods=5, freq="7D")
    # the two models select the same units at every origin: the same PAI@5% each time
    scores = pd.DataFrame(
        [
            {"model": m, "origin": o, "n": 14, "abs_error": e * 14, "deviance": e, "pai_5": 4.25}
            for m, e in (("keras", 3.0), ("ma4", 2.0))
            for o in origins
        ]
    )
    result = BacktestResult(
        name="t",
        target="severity",
        capture="severity",
        freq="W",
        unit_type="h3",
        metrics=metrics,
        predictions=pd.DataFrame(),
        curves=pd.DataFrame(),
        origins=origins,
        origin_scores=scores,
    )
    verdicts = " ".join(result.verdicts())
    assert "keras and ma4 tie on harm-weighted PAI@5% (keras 4.25 vs ma4 4.25" in verdicts
    assert "use ma4, the simpler" in verdicts
    assert "highest" not in verdicts


def test_report_says_in_words_when_a_backtest_is_not_city_wide(city_h3):
    backtest = {
        "origins": ["2024-09-02", "2024-09-16"],
        "scope": {
            "n_units": 1513,
            "scored_units_per_origin": [14, 14],
            "scored_divisions": [1],
            "study_divisions": list(range(1, 22)),
            "covers_study_area": False,
            "pai_reported": [0.1],
        },
    }
    text = "\n".join(scope_lines(backtest, city_h3.units))
    assert "14 of the 1,513 units per origin (1% at the fewest) in 1 of the study's 21" in text
    assert "This backtest is not city-wide" in text
    assert "PAI@1%, PAI@5% not reported" in text


# --- one rate ---------------------------------------------------------------------------------


def test_one_rate_is_eb_severity_per_1000_residents_per_complete_week(westla):
    cube = _cube(westla, "rd")
    rate = severity_rate(cube)
    complete = cube.complete
    per_week = np.where(complete, cube.severity, 0).sum(axis=1) / complete.sum(axis=1)
    population = cube.units["population"].to_numpy(dtype=float)
    expected, _ = eb_smooth(per_week, population)
    assert np.allclose(rate.values, expected.to_numpy(), rtol=1e-12)
    assert rate.label == (
        "Severity per 1,000 residents per complete week (Empirical Bayes smoothed)"
    )
    # the map's choropleth, its tooltip and its legend all carry that number
    layers = MapLayers.from_cube(cube)
    assert np.allclose(layers.units["severity_rate"], rate.values, equal_nan=True)
    m = build_map(layers, k_anonymity=3)
    severity = next(c for c in m._children.values() if c._name == "GeoJson")
    tooltip = next(c for c in severity._children.values() if c._name == "GeoJsonTooltip")
    assert tooltip.aliases[3] == rate.label
    counts = layers.units["count"].to_numpy()
    cls = classify_values(np.where(counts < 3, np.nan, rate.values), scheme="quantiles")
    html = m.get_root().render()
    for label in cls.labels():
        assert json.dumps(label)[1:-1] in html, label
    shown = {f["id"]: f["properties"] for f in severity.data["features"]}
    busiest = int(np.argmax(counts))
    props = shown[str(cube.units["unit_id"].iloc[busiest])]
    assert props["r"] == format_number(rate.values[busiest])


def test_units_without_residents_have_no_rate_and_no_rank(westla):
    cube = _cube(westla, "h3:9")
    population = cube.units["population"].to_numpy(dtype=float)
    rate = severity_rate(cube)
    nobody = population < MIN_RESIDENTS
    assert nobody.sum() > 100  # parks and hills: areal interpolation leaves them (almost) empty
    assert np.isnan(rate.values[nobody]).all()
    assert np.isfinite(rate.values[~nobody & (cube.complete.sum(axis=1) > 0)]).all()
    lines = top_rate_lines(cube, cube.units, k_anonymity=3)
    rows = [line.split(" | ") for line in lines if line.startswith("| 89")]
    assert len(rows) == 10
    ids = [row[0].strip("| ") for row in rows]
    residents = cube.units.set_index("unit_id").loc[ids, "population"]
    assert (residents >= 100).all()
    assert all(row[4].strip(" |") != "nan" for row in rows)


# --- the forecast is dated and explained -----------------------------------------------------


def test_forecast_starts_from_the_last_week_most_of_the_city_recorded(city_h3, rows_2024):
    origin = forecast_origin(city_h3, data_end=rows_2024["occurred_at"].max())
    assert origin.share >= 0.5
    assert origin.period <= pd.Timestamp("2024-05-13")
    assert city_h3.period_complete_share()[origin.index + 1 :].max() < 0.5
    assert "completely recorded for fewer than 50% of the units" in origin.reason
    assert "the week starting 2024-09-30 is cut off by the end of the data (2024-09-30)" in (
        origin.reason
    )


def test_a_forecast_at_the_end_of_a_whole_period_needs_no_excuse(westla):
    cube = _cube(westla[westla["occurred_at"] < "2021-07-26"], "division")
    origin = forecast_origin(cube, data_end=pd.Timestamp("2021-07-25"))
    assert origin.period == pd.Timestamp("2021-07-19") and origin.reason == ""


def test_eligibility_at_an_origin_is_what_the_data_up_to_it_says(rows_2024, city_h3):
    """A backtest origin sees the coverage it would have seen then: the cube built from the
    rows up to the origin marks the same cells complete as the full cube, up to the origin."""
    from geo_crime.forecast.panel import eligible_cells

    origin = pd.Timestamp("2024-04-15")  # a Monday: the rows up to its Sunday
    known = rows_2024[rows_2024["occurred_at"] < origin + pd.Timedelta(days=7)]
    then = _cube(known, "h3:8")
    assert list(then.unit_ids) == list(city_h3.unit_ids)
    upto = int(city_h3.periods.get_loc(origin))
    assert np.array_equal(then.complete[:, : upto + 1], city_h3.complete[:, : upto + 1])
    # the history part of eligibility (periods up to the origin) is the same as well
    history_then = eligible_cells(then.complete, 6)[:, :upto]
    history_now = eligible_cells(city_h3.complete, 6)[:, :upto]
    assert np.array_equal(history_then, history_now)
    assert then.complete[:, : upto + 1].mean() > 0.5
