"""Forecasting: metrics by hand, baselines by hand, no leakage, coverage, Keras, honest intervals,
persistence."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pandas as pd
import pytest

from geo_crime.core.errors import ConfigError, DataError, ModelError
from geo_crime.cube.panel import Cube, cube_from_table
from geo_crime.forecast import (
    DEFAULT_MODELS,
    FAST_CONFIG,
    FeatureBuilder,
    ForecastConfig,
    GradientBoosting,
    HistoricalMean,
    KerasForecaster,
    LastPeriod,
    MovingAverage,
    SeasonalNaive,
    SpatialSmoothing,
    capture_curve,
    evaluate,
    load_model,
    make_forecaster,
    make_model,
    pai,
    pei,
    predict_next,
    reproduce_study,
    train,
    tune,
)
from geo_crime.forecast.blocks import training_blocks
from geo_crime.forecast.original import StudyConv1D
from geo_crime.forecast.panel import eligible_cells, history_ok
from geo_crime.forecast.registry import forecaster_class, known_names
from geo_crime.report.forecast import write_forecast_report
from tests.fakes.forecast_cubes import synthetic_cube
from tests.fakes.h3_units import h3_units

#: Small network: a few seconds per fit on 2 cores.
TINY = ForecastConfig(
    lags=4,
    units=16,
    layers=1,
    dropout=0.0,
    batch_size=256,
    max_epochs=20,
    patience=4,
    learning_rate=3e-3,
    refit_full=False,
)


def _cube(values: np.ndarray, *, freq: str = "W", complete: np.ndarray | None = None) -> Cube:
    """A cube of H3 cells around downtown with the given severity (counts = severity / 10)."""
    import h3

    n, T = values.shape
    centre = h3.latlng_to_cell(34.05, -118.25, 8)
    cells = sorted(h3.grid_disk(centre, 2))[:n]
    code = {"D": "D", "W": "W-SUN", "M": "M"}[freq]
    periods = pd.period_range("2021-01-04", periods=T, freq=code).start_time
    return Cube(
        units=h3_units(cells),
        periods=pd.DatetimeIndex(periods),
        freq=freq,
        counts=np.rint(values / 10).astype(np.int64),
        severity=values.astype(float),
        harm=values.astype(float) * 2,
        complete=complete,
        meta={"unit_type": "h3"},
    )


# --- targeting metrics by hand ------------------------------------------------------------------


def test_pai_pei_by_hand():
    area = np.array([1.0, 1.0, 2.0, 4.0])  # total 8
    actual = np.array([5.0, 3.0, 8.0, 4.0])  # total 20; densities 5, 3, 4, 1
    pred = np.array([1.0, 6.0, 2.0, 9.0])  # densities 1, 6, 1, 2.25 -> order 1, 3, {0, 2}
    # 12.5% of the area (1 km²): unit 1 alone -> 3 / 20 = 0.15 -> PAI 1.2
    assert pai(pred, actual, area, 0.125) == pytest.approx(1.2)
    # perfect: unit 0 (density 5) -> 5 / 20 = 0.25 -> PAI 2.0; PEI = 1.2 / 2.0
    assert pai(actual, actual, area, 0.125) == pytest.approx(2.0)
    assert pei(pred, actual, area, 0.125) == pytest.approx(0.6)
    # 50% (4 km²): unit 1 (3) + 3/4 of unit 3 (4 * 3/4 = 3) = 6 -> 0.3 -> PAI 0.6
    assert pai(pred, actual, area, 0.5) == pytest.approx(0.6)
    # perfect at 4 km²: units 0, 2, 1 = 5 + 8 + 3 = 16 -> 0.8 -> PAI 1.6 -> PEI 0.375
    assert pei(pred, actual, area, 0.5) == pytest.approx(0.375)
    # 75% (6 km²): units 1, 3 (5 km², 7) + 1/3 of the tied pair {0, 2} (3 km², 13) = 7 + 13/3
    assert capture_curve(pred, actual, area, [0.75])[0] == pytest.approx((7 + 13 / 3) / 20)
    assert capture_curve(pred, actual, area, [1.0])[0] == pytest.approx(1.0)
    # no crime next period: undefined
    assert np.isnan(pai(pred, np.zeros(4), area, 0.05))
    # equal areas, doc example
    assert pai([4, 3, 2, 1], [6, 2, 1, 1], [1, 1, 1, 1], 0.25) == pytest.approx(2.4)


def test_pei_never_exceeds_one():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = rng.integers(3, 30)
        area = rng.uniform(0.2, 3, n)
        actual = rng.poisson(2, n).astype(float)
        pred = rng.uniform(0, 5, n)
        for s in (0.01, 0.05, 0.1, 0.3):
            value = pei(pred, actual, area, s)
            assert np.isnan(value) or value <= 1 + 1e-12


# --- baselines by hand ------------------------------------------------------------------------


def test_baselines_by_hand():
    T = 60
    series = np.vstack([np.arange(1.0, T + 1), np.full(T, 7.0), np.zeros(T)])
    series[2, -2] = 1000.0  # incomplete cell: must be ignored
    complete = np.ones_like(series, dtype=bool)
    complete[2, -2] = False
    cube = _cube(series, complete=complete)
    assert LastPeriod().predict(cube).tolist() == [60.0, 7.0, 0.0]
    # moving average of 57, 58, 59, 60 -> 58.5; unit 2 averages its 3 complete zeros
    np.testing.assert_allclose(MovingAverage(4).fit(cube).predict(cube), [58.5, 7.0, 0.0])
    np.testing.assert_allclose(MovingAverage(8).predict(cube), [56.5, 7.0, 0.0])
    # the period after the cube is period 61 (index 60); one year earlier is index 8 -> value 9
    np.testing.assert_allclose(SeasonalNaive().predict(cube), [9.0, 7.0, 0.0])
    # historical mean over complete periods: (1 + ... + 60) / 60 = 30.5
    np.testing.assert_allclose(HistoricalMean().predict(cube), [30.5, 7.0, 0.0])
    # shorter than a year: no last-year forecast
    assert np.isnan(SeasonalNaive().predict(cube.select_periods(slice(0, 40)))).all()
    # the last period incomplete: no last-period forecast for that unit
    assert np.isnan(LastPeriod().predict(cube.select_periods(slice(0, T - 1)))[2])
    # a tiny bandwidth gives each unit its own recent mean
    smooth = SpatialSmoothing(window=4, bandwidth=1.0).fit(cube)
    np.testing.assert_allclose(smooth.predict(cube), [58.5, 7.0, 0.0])
    # a huge bandwidth pulls every unit to the same value
    wide = SpatialSmoothing(window=4, bandwidth=1e6).fit(cube).predict(cube)
    np.testing.assert_allclose(wide, np.mean([58.5, 7.0, 0.0]), rtol=1e-5)


def test_spatial_smoothing_chooses_a_bandwidth():
    cube = synthetic_cube(n_units=40, n_periods=30, seed=2)
    model = SpatialSmoothing().fit(cube)
    assert model.bandwidth_ > 0
    pred = model.predict(cube)
    assert pred.shape == (40,) and np.isfinite(pred).all()


# --- forecasters are estimators -----------------------------------------------------------------


def test_forecasters_compare_and_hash_by_identity():
    four, eight = MovingAverage(4), MovingAverage(8)
    assert four != eight
    assert MovingAverage(4) != MovingAverage(4)  # equal settings, different objects
    assert four == four
    models = [four, eight, SpatialSmoothing(), GradientBoosting(), KerasForecaster(TINY)]
    models.append(StudyConv1D(10, layout="pooled"))
    assert len({hash(m) for m in models}) == len(models)
    assert len(set(models)) == len(models)  # usable as set members and dict keys
    assert {four: "a", eight: "b"}[four] == "a"


def test_get_params_and_clone_round_trip():
    models = [
        MovingAverage(13, target="count"),
        SpatialSmoothing(6, bandwidth=250.0, multiples=(1.0, 2.0)),
        GradientBoosting(5, max_iter=20, seed=3, feature_options={"calendar": False}),
        KerasForecaster(TINY, seed=4, target="harm"),
        StudyConv1D(10, layout="pooled", epochs=1, seed=2),
        LastPeriod(target="harm"),
    ]
    for model in models:
        params = model.get_params()
        assert list(params) == type(model).param_names()  # read from the __init__ signature
        assert all(getattr(model, k) is v for k, v in params.items())
        copy = model.clone()
        assert type(copy) is type(model) and copy is not model and copy != model
        assert copy.get_params() == params
        assert type(model)(**params).get_params() == params
        assert repr(copy) == repr(model)
    keras = models[3]
    assert keras.target == keras.config.target == "harm"
    harm = TINY.replace(target="harm")
    assert keras.get_params() == {"config": harm, "seed": 4, "target": "harm"}


def test_fitted_attributes_end_in_underscore_and_appear_in_fit():
    cube = synthetic_cube(n_units=20, n_periods=30, seed=1)
    daily = synthetic_cube(n_units=4, n_periods=30, freq="D", seed=1)
    cases = [
        (SpatialSmoothing(), cube, {"bandwidth_"}),
        (GradientBoosting(4, max_iter=10), cube, {"builder_", "n_iter_", "estimator_"}),
        (StudyConv1D(5, epochs=1), daily, {"min_", "range_", "network_", "n_windows_"}),
        (KerasForecaster(TINY.replace(max_epochs=2)), cube, {"builder_", "networks_"}),
        (MovingAverage(4), cube, set()),
    ]
    for model, data, expected in cases:
        before = set(vars(model))
        assert before == set(type(model).param_names()), type(model).__name__
        assert not any(name.endswith("_") for name in before)
        for name in expected:
            assert not hasattr(model, name)
        with pytest.raises(ModelError) if expected else contextlib.nullcontext():
            model.predict(data)
        model.fit(data)
        learnt = {name for name in set(vars(model)) - before if not name.startswith("_")}
        assert expected <= learnt
        assert all(name.endswith("_") for name in learnt), learnt
        assert set(model.get_params()) == before  # fitting changes no setting
        assert not (set(vars(model.clone())) - before)  # a clone is unfitted


def test_registry_builds_every_default_model_and_rejects_unknown_names():
    for name in DEFAULT_MODELS + ("study_conv1d",):
        model = make_model(name, config=TINY, seed=5)
        assert model.name == name
        assert model.target == TINY.target
        cls, _ = forecaster_class(name)
        assert type(model) is cls
    assert make_forecaster("ma13").get_params() == {"window": 13, "target": "severity"}
    assert make_forecaster("ma4", target="count").window == 4
    assert make_model("study_conv1d").layout == "pooled"
    gbm = make_model("gbm", config=TINY.replace(lags=3, calendar=False), seed=7)
    assert (gbm.lags, gbm.seed, gbm.feature_options["calendar"]) == (3, 7, False)
    keras = make_model("keras", config=TINY, target="count", seed=2)
    assert keras.config == TINY.replace(target="count") and keras.seed == 2
    assert "ma<window>" in known_names() and "keras" in known_names()
    with pytest.raises(ConfigError, match="unknown model 'arima'; known: keras, gbm, last, ma<"):
        make_forecaster("arima")
    with pytest.raises(ConfigError, match="study_conv1d"):
        evaluate(synthetic_cube(n_units=10, n_periods=30), models=["ma4", "prophet"])
    with pytest.raises(ConfigError, match="takes no parameter 'seed'"):
        make_forecaster("ma4", seed=1)
    with pytest.raises(ConfigError):
        TINY.replace(epochs=3)


# --- no leakage ---------------------------------------------------------------------------------


def test_future_values_change_nothing_at_an_origin():
    cube = synthetic_cube(n_units=30, n_periods=40, seed=4)
    t = 29  # origin
    rng = np.random.default_rng(0)
    future = Cube(
        units=cube.units,
        periods=cube.periods,
        freq=cube.freq,
        counts=cube.counts.copy(),
        severity=cube.severity.copy(),
        harm=cube.harm.copy(),
        complete=cube.complete.copy(),
        meta=cube.meta,
    )
    for arr in (future.counts, future.severity, future.harm):
        block = arr[:, t + 1 :]
        arr[:, t + 1 :] = rng.permutation(block.ravel()).reshape(block.shape) * 3 + 1

    def fold(c: Cube):
        builder = FeatureBuilder(lags=4).fit(c.select_periods(slice(0, t + 1)))
        train_rows = builder.training_rows(c.select_periods(slice(0, t + 1)))
        # features at the origin computed on the FULL cube (the future is in memory)
        test_rows = builder.transform(c, np.array([t]))
        return builder, train_rows, test_rows

    b1, tr1, te1 = fold(cube)
    b2, tr2, te2 = fold(future)
    np.testing.assert_array_equal(b1.mean_, b2.mean_)
    np.testing.assert_array_equal(b1.std_, b2.std_)
    assert b1.target_scale_ == b2.target_scale_
    np.testing.assert_array_equal(tr1.X, tr2.X)
    np.testing.assert_array_equal(tr1.y, tr2.y)
    np.testing.assert_array_equal(te1.X, te2.X)
    np.testing.assert_array_equal(te1.base, te2.base)
    assert tr1.origin.max() == t - 1  # the last training target is the origin itself

    # the backtest's forecasts up to that origin are unchanged too
    kwargs = {"models": ["gbm", "ma4", "spatial_smooth"], "n_origins": 4, "refit_every": 2}
    kwargs["config"] = TINY
    r1 = evaluate(cube.select_periods(slice(0, t + 2)), **kwargs)
    r2 = evaluate(future.select_periods(slice(0, t + 2)), **kwargs)
    # the forecasters' predictions (the clairvoyant reference reads the future by design)
    p1, p2 = (
        r.predictions[r.predictions["model"] != "clairvoyant"]
        .sort_values(["model", "origin", "unit_id"])["prediction"]
        .to_numpy()
        for r in (r1, r2)
    )
    np.testing.assert_array_equal(p1, p2)

    # sanity: a change AT the origin does change the origin's features
    past = Cube(
        units=cube.units,
        periods=cube.periods,
        freq=cube.freq,
        counts=cube.counts,
        severity=cube.severity.copy(),
        harm=cube.harm,
        complete=cube.complete,
        meta=cube.meta,
    )
    past.severity[:, t] += 50
    assert not np.array_equal(b1.transform(past, np.array([t])).X, te1.X)


# --- coverage ------------------------------------------------------------------------------------


def test_incomplete_cells_are_excluded():
    cube = synthetic_cube(n_units=30, n_periods=40, incomplete=0.2, seed=5)
    incomplete = ~cube.complete
    assert incomplete.any()
    poisoned = cube.severity.copy()
    poisoned[incomplete] = 1e6  # a reporting break must never be read as data
    dirty = Cube(
        units=cube.units,
        periods=cube.periods,
        freq=cube.freq,
        counts=cube.counts,
        severity=poisoned,
        harm=cube.harm,
        complete=cube.complete,
        meta=cube.meta,
    )
    # training rows: complete target and complete history only, poison never enters
    builder = FeatureBuilder(lags=4).fit(dirty)
    rows = builder.training_rows(dirty)
    assert np.all(cube.complete[rows.unit, rows.origin + 1])
    assert np.all(history_ok(cube.complete, 4)[rows.unit, rows.origin])
    assert rows.y.max() < 1e5 and np.abs(rows.X).max() < 50
    # baselines ignore incomplete cells
    np.testing.assert_allclose(
        HistoricalMean().predict(dirty), HistoricalMean().predict(cube), equal_nan=True
    )
    # scored cells: complete targets with complete history, for every model alike
    result = evaluate(dirty, models=["hist_mean", "ma4", "last"], n_origins=12, config=TINY)
    pred = result.predictions
    unit_row = {u: i for i, u in enumerate(cube.unit_ids)}
    col = cube.periods.get_indexer(pred["period"])
    rows_idx = pred["unit_id"].map(unit_row).to_numpy()
    assert cube.complete[rows_idx, col].all()
    assert pred["actual"].max() < 1e5
    assert pred.groupby("model").size().nunique() == 1  # the same cells for every model
    # an all-incomplete cube cannot be backtested
    dead = Cube(
        units=cube.units,
        periods=cube.periods,
        freq=cube.freq,
        counts=cube.counts,
        severity=cube.severity,
        harm=cube.harm,
        complete=np.zeros_like(cube.complete),
        meta=cube.meta,
    )
    with pytest.raises(DataError):
        evaluate(dead, models=["hist_mean"])
    assert not eligible_cells(dead.complete, 1).any()


# --- the Keras model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signal_backtest():
    """Keras vs baselines on a seasonal, trending, spatially autocorrelated Poisson panel."""
    cube = synthetic_cube(n_units=60, n_periods=80, seed=11, base_rate=3.0, seasonal=0.5, trend=1.0)
    result = evaluate(
        cube,
        models=["keras", "hist_mean", "ma4", "last"],
        n_origins=8,
        refit_every=8,
        config=TINY,
        seed=0,
        name="synthetic",
    )
    return cube, result


def test_keras_beats_the_historical_mean_on_a_known_signal(signal_backtest):
    _, result = signal_backtest
    m = result.metrics
    # 18-27% lower MAE on this panel (8-27% over other seeds): a clear margin, not round-off
    assert m.at["keras", "mae"] < 0.95 * m.at["hist_mean", "mae"]
    assert m.at["keras", "mae"] < 0.95 * m.at["ma4", "mae"]
    assert m.at["keras", "poisson_deviance"] < m.at["hist_mean", "poisson_deviance"]
    assert m.at["keras", "mae"] < m.at["last", "mae"]
    assert 0.5 < m.at["keras", "coverage_80"] <= 1.0
    assert ((m[["pei_1", "pei_5", "pei_10"]] <= 1 + 1e-9) | m[["pei_1"]].isna().values).all().all()


def test_report_files(signal_backtest, tmp_path):
    _, result = signal_backtest
    files = write_forecast_report(result, tmp_path / "report")
    names = sorted(p.name for p in files)
    assert names == sorted(
        [
            "forecast_metrics.md",
            "forecast_metrics.json",
            "forecast_vs_actual.png",
            "harm_capture.png",
        ]
    )
    text = (tmp_path / "report" / "forecast_metrics.md").read_text()
    assert "| keras |" in text and "PAI@5%" in text and "beat" in text
    data = json.loads((tmp_path / "report" / "forecast_metrics.json").read_text())
    assert set(data["metrics"]) == {"keras", "hist_mean", "ma4", "last", "zero", "clairvoyant"}
    assert all(p.stat().st_size > 1000 for p in files if p.suffix == ".png")


def test_train_save_load_reproducible(tmp_path):
    cube = synthetic_cube(n_units=40, n_periods=50, seed=7)
    hist = cube.select_periods(slice(0, 45))
    cfg = TINY.replace(refit_full=True, ensemble=2, max_epochs=8)
    a = train(hist, config=cfg, seed=3)
    b = train(hist, config=cfg, seed=3)
    pa, pb = a.predict(hist), b.predict(hist)
    # same seed, same process: identical up to float round-off (documented tolerance 1e-4)
    np.testing.assert_allclose(pa, pb, rtol=1e-4)
    path = a.save(tmp_path / "model")
    a.save(tmp_path / "model")  # replacing an existing model works
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(hist), pa)
    la, ua = a.predict_interval(hist)
    lb, ub = loaded.predict_interval(hist)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(ua, ub)
    meta = json.loads((path / "metadata.json").read_text())
    for key in ("training_window", "unit_type", "freq", "features", "target", "versions"):
        assert key in meta
    assert meta["hyperparameters"]["lags"] == 4 and meta["config"]["ensemble"] == 2
    assert meta["training_window"]["last_period"] == str(hist.periods[-1].date())
    # the ensemble is calibrated on the block after its refit, and the record is saved
    blocks = meta["metrics"]
    assert (
        blocks["fit_rows"] + blocks["validation_rows"] + blocks["calibration_rows"]
        == (meta["training_window"]["rows"])
    )
    assert meta["calibration"]["block"] == "calibration" and blocks["calibration_rows"] > 0
    assert meta["calibration"] == a.metadata_["calibration"] and len(loaded.networks_) == 2
    table = predict_next(loaded, hist)
    assert list(table.columns) == [
        "unit_id",
        "period",
        "prediction",
        "lower",
        "upper",
        "history_complete",
    ]
    assert (table["period"] == hist.periods[-1] + pd.Timedelta(weeks=1)).all()
    assert (table["prediction"] >= 0).all()
    assert (table["lower"] <= table["upper"]).all()
    with pytest.raises(ModelError):
        load_model(tmp_path / "missing")


def test_daily_monthly_and_pre_aggregated_tables():
    # daily, with a count target
    daily = synthetic_cube(n_units=12, n_periods=70, freq="D", seed=8)
    cfg = TINY.replace(max_epochs=3, target="count")
    model = train(daily, config=cfg, seed=0)
    table = predict_next(model, daily)
    assert (table["period"] == daily.periods[-1] + pd.Timedelta(days=1)).all()
    assert model.metadata_["target"] == "count" and model.metadata_["freq"] == "D"
    # monthly, built from a pre-aggregated table (no incident rows)
    monthly = synthetic_cube(n_units=12, n_periods=30, freq="M", seed=9)
    frame = monthly.to_frame().rename(columns={"severity_sum": "severity"})
    frame = frame.loc[frame["count"] > 0]  # missing pairs are zeros
    from_table = cube_from_table(frame, monthly.units, freq="M")
    np.testing.assert_allclose(from_table.severity, monthly.severity)
    model = train(from_table, config=TINY.replace(max_epochs=3), seed=0)
    table = predict_next(model, from_table)
    assert (
        table["period"] == pd.Timestamp(from_table.periods[-1]) + pd.offsets.MonthBegin(1)
    ).all()
    assert np.isfinite(table["prediction"]).all()


def test_tuning_respects_the_budget():
    cube = synthetic_cube(n_units=20, n_periods=30, seed=10)
    space = {"units": [8, 16], "learning_rate": [1e-3, 3e-3]}
    cfg = TINY.replace(max_epochs=3)
    result = tune(cube, config=cfg, space=space, max_trials=2, max_seconds=120, seed=0)
    assert len(result.trials) <= 2
    again = tune(cube, config=cfg, space=space, max_trials=2, max_seconds=120, seed=0)
    hp = ["units", "learning_rate", "lags", "val_loss"]
    pd.testing.assert_frame_equal(result.trials[hp], again.trials[hp])  # seeded search
    assert result.best_config.units in (8, 16)
    assert result.best_config.lags in (2, 4)
    last_val = result.validation["validation_blocks"][-1][1]
    assert pd.Timestamp(last_val) <= cube.periods[-1]  # never past the data it was given
    with pytest.raises(ModelError):
        tune(cube, config=cfg, space=space, max_trials=2, max_seconds=0)


def test_study_reproduction_and_pooled_layout():
    cube = synthetic_cube(n_units=5, n_periods=60, freq="D", seed=12)
    study = reproduce_study(cube, window=10, epochs=2, seed=0, field_methods=(), references=())
    assert list(study.metrics.index) == ["study_conv1d", "last_day", "mean_7d"]
    assert study.info["n_days"] == 60 and study.metrics["n"].nunique() == 1
    pooled = StudyConv1D(10, layout="pooled", epochs=1).fit(cube)
    pred = pooled.predict(cube)
    assert pred.shape == (5,) and (pred >= 0).all()
    with pytest.raises(DataError):
        reproduce_study(synthetic_cube(n_units=3, n_periods=20, freq="W"), window=5)


def test_fast_config_is_small():
    assert FAST_CONFIG.layers <= 1 and FAST_CONFIG.max_epochs <= 30
    with pytest.raises(ModelError):
        ForecastConfig(target="robbery")


# --- honest intervals ---------------------------------------------------------------------------

#: A panel whose periods are exchangeable (no trend, season or shocks: Poisson counts around fixed
#: hot spots), where split-conformal intervals should hold about 80% of new periods' actuals.
STATIONARY = {
    "n_units": 80,
    "n_periods": 70,
    "base_rate": 2.0,
    "seasonal": 0.0,
    "trend": 0.0,
    "noise": 0.0,
}
STATIONARY_TEST_PERIODS = 16


@pytest.fixture(scope="module")
def refit_model():
    """A refit model trained on the first periods of a stationary panel, with every Keras fit call.

    Returns the full cube, the training cube, the model and the inputs of each ``Model.fit``
    call (training features and, when given, validation features).
    """
    import keras

    cube = synthetic_cube(**STATIONARY, seed=2)
    train_cube = cube.select_periods(slice(0, cube.shape[1] - STATIONARY_TEST_PERIODS))
    calls: list[dict[str, np.ndarray | None]] = []
    original_fit = keras.Model.fit

    def recording_fit(self, x=None, y=None, *args, **kwargs):
        validation = kwargs.get("validation_data")
        calls.append(
            {
                "x": np.asarray(x["features"]),
                "validation": None if validation is None else np.asarray(validation[0]["features"]),
            }
        )
        return original_fit(self, x, y, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.Model, "fit", recording_fit)
        model = train(train_cube, config=TINY.replace(refit_full=True), seed=0)
    return cube, train_cube, model, calls


def test_training_blocks_are_chronological_and_disjoint():
    origins = np.repeat(np.arange(3, 23), 5)  # 20 periods of 5 rows, shuffled below
    origins = np.random.default_rng(0).permutation(origins)
    blocks = training_blocks(origins, TINY.replace(refit_full=True))
    # 15% of 20 periods calibrate, the 20% before them validate, the remaining 13 fit
    assert [len(np.unique(origins[m])) for m in (blocks.fit, blocks.validation)] == [13, 4]
    assert np.unique(origins[blocks.calibration]).tolist() == [20, 21, 22]
    assert origins[blocks.fit].max() < origins[blocks.validation].min()
    assert origins[blocks.validation].max() < origins[blocks.calibration].min()
    together = blocks.fit.astype(int) + blocks.validation + blocks.calibration
    assert (together == 1).all()  # a partition of the rows
    assert blocks.refit and blocks.heldout_block == "calibration"
    np.testing.assert_array_equal(blocks.final_training, blocks.fit | blocks.validation)
    np.testing.assert_array_equal(blocks.heldout, blocks.calibration)
    # without a refit the early-stopped network never saw the validation block, which calibrates
    plain = training_blocks(origins, TINY)
    assert not plain.calibration.any() and not plain.refit
    assert plain.heldout_block == "validation"
    np.testing.assert_array_equal(plain.final_training, plain.fit)
    # too few periods for three blocks: no refit, calibrated on the validation block
    short = training_blocks(np.array([5, 5, 6, 6]), TINY.replace(refit_full=True))
    assert not short.refit and short.heldout_block == "validation" and not short.calibration.any()
    # calibration_share=0: refit on every row, nothing held out, intervals uncalibrated
    everything = training_blocks(origins, TINY.replace(refit_full=True, calibration_share=0.0))
    assert everything.refit and everything.heldout_block is None
    assert everything.final_training.all() and not everything.heldout.any()
    single = training_blocks(np.array([4, 4, 4]), TINY.replace(refit_full=True))
    assert single.heldout_block is None and single.final_training.all()
    with pytest.raises(ModelError):
        ForecastConfig(validation_share=0.6, calibration_share=0.4)


def test_refit_never_trains_on_the_calibration_rows(refit_model):
    _, train_cube, model, calls = refit_model
    meta = model.metadata_
    metrics, window, calibration = meta["metrics"], meta["training_window"], meta["calibration"]
    rows = model.builder_.training_rows(train_cube)
    # the row counts partition the training rows; the final networks trained on fit + validation
    assert metrics["fit_rows"] + metrics["validation_rows"] + metrics["calibration_rows"] == len(
        rows
    )
    assert window["rows"] == len(rows)
    assert metrics["final_training_rows"] == metrics["fit_rows"] + metrics["validation_rows"]
    assert metrics["heldout_rows"] == metrics["calibration_rows"] == calibration["rows"] > 0
    assert calibration["block"] == "calibration" and calibration["calibrated"]
    assert calibration["refit"] and not calibration["trained_on"] and not calibration["chose_epoch"]
    # the calibration block is strictly later than every row a final network trained on
    assert pd.Timestamp(window["calibration_from"]) > pd.Timestamp(window["final_training_to"])
    assert calibration["first_target_period"] == window["calibration_from"]
    assert calibration["last_target_period"] == str(train_cube.periods[-1].date())
    # rows whose target is in the calibration block (found from the dates alone) never reached
    # Keras: neither as training rows nor as early-stopping validation rows
    target_period = train_cube.periods[rows.origin + 1]
    calibration_rows = rows.X[target_period >= pd.Timestamp(window["calibration_from"])]
    assert len(calibration_rows) == metrics["calibration_rows"]
    assert [len(c["x"]) for c in calls] == [metrics["fit_rows"], metrics["final_training_rows"]]
    seen = {
        r.tobytes()
        for c in calls
        for block in (c["x"], c["validation"])
        if block is not None
        for r in block
    }
    assert not any(r.tobytes() in seen for r in calibration_rows)
    # ... while the refit did train on the validation block (the most recent rows it may use)
    validation_rows = rows.X[model.blocks_.validation]
    assert all(r.tobytes() in {x.tobytes() for x in calls[1]["x"]} for r in validation_rows)
    assert "validation_mae" not in metrics and "validation_interval_coverage" not in metrics


def test_intervals_cover_80_percent_of_later_periods(refit_model):
    cube, train_cube, model, _ = refit_model
    metrics = model.metadata_["metrics"]
    first_test_origin = train_cube.shape[1] - 1
    inside = []
    for origin in range(first_test_origin, cube.shape[1] - 1):
        _, lower, upper = model.predict_all(cube.select_periods(slice(0, origin + 1)))
        actual = cube.severity[:, origin + 1]  # periods the model never saw
        inside.append((actual >= lower) & (actual <= upper))
    coverage = float(np.mean(inside))
    assert len(inside) == STATIONARY_TEST_PERIODS
    # measured 0.788 over 16 later periods x 80 cells (nominal 0.8)
    assert 0.7 <= coverage <= 0.9, coverage
    # the factors hold the nominal share of their own rows; the split-half estimate is honest
    assert metrics["calibration_interval_coverage"] >= 0.8 - 1e-9
    assert 0.7 <= metrics["heldout_interval_coverage"] <= 0.9
    assert metrics["heldout_mae"] > 0
    # intervals are informative: not the whole positive line
    assert np.mean(upper - lower) < 2 * np.mean(cube.severity)


def test_short_panels_fall_back_and_say_so():
    cfg = TINY.replace(refit_full=True, max_epochs=2, lags=4)
    two_periods = synthetic_cube(n_units=12, n_periods=6, seed=13)  # origins 3 and 4
    model = train(two_periods, config=cfg, seed=0)
    calibration = model.metadata_["calibration"]
    assert calibration["block"] == "validation" and not calibration["refit"]
    assert calibration["chose_epoch"] and calibration["rows"] == 12
    assert model.metadata_["training_window"]["calibration_from"] is None
    uncalibrated = train(two_periods, config=cfg.replace(calibration_share=0.0), seed=0)
    meta = uncalibrated.metadata_
    assert not meta["calibration"]["calibrated"] and meta["calibration"]["block"] is None
    assert meta["interval_calibration"] == {"edges": [], "lower": [1.0], "upper": [1.0]}
    assert meta["metrics"]["heldout_mae"] is None
    assert meta["metrics"]["final_training_rows"] == meta["training_window"]["rows"] == 24
    lower, upper = uncalibrated.predict_interval(two_periods)
    assert (lower <= upper).all()


def test_the_public_forecast_figure_shows_no_unit_period_alone(signal_backtest, tmp_path):
    """The forecast-vs-actual panel is a 2-D histogram: no point per unit-period, and no bin
    holding fewer than k unit-periods (each bin recounted from the predictions)."""
    from matplotlib.collections import PathCollection, QuadMesh

    from geo_crime.publish.figures.forecast import forecast_vs_actual_figure

    _, result = signal_backtest
    figure = forecast_vs_actual_figure(result, k_anonymity=5)  # what plot_forecast_vs_actual saves
    panel = figure.axes[1]
    assert not [c for c in panel.collections if isinstance(c, PathCollection)]
    mesh = next(c for c in panel.collections if isinstance(c, QuadMesh))
    shown = mesh.get_array()
    assert shown.count() > 0 and shown.compressed().min() >= 5
    part = result.predictions[result.predictions["model"] == "keras"]
    assert shown.compressed().sum() <= len(part)  # bins below k are dropped, never invented
