"""Severity forecasting: a pooled Keras model, honest baselines and a leak-free backtest.

The question is always the same: from a :class:`~geo_crime.cube.panel.Cube` (units x periods, daily,
weekly or monthly, built from incidents or from a pre-aggregated table), what will each unit's
severity sum (or count, or harm) be in the **next** period? And is the answer better than what a
moving average would have said?

Modules
-------
:mod:`~geo_crime.forecast.panel`
    Targets, periods, coverage eligibility, unit areas and chronological splits.
:mod:`~geo_crime.forecast.features`
    Feature rows per (unit, origin) with no look-ahead.
:mod:`~geo_crime.forecast.baselines`
    The common ``fit(cube)`` / ``predict(cube)`` estimator interface and the baselines.
:mod:`~geo_crime.forecast.network`
    The Keras forecaster's settings (:class:`ForecastConfig`) and network.
:mod:`~geo_crime.forecast.blocks`, :mod:`~geo_crime.forecast.calibration`
    Chronological fit / validation / calibration blocks; conformal interval factors.
:mod:`~geo_crime.forecast.model`
    The pooled Keras forecaster (:func:`train`, :func:`predict_next`, save and load).
:mod:`~geo_crime.forecast.original`
    The original division-daily Conv1D study, reproduced with naive baselines.
:mod:`~geo_crime.forecast.field`, :mod:`~geo_crime.forecast.sepp`
    The field's methods as forecasters: space-time kernel density (``kde``), prospective hot
    spots (``prospective``) and the LAPD field trial's self-exciting point process (``sepp``).
:mod:`~geo_crime.forecast.groups`, :mod:`~geo_crime.forecast.deep`,
:mod:`~geo_crime.forecast.group_backtest`
    Daily crime-group panels (burglary, vehicle crime, robbery, assault per cell), the pooled
    group network (``groupnet``: field surfaces and neighbour rings in, Poisson plus ranking
    loss, one head per group) and their backtest with the field's stacked ensemble.
:mod:`~geo_crime.forecast.registry`
    Forecasters by name (``keras``, ``gbm``, ``ma4`` ...): :func:`make_forecaster`.
:mod:`~geo_crime.forecast.metrics`
    MAE/RMSE/R²/Poisson deviance and harm-weighted PAI/PEI targeting metrics.
:mod:`~geo_crime.forecast.evaluate`
    Rolling-origin backtest (:func:`evaluate`).
:mod:`~geo_crime.forecast.tuning`
    keras-tuner random search under a time budget, before the test window.
:mod:`~geo_crime.report.forecast`
    Markdown/JSON tables and figures of a backtest (:func:`write_forecast_report`).

Imports run one way: panel, features, then baselines, network, blocks and calibration, then
model_metadata and model, study, field, sepp and deep, registry, tuning, evaluate and
group_backtest, and the report; metrics and groups depend on none of them.
TensorFlow is imported only when a Keras model is built, so the baselines and metrics load fast.

Examples
--------
On a cube (see :func:`geo_crime.make_cube`)::

    from geo_crime.forecast import FAST_CONFIG, evaluate, predict_next, train
    from geo_crime.report.forecast import write_forecast_report
    model = train(cube, config=FAST_CONFIG, seed=0)
    table = predict_next(model, cube)
    result = evaluate(cube, n_origins=12, refit_every=4, config=FAST_CONFIG)
    write_forecast_report(result, "outputs/forecast")
"""

from geo_crime.forecast.baselines import (
    Forecaster,
    GradientBoosting,
    HistoricalMean,
    LastPeriod,
    MovingAverage,
    SeasonalNaive,
    SpatialSmoothing,
)
from geo_crime.forecast.evaluate import DEFAULT_MODELS, BacktestResult, evaluate, make_model
from geo_crime.forecast.features import FeatureBuilder
from geo_crime.forecast.field import ProspectiveHotSpot, SpaceTimeKDE
from geo_crime.forecast.metrics import capture_curve, pai, pei, point_metrics
from geo_crime.forecast.model import KerasForecaster, load_model, predict_next, train
from geo_crime.forecast.network import DEFAULT_CONFIG, FAST_CONFIG, ForecastConfig
from geo_crime.forecast.original import StudyConv1D, StudyResult, reproduce_study
from geo_crime.forecast.panel import TARGETS, unit_areas
from geo_crime.forecast.registry import known_names, make_forecaster, register
from geo_crime.forecast.sepp import SelfExcitingPointProcess
from geo_crime.forecast.tuning import TuningResult, tune, tune_and_train

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_MODELS",
    "FAST_CONFIG",
    "TARGETS",
    "BacktestResult",
    "FeatureBuilder",
    "ForecastConfig",
    "Forecaster",
    "GradientBoosting",
    "HistoricalMean",
    "KerasForecaster",
    "LastPeriod",
    "MovingAverage",
    "ProspectiveHotSpot",
    "SeasonalNaive",
    "SelfExcitingPointProcess",
    "SpaceTimeKDE",
    "SpatialSmoothing",
    "StudyConv1D",
    "StudyResult",
    "TuningResult",
    "capture_curve",
    "evaluate",
    "known_names",
    "load_model",
    "make_forecaster",
    "make_model",
    "pai",
    "pei",
    "point_metrics",
    "predict_next",
    "register",
    "reproduce_study",
    "train",
    "tune",
    "tune_and_train",
    "unit_areas",
]
