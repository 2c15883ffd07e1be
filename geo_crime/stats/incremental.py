"""At what scale: incremental spatial autocorrelation, the distance a hot-spot analysis uses.

The third question of :mod:`geo_crime.stats.hotspots` (which re-exports :func:`incremental_moran`):
as in ArcGIS's *Incremental Spatial Autocorrelation*, global Moran's I is computed over growing
distance bands and the first peak of its z-score is the distance ArcGIS's *Optimized Hot Spot
Analysis* uses as the neighbourhood. Unlike the statistics of :mod:`geo_crime.stats.hotspots` it
takes no :class:`~geo_crime.stats.weights.SpatialWeights`: it builds one set of distance-band
weights per distance on the unit centroids in EPSG:3310, and draws no permutations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import esda
import geopandas as gpd
import numpy as np
from libpysal.graph import Graph
from scipy import stats

from geo_crime.core.errors import ConfigError
from geo_crime.stats.significance import check_min_units, checked_values
from geo_crime.stats.weights import nearest_neighbour_distances, projected_centroids, validate_units

__all__ = ["IncrementalMoran", "incremental_moran"]


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
    values = checked_values(y, len(ids))
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
