"""Honest backtest: rolling origins, expanding window, the same cells for every model.

Protocol
--------
Forecast origins ``t`` are the last ``n_origins`` periods at which most of the study area can be
scored (at least ``min_scored_share``, 50%, of the units have a complete target and history; when
no period reaches that, the periods where the most units can be scored, and the result says the
backtest does not cover the study area); each forecast is of period ``t + 1``. The last weeks of
a data set where only one division is still completely recorded are therefore not the test.
At origin ``t`` a forecaster sees ``cube.select_periods(slice(0, t + 1))``: the
future is not even passed to it, so neither features nor scaling can look ahead. Models are fit on
an **expanding window** (every period up to the origin) and, to bound the time, refit only every
``refit_every`` origins: a model refit at origin ``t0`` forecasts origins ``t0 .. t0 + k - 1``
from their own (growing) history with the weights learnt up to ``t0``. ``refit_every=1`` refits
at every origin; the default 4 divides the number of Keras fits by four at the price of weights up
to three periods stale. Tuning (optional) only sees periods up to the first origin.

Coverage. A cell ``(unit, t + 1)`` is scored only when the target cell is complete and the unit's
last ``H`` periods up to ``t`` are complete, ``H`` being the longest history any compared model
needs (the Keras and tree models' ``lags``; 30 days for the study's network). Every model is
scored on exactly the same cells; an origin with no such cell is skipped. A baseline that still
cannot forecast some scored cells (``last_year`` when the history is shorter than a year or last
year's cell is incomplete) is **not reported**, with a note.

Scope. :attr:`BacktestResult.scope` (and ``forecast_metrics.json``) says what was scored: the
units per origin, their share of the study's units, the divisions they lie in, and whether the
backtest covers the study area (``covers_study_area``: at least half of the units scored at every
origin).

Metrics
-------
``mae``, ``rmse``, ``r2``
    Pooled over all scored (unit, origin) cells.
``poisson_deviance``
    :func:`sklearn.metrics.mean_poisson_deviance`, with predictions clipped to ``>= 1e-6`` (it
    needs positive predictions); a model predicting zero where crime happens is heavily penalised,
    as the Poisson likelihood says it should be.
``pai_k``, ``pei_k``
    Reported only where ``k``% of the scored area holds at least :data:`MIN_UNITS_IN_SHARE` (5)
    units of the median scored size at every origin: on 14 scored cells, 1% of the area is a
    fraction of one cell, and PAI@1% would only repeat PAI@5%. Targeting at ``k`` = 1, 5, 10% of
    the area, weighted by harm: units are ranked by predicted
    density (prediction / area) and accumulated until ``k``% of the scored area is covered; the
    unit straddling the threshold counts pro rata, and units with equal predicted density are
    pooled (the expected capture of a random tie break). The Predictive Accuracy Index is the share
    of the next period's actual **severity** (the ``capture`` measure) in the selection divided by
    the area share ``k``; the Predictive Efficiency Index divides it by the PAI of the perfect
    selection (ranking by actual density) at the same area share, so ``0 <= PEI <= 1``. Both are
    computed per origin and averaged. Areas: ``units["area_km2"]``, else polygon areas in
    EPSG:3310, else equal.
``coverage_80``, ``interval_width``
    For models with intervals: share of actuals inside the 80% interval, and its mean width.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.cube import Cube
from geo_crime.errors import DataError, ModelError
from geo_crime.forecast.baselines import (
    Forecaster,
    GradientBoosting,
    HistoricalMean,
    LastPeriod,
    MovingAverage,
    SeasonalNaive,
    SpatialSmoothing,
)
from geo_crime.forecast.features import eligible_cells, target_values, unit_areas
from geo_crime.forecast.model import DEFAULT_CONFIG, ForecastConfig, KerasForecaster

__all__ = [
    "DEFAULT_MODELS",
    "MIN_SCORED_SHARE",
    "MIN_UNITS_IN_SHARE",
    "SHARES",
    "BacktestResult",
    "backtest_scope",
    "capture_curve",
    "evaluate",
    "make_model",
    "pai",
    "pei",
    "point_metrics",
    "synthetic_cube",
]

#: Every model and baseline compared by default.
DEFAULT_MODELS = (
    "keras",
    "gbm",
    "last",
    "ma4",
    "ma8",
    "ma13",
    "last_year",
    "hist_mean",
    "spatial_smooth",
)

#: Area shares of the targeting metrics.
SHARES = (0.01, 0.05, 0.10)

#: PAI@k and PEI@k are reported only when k% of the scored area holds this many units.
MIN_UNITS_IN_SHARE = 5

#: Default share of the study's units that must be scorable at a forecast origin.
MIN_SCORED_SHARE = 0.5

#: Grid of area shares of the stored capture curves.
CURVE_GRID = np.round(np.linspace(0.0, 1.0, 201), 4)


# --- metrics --------------------------------------------------------------------------------------


def capture_curve(
    pred: np.ndarray, actual: np.ndarray, area: np.ndarray, shares: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Share of the actual total captured by the top units, by predicted density, per area share.

    Parameters
    ----------
    pred, actual, area : numpy.ndarray
        Per unit: predicted value, actual value (e.g. next-period severity) and area.
    shares : sequence of float
        Area shares in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        Captured share of ``actual`` at each area share (NaN when the actual total is zero).
        Units are taken in decreasing ``pred / area``; the unit straddling a share counts pro
        rata and equal densities are pooled (see the module docstring).
    """
    pred = np.asarray(pred, dtype=float)
    actual = np.asarray(actual, dtype=float)
    area = np.asarray(area, dtype=float)
    shares = np.asarray(shares, dtype=float)
    total = actual.sum()
    if total <= 0 or len(pred) == 0:
        return np.full(shares.shape, np.nan)
    density = pred / area
    order = np.argsort(-density, kind="stable")
    d, a, v = density[order], area[order], actual[order]
    ends = np.append(np.flatnonzero(np.diff(d) != 0), len(d) - 1)  # last index of each tie group
    xs = np.concatenate([[0.0], np.cumsum(a)[ends] / a.sum()])
    ys = np.concatenate([[0.0], np.cumsum(v)[ends] / total])
    return np.interp(shares, xs, ys)


