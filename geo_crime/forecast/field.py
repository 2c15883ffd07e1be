"""The field's hot-spot forecasts on a cube: space-time kernel density and prospective hot spots.

Two methods police analysts have used for twenty years, as forecasters of the common contract
(:class:`~geo_crime.forecast.baselines.Forecaster`): ``fit(cube)`` on the training window, then
``predict(cube)`` forecasts the period after the cube's last period from that cube alone, so the
backtest (:func:`geo_crime.forecast.evaluate.evaluate`) scores them on the same cells as every
other model. The self-exciting point process of Mohler et al. (2015) is in
:mod:`geo_crime.forecast.sepp`.

``kde`` (:class:`SpaceTimeKDE`)
    Chainey, Tompson & Uhlig (2008), "The utility of hotspot mapping for predicting spatial
    patterns of crime", *Security Journal* 21: a kernel density surface over past events, here
    with an exponential time decay. The risk of unit ``c`` at target period ``t`` is

    .. math:: r_c(t) = \\sum_{s<t} \\sum_j y_j(s)\\, K_h(d_{cj})\\, 2^{-(t-1-s)/\\tau}

    with ``y`` the target (severity by default), ``d`` the distance between unit centroids in
    metres (EPSG:3310, :data:`geo_crime.core.config.EQUAL_AREA_CRS`), ``K_h(d) = exp(-d²/2h²)`` a
    Gaussian kernel truncated at ``3h`` and ``τ`` the half-life in periods (the origin period has
    weight one). The bandwidth ``h`` and the half-life ``τ`` are chosen in :meth:`fit`, on the
    training cube only, by the lowest Poisson deviance of one-step forecasts of its last
    ``validation_periods`` periods over a small grid.
``prospective`` (:class:`ProspectiveHotSpot`)
    Bowers, Johnson & Pease (2004), "Prospective hot-spotting: the future of crime mapping?",
    *British Journal of Criminology* 44: every event within ``radius`` (400 m) and the last
    ``window`` periods (8 weeks) adds

    .. math:: \\frac{1}{1 + b_d} \\cdot \\frac{1}{1 + b_t}

    where ``b_d`` is the distance band (the centroid distance in cell widths, rounded: 0 for the
    unit itself, 1 for the first ring ...) and ``b_t`` the periods ago (0 for the origin period).
    On coarse cells the radius is widened to 1.5 cell widths so the first ring always counts.

Both give a **risk surface**, not a forecast of a quantity; it is turned into one by a single
factor per origin so that the forecasts of the units add up to the recent mean level: the sum of
their means over the last ``level_window`` complete periods (a mean, not a median, so the
forecasts can be scored against the mean-forecasting baselines by MAE and Poisson deviance).

Coverage. Incomplete cells (``cube.complete`` False) are never read: their values enter no sum,
and the risk is divided by the share of its space-time weight that fell on complete cells (the
edge correction of a kernel estimate, applied to unrecorded cells), so a unit next to a
reporting break is not read as quiet. A unit with no complete period in the history, or whose
whole neighbourhood in the window is unrecorded, gets NaN.

Cutoff. ``predict(cube)`` reads the periods of the cube it is given, which end at the origin; the
bandwidth search in ``fit`` only forecasts periods of the training cube from earlier ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from geo_crime.core.errors import ModelError
from geo_crime.cube.panel import Cube
from geo_crime.forecast.baselines import Forecaster, recent_mean
from geo_crime.forecast.panel import target_values

__all__ = [
    "CentroidForecaster",
    "ProspectiveHotSpot",
    "SpaceTimeKDE",
    "bowers_weights",
    "decay_weights",
    "distance_weights",
    "gaussian_kernel",
    "poisson_deviance",
    "recency_weights",
    "scale_to_level",
    "space_time_risk",
    "unit_distances",
    "unit_spacing",
]


# --- shared arithmetic ----------------------------------------------------------------------------


def unit_distances(xy: np.ndarray, cutoff: float) -> sp.coo_matrix:
    """Centroid distances of every pair of units within ``cutoff``, each unit paired with itself.

    Parameters
    ----------
    xy : numpy.ndarray
        ``(n, 2)`` centroids in metres.
    cutoff : float
        Largest distance kept.

    Returns
    -------
    scipy.sparse.coo_matrix
        ``(n, n)`` with the distance in ``data`` (zero on the diagonal, stored explicitly) for
        both orders of each pair within ``cutoff``.
    """
    n = len(xy)
    pairs = cKDTree(xy).query_pairs(float(cutoff), output_type="ndarray").reshape(-1, 2)
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.hypot(*(xy[i] - xy[j]).T)
    self_ = np.arange(n)
    rows = np.concatenate([i, j, self_])
    cols = np.concatenate([j, i, self_])
    data = np.concatenate([d, d, np.zeros(n)])
    return sp.coo_matrix((data, (rows, cols)), shape=(n, n))


def unit_spacing(xy: np.ndarray) -> float:
    """The median distance from a unit's centroid to its nearest neighbour's (the cell width).

    Parameters
    ----------
    xy : numpy.ndarray
        ``(n, 2)`` centroids in metres.

    Returns
    -------
    float
        Metres; 1.0 for fewer than two units.
    """
    # loads libpysal (heavy, about 0.7 s): only spatial models need it
    from geo_crime.stats.weights import nearest_neighbour_distances

    return float(np.median(nearest_neighbour_distances(xy))) if len(xy) >= 2 else 1.0


def space_time_risk(
    kernel: sp.spmatrix, values: np.ndarray, complete: np.ndarray, time_weights: np.ndarray
) -> np.ndarray:
    """Space-time weighted sum of past values over complete cells, corrected for unrecorded ones.

    Parameters
    ----------
    kernel : scipy.sparse matrix
        ``(n, n)`` spatial weights ``K[c, j]`` of unit ``j``'s events for unit ``c``.
    values : numpy.ndarray
        ``(n, T)`` target values of the history.
    complete : numpy.ndarray
        ``(n, T)`` coverage mask; incomplete cells are never read.
    time_weights : numpy.ndarray
        ``(T,)`` weight of each period of the history (zero outside a window).

    Returns
    -------
    numpy.ndarray
        ``(n,)``: ``sum_s sum_j K[c, j] w[s] y[j, s]`` over complete cells, divided by the share
        of ``sum_s sum_j K[c, j] w[s]`` that lies on complete cells; NaN for a unit with no
        complete period or no complete cell in its space-time window.
    """
    complete = np.asarray(complete, dtype=bool)
    w = np.asarray(time_weights, dtype=float)
    observed = np.where(complete, np.asarray(values, dtype=float), 0.0) @ w
    covered = complete.astype(float) @ w
    numerator = kernel @ observed
    mass_complete = kernel @ covered
    mass_all = np.asarray(kernel.sum(axis=1)).ravel() * w.sum()
    ok = complete.any(axis=1) & (mass_complete > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, numerator * mass_all / mass_complete, np.nan)


def scale_to_level(
    risk: np.ndarray, values: np.ndarray, complete: np.ndarray, window: int | None
) -> np.ndarray:
    """Risk times the one factor that makes the units' forecasts add up to their recent mean.

    Parameters
    ----------
    risk : numpy.ndarray
        ``(n,)`` risk (NaN: no forecast).
    values, complete : numpy.ndarray
        ``(n, T)`` history and its coverage mask.
    window : int or None
        Periods of each unit's recent mean (complete ones only); ``None`` for all.

    Returns
    -------
    numpy.ndarray
        ``risk * sum(mean) / sum(risk)``, both sums over the units with a risk and a recent mean;
        zero where the risk is zero everywhere.
    """
    level = recent_mean(values, complete, window)
    both = np.isfinite(risk) & np.isfinite(level)
    total = float(risk[both].sum())
    factor = float(level[both].sum()) / total if total > 0 else 0.0
    return risk * factor


def poisson_deviance(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean Poisson deviance, forecasts clipped to ``>= 1e-6`` as the backtest scores them.

    Parameters
    ----------
    actual, forecast : numpy.ndarray
        Values and forecasts of the same cells.

    Returns
    -------
    float
        NaN without cells.
    """
    # heavy (about 0.5 s): only the bandwidth search of the kernels needs it
    from sklearn.metrics import mean_poisson_deviance

    if len(actual) == 0:
        return float("nan")
    return float(mean_poisson_deviance(actual, np.maximum(forecast, 1e-6)))


