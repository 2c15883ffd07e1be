"""Feedback while a run works: one display for the run, bars of fits and epochs, and a quiet
TensorFlow (unless --debug)."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from geo_crime.core import progress
from geo_crime.core.errors import ConfigError
from geo_crime.forecast import ForecastConfig, evaluate
from geo_crime.pipeline.run import RunResult, Stage
from geo_crime.settings import RunSettings, StudySettings
from tests.fakes.forecast_cubes import synthetic_cube

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
        "from tests.fakes.forecast_cubes import synthetic_cube\n"
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


def test_debug_restores_tensorflow_logs():
    """``geo-crime --debug`` leaves TensorFlow's C++ and Python logs at their chatty defaults."""
    script = (
        "import os\n"
        "from geo_crime.cli import app\n"
        "app(['--debug', 'run', '--help'], standalone_mode=False)\n"
        "from geo_crime.forecast.network import import_keras\n"
        "import_keras()\n"
        "import tensorflow as tf\n"
        "print(os.environ['GEO_CRIME_DEBUG'], os.environ['TF_CPP_MIN_LOG_LEVEL'],"
        " tf.get_logger().level)\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    clean.pop("GEO_CRIME_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    debug, level, logger_level = done.stdout.split()[-3:]
    assert (debug, level) == ("1", "0")
    assert int(logger_level) < logging.ERROR  # not silenced to errors only


# --- the display of a whole run ---------------------------------------------------------------


def _console(terminal: bool) -> Console:
    """A console writing into a string, as on a terminal or as in a pipe (rich's own choice)."""
    colours = "standard" if terminal else "auto"
    return Console(file=io.StringIO(), force_terminal=terminal, width=100, color_system=colours)


def _stages(console: Console, labels: list[str], **display) -> RunResult:
    """Run empty stages through the pipeline's stage timer inside a run display."""
    result = RunResult(Path("."))
    with progress.RunDisplay(console, **display):
        for label in labels:
            with Stage(label, result, console):
                pass
    return result


def test_without_a_terminal_each_stage_prints_two_plain_lines():
    console = _console(terminal=False)
    result = _stages(console, ["ingest", "westla: cube rd [x]"], stages=2)
    text = console.file.getvalue()
    assert "\x1b" not in text  # no escape codes in CI logs or pipes
    lines = text.splitlines()
    assert lines[0] == "ingest ..." and lines[2] == "westla: cube rd [x] ..."
    assert re.fullmatch(r"  done in \d+\.\d s", lines[1]) and len(lines) == 4
    assert list(result.timings) == ["ingest", "westla: cube rd [x]"]


def test_a_stage_outside_a_run_prints_the_same_plain_lines():
    console = _console(terminal=False)
    with Stage("coverage", RunResult(Path(".")), console):
        progress.step(1, 2, "ignored")  # no display: a no-op
    assert console.file.getvalue().splitlines()[0] == "coverage ..."


def test_quiet_prints_nothing_even_on_a_terminal():
    console = _console(terminal=True)
    with progress.RunDisplay(console, mode="quiet") as display:
        with Stage("ingest", RunResult(Path(".")), console):
            progress.fits(1, 3, "keras, origin 2024-01-01")
            progress.epoch(2, 30)
        assert progress.current_display() is display
    assert console.file.getvalue() == ""
    assert progress.current_display() is None


def test_the_live_display_shows_the_run_the_stage_its_steps_and_epochs():
    console = _console(terminal=True)
    result = RunResult(Path("."))
    with progress.RunDisplay(console, title="run demo", stages=1) as display:
        assert display.mode == "live"
        with Stage("westla: statistics rd", result, console):
            for stat in progress.steps(["moran", "gi"], "statistics"):
                assert stat in ("moran", "gi")
                display.live.refresh()
                assert stat != "gi" or "1/2 statistics" in console.file.getvalue()
        # the forecast stage's own bars pass everything on to the run's display: a second live
        # display would raise rich's LiveError
        with (
            Stage("westla: forecast rd", result, console),
            progress.BarReporter("forecast rd", console) as bar,
            progress.reporting(bar),
        ):
            progress.fits(1, 4, "keras, origin 2021-02-15")
            progress.epoch(7, 30)
            display.live.refresh()
    text = console.file.getvalue()
    assert "\x1b[" in text  # drawn live, in colour
    for shown in ("run demo", "0/1 stages", "westla: statistics rd", "1/4 fits", "7/30"):
        assert shown in text, shown
    assert "keras, origin 2021-02-15" in text
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert re.search(r"done westla: statistics rd in \d+\.\d s", plain)
    assert re.search(r"done westla: forecast rd in \d+\.\d s", plain)
    # more stages than expected: the run's bar grows instead of overflowing
    assert display.done == display.total == 2


def test_a_failed_stage_is_said_so_on_the_live_display():
    console = _console(terminal=True)
    result = RunResult(Path("."))
    with (
        pytest.raises(ValueError, match="boom"),
        progress.RunDisplay(console, stages=3),
        Stage("coverage", result, console),
    ):
        raise ValueError("boom")
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue())
    assert re.search(r"failed coverage after \d+\.\d s", plain)
    assert "coverage" in result.timings


