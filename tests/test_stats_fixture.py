"""The hot-spot statistics on a bundled lattice whose answers are known by hand.

The fixture is :mod:`tests.fakes.lattice` (36 unit squares, rook contiguity); its docstring works
out every expected value from the published formulas: Moran's I of a checkerboard (-1) and of
two halves (22/27), the local Moran's I of the checkerboard (-35/36 everywhere, esda's
normalisation) and the Gi* z-scores of a single hot cell (31/sqrt(155) in its neighbourhood).
Each statistic is also checked against esda called directly on libpysal's own rook weights, to
1e-12. No real data and no network: the lattice is built in memory.
"""

from __future__ import annotations

import numpy as np
import pytest

from geo_crime.stats.hotspots import getis_ord_gi_star, global_moran, local_moran
from geo_crime.stats.weights import build_weights
from tests.fakes import lattice

TOL = 1e-12


@pytest.fixture(scope="module")
def units():
    return lattice.lattice_units()


@pytest.fixture(scope="module")
def rook(units):
    return build_weights(units, method="rook")


@pytest.fixture(scope="module")
def esda_rook(units):
    """libpysal's own rook weights of the lattice (the W that esda takes)."""
    libpysal = pytest.importorskip("libpysal")
    return libpysal.weights.Rook.from_dataframe(units, use_index=False, silence_warnings=True)


def test_the_lattice_is_what_its_docstring_says(units, rook):
    assert len(units) == lattice.N == 36
    assert units["unit_id"].tolist()[:7] == ["r0c0", "r0c1", "r0c2", "r0c3", "r0c4", "r0c5", "r1c0"]
    # rook neighbours: 2 in the 4 corners, 3 on the 16 other border cells, 4 on the 16 inner ones
    degree = rook.graph.cardinalities.reindex(units["unit_id"]).to_numpy()
    np.testing.assert_array_equal(degree, lattice.rook_degree())
    assert sorted(np.bincount(degree).tolist()) == [0, 0, 4, 16, 16]
    assert rook.islands == [] and rook.n_components == 1
    assert lattice.checkerboard().sum() == lattice.two_halves().sum() == 18
    assert lattice.single_hot_cell().sum() == 1


def test_global_moran_of_a_checkerboard_is_minus_one(units, rook):
    result = global_moran(units, lattice.checkerboard(), weights=rook, permutations=99)
    moran_i, expected_i = result.I, result.EI
    assert moran_i == pytest.approx(lattice.CHECKERBOARD_I, abs=TOL)
    assert expected_i == pytest.approx(lattice.EXPECTED_I, abs=TOL)
    assert result.z_norm < -5  # perfect dispersion is far from chance
    assert result.n == 36


def test_global_moran_of_two_halves_is_22_27(units, rook):
    result = global_moran(units, lattice.two_halves(), weights=rook, permutations=99)
    moran_i = result.I
    assert moran_i == pytest.approx(lattice.TWO_HALVES_I, abs=TOL)
    assert moran_i == pytest.approx(0.8148148148148148, abs=TOL)
    assert result.z_norm > 5


def test_local_moran_of_a_checkerboard_is_minus_35_36_everywhere(units, rook):
    y = lattice.checkerboard()
    result = local_moran(units, y, weights=rook, permutations=99)
    np.testing.assert_allclose(result.Is, lattice.CHECKERBOARD_LOCAL_I, rtol=0, atol=TOL)
    # every cell is an outlier: High-Low where y = 1, Low-High where y = 0
    np.testing.assert_array_equal(result.q, np.where(y == 1, lattice.HIGH_LOW, lattice.LOW_HIGH))
    np.testing.assert_allclose(result.lag_std, -result.y_std, rtol=0, atol=TOL)


def test_gi_star_of_a_single_hot_cell(units, rook):
    y = lattice.single_hot_cell()
    result = getis_ord_gi_star(units, y, weights=rook, permutations=99)
    want = lattice.expected_gi_star_z()
    np.testing.assert_allclose(result.z, want, rtol=0, atol=TOL)
    # the closed forms, by place: the hot cell and its 4 neighbours, then the other cells
    ids = units["unit_id"].tolist()
    z = dict(zip(ids, result.z, strict=True))
    for cell in ("r2c2", "r1c2", "r3c2", "r2c1", "r2c3"):
        assert z[cell] == pytest.approx(lattice.GI_Z_HOT, abs=TOL)
        assert z[cell] == pytest.approx(2.4899799195977463, abs=TOL)
    assert z["r4c4"] == pytest.approx(lattice.GI_Z_INNER, abs=TOL)
    assert z["r0c3"] == pytest.approx(lattice.GI_Z_BORDER, abs=TOL)
    assert z["r5c5"] == pytest.approx(lattice.GI_Z_CORNER, abs=TOL)
    # G*_i: the share of the total of y in i's neighbourhood (all of it, or none)
    near = want > 0
    np.testing.assert_allclose(result.Gs, near.astype(float), rtol=0, atol=TOL)
    assert int(near.sum()) == 5


def test_the_statistics_agree_with_esda(units, rook, esda_rook):
    esda = pytest.importorskip("esda")
    for y in (lattice.checkerboard(), lattice.two_halves(), lattice.single_hot_cell()):
        ours = global_moran(units, y, weights=rook, permutations=0)
        w = esda_rook
        w.transform = "r"
        theirs = esda.Moran(y, w, permutations=0)
        moran_i = ours.I
        assert moran_i == pytest.approx(theirs.I, abs=TOL)
        assert ours.VI_norm == pytest.approx(theirs.VI_norm, abs=TOL)
        assert ours.z_norm == pytest.approx(theirs.z_norm, abs=1e-9)

    y = lattice.checkerboard()
    w.transform = "r"
    theirs_local = esda.Moran_Local(y, w, permutations=0)
    ours_local = local_moran(units, y, weights=rook, permutations=99)
    np.testing.assert_allclose(ours_local.Is, theirs_local.Is, rtol=0, atol=TOL)
    np.testing.assert_array_equal(ours_local.q, theirs_local.q)

    y = lattice.single_hot_cell()
    w.transform = "b"
    theirs_gi = esda.G_Local(y, w, star=True, transform="B", permutations=0)
    ours_gi = getis_ord_gi_star(units, y, weights=rook, permutations=99)
    np.testing.assert_allclose(ours_gi.z, theirs_gi.Zs, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours_gi.Gs, theirs_gi.Gs, rtol=0, atol=TOL)
