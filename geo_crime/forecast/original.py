"""The original study, reproduced: daily division severity with a small Conv1D network.

The study this project grew from forecast the **daily severity sum of each of the 21 LAPD
divisions** from the previous **30 days**, with a one-dimensional convolutional network
(``Conv1D -> BatchNormalization -> Dropout -> GlobalAveragePooling1D -> Dense``) trained on
MinMax-scaled series (scaler fit on the training days), an **80/20 chronological split** of the
days, and no comparison with naive forecasts. :func:`reproduce_study` runs that protocol on a
division x day cube and adds, scored on the same test division-days, the naive baselines the study
lacked (yesterday's value and the 7-day mean), the field's methods (:data:`FIELD_METHODS`: the
mean of all earlier days ``hist_mean``, space-time kernel density ``kde``, prospective hot spots
``prospective`` and the self-exciting point process ``sepp`` of the LAPD field trial; see
:mod:`geo_crime.forecast.field` and :mod:`geo_crime.forecast.sepp`) and the two references of
every backtest, ``zero`` and ``clairvoyant`` (:mod:`geo_crime.forecast.references`).

Cutoff. Every forecaster is fitted once, on the training days only (the cube cut at the split),
and forecasts each test day from the days before it (``predict`` on the cube ending the day
before): nothing from the test day or later is read. The references alone are computed from the
whole run of days, as in the backtest: they are yardsticks, not forecasts anyone could make.

Layouts. In the study's own layout (``layout="divisions"``) one window is a ``(30, 21)`` matrix
(divisions as channels) and the network predicts all 21 divisions' next day at once; it needs
days complete for every division. :class:`StudyConv1D` also offers ``layout="pooled"``: one
``(30, 1)`` window per division, pooled over divisions (the same network with one output), which
can forecast a division as soon as its own last 30 days are complete. The backtest in
:mod:`geo_crime.forecast.evaluate` uses the pooled layout (``make_model("study_conv1d")``), so
the study's network is scored on exactly the cells every other model is scored on; its registry
name ``study_conv1d`` (:mod:`geo_crime.forecast.registry`) means the pooled layout.

Scaling follows the study: each division's series is MinMax-scaled with its minimum and maximum
over the (complete) training days; forecasts are scaled back and clipped at zero. Training runs a
fixed number of epochs (no early stopping, as in the study), seeded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core.errors import DataError, ModelError
from geo_crime.cube.panel import Cube
from geo_crime.forecast.baselines import Forecaster, HistoricalMean, LastPeriod, MovingAverage
from geo_crime.forecast.field import ProspectiveHotSpot, SpaceTimeKDE
from geo_crime.forecast.metrics import point_metrics
from geo_crime.forecast.network import import_keras, seed_everything
from geo_crime.forecast.panel import history_ok, target_values
from geo_crime.forecast.references import REFERENCES, reference_values
from geo_crime.forecast.sepp import SelfExcitingPointProcess

__all__ = ["FIELD_CLASSES", "FIELD_METHODS", "StudyConv1D", "StudyResult", "reproduce_study"]

#: The field's methods added to the study's table by default (their registry names), and their
#: classes (this module cannot read the registry, which imports it).
FIELD_METHODS = ("hist_mean", "kde", "prospective", "sepp")
FIELD_CLASSES: dict[str, type[Forecaster]] = {
    "hist_mean": HistoricalMean,
    "kde": SpaceTimeKDE,
    "prospective": ProspectiveHotSpot,
    "sepp": SelfExcitingPointProcess,
}


class StudyConv1D(Forecaster):
    """The original study's Conv1D forecaster, with the common ``fit`` / ``predict`` interface.

    Parameters
    ----------
    window : int, default 30
        Days of history per forecast.
    layout : {"divisions", "pooled"}, default "divisions"
        Divisions as channels of one window (the study) or one window per unit, pooled.
    filters, kernel_size : int, default 64, 3
        Convolution settings.
    dropout : float, default 0.2
        Dropout after batch normalisation.
    epochs, batch_size : int, default 50, 16
        Fixed training length and mini-batch size.
    learning_rate : float, default 1e-3
        Adam learning rate (mean squared error loss, as in the study).
    seed : int, default 0
        Seed of weights, dropout and shuffling.
    target : str, default "severity"
        The measure forecast.
    """

    name = "study_conv1d"

    def __init__(
        self,
        window: int = 30,
        *,
        layout: str = "divisions",
        filters: int = 64,
        kernel_size: int = 3,
        dropout: float = 0.2,
        epochs: int = 50,
        batch_size: int = 16,
        learning_rate: float = 1e-3,
        seed: int = 0,
        target: str = "severity",
    ) -> None:
        super().__init__(target=target)
        if layout not in ("divisions", "pooled"):
            raise ModelError(f"layout must be 'divisions' or 'pooled', got {layout!r}")
        self.window = int(window)
        self.layout = layout
        self.filters = filters
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed

    @property
    def required_history(self) -> int:
        return self.window

    def _network(self, channels: int, outputs: int) -> Any:
        keras = import_keras()
        layers = keras.layers
        model = keras.Sequential(
            [
                keras.Input((self.window, channels)),
                layers.Conv1D(self.filters, self.kernel_size, activation="relu", padding="same"),
                layers.BatchNormalization(),
                layers.Dropout(self.dropout),
                layers.GlobalAveragePooling1D(),
                layers.Dense(outputs),
            ],
            name="study_conv1d",
        )
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate), loss="mse", jit_compile=False
        )
        return model

    def _scale(self, y: np.ndarray) -> np.ndarray:
        return (y - self.min_[:, None]) / self.range_[:, None]

    def _windows(self, y: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """``(len(ends), window, n_units)`` windows ending at each index."""
        idx = ends[:, None] + np.arange(-self.window + 1, 1)[None, :]
        return np.transpose(y[:, idx], (1, 2, 0))

    def fit(self, cube: Cube) -> StudyConv1D:
        """Fit the MinMax scaler and the network on every complete training window.

        Parameters
        ----------
        cube : Cube
            The training days.

        Returns
        -------
        StudyConv1D
            ``self``, with ``min_``, ``range_``, ``network_``, ``n_units_`` and ``n_windows_``.
        """
        seed_everything(self.seed)
        y = target_values(cube, self.target)
        c = np.asarray(cube.complete, dtype=bool)
        n, T = y.shape
        masked = np.where(c, y, np.nan)
        self.min_ = np.nan_to_num(np.nanmin(np.where(c.any(axis=1)[:, None], masked, 0), axis=1))
        span = np.nan_to_num(np.nanmax(np.where(c.any(axis=1)[:, None], masked, 1), axis=1))
        self.range_ = np.where(span - self.min_ > 0, span - self.min_, 1.0)
        scaled = np.nan_to_num(self._scale(y))
        ok = history_ok(c, self.window)  # ok[i, t]: window ending at t complete
        ends = np.arange(self.window - 1, T - 1)
        if self.layout == "divisions":
            good = ok[:, ends].all(axis=0) & c[:, ends + 1].all(axis=0)
            ends = ends[good]
            if len(ends) == 0:
                raise DataError(f"no {self.window}-day window complete for every unit")
            X = self._windows(scaled, ends)
            Y = scaled[:, ends + 1].T
            self.network_ = self._network(n, n)
        else:
            win = self._windows(scaled, ends)  # (e, w, n)
            good = (ok[:, ends] & c[:, ends + 1]).T  # (e, n)
            if not good.any():
                raise DataError(f"no complete {self.window}-day window")
            X = win.transpose(0, 2, 1)[good][:, :, None]  # (rows, w, 1)
            Y = scaled[:, ends + 1].T[good][:, None]
            self.network_ = self._network(1, 1)
        self.n_units_ = n
        self.n_windows_ = int(len(X))
        self.network_.fit(
            X.astype(np.float32),
            Y.astype(np.float32),
            epochs=self.epochs,
            batch_size=self.batch_size,
            shuffle=True,
            verbose=0,
        )
        return self

    def predict(self, cube: Cube) -> np.ndarray:
        if not hasattr(self, "network_"):
            raise ModelError("study_conv1d is not fitted: call fit(cube) first")
        y = target_values(cube, self.target)
        c = np.asarray(cube.complete, dtype=bool)
        n, T = y.shape
        if n != self.n_units_:
            raise ModelError(f"fit on {self.n_units_} units, asked to predict {n}")
        if self.window > T:
            return np.full(n, np.nan)
        ok = history_ok(c, self.window)[:, -1]
        scaled = np.nan_to_num(self._scale(y))
        window = scaled[:, -self.window :]  # (n, w)
        if self.layout == "divisions":
            if not ok.all():
                return np.full(n, np.nan)
            out = np.asarray(self.network_(window.T[None].astype(np.float32), training=False))
            pred = out[0]
        else:
            out = np.asarray(self.network_(window[:, :, None].astype(np.float32), training=False))
            pred = out[:, 0]
        pred = np.maximum(pred * self.range_ + self.min_, 0.0)
        return np.where(ok, pred, np.nan)


@dataclass
class StudyResult:
    """The study's own protocol and its naive comparisons.

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per model: ``study_conv1d``, ``last_day``, ``mean_7d``, the field's methods
        (``hist_mean``, ``kde``, ``prospective``, ``sepp`` by default), ours, then the references
        ``zero`` and ``clairvoyant`` (never candidates). Columns: number of scored division-days
        ``n``, MAE, RMSE, R² and mean Poisson deviance in severity points per division-day, and
        the MAE on the study's MinMax scale (each error divided by its division's range over the
        training days).
    info : dict
        Days used, split, windows, layout, the models of each kind (``field``, ``ours``,
        ``references``) and each fitted model's ``fit_seconds`` (one fit on the training days).
    predictions : pandas.DataFrame
        ``day``, ``unit_id``, ``actual`` and one column per model.
    """

    metrics: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)


def _longest_complete_run(cube: Cube) -> tuple[int, int]:
    """First and last period index of the longest run of periods complete for every unit."""
    full = np.asarray(cube.complete, dtype=bool).all(axis=0)
    best: tuple[int, int] | None = None
    j = 0
    while j < len(full):
        if not full[j]:
            j += 1
            continue
        k = j
        while k + 1 < len(full) and full[k + 1]:
            k += 1
        if best is None or k - j > best[1] - best[0]:
            best = (j, k)
        j = k + 1
    if best is None:
        raise DataError("no period is complete for every unit")
    return best


def reproduce_study(
    cube: Cube,
    *,
    window: int = 30,
    test_share: float = 0.2,
    epochs: int = 50,
    layout: str = "divisions",
    target: str = "severity",
    seed: int = 0,
    ours: dict[str, Forecaster] | None = None,
    field_methods: Sequence[str] = FIELD_METHODS,
    references: Sequence[str] = REFERENCES,
) -> StudyResult:
    """Run the original study's protocol on a division x day cube, with naive baselines.

    ``field_methods`` and ``ours`` add forecasters to the same protocol: each is fitted once on
    the same training days (its own validation blocks inside them) and forecasts each test day
    from the days before it, so the table sets the study's network, the naive forecasts, the
    field's methods and ours side by side on the same division-days.

    Parameters
    ----------
    cube : Cube
        Daily panel of the divisions (``freq="D"``). Only the longest run of days complete for
        every division is used (the study's layout needs all divisions on every day).
    window : int, default 30
        Days per input window.
    test_share : float, default 0.2
        Latest share of the days whose next-day forecasts are tested (80/20 chronological split;
        the MinMax scaler and the network see only the first 80%).
    epochs : int, default 50
        Training epochs.
    layout : {"divisions", "pooled"}, default "divisions"
        See :class:`StudyConv1D`.
    target : str, default "severity"
        The measure forecast.
    seed : int, default 0
        Random seed.
    ours : dict of str to Forecaster, optional
        More (unfitted) forecasters, by the name their column gets, e.g.
        ``{"keras": KerasForecaster(config)}``.
    field_methods : sequence of str, default :data:`FIELD_METHODS`
        Names of :mod:`geo_crime.forecast.registry` (default settings, this ``target`` and
        ``seed``) added after the naive forecasts; ``()`` for none.
    references : sequence of str, default ``("zero", "clairvoyant")``
        References scored last (see :mod:`geo_crime.forecast.references`); ``()`` for none.

    Returns
    -------
    StudyResult
    """
    if cube.freq != "D":
        raise DataError(f"the study's task is daily; the cube is '{cube.freq}'")
    first, last = _longest_complete_run(cube)
    days = cube.select_periods(slice(first, last + 1))
    T = days.shape[1]
    split = int(round((1 - test_share) * T))
    if split <= window + 1 or split >= T:
        raise DataError(
            f"{T} complete days cannot hold a {window}-day window and an 80/20 split "
            f"(training days: {split})"
        )
    names = ["study_conv1d", "last_day", "mean_7d", *field_methods, *(ours or {}), *references]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ModelError(f"{', '.join(repeated)}: two columns of the study's table by that name")
    network = StudyConv1D(window, layout=layout, epochs=epochs, seed=seed, target=target)
    forecasters, fit_seconds = _fitted_forecasters(
        days.select_periods(slice(0, split)), network, target, field_methods, ours or {}
    )
    model = forecasters["study_conv1d"]
    y = target_values(days, target)
    table = _test_forecasts(days, forecasters, y, split)
    columns = pd.DatetimeIndex(days.periods).get_indexer(table["day"])
    units = pd.Index(days.unit_ids).get_indexer(table["unit_id"])
    complete = np.asarray(days.complete, dtype=bool)
    for ref in references:  # yardsticks from the whole run of days (see the module docstring)
        table[ref] = reference_values(ref, y, complete)[units, columns]
    scale = pd.Series(model.range_, index=days.unit_ids)
    frame = _study_metrics(table, [*forecasters, *references], scale)
    info = {
        "days": [str(days.periods[0].date()), str(days.periods[-1].date())],
        "n_days": int(T),
        "training_days": [str(days.periods[0].date()), str(days.periods[split - 1].date())],
        "test_days": [str(days.periods[split].date()), str(days.periods[-1].date())],
        "n_units": int(days.shape[0]),
        "window": window,
        "layout": layout,
        "epochs": epochs,
        "training_windows": model.n_windows_,
        "test_forecasts": int(frame.at["study_conv1d", "n"]),
        "field": list(field_methods),
        "ours": list(ours or {}),
        "references": list(references),
        "fit_seconds": fit_seconds,
        "seed": seed,
    }
    return StudyResult(
        metrics=frame[["n", "mae", "rmse", "r2", "poisson_deviance", "mae_minmax"]],
        info=info,
        predictions=table,
    )


def _fitted_forecasters(
    training: Cube,
    network: StudyConv1D,
    target: str,
    field_methods: Sequence[str],
    ours: dict[str, Forecaster],
) -> tuple[dict[str, Forecaster], dict[str, float]]:
    """The study's network, the naive forecasts, the field's methods and ours, each fitted once
    on the training days (the naive ones need no fit), and each fit's seconds."""
    fit_seconds: dict[str, float] = {}

    def fitted(name: str, model: Forecaster) -> Forecaster:
        start = time.perf_counter()
        model.fit(training)
        fit_seconds[name] = round(time.perf_counter() - start, 3)
        return model

    forecasters: dict[str, Forecaster] = {
        "study_conv1d": fitted("study_conv1d", network),
        "last_day": LastPeriod(target=target),
        "mean_7d": MovingAverage(7, target=target),
    }
    unknown = sorted(set(field_methods) - set(FIELD_CLASSES))
    if unknown:
        raise ModelError(
            f"unknown field method(s) {', '.join(unknown)}; known: {', '.join(FIELD_CLASSES)}"
        )
    for name in field_methods:
        forecasters[name] = fitted(name, FIELD_CLASSES[name](target=target))
    for name, m in ours.items():
        forecasters[name] = fitted(name, m.clone())
    return forecasters, fit_seconds


def _test_forecasts(
    days: Cube, forecasters: dict[str, Forecaster], y: np.ndarray, split: int
) -> pd.DataFrame:
    """Every forecaster's forecast of each test day from the days before it (a strict cutoff):
    one row per (day, unit) with the actual and one column per forecaster."""
    rows = []
    for t in range(split - 1, days.shape[1] - 1):  # origins whose next day is a test day
        hist = days.select_periods(slice(0, t + 1))  # strict cutoff: days up to the origin
        preds = {k: np.asarray(m.predict(hist), dtype=float) for k, m in forecasters.items()}
        for i, unit in enumerate(days.unit_ids):
            rows.append(
                {
                    "day": days.periods[t + 1],
                    "unit_id": unit,
                    "actual": y[i, t + 1],
                    **{k: v[i] for k, v in preds.items()},
                }
            )
    return pd.DataFrame(rows)


def _study_metrics(table: pd.DataFrame, names: Sequence[str], scale: pd.Series) -> pd.DataFrame:
    """The point metrics of each column of ``table`` named in ``names`` over its non-missing
    rows, with the MAE on the study's MinMax scale (errors divided by ``scale``, the range of
    each unit over the training days) and the number of scored rows ``n``."""
    metrics = {}
    for name in names:
        ok = table[name].notna()
        part = table.loc[ok]
        m = point_metrics(part["actual"].to_numpy(), part[name].to_numpy())
        denom = part["unit_id"].map(scale).to_numpy()
        m["mae_minmax"] = float(np.mean(np.abs(part[name] - part["actual"]) / denom))
        m["n"] = int(ok.sum())
        metrics[name] = m
    frame = pd.DataFrame.from_dict(metrics, orient="index")
    frame.index.name = "model"
    return frame
