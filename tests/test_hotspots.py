"""Tests of geo_crime.stats.hotspots against textbook formulas, hand-made lattices and worked
examples."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from shapely.geometry import box

from geo_crime.core.errors import ConfigError, DataError, TooFewUnitsError
from geo_crime.stats.hotspots import (
    GI_BIN_LABELS,
    getis_ord_gi_star,
    gi_star_table,
    global_moran,
    lisa_table,
    local_moran,
)
from geo_crime.stats.incremental import incremental_moran
from geo_crime.stats.significance import benjamini_hochberg, confidence_bins, pseudo_p_values
from geo_crime.stats.weights import build_weights
from tests.fakes.h3_units import h3_units


def _dense_h3_adjacency(cells: list[str]) -> np.ndarray:
    """Binary 1-ring adjacency straight from h3, independent of the module under test."""
    pos = {c: i for i, c in enumerate(cells)}
    a = np.zeros((len(cells), len(cells)))
    for c, i in pos.items():
        for nb in h3.grid_disk(c, 1):
            if nb != c and nb in pos:
                a[i, pos[nb]] = 1.0
    return a


def _lattice(n_rows: int, n_cols: int, size: float = 100.0) -> gpd.GeoDataFrame:
    """Square cells, row 0 at the top, ids ``r{row}c{col}``, row-major order."""
    geoms, ids = [], []
    for r in range(n_rows):
        for c in range(n_cols):
            top = (n_rows - r) * size
            geoms.append(box(c * size, top - size, (c + 1) * size, top))
            ids.append(f"r{r}c{c}")
    return gpd.GeoDataFrame(
        {"unit_id": ids, "unit_type": "polygon"}, geometry=geoms, crs="EPSG:3310"
    ).to_crs("EPSG:4326")


# ------------------------------------------------------------------ textbook formulas, real data


def test_global_moran_matches_textbook_formula(westla_h3_units):
    units, y = westla_h3_units
    a = _dense_h3_adjacency(list(units["unit_id"]))
    w = a / a.sum(axis=1, keepdims=True)  # row-standardised (no islands in this set)
    n = len(y)
    z = y - y.mean()
    s0 = w.sum()
    i_text = n / s0 * (z @ w @ z) / (z @ z)
    s1 = 0.5 * ((w + w.T) ** 2).sum()
    s2 = ((w.sum(axis=1) + w.sum(axis=0)) ** 2).sum()
    ei = -1.0 / (n - 1)
    vi = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n * n - 1) * s0 * s0) - ei * ei
    z_norm = (i_text - ei) / np.sqrt(vi)

    gm = global_moran(units, y, permutations=99, seed=1)
    assert abs(gm.I - i_text) < 1e-9
    assert abs(gm.EI - ei) < 1e-12
    assert gm.VI_norm == pytest.approx(vi, abs=1e-9)
    assert gm.z_norm == pytest.approx(z_norm, abs=1e-9)
    assert gm.p_norm == pytest.approx(2 * stats.norm.sf(abs(z_norm)), abs=1e-12)
    # Moran scatterplot: standardised y against its lag; the OLS slope is I
    np.testing.assert_allclose(gm.y_std, z / y.std(), atol=1e-12)
    np.testing.assert_allclose(gm.lag_std, w @ (z / y.std()), atol=1e-12)
    assert np.polyfit(gm.y_std, gm.lag_std, 1)[0] == pytest.approx(i_text, abs=1e-9)
    # West LA crime is strongly clustered
    assert gm.I > 0.3 and gm.p_sim == pytest.approx(0.01) and gm.z_sim > 5


def test_gi_star_matches_textbook_formula(westla_h3_units):
    units, y = westla_h3_units
    a = _dense_h3_adjacency(list(units["unit_id"])) + np.eye(len(y))  # binary incl. self
    n = len(y)
    xbar = y.mean()
    s = np.sqrt((y**2).mean() - xbar**2)
    wsum = a.sum(axis=1)
    w2sum = (a**2).sum(axis=1)
    z_text = (a @ y - xbar * wsum) / (s * np.sqrt((n * w2sum - wsum**2) / (n - 1)))

    gi = getis_ord_gi_star(units, y, permutations=0)
    np.testing.assert_allclose(gi.z, z_text, rtol=0, atol=1e-9)
    np.testing.assert_allclose(gi.Gs, (a @ y) / y.sum(), atol=1e-12)
    np.testing.assert_allclose(gi.p_norm, 2 * stats.norm.sf(np.abs(z_text)), atol=1e-12)
    expected_bins = np.sign(z_text) * (
        (gi.p_norm < 0.10).astype(int) + (gi.p_norm < 0.05) + (gi.p_norm < 0.01)
    )
    np.testing.assert_array_equal(gi.gi_bin, expected_bins)
    assert gi.gi_bin.max() == 3  # the busy cells are 99% hot spots


def test_gi_star_table_and_permutation_inference(westla_h3_units):
    units, y = westla_h3_units
    table = gi_star_table(units, y, permutations=199, seed=3, inference="permutation")
    assert list(table["unit_id"]) == list(units["unit_id"])
    assert table["unit_id"].is_unique
    assert isinstance(table, gpd.GeoDataFrame) and table.crs.to_epsg() == 4326
    for col in ("gi_z", "gi_p", "gi_bin", "gi_label", "geometry"):
        assert col in table
    assert set(table["gi_bin"]) <= set(GI_BIN_LABELS)
    assert (table["gi_label"] == table["gi_bin"].map(GI_BIN_LABELS)).all()
    assert table["gi_p"].min() >= 1 / 200


def test_local_moran_reproducible_and_leaves_global_rng_alone(westla_h3_units):
    units, y = westla_h3_units
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    a = local_moran(units, y, permutations=199, seed=7)
    after = np.random.random()
    assert before == after
    b = local_moran(units, y, permutations=199, seed=7)
    c = local_moran(units, y, permutations=199, seed=8)
    np.testing.assert_array_equal(a.p, b.p)
    assert not np.array_equal(a.p, c.p)


def test_local_moran_alternatives(westla_h3_units):
    units, y = westla_h3_units
    lm = local_moran(units, y, permutations=199, seed=2)
    np.testing.assert_allclose(lm.p, np.minimum(1, 2 * np.minimum(lm.p_greater, lm.p_lesser)))
    assert (lm.p >= lm.p_directed - 1e-12).all()  # esda's directed p is one-sided
    greater = local_moran(units, y, permutations=199, seed=2, alternative="greater")
    np.testing.assert_allclose(greater.p, lm.p_greater)
    # 'greater' only finds clusters (HH, LL), never outliers
    assert set(greater.codes[greater.significant]) <= {1, 3}
    with pytest.raises(ConfigError):
        local_moran(units, y, alternative="both")


def test_pseudo_p_values_by_hand():
    sims = np.array([[1.0], [2.0], [3.0], [4.0]])  # R = 4 permutations, one unit
    obs = np.array([3.5])
    assert pseudo_p_values(obs, sims, "greater")[0] == pytest.approx((1 + 1) / 5)
    assert pseudo_p_values(obs, sims, "lesser")[0] == pytest.approx((3 + 1) / 5)
    assert pseudo_p_values(obs, sims, "two-sided")[0] == pytest.approx(0.8)


# ------------------------------------------------------------------ LISA quadrants by hand


def test_lisa_quadrants_on_hand_made_lattice():
    # 6 x 6 squares, queen contiguity. A 3 x 3 block of 10s in the top-left corner, one 10 in the
    # bottom-right corner, 1 everywhere else. Mean = (10 * 10 + 26 * 1) / 36 = 3.5.
    # Quadrant = sign of (value - 3.5) and of (mean neighbour value - 3.5):
    #   r2c2: neighbours hold three 10s and five 1s -> 35/8 = 4.375 > 3.5        -> High-High
    #   r0c3: neighbours r0c2, r1c2 (10) and r0c4, r1c3, r1c4 (1) -> 23/5 = 4.6  -> Low-High
    #   r2c3: neighbours hold two 10s and six 1s -> 26/8 = 3.25 < 3.5            -> Low-Low
    #   r3c0: neighbours r2c0, r2c1 (10) and r3c1, r4c0, r4c1 (1) -> 23/5 = 4.6  -> Low-High
    #   r5c5: a 10 whose three neighbours are 1s                                 -> High-Low
    units = _lattice(6, 6)
    high = {(r, c) for r in range(3) for c in range(3)} | {(5, 5)}
    y = np.array([10.0 if (r, c) in high else 1.0 for r in range(6) for c in range(6)])
    hh, lh, ll, hl = 1, 2, 3, 4
    expected = np.array(
        [
            [hh, hh, hh, lh, ll, ll],
            [hh, hh, hh, lh, ll, ll],
            [hh, hh, hh, ll, ll, ll],
            [lh, lh, ll, ll, ll, ll],
            [ll, ll, ll, ll, ll, ll],
            [ll, ll, ll, ll, ll, hl],
        ]
    )
    lm = local_moran(units, y, weights=build_weights(units, method="queen"), seed=0)
    np.testing.assert_array_equal(lm.q.reshape(6, 6), expected)
    # labels follow codes; not-significant units get 0 / "Not Significant"
    np.testing.assert_array_equal(lm.codes, np.where(lm.significant, lm.q, 0))
    names = {0: "Not Significant", 1: "High-High", 2: "Low-High", 3: "Low-Low", 4: "High-Low"}
    assert list(lm.labels) == [names[c] for c in lm.codes]
    # the core of the block is a significant High-High cluster
    assert lm.labels[7] == "High-High"  # r1c1
    table = lm.table
    assert list(table["unit_id"][:3]) == ["r0c0", "r0c1", "r0c2"]
    assert (table["cluster"] == lm.labels).all() and (table["cluster_code"] == lm.codes).all()
    # same table through the convenience function
    again = lisa_table(units, y, weights=build_weights(units, method="queen"), seed=0)
    assert (again["cluster"] == table["cluster"]).all()


def test_lisa_fdr_is_stricter(westla_h3_units):
    units, y = westla_h3_units
    raw = local_moran(units, y, permutations=199, seed=4)
    fdr = local_moran(units, y, permutations=199, seed=4, fdr=True)
    assert fdr.significant.sum() <= raw.significant.sum()
    assert not (fdr.significant & ~raw.significant).any()
    np.testing.assert_allclose(fdr.p_adjusted, benjamini_hochberg(raw.p, 0.05)[1])


# ------------------------------------------------------------------ FDR and bins


def test_benjamini_hochberg_worked_example():
    # Classic example, q = 0.05. Sorted: 0.005 <= 1/5 q = 0.01, 0.01 <= 0.02, 0.03 <= 0.03,
    # 0.04 <= 0.04, 0.20 > 0.05 -> the four smallest are rejected.
    # Adjusted: 0.005*5/1 = 0.025, 0.01*5/2 = 0.025, 0.03*5/3 = 0.05, 0.04*5/4 = 0.05, 0.2.
    p = [0.01, 0.04, 0.03, 0.005, 0.20]
    reject, adjusted = benjamini_hochberg(p, 0.05)
    np.testing.assert_array_equal(reject, [True, True, True, True, False])
    np.testing.assert_allclose(adjusted, [0.025, 0.05, 0.05, 0.025, 0.20])


def test_benjamini_hochberg_1995_paper_example():
    # Benjamini & Hochberg (1995), section 4: 15 p-values, q = 0.05 rejects the four smallest
    # (0.0095 <= 4/15 * 0.05 = 0.0133 but 0.0201 > 5/15 * 0.05 = 0.0167).
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
         0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000]  # fmt: skip
    reject, adjusted = benjamini_hochberg(p, 0.05)
    assert reject.sum() == 4 and reject[:4].all()
    assert adjusted[3] == pytest.approx(0.0095 * 15 / 4)
    # NaN is ignored (never rejected, not counted)
    r2, a2 = benjamini_hochberg([0.01, np.nan, 0.04, 0.03, 0.005, 0.20], 0.05)
    np.testing.assert_array_equal(r2, [True, False, True, True, True, False])
    assert np.isnan(a2[1])


def test_confidence_bins():
    z = np.array([3.0, 2.2, 1.7, 0.5, -1.7, -2.2, -3.0])
    p = 2 * stats.norm.sf(np.abs(z))
    np.testing.assert_array_equal(confidence_bins(z, p), [3, 2, 1, 0, -1, -2, -3])
    # BH at each level, m = 7; sorted p = .0027 .0027 .0278 .0278 .0891 .0891 .617.
    #   0.01: .0027 <= 2/7 * .01 = .00286 -> the two |z| = 3 are 99% bins
    #   0.05: .0278 <= 4/7 * .05 = .0286 -> the |z| = 2.2 are 95% bins
    #   0.10: .0891 > 6/7 * .10 = .0857 and > 5/7 * .10 -> the |z| = 1.7 are not significant
    np.testing.assert_array_equal(confidence_bins(z, p, fdr=True), [3, 2, 0, 0, 0, -2, -3])


# ------------------------------------------------------------------ guards


def test_too_few_units_error_names_the_count():
    units = _lattice(5, 5)  # 25 units
    y = np.arange(25, dtype=float)
    for func in (global_moran, local_moran, getis_ord_gi_star, incremental_moran):
        with pytest.raises(TooFewUnitsError, match="25"):
            func(units, y)


def test_bad_y():
    units = _lattice(6, 6)
    with pytest.raises(DataError, match="length 36"):
        global_moran(units, np.ones(35))
    with pytest.raises(DataError, match="constant"):
        local_moran(units, np.ones(36))
    y = np.arange(36, dtype=float)
    y[3] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        getis_ord_gi_star(units, y)


# ------------------------------------------------------------------ incremental Moran


def test_incremental_moran_peaks_at_the_built_scale():
    # 30 x 30 cells of 100 m; y is a checkerboard of 800 m x 800 m blocks (plus noise). Moran's
    # z rises while the band stays inside a block and falls once bands reach the opposite
    # blocks: the first peak is at half the block size, 400 m.
    units = _lattice(30, 30)
    rng = np.random.default_rng(0)
    rows, cols = np.divmod(np.arange(900), 30)
    y = 10.0 * (((rows // 8) + (cols // 8)) % 2) + rng.normal(0, 1, 900)
    res = incremental_moran(units, y, n_steps=12)
    assert res.distances[0] == pytest.approx(100.0, rel=1e-6)  # every unit has a neighbour
    np.testing.assert_allclose(np.diff(res.distances), 100.0, rtol=1e-6)
    assert res.chosen_by == "first_peak"
    assert res.first_peak == pytest.approx(400.0, rel=1e-6)
    assert res.distance == res.first_peak
    k = int(res.peaks[0])
    assert res.z[k] > res.z[k - 1] and res.z[k] > res.z[k + 1]
    assert (res.n_islands == 0).all()


def test_incremental_moran_falls_back_to_max_z_without_peak():
    units = _lattice(8, 8)
    rows, cols = np.divmod(np.arange(64), 8)
    y = rows + cols + 0.0  # a smooth gradient: z keeps rising over these short bands
    res = incremental_moran(units, y, distances=[101.0, 150.0, 201.0, 290.0])
    assert len(res.peaks) == 0
    assert res.chosen_by == "max_z"
    assert res.distance == res.distances[int(np.argmax(res.z))]
    with pytest.raises(ConfigError):
        incremental_moran(units, y, distances=[200.0, 100.0])


def test_island_is_flagged_and_never_significant(westla_h3_units):
    units, y = westla_h3_units
    far = h3.latlng_to_cell(34.30, -118.60, 8)
    more = pd.concat([units, h3_units([far])], ignore_index=True)
    y_more = np.append(y, y.max() * 3)  # an extreme value with nobody around it
    lm = local_moran(more, y_more, permutations=199)
    assert lm.islands[-1] and lm.islands[:-1].sum() == 0
    assert lm.p[-1] == 1.0 and lm.labels[-1] == "Not Significant"
    assert bool(lm.table["island"].iloc[-1])
    gi = getis_ord_gi_star(more, y_more, permutations=0)
    assert gi.table["n_neighbours"].iloc[-1] == 0
