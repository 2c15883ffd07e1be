"""Timing of the hot-spot statistics on a synthetic H3 study area.

``run()`` builds ``n_units`` contiguous H3 resolution-8 cells around downtown Los Angeles with a
seeded synthetic crime surface (Poisson counts with a few hot clusters, and a cube of
``n_periods`` weekly counts in which some clusters emerge or fade), then times weights, global
Moran's I, LISA and Gi* with 999 permutations, and emerging hot spot analysis. It returns the
timings in seconds so that a larger benchmark script can collect them::

    from benchmarks.bench_hotspots import run
    timings = run(n_units=1800, n_periods=250)

Run ``python benchmarks/bench_hotspots.py`` to print them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
from shapely.geometry import Polygon

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo_crime.stats.emerging import emerging_hotspots  # noqa: E402
from geo_crime.stats.hotspots import getis_ord_gi_star, global_moran, local_moran  # noqa: E402
from geo_crime.stats.weights import build_weights  # noqa: E402

CENTRE = (34.05, -118.25)  # downtown Los Angeles
RESOLUTION = 8


def synthetic_units(n_units: int) -> gpd.GeoDataFrame:
    """``n_units`` H3 cells nearest (in grid steps) to downtown LA, as a unit GeoDataFrame.

    Parameters
    ----------
    n_units : int
        Number of cells.

    Returns
    -------
    geopandas.GeoDataFrame
        ``unit_id`` (cell), ``unit_type`` = 'h3', polygon geometry in EPSG:4326.
    """
    centre = h3.latlng_to_cell(*CENTRE, RESOLUTION)
    rings = 0
    while 3 * rings * (rings + 1) + 1 < n_units:
        rings += 1
    cells = sorted(h3.grid_disk(centre, rings), key=lambda c: (h3.grid_distance(centre, c), c))
    cells = cells[:n_units]
    geoms = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    return gpd.GeoDataFrame({"unit_id": cells, "unit_type": "h3"}, geometry=geoms, crs="EPSG:4326")


def synthetic_cube(
    units: gpd.GeoDataFrame, n_periods: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded synthetic counts: a clustered total ``y`` and an ``(n_units, n_periods)`` cube.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units from :func:`synthetic_units`.
    n_periods : int
        Number of periods.
    seed : int
        Random seed.

    Returns
    -------
    y : numpy.ndarray
        Counts per unit.
    cube : numpy.ndarray
        Counts per unit and period.
    """
    rng = np.random.default_rng(seed)
    cent = units.geometry.to_crs(3310).centroid
    xy = np.column_stack([cent.x, cent.y])
    centres = xy[rng.choice(len(xy), size=6, replace=False)]
    d2 = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    bumps = np.exp(-d2 / (2 * 1500.0**2))  # (n_units, 6), 1.5 km clusters
    t = np.linspace(0.0, 1.0, n_periods)
    # clusters 0-1 steady, 2-3 emerging, 4-5 fading
    shapes = np.vstack([np.ones_like(t), np.ones_like(t), t, t**2, 1 - t, (1 - t) ** 2])
    rate = 0.5 + 4.0 * bumps @ shapes  # (n_units, n_periods)
    cube = rng.poisson(rate).astype(float)
    return cube.sum(axis=1), cube


def _timed(func, *args, **kwargs):
    start = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - start


def run(n_units: int = 1800, n_periods: int = 250, seed: int = 0) -> dict[str, float]:
    """Time the hot-spot statistics on synthetic data.

    Parameters
    ----------
    n_units : int, default 1800
        H3 cells in the study area.
    n_periods : int, default 250
        Periods of the emerging hot spot cube.
    seed : int, default 0
        Seed of the synthetic data and of the permutations.

    Returns
    -------
    dict of str to float
        Seconds for ``weights``, ``global_moran_999``, ``lisa_999``, ``gi_star_999``,
        ``lisa_plus_gi_star_999``, ``emerging`` (time_window=0), ``emerging_time_window_1``;
        plus the sizes ``n_units`` and ``n_periods``.
    """
    units = synthetic_units(n_units)
    y, cube = synthetic_cube(units, n_periods, seed)
    periods = pd.date_range("2020-01-06", periods=n_periods, freq="W-MON")
    w, t_w = _timed(build_weights, units)
    _, t_moran = _timed(global_moran, units, y, weights=w, permutations=999, seed=seed)
    _, t_lisa = _timed(local_moran, units, y, weights=w, permutations=999, seed=seed)
    _, t_gi = _timed(
        getis_ord_gi_star,
        units,
        y,
        weights=w,
        permutations=999,
        seed=seed,
        inference="permutation",
    )
    _, t_ehsa = _timed(emerging_hotspots, units, cube, periods, weights=w)
    _, t_ehsa1 = _timed(emerging_hotspots, units, cube, periods, weights=w, time_window=1)
    return {
        "n_units": float(n_units),
        "n_periods": float(n_periods),
        "weights": t_w,
        "global_moran_999": t_moran,
        "lisa_999": t_lisa,
        "gi_star_999": t_gi,
        "lisa_plus_gi_star_999": t_lisa + t_gi,
        "emerging": t_ehsa,
        "emerging_time_window_1": t_ehsa1,
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:>24}: {value:.3f}")
