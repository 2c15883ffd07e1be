"""Settings shared by every stage: where the data lives, where outputs and caches go.

Real LAPD data is never copied into the repository. Code finds it through the environment variable
``GEO_CRIME_DATA``, which defaults to ``../shared/data`` relative to the repository root (the layout
of a development checkout). Caches default to ``~/.cache/geo_crime`` and can be moved with
``GEO_CRIME_CACHE``.
"""

from __future__ import annotations

import os
from pathlib import Path

from geo_crime.core.errors import ConfigError

#: Repository root when running from a checkout (the folder holding ``pyproject.toml``).
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Equal-area CRS used for every area and distance (California Albers).
EQUAL_AREA_CRS = "EPSG:3310"

#: Storage and export CRS (WGS84, lon/lat).
STORAGE_CRS = "EPSG:4326"

#: Time zone the LAPD records are kept in. Timestamps stay naive but mean local time here.
LOCAL_TIMEZONE = "America/Los_Angeles"

#: The k-anonymity default: every public output suppresses a unit with fewer incidents than
#: this (:mod:`geo_crime.publish.privacy`; a run's ``k_anonymity`` setting, ``--k`` on the command
#: line).
DEFAULT_K = 3


def data_dir(*, must_exist: bool = True) -> Path:
    """Return the folder holding the real LAPD data (``GEO_CRIME_DATA`` or ``../shared/data``).

    Parameters
    ----------
    must_exist
        Raise :class:`~geo_crime.core.errors.ConfigError` when the folder is missing.

    Returns
    -------
    pathlib.Path
        The resolved data folder.
    """
    env = os.environ.get("GEO_CRIME_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    path = path.expanduser().resolve()
    if must_exist and not path.is_dir():
        raise ConfigError(
            f"data folder {path} not found: set GEO_CRIME_DATA to the folder holding lapd_crime/ "
            "and boundaries/"
        )
    return path


def cache_dir() -> Path:
    """Return (and create) the cache folder (``GEO_CRIME_CACHE`` or ``~/.cache/geo_crime``)."""
    env = os.environ.get("GEO_CRIME_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "geo_crime"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_crime_inputs() -> list[Path]:
    """The real crime files shipped beside the project: the 2020 slices and the 2024 area files."""
    root = data_dir() / "lapd_crime"
    files = sorted(root.glob("*.csv.gz")) + sorted(
        (root / "kyleW145_2024_by_area").glob("*.json.gz")
    )
    if not files:
        raise ConfigError(f"no crime files found under {root}")
    return files
