"""Hot spots: global and local spatial autocorrelation of a value over spatial units.

A *hot spot* is a place where high values (crime counts, severity sums) cluster: the unit and its
neighbours are, together, higher than chance would put them. This module answers three questions
about one variable ``y`` over ``units`` (see :mod:`geo_crime.weights` for who neighbours whom):

1. **Is there clustering at all?** Global Moran's I (:func:`global_moran`, via ``esda.Moran``).
   ``I > E[I] = -1/(n-1)`` means similar values sit together. It comes with the analytical
   z-score under normality (``z_norm``, ``p_norm``, two-sided), the pseudo p-value from random
   permutations (``p_sim``) and the Moran scatterplot data (standardised ``y`` against its spatial
   lag; the slope of that cloud is I).
2. **Where?** Local Moran's I / LISA (:func:`local_moran`, via ``esda.Moran_Local``) labels each
   unit High-High, Low-High, Low-Low or High-Low (esda codes 1, 2, 3, 4) with a
   conditional-permutation pseudo p-value, and Getis-Ord Gi* (:func:`getis_ord_gi_star`, via
   ``esda.G_Local(star=True)`` on binary weights that include the unit itself) gives a z-score per
   unit and the ArcGIS-style confidence bins -3..+3.
3. **At what scale?** Incremental spatial autocorrelation (:func:`incremental_moran`) runs global
   Moran's I over growing distance bands and returns the first peak of its z-score, the distance
   ArcGIS's *Optimized Hot Spot Analysis* uses as the neighbourhood.

Pseudo p-values and the ``alternative``
---------------------------------------
With ``R`` permutations and ``M`` simulated statistics at least as extreme as the observed one,
the pseudo p-value is ``(M + 1) / (R + 1)`` (so the smallest possible value with 999 permutations
is 0.001). esda 2.9's ``Moran_Local`` and ``G_Local`` take no ``alternative``: their ``p_sim`` is
the *directed* (folded) one-sided value, ``M`` counted in whichever tail the observation lies in,
which is about half a two-sided p-value. This module keeps that value as ``p_directed`` and
computes its own from esda's kept simulations:

* ``"greater"``: ``M = #{sim >= observed}``;
* ``"lesser"``: ``M = #{sim <= observed}``;
* ``"two-sided"`` (default): ``min(1, 2 * min(p_greater, p_lesser))``, the usual doubling of the
  smaller one-sided pseudo p-value.

Analytical Gi* p-values are from the standard normal: two-sided ``2 * sf(|z|)``, ``"greater"``
``sf(z)``, ``"lesser"`` ``cdf(z)``.

Multiple testing
----------------
Local statistics test every unit at once. ``fdr=True`` applies the Benjamini-Hochberg false
discovery rate procedure (:func:`benjamini_hochberg`). For the Gi* bins it is applied at each
confidence level, as ArcGIS's FDR option does: a unit is in bin +/-3 if BH rejects it at 0.01,
+/-2 at 0.05, +/-1 at 0.10.

Conventions
-----------
* Fewer than :data:`MIN_UNITS` (30) units raise :class:`~geo_crime.errors.TooFewUnitsError`
  (ArcGIS's minimum for these statistics).
* Every function that draws random permutations takes ``seed`` and gives the same answer for the
  same seed. esda draws from NumPy's legacy global generator; it is seeded for the call and its
  previous state restored afterwards, so callers' random streams are not disturbed.
* Result tables are GeoDataFrames with one row per unit, keyed by the ``unit_id`` column, in the
  row order of ``units``, with the geometry, statistic, p-value, a class label and an integer
  class code ready for colouring.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import esda
import geopandas as gpd
import numpy as np
from libpysal.graph import Graph
from scipy import stats

from geo_crime.errors import ConfigError, DataError, TooFewUnitsError
from geo_crime.weights import (
    SpatialWeights,
    build_weights,
    nearest_neighbour_distances,
    projected_centroids,
    validate_units,
)

__all__ = [
    "MIN_UNITS",
    "GI_BIN_LABELS",
    "LISA_LABELS",
    "GlobalMoran",
    "LocalMoran",
    "GiStar",
    "IncrementalMoran",
    "benjamini_hochberg",
    "check_min_units",
    "confidence_bins",
    "getis_ord_gi_star",
    "gi_star_table",
    "global_moran",
    "incremental_moran",
    "lisa_table",
    "local_moran",
    "normal_p_values",
    "pseudo_p_values",
]

MIN_UNITS = 30
"""Fewest units a hot-spot statistic is computed on."""

Alternative = Literal["two-sided", "greater", "lesser"]
ALTERNATIVES = ("two-sided", "greater", "lesser")

LISA_LABELS = {
    0: "Not Significant",
    1: "High-High",
    2: "Low-High",
    3: "Low-Low",
    4: "High-Low",
}
"""LISA class code -> label (codes 1..4 are esda's quadrants, 0 = not significant)."""

GI_BIN_LABELS = {
    3: "Hot Spot - 99% Confidence",
    2: "Hot Spot - 95% Confidence",
    1: "Hot Spot - 90% Confidence",
    0: "Not Significant",
    -1: "Cold Spot - 90% Confidence",
    -2: "Cold Spot - 95% Confidence",
    -3: "Cold Spot - 99% Confidence",
}
"""ArcGIS ``Gi_Bin`` code -> label."""

_BIN_LEVELS = ((1, 0.10), (2, 0.05), (3, 0.01))


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def check_min_units(n: int, *, what: str = "this statistic", minimum: int = MIN_UNITS) -> None:
    """Raise :class:`TooFewUnitsError` when ``n < minimum``.

    Parameters
    ----------
    n : int
        Number of units available.
    what : str
        Name of the statistic, for the message.
    minimum : int, default 30
        Fewest units accepted.

    Raises
    ------
    TooFewUnitsError
        With a message naming ``n`` and ``minimum``.
    """
    if n < minimum:
        raise TooFewUnitsError(f"{what} needs at least {minimum} units, got {n}")


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ConfigError(
            f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}"
        )


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}")


