"""Hot spots: global and local spatial autocorrelation of a value over spatial units.

A *hot spot* is a place where high values (crime counts, severity sums) cluster: the unit and its
neighbours are, together, higher than chance would put them. This module answers three questions
about one variable ``y`` over ``units`` (see :mod:`geo_crime.stats.weights` for who neighbours
whom):

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
3. **At what scale?** Incremental spatial autocorrelation (:func:`incremental_moran`, from
   :mod:`geo_crime.stats.incremental`) runs global Moran's I over growing distance bands and
   returns the first peak of its z-score, the distance ArcGIS's *Optimized Hot Spot Analysis* uses
   as the neighbourhood.

Inference
---------
The inference every statistic shares is in :mod:`geo_crime.stats.significance`, whose docstring says
how the pseudo p-values are computed for each ``alternative`` (esda's own directed ``p_sim`` is
kept as ``p_directed``), and how ``fdr=True`` applies the Benjamini-Hochberg correction, to the
Gi* bins at each confidence level. Its public helpers (:func:`pseudo_p_values`,
:func:`normal_p_values`, :func:`benjamini_hochberg`, :func:`confidence_bins`,
:func:`check_min_units`) are importable from here too.

Conventions
-----------
* Fewer than :data:`MIN_UNITS` (30) units raise :class:`~geo_crime.core.errors.TooFewUnitsError`
  (ArcGIS's minimum for these statistics).
* Every function that draws random permutations takes ``seed`` and gives the same answer for the
  same seed. esda draws from NumPy's legacy global generator; it is seeded for the call and its
  previous state restored afterwards, so callers' random streams are not disturbed.
* Result tables are GeoDataFrames with one row per unit, keyed by the ``unit_id`` column, in the
  row order of ``units``, with the geometry, statistic, p-value, a class label and an integer
  class code ready for colouring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import esda
import geopandas as gpd
import numpy as np

from geo_crime.core.errors import ConfigError, DataError
from geo_crime.stats.significance import (
    Alternative,
    benjamini_hochberg,
    check_alpha,
    check_alternative,
    check_min_units,
    check_permutations,
    checked_values,
    confidence_bins,
    normal_p_values,
    pseudo_p_values,
    seeded_global_rng,
    significant_units,
)
from geo_crime.stats.weights import SpatialWeights, build_weights, validate_units

__all__ = [
    "GI_BIN_LABELS",
    "LISA_LABELS",
    "GlobalMoran",
    "LocalMoran",
    "GiStar",
    "getis_ord_gi_star",
    "gi_star_table",
    "global_moran",
    "lisa_table",
    "local_moran",
]

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


# --------------------------------------------------------------------------------------------
# the inputs and the result table every statistic shares
# --------------------------------------------------------------------------------------------


def _prepare(
    units: gpd.GeoDataFrame, y: Any, weights: SpatialWeights | None, what: str
) -> tuple[np.ndarray, np.ndarray, SpatialWeights]:
    """The unit ids, the checked values and the weights (built when not given) of a statistic."""
    ids = validate_units(units)
    check_min_units(len(ids), what=what)
    values = checked_values(y, len(ids))
    if weights is None:
        weights = build_weights(units)
    elif not np.array_equal(np.asarray(weights.unit_ids, dtype=object), ids):
        raise DataError("weights were built for other units (unit_id order differs)")
    return ids, values, weights


def _base_table(units: gpd.GeoDataFrame, ids: np.ndarray, y: np.ndarray) -> gpd.GeoDataFrame:
    """The first columns of a result table: ``unit_id``, ``y`` and the units' geometry."""
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
    check_permutations(permutations, allow_zero=True)
    _, values, weights = _prepare(units, y, weights, "Global Moran's I")
    w = weights.row_standardised()
    with seeded_global_rng(seed):
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
        Tail(s) of the pseudo p-value (see :mod:`geo_crime.stats.significance`). ``"greater"``
        tests for clusters (HH/LL), ``"lesser"`` for outliers (HL/LH).
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
    check_alternative(alternative)
    check_alpha(alpha)
    check_permutations(permutations)
    ids, values, weights = _prepare(units, y, weights, "Local Moran's I")
    w = weights.row_standardised()
    with seeded_global_rng(seed):
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
    significant, p_adj = significant_units(p, alpha, fdr)
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
    check_alternative(alternative)
    check_permutations(permutations, allow_zero=True)
    if inference not in ("analytical", "permutation"):
        raise ConfigError(f"inference must be 'analytical' or 'permutation', got {inference!r}")
    if inference == "permutation" and permutations == 0:
        raise ConfigError("inference='permutation' needs permutations > 0")
    ids, values, weights = _prepare(units, y, weights, "Getis-Ord Gi*")
    if abs(values.sum()) <= 1e-12 * np.abs(values).sum():
        raise DataError("Gi* is undefined when y sums to zero (it is a share of the total)")
    w = weights.binary_with_self()
    with seeded_global_rng(seed):
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
