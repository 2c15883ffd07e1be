"""Inference shared by every hot-spot statistic: checks, p-values, false discovery rate, bins.

The statistics of :mod:`geo_crime.stats.hotspots` (Moran's I, LISA, Gi*),
:mod:`geo_crime.stats.incremental` and :mod:`geo_crime.stats.emerging` draw their conclusions with
these helpers, in the habit of esda's ``significance`` module: the checks run before a statistic is
computed (:func:`check_min_units`, :func:`checked_values` and the option checks), permutation and
normal p-values, the Benjamini-Hochberg correction and ArcGIS's confidence bins. They know nothing
of geometry or weights.

Pseudo p-values and the ``alternative``
---------------------------------------
With ``R`` permutations and ``M`` simulated statistics at least as extreme as the observed one,
the pseudo p-value is ``(M + 1) / (R + 1)`` (so the smallest possible value with 999 permutations
is 0.001). esda 2.9's ``Moran_Local`` and ``G_Local`` take no ``alternative``: their ``p_sim`` is
the *directed* (folded) one-sided value, ``M`` counted in whichever tail the observation lies in,
which is about half a two-sided p-value. :mod:`geo_crime.stats.hotspots` keeps that value as
``p_directed`` and computes its own from esda's kept simulations (:func:`pseudo_p_values`):

* ``"greater"``: ``M = #{sim >= observed}``;
* ``"lesser"``: ``M = #{sim <= observed}``;
* ``"two-sided"`` (default): ``min(1, 2 * min(p_greater, p_lesser))``, the usual doubling of the
  smaller one-sided pseudo p-value.

Analytical Gi* p-values are from the standard normal (:func:`normal_p_values`): two-sided
``2 * sf(|z|)``, ``"greater"`` ``sf(z)``, ``"lesser"`` ``cdf(z)``.

Multiple testing
----------------
Local statistics test every unit at once. ``fdr=True`` applies the Benjamini-Hochberg false
discovery rate procedure (:func:`benjamini_hochberg`). For the Gi* bins it is applied at each
confidence level, as ArcGIS's FDR option does: a unit is in bin +/-3 if BH rejects it at 0.01,
+/-2 at 0.05, +/-1 at 0.10 (:func:`confidence_bins`).

Reproducible permutations
-------------------------
esda draws its permutations from NumPy's legacy global generator: :func:`seeded_global_rng` seeds
it for one call and restores its previous state afterwards, so callers' random streams are not
disturbed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
from scipy import stats

from geo_crime.core.errors import ConfigError, DataError, TooFewUnitsError

__all__ = [
    "ALTERNATIVES",
    "MIN_UNITS",
    "Alternative",
    "benjamini_hochberg",
    "check_alpha",
    "check_alternative",
    "check_min_units",
    "check_permutations",
    "confidence_bins",
    "normal_p_values",
    "pseudo_p_values",
    "seeded_global_rng",
    "significant_units",
    "checked_values",
]

MIN_UNITS = 30
"""Fewest units a hot-spot statistic is computed on."""

Alternative = Literal["two-sided", "greater", "lesser"]
"""The tail(s) a p-value is computed in."""

ALTERNATIVES = ("two-sided", "greater", "lesser")

#: Gi* confidence bin -> the p-value below which a unit is in it (90%, 95%, 99%).
_BIN_LEVELS = ((1, 0.10), (2, 0.05), (3, 0.01))


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


def check_alternative(alternative: str) -> None:
    """Raise :class:`ConfigError` unless ``alternative`` is one of :data:`ALTERNATIVES`.

    Parameters
    ----------
    alternative : str
        ``"two-sided"``, ``"greater"`` or ``"lesser"``.

    Raises
    ------
    ConfigError
        Naming the accepted values.
    """
    if alternative not in ALTERNATIVES:
        raise ConfigError(
            f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}"
        )


def check_alpha(alpha: float) -> None:
    """Raise :class:`ConfigError` unless ``0 < alpha < 1``.

    Parameters
    ----------
    alpha : float
        A significance level or false discovery rate.

    Raises
    ------
    ConfigError
        ``alpha`` is outside (0, 1).
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}")


def check_permutations(permutations: int, *, allow_zero: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``permutations`` is a whole number of at least 1.

    Parameters
    ----------
    permutations : int
        Number of random permutations.
    allow_zero : bool, default False
        Accept 0 (for statistics whose permutations are optional).

    Raises
    ------
    ConfigError
        ``permutations`` is not a whole number, or too small.
    """
    low = 0 if allow_zero else 1
    if int(permutations) != permutations or permutations < low:
        raise ConfigError(f"permutations must be an integer >= {low}, got {permutations}")


def checked_values(y: Any, n: int) -> np.ndarray:
    """The values a statistic is computed on, checked: one finite value per unit, not all equal.

    Parameters
    ----------
    y : array_like
        One value per unit.
    n : int
        Number of units.

    Returns
    -------
    numpy.ndarray
        ``y`` as a float64 array of length ``n``.

    Raises
    ------
    DataError
        ``y`` is not 1-D of length ``n``, holds missing or non-finite values, or is constant
        (spatial autocorrelation is undefined).
    """
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


@contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
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
    check_alpha(alpha)
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
    check_alternative(alternative)
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
    check_alternative(alternative)
    z = np.asarray(z, dtype=float)
    if alternative == "greater":
        return stats.norm.sf(z)
    if alternative == "lesser":
        return stats.norm.cdf(z)
    return 2.0 * stats.norm.sf(np.abs(z))


def significant_units(p: np.ndarray, alpha: float, fdr: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which units are significant at ``alpha``, with or without the Benjamini-Hochberg correction.

    Parameters
    ----------
    p : numpy.ndarray
        One p-value per unit.
    alpha : float
        Significance level (the false discovery rate when ``fdr``).
    fdr : bool
        Apply :func:`benjamini_hochberg`; otherwise a unit is significant when ``p < alpha``.

    Returns
    -------
    significant : numpy.ndarray of bool
        True where significant.
    p_adjusted : numpy.ndarray of float
        BH-adjusted p-values when ``fdr``, else a copy of ``p``.
    """
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
