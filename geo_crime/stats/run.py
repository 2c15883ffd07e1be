"""Run the hot spot statistics on a space-time cube and return tables keyed by unit id.

This stage turns a :class:`~geo_crime.cube.panel.Cube` into the value each statistic needs and calls
:mod:`geo_crime.stats.hotspots` and :mod:`geo_crime.stats.emerging`:

* Moran's I, LISA and Gi* use one value per unit: the **mean per complete period** of a measure
  (severity sum by default). Averaging over the unit's complete periods only keeps a reporting
  break from reading as a cold spot; a unit with no complete period gets 0 and is counted.
* Emerging hot spots use the cube itself, restricted to the periods complete for at least
  ``min_share`` of the units (all of them by default), since a space-time Gi* needs every unit in
  every period.

The same spatial weights are built once per cube and shared by the statistics.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.core.errors import DataError
from geo_crime.cube.panel import Cube
from geo_crime.stats import emerging, hotspots
from geo_crime.stats.weights import SpatialWeights, build_weights

#: The statistics ``run_statistic`` knows.
STATISTICS = ("moran", "lisa", "gi", "emerging")

#: ArcGIS advises at least ten time steps for an emerging hot spot analysis.
RECOMMENDED_PERIODS = 10


@dataclass
class StatisticResult:
    """One statistic's output.

    Attributes
    ----------
    name
        ``moran``, ``lisa``, ``gi`` or ``emerging``.
    table
        Per-unit table keyed by ``unit_id`` with geometry (for Moran: the scatterplot data).
    summary
        Headline figures (e.g. Moran's I, z, p; counts per class) and settings.
    result
        The underlying result object (``GlobalMoran``, ``LocalMoran``, ``GiStar``,
        ``EmergingHotSpots``).
    """

    name: str
    table: gpd.GeoDataFrame
    summary: dict = field(default_factory=dict)
    result: object = None


def statistic_values(cube: Cube, measure: str = "severity") -> tuple[np.ndarray, int]:
    """Mean per complete period of ``measure`` for each unit, as the spatial statistics read it
    (:meth:`Cube.mean_per_complete_period`).

    A spatial statistic needs a value for every unit of its weights: a unit with no complete
    period (NaN there) takes 0 here and is counted, so the summary can say how many. On an
    analysis window (:meth:`Cube.complete_periods`) every unit is complete and none is filled.

    Returns
    -------
    (numpy.ndarray, int)
        The values and the number of units with no complete period (given 0).
    """
    mean = cube.mean_per_complete_period(measure)
    missing = np.isnan(mean)
    return np.where(missing, 0.0, mean), int(missing.sum())


def run_statistic(
    cube: Cube,
    stat: str,
    *,
    measure: str = "severity",
    permutations: int = 999,
    seed: int = 0,
    alpha: float | None = None,
    fdr: bool = False,
    weights=None,
    time_window: int = 0,
    min_share: float = 1.0,
) -> StatisticResult:
    """Run one statistic on a cube.

    Parameters
    ----------
    cube
        The cube.
    stat
        ``moran``, ``lisa``, ``gi`` or ``emerging``.
    measure
        Cube measure (``severity``, ``count``, ``harm``, ``rate``, ``cat:<category>``).
    permutations, seed
        Permutation inference (Moran, LISA, Gi*).
    alpha
        Significance level (default 0.05 for LISA, 0.10 for emerging; Gi* reports all bins).
    fdr
        Benjamini-Hochberg false discovery rate control.
    weights
        Prebuilt :class:`~geo_crime.stats.weights.SpatialWeights` (default: built for the units).
    time_window
        Emerging hot spots: neighbouring periods pooled on each side.
    min_share
        Emerging hot spots: keep periods complete for at least this share of units.

    Returns
    -------
    StatisticResult
    """
    if stat not in STATISTICS:
        raise DataError(f"unknown statistic {stat!r}: use one of {', '.join(STATISTICS)}")
    if weights is None:
        weights = build_weights(cube.units)
    kwargs = {"alpha": alpha} if alpha is not None else {}
    if stat == "emerging":
        return _emerging(cube, measure, weights, fdr, time_window, min_share, kwargs)
    y, no_complete = statistic_values(cube, measure)
    common = {
        "measure": measure,
        "units_without_complete_period": no_complete,
        "weights": weights.summary(),
    }
    tests = {"permutations": permutations, "seed": seed}
    if stat == "moran":
        return _moran(cube, y, weights, tests, common)
    if stat == "lisa":
        return _lisa(cube, y, weights, tests, fdr, kwargs, common)
    return _gi(cube, y, weights, tests, fdr, common)


def _emerging(
    cube: Cube,
    measure: str,
    weights: SpatialWeights,
    fdr: bool,
    time_window: int,
    min_share: float,
    kwargs: dict,
) -> StatisticResult:
    """Emerging hot spots over the periods complete for ``min_share`` of the units."""
    sub = cube.complete_periods(min_share=min_share)
    if len(sub.periods) < emerging.MIN_PERIODS:
        raise DataError(
            f"emerging hot spots need at least {emerging.MIN_PERIODS} complete periods; the "
            f"cube has {len(sub.periods)} of {len(cube.periods)} complete for "
            f"{min_share:.0%} of units"
        )
    if len(sub.periods) < RECOMMENDED_PERIODS:
        warnings.warn(
            f"only {len(sub.periods)} complete periods: trends are weak below "
            f"{RECOMMENDED_PERIODS}",
            stacklevel=3,
        )
    result = emerging.emerging_hotspots(
        cube.units,
        sub.values(measure),
        sub.periods,
        weights=weights,
        time_window=time_window,
        fdr=fdr,
        **kwargs,
    )
    table = result.table
    counts = pd.Series(result.category).value_counts().to_dict()
    summary = {
        "periods": len(sub.periods),
        "first_period": str(sub.periods[0].date()),
        "last_period": str(sub.periods[-1].date()),
        "categories": {str(k): int(v) for k, v in counts.items()},
        "time_window": time_window,
        "fdr": fdr,
    }
    return StatisticResult("emerging", table, summary, result)


def _moran(
    cube: Cube, y: np.ndarray, weights: SpatialWeights, tests: dict, common: dict
) -> StatisticResult:
    """Global Moran's I of the unit values; the table is the scatterplot's data."""
    units = cube.units
    result = hotspots.global_moran(units, y, weights=weights, **tests)
    table = gpd.GeoDataFrame(
        {"unit_id": cube.unit_ids, "y": y, "y_std": result.y_std, "lag_std": result.lag_std},
        geometry=units.geometry.to_numpy(),
        crs=units.crs,
    )
    summary = {
        "I": result.I,
        "EI": result.EI,
        "z_norm": result.z_norm,
        "p_norm": result.p_norm,
        "z_sim": result.z_sim,
        "p_sim": result.p_sim,
        "permutations": tests["permutations"],
        **common,
    }
    return StatisticResult("moran", table, summary, result)


def _lisa(
    cube: Cube,
    y: np.ndarray,
    weights: SpatialWeights,
    tests: dict,
    fdr: bool,
    kwargs: dict,
    common: dict,
) -> StatisticResult:
    """Local Moran's I (LISA) clusters of the unit values."""
    result = hotspots.local_moran(cube.units, y, weights=weights, **tests, fdr=fdr, **kwargs)
    table = result.table
    summary = {
        "clusters": {str(k): int(v) for k, v in table["cluster"].value_counts().items()},
        "permutations": tests["permutations"],
        "fdr": fdr,
        **common,
    }
    return StatisticResult("lisa", table, summary, result)


def _gi(
    cube: Cube, y: np.ndarray, weights: SpatialWeights, tests: dict, fdr: bool, common: dict
) -> StatisticResult:
    """Getis-Ord Gi* confidence bins of the unit values."""
    result = hotspots.getis_ord_gi_star(cube.units, y, weights=weights, **tests, fdr=fdr)
    table = result.table
    summary = {
        "bins": {str(k): int(v) for k, v in table["gi_label"].value_counts().items()},
        "permutations": tests["permutations"],
        "fdr": fdr,
        **common,
    }
    return StatisticResult("gi", table, summary, result)