def test_steps_report_each_item_and_skip_reporters_without_steps():
    recorder = progress.RecordingReporter()
    with progress.reporting(recorder):
        items = list(progress.steps(["moran", "lisa", "gi"], "statistics"))
    assert items == ["moran", "lisa", "gi"]
    assert recorder.step_calls == [
        (0, 3, "moran", "statistics"),
        (1, 3, "lisa", "statistics"),
        (2, 3, "gi", "statistics"),
        (3, 3, "", "statistics"),
    ]

    class FitsOnly:
        def fits(self, done, total, label):
            pass

        def epoch(self, done, total):
            pass

    with progress.reporting(FitsOnly()):
        progress.step(1, 2, "x")  # an older reporter: skipped, no AttributeError


def test_expected_stages_count_the_stages_of_a_run():
    settings = RunSettings(
        studies=[
            StudySettings(name="a", units=["h3:8", "rd"]),
            StudySettings(name="b", units=["rd"], forecast=False),
        ]
    )
    # ingest, division check, coverage; 5 per forecast unit type, 4 without; report
    assert Stage.expected(settings) == 3 + 5 + 5 + 4 + 1


def test_a_run_reports_steps_for_ingest_statistics_and_outputs(tmp_path, monkeypatch):
    """Every stage that can take seconds moves a bar: files read, statistics, outputs. (The
    same small run checks that the maps carry the web tiles the run asks for.)"""
    from geo_crime.pipeline import run_pipeline
    from tests.fakes.shared_data import WESTLA, crime_file, westla_rd_study

    calls: list[tuple[int, int, str, str]] = []
    monkeypatch.setattr(
        progress.RunDisplay,
        "step",
        lambda self, done, total, label, unit="steps": calls.append((done, total, label, unit)),
    )
    settings = RunSettings(
        inputs=[str(crime_file(WESTLA))],
        outputs=str(tmp_path),
        name="steps",
        permutations=9,
        cache=False,
        map_tiles="osm",
        studies=[westla_rd_study(["moran", "gi"])],
    )
    result = run_pipeline(settings, quiet=True)
    name = crime_file(WESTLA).name
    assert calls[:4] == [
        (0, 3, f"read {name}", "steps"),
        (1, 3, "clean", "steps"),
        (2, 3, "score severity", "steps"),
        (3, 3, "", "steps"),
    ]
    stats = [c for c in calls if c[3] == "statistics"]
    assert stats == [
        (0, 2, "moran", "statistics"),
        (1, 2, "gi", "statistics"),
        (2, 2, "", "statistics"),
    ]
    outputs = [c[2] for c in calls if c[3] == "outputs"]
    assert outputs == ["map", "GIS layers", "figures", ""]
    html = (result.folder / "public" / "westla" / "map_rd.html").read_text(encoding="utf-8")
    assert "tile.openstreetmap.org" in html and "openstreetmap.org/copyright" in html
    with pytest.raises(ConfigError, match="map_tiles"):
        RunSettings.from_sources(map_tiles="google")
