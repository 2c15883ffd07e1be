"""Shared fixtures: a small real H3 unit set from the West LA crime slice."""

from __future__ import annotations

import os
import urllib.request

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest

from tests.fakes.h3_units import h3_units
from tests.fakes.shared_data import WESTLA, crime_file


@pytest.fixture(scope="session")
def westla_h3_units() -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Real West LA 2020-21 crimes binned to H3 res-8 cells, plus their empty 1-ring.

    Returns ``(units, y)`` with ``y`` the crime count per unit (zeros in the ring cells).
    """
    path = crime_file(WESTLA)
    if not path.exists():
        msg = f"real data file missing: {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    df = pd.read_csv(path, dtype=str, usecols=["LAT", "LON"])
    lat = df["LAT"].astype(float).to_numpy()
    lon = df["LON"].astype(float).to_numpy()
    keep = lat != 0
    cells = [h3.latlng_to_cell(a, b, 8) for a, b in zip(lat[keep], lon[keep], strict=True)]
    counts = pd.Series(cells).value_counts()
    ring: set[str] = set()
    for cell in counts.index:
        ring.update(h3.grid_disk(cell, 1))
    all_cells = sorted(ring)
    units = h3_units(all_cells)
    y = counts.reindex(all_cells).fillna(0).to_numpy(dtype=float)
    return units, y


@pytest.fixture(scope="session")
def incidents(tmp_path_factory) -> pd.DataFrame:
    """All real incidents (2020 slices and 2024 record), cleaned and scored, loaded once."""
    from geo_crime.core.config import default_crime_inputs
    from geo_crime.ingest import load_incidents
    from tests.fakes.shared_data import require_data

    require_data()
    frame, _ = load_incidents(default_crime_inputs(), cache=tmp_path_factory.mktemp("incidents"))
    return frame


@pytest.fixture
def server(records):
    """A fake open-data API on 127.0.0.1 serving the module's ``records``, checked for
    protocol violations when the test ends (test_fetch, test_fetch_integrity)."""
    from tests.fakes.portal import running_server

    with running_server(records) as httpd:
        yield httpd
    assert httpd.violations == []


@pytest.fixture
def opener() -> urllib.request.OpenerDirector:
    """An opener that ignores proxy variables: requests go straight to 127.0.0.1."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))