class CentroidForecaster(Forecaster):
    """A forecaster that weighs units by centroid distance (EPSG:3310).

    Subclasses define :meth:`weights_for`, the sparse spatial weights of a setting;
    :meth:`unit_weights` caches them per unit set (the backtest predicts many origins on the
    same units), privately, so clones and ``get_params`` never see the cache.
    """

    def centroids(self, cube: Cube) -> np.ndarray:
        # loads libpysal (heavy, about 0.7 s): only spatial models need it
        from geo_crime.stats.weights import projected_centroids

        key = hash(tuple(cube.unit_ids.tolist()))
        cached = getattr(self, "_xy_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, projected_centroids(cube.units))
            self._xy_cache = cached
        return cached[1]

    def unit_weights(self, cube: Cube, setting: Any) -> sp.csr_matrix:
        """The spatial weight matrix of the cube's units under a setting (last few cached)."""
        key = (hash(tuple(cube.unit_ids.tolist())), setting)
        cache: dict[Any, sp.csr_matrix] = getattr(self, "_kernel_cache", {})
        if key not in cache:
            if len(cache) > 16:
                cache = {}
            cache[key] = self.weights_for(self.centroids(cube), setting)
            self._kernel_cache = cache
        return cache[key]

    def weights_for(self, xy: np.ndarray, setting: Any) -> sp.csr_matrix:
        """The ``(n, n)`` sparse spatial weights of centroids ``xy`` (metres) under a setting."""
        raise NotImplementedError(f"{type(self).__name__} defines no spatial weights")


# --- kernel density -------------------------------------------------------------------------------


def distance_weights(
    distances: sp.coo_matrix, cutoff: float, weight: Callable[[np.ndarray], np.ndarray]
) -> sp.csr_matrix:
    """A weight of the distance for the pairs within ``cutoff`` of a distance matrix.

    Parameters
    ----------
    distances : scipy.sparse.coo_matrix
        From :func:`unit_distances` with a cutoff of at least ``cutoff``.
    cutoff : float
        Largest distance kept, in metres.
    weight : callable
        Maps an array of distances to their weights.

    Returns
    -------
    scipy.sparse.csr_matrix
    """
    keep = distances.data <= cutoff
    return sp.csr_matrix(
        (weight(distances.data[keep]), (distances.row[keep], distances.col[keep])),
        shape=distances.shape,
    )


def gaussian_kernel(distances: sp.coo_matrix, bandwidth: float) -> sp.csr_matrix:
    """``exp(-d² / 2h²)`` for the pairs within ``3h`` of a distance matrix (diagonal: one).

    Parameters
    ----------
    distances : scipy.sparse.coo_matrix
        From :func:`unit_distances` with a cutoff of at least ``3 * bandwidth``.
    bandwidth : float
        ``h`` in metres.

    Returns
    -------
    scipy.sparse.csr_matrix
    """
    return distance_weights(
        distances, 3.0 * bandwidth, lambda d: np.exp(-0.5 * (d / bandwidth) ** 2)
    )


def decay_weights(n_periods: int, half_life: float) -> np.ndarray:
    """Weight ``2^(-(T-1-s)/τ)`` of each history period ``s``: one for the last (the origin).

    Parameters
    ----------
    n_periods : int
        ``T``, periods of the history.
    half_life : float
        ``τ`` in periods; ``inf`` weighs every period alike.

    Returns
    -------
    numpy.ndarray
        ``(T,)``.
    """
    age = np.arange(n_periods - 1, -1, -1, dtype=float)
    return np.exp2(-age / half_life) if np.isfinite(half_life) else np.ones(n_periods)


class SpaceTimeKDE(CentroidForecaster):
    """Space-time kernel density of past events (Chainey et al. 2008), scaled to a mean level.

    Parameters
    ----------
    bandwidth : float, optional
        Gaussian bandwidth ``h`` in metres. ``None``: chosen in :meth:`fit` among ``multiples``
        of the median nearest-neighbour distance of the unit centroids.
    half_life : float, optional
        Half-life ``τ`` of the time decay, in periods (``inf``: no decay). ``None``: chosen in
        :meth:`fit` among ``half_lives``.
    multiples : tuple of float, default (0.5, 1, 1.5, 2, 3)
        Candidate bandwidths, in nearest-neighbour distances.
    half_lives : tuple of float, default (1, 2, 4, 8, 16, 52)
        Candidate half-lives, in periods.
    validation_periods : int, default 4
        The last periods of the training cube forecast (one step ahead, each from the periods
        before it) to choose the bandwidth and half-life.
    level_window : int, default 8
        Periods of the recent mean level the forecasts add up to.
    target : str, default "severity"
        The measure forecast.

    Notes
    -----
    See the module docstring for the formula. After :meth:`fit`, ``bandwidth_`` (metres) and
    ``half_life_`` (periods) hold the setting used and ``validation_deviance_`` maps each
    candidate ``(bandwidth, half_life)`` to its mean Poisson deviance (empty when nothing was
    chosen).
    """

    name = "kde"

    def __init__(
        self,
        bandwidth: float | None = None,
        *,
        half_life: float | None = None,
        multiples: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0),
        half_lives: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 52.0),
        validation_periods: int = 4,
        level_window: int = 8,
        target: str = "severity",
    ) -> None:
        super().__init__(target=target)
        self.bandwidth = bandwidth
        self.half_life = half_life
        self.multiples = tuple(multiples)
        self.half_lives = tuple(half_lives)
        self.validation_periods = int(validation_periods)
        self.level_window = int(level_window)

    def weights_for(self, xy: np.ndarray, setting: Any) -> sp.csr_matrix:
        return gaussian_kernel(unit_distances(xy, 3.0 * float(setting)), float(setting))

    def _forecast(
        self, cube: Cube, y: np.ndarray, complete: np.ndarray, h: float, tau: float
    ) -> np.ndarray:
        weights = decay_weights(y.shape[1], tau)
        risk = space_time_risk(self.unit_weights(cube, h), y, complete, weights)
        return scale_to_level(risk, y, complete, self.level_window)

    def fit(self, cube: Cube) -> SpaceTimeKDE:
        """Choose the bandwidth and half-life on the last periods of the training cube.

        Parameters
        ----------
        cube : Cube
            The training window (its periods only are read).

        Returns
        -------
        SpaceTimeKDE
            ``self``, with ``bandwidth_``, ``half_life_`` and ``validation_deviance_``.
        """
        y = target_values(cube, self.target)
        complete = np.asarray(cube.complete, dtype=bool)
        spacing = unit_spacing(self.centroids(cube))
        hs = [m * spacing for m in self.multiples]
        if self.bandwidth is not None:
            hs = [float(self.bandwidth)]
        taus = [float(t) for t in self.half_lives]
        if self.half_life is not None:
            taus = [float(self.half_life)]
        T = y.shape[1]
        targets = list(range(max(1, T - self.validation_periods), T))
        scores: dict[tuple[float, float], float] = {}
        if targets and len(hs) * len(taus) > 1:
            for h in hs:
                for tau in taus:
                    actual, forecast = [], []
                    for t in targets:
                        pred = self._forecast(cube, y[:, :t], complete[:, :t], h, tau)
                        ok = complete[:, t] & np.isfinite(pred)
                        actual.append(y[ok, t])
                        forecast.append(pred[ok])
                    scores[(h, tau)] = poisson_deviance(
                        np.concatenate(actual), np.concatenate(forecast)
                    )
        finite = {k: v for k, v in scores.items() if np.isfinite(v)}
        if finite:
            self.bandwidth_, self.half_life_ = min(finite, key=finite.get)
        else:
            self.bandwidth_, self.half_life_ = hs[len(hs) // 2], taus[len(taus) // 2]
        self.validation_deviance_ = scores
        return self

    def predict(self, cube: Cube) -> np.ndarray:
        if not hasattr(self, "bandwidth_"):
            raise ModelError("kde is not fitted: call fit(cube) first")
        y = target_values(cube, self.target)
        complete = np.asarray(cube.complete, dtype=bool)
        return self._forecast(cube, y, complete, self.bandwidth_, self.half_life_)


# --- prospective hot spots ------------------------------------------------------------------------


def bowers_weights(distances: sp.coo_matrix, band: float, radius: float) -> sp.csr_matrix:
    """``1 / (1 + distance band)`` for the pairs within ``radius`` (the unit itself: one).

    Parameters
    ----------
    distances : scipy.sparse.coo_matrix
        From :func:`unit_distances` with a cutoff of at least ``radius``.
    band : float
        Band width in metres: the band of distance ``d`` is ``round(d / band)``.
    radius : float
        Largest distance in metres.

    Returns
    -------
    scipy.sparse.csr_matrix
    """
    return distance_weights(distances, radius, lambda d: 1.0 / (1.0 + np.rint(d / band)))


def recency_weights(n_periods: int, window: int) -> np.ndarray:
    """``1 / (1 + periods ago)`` over the last ``window`` periods of a history (zero before).

    Parameters
    ----------
    n_periods : int
        Periods of the history; the last is the origin (0 periods ago, weight one).
    window : int
        Periods counted.

    Returns
    -------
    numpy.ndarray
        ``(n_periods,)``.
    """
    ago = np.arange(n_periods - 1, -1, -1, dtype=float)
    return np.where(ago < window, 1.0 / (1.0 + ago), 0.0)


class ProspectiveHotSpot(CentroidForecaster):
    """Prospective hot spots (Bowers, Johnson & Pease 2004), scaled to a mean level.

    Parameters
    ----------
    radius : float, default 400
        Largest centroid distance in metres (widened to 1.5 band widths on coarse cells).
    band : float, optional
        Width of a distance band in metres; ``None``: the median nearest-neighbour distance of
        the unit centroids (one cell width).
    window : int, default 8
        Periods counted back from the origin (8 weeks on a weekly cube, as published).
    level_window : int, default 8
        Periods of the recent mean level the forecasts add up to.
    target : str, default "severity"
        The measure forecast.

    Notes
    -----
    :meth:`fit` only reads the unit geometry: ``band_`` and ``radius_`` hold the metres used.
    """

    name = "prospective"

    def __init__(
        self,
        radius: float = 400.0,
        *,
        band: float | None = None,
        window: int = 8,
        level_window: int = 8,
        target: str = "severity",
    ) -> None:
        super().__init__(target=target)
        if window < 1:
            raise ModelError(f"window must be >= 1, got {window}")
        self.radius = float(radius)
        self.band = band
        self.window = int(window)
        self.level_window = int(level_window)

    def weights_for(self, xy: np.ndarray, setting: Any) -> sp.csr_matrix:
        band, radius = setting
        return bowers_weights(unit_distances(xy, radius), band, radius)

    def fit(self, cube: Cube) -> ProspectiveHotSpot:
        """Set ``band_`` and ``radius_`` (metres) from the training cube's units; ``self``.

        Nothing else is learnt: the weights are the published ones.
        """
        target_values(cube, self.target)
        band = float(self.band) if self.band is not None else unit_spacing(self.centroids(cube))
        self.band_ = band
        self.radius_ = max(self.radius, 1.5 * band)
        return self

    def predict(self, cube: Cube) -> np.ndarray:
        if not hasattr(self, "band_"):
            raise ModelError("prospective is not fitted: call fit(cube) first")
        y = target_values(cube, self.target)
        complete = np.asarray(cube.complete, dtype=bool)
        kernel = self.unit_weights(cube, (self.band_, self.radius_))
        risk = space_time_risk(kernel, y, complete, recency_weights(y.shape[1], self.window))
        return scale_to_level(risk, y, complete, self.level_window)