def pai(pred: np.ndarray, actual: np.ndarray, area: np.ndarray, share: float) -> float:
    """Predictive Accuracy Index: captured share of ``actual`` / area share.

    Examples
    --------
    Four equal units, the forecast ranks the unit holding 6 of 10 incidents first:

    >>> pai([4, 3, 2, 1], [6, 2, 1, 1], [1, 1, 1, 1], 0.25)
    2.4
    """
    return float(capture_curve(pred, actual, area, [share])[0] / share)


def pei(pred: np.ndarray, actual: np.ndarray, area: np.ndarray, share: float) -> float:
    """Predictive Efficiency Index: PAI / the PAI of perfect knowledge at the same area share."""
    got = capture_curve(pred, actual, area, [share])[0]
    best = capture_curve(actual, actual, area, [share])[0]
    return float(got / best) if best > 0 else float("nan")


def point_metrics(actual: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R² and mean Poisson deviance of pooled forecasts."""
    from sklearn.metrics import mean_poisson_deviance, r2_score

    actual = np.asarray(actual, dtype=float)
    pred = np.asarray(pred, dtype=float)
    if len(actual) == 0:
        return {"mae": np.nan, "rmse": np.nan, "r2": np.nan, "poisson_deviance": np.nan}
    err = pred - actual
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": float(r2_score(actual, pred)) if len(actual) > 1 else np.nan,
        "poisson_deviance": float(mean_poisson_deviance(actual, np.maximum(pred, 1e-6))),
    }


# --- models -----------------------------------------------------------------------------------


def make_model(
    name: str, *, config: ForecastConfig = DEFAULT_CONFIG, seed: int = 0, target: str | None = None
) -> Forecaster:
    """A forecaster by name.

    Parameters
    ----------
    name : str
        ``keras``, ``gbm``, ``last``, ``ma<k>`` (e.g. ``ma4``), ``last_year``, ``hist_mean``,
        ``spatial_smooth`` or ``study_conv1d`` (the original study's network, pooled layout).
    config : ForecastConfig
        Settings of the Keras model; ``gbm`` uses the same ``lags`` and feature groups.
    seed : int, default 0
        Seed of the stochastic models.
    target : str, optional
        Overrides ``config.target``.

    Returns
    -------
    Forecaster
    """
    target = target or config.target
    features = {
        "spatial": config.spatial,
        "calendar": config.calendar,
        "static": config.static,
        "weights_method": config.weights_method,
        "knn": config.knn,
    }
    if name == "keras":
        return KerasForecaster(config.replace(target=target), seed=seed)
    if name == "gbm":
        return GradientBoosting(config.lags, seed=seed, target=target, feature_options=features)
    if name == "last":
        return LastPeriod(target=target)
    if name.startswith("ma") and name[2:].isdigit():
        return MovingAverage(int(name[2:]), target=target)
    if name == "last_year":
        return SeasonalNaive(target=target)
    if name == "hist_mean":
        return HistoricalMean(target=target)
    if name == "spatial_smooth":
        return SpatialSmoothing(target=target)
    if name == "study_conv1d":
        from geo_crime.forecast.study import StudyConv1D

        return StudyConv1D(target=target, seed=seed, layout="pooled")
    raise ModelError(f"unknown model {name!r}; known: {', '.join(DEFAULT_MODELS)}, study_conv1d")


# --- result ---------------------------------------------------------------------------------------


@dataclass
class BacktestResult:
    """Everything a backtest produced.

    Attributes
    ----------
    name : str
        Panel label (e.g. ``"West LA 2020-21, weekly, RD"``).
    target, capture, freq, unit_type : str
        What was forecast, what the targeting metrics capture, the period and the unit type.
    metrics : pandas.DataFrame
        One row per model (index), one column per metric; models not reported are absent.
    predictions : pandas.DataFrame
        Long table of scored cells: ``model``, ``unit_id``, ``origin``, ``period`` (target),
        ``actual``, ``captured``, ``area_km2``, ``prediction``, ``lower``, ``upper``.
    curves : pandas.DataFrame
        Mean capture curve per model (columns) and for ``perfect`` selection, indexed by area share.
    origins : pandas.DatetimeIndex
        Origin periods (each forecast is of the next period).
    config : dict
        Settings (Keras configuration, ``n_origins``, ``refit_every``, history length ...).
    notes : list of str
        What was left out and why.
    timings : dict
        Seconds per model (fit and predict).
    tuning : dict or None
        Tuning summary when tuning was run.
    extra : dict
        Further tables for the report (e.g. the original study's own protocol).
    scope : dict
        What was scored: ``n_units``, ``scored_units_per_origin`` (list of int),
        ``scored_share_per_origin``, ``scored_divisions`` and ``study_divisions`` (sorted
        division numbers; empty when the units carry none), ``covers_study_area`` (at least
        half of the units scored at every origin) and ``pai_reported`` (the shares whose PAI is
        reported).
    """

    name: str
    target: str
    capture: str
    freq: str
    unit_type: str
    metrics: pd.DataFrame
    predictions: pd.DataFrame
    curves: pd.DataFrame
    origins: pd.DatetimeIndex
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    tuning: dict[str, Any] | None = None
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)

    def comparison(self, reference: str = "keras") -> pd.DataFrame:
        """How ``reference`` fares against every other model on MAE and PAI@5%.

        Returns
        -------
        pandas.DataFrame
            One row per other model: both models' MAE and PAI@5% and whether the reference is
            better (lower MAE; higher PAI).
        """
        m = self.metrics
        if reference not in m.index:
            return pd.DataFrame()
        rows = []
        for other in m.index:
            if other == reference:
                continue
            rows.append(
                {
                    "model": other,
                    f"mae_{reference}": m.at[reference, "mae"],
                    "mae_model": m.at[other, "mae"],
                    "beats_on_mae": bool(m.at[reference, "mae"] < m.at[other, "mae"]),
                    f"pai_5_{reference}": m.at[reference, "pai_5"],
                    "pai_5_model": m.at[other, "pai_5"],
                    "beats_on_pai_5": bool(m.at[reference, "pai_5"] > m.at[other, "pai_5"]),
                }
            )
        return pd.DataFrame(rows)

    def verdicts(self, reference: str = "keras") -> list[str]:
        """Plain sentences: where the reference model does not beat a baseline."""
        table = self.comparison(reference)
        if table.empty:
            return [f"{reference} was not evaluated on this panel."]
        out = []
        m = self.metrics
        for metric, label, better in (
            ("mae", "MAE", "the lowest"),
            ("pai_5", "harm-weighted PAI@5%", "the highest"),
        ):
            mine = m.at[reference, metric]
            if pd.isna(mine):
                out.append(f"{label} is not reported for this panel (too few scored units).")
                continue
            others = table["model"].tolist()
            # PAI of models that select the same units differs only through the unit straddling
            # the area threshold: within 0.1% is a tie; MAE must match to round-off
            rtol = 1e-3 if metric == "pai_5" else 1e-9
            ties = [b for b in others if np.isclose(m.at[b, metric], mine, rtol=rtol, atol=1e-12)]
            flag = "beats_on_mae" if metric == "mae" else "beats_on_pai_5"
            lost = [b for b in table.loc[~table[flag], "model"] if b not in ties]
            fmt = "{:.3f}"
            if lost:
                out.append(
                    f"{reference} does NOT beat {', '.join(lost)} on {label} "
                    f"({reference} {fmt.format(mine)} vs "
                    + ", ".join(f"{b} {fmt.format(m.at[b, metric])}" for b in lost)
                    + ")."
                )
            if ties:
                out.append(
                    f"{reference} ties {', '.join(ties)} on {label} ({fmt.format(mine)}: the same "
                    "units are selected)."
                    if metric == "pai_5"
                    else f"{reference} ties {', '.join(ties)} on {label} ({fmt.format(mine)})."
                )
            if not lost and not ties:
                out.append(f"{reference} has {better} {label} of all models compared.")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (metrics, settings, notes; not the predictions)."""
        metrics = self.metrics.astype(float).round(6)
        return {
            "name": self.name,
            "target": self.target,
            "capture": self.capture,
            "freq": self.freq,
            "unit_type": self.unit_type,
            "origins": [str(p.date()) for p in self.origins],
            "n_scored_cells": int(self.metrics["n"].max()) if len(self.metrics) else 0,
            "scored_units_per_origin": list(self.scope.get("scored_units_per_origin", [])),
            "scored_divisions": list(self.scope.get("scored_divisions", [])),
            "scope": self.scope,
            "metrics": {
                model: {k: (None if pd.isna(v) else v) for k, v in row.items()}
                for model, row in metrics.to_dict(orient="index").items()
            },
            "comparison": self.comparison().to_dict(orient="records"),
            "verdicts": self.verdicts(),
            "config": self.config,
            "notes": self.notes,
            "timings": self.timings,
            "tuning": self.tuning,
            "extra": {k: v.to_dict(orient="records") for k, v in self.extra.items()},
        }


# --- backtest ---------------------------------------------------------------------------------


def _resolve_models(
    models: Sequence[str | Forecaster] | None, *, config: ForecastConfig, seed: int, target: str
) -> list[Forecaster]:
    out = []
    for item in models if models is not None else DEFAULT_MODELS:
        if isinstance(item, str):
            out.append(make_model(item, config=config, seed=seed, target=target))
        elif isinstance(item, Forecaster):
            if item.target != target:
                raise ModelError(f"{item.name} forecasts {item.target!r}, the backtest {target!r}")
            out.append(item)
        else:
            raise ModelError(f"not a forecaster or model name: {item!r}")
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise ModelError(f"model names must be unique, got {names}")
    return out


def _predict(model: Forecaster, cube: Cube) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(model, KerasForecaster) and model.supports_intervals:
        return model.predict_all(cube)
    mean = np.asarray(model.predict(cube), dtype=float)
    if model.supports_intervals:
        lower, upper = model.predict_interval(cube)
        return mean, np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    nan = np.full(len(mean), np.nan)
    return mean, nan, nan


def evaluate(
    cube: Cube,
    *,
    models: Sequence[str | Forecaster] | None = None,
    n_origins: int = 12,
    refit_every: int = 4,
    config: ForecastConfig = DEFAULT_CONFIG,
    target: str | None = None,
    capture: str = "severity",
    shares: Sequence[float] = SHARES,
    min_train_periods: int | None = None,
    min_history: int | None = None,
    min_scored_share: float = MIN_SCORED_SHARE,
    tune: dict[str, Any] | bool | None = None,
    seed: int = 0,
    name: str = "",
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Rolling-origin, expanding-window backtest of forecasters on a cube.

    Parameters
    ----------
    cube : Cube
        The panel (any unit type and frequency; the coverage mask is honoured).
    models : sequence of str or Forecaster, optional
        Names (see :func:`make_model`) or unfitted forecasters; default :data:`DEFAULT_MODELS`.
    n_origins : int, default 12
        Number of forecast origins (the last usable ones).
    refit_every : int, default 4
        Refit every ``k`` origins (1 = refit at every origin).
    config : ForecastConfig, default DEFAULT_CONFIG
        Keras settings (and ``lags`` / feature groups of ``gbm``).
    target : str, optional
        ``severity``, ``count`` or ``harm``; default ``config.target``.
    capture : str, default "severity"
        Cube measure whose next-period actual the targeting metrics (PAI, PEI) capture.
    shares : sequence of float, default (0.01, 0.05, 0.10)
        Area shares of the targeting metrics.
    min_train_periods : int, optional
        Periods before the first origin (default: the history length + 4).
    min_history : int, optional
        Score only cells with at least this many complete periods of history (default: the
        longest history any compared model needs); use it to compare variants on the same cells.
    min_scored_share : float, default 0.5
        Origins are chosen among the periods where at least this share of the units can be
        scored (see the module docstring).
    tune : dict or bool, optional
        Tune the Keras model first on the periods up to the first origin (``True`` or keyword
        arguments of :func:`geo_crime.forecast.tuning.tune`).
    seed : int, default 0
        Seed of every stochastic model.
    name : str, default ""
        Panel label for the report.
    progress : callable, optional
        Called with a short message per model (fits and time).

    Returns
    -------
    BacktestResult
    """
    if refit_every < 1 or n_origins < 1:
        raise ModelError("n_origins and refit_every must be >= 1")
    target = target or config.target
    config = config.replace(target=target)
    forecasters = _resolve_models(models, config=config, seed=seed, target=target)
    y = target_values(cube, target)
    captured = np.asarray(cube.values(capture), dtype=float)
    complete = np.asarray(cube.complete, dtype=bool)
    n_units, T = y.shape
    history = max([int(m.required_history) for m in forecasters] + [int(min_history or 0)])
    options: dict[str, Any] = {}
    if tune:
        from geo_crime.forecast.tuning import search_space

        options = dict(tune) if isinstance(tune, dict) else {}
        # the history requirement must hold for any lags tuning may choose
        history = max(history, *search_space(config, options.get("space"))["lags"])
    eligible = eligible_cells(complete, history)
    first = (min_train_periods or history + 4) - 1
    candidates = [t for t in range(max(first, 0), T - 1) if eligible[:, t].any()]
    if not candidates:
        raise DataError(
            f"no forecast origin: no unit has {history} complete periods followed by a complete "
            f"target after the first {first + 1} periods (cube of {T} periods)"
        )
    scorable_share = eligible.mean(axis=0)
    notes: list[str] = []
    broad = [t for t in candidates if scorable_share[t] >= min_scored_share]
    if broad:
        origins = broad[-n_origins:]
        later = [t for t in candidates if t > origins[-1]]
        if later:
            notes.append(
                f"Origins end at {cube.periods[origins[-1]].date()}: at the {len(later)} later "
                f"usable origin(s) fewer than {min_scored_share:.0%} of the units are completely "
                "recorded, so they would test the model on a corner of the study area."
            )
    else:
        best = sorted(candidates, key=lambda t: (-scorable_share[t], -t))[:n_origins]
        origins = sorted(best)
        notes.append(
            f"No origin has {min_scored_share:.0%} of the units completely recorded: the "
            f"backtest uses the {len(origins)} origins where the most units can be scored and "
            "does not cover the study area."
        )
    if len(origins) < n_origins:
        notes.append(
            f"Only {len(origins)} usable origins (asked for {n_origins}): the coverage mask and "
            f"the {history}-period history requirement leave no other."
        )
    area = unit_areas(cube.units)
    tuning_summary = None
    if tune:
        from geo_crime.forecast.tuning import tune as run_tune

        found = run_tune(
            cube.select_periods(slice(0, origins[0] + 1)), config=config, seed=seed, **options
        )
        tuning_summary = found.summary()
        config = found.best_config
        forecasters = [
            KerasForecaster(config, seed=seed) if isinstance(m, KerasForecaster) else m
            for m in forecasters
        ]
        notes.append(
            f"Keras hyperparameters tuned on periods up to {cube.periods[origins[0]].date()} "
            f"(before the first forecast origin): {found.best_config.hyperparameters()}."
        )
    unit_ids = cube.unit_ids
    frames = []
    timings: dict[str, dict[str, float]] = {}
    for model in forecasters:
        fit_s = pred_s = 0.0
        n_fits = 0
        parts = []
        for b in range(0, len(origins), refit_every):
            block = origins[b : b + refit_every]
            t0 = time.perf_counter()
            fitted = model.clone().fit(cube.select_periods(slice(0, block[0] + 1)))
            fit_s += time.perf_counter() - t0
            n_fits += 1
            for t in block:
                t0 = time.perf_counter()
                mean, lower, upper = _predict(fitted, cube.select_periods(slice(0, t + 1)))
                pred_s += time.perf_counter() - t0
                keep = eligible[:, t]
                parts.append(
                    pd.DataFrame(
                        {
                            "model": model.name,
                            "unit_id": unit_ids[keep],
                            "origin": cube.periods[t],
                            "period": cube.periods[t + 1],
                            "actual": y[keep, t + 1],
                            "captured": captured[keep, t + 1],
                            "area_km2": area[keep],
                            "prediction": mean[keep],
                            "lower": lower[keep],
                            "upper": upper[keep],
                        }
                    )
                )
        if progress is not None:
            progress(f"{model.name}: {n_fits} fits in {fit_s:.1f} s, predictions in {pred_s:.1f} s")
        timings[model.name] = {
            "fit_seconds": round(fit_s, 3),
            "predict_seconds": round(pred_s, 3),
            "fits": n_fits,
        }
        frames.append(pd.concat(parts, ignore_index=True))
    predictions = pd.concat(frames, ignore_index=True)
    metrics, curves, more_notes, pai_reported = _score(
        predictions, [m.name for m in forecasters], shares
    )
    notes.extend(more_notes)
    for name_, t in timings.items():
        if name_ in metrics.index:
            metrics.loc[name_, "fit_seconds"] = t["fit_seconds"]
            metrics.loc[name_, "predict_seconds"] = t["predict_seconds"]
    settings = {
        "n_origins": len(origins),
        "refit_every": refit_every,
        "history_required": history,
        "min_train_periods": first + 1,
        "periods": [str(cube.periods[0].date()), str(cube.periods[-1].date())],
        "n_units": n_units,
        "n_periods": T,
        "seed": seed,
        "keras_config": config.to_dict(),
        "models": [m.name for m in forecasters],
        "shares": list(shares),
    }
    scope = backtest_scope(cube, eligible, origins, pai_reported)
    return BacktestResult(
        name=name or f"{cube.meta.get('unit_type', 'units')} x {cube.freq}",
        target=target,
        capture=capture,
        freq=cube.freq,
        unit_type=str(cube.meta.get("unit_type", "unknown")),
        metrics=metrics,
        predictions=predictions,
        curves=curves,
        origins=pd.DatetimeIndex([cube.periods[t] for t in origins]),
        config=settings,
        notes=notes,
        timings=timings,
        tuning=tuning_summary,
        scope=scope,
    )


def backtest_scope(
    cube: Cube, eligible: np.ndarray, origins: Sequence[int], pai_reported: Sequence[float]
) -> dict[str, Any]:
    """What a backtest scored: units per origin, their share, their divisions.

    Parameters
    ----------
    cube : Cube
        The backtest's cube.
    eligible : numpy.ndarray
        ``(n_units, n_periods)`` scorable cells (see :func:`eligible_cells`).
    origins : sequence of int
        The origin columns.
    pai_reported : sequence of float
        Area shares whose PAI/PEI is reported.

    Returns
    -------
    dict
        See :attr:`BacktestResult.scope`.
    """
    n_units = int(cube.shape[0])
    per_origin = [int(eligible[:, t].sum()) for t in origins]
    scored_any = eligible[:, list(origins)].any(axis=1) if len(origins) else np.zeros(n_units, bool)
    areas = (
        pd.to_numeric(cube.units["area"], errors="coerce").to_numpy(dtype=float)
        if "area" in cube.units
        else np.full(n_units, np.nan)
    )
    study = sorted({int(a) for a in areas[np.isfinite(areas)]})
    scored = sorted({int(a) for a in areas[scored_any & np.isfinite(areas)]})
    shares = [round(k / n_units, 4) if n_units else 0.0 for k in per_origin]
    return {
        "n_units": n_units,
        "n_origins": len(per_origin),
        "scored_units_per_origin": per_origin,
        "scored_share_per_origin": shares,
        "scored_divisions": scored,
        "study_divisions": study,
        "covers_study_area": bool(shares) and min(shares) >= MIN_SCORED_SHARE,
        "pai_reported": [float(s) for s in pai_reported],
    }


def _score(
    predictions: pd.DataFrame, names: list[str], shares: Sequence[float]
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Metrics table, mean capture curves and notes from the long predictions table."""
    rows: dict[str, dict[str, float]] = {}
    curves: dict[str, np.ndarray] = {}
    notes: list[str] = []
    perfect_done = False
    reportable = _reportable_shares(predictions, shares)
    for share in shares:
        if share not in reportable:
            notes.append(
                f"PAI@{share:.0%} and PEI@{share:.0%} are not reported: {share:.0%} of the scored "
                f"area holds fewer than {MIN_UNITS_IN_SHARE} units at some origin."
            )
    for name in names:
        part = predictions.loc[predictions["model"] == name]
        missing = part["prediction"].isna()
        if missing.any():
            notes.append(
                f"{name} is not reported: it cannot forecast {int(missing.sum())} of the "
                f"{len(part)} scored cells (e.g. history shorter than a year for last_year)."
            )
            continue
        row: dict[str, float] = {"n": float(len(part))}
        row.update(point_metrics(part["actual"].to_numpy(), part["prediction"].to_numpy()))
        per_origin = {f"pai_{round(s * 100):g}": [] for s in shares}
        per_origin.update({f"pei_{round(s * 100):g}": [] for s in shares})
        curve_list, perfect_list = [], []
        for _, g in part.groupby("origin", sort=True):
            p = g["prediction"].to_numpy()
            a = g["captured"].to_numpy()
            ar = g["area_km2"].to_numpy()
            got = capture_curve(p, a, ar, shares)
            best = capture_curve(a, a, ar, shares)
            for s, gv, bv in zip(shares, got, best, strict=True):
                per_origin[f"pai_{round(s * 100):g}"].append(gv / s)
                per_origin[f"pei_{round(s * 100):g}"].append(gv / bv if bv > 0 else np.nan)
            curve_list.append(capture_curve(p, a, ar, CURVE_GRID))
            if not perfect_done:
                perfect_list.append(capture_curve(a, a, ar, CURVE_GRID))
        for key, values in per_origin.items():
            arr = np.asarray(values, dtype=float)
            share = float(key.split("_")[1]) / 100.0
            ok = any(np.isclose(share, r) for r in reportable)
            row[key] = float(np.nanmean(arr)) if ok and np.isfinite(arr).any() else np.nan
        if part["lower"].notna().all() and part["upper"].notna().all():
            inside = (part["actual"] >= part["lower"]) & (part["actual"] <= part["upper"])
            row["coverage_80"] = float(inside.mean())
            row["interval_width"] = float((part["upper"] - part["lower"]).mean())
        rows[name] = row
        curves[name] = np.nanmean(np.vstack(curve_list), axis=0)
        if not perfect_done:
            curves["perfect"] = np.nanmean(np.vstack(perfect_list), axis=0)
            perfect_done = True
    metrics = pd.DataFrame.from_dict(rows, orient="index")
    metrics.index.name = "model"
    order = ["n", "mae", "rmse", "r2", "poisson_deviance"]
    order += [f"pai_{round(s * 100):g}" for s in shares] + [
        f"pei_{round(s * 100):g}" for s in shares
    ]
    order += [c for c in ("coverage_80", "interval_width") if c in metrics]
    metrics = metrics.reindex(columns=order) if len(metrics) else metrics
    curve_frame = pd.DataFrame(curves, index=pd.Index(CURVE_GRID, name="area_share"))
    return metrics, curve_frame, notes, reportable


def _reportable_shares(predictions: pd.DataFrame, shares: Sequence[float]) -> list[float]:
    """Area shares ``k``: ``k``% of the scored area holds 5 median-sized units at every origin."""
    if predictions.empty:
        return []
    first = predictions["model"].iloc[0]
    part = predictions.loc[predictions["model"] == first]
    out = []
    for share in shares:
        ok = True
        for _, g in part.groupby("origin"):
            area = g["area_km2"].to_numpy(dtype=float)
            if share * area.sum() < MIN_UNITS_IN_SHARE * float(np.median(area)):
                ok = False
                break
        if ok:
            out.append(float(share))
    return out


# --- synthetic panel ----------------------------------------------------------------------------


def synthetic_cube(
    *,
    n_units: int = 100,
    n_periods: int = 104,
    freq: str = "W",
    resolution: int = 8,
    start: str = "2021-01-04",
    base_rate: float = 1.0,
    seasonal: float = 0.4,
    trend: float = 0.6,
    persistence: float = 0.8,
    noise: float = 0.15,
    n_divisions: int = 3,
    incomplete: float = 0.0,
    seed: int = 0,
) -> Cube:
    """A synthetic H3 panel with a known, learnable signal (for tests and benchmarks).

    The log intensity of unit ``i`` in period ``t`` is a smooth spatial hot-spot surface plus a
    yearly season (amplitude ``seasonal``), a trend whose sign varies smoothly in space (up to
    ``trend`` over the panel) and a spatially correlated AR(1) shock (``persistence``, scale
    ``noise``). Counts are Poisson; each incident gets a severity from {20, 35, 50, 80} (harm is
    severity x 3).

    Parameters
    ----------
    n_units, n_periods : int
        Panel size (H3 cells nearest downtown Los Angeles, at ``resolution``).
    freq : {"D", "W", "M"}
        Period length.
    incomplete : float, default 0
        Share of (division, last-periods) cells marked incomplete: the last
        ``round(incomplete * n_periods)`` periods of the first division.
    seed : int
        Random seed.

    Returns
    -------
    Cube
        With ``area`` (division 1..n_divisions) and ``population`` on the units.
    """
    import h3
    from shapely.geometry import Polygon

    rng = np.random.default_rng(seed)
    centre = h3.latlng_to_cell(34.05, -118.25, resolution)
    rings = 0
    while 3 * rings * (rings + 1) + 1 < n_units:
        rings += 1
    cells = sorted(h3.grid_disk(centre, rings), key=lambda c: (h3.grid_distance(centre, c), c))
    cells = cells[:n_units]
    latlng = np.array([h3.cell_to_latlng(c) for c in cells])
    xy = (latlng - latlng.mean(axis=0)) / (latlng.std(axis=0) + 1e-12)
    geoms = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    # smooth hot spots
    bumps = rng.normal(size=(4, 2)) * 0.8
    surface = sum(np.exp(-0.5 * ((xy - b) ** 2).sum(axis=1) / 0.3) for b in bumps)
    level = np.log(base_rate) + 1.5 * (surface - surface.mean())
    slope = trend * np.tanh(xy[:, 0])  # up in the east, down in the west
    # spatially correlated AR(1) shocks: Gaussian kernel over units
    dist2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2)
    kernel = np.exp(-0.5 * dist2 / 0.15)
    kernel /= kernel.sum(axis=1, keepdims=True)
    shock = np.zeros((n_units, n_periods))
    for t in range(1, n_periods):
        shock[:, t] = persistence * shock[:, t - 1] + kernel @ rng.normal(0, noise, n_units) * 3
    freq_code = {"D": "D", "W": "W-SUN", "M": "M"}[freq]
    periods = pd.period_range(start, periods=n_periods, freq=freq_code).start_time
    doy = (periods + (pd.Timedelta(days=3) if freq == "W" else pd.Timedelta(0))).dayofyear
    season = seasonal * np.sin(2 * np.pi * (doy.to_numpy() - 1) / 365.25)
    tt = np.arange(n_periods) / max(n_periods - 1, 1)
    log_rate = level[:, None] + season[None, :] + slope[:, None] * tt[None, :] + shock
    counts = rng.poisson(np.exp(log_rate))
    sev_values = np.array([20.0, 35.0, 50.0, 80.0])
    total = int(counts.sum())
    draws = rng.choice(sev_values, size=total, p=[0.4, 0.3, 0.2, 0.1])
    owner = np.repeat(np.arange(counts.size), counts.ravel())
    severity = np.bincount(owner, weights=draws, minlength=counts.size).reshape(counts.shape)
    division = 1 + np.minimum((rankdata_order(xy[:, 1]) * n_divisions).astype(int), n_divisions - 1)
    units = gpd.GeoDataFrame(
        {
            "unit_id": cells,
            "unit_type": "h3",
            "area": division,
            "population": np.round(np.exp(rng.normal(7.5, 0.5, n_units))),
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    complete = np.ones_like(counts, dtype=bool)
    k = int(round(incomplete * n_periods))
    if k > 0:
        complete[division == 1, -k:] = False
    return Cube(
        units=units,
        periods=pd.DatetimeIndex(periods),
        freq=freq,
        counts=counts.astype(np.int64),
        severity=severity,
        harm=severity * 3.0,
        complete=complete,
        meta={"unit_type": "h3", "source": "synthetic", "seed": seed},
    )


def rankdata_order(values: np.ndarray) -> np.ndarray:
    """Rank of each value in ``[0, 1)`` (ties broken by position)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values)) / max(len(values), 1)
    return ranks
