"""Tests of geo_crime.stats.weights: neighbour definitions, islands, components, transformations."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo_crime.core.errors import ConfigError, DataError
from geo_crime.stats.weights import SpatialWeights, build_weights
from tests.fakes.h3_units import h3_units


def _neighbour_sets(w: SpatialWeights) -> dict[str, set[str]]:
    return {k: set(v) for k, v in w.graph.neighbors.items()}


def _square_grid(nx: int, ny: int, size: float = 100.0) -> gpd.GeoDataFrame:
    geoms = [
        box(i * size, j * size, (i + 1) * size, (j + 1) * size)
        for j in range(ny)
        for i in range(nx)
    ]
    ids = [f"r{j}c{i}" for j in range(ny) for i in range(nx)]
    return gpd.GeoDataFrame(
        {"unit_id": ids, "unit_type": "polygon"}, geometry=geoms, crs="EPSG:3310"
    ).to_crs("EPSG:4326")


def test_h3_neighbours_are_grid_disk_cells_present_in_units(westla_h3_units):
    units, _ = westla_h3_units
    w = build_weights(units)
    assert w.method == "h3"
    present = set(units["unit_id"])
    for cell, neigh in _neighbour_sets(w).items():
        expected = (set(h3.grid_disk(cell, 1)) - {cell}) & present
        assert neigh == expected
    assert list(w.unit_ids) == list(units["unit_id"])
    assert w.islands == []
    assert w.n_components == 1
    # symmetric and binary
    a = w.graph.sparse.toarray()
    assert np.array_equal(a, a.T)
    assert set(np.unique(a)) <= {0.0, 1.0}


def test_h3_rings_two_reaches_second_ring(westla_h3_units):
    units, _ = westla_h3_units
    w1 = build_weights(units, method="h3", rings=1)
    w2 = build_weights(units, method="h3", rings=2)
    assert w2.cardinalities.max() == 18
    assert (w2.cardinalities >= w1.cardinalities).all()
    assert w2.params == {"rings": 2}


def test_queen_on_hexagons_equals_h3_ring_one(westla_h3_units):
    units, _ = westla_h3_units
    wq = build_weights(units, method="queen")
    wh = build_weights(units, method="h3")
    assert _neighbour_sets(wq) == _neighbour_sets(wh)


def test_auto_uses_queen_without_h3_unit_type(westla_h3_units):
    units, _ = westla_h3_units
    w = build_weights(units.drop(columns="unit_type"))
    assert w.method == "queen"


def test_island_and_components_reported(westla_h3_units):
    units, _ = westla_h3_units
    far = h3.latlng_to_cell(34.30, -118.60, 8)  # Porter Ranch: nowhere near West LA
    more = pd.concat([units, h3_units([far])], ignore_index=True)
    w = build_weights(more)
    assert w.islands == [far]
    assert w.n_components == 2
    assert w.cardinalities[-1] == 0
    assert w.component_labels[-1] != w.component_labels[0]
    text = w.summary()
    assert "1 island: " + far in text
    assert "2 components" in text
    assert str(w) == text
    # the island keeps a zero row when row-standardised and its own cell in Gi* weights
    r = w.row_standardised().sparse.toarray()
    assert r[-1].sum() == 0
    np.testing.assert_allclose(r[:-1].sum(axis=1), 1.0)
    b = w.binary_with_self().sparse.toarray()
    assert b[-1, -1] == 1 and b[-1].sum() == 1
    np.testing.assert_array_equal(np.diag(b), 1.0)


def test_rook_and_queen_differ_on_squares():
    units = _square_grid(6, 6)
    rook = build_weights(units, method="rook")
    queen = build_weights(units, method="queen")
    assert rook.cardinalities.max() == 4
    assert queen.cardinalities.max() == 8
    assert _neighbour_sets(queen)["r2c2"] == {
        f"r{j}c{i}" for j in (1, 2, 3) for i in (1, 2, 3) if (i, j) != (2, 2)
    }
    assert "no islands" in rook.summary()


def test_distance_band_matches_brute_force_in_metres():
    units = _square_grid(8, 8)
    w = build_weights(units, method="distance", distance=150.0)  # rook + diagonal (141 m)
    xy = units.to_crs(3310).centroid
    coords = np.column_stack([xy.x, xy.y])
    d = np.hypot(*(coords[:, None, :] - coords[None, :, :]).transpose(2, 0, 1))
    expected = (d <= 150.0) & (d > 0)
    np.testing.assert_array_equal(w.graph.sparse.toarray() > 0, expected)
    assert w.params["distance"] == 150.0


def test_distance_default_gives_everyone_a_neighbour():
    units = _square_grid(8, 8)
    w = build_weights(units, method="distance")
    assert w.islands == []
    assert w.params["distance"] == pytest.approx(100.0, rel=1e-6)
    assert w.cardinalities.min() >= 1


def test_knn_has_k_neighbours():
    units = _square_grid(7, 7)
    w = build_weights(units, method="knn", k=5)
    assert (w.cardinalities == 5).all()
    assert list(w.unit_ids) == list(units["unit_id"])


def test_bad_inputs():
    units = _square_grid(3, 3)
    with pytest.raises(ConfigError):
        build_weights(units, method="triangles")
    with pytest.raises(DataError, match="not H3"):
        build_weights(units, method="h3")
    dup = units.copy()
    dup.loc[1, "unit_id"] = dup.loc[0, "unit_id"]
    with pytest.raises(DataError, match="not unique"):
        build_weights(dup)
    with pytest.raises(ConfigError):
        build_weights(units, method="distance", distance=-5.0)
    with pytest.raises(ConfigError):
        build_weights(units, method="knn", k=20)
