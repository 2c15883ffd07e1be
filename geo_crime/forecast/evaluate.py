"""Honest backtest: rolling origins, expanding window, the same cells for every model.

Protocol
--------
Forecast origins ``t`` are every period (or the last ``n_origins`` periods) at which most of the
study area can be scored (at least ``min_scored_share``, 50%, of the units have a complete target
and history; when no period reaches that, the periods where the most units can be scored, and the
result says the backtest does not cover the study area); each forecast is of period ``t + 1``.
The last weeks of a data set where only one division is still completely recorded are therefore
not the test.
At origin ``t`` a forecaster sees ``cube.select_periods(slice(0, t + 1))``: the
future is not even passed to it, so neither features nor scaling can look ahead. Models are fit on
an **expanding window** (every period up to the origin) and, to bound the time, refit only every
``refit_every`` origins: a model refit at origin ``t0`` forecasts origins ``t0 .. t0 + k - 1``
from their own (growing) history with the weights learnt up to ``t0``. ``refit_every=1`` refits
at every origin; by default it is scaled to the number of origins so that each model is fitted at
most :data:`MAX_FITS` times (61 weekly origins: refit every 11, six fits, weights at most ten
periods stale). Tuning (optional) only sees periods up to the first origin.

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

References. Two rows of every metrics table are references, never candidates: ``zero`` (the
all-zero forecast) and ``clairvoyant`` (each unit's mean over every complete period of the panel
but the target, future included), scored on the same cells (:mod:`geo_crime.forecast.references`).

Metrics
-------
MAE, RMSE, R², Poisson deviance, total bias, harm-weighted PAI@k and PEI@k (reported only where
``k``% of the scored area holds enough units) and the 80% interval coverage: see
:mod:`geo_crime.forecast.metrics`, which computes them from the long predictions table.

Verdicts. Models are compared origin by origin with paired bootstrap intervals; a model wins
only where the 95% interval of the difference excludes zero, and ties go to the simpler model
(:mod:`geo_crime.forecast.verdicts`).

Models are named as in :mod:`geo_crime.forecast.registry` (``keras``, ``gbm``, ``ma4`` ...);
:func:`make_model` builds one from the backtest's Keras configuration and seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core import progress as progress_report
from geo_crime.core.errors import DataError, ModelError
from geo_crime.cube.panel import Cube
from geo_crime.forecast.baselines import Forecaster
from geo_crime.forecast.metrics import SHARES, score_predictions
from geo_crime.forecast.model import KerasForecaster
from geo_crime.forecast.network import DEFAULT_CONFIG, ForecastConfig
from geo_crime.forecast.panel import eligible_cells, target_values, unit_areas
from geo_crime.forecast.references import REFERENCE_WORDS, REFERENCES, reference_values
from geo_crime.forecast.registry import make_forecaster
from geo_crime.forecast.tuning import search_space
from geo_crime.forecast.tuning import tune as run_tune
from geo_crime.forecast.verdicts import judgements, verdict_sentences

__all__ = [
    "DEFAULT_MODELS",
    "MAX_FITS",
    "MIN_SCORED_SHARE",
    "BacktestResult",
    "backtest_scope",
    "evaluate",
    "make_model",
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
    "kde",
    "prospective",
    "sepp",
)

#: Default share of the study's units that must be scorable at a forecast origin.
MIN_SCORED_SHARE = 0.5

#: Fits per model at most when ``refit_every`` is not given (it is scaled to the origins).
MAX_FITS = 6

# --- models -----------------------------------------------------------------------------------


def make_model(
    name: str, *, config: ForecastConfig = DEFAULT_CONFIG, seed: int = 0, target: str | None = None
) -> Forecaster:
    """A forecaster by name, set up from the backtest's Keras configuration.

    Parameters
    ----------
    name : str
        A name of :mod:`geo_crime.forecast.registry`: ``keras``, ``gbm``, ``last``,
        ``ma<window>`` (e.g. ``ma4``), ``last_year``, ``hist_mean``, ``spatial_smooth`` or
        ``study_conv1d`` (the original study's network, pooled layout).
    config : ForecastConfig
        Settings of the Keras model; ``gbm`` uses the same ``lags`` and feature groups.
    seed : int, default 0
        Seed of the stochastic models.
    target : str, optional
        Overrides ``config.target``.

    Returns
    -------
    Forecaster

    Raises
    ------
    geo_crime.core.errors.ConfigError
        For an unknown name (the message lists the known ones).
    """
    target = target or config.target
    context = {
        "config": config.replace(target=target),
        "seed": seed,
        "target": target,
        "lags": config.lags,
        "feature_options": config.feature_options(),
    }
    return make_forecaster(name, context=context)


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
        One row per model (index), one column per metric; models not reported are absent. The
        last rows are the references ``zero`` and ``clairvoyant`` (never candidates).
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
    last_fits : dict
        Each model as fitted at the last refit (the warm start of a final model); not saved.
    origin_scores : pandas.DataFrame
        Per model and origin: cells, error sums and PAI (see
        :func:`geo_crime.forecast.metrics.score_predictions`), which the verdicts resample.
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
    last_fits: dict[str, Forecaster] = field(default_factory=dict, repr=False)
    origin_scores: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def judgements(self) -> dict[str, Any]:
        """Paired bootstrap comparisons over the origins (see :func:`verdicts.judgements`).

        Returns
        -------
        dict
            Per judged metric (Poisson deviance, MAE, PAI@5%): the best model, the models tied
            with it, the one to use and the intervals; computed once.
        """
        cached = self.__dict__.get("_judgements")
        if cached is None:
            cached = judgements(self.origin_scores, seed=int(self.config.get("seed", 0)))
            self.__dict__["_judgements"] = cached
        return cached

    def verdicts(self, reference: str = "keras") -> list[str]:
        """Plain sentences: whether the reference model beats the best baseline.

        Parameters
        ----------
        reference : str, default "keras"
            The model compared.

        Returns
        -------
        list of str
            On Poisson deviance, MAE and harm-weighted PAI@5%: a win, a loss or a tie (with the
            95% interval over origins), then what the references scored.
        """
        if reference not in self.metrics.index:
            return [f"{reference} was not evaluated on this panel."]
        return verdict_sentences(self.judgements(), reference)

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
            "references": {r: REFERENCE_WORDS[r] for r in REFERENCES if r in self.metrics.index},
            "judgements": self.judgements(),
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
    clash = sorted(set(names) & set(REFERENCES))
    if clash:
        raise ModelError(f"{', '.join(clash)}: the name of a backtest reference, not a model")
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
    n_origins: int | None = None,
    refit_every: int | None = None,
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
        Names (see :func:`make_model` and :mod:`geo_crime.forecast.registry`) or unfitted
        forecasters; default :data:`DEFAULT_MODELS`.
    n_origins : int, optional
        Number of forecast origins (the last usable ones); default (None or 0): every usable
        origin.
    refit_every : int, optional
        Refit every ``k`` origins (1 = refit at every origin); default (None or 0): the smallest
        ``k`` that fits each model at most :data:`MAX_FITS` times.
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
    if (refit_every or 0) < 0 or (n_origins or 0) < 0:
        raise ModelError("n_origins and refit_every must be >= 1 (0 or None: the default)")
    n_origins, refit_every = n_origins or None, refit_every or None
    target = target or config.target
    config = config.replace(target=target)
    forecasters = _resolve_models(models, config=config, seed=seed, target=target)
    y = target_values(cube, target)
    captured = np.asarray(cube.values(capture), dtype=float)
    complete = np.asarray(cube.complete, dtype=bool)
    history = max([int(m.required_history) for m in forecasters] + [int(min_history or 0)])
    options: dict[str, Any] = {}
    if tune:
        options = dict(tune) if isinstance(tune, dict) else {}
        # the history requirement must hold for any lags tuning may choose
        history = max(history, *search_space(config, options.get("space"))["lags"])
    eligible = eligible_cells(complete, history)
    first = (min_train_periods or history + 4) - 1
    origins, notes = _choose_origins(cube, eligible, first, history, n_origins, min_scored_share)
    if refit_every is None:
        refit_every = -(-len(origins) // MAX_FITS)
    tuning_summary = None
    if tune:
        config, forecasters, tuning_summary, note = _tune_keras(
            cube, origins[0], forecasters, config=config, seed=seed, options=options
        )
        notes.append(note)
    cells = _Cells(cube.unit_ids, y, captured, unit_areas(cube.units), eligible)
    frames, last_fits, timings = _backtest_models(
        forecasters, cube, cells, origins, refit_every, progress
    )
    names = [m.name for m in forecasters]
    predictions = _with_references(frames, cube, y, complete)
    metrics, curves, more_notes, pai_reported, origin_scores = score_predictions(
        predictions, [*names, *REFERENCES], shares
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
        "n_units": y.shape[0],
        "n_periods": y.shape[1],
        "seed": seed,
        "keras_config": config.to_dict(),
        "models": names,
        "shares": list(shares),
    }
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
        scope=backtest_scope(cube, eligible, origins, pai_reported),
        last_fits=last_fits,
        origin_scores=origin_scores,
    )


def _choose_origins(
    cube: Cube,
    eligible: np.ndarray,
    first: int,
    history: int,
    n_origins: int | None,
    min_scored_share: float,
) -> tuple[list[int], list[str]]:
    """The forecast origins (period columns) and the notes on how they were chosen: the last
    ``n_origins`` usable periods where at least ``min_scored_share`` of the units can be scored,
    else those where the most can (see the module docstring)."""
    T = eligible.shape[1]
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
        origins = broad[-n_origins:] if n_origins else broad
        later = [t for t in candidates if t > origins[-1]]
        if later:
            notes.append(
                f"Origins end at {cube.periods[origins[-1]].date()}: at the {len(later)} later "
                f"usable origin(s) fewer than {min_scored_share:.0%} of the units are completely "
                "recorded, so they would test the model on a corner of the study area."
            )
    else:
        best = sorted(candidates, key=lambda t: (-scorable_share[t], -t))[: n_origins or None]
        origins = sorted(best)
        notes.append(
            f"No origin has {min_scored_share:.0%} of the units completely recorded: the "
            f"backtest uses the {len(origins)} origins where the most units can be scored and "
            "does not cover the study area."
        )
    if n_origins and len(origins) < n_origins:
        notes.append(
            f"Only {len(origins)} usable origins (asked for {n_origins}): the coverage mask and "
            f"the {history}-period history requirement leave no other."
        )
    return origins, notes


def _tune_keras(
    cube: Cube,
    first_origin: int,
    forecasters: list[Forecaster],
    *,
    config: ForecastConfig,
    seed: int,
    options: dict[str, Any],
) -> tuple[ForecastConfig, list[Forecaster], dict[str, Any], str]:
    """Tune the Keras model on the periods up to the first origin: the tuned configuration,
    the forecasters with the Keras one rebuilt from it, the tuning summary and a note."""
    found = run_tune(
        cube.select_periods(slice(0, first_origin + 1)), config=config, seed=seed, **options
    )
    forecasters = [
        KerasForecaster(found.best_config, seed=seed) if isinstance(m, KerasForecaster) else m
        for m in forecasters
    ]
    note = (
        f"Keras hyperparameters tuned on periods up to {cube.periods[first_origin].date()} "
        f"(before the first forecast origin): {found.best_config.hyperparameters()}."
    )
    return found.best_config, forecasters, found.summary(), note


@dataclass(frozen=True)
class _Cells:
    """What the backtest reads of the cube: the unit ids, and of each (unit, period) cell the
    target, the measure the targeting metrics capture, the unit's area and whether the next
    period's cell is scored from it (:func:`eligible_cells`)."""

    unit_ids: np.ndarray
    y: np.ndarray
    captured: np.ndarray
    area: np.ndarray
    eligible: np.ndarray


def _backtest_models(
    forecasters: list[Forecaster],
    cube: Cube,
    cells: _Cells,
    origins: list[int],
    refit_every: int,
    progress: Callable[[str], None] | None,
) -> tuple[list[pd.DataFrame], dict[str, Forecaster], dict[str, dict[str, float]]]:
    """Every model over every origin (see :func:`_backtest_model`): their predictions, last
    fits and timings."""
    frames = []
    last_fits: dict[str, Forecaster] = {}
    timings: dict[str, dict[str, float]] = {}
    blocks_per_model = -(-len(origins) // refit_every)
    for i, model in enumerate(forecasters):
        frame, last_fits[model.name], timings[model.name] = _backtest_model(
            model,
            cube,
            cells,
            origins,
            refit_every,
            fits=(i * blocks_per_model, blocks_per_model * len(forecasters)),
            progress=progress,
        )
        frames.append(frame)
    return frames, last_fits, timings


def _backtest_model(
    model: Forecaster,
    cube: Cube,
    cells: _Cells,
    origins: list[int],
    refit_every: int,
    *,
    fits: tuple[int, int],
    progress: Callable[[str], None] | None,
) -> tuple[pd.DataFrame, Forecaster, dict[str, float]]:
    """One model over every origin, refit every ``refit_every`` origins on the expanding window:
    its predictions of the scored cells, its last fit and its timings. ``fits`` is the number
    of fits done before this model and of all the backtest's fits (for the progress report)."""
    fits_done, total_fits = fits
    fit_s = pred_s = 0.0
    n_fits = 0
    parts = []
    previous = None
    warm = isinstance(model, KerasForecaster) and model.config.warm_start
    for b in range(0, len(origins), refit_every):
        block = origins[b : b + refit_every]
        progress_report.fits(
            fits_done, total_fits, f"{model.name}, origin {cube.periods[block[0]].date()}"
        )
        fits_done += 1
        t0 = time.perf_counter()
        window = cube.select_periods(slice(0, block[0] + 1))
        if warm:
            fitted = model.clone().fit(window, warm_start=previous)
        else:
            fitted = model.clone().fit(window)
        previous = fitted
        fit_s += time.perf_counter() - t0
        n_fits += 1
        for t in block:
            t0 = time.perf_counter()
            mean, lower, upper = _predict(fitted, cube.select_periods(slice(0, t + 1)))
            pred_s += time.perf_counter() - t0
            parts.append(_origin_frame(model.name, cube, cells, t, mean, lower, upper))
    progress_report.fits(fits_done, total_fits, model.name)
    if progress is not None:
        progress(f"{model.name}: {n_fits} fits in {fit_s:.1f} s, predictions in {pred_s:.1f} s")
    timing = {"fit_seconds": round(fit_s, 3), "predict_seconds": round(pred_s, 3), "fits": n_fits}
    return pd.concat(parts, ignore_index=True), previous, timing


def _origin_frame(
    name: str,
    cube: Cube,
    cells: _Cells,
    t: int,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> pd.DataFrame:
    """A model's forecasts from origin ``t`` of the cells scored there, with their actuals."""
    keep = cells.eligible[:, t]
    return pd.DataFrame(
        {
            "model": name,
            "unit_id": cells.unit_ids[keep],
            "origin": cube.periods[t],
            "period": cube.periods[t + 1],
            "actual": cells.y[keep, t + 1],
            "captured": cells.captured[keep, t + 1],
            "area_km2": cells.area[keep],
            "prediction": mean[keep],
            "lower": lower[keep],
            "upper": upper[keep],
        }
    )


def _with_references(
    frames: list[pd.DataFrame], cube: Cube, y: np.ndarray, complete: np.ndarray
) -> pd.DataFrame:
    """The models' predictions and the references' on the same cells, in one long table."""
    cells = frames[0]  # every model is scored on the same cells
    rows = pd.Index(cube.unit_ids).get_indexer(cells["unit_id"])
    cols = pd.DatetimeIndex(cube.periods).get_indexer(cells["period"])
    frames = list(frames)
    for ref in REFERENCES:  # forecasts from the whole panel (see the module docstring)
        forecast = reference_values(ref, y, complete)[rows, cols]
        frames.append(cells.assign(model=ref, prediction=forecast, lower=np.nan, upper=np.nan))
    return pd.concat(frames, ignore_index=True)


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
