"""Fit time of the field's forecasters (kde, prospective, sepp) on a city-wide year of weeks.

The real city-wide rows (the 2024 reduced files, one per LAPD area) cover 39 weeks, January to
September 2024. A year is made of them by resampling whole weeks: weeks 1-39 are the real weeks,
and each of weeks 40-52 is a real week drawn at random (seeded) and moved to its new date, so
every week keeps the city's real spatial pattern and volume. The rows are binned to the H3 cells
filling the city at resolution 8 (~1,500 cells) and 9 (~10,000 cells), weekly, and each method is
fit on the 52-week cube and asked for the next week, timed in this process.

Run ``python benchmarks/field_fit.py`` (``--resolutions 8`` for one resolution only) to print
the table. Goal: each fit under a minute on 2 cores. The parameters the fits print are timing
context, not findings: a year of resampled weeks, and a record that thins through 2024, have a
level no single background per cell holds, which the SEPP reads as self-excitation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo_crime.core.config import data_dir  # noqa: E402
from geo_crime.cube.panel import Cube, build_cube  # noqa: E402
from geo_crime.forecast.registry import make_forecaster  # noqa: E402
from geo_crime.ingest import load_incidents  # noqa: E402
from geo_crime.units import assign_units, h3_units  # noqa: E402

METHODS = ("kde", "prospective", "sepp")


def resampled_year(incidents: pd.DataFrame, *, weeks: int = 52, seed: int = 0) -> pd.DataFrame:
    """The real rows' complete weeks, then real weeks drawn at random to fill ``weeks`` weeks.

    Parameters
    ----------
    incidents : pandas.DataFrame
        Loaded incidents (``occurred_at``).
    weeks : int, default 52
        Weeks of the result.
    seed : int, default 0
        Seed of the drawn weeks.

    Returns
    -------
    pandas.DataFrame
        Rows with ``occurred_at`` moved to their new week (day of week and time kept).
    """
    start = incidents["occurred_at"].min().normalize()
    start -= pd.Timedelta(days=start.dayofweek)  # a Monday
    week = ((incidents["occurred_at"] - start).dt.days // 7).to_numpy()
    last = int(week.max())
    full = [w for w in range(last) if (week == w).any()]  # the last week may be partial
    rng = np.random.default_rng(seed)
    sources = full[:weeks] + list(rng.choice(full, size=max(weeks - len(full), 0)))
    parts = []
    for target, source in enumerate(sources):
        rows = incidents[week == source].copy()
        rows["occurred_at"] += pd.Timedelta(weeks=target - int(source))
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def city_cube(incidents: pd.DataFrame, resolution: int) -> Cube:
    """Weekly cube of the incidents on the H3 cells filling the city at ``resolution``."""
    units = h3_units(resolution, study_area="city")
    ids, _ = assign_units(incidents, units)
    return build_cube(incidents, units, ids, freq="W")


def time_methods(cube: Cube) -> list[dict]:
    """Fit and predict time of each method on the cube, with what each fit learnt."""
    rows = []
    for name in METHODS:
        model = make_forecaster(name)
        t0 = time.perf_counter()
        model.fit(cube)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        forecast = model.predict(cube)
        predict_s = time.perf_counter() - t0
        if name == "kde":
            learnt = f"h = {model.bandwidth_:.0f} m, half-life {model.half_life_:g} weeks"
        elif name == "prospective":
            learnt = f"band {model.band_:.0f} m, radius {model.radius_:.0f} m"
        else:
            learnt = (
                f"theta {model.theta_:.3f}, omega {model.omega_:.2f}, "
                f"self-exciting share {model.self_exciting_share_:.3f}, {model.n_iter_} iterations"
            )
        rows.append(
            {
                "units": cube.shape[0],
                "weeks": cube.shape[1],
                "method": name,
                "fit_s": round(fit_s, 2),
                "predict_s": round(predict_s, 3),
                "forecast_total": round(float(np.nansum(forecast)), 1),
                "learnt": learnt,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", default="8,9", help="H3 resolutions (default 8,9)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = data_dir() / "lapd_crime" / "kyleW145_2024_by_area"
    incidents, _ = load_incidents(folder, cache=False)
    year = resampled_year(incidents, seed=args.seed)
    print(f"{len(incidents):,} real rows -> {len(year):,} rows over 52 weeks")
    table = []
    for resolution in (int(r) for r in args.resolutions.split(",")):
        t0 = time.perf_counter()
        cube = city_cube(year, resolution)
        print(f"H3-{resolution}: cube {cube.shape} built in {time.perf_counter() - t0:.1f} s")
        table += [{"h3": resolution, **row} for row in time_methods(cube)]
    frame = pd.DataFrame(table)
    print(frame.to_string(index=False))


if __name__ == "__main__":
    main()