def _as_values(y: Any, n: int) -> np.ndarray:
    arr = np.asarray(y, dtype=float)
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(
            f"y must be a 1-D array of length {n} (one value per unit), got {arr.shape}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(f"y has {int(bad.sum())} missing or non-finite values")
    if np.ptp(arr) == 0:
        raise DataError("y is constant: spatial autocorrelation is undefined")
    return arr


def _prepare(
    units: gpd.GeoDataFrame, y: Any, weights: SpatialWeights | None, what: str
) -> tuple[np.ndarray, np.ndarray, SpatialWeights]:
    ids = validate_units(units)
    check_min_units(len(ids), what=what)
    values = _as_values(y, len(ids))
    if weights is None:
        weights = build_weights(units)
    elif not np.array_equal(np.asarray(weights.unit_ids, dtype=object), ids):
        raise DataError("weights were built for other units (unit_id order differs)")
    return ids, values, weights


@contextmanager
def _seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed NumPy's legacy global generator (which esda uses) and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            # esda 2.9 warns that its default alternative will change (we do not use its p_sim),
            # and divides 0 by 0 for the permutation z-score of an island
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        np.random.set_state(state)


def _check_permutations(permutations: int, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if int(permutations) != permutations or permutations < low:
        raise ConfigError(f"permutations must be an integer >= {low}, got {permutations}")


def benjamini_hochberg(p: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg false discovery rate control.

    Sort the ``m`` p-values, find the largest ``k`` with ``p_(k) <= k * alpha / m`` and reject the
    ``k`` smallest. The adjusted p-values are ``min_{j >= i} p_(j) * m / j`` (capped at 1), so
    ``reject == (p_adjusted <= alpha)``.

    Parameters
    ----------
    p : array_like
        P-values. Non-finite entries are ignored (never rejected, adjusted value NaN) and do not
        count in ``m``.
    alpha : float, default 0.05
        False discovery rate ``q``.

    Returns
    -------
    reject : numpy.ndarray of bool
        True where the null hypothesis is rejected.
    p_adjusted : numpy.ndarray of float
        BH-adjusted p-values (``scipy.stats.false_discovery_control(method="bh")``).

    Notes
    -----
    The step-up comparison uses a relative tolerance of 1e-12 so that a p-value exactly on its
    threshold (common in worked examples) is rejected, as it is in exact arithmetic.
    """
    _check_alpha(alpha)
    p = np.asarray(p, dtype=float)
    shape = p.shape
    flat = p.ravel()
    reject = np.zeros(flat.shape, dtype=bool)
    adjusted = np.full(flat.shape, np.nan)
    ok = np.isfinite(flat)
    if ok.any():
        pv = flat[ok]
        if (pv < 0).any() or (pv > 1).any():
            raise DataError("p-values must lie in [0, 1]")
        m = len(pv)
        order = np.argsort(pv, kind="mergesort")
        thresholds = alpha * np.arange(1, m + 1) / m
        below = np.nonzero(pv[order] <= thresholds * (1 + 1e-12))[0]
        rej = np.zeros(m, dtype=bool)
        if len(below):
            rej[order[: below[-1] + 1]] = True
        reject[ok] = rej
        adjusted[ok] = stats.false_discovery_control(pv, method="bh")
    return reject.reshape(shape), adjusted.reshape(shape)


def pseudo_p_values(
    observed: np.ndarray, simulated: np.ndarray, alternative: Alternative = "two-sided"
) -> np.ndarray:
    """Permutation pseudo p-values ``(M + 1) / (R + 1)`` for each unit.

    Parameters
    ----------
    observed : numpy.ndarray
        ``(n,)`` observed statistics.
    simulated : numpy.ndarray
        ``(R, n)`` statistics simulated under the null (esda's ``sim``).
    alternative : {"two-sided", "greater", "lesser"}
        ``"greater"`` counts ``sim >= observed``, ``"lesser"`` counts ``sim <= observed`` and
        ``"two-sided"`` is ``min(1, 2 * min(p_greater, p_lesser))``.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` pseudo p-values.
    """
    _check_alternative(alternative)
    sims = np.asarray(simulated, dtype=float)
    obs = np.asarray(observed, dtype=float)
    r = sims.shape[0]
    greater = ((sims >= obs).sum(axis=0) + 1.0) / (r + 1.0)
    if alternative == "greater":
        return greater
    lesser = ((sims <= obs).sum(axis=0) + 1.0) / (r + 1.0)
    if alternative == "lesser":
        return lesser
    return np.minimum(1.0, 2.0 * np.minimum(greater, lesser))


def normal_p_values(z: Any, alternative: Alternative = "two-sided") -> np.ndarray:
    """P-values of z-scores under the standard normal.

    Parameters
    ----------
    z : array_like
        z-scores.
    alternative : {"two-sided", "greater", "lesser"}
        ``2 * sf(|z|)``, ``sf(z)`` or ``cdf(z)``.

    Returns
    -------
    numpy.ndarray
        P-values, same shape as ``z``.
    """
    _check_alternative(alternative)
    z = np.asarray(z, dtype=float)
    if alternative == "greater":
        return stats.norm.sf(z)
    if alternative == "lesser":
        return stats.norm.cdf(z)
    return 2.0 * stats.norm.sf(np.abs(z))


def _significance(p: np.ndarray, alpha: float, fdr: bool) -> tuple[np.ndarray, np.ndarray]:
    if fdr:
        return benjamini_hochberg(p, alpha)
    return p < alpha, p.copy()


def confidence_bins(z: Any, p: Any, *, fdr: bool = False) -> np.ndarray:
    """ArcGIS ``Gi_Bin`` confidence bins from z-scores and p-values.

    Parameters
    ----------
    z : array_like
        z-scores (only their sign is used).
    p : array_like
        P-values (two-sided for the usual bins).
    fdr : bool, default False
        Apply Benjamini-Hochberg at each level (0.10, 0.05, 0.01) instead of raw thresholds.

    Returns
    -------
    numpy.ndarray of int
        ``sign(z) * level`` with level 3 for p < 0.01 (99%), 2 for p < 0.05 (95%), 1 for p < 0.10
        (90%) and 0 otherwise.
    """
    z = np.asarray(z, dtype=float)
    p = np.asarray(p, dtype=float)
    level = np.zeros(p.shape, dtype=int)
    for value, a in _BIN_LEVELS:
        hit = benjamini_hochberg(p, a)[0] if fdr else p < a
        level[hit] = value
    return (np.sign(z).astype(int) * level).astype(int)


def _base_table(units: gpd.GeoDataFrame, ids: np.ndarray, y: np.ndarray) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"unit_id": ids, "y": y}, geometry=units.geometry.to_numpy(), crs=units.crs
    )


# --------------------------------------------------------------------------------------------
# global Moran's I
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class GlobalMoran:
    """Global Moran's I with analytical and permutation inference and scatterplot data.

    Attributes
    ----------
    I : float
        Moran's I (row-standardised weights).
    EI : float
        Expectation under the null, ``-1 / (n - 1)``.
    VI_norm, z_norm, p_norm : float
        Variance, z-score and two-sided p-value under the normality assumption.
    VI_rand, z_rand, p_rand : float
        The same under the randomisation assumption.
    p_sim : float
        esda's one-sided (directed) pseudo p-value from ``permutations`` permutations (NaN if 0).
    z_sim, EI_sim : float
        z-score of I against the permutation distribution, and that distribution's mean.
    y_std : numpy.ndarray
        Standardised ``y`` (mean 0, population sd 1): the scatterplot x-axis.
    lag_std : numpy.ndarray
        Spatial lag of ``y_std`` (row-standardised): the scatterplot y-axis; the OLS slope of
        ``lag_std`` on ``y_std`` equals ``I``.
    n : int
        Number of units.
    permutations, seed : int
        Inference settings.
    weights_summary : str
        :meth:`SpatialWeights.summary` of the weights used.
    """

    I: float  # noqa: E741 - the statistic's name
    EI: float
    VI_norm: float
    z_norm: float
    p_norm: float
    VI_rand: float
    z_rand: float
    p_rand: float
    p_sim: float
    z_sim: float
    EI_sim: float
    y_std: np.ndarray
    lag_std: np.ndarray
    n: int
    permutations: int
    seed: int
    weights_summary: str


def global_moran(
    units: gpd.GeoDataFrame,
    y: Any,
    *,
    weights: SpatialWeights | None = None,
    permutations: int = 999,
    seed: int = 0,
) -> GlobalMoran:
    """Global Moran's I of ``y`` over ``units`` (``esda.Moran``, row-standardised weights).

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with ``unit_id`` and geometry.
    y : array_like
        One value per unit, aligned with ``units`` rows.
    weights : SpatialWeights, optional
        Weights to use; default ``build_weights(units)`` (H3 rings or queen contiguity).
    permutations : int, default 999
        Random permutations for ``p_sim`` (0 skips them).
    seed : int, default 0
        Seed of the permutations.

    Returns
    -------
    GlobalMoran
        Statistic, inference and Moran scatterplot data.

    Raises
    ------
    TooFewUnitsError
        Fewer than 30 units.
    DataError
        ``y`` misaligned, non-finite or constant.
    """
    _check_permutations(permutations, allow_zero=True)
    _, values, weights = _prepare(units, y, weights, "Global Moran's I")
    w = weights.row_standardised()
    with _seeded_global_rng(seed):
        mi = esda.Moran(values, w, transformation="r", permutations=int(permutations))
    y_std = (values - values.mean()) / values.std()
    lag_std = w.lag(y_std)
    has_sim = permutations > 0
    return GlobalMoran(
        I=float(mi.I),
        EI=float(mi.EI),
        VI_norm=float(mi.VI_norm),
        z_norm=float(mi.z_norm),
        p_norm=float(mi.p_norm),
        VI_rand=float(mi.VI_rand),
        z_rand=float(mi.z_rand),
        p_rand=float(mi.p_rand),
        p_sim=float(mi.p_sim) if has_sim else float("nan"),
        z_sim=float(mi.z_sim) if has_sim else float("nan"),
        EI_sim=float(mi.EI_sim) if has_sim else float("nan"),
        y_std=y_std,
        lag_std=np.asarray(lag_std, dtype=float),
        n=len(values),
        permutations=int(permutations),
        seed=seed,
        weights_summary=weights.summary(),
    )


# --------------------------------------------------------------------------------------------
# local Moran's I (LISA)
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class LocalMoran:
    """Local Moran's I (LISA) per unit with conditional-permutation inference.

    Attributes
    ----------
    unit_ids : numpy.ndarray
        ``unit_id`` per row.
    Is : numpy.ndarray
        Local Moran's I.
    q : numpy.ndarray of int
        Quadrant, esda codes: 1 High-High, 2 Low-High, 3 Low-Low, 4 High-Low.
    y_std, lag_std : numpy.ndarray
        Standardised ``y`` and its spatial lag (the quadrant is read from their signs).
    p : numpy.ndarray
        Pseudo p-value for ``alternative``.
    p_greater, p_lesser : numpy.ndarray
        One-sided pseudo p-values.
    p_directed : numpy.ndarray
        esda's own ``p_sim`` (directed/folded one-sided), for reference.
    p_adjusted : numpy.ndarray
        BH-adjusted ``p`` when ``fdr`` is True, else a copy of ``p``.
    z_sim, EI_sim : numpy.ndarray
        Local I standardised by, and mean of, its permutation distribution.
    significant : numpy.ndarray of bool
        ``p < alpha`` (or BH rejection at ``alpha`` when ``fdr``).
    codes : numpy.ndarray of int
        ``q`` where significant, else 0 (see :data:`LISA_LABELS`).
    labels : numpy.ndarray of str
        ``"High-High"``, ``"Low-High"``, ``"Low-Low"``, ``"High-Low"`` or ``"Not Significant"``.
    islands : numpy.ndarray of bool
        Units without neighbours (never significant).
    alternative, alpha, fdr, permutations, seed
        Settings used.
    table : geopandas.GeoDataFrame
        One row per unit: ``unit_id``, ``y``, ``y_std``, ``lag_std``, ``Is``, ``p_value``,
        ``p_adjusted``, ``quadrant``, ``significant``, ``island``, ``cluster_code``, ``cluster``,
        geometry.
    """

    unit_ids: np.ndarray
    Is: np.ndarray
    q: np.ndarray
    y_std: np.ndarray
    lag_std: np.ndarray
    p: np.ndarray
    p_greater: np.ndarray
    p_lesser: np.ndarray
    p_directed: np.ndarray
    p_adjusted: np.ndarray
    z_sim: np.ndarray
    EI_sim: np.ndarray
    significant: np.ndarray
    codes: np.ndarray
    labels: np.ndarray
    islands: np.ndarray
    alternative: str
    alpha: float
    fdr: bool
    permutations: int
    seed: int
    table: gpd.GeoDataFrame = field(repr=False)


def local_moran(
    units: gpd.GeoDataFrame,
    y: Any,
    *,
    weights: SpatialWeights | None = None,
    permutations: int = 999,
    seed: int = 0,
    alternative: Alternative = "two-sided",
    alpha: float = 0.05,
    fdr: bool = False,
    n_jobs: int = 1,
) -> LocalMoran:
    """Local Moran's I (LISA) clusters and outliers (``esda.Moran_Local``).

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with ``unit_id`` and geometry.
    y : array_like
        One value per unit, aligned with ``units`` rows.
    weights : SpatialWeights, optional
        Default ``build_weights(units)``; used row-standardised.
    permutations : int, default 999
        Conditional permutations per unit.
    seed : int, default 0
        Seed of the permutations.
    alternative : {"two-sided", "greater", "lesser"}, default "two-sided"
        Tail(s) of the pseudo p-value (see the module docstring). ``"greater"`` tests for
        clusters (HH/LL), ``"lesser"`` for outliers (HL/LH).
    alpha : float, default 0.05
        Significance level.
    fdr : bool, default False
        Benjamini-Hochberg correction at ``alpha``.
    n_jobs : int, default 1
        Processes for esda's conditional randomisation.

    Returns
    -------
    LocalMoran
        Per-unit statistic, p-values, quadrant, labels and the result ``table``.

    Raises
    ------
    TooFewUnitsError
        Fewer than 30 units.
    ConfigError
        Invalid ``alternative``, ``alpha`` or ``permutations``.
    DataError
        ``y`` misaligned, non-finite or constant.
    """
    _check_alternative(alternative)
    _check_alpha(alpha)
    _check_permutations(permutations)
    ids, values, weights = _prepare(units, y, weights, "Local Moran's I")
    w = weights.row_standardised()
    with _seeded_global_rng(seed):
        lm = esda.Moran_Local(
            values,
            w,
            transformation="r",
            permutations=int(permutations),
            n_jobs=n_jobs,
            keep_simulations=True,
            seed=seed,
        )
    sims = np.asarray(lm.sim, dtype=float)
    p_greater = pseudo_p_values(lm.Is, sims, "greater")
    p_lesser = pseudo_p_values(lm.Is, sims, "lesser")
    p = pseudo_p_values(lm.Is, sims, alternative)
    islands = weights.cardinalities == 0
    p = np.where(islands, 1.0, p)
    significant, p_adj = _significance(p, alpha, fdr)
    significant &= ~islands
    q = np.asarray(lm.q, dtype=int)
    codes = np.where(significant, q, 0)
    labels = np.array([LISA_LABELS[c] for c in codes], dtype=object)
    lag_std = np.asarray(w.lag(lm.z), dtype=float)

    table = _base_table(units, ids, values)
    table["y_std"] = lm.z
    table["lag_std"] = lag_std
    table["Is"] = lm.Is
    table["p_value"] = p
    table["p_adjusted"] = p_adj
    table["quadrant"] = q
    table["significant"] = significant
    table["island"] = islands
    table["cluster_code"] = codes
    table["cluster"] = labels
    table = table.set_geometry("geometry")
    return LocalMoran(
        unit_ids=ids,
        Is=np.asarray(lm.Is, dtype=float),
        q=q,
        y_std=np.asarray(lm.z, dtype=float),
        lag_std=lag_std,
        p=p,
        p_greater=p_greater,
        p_lesser=p_lesser,
        p_directed=np.asarray(lm.p_sim, dtype=float),
        p_adjusted=p_adj,
        z_sim=np.asarray(lm.z_sim, dtype=float),
        EI_sim=np.asarray(lm.EI_sim, dtype=float),
        significant=significant,
        codes=codes,
        labels=labels,
        islands=islands,
        alternative=alternative,
        alpha=alpha,
        fdr=fdr,
        permutations=int(permutations),
        seed=seed,
        table=table,
    )


def lisa_table(units: gpd.GeoDataFrame, y: Any, **kwargs: Any) -> gpd.GeoDataFrame:
    """LISA result table; keyword arguments as :func:`local_moran`.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with ``unit_id`` and geometry.
    y : array_like
        One value per unit.
    **kwargs
        Keyword-only options of :func:`local_moran`.

    Returns
    -------
    geopandas.GeoDataFrame
        :attr:`LocalMoran.table`.
    """
    return local_moran(units, y, **kwargs).table


# --------------------------------------------------------------------------------------------
# Getis-Ord Gi*
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class GiStar:
    """Getis-Ord Gi* per unit (binary weights including the unit itself).

    Attributes
    ----------
    unit_ids : numpy.ndarray
        ``unit_id`` per row.
    Gs : numpy.ndarray
        Gi* statistic (share of the total of ``y`` in the neighbourhood).
    z : numpy.ndarray
        Analytical Gi* z-score (equal to ArcGIS's ``GiZScore``).
    p_norm : numpy.ndarray
        Normal p-value of ``z`` for ``alternative``.
    p_sim : numpy.ndarray
        Conditional-permutation pseudo p-value for ``alternative`` (NaN if no permutations).
    z_sim : numpy.ndarray
        Gi* standardised by its permutation distribution (NaN if no permutations).
    p : numpy.ndarray
        The p-value used for the bins: ``p_norm`` (``inference="analytical"``) or ``p_sim``.
    p_adjusted : numpy.ndarray
        BH-adjusted ``p`` (whatever ``fdr`` is; the bins use it only when ``fdr``).
    gi_bin : numpy.ndarray of int
        Confidence bin -3..3 (see :data:`GI_BIN_LABELS`).
    labels : numpy.ndarray of str
        ``"Hot Spot - 99% Confidence"`` ... ``"Not Significant"`` ... ``"Cold Spot - ..."``.
    inference, alternative, fdr, permutations, seed
        Settings used.
    table : geopandas.GeoDataFrame
        One row per unit: ``unit_id``, ``y``, ``n_neighbours``, ``Gs``, ``gi_z``, ``gi_p``,
        ``gi_p_adjusted``, ``gi_bin``, ``gi_label``, geometry.
    """

    unit_ids: np.ndarray
    Gs: np.ndarray
    z: np.ndarray
    p_norm: np.ndarray
    p_sim: np.ndarray
    z_sim: np.ndarray
    p: np.ndarray
    p_adjusted: np.ndarray
    gi_bin: np.ndarray
    labels: np.ndarray
    inference: str
    alternative: str
    fdr: bool
    permutations: int
    seed: int
    table: gpd.GeoDataFrame = field(repr=False)


def getis_ord_gi_star(
    units: gpd.GeoDataFrame,
    y: Any,
    *,
    weights: SpatialWeights | None = None,
    permutations: int = 999,
    seed: int = 0,
    alternative: Alternative = "two-sided",
    inference: Literal["analytical", "permutation"] = "analytical",
    fdr: bool = False,
    n_jobs: int = 1,
) -> GiStar:
    """Getis-Ord Gi* hot and cold spots (``esda.G_Local(star=True)``, binary weights + self).

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with ``unit_id`` and geometry.
    y : array_like
        One value per unit (non-negative counts or sums are the intended use).
    weights : SpatialWeights, optional
        Default ``build_weights(units)``; used binary with a self-weight of one.
    permutations : int, default 999
        Conditional permutations for ``p_sim`` (0 skips them; then ``inference`` must be
        ``"analytical"``).
    seed : int, default 0
        Seed of the permutations.
    alternative : {"two-sided", "greater", "lesser"}, default "two-sided"
        Tail(s) of both p-values.
    inference : {"analytical", "permutation"}, default "analytical"
        Which p-value drives the confidence bins; ArcGIS uses the analytical one.
    fdr : bool, default False
        Benjamini-Hochberg correction for the bins (applied at 0.10, 0.05 and 0.01).
    n_jobs : int, default 1
        Processes for esda's conditional randomisation.

    Returns
    -------
    GiStar
        z-scores, p-values, confidence bins, labels and the result ``table``.

    Raises
    ------
    TooFewUnitsError
        Fewer than 30 units.
    ConfigError
        Invalid options.
    DataError
        ``y`` misaligned, non-finite or constant.
    """
    _check_alternative(alternative)
    _check_permutations(permutations, allow_zero=True)
    if inference not in ("analytical", "permutation"):
        raise ConfigError(f"inference must be 'analytical' or 'permutation', got {inference!r}")
    if inference == "permutation" and permutations == 0:
        raise ConfigError("inference='permutation' needs permutations > 0")
    ids, values, weights = _prepare(units, y, weights, "Getis-Ord Gi*")
    if abs(values.sum()) <= 1e-12 * np.abs(values).sum():
        raise DataError("Gi* is undefined when y sums to zero (it is a share of the total)")
    w = weights.binary_with_self()
    with _seeded_global_rng(seed):
        g = esda.G_Local(
            values,
            w,
            transform="B",
            permutations=int(permutations),
            star=True,
            keep_simulations=True,
            n_jobs=n_jobs,
            seed=seed,
        )
    z = np.asarray(g.Zs, dtype=float)
    p_norm = normal_p_values(z, alternative)
    if permutations:
        sims = np.asarray(g.sim, dtype=float)
        p_sim = pseudo_p_values(g.Gs, sims, alternative)
        z_sim = np.asarray(g.z_sim, dtype=float)
    else:
        p_sim = np.full(len(z), np.nan)
        z_sim = np.full(len(z), np.nan)
    p = p_norm if inference == "analytical" else p_sim
    p_adj = benjamini_hochberg(p, 0.05)[1]
    gi_bin = confidence_bins(z, p, fdr=fdr)
    labels = np.array([GI_BIN_LABELS[b] for b in gi_bin], dtype=object)

    table = _base_table(units, ids, values)
    table["n_neighbours"] = weights.cardinalities
    table["Gs"] = np.asarray(g.Gs, dtype=float)
    table["gi_z"] = z
    table["gi_p"] = p
    table["gi_p_adjusted"] = p_adj
    table["gi_bin"] = gi_bin
    table["gi_label"] = labels
    table = table.set_geometry("geometry")
    return GiStar(
        unit_ids=ids,
        Gs=np.asarray(g.Gs, dtype=float),
        z=z,
        p_norm=p_norm,
        p_sim=p_sim,
        z_sim=z_sim,
        p=p,
        p_adjusted=p_adj,
        gi_bin=gi_bin,
        labels=labels,
        inference=inference,
        alternative=alternative,
        fdr=fdr,
        permutations=int(permutations),
        seed=seed,
        table=table,
    )


def gi_star_table(units: gpd.GeoDataFrame, y: Any, **kwargs: Any) -> gpd.GeoDataFrame:
    """Gi* result table; keyword arguments as :func:`getis_ord_gi_star`.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with ``unit_id`` and geometry.
    y : array_like
        One value per unit.
    **kwargs
        Keyword-only options of :func:`getis_ord_gi_star`.

    Returns
    -------
    geopandas.GeoDataFrame
        :attr:`GiStar.table`.
    """
    return getis_ord_gi_star(units, y, **kwargs).table


# --------------------------------------------------------------------------------------------
# incremental spatial autocorrelation
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class IncrementalMoran:
    """Global Moran's I over increasing distance bands and the chosen analysis distance.

    Attributes
    ----------
    distances : numpy.ndarray
        Band distances in metres (EPSG:3310 centroids).
    I, EI : numpy.ndarray
        Moran's I and its expectation at each distance.
    z, p : numpy.ndarray
        z-score and two-sided p-value at each distance, under ``assumption``.
    mean_neighbours : numpy.ndarray
        Mean number of neighbours at each distance.
    n_islands : numpy.ndarray of int
        Units without a neighbour at each distance.
    peaks : numpy.ndarray of int
        Indices of local maxima of ``z`` (strictly above both adjacent distances).
    first_peak : float or None
        Distance of the first peak (None if there is none).
    max_peak : float or None
        Distance of the highest peak (None if there is none).
    distance : float
        The chosen distance: ``first_peak``, or the distance of the largest ``z`` when no peak
        exists.
    chosen_by : {"first_peak", "max_z"}
        How ``distance`` was chosen.
    assumption : {"randomization", "normality"}
        Variance assumption behind ``z``.
    """

    distances: np.ndarray
    I: np.ndarray  # noqa: E741 - the statistic's name
    EI: np.ndarray
    z: np.ndarray
    p: np.ndarray
    mean_neighbours: np.ndarray
    n_islands: np.ndarray
    peaks: np.ndarray
    first_peak: float | None
    max_peak: float | None
    distance: float
    chosen_by: str
    assumption: str


def incremental_moran(
    units: gpd.GeoDataFrame,
    y: Any,
    *,
    distances: Sequence[float] | None = None,
    n_steps: int = 10,
    start: float | None = None,
    increment: float | None = None,
    row_standardise: bool = True,
    assumption: Literal["randomization", "normality"] = "randomization",
) -> IncrementalMoran:
    """Incremental spatial autocorrelation: Moran's I z-score over growing distance bands.

    As in ArcGIS's *Incremental Spatial Autocorrelation* (used by *Optimized Hot Spot
    Analysis*), global Moran's I is computed with binary distance-band weights (row-standardised
    by default) on unit centroids in EPSG:3310 for ``n_steps`` distances ``start + i * increment``.
    A peak of the z-score marks a distance at which the clustering process is most pronounced;
    the first peak is returned as the analysis distance, or the distance with the largest z when
    the z-scores have no peak (e.g. they rise monotonically).

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with ``unit_id`` and geometry.
    y : array_like
        One value per unit, aligned with ``units`` rows.
    distances : sequence of float, optional
        Explicit increasing distances in metres; overrides ``n_steps``, ``start`` and
        ``increment``.
    n_steps : int, default 10
        Number of distance bands.
    start : float, optional
        First distance in metres; default the smallest distance that gives every unit at least
        one neighbour (the largest nearest-neighbour distance).
    increment : float, optional
        Step in metres; default the mean nearest-neighbour distance.
    row_standardise : bool, default True
        Row-standardise the band weights (else binary).
    assumption : {"randomization", "normality"}, default "randomization"
        Variance of I behind the z-score; ArcGIS reports the randomisation one.

    Returns
    -------
    IncrementalMoran
        The z-score profile, its peaks and the chosen distance.

    Raises
    ------
    TooFewUnitsError
        Fewer than 30 units.
    ConfigError
        Invalid distances or options.
    DataError
        ``y`` misaligned, non-finite or constant.
    """
    ids = validate_units(units)
    check_min_units(len(ids), what="Incremental spatial autocorrelation")
    values = _as_values(y, len(ids))
    if assumption not in ("randomization", "normality"):
        raise ConfigError(f"assumption must be 'randomization' or 'normality', got {assumption!r}")
    xy = projected_centroids(units)
    if distances is None:
        if n_steps < 2:
            raise ConfigError(f"n_steps must be >= 2, got {n_steps}")
        nn = nearest_neighbour_distances(xy)
        d0 = float(nn.max()) * (1 + 1e-9) if start is None else float(start)
        step = float(nn.mean()) if increment is None else float(increment)
        if d0 <= 0 or step <= 0:
            raise ConfigError(f"start and increment must be positive, got {d0} and {step}")
        dists = d0 + step * np.arange(n_steps)
    else:
        dists = np.asarray(distances, dtype=float)
        if dists.ndim != 1 or len(dists) < 2 or (dists <= 0).any() or (np.diff(dists) <= 0).any():
            raise ConfigError("distances must be at least two positive, increasing numbers")
    transformation = "r" if row_standardise else "b"
    out = {k: np.empty(len(dists)) for k in ("I", "EI", "z", "p", "mean_neighbours", "islands")}
    for i, d in enumerate(dists):
        g = Graph.build_distance_band(xy, float(d), binary=True)
        card = g.cardinalities.to_numpy()
        mi = esda.Moran(values, g, transformation=transformation, permutations=0)
        z = mi.z_rand if assumption == "randomization" else mi.z_norm
        out["I"][i] = mi.I
        out["EI"][i] = mi.EI
        out["z"][i] = z
        out["p"][i] = 2.0 * stats.norm.sf(abs(z))
        out["mean_neighbours"][i] = card.mean()
        out["islands"][i] = (card == 0).sum()
    z = out["z"]
    inner = np.arange(1, len(z) - 1)
    peaks = inner[(z[inner] > z[inner - 1]) & (z[inner] > z[inner + 1])]
    first_peak = float(dists[peaks[0]]) if len(peaks) else None
    max_peak = float(dists[peaks[np.argmax(z[peaks])]]) if len(peaks) else None
    if first_peak is not None:
        chosen, how = first_peak, "first_peak"
    else:
        chosen, how = float(dists[int(np.nanargmax(z))]), "max_z"
    return IncrementalMoran(
        distances=dists,
        I=out["I"],
        EI=out["EI"],
        z=z,
        p=out["p"],
        mean_neighbours=out["mean_neighbours"],
        n_islands=out["islands"].astype(int),
        peaks=peaks,
        first_peak=first_peak,
        max_peak=max_peak,
        distance=chosen,
        chosen_by=how,
        assumption=assumption,
    )
