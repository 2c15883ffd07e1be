"""Baselines: the forecasts a model has to beat before anyone should trust it.

Every forecaster (the baselines here, the Keras model in :mod:`geo_crime.forecast.model` and the
original study's network in :mod:`geo_crime.forecast.original`) shares one interface, so the
backtest treats them alike:

``fit(cube)``
    Learn from a training cube (all of its periods are training periods). Returns ``self``.
``predict(cube)``
    Forecast each unit's target in the period **after** the cube's last period, from the cube's
    history only. Returns an ``(n_units,)`` array aligned with ``cube.units``; NaN where the
    forecaster cannot say (e.g. no complete history).
``predict_interval(cube)``
    ``(lower, upper)`` of an 80% prediction interval, for forecasters with
    ``supports_intervals``.
``clone()``
    An unfitted copy with the same settings (the backtest refits clones).

Forecasters follow scikit-learn's estimator habits: every ``__init__`` parameter is stored in an
attribute of the same name and nothing else is set there (:meth:`Forecaster.get_params` reads the
names from the ``__init__`` signature, and :meth:`Forecaster.clone` calls the class with them);
whatever ``fit`` learns goes in attributes ending in ``_`` (``bandwidth_``, ``estimator_`` ...),
which do not exist before ``fit``. Two forecasters are equal only when they are the same object,
and every forecaster is hashable (the object defaults), so two moving averages with different
windows never compare equal. :mod:`geo_crime.forecast.registry` builds them by name (``ma4``,
``gbm`` ...).

Incomplete cells (the coverage mask) never enter a baseline: means are taken over complete
periods only, and a "last period" that is incomplete gives NaN.

Baselines
---------
``last``
    The last period's value.
``ma4``, ``ma8``, ``ma13``
    The mean of the last 4, 8 or 13 periods (complete ones only).
``last_year``
    The same period one year earlier (52 weeks, 12 months, 364 days so the weekday matches);
    NaN when the history is shorter than a year, and then not reported by the backtest.
``hist_mean``
    The unit's mean over all of its complete history.
``spatial_smooth``
    A Gaussian-weighted average of the unit's and its neighbours' recent means (last ``window``
    periods); the bandwidth is chosen on the last periods of the training window from a small grid
    of multiples of the median nearest-neighbour distance.
``gbm``
    scikit-learn ``HistGradientBoostingRegressor`` with Poisson loss on exactly the features of
    the Keras model (:class:`~geo_crime.forecast.features.FeatureBuilder`); the number of boosting
    iterations is chosen on a later block of the training window, then the model is refit on the
    whole window.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from geo_crime.core.errors import ModelError
from geo_crime.cube.panel import Cube, mean_per_complete_period
from geo_crime.forecast.features import FeatureBuilder
from geo_crime.forecast.panel import chronological_split, season_length, target_values

__all__ = [
    "Forecaster",
    "GradientBoosting",
    "HistoricalMean",
    "LastPeriod",
    "MovingAverage",
    "SeasonalNaive",
    "SpatialSmoothing",
    "ROLLING_BASELINES",
    "recent_mean",
    "rolling_baseline",
]


class Forecaster:
    """Base class of every forecaster: ``fit(cube)`` then ``predict(cube)``.

    Parameters
    ----------
    target : {"severity", "count", "harm"}, default "severity"
        The measure forecast.
    """

    #: Short name used in tables.
    name: str = "forecaster"
    #: Whether :meth:`predict_interval` is available.
    supports_intervals: bool = False

    def __init__(self, *, target: str = "severity") -> None:
        self.target = target

    @property
    def required_history(self) -> int:
        """Complete periods of history the forecaster needs before an origin."""
        return 1

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the ``__init__`` parameters, in signature order (scikit-learn style).

        Returns
        -------
        list of str
        """
        signature = inspect.signature(cls.__init__)
        return [
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """The settings, read from the attributes named like the ``__init__`` parameters.

        Returns
        -------
        dict
            ``{parameter: value}``; ``type(self)(**self.get_params())`` rebuilds the forecaster.
        """
        return {name: getattr(self, name) for name in self.param_names()}

    def clone(self) -> Forecaster:
        """An unfitted forecaster with the same settings.

        Returns
        -------
        Forecaster
            A new instance of the same class, built from :meth:`get_params` (no fitted state).
        """
        return type(self)(**self.get_params())

    def fit(self, cube: Cube) -> Forecaster:
        """Learn from a training cube (a no-op for most baselines).

        Parameters
        ----------
        cube : Cube
            The training window.

        Returns
        -------
        Forecaster
            ``self``.
        """
        target_values(cube, self.target)  # validates the target
        return self

    def predict(self, cube: Cube) -> np.ndarray:
        """Forecast the period after the cube's last period, per unit.

        Parameters
        ----------
        cube : Cube
            The history available at the origin (its last period is the origin).

        Returns
        -------
        numpy.ndarray
            ``(n_units,)``; NaN where no forecast can be made.
        """
        raise ModelError(f"{type(self).__name__} does not implement predict(cube)")

    def predict_interval(self, cube: Cube) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the 80% prediction interval (if supported).

        Parameters
        ----------
        cube : Cube
            The history available at the origin.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            ``(lower, upper)``, each ``(n_units,)``.

        Raises
        ------
        geo_crime.core.errors.ModelError
            When the forecaster has no intervals (``supports_intervals`` is False).
        """
        raise ModelError(f"{self.name} has no prediction intervals")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def recent_mean(values: np.ndarray, complete: np.ndarray, window: int | None) -> np.ndarray:
    """Mean of each unit's complete values over the last ``window`` periods (all if ``None``).

    Parameters
    ----------
    values : numpy.ndarray
        ``(n_units, n_periods)`` target values.
    complete : numpy.ndarray
        ``(n_units, n_periods)`` coverage mask; incomplete cells are left out of the mean.
    window : int or None
        Periods averaged, counted back from the last one; ``None`` for all.

    Returns
    -------
    numpy.ndarray
        ``(n_units,)``; NaN for a unit with no complete period in the window.
    """
    return mean_per_complete_period(values, complete, window)


#: Baselines :func:`rolling_baseline` computes at every origin at once.
ROLLING_BASELINES = ("last", "ma4", "ma8", "ma13", "hist_mean")


def rolling_baseline(name: str, values: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """A simple baseline's forecast made at every origin of a panel, in one pass.

    Column ``t`` is the forecast of period ``t + 1`` from periods ``<= t``: exactly what the
    baseline's :meth:`Forecaster.predict` gives on ``cube.select_periods(slice(0, t + 1))``
    (incomplete cells left out, NaN where no complete cell is in the window).

    Parameters
    ----------
    name : {"last", "ma<window>", "hist_mean"}
        The baseline.
    values : numpy.ndarray
        ``(n_units, n_periods)`` target values.
    complete : numpy.ndarray
        ``(n_units, n_periods)`` coverage mask.

    Returns
    -------
    numpy.ndarray
        ``(n_units, n_periods)`` forecasts.
    """
    values = np.asarray(values, dtype=float)
    complete = np.asarray(complete, dtype=bool)
    if name == "last":
        return np.where(complete, values, np.nan)
    if name == "hist_mean":
        window = None
    elif name.startswith("ma") and name[2:].isdigit() and int(name[2:]) >= 1:
        window = int(name[2:])
    else:
        raise ModelError(f"no rolling form of baseline {name!r}; use one of {ROLLING_BASELINES}")
    zero = np.zeros((values.shape[0], 1))
    total = np.concatenate([zero, np.cumsum(np.where(complete, values, 0.0), axis=1)], axis=1)
    count = np.concatenate([zero, np.cumsum(complete, axis=1)], axis=1)
    end = np.arange(1, values.shape[1] + 1)
    start = np.zeros_like(end) if window is None else np.maximum(end - window, 0)
    n = count[:, end] - count[:, start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (total[:, end] - total[:, start]) / np.maximum(n, 1), np.nan)


class LastPeriod(Forecaster):
    """The last period's value (NaN when that cell is incomplete)."""

    name = "last"

    def predict(self, cube: Cube) -> np.ndarray:
        y = target_values(cube, self.target)
        return np.where(cube.complete[:, -1], y[:, -1], np.nan)


class MovingAverage(Forecaster):
    """The mean of the last ``window`` complete periods.

    Parameters
    ----------
    window : int, default 4
        Periods averaged.
    target : str, default "severity"
        The measure forecast.

    Examples
    --------
    A unit with 1, 2, 3, 4, 5 and a 4-period window forecasts (2 + 3 + 4 + 5) / 4 = 3.5.
    """

    def __init__(self, window: int = 4, *, target: str = "severity") -> None:
        super().__init__(target=target)
        if window < 1:
            raise ModelError(f"window must be >= 1, got {window}")
        self.window = int(window)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"ma{self.window}"

    def predict(self, cube: Cube) -> np.ndarray:
        return recent_mean(target_values(cube, self.target), cube.complete, self.window)


class SeasonalNaive(Forecaster):
    """The same period one year earlier (NaN when the history is shorter or that cell incomplete).

    The lag is :func:`~geo_crime.forecast.panel.season_length`: 52 weeks, 12 months or 364
    days (so a daily forecast keeps the weekday).
    """

    name = "last_year"

    def predict(self, cube: Cube) -> np.ndarray:
        y = target_values(cube, self.target)
        n, T = y.shape
        back = T - season_length(cube.freq)  # index of "target period minus one year"
        if back < 0:
            return np.full(n, np.nan)
        return np.where(cube.complete[:, back], y[:, back], np.nan)


class HistoricalMean(Forecaster):
    """The unit's mean over all complete periods of its history."""

    name = "hist_mean"

    def predict(self, cube: Cube) -> np.ndarray:
        return recent_mean(target_values(cube, self.target), cube.complete, None)


class SpatialSmoothing(Forecaster):
    """Gaussian-weighted average of the unit's and its neighbours' recent means.

    Parameters
    ----------
    window : int, default 8
        Periods in each unit's recent mean.
    bandwidth : float, optional
        Gaussian bandwidth in metres (EPSG:3310 centroids). ``None``: chosen in :meth:`fit` from
        ``multiples`` x the median nearest-neighbour distance, by the mean absolute error on the
        last ``validation_periods`` periods of the training window.
    multiples : tuple of float, default (0.5, 0.75, 1.0, 1.5)
        Candidate bandwidths, in nearest-neighbour distances.
    validation_periods : int, default 4
        Periods used to choose the bandwidth.
    target : str, default "severity"
        The measure forecast.

    Notes
    -----
    Weights are ``exp(-d² / 2h²)`` for centroids within ``3h``, the unit itself included with
    weight one; units whose recent mean is NaN (no complete period) are left out of the average.
    """

    name = "spatial_smooth"

    def __init__(
        self,
        window: int = 8,
        *,
        bandwidth: float | None = None,
        multiples: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5),
        validation_periods: int = 4,
        target: str = "severity",
    ) -> None:
        super().__init__(target=target)
        self.window = int(window)
        self.bandwidth = bandwidth
        self.multiples = tuple(multiples)
        self.validation_periods = int(validation_periods)

    def _xy(self, cube: Cube) -> np.ndarray:
        # loads libpysal (heavy, about 0.7 s): only spatial models need it
        from geo_crime.stats.weights import projected_centroids

        return projected_centroids(cube.units)

    def _kernel(self, cube: Cube, h: float) -> Any:
        """The sparse Gaussian kernel of the cube's units (the last one is cached, privately)."""
        key = (hash(tuple(cube.unit_ids.tolist())), float(h))
        cache: dict[tuple[int, float], Any] = getattr(self, "_kernels", {})
        if key not in cache:
            xy = self._xy(cube)
            n = len(xy)
            if h <= 0 or n < 2:
                kernel = sp.identity(n, format="csr")
            else:
                tree = cKDTree(xy)
                dist = tree.sparse_distance_matrix(tree, 3 * h, output_type="coo_matrix")
                weights = np.exp(-0.5 * (dist.data / h) ** 2)
                kernel = sp.csr_matrix((weights, (dist.row, dist.col)), shape=(n, n))
                kernel.setdiag(1.0)
            cache = {key: kernel}
            self._kernels = cache
        return cache[key]

    def _smooth(self, cube: Cube, means: np.ndarray, h: float) -> np.ndarray:
        kernel = self._kernel(cube, h)
        ok = np.isfinite(means)
        num = kernel @ np.where(ok, means, 0.0)
        den = kernel @ ok.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan)

    def fit(self, cube: Cube) -> SpatialSmoothing:
        """Choose the bandwidth on the last periods of the training window (if not given).

        Parameters
        ----------
        cube : Cube
            The training window.

        Returns
        -------
        SpatialSmoothing
            ``self``, with ``bandwidth_`` (metres) set.
        """
        y = target_values(cube, self.target)
        if self.bandwidth is not None:
            self.bandwidth_ = float(self.bandwidth)
            return self
        # loads libpysal (heavy, about 0.7 s): only spatial models need it
        from geo_crime.stats.weights import nearest_neighbour_distances

        xy = self._xy(cube)
        if len(xy) < 2:
            self.bandwidth_ = 0.0
            return self
        nn = float(np.median(nearest_neighbour_distances(xy)))
        candidates = [m * nn for m in self.multiples]
        T = y.shape[1]
        targets = [t for t in range(max(1, T - self.validation_periods), T)]
        if not targets:
            self.bandwidth_ = candidates[len(candidates) // 2]
            return self
        errors = []
        for h in candidates:
            err, count = 0.0, 0
            for t in targets:
                pred = self._smooth(
                    cube, recent_mean(y[:, :t], cube.complete[:, :t], self.window), h
                )
                ok = cube.complete[:, t] & np.isfinite(pred)
                err += float(np.abs(pred[ok] - y[ok, t]).sum())
                count += int(ok.sum())
            errors.append(err / max(count, 1))
        self.bandwidth_ = candidates[int(np.argmin(errors))]
        return self

    def predict(self, cube: Cube) -> np.ndarray:
        if not hasattr(self, "bandwidth_"):
            raise ModelError("spatial_smooth is not fitted: call fit(cube) first")
        y = target_values(cube, self.target)
        means = recent_mean(y, cube.complete, self.window)
        return self._smooth(cube, means, self.bandwidth_)


class GradientBoosting(Forecaster):
    """Poisson gradient-boosted trees on the Keras model's features.

    Parameters
    ----------
    lags : int, default 8
        History length of the features (as for the Keras model).
    learning_rate : float, default 0.05
    max_iter : int, default 300
        Upper bound on boosting iterations; the number used is chosen on a later block.
    max_leaf_nodes : int, default 31
    min_samples_leaf : int, default 40
    l2_regularization : float, default 1.0
    validation_share : float, default 0.2
        Share of the training origins (the latest) used to choose the number of iterations.
    seed : int, default 0
        ``random_state`` of the trees.
    target : str, default "severity"
        The measure forecast.
    feature_options : dict, optional
        Extra :class:`~geo_crime.forecast.features.FeatureBuilder` options (``spatial``,
        ``calendar``, ``static``, ``weights_method``, ``knn``).
    """

    name = "gbm"

    def __init__(
        self,
        lags: int = 8,
        *,
        learning_rate: float = 0.05,
        max_iter: int = 300,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        validation_share: float = 0.2,
        seed: int = 0,
        target: str = "severity",
        feature_options: dict | None = None,
    ) -> None:
        super().__init__(target=target)
        self.lags = int(lags)
        self.learning_rate = learning_rate
        self.max_iter = int(max_iter)
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.validation_share = validation_share
        self.seed = seed
        self.feature_options = dict(feature_options or {})

    @property
    def required_history(self) -> int:
        return self.lags

    def _estimator(self, max_iter: int) -> Any:
        # heavy (about 0.6 s): only this model needs it
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            loss="poisson",
            learning_rate=self.learning_rate,
            max_iter=max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.seed,
        )

    def fit(self, cube: Cube) -> GradientBoosting:
        """Fit the features, choose the number of iterations on a later block, refit on all.

        Parameters
        ----------
        cube : Cube
            The training window.

        Returns
        -------
        GradientBoosting
            ``self``, with ``builder_``, ``n_iter_`` and ``estimator_`` set.
        """
        # heavy (about 0.5 s): only this model needs it
        from sklearn.metrics import mean_poisson_deviance

        self.builder_ = FeatureBuilder(target=self.target, lags=self.lags, **self.feature_options)
        self.builder_.fit(cube)
        rows = self.builder_.training_rows(cube)
        scale = self.builder_.target_scale_
        y = rows.y / scale
        fit_mask, val_mask = chronological_split(rows.origin, share=self.validation_share)
        n_iter = self.max_iter
        if val_mask.any() and fit_mask.sum() >= 2 * self.min_samples_leaf:
            est = self._estimator(self.max_iter).fit(rows.X[fit_mask], y[fit_mask])
            losses = [
                mean_poisson_deviance(y[val_mask], np.maximum(p, 1e-6))
                for p in est.staged_predict(rows.X[val_mask])
            ]
            n_iter = int(np.argmin(losses)) + 1
        self.n_iter_ = n_iter
        self.estimator_ = self._estimator(n_iter).fit(rows.X, y)
        return self

    def predict(self, cube: Cube) -> np.ndarray:
        if not hasattr(self, "estimator_"):
            raise ModelError("gbm is not fitted: call fit(cube) first")
        rows = self.builder_.transform(cube)
        pred = self.estimator_.predict(rows.X) * self.builder_.target_scale_
        return np.where(rows.valid, pred, np.nan)
