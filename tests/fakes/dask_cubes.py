"""Dask helpers of the cube tests: a cluster of their own and the comparison of two cubes."""

from __future__ import annotations

import warnings

import numpy as np
from distributed import LocalCluster

from geo_crime.cube.panel import Cube


def assert_same_cube(got: Cube, want: Cube) -> None:
    """Units, periods, measures, categories, coverage and common meta all equal."""
    assert got.units["unit_id"].tolist() == want.units["unit_id"].tolist()
    assert got.periods.equals(want.periods)
    assert got.freq == want.freq
    np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_allclose(got.severity, want.severity, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.harm, want.harm, rtol=1e-12, atol=1e-9)
    assert sorted(got.categories) == sorted(want.categories)
    for name, grid in want.categories.items():
        np.testing.assert_array_equal(got.categories[name], grid, err_msg=name)
    np.testing.assert_array_equal(got.complete, want.complete)
    for key, value in want.meta.items():
        assert got.meta[key] == value, key


def separate_cluster() -> LocalCluster:
    """A cluster of its own (2 worker processes) listening on 127.0.0.1, as one started
    elsewhere would be: commands reach it by its scheduler address only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
