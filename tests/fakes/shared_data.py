"""Locating the real LAPD data for tests: fail loudly under CI, skip only on a bare laptop."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from geo_crime.core import config
from geo_crime.settings import StudySettings


def data_dir() -> Path:
    """The shared data folder (``$GEO_CRIME_DATA`` or ``<repo>/../shared/data``), which may be
    missing: the package's own locator, :func:`geo_crime.core.config.data_dir`."""
    return config.data_dir(must_exist=False)


def require_data() -> Path:
    """The shared data folder; a test failure under ``CI=true`` when it is missing."""
    path = data_dir()
    if not (path / "lapd_crime").is_dir():
        message = f"real LAPD data not found at {path} (set GEO_CRIME_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def crime_file(name: str) -> Path:
    """A file under ``lapd_crime/`` of the shared data."""
    return require_data() / "lapd_crime" / name


IVANCO = "Crime_Data_from_2020_to_Present__Ivanco19_first10k.csv.gz"
WESTLA = "Crime_Data_from_2020_to_Present__bigdataforsocialjustice_WestLA2020_modified.csv.gz"
REDUCED_DIR = "kyleW145_2024_by_area"


def westla_rd_study(statistics: list[str]) -> StudySettings:
    """A small real study: West LA (area 8), March to August 2020, weekly, reporting districts."""
    return StudySettings(
        name="westla",
        areas=[8],
        start="2020-03-01",
        end="2020-09-01",
        units=["rd"],
        freq="W",
        forecast=False,
        statistics=statistics,
    )
