"""Feedback while forecasts train: progress of fits and epochs, and a quiet TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from geo_crime import progress
from geo_crime.forecast import ForecastConfig, evaluate
from tests.forecast_cubes import synthetic_cube

REPO = Path(__file__).resolve().parents[1]
SMALL = ForecastConfig(lags=4, units=8, layers=1, batch_size=256, max_epochs=5, patience=2)


def test_a_backtest_reports_every_fit_and_every_epoch():
    cube = synthetic_cube(n_units=20, n_periods=30, seed=3)
    recorder = progress.RecordingReporter()
    with progress.reporting(recorder):
        evaluate(cube, models=["keras", "last"], n_origins=5, refit_every=2, config=SMALL)
    # 5 origins refitted every 2 -> 3 fits per model, 2 models: 6 fits, counted 0..6
    done = [d for d, _, _ in recorder.fit_calls]
    assert {t for _, t, _ in recorder.fit_calls} == {6}
    assert done[0] == 0 and done[-1] == 6 and done == sorted(done)
    assert any(label.startswith("keras, origin ") for _, _, label in recorder.fit_calls)
    # every Keras fit reports its epochs, at most the configured maximum
    assert recorder.epoch_calls and all(1 <= d <= t <= 5 for d, t in recorder.epoch_calls)


def test_without_a_reporter_nothing_is_reported_and_nothing_fails():
    progress.fits(1, 2, "x")  # no reporter in effect: a no-op
    progress.epoch(1, 2)
    recorder = progress.RecordingReporter()
    with progress.reporting(recorder):
        progress.fits(1, 2, "inside")
    progress.fits(2, 2, "after")
    assert recorder.fit_calls == [(1, 2, "inside")]


def _train_in_a_fresh_process(**env: str) -> str:
    script = (
        "from tests.forecast_cubes import synthetic_cube\n"
        "from geo_crime.forecast import ForecastConfig, train\n"
        "cube = synthetic_cube(n_units=20, n_periods=30, seed=1)\n"
        "train(cube, config=ForecastConfig(lags=4, units=8, layers=1, max_epochs=3), seed=0)\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    clean.pop("GEO_CRIME_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stderr


def test_tensorflow_logs_are_silenced_by_default():
    stderr = _train_in_a_fresh_process()
    assert "node_def_util" not in stderr and "absl::InitializeLog" not in stderr, stderr
    assert not [line for line in stderr.splitlines() if line[:5] in ("E0000", "W0000", "I0000")]
