"""Emerging hot spot analysis: how hot and cold spots change over time.

This reimplements ArcGIS Pro's *Emerging Hot Spot Analysis* (Space Time Pattern Mining toolbox),
which no Python library provides, on a space-time cube ``values`` of shape
``(n_units, n_periods)`` (for example crime counts per H3 cell and week).

Method
------
1. **Space-time Gi\\*.** For every bin (unit ``i``, period ``t``) the Getis-Ord Gi* z-score is
   computed over its space-time neighbourhood: the unit itself and its spatial neighbours
   (binary weights from :mod:`geo_crime.stats.weights`) in periods ``t - k .. t``, where
   ``k = time_window`` (ArcGIS's *Neighborhood Time Step*; ``k = 0`` is a purely spatial Gi* per
   period; ArcGIS's default is 1). Near the start of the series the window is truncated. With
   ``W_it`` the number of bins in the neighbourhood and ``L_it`` the sum of their values, the
   analytical (ArcGIS) z-score is::

       z_it = (L_it - xbar * W_it) / (S * sqrt((n * W_it - W_it**2) / (n - 1)))

   where ``n``, ``xbar`` and ``S`` (population standard deviation) are taken over the *global
   window* (ArcGIS's *Define Global Window*): ``"cube"`` (default, all bins of the cube),
   ``"neighborhood"`` (all bins in periods ``t - k .. t``) or ``"individual"`` (the bins of
   period ``t`` only; needs ``time_window=0``, and then equals ``esda.G_Local(star=True)`` run on
   each period). It is computed for all periods at once with one sparse-matrix product; there are
   no permutations (ArcGIS also uses analytical inference here). The p-value is two-sided normal.
   A bin is a *hot spot* if ``z > 0`` and ``p < alpha`` and a *cold spot* if ``z < 0`` and
   ``p < alpha`` (``alpha = 0.10``, 90% confidence, by default; ``fdr=True`` replaces the raw
   threshold by Benjamini-Hochberg over all bins of the cube).
2. **Trend.** The Mann-Kendall test (:func:`mann_kendall`, with the tie correction) is run on each
   unit's series of Gi* z-scores (the *trend in the intensity of clustering*, which the
   categories use) and, for reference, on the unit's raw values (the count trend).
3. **Categories.** Each unit gets one of 17 categories from its series of hot/cold bins and the
   z-score trend. ``share`` is the fraction of all periods that are significant hot (or cold)
   bins; "final" is the last period; a trend is significant when its two-sided Mann-Kendall
   p-value is below ``trend_alpha`` (default ``alpha``).

   =====  ========================  ================================================================
   code   category                  rule (ArcGIS Pro definition as implemented)
   =====  ========================  ================================================================
   1      New Hot Spot              final period hot; never a significant hot spot before
   2      Consecutive Hot Spot      a single uninterrupted run of >= 2 hot bins ending at the final
                                    period, never hot before that run, share < 90%
   3      Intensifying Hot Spot     share >= 90% including the final period; significant
                                    *increasing* trend of the Gi* z-scores
   4      Persistent Hot Spot       share >= 90% including the final period; no significant trend
   5      Diminishing Hot Spot      share >= 90% including the final period; significant
                                    *decreasing* trend of the Gi* z-scores
   6      Sporadic Hot Spot         final period hot; on-again off-again (hot before, with a gap);
                                    share < 90%; never a significant cold spot
   7      Oscillating Hot Spot      final period hot; has been a significant cold spot in an earlier
                                    period; share < 90%
   8      Historical Hot Spot       final period not significant; share >= 90%
   9      No Pattern Detected       none of the above or below
   10-17  New ... Historical        the mirror images (hot <-> cold; "intensifying" cold = z-scores
          Cold Spot                 trending significantly *down*, "diminishing" cold = *up*), in
                                    the same order: 10 New, 11 Consecutive, 12 Intensifying,
                                    13 Persistent, 14 Diminishing, 15 Sporadic, 16 Oscillating,
                                    17 Historical
   =====  ========================  ================================================================

   Where ArcGIS's wording leaves an overlap, this module decides as follows (and says so):

   * The final period decides the family: a unit that is hot in the final period is only given a
     hot category, one that is cold in the final period only a cold category. *Historical* is
     therefore given only when the final period is not significant (a final cold bin after >= 90%
     hot bins is an *Oscillating Cold Spot*, whose definition it meets).
   * Any earlier significant bin of the opposite sign makes a unit *Oscillating*, so *New*,
     *Consecutive* and *Sporadic* units have no opposite-sign bins at all (as in R's ``sfdep``).
   * Share thresholds: ">= 90%" and "< 90%" of all periods (``>= 0.9 * n_periods``).

Codes are colour-ready: 1..8 hot (strongest reds first), 9 neutral, 10..17 cold;
:data:`CATEGORY_COLOURS` is a matching palette. ``signed_code`` gives the same information as
+1..+8 (hot), -1..-8 (cold) and 0 (no pattern).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse, stats

from geo_crime.core.errors import ConfigError, DataError
from geo_crime.stats.significance import benjamini_hochberg, check_min_units
from geo_crime.stats.weights import SpatialWeights, build_weights, validate_units

__all__ = [
    "CATEGORIES",
    "CATEGORY_COLOURS",
    "CATEGORY_STYLES",
    "MIN_PERIODS",
    "EmergingHotSpots",
    "MannKendall",
    "classify_emerging",
    "emerging_hotspots",
    "mann_kendall",
    "space_time_gi_star",
]

MIN_PERIODS = 3
"""Fewest periods accepted (ten or more are advisable for a meaningful trend)."""

_PATTERNS = (
    "New",
    "Consecutive",
    "Intensifying",
    "Persistent",
    "Diminishing",
    "Sporadic",
    "Oscillating",
    "Historical",
)
CATEGORIES: dict[int, str] = {
    **{i + 1: f"{name} Hot Spot" for i, name in enumerate(_PATTERNS)},
    9: "No Pattern Detected",
    **{i + 10: f"{name} Cold Spot" for i, name in enumerate(_PATTERNS)},
}
"""Category code (1..17) -> label."""

_HOT = ("#fdae61", "#f46d43", "#a50026", "#d73027")  # light orange, orange, dark red, red
_COLD = ("#abd9e9", "#74add1", "#313695", "#4575b4")  # light blue ... dark blue, blue

#: Kind (code 1..8: New, Consecutive, Intensifying, Persistent, Diminishing, Sporadic,
#: Oscillating, Historical) -> (shade, hatched). The fading or intermittent kinds take the shade
#: of their counterpart (Diminishing: Intensifying, Sporadic: Consecutive, Oscillating: New,
#: Historical: Persistent), hatched.
_KINDS = {1: (0, False), 2: (1, False), 3: (2, False), 4: (3, False)}
_KINDS |= {5: (2, True), 6: (1, True), 7: (0, True), 8: (3, True)}

CATEGORY_STYLES: dict[int, tuple[str, bool]] = {
    **{code: (_HOT[shade], hatched) for code, (shade, hatched) in _KINDS.items()},
    9: ("#f0f0f0", False),  # No Pattern Detected
    **{code + 9: (_COLD[shade], hatched) for code, (shade, hatched) in _KINDS.items()},
}
"""Category code -> (fill colour, hatched): the one palette of maps and figures.

