"""Timing of the pooled Keras forecaster at city-wide H3 resolution 8, weekly.

The real city-wide panel is short (the 2024 rows are complete for a few months only), so ``run()``
times a synthetic cube of the same width: ``n_units`` H3 resolution-8 cells around downtown Los
Angeles (about the 1,500-1,800 cells that cover the city) x ``n_periods`` weeks of a seasonal,
trending, spatially autocorrelated Poisson panel
(:func:`tests.forecast_cubes.synthetic_cube`). It times training (features, network fit
with early stopping on the latest 20% of weeks) and the next-week prediction for every cell, and
returns the timings in seconds with the sizes, so a larger benchmark script can collect them::

    from benchmarks.bench_forecast import run
    timings = run(n_units=1800, n_periods=150)

Run ``python benchmarks/bench_forecast.py`` to print them (``--fast`` uses ``FAST_CONFIG``).
Target: training under about two minutes on 2 CPU cores with the default configuration.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo_crime.forecast import (  # noqa: E402
    DEFAULT_CONFIG,
    FAST_CONFIG,
    ForecastConfig,
    predict_next,
    train,
)
from tests.fakes.forecast_cubes import synthetic_cube  # noqa: E402


def run(
    n_units: int = 1800,
    n_periods: int = 150,
    *,
    config: ForecastConfig = DEFAULT_CONFIG,
    seed: int = 0,
) -> dict:
    """Time training and next-period prediction on a synthetic city-wide weekly H3-8 cube.

    Parameters
    ----------
    n_units : int, default 1800
        H3 resolution-8 cells.
    n_periods : int, default 150
        Weeks.
    config : ForecastConfig, default DEFAULT_CONFIG
        Model settings.
    seed : int, default 0
        Seed of the panel and of the model.

    Returns
    -------
    dict
        ``cube_seconds``, ``train_seconds``, ``predict_seconds``, the sizes (``n_units``,
        ``n_periods``, training ``rows``), ``epochs`` run, ``best_epoch`` and the MAE and
        80%-interval coverage on the held-out periods (``None`` when the panel is too short to
        hold any out).
    """
    t0 = time.perf_counter()
    cube = synthetic_cube(n_units=n_units, n_periods=n_periods, resolution=8, seed=seed)
    t1 = time.perf_counter()
    model = train(cube, config=config, seed=seed)
    t2 = time.perf_counter()
    table = predict_next(model, cube)
    t3 = time.perf_counter()
    metrics = model.metadata_["metrics"]
    return {
        "n_units": n_units,
        "n_periods": n_periods,
        "rows": model.metadata_["training_window"]["rows"],
        "config": {FAST_CONFIG: "FAST_CONFIG", DEFAULT_CONFIG: "DEFAULT_CONFIG"}.get(
            config, "custom"
        ),
        "cube_seconds": round(t1 - t0, 2),
        "train_seconds": round(t2 - t1, 2),
        "predict_seconds": round(t3 - t2, 3),
        "epochs": metrics["epochs_run"],
        "best_epoch": metrics["best_epoch"],
        "heldout_mae": _rounded(metrics.get("heldout_mae"), 3),
        "heldout_interval_coverage": _rounded(metrics.get("heldout_interval_coverage"), 3),
        "predicted_units": int(table["prediction"].notna().sum()),
    }


def _rounded(value: float | None, digits: int) -> float | None:
    """``value`` rounded, or ``None`` when it was not measured."""
    return None if value is None else round(float(value), digits)


if __name__ == "__main__":
    fast = "--fast" in sys.argv[1:]
    print(json.dumps(run(config=FAST_CONFIG if fast else DEFAULT_CONFIG), indent=2))
