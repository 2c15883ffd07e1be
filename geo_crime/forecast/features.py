"""Features for pooled next-period forecasts, built without looking ahead.

Every forecaster in :mod:`geo_crime.forecast` answers the same question: given a unit's history up
to and including period ``t`` (the *origin*), what will its target measure (severity sum, incident
count or harm sum) be in period ``t + 1``? The Keras model and the gradient-boosted trees answer it
with one model *pooled* over all units, from one row of features per (unit, origin):

``y_lag{k}``
    The unit's target ``k`` periods before the origin (``k = L-1 .. 0``), as ``log1p(y / s)``
    where ``s`` is the training mean of the target (so the features of a severity and of a count
    panel live on the same scale).
``w_lag{k}``
    The same for the **spatial lag**: the mean of the unit's neighbours (row-standardised weights
    from :mod:`geo_crime.stats.weights`), taken over the neighbours whose cell is complete in that
    period; a unit whose neighbours are all incomplete (or an island) gets its own value.
``log_hist_mean``, ``log_w_hist_mean``
    The unit's long-run mean (over its complete periods up to the origin: expanding, so computed on
    training data for training rows, and never including the row's own target or anything later)
    and the spatial lag of those means, as ``log(m / s + eps)``.
calendar
    Of the *target* period: season of the year as sin/cos of the day of year (weekly and daily
    panels) or of the month (monthly panels); for daily panels also the day of the week.
static
    ``log_population`` when the units carry a ``population`` column, and a one-hot of the LAPD
    division when the units carry its number in ``area``.

Targets, periods, coverage eligibility and unit areas come from :mod:`geo_crime.forecast.panel`
and are re-exported here.

The ``log_hist_mean`` value is also returned on its own as the model's *base* (see
:mod:`geo_crime.forecast.model`: the network learns a multiplicative correction of the
historical mean).

Coverage. A row is **eligible** (for training or scoring) only when the target cell is complete and
the unit's last ``L`` periods are all complete: incomplete periods are *restricted*, not imputed,
so a reporting break is never read as a crime drop, neither as history nor as a target.

No look-ahead. Features at origin ``t`` read only periods ``<= t``, and the scaling statistics
(means and standard deviations of each feature, the target scale ``s``, the division categories)
come from the training cube given to :meth:`FeatureBuilder.fit`. The backtest additionally slices
the cube at each origin, so the future is not even in memory (see
:mod:`geo_crime.forecast.evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.lib.stride_tricks import sliding_window_view

from geo_crime.core.errors import DataError, ModelError
from geo_crime.cube.panel import Cube
from geo_crime.forecast.panel import (
    TARGETS,
    eligible_cells,
    history_ok,
    target_periods,
    target_values,
)

__all__ = [
    "FeatureBuilder",
    "FeatureMatrix",
    "calendar_features",
    "expanding_mean",
    "spatial_lag",
    "spatial_matrix",
]

#: Added to scaled means before the log, so a unit never seen with crime gets a finite base.
BASE_EPS = 0.05


def calendar_features(stamps: pd.DatetimeIndex, freq: str) -> tuple[np.ndarray, list[str]]:
    """Cyclical calendar features of period starts.

    Parameters
    ----------
    stamps : pandas.DatetimeIndex
        Period starts (of the target periods).
    freq : {"D", "W", "M"}
        Period length.

    Returns
    -------
    (numpy.ndarray, list of str)
        ``(len(stamps), k)`` values and their names: ``season_sin/cos`` (day of year, or month for
        monthly panels) and, for daily panels, ``dow_sin/cos``.
    """
    stamps = pd.DatetimeIndex(stamps)
    if freq == "M":
        angle = 2 * np.pi * (stamps.month.to_numpy() - 1) / 12.0
    else:
        # centre of the period, so a week's season is the season of its middle day
        centre = stamps + (pd.Timedelta(days=3) if freq == "W" else pd.Timedelta(0))
        angle = 2 * np.pi * (centre.dayofyear.to_numpy() - 1) / 365.25
    cols = [np.sin(angle), np.cos(angle)]
    names = ["season_sin", "season_cos"]
    if freq == "D":
        dow = 2 * np.pi * stamps.dayofweek.to_numpy() / 7.0
        cols += [np.sin(dow), np.cos(dow)]
        names += ["dow_sin", "dow_cos"]
    return np.column_stack(cols).astype(float), names


def expanding_mean(values: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """Mean of each unit's complete periods up to and including each period (NaN before any).

    Parameters
    ----------
    values : numpy.ndarray
        ``(n_units, n_periods)`` target values.
    complete : numpy.ndarray
        ``(n_units, n_periods)`` coverage mask.

    Returns
    -------
    numpy.ndarray
        ``(n_units, n_periods)`` expanding means.
    """
    c = np.asarray(complete, dtype=bool)
    total = np.cumsum(np.where(c, values, 0.0), axis=1)
    count = np.cumsum(c, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def spatial_matrix(units: gpd.GeoDataFrame, *, method: str = "auto", k: int = 6) -> sp.csr_array:
    """Row-standardised spatial weights of the units as a sparse ``(n, n)`` matrix.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        The cube's units.
    method : str, default "auto"
        Passed to :func:`geo_crime.stats.weights.build_weights` (``"auto"``: H3 rings for H3 units,
        queen contiguity for polygons). Units without polygon geometry (e.g. reporting districts
        keyed by ``rpt_dist`` with a centroid point) use ``k`` nearest neighbours.
    k : int, default 6
        Neighbours for the k-nearest fallback.

    Returns
    -------
    scipy.sparse.csr_array
        Zero diagonal; island rows are all zero.
    """
    # loads libpysal (heavy, about 0.7 s): only spatial features need it
    from geo_crime.stats.weights import build_weights

    n = len(units)
    if n < 2:
        return sp.csr_array((n, n))
    geom_types = set(units.geometry.geom_type.dropna().unique())
    polygons = geom_types <= {"Polygon", "MultiPolygon"} and bool(geom_types)
    is_h3 = "unit_type" in units and bool((units["unit_type"] == "h3").all())
    if method == "auto" and not polygons and not is_h3:
        method = "knn"
    kwargs: dict[str, Any] = {"method": method}
    if method == "knn":
        kwargs["k"] = min(k, n - 1)
    try:
        weights = build_weights(units, **kwargs)
    except Exception as exc:  # e.g. invalid polygons for contiguity: fall back to knn
        if method == "knn":
            raise
        weights = build_weights(units, method="knn", k=min(k, n - 1))
        del exc
    matrix = sp.csr_array(weights.row_standardised().sparse, dtype=float)
    matrix.setdiag(0.0)
    matrix.eliminate_zeros()
    return matrix


def spatial_lag(matrix: sp.csr_array, values: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """Weighted mean of each unit's complete neighbours, per period.

    Incomplete neighbour cells are left out and the weights renormalised over the rest; a unit
    with no complete neighbour (or no neighbour at all) takes its own value.

    Parameters
    ----------
    matrix : scipy.sparse.csr_array
        Spatial weights (:func:`spatial_matrix`).
    values : numpy.ndarray
        ``(n_units, n_periods)`` values.
    complete : numpy.ndarray
        ``(n_units, n_periods)`` coverage mask.

    Returns
    -------
    numpy.ndarray
        ``(n_units, n_periods)`` spatial lag.
    """
    c = np.asarray(complete, dtype=float)
    num = matrix @ (np.nan_to_num(values) * c)
    den = matrix @ c
    with np.errstate(invalid="ignore", divide="ignore"):
        lag = num / den
    return np.where(den > 0, lag, values)


@dataclass
class FeatureMatrix:
    """Model-ready rows: one per (unit, origin).

    Attributes
    ----------
    X : numpy.ndarray
        ``(rows, p)`` standardised features (float32).
    base : numpy.ndarray
        ``(rows,)`` log of the scaled historical mean (the model's base rate).
    unit, origin : numpy.ndarray
        Row's unit index and origin period index in the cube it was built from.
    y : numpy.ndarray
        Target at ``origin + 1`` in the measure's own units (NaN beyond the cube).
    valid : numpy.ndarray
        The unit's history is complete (rows with False have meaningless features).
    names : list of str
        Feature names.
    """

    X: np.ndarray
    base: np.ndarray
    unit: np.ndarray
    origin: np.ndarray
    y: np.ndarray
    valid: np.ndarray
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, keep: np.ndarray) -> FeatureMatrix:
        """Rows selected by a boolean mask or indices."""
        return FeatureMatrix(
            X=self.X[keep],
            base=self.base[keep],
            unit=self.unit[keep],
            origin=self.origin[keep],
            y=self.y[keep],
            valid=self.valid[keep],
            names=self.names,
        )


class FeatureBuilder:
    """Build the pooled feature rows of a cube (see the module docstring).

    Parameters
    ----------
    target : {"severity", "count", "harm"}, default "severity"
        The measure forecast.
    lags : int, default 8
        ``L``: periods of history per row (the unit's series and its spatial lag).
    spatial : bool, default True
        Include the spatial-lag features.
    calendar : bool, default True
        Include calendar features of the target period.
    static : bool, default True
        Include log population and the division one-hot when the units carry them.
    weights_method : str, default "auto"
        Spatial weights method (see :func:`spatial_matrix`).
    knn : int, default 6
        Neighbours for point units.

    Examples
    --------
    Nine point units on a grid, 30 weeks of Poisson counts (severity 35 per incident):

    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> from geo_crime.cube.panel import Cube
    >>> counts = np.random.default_rng(0).poisson(3.0, size=(9, 30))
    >>> units = gpd.GeoDataFrame(
    ...     {"unit_id": [f"u{i}" for i in range(9)]},
    ...     geometry=[Point(-118.4 + 0.01 * (i % 3), 34.0 + 0.01 * (i // 3)) for i in range(9)],
    ...     crs="EPSG:4326",
    ... )
    >>> cube = Cube(
    ...     units=units,
    ...     periods=pd.date_range("2021-01-04", periods=30, freq="7D"),
    ...     freq="W",
    ...     counts=counts,
    ...     severity=counts * 35.0,
    ...     harm=counts * 105.0,
    ... )
    >>> builder = FeatureBuilder(lags=4).fit(cube)
    >>> rows = builder.training_rows(cube)
    >>> rows.X.shape[0] == len(rows.y) == 9 * (30 - 4)
    True
    """

    def __init__(
        self,
        *,
        target: str = "severity",
        lags: int = 8,
        spatial: bool = True,
        calendar: bool = True,
        static: bool = True,
        weights_method: str = "auto",
        knn: int = 6,
    ) -> None:
        if target not in TARGETS:
            raise ModelError(f"unknown forecast target {target!r}; use one of {TARGETS}")
        if lags < 1:
            raise ModelError(f"lags must be >= 1, got {lags}")
        self.target = target
        self.lags = int(lags)
        self.spatial = spatial
        self.calendar = calendar
        self.static = static
        self.weights_method = weights_method
        self.knn = knn
        self.fitted_ = False
        self._matrix_cache: dict[int, sp.csr_array] = {}

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, cube: Cube) -> FeatureBuilder:
        """Learn the scaling statistics from the training cube's eligible rows.

        Parameters
        ----------
        cube : Cube
            The training window (only its periods are read).

        Returns
        -------
        FeatureBuilder
            ``self``.
        """
        y = target_values(cube, self.target)
        c = np.asarray(cube.complete, dtype=bool)
        if not c.any():
            raise DataError("the training cube has no complete cell")
        scale = float(y[c].mean())
        self.target_scale_ = scale if scale > 0 else 1.0
        self.freq_ = cube.freq
        self.divisions_: list[int] = []
        self.use_population_ = False
        if self.static:
            if "area" in cube.units:
                areas = pd.to_numeric(cube.units["area"], errors="coerce")
                self.divisions_ = sorted(int(a) for a in areas.dropna().unique())
                if len(self.divisions_) < 2:
                    self.divisions_ = []
            if "population" in cube.units:
                pop = pd.to_numeric(cube.units["population"], errors="coerce").to_numpy(float)
                self.use_population_ = bool(np.isfinite(pop).any())
                self.population_fill_ = float(np.nanmedian(pop)) if self.use_population_ else 0.0
        self.mean_ = None
        self.std_ = None
        raw = self._raw(cube, np.arange(cube.shape[1] - 1))
        keep = eligible_cells(c, self.lags)[:, :-1].T.ravel()  # origin-major like _raw
        if not keep.any():
            raise DataError(
                f"no training row: no unit has {self.lags} complete periods followed by a complete "
                "target period"
            )
        cont = raw["X"][keep][:, : self.n_continuous_]
        self.mean_ = cont.mean(axis=0)
        std = cont.std(axis=0)
        self.std_ = np.where(std > 1e-8, std, 1.0)
        self.names_ = raw["names"]
        self.fitted_ = True
        return self

    # --- transforming ----------------------------------------------------------------------

    def matrix(self, cube: Cube) -> sp.csr_array:
        """Spatial weights of the cube's units (cached per unit set)."""
        key = hash(tuple(cube.unit_ids.tolist()))
        if key not in self._matrix_cache:
            self._matrix_cache = {
                key: spatial_matrix(cube.units, method=self.weights_method, k=self.knn)
            }
        return self._matrix_cache[key]

    def _raw(self, cube: Cube, origins: np.ndarray) -> dict[str, Any]:
        """Unscaled features for every unit at each origin, origin-major rows."""
        L = self.lags
        s = self.target_scale_
        y = target_values(cube, self.target)
        c = np.asarray(cube.complete, dtype=bool)
        n, T = y.shape
        origins = np.asarray(origins, dtype=int)
        if origins.size and (origins.min() < 0 or origins.max() >= T):
            raise DataError("origin outside the cube")
        pad = np.zeros((n, L - 1))
        ypad = np.concatenate([pad, np.where(c, y, 0.0)], axis=1)
        win = sliding_window_view(ypad, L, axis=1)[:, origins, :]  # (n, o, L) ends at origin
        blocks = [np.log1p(np.maximum(win, 0.0) / s)]
        names = [f"y_lag{k}" for k in range(L - 1, -1, -1)]
        hist = expanding_mean(y, c)[:, origins]  # (n, o)
        if self.spatial:
            matrix = self.matrix(cube)
            lag = spatial_lag(matrix, np.where(c, y, 0.0), c)
            lpad = np.concatenate([pad, lag], axis=1)
            wwin = sliding_window_view(lpad, L, axis=1)[:, origins, :]
            blocks.append(np.log1p(np.maximum(wwin, 0.0) / s))
            names += [f"w_lag{k}" for k in range(L - 1, -1, -1)]
            whist = spatial_lag(matrix, np.nan_to_num(hist), np.isfinite(hist))
        base = np.log(np.nan_to_num(hist, nan=0.0) / s + BASE_EPS)
        cols = [base[..., None]]
        names.append("log_hist_mean")
        if self.spatial:
            cols.append(np.log(np.nan_to_num(whist, nan=0.0) / s + BASE_EPS)[..., None])
            names.append("log_w_hist_mean")
        if self.calendar:
            stamps = target_periods(cube.periods[origins], cube.freq)
            cal, cal_names = calendar_features(stamps, cube.freq)
            cols.append(np.broadcast_to(cal[None, :, :], (n, len(origins), cal.shape[1])))
            names += cal_names
        if self.static and self.use_population_:
            pop = pd.to_numeric(cube.units.get("population"), errors="coerce")
            pop = np.asarray(pop, dtype=float) if pop is not None else np.full(n, np.nan)
            pop = np.where(np.isfinite(pop), pop, self.population_fill_)
            cols.append(np.broadcast_to(np.log1p(pop)[:, None, None], (n, len(origins), 1)))
            names.append("log_population")
        self.n_continuous_ = sum(b.shape[-1] for b in blocks) + sum(x.shape[-1] for x in cols)
        if self.static and self.divisions_:
            area = pd.to_numeric(cube.units.get("area"), errors="coerce")
            area = np.asarray(area, dtype=float) if area is not None else np.full(n, np.nan)
            onehot = (area[:, None] == np.asarray(self.divisions_, dtype=float)[None, :]).astype(
                float
            )
            cols.append(np.broadcast_to(onehot[:, None, :], (n, len(origins), onehot.shape[1])))
            names += [f"division_{a}" for a in self.divisions_]
        full = np.concatenate(blocks + [np.asarray(x, dtype=float) for x in cols], axis=2)
        # origin-major: row = o * n + i
        X = full.transpose(1, 0, 2).reshape(len(origins) * n, -1)
        target = np.full((n, len(origins)), np.nan)
        inside = origins + 1 < T
        target[:, inside] = y[:, origins[inside] + 1]
        valid = history_ok(c, L)[:, origins]
        return {
            "X": X,
            "base": base.T.ravel(),
            "unit": np.tile(np.arange(n), len(origins)),
            "origin": np.repeat(origins, n),
            "y": target.T.ravel(),
            "valid": valid.T.ravel(),
            "names": names,
        }

    def transform(self, cube: Cube, origins: np.ndarray | None = None) -> FeatureMatrix:
        """Feature rows for every unit at each origin (default: the last period).

        Parameters
        ----------
        cube : Cube
            History up to (at least) the origins; only periods ``<= origin`` enter a row.
        origins : array of int, optional
            Origin period indices in ``cube``.

        Returns
        -------
        FeatureMatrix
            Origin-major rows (all units of the first origin, then of the next, ...).
        """
        self._check_fitted()
        if cube.freq != self.freq_:
            raise ModelError(f"the model was fit on freq '{self.freq_}', the cube is '{cube.freq}'")
        if origins is None:
            origins = np.array([cube.shape[1] - 1])
        raw = self._raw(cube, np.asarray(origins, dtype=int))
        X = raw["X"].copy()
        k = self.n_continuous_
        X[:, :k] = (X[:, :k] - self.mean_) / self.std_
        return FeatureMatrix(
            X=X.astype(np.float32),
            base=raw["base"].astype(np.float32),
            unit=raw["unit"],
            origin=raw["origin"],
            y=raw["y"],
            valid=raw["valid"],
            names=raw["names"],
        )

    def training_rows(self, cube: Cube) -> FeatureMatrix:
        """The eligible rows of a training cube (targets inside it, complete history and target).

        Parameters
        ----------
        cube : Cube
            The training window (at least two periods).

        Returns
        -------
        FeatureMatrix
        """
        T = cube.shape[1]
        if T < 2:
            raise DataError("a training cube needs at least two periods")
        rows = self.transform(cube, np.arange(T - 1))
        keep = eligible_cells(cube.complete, self.lags)[:, :-1].T.ravel()
        return rows.subset(keep)

    # --- persistence -------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise ModelError("the feature builder is not fitted: call fit(cube) first")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (settings and fitted statistics)."""
        self._check_fitted()
        return {
            "target": self.target,
            "lags": self.lags,
            "spatial": self.spatial,
            "calendar": self.calendar,
            "static": self.static,
            "weights_method": self.weights_method,
            "knn": self.knn,
            "freq": self.freq_,
            "target_scale": self.target_scale_,
            "divisions": self.divisions_,
            "use_population": self.use_population_,
            "population_fill": getattr(self, "population_fill_", 0.0),
            "n_continuous": self.n_continuous_,
            "mean": self.mean_.tolist(),
            "std": self.std_.tolist(),
            "names": self.names_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> FeatureBuilder:
        """Rebuild a fitted builder from :meth:`to_dict` output.

        Parameters
        ----------
        state : dict
            As written by :meth:`to_dict`.

        Returns
        -------
        FeatureBuilder
            Fitted.
        """
        builder = cls(
            target=state["target"],
            lags=state["lags"],
            spatial=state["spatial"],
            calendar=state["calendar"],
            static=state["static"],
            weights_method=state["weights_method"],
            knn=state["knn"],
        )
        builder.freq_ = state["freq"]
        builder.target_scale_ = float(state["target_scale"])
        builder.divisions_ = [int(a) for a in state["divisions"]]
        builder.use_population_ = bool(state["use_population"])
        builder.population_fill_ = float(state["population_fill"])
        builder.n_continuous_ = int(state["n_continuous"])
        builder.mean_ = np.asarray(state["mean"], dtype=float)
        builder.std_ = np.asarray(state["std"], dtype=float)
        builder.names_ = list(state["names"])
        builder.fitted_ = True
        return builder