Hot spots in reds and oranges, cold spots in blues. The eight kinds of each side share four
colours: the growing or current kinds (New, Consecutive, Intensifying, Persistent) are solid,
the fading or intermittent ones (Diminishing, Sporadic, Oscillating, Historical) hatched in the
colour of their counterpart, so no two categories look alike."""

CATEGORY_COLOURS: dict[int, str] = {code: colour for code, (colour, _) in CATEGORY_STYLES.items()}
"""The fill colour per category code (:data:`CATEGORY_STYLES` without the hatching)."""

GlobalWindow = Literal["cube", "neighborhood", "individual"]
_NO_PATTERN = 9


# --------------------------------------------------------------------------------------------
# Mann-Kendall
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class MannKendall:
    """Mann-Kendall trend test results, one entry per series.

    Attributes
    ----------
    s : numpy.ndarray
        ``S = sum_{i<j} sign(x_j - x_i)``.
    var_s : numpy.ndarray
        Variance of ``S`` with the tie correction
        ``[n(n-1)(2n+5) - sum_g t_g(t_g-1)(2t_g+5)] / 18``.
    z : numpy.ndarray
        ``(S - 1) / sqrt(var_s)`` if ``S > 0``, ``(S + 1) / sqrt(var_s)`` if ``S < 0``, else 0
        (continuity-corrected; 0 also when ``var_s == 0``).
    p : numpy.ndarray
        Two-sided normal p-value of ``z``.
    tau : numpy.ndarray
        Kendall's tau-b between time and the series, ``S / sqrt(n0 (n0 - n1))`` with
        ``n0 = n(n-1)/2`` and ``n1 = sum_g t_g(t_g-1)/2`` (NaN for a constant series).
    n : int
        Length of each series.
    """

    s: np.ndarray
    var_s: np.ndarray
    z: np.ndarray
    p: np.ndarray
    tau: np.ndarray
    n: int


def mann_kendall(x: Any) -> MannKendall:
    """Mann-Kendall monotonic trend test, vectorised over series.

    Parameters
    ----------
    x : array_like
        One series (1-D, length ``n``) or many (2-D ``(n_series, n)``, one series per row), in
        time order, without missing values.

    Returns
    -------
    MannKendall
        ``s``, ``var_s``, ``z``, ``p`` and ``tau`` per series (arrays of shape ``(n_series,)``,
        or 0-d arrays for a 1-D input).

    Raises
    ------
    DataError
        Fewer than 2 time points or non-finite values.
    """
    arr = np.asarray(x, dtype=float)
    one = arr.ndim == 1
    if one:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise DataError(f"mann_kendall expects a 1-D or 2-D array, got shape {arr.shape}")
    m, n = arr.shape
    if n < 2:
        raise DataError(f"mann_kendall needs at least 2 time points, got {n}")
    if not np.isfinite(arr).all():
        raise DataError("mann_kendall: series contain missing or non-finite values")
    s = np.zeros(m)
    for lag in range(1, n):
        s += np.sign(arr[:, lag:] - arr[:, :-lag]).sum(axis=1)
    # tie groups: sort each row, number the runs of equal values, count their sizes
    srt = np.sort(arr, axis=1)
    new = np.ones_like(srt, dtype=bool)
    new[:, 1:] = srt[:, 1:] != srt[:, :-1]
    sizes = np.bincount(np.cumsum(new.ravel()) - 1).astype(float)
    row = np.repeat(np.arange(m), new.sum(axis=1))
    tie_var = np.bincount(row, weights=sizes * (sizes - 1) * (2 * sizes + 5), minlength=m)
    tie_pairs = np.bincount(row, weights=sizes * (sizes - 1) / 2, minlength=m)
    var_s = (n * (n - 1) * (2 * n + 5) - tie_var) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var_s > 0, (s - np.sign(s)) / np.sqrt(var_s), 0.0)
        n0 = n * (n - 1) / 2.0
        tau = s / np.sqrt(n0 * (n0 - tie_pairs))
    p = 2.0 * stats.norm.sf(np.abs(z))
    if one:
        return MannKendall(s=s[0], var_s=var_s[0], z=z[0], p=p[0], tau=tau[0], n=n)
    return MannKendall(s=s, var_s=var_s, z=z, p=p, tau=tau, n=n)


# --------------------------------------------------------------------------------------------
# space-time Gi*
# --------------------------------------------------------------------------------------------


def _window_sum(a: np.ndarray, k: int) -> np.ndarray:
    """Sum over the last ``k + 1`` columns (t-k..t, truncated at 0) along axis -1."""
    if k == 0:
        return a.copy()
    c = np.cumsum(a, axis=-1)
    out = c.copy()
    out[..., k + 1 :] -= c[..., : -(k + 1)]
    return out


def space_time_gi_star(
    values: Any,
    weights: SpatialWeights | Any,
    *,
    time_window: int = 0,
    global_window: GlobalWindow = "cube",
) -> tuple[np.ndarray, np.ndarray]:
    """Analytical Gi* z-scores and two-sided p-values for every bin of a space-time cube.

    Parameters
    ----------
    values : array_like
        ``(n_units, n_periods)`` cube.
    weights : SpatialWeights or scipy.sparse matrix
        Spatial weights; used binary with a self-weight of one (a sparse matrix is used as
        given, so it must already include the diagonal).
    time_window : int, default 0
        ``k``: the neighbourhood pools periods ``t - k .. t``.
    global_window : {"cube", "neighborhood", "individual"}, default "cube"
        Bins that define the global mean and standard deviation (see the module docstring).

    Returns
    -------
    z : numpy.ndarray
        ``(n_units, n_periods)`` Gi* z-scores (0 where the global window has no variance).
    p : numpy.ndarray
        Two-sided normal p-values (1 where ``z`` is undefined).

    Raises
    ------
    ConfigError
        Invalid ``time_window`` or ``global_window``.
    DataError
        Misaligned or non-finite ``values``.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise DataError(f"values must be 2-D (n_units, n_periods), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("values contain missing or non-finite entries")
    n_units, n_periods = x.shape
    if int(time_window) != time_window or not 0 <= time_window < n_periods:
        raise ConfigError(f"time_window must be an integer in [0, n_periods), got {time_window}")
    k = int(time_window)
    if global_window not in ("cube", "neighborhood", "individual"):
        raise ConfigError(
            f"global_window must be 'cube', 'neighborhood' or 'individual', got {global_window!r}"
        )
    if global_window == "individual" and k > 0:
        raise ConfigError("global_window='individual' needs time_window=0")
    if isinstance(weights, SpatialWeights):
        a = weights.binary_sparse(include_self=True)
    else:
        a = sparse.csr_array(weights)
    if a.shape != (n_units, n_units):
        raise DataError(f"weights are {a.shape}, values have {n_units} units")

    card = np.asarray(a.sum(axis=1)).ravel()  # neighbours incl. self (binary)
    sq = np.asarray(a.multiply(a).sum(axis=1)).ravel()
    periods_in = np.minimum(np.arange(n_periods), k) + 1.0  # periods pooled at each t
    local = a @ _window_sum(x, k)  # (n_units, n_periods)
    w_sum = card[:, None] * periods_in[None, :]
    w_sq = sq[:, None] * periods_in[None, :]
    if global_window == "cube":
        n = float(x.size)
        mean = x.mean()
        sd = np.sqrt(max((x * x).mean() - mean * mean, 0.0))
    else:
        n = n_units * periods_in
        mean = _window_sum(x.sum(axis=0), k) / n
        sd = np.sqrt(np.maximum(_window_sum((x * x).sum(axis=0), k) / n - mean * mean, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        den = sd * np.sqrt((n * w_sq - w_sum**2) / (n - 1))
        z = (local - mean * w_sum) / den
    bad = ~np.isfinite(z) | (np.broadcast_to(den, z.shape) <= 0)
    z[bad] = 0.0
    p = 2.0 * stats.norm.sf(np.abs(z))
    p[bad] = 1.0
    return z, p


# --------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------


def _trailing_run(b: np.ndarray) -> np.ndarray:
    """Length of the run of True values that ends at the last column, per row."""
    rev = b[:, ::-1]
    first_false = np.where(rev.all(axis=1), b.shape[1], np.argmin(rev, axis=1))
    return first_false.astype(int)


def _family(
    on: np.ndarray, other: np.ndarray, up: np.ndarray, down: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pattern index 1..8 for one family (0 = none), given its bins, the opposite bins and trend.

    Returns the pattern for units whose final bin is ``on`` and the Historical flag.
    """
    n_periods = on.shape[1]
    n_on = on.sum(axis=1)
    final = on[:, -1]
    high = n_on >= 0.9 * n_periods
    run = _trailing_run(on)
    other_any = other.any(axis=1)
    pattern = np.zeros(on.shape[0], dtype=int)
    fam = final & high
    pattern[fam & up] = 3  # Intensifying
    pattern[fam & down] = 5  # Diminishing
    pattern[fam & ~up & ~down] = 4  # Persistent
    low = final & ~high
    pattern[low & other_any] = 7  # Oscillating
    low &= ~other_any
    pattern[low & (n_on == 1)] = 1  # New
    pattern[low & (n_on > 1) & (n_on == run)] = 2  # Consecutive
    pattern[low & (n_on > run)] = 6  # Sporadic
    historical = ~final & high
    return pattern, historical


def classify_emerging(
    hot: Any,
    cold: Any,
    trend_z: Any,
    trend_p: Any,
    *,
    trend_alpha: float = 0.10,
) -> np.ndarray:
    """Emerging hot spot category codes (1..17) from hot/cold bins and the Gi* trend.

    Parameters
    ----------
    hot, cold : array_like of bool
        ``(n_units, n_periods)`` significant hot / cold bins (never both in one bin).
    trend_z, trend_p : array_like
        ``(n_units,)`` Mann-Kendall z and p of each unit's Gi* z-score series.
    trend_alpha : float, default 0.10
        Significance level of the trend.

    Returns
    -------
    numpy.ndarray of int
        Codes as in :data:`CATEGORIES` (rules in the module docstring).
    """
    hot = np.asarray(hot, dtype=bool)
    cold = np.asarray(cold, dtype=bool)
    if hot.shape != cold.shape or hot.ndim != 2:
        raise DataError("hot and cold must be 2-D boolean arrays of the same shape")
    if (hot & cold).any():
        raise DataError("a bin cannot be both a hot and a cold spot")
    tz = np.asarray(trend_z, dtype=float)
    sig = np.asarray(trend_p, dtype=float) < trend_alpha
    up = sig & (tz > 0)
    down = sig & (tz < 0)
    hot_pat, hot_hist = _family(hot, cold, up, down)
    cold_pat, cold_hist = _family(cold, hot, down, up)
    code = np.full(hot.shape[0], _NO_PATTERN, dtype=int)
    code[hot_hist] = 8
    code[cold_hist] = 17
    code[hot_pat > 0] = hot_pat[hot_pat > 0]
    code[cold_pat > 0] = cold_pat[cold_pat > 0] + 9
    return code


def _signed(code: np.ndarray) -> np.ndarray:
    return np.where(code < _NO_PATTERN, code, np.where(code == _NO_PATTERN, 0, -(code - 9)))


# --------------------------------------------------------------------------------------------
# the analysis
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class EmergingHotSpots:
    """Result of :func:`emerging_hotspots`.

    Attributes
    ----------
    unit_ids : numpy.ndarray
        ``unit_id`` per row.
    periods : pandas.DatetimeIndex
        Period of each column.
    category : numpy.ndarray of str
        Category label per unit (see :data:`CATEGORIES`).
    code : numpy.ndarray of int
        Category code 1..17 (1..8 hot, 9 no pattern, 10..17 cold).
    signed_code : numpy.ndarray of int
        +1..+8 hot, -1..-8 cold (same order), 0 no pattern.
    trend_tau, trend_z, trend_p : numpy.ndarray
        Mann-Kendall tau-b, z and p of each unit's Gi* z-score series.
    count_tau, count_z, count_p : numpy.ndarray
        Mann-Kendall tau-b, z and p of each unit's raw values.
    n_hot, n_cold : numpy.ndarray of int
        Significant hot / cold bins per unit.
    share_hot, share_cold : numpy.ndarray
        ``n_hot / n_periods`` and ``n_cold / n_periods``.
    final_hot, final_cold : numpy.ndarray of bool
        Whether the final period is a significant hot / cold bin.
    z, p : numpy.ndarray
        ``(n_units, n_periods)`` Gi* z-scores and two-sided p-values.
    p_used : numpy.ndarray
        ``(n_units, n_periods)`` p-values compared with ``alpha`` (BH-adjusted when ``fdr``).
    hot, cold : numpy.ndarray of bool
        ``(n_units, n_periods)`` significant hot / cold bins.
    alpha, trend_alpha, time_window, global_window, fdr
        Settings used.
    weights_summary : str
        Summary of the spatial weights.
    table : geopandas.GeoDataFrame
        One row per unit keyed by ``unit_id`` with the per-unit attributes above and geometry.
    """

    unit_ids: np.ndarray
    periods: pd.DatetimeIndex
    category: np.ndarray
    code: np.ndarray
    signed_code: np.ndarray
    trend_tau: np.ndarray
    trend_z: np.ndarray
    trend_p: np.ndarray
    count_tau: np.ndarray
    count_z: np.ndarray
    count_p: np.ndarray
    n_hot: np.ndarray
    n_cold: np.ndarray
    share_hot: np.ndarray
    share_cold: np.ndarray
    final_hot: np.ndarray
    final_cold: np.ndarray
    z: np.ndarray
    p: np.ndarray
    p_used: np.ndarray
    hot: np.ndarray
    cold: np.ndarray
    alpha: float
    trend_alpha: float
    time_window: int
    global_window: str
    fdr: bool
    weights_summary: str
    table: gpd.GeoDataFrame = field(repr=False)


def emerging_hotspots(
    units: gpd.GeoDataFrame,
    values: Any,
    periods: pd.DatetimeIndex,
    *,
    weights: SpatialWeights | None = None,
    time_window: int = 0,
    global_window: GlobalWindow = "cube",
    alpha: float = 0.10,
    trend_alpha: float | None = None,
    fdr: bool = False,
) -> EmergingHotSpots:
    """Emerging hot spot analysis of a space-time cube (ArcGIS Pro's 17 categories).

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with ``unit_id`` and geometry (rows of the cube).
    values : array_like
        ``(n_units, n_periods)`` values (e.g. counts) aligned with ``units`` rows and
        ``periods``.
    periods : pandas.DatetimeIndex
        Strictly increasing period starts, one per column. Columns are treated as consecutive
        time steps: a gap (e.g. left by dropping incomplete periods) is not filled, and
        ``time_window`` counts columns, not calendar time.
    weights : SpatialWeights, optional
        Spatial neighbours; default ``build_weights(units)``.
    time_window : int, default 0
        Preceding periods pooled into each bin's neighbourhood (ArcGIS's Neighborhood Time Step,
        whose default there is 1).
    global_window : {"cube", "neighborhood", "individual"}, default "cube"
        Bins the local sums are compared with (ArcGIS's Define Global Window).
    alpha : float, default 0.10
        Significance level of the Gi* bins (90% confidence).
    trend_alpha : float, optional
        Significance level of the Mann-Kendall trend; default ``alpha``.
    fdr : bool, default False
        Benjamini-Hochberg correction of the bin p-values across the whole cube.

    Returns
    -------
    EmergingHotSpots
        Categories, trends, shares, the full z and p cubes and the result ``table``.

    Raises
    ------
    TooFewUnitsError
        Fewer than 30 units.
    DataError
        Misaligned, non-finite or constant ``values``; bad ``periods``; fewer than
        :data:`MIN_PERIODS` periods.
    ConfigError
        Invalid options.
    """
    ids = validate_units(units)
    check_min_units(len(ids), what="Emerging hot spot analysis")
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.shape[0] != len(ids):
        raise DataError(f"values must have shape ({len(ids)}, n_periods), got {x.shape}")
    if not isinstance(periods, pd.DatetimeIndex) or len(periods) != x.shape[1]:
        raise DataError(f"periods must be a DatetimeIndex of length {x.shape[1]} (one per column)")
    if not periods.is_monotonic_increasing or not periods.is_unique:
        raise DataError("periods must be strictly increasing")
    if x.shape[1] < MIN_PERIODS:
        raise DataError(f"emerging hot spot analysis needs at least {MIN_PERIODS} periods")
    if not np.isfinite(x).all():
        raise DataError("values contain missing or non-finite entries")
    if np.ptp(x) == 0:
        raise DataError("values are constant over the whole cube")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}")
    trend_alpha = alpha if trend_alpha is None else trend_alpha
    if not 0 < trend_alpha < 1:
        raise ConfigError(f"trend_alpha must be between 0 and 1, got {trend_alpha}")
    if weights is None:
        weights = build_weights(units)
    elif not np.array_equal(np.asarray(weights.unit_ids, dtype=object), ids):
        raise DataError("weights were built for other units (unit_id order differs)")

    z, p = space_time_gi_star(x, weights, time_window=time_window, global_window=global_window)
    if fdr:
        sig, p_used = benjamini_hochberg(p, alpha)
    else:
        sig, p_used = p < alpha, p
    hot = sig & (z > 0)
    cold = sig & (z < 0)
    trend = mann_kendall(z)
    counts = mann_kendall(x)
    code = classify_emerging(hot, cold, trend.z, trend.p, trend_alpha=trend_alpha)
    category = np.array([CATEGORIES[c] for c in code], dtype=object)
    n_periods = x.shape[1]
    n_hot = hot.sum(axis=1)
    n_cold = cold.sum(axis=1)

    result = {
        "category": category,
        "code": code,
        "signed_code": _signed(code),
        "trend_tau": trend.tau,
        "trend_z": trend.z,
        "trend_p": trend.p,
        "count_tau": counts.tau,
        "count_z": counts.z,
        "count_p": counts.p,
        "n_hot": n_hot,
        "n_cold": n_cold,
        "share_hot": n_hot / n_periods,
        "share_cold": n_cold / n_periods,
        "final_hot": hot[:, -1].copy(),
        "final_cold": cold[:, -1].copy(),
    }
    table = gpd.GeoDataFrame(
        {"unit_id": ids, **result, "final_z": z[:, -1]},
        geometry=units.geometry.to_numpy(),
        crs=units.crs,
    )
    return EmergingHotSpots(
        unit_ids=ids,
        periods=periods,
        **result,
        z=z,
        p=p,
        p_used=p_used,
        hot=hot,
        cold=cold,
        alpha=alpha,
        trend_alpha=trend_alpha,
        time_window=int(time_window),
        global_window=global_window,
        fdr=fdr,
        weights_summary=weights.summary(),
        table=table,
    )
