"""Synthetic forecast panels for the tests: H3 cubes with a known, learnable signal.

A test helper, not part of the package: production code and its doctests never import it.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.cube.panel import Cube

__all__ = ["synthetic_cube"]


def synthetic_cube(
    *,
    n_units: int = 100,
    n_periods: int = 104,
    freq: str = "W",
    resolution: int = 8,
    start: str = "2021-01-04",
    base_rate: float = 1.0,
    seasonal: float = 0.4,
    trend: float = 0.6,
    persistence: float = 0.8,
    noise: float = 0.15,
    n_divisions: int = 3,
    incomplete: float = 0.0,
    seed: int = 0,
) -> Cube:
    """A synthetic H3 panel with a known, learnable signal.

    The log intensity of unit ``i`` in period ``t`` is a smooth spatial hot-spot surface plus a
    yearly season (amplitude ``seasonal``), a trend whose sign varies smoothly in space (up to
    ``trend`` over the panel) and a spatially correlated AR(1) shock (``persistence``, scale
    ``noise``). Counts are Poisson; each incident gets a severity from {20, 35, 50, 80} (harm is
    severity x 3).

    Parameters
    ----------
    n_units, n_periods : int
        Panel size (H3 cells nearest downtown Los Angeles, at ``resolution``).
    freq : {"D", "W", "M"}
        Period length.
    incomplete : float, default 0
        Share of (division, last-periods) cells marked incomplete: the last
        ``round(incomplete * n_periods)`` periods of the first division.
    seed : int
        Random seed.

    Returns
    -------
    Cube
        With ``area`` (division 1..n_divisions) and ``population`` on the units.
    """
    import h3
    from shapely.geometry import Polygon

    rng = np.random.default_rng(seed)
    centre = h3.latlng_to_cell(34.05, -118.25, resolution)
    rings = 0
    while 3 * rings * (rings + 1) + 1 < n_units:
        rings += 1
    cells = sorted(h3.grid_disk(centre, rings), key=lambda c: (h3.grid_distance(centre, c), c))
    cells = cells[:n_units]
    latlng = np.array([h3.cell_to_latlng(c) for c in cells])
    xy = (latlng - latlng.mean(axis=0)) / (latlng.std(axis=0) + 1e-12)
    geoms = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    # smooth hot spots
    bumps = rng.normal(size=(4, 2)) * 0.8
    surface = sum(np.exp(-0.5 * ((xy - b) ** 2).sum(axis=1) / 0.3) for b in bumps)
    level = np.log(base_rate) + 1.5 * (surface - surface.mean())
    slope = trend * np.tanh(xy[:, 0])  # up in the east, down in the west
    # spatially correlated AR(1) shocks: Gaussian kernel over units
    dist2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2)
    kernel = np.exp(-0.5 * dist2 / 0.15)
    kernel /= kernel.sum(axis=1, keepdims=True)
    shock = np.zeros((n_units, n_periods))
    for t in range(1, n_periods):
        shock[:, t] = persistence * shock[:, t - 1] + kernel @ rng.normal(0, noise, n_units) * 3
    freq_code = {"D": "D", "W": "W-SUN", "M": "M"}[freq]
    periods = pd.period_range(start, periods=n_periods, freq=freq_code).start_time
    doy = (periods + (pd.Timedelta(days=3) if freq == "W" else pd.Timedelta(0))).dayofyear
    season = seasonal * np.sin(2 * np.pi * (doy.to_numpy() - 1) / 365.25)
    tt = np.arange(n_periods) / max(n_periods - 1, 1)
    log_rate = level[:, None] + season[None, :] + slope[:, None] * tt[None, :] + shock
    counts = rng.poisson(np.exp(log_rate))
    sev_values = np.array([20.0, 35.0, 50.0, 80.0])
    total = int(counts.sum())
    draws = rng.choice(sev_values, size=total, p=[0.4, 0.3, 0.2, 0.1])
    owner = np.repeat(np.arange(counts.size), counts.ravel())
    severity = np.bincount(owner, weights=draws, minlength=counts.size).reshape(counts.shape)
    division = 1 + np.minimum((_rank_share(xy[:, 1]) * n_divisions).astype(int), n_divisions - 1)
    units = gpd.GeoDataFrame(
        {
            "unit_id": cells,
            "unit_type": "h3",
            "area": division,
            "population": np.round(np.exp(rng.normal(7.5, 0.5, n_units))),
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    complete = np.ones_like(counts, dtype=bool)
    k = int(round(incomplete * n_periods))
    if k > 0:
        complete[division == 1, -k:] = False
    return Cube(
        units=units,
        periods=pd.DatetimeIndex(periods),
        freq=freq,
        counts=counts.astype(np.int64),
        severity=severity,
        harm=severity * 3.0,
        complete=complete,
        meta={"unit_type": "h3", "source": "synthetic", "seed": seed},
    )


def _rank_share(values: np.ndarray) -> np.ndarray:
    """Rank of each value in ``[0, 1)`` (ties broken by position)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values)) / max(len(values), 1)
    return ranks
