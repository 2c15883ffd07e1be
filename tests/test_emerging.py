"""Tests of geo_crime.stats.emerging: Mann-Kendall, space-time Gi* and the 17 ArcGIS categories."""

from __future__ import annotations

import warnings

import esda
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from shapely.geometry import box

from geo_crime.core.errors import ConfigError, DataError, TooFewUnitsError
from geo_crime.stats.emerging import (
    CATEGORIES,
    CATEGORY_COLOURS,
    classify_emerging,
    emerging_hotspots,
    mann_kendall,
    space_time_gi_star,
)
from geo_crime.stats.weights import build_weights

# ------------------------------------------------------------------ Mann-Kendall


def test_mann_kendall_hand_computed_with_ties():
    # x = 1 2 2 3 1. Pairs i<j, sign(x_j - x_i):
    #   from x0=1: + + + 0 = 3;  x1=2: 0 + - = 0;  x2=2: + - = 0;  x3=3: - = -1   -> S = 2
    # var S = [5*4*15 - (2*1*9 for the two 1s) - (2*1*9 for the two 2s)] / 18 = 264/18
    # z = (S - 1) / sqrt(var S); tau-b = S / sqrt(n0 (n0 - n1)) = 2 / sqrt(10 * 8)
    mk = mann_kendall([1, 2, 2, 3, 1])
    assert mk.s == 2
    assert mk.var_s == pytest.approx(264 / 18)
    assert mk.z == pytest.approx(1 / np.sqrt(264 / 18))
    assert mk.p == pytest.approx(2 * stats.norm.sf(1 / np.sqrt(264 / 18)))
    assert mk.tau == pytest.approx(2 / np.sqrt(80))
    assert mk.tau == pytest.approx(stats.kendalltau(np.arange(5), [1, 2, 2, 3, 1]).statistic)


def test_mann_kendall_hand_computed_decreasing_with_ties():
    # x = 3 3 3 1 1 2: the three 3s each see (1, 1, 2) below them -> -9; the 1s see (0, +1), (+1)
    # -> +2; S = -7. var S = [6*5*17 - 3*2*11 (three 3s) - 2*1*9 (two 1s)] / 18 = 426/18.
    mk = mann_kendall([3, 3, 3, 1, 1, 2])
    assert mk.s == -7
    assert mk.var_s == pytest.approx(426 / 18)
    assert mk.z == pytest.approx(-6 / np.sqrt(426 / 18))


def test_mann_kendall_vectorised_and_degenerate():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 5, size=(50, 30)).astype(float)
    x[0] = np.arange(30)  # strictly increasing: S = n(n-1)/2, var = n(n-1)(2n+5)/18
    x[1] = 4.0  # constant: no trend
    mk = mann_kendall(x)
    assert mk.s[0] == 435 and mk.var_s[0] == pytest.approx(30 * 29 * 65 / 18)
    assert mk.z[0] == pytest.approx(434 / np.sqrt(30 * 29 * 65 / 18))
    assert mk.z[1] == 0 and mk.p[1] == 1 and np.isnan(mk.tau[1])
    for i in (2, 17, 49):
        one = mann_kendall(x[i])
        assert one.s == mk.s[i] and one.var_s == pytest.approx(mk.var_s[i])
        assert mk.tau[i] == pytest.approx(stats.kendalltau(np.arange(30), x[i]).statistic)
    with pytest.raises(DataError):
        mann_kendall([1.0, np.nan, 2.0])


# ------------------------------------------------------------------ space-time Gi*


@pytest.fixture(scope="module")
def westla_cube(westla_h3_units):
    units, y = westla_h3_units
    rng = np.random.default_rng(11)
    rate = (y + 1) / 20.0
    cube = rng.poisson(rate[:, None] * np.linspace(0.5, 2.0, 12)[None, :]).astype(float)
    periods = pd.date_range("2020-03-02", periods=12, freq="W-MON")
    return units, cube, periods


def test_space_time_gi_star_individual_equals_esda_per_period(westla_cube):
    units, cube, _ = westla_cube
    w = build_weights(units)
    z, p = space_time_gi_star(cube, w, global_window="individual")
    g = w.binary_with_self()
    for t in range(cube.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = esda.G_Local(cube[:, t], g, transform="B", star=True, permutations=0)
        np.testing.assert_allclose(z[:, t], ref.Zs, rtol=0, atol=1e-9)
    np.testing.assert_allclose(p, 2 * stats.norm.sf(np.abs(z)))


@pytest.mark.parametrize("global_window", ["cube", "neighborhood"])
def test_space_time_gi_star_time_window_brute_force(westla_cube, global_window):
    units, cube, _ = westla_cube
    w = build_weights(units)
    a = w.binary_sparse(include_self=True).toarray()
    k = 2
    z, _ = space_time_gi_star(cube, w, time_window=k, global_window=global_window)
    n_units, n_periods = cube.shape
    for t in (0, 1, 5, 11):
        lo = max(0, t - k)
        window = cube[:, lo : t + 1]  # periods t-k..t
        pool = cube if global_window == "cube" else window
        n, xbar = pool.size, pool.mean()
        s = np.sqrt((pool**2).mean() - xbar**2)
        for i in (0, 40, n_units - 1):
            nb = a[i] > 0
            local = window[nb].sum()
            wsum = nb.sum() * window.shape[1]
            expect = (local - xbar * wsum) / (s * np.sqrt((n * wsum - wsum**2) / (n - 1)))
            assert z[i, t] == pytest.approx(expect, abs=1e-9)


# ------------------------------------------------------------------ the 17 categories


def _island_units(n: int) -> gpd.GeoDataFrame:
    """n small squares 1 km apart: no two touch, so every unit's Gi* neighbourhood is itself."""
    corners = [(1000.0 * (i % 10), 1000.0 * (i // 10)) for i in range(n)]
    geoms = [box(x, y, x + 200.0, y + 200.0) for x, y in corners]
    return gpd.GeoDataFrame(
        {"unit_id": [f"u{i:02d}" for i in range(n)], "unit_type": "polygon"},
        geometry=geoms,
        crs="EPSG:3310",
    ).to_crs("EPSG:4326")


T = 20
BASE, AMP = 30.0, 15.0
HOT, COLD = BASE + AMP, BASE - AMP


def _series(hot=(), cold=()) -> np.ndarray:
    s = np.full(T, BASE)
    s[list(hot)] = HOT
    s[list(cold)] = COLD
    return s


ALL = range(T)
RAMP = np.linspace(0.0, AMP, T)
# Each row is one unit whose category is known from the rules (module docstring of emerging):
# "h" bins are BASE + AMP (significant hot), "c" bins BASE - AMP (significant cold), others BASE.
DESIGN: list[tuple[str, np.ndarray]] = [
    ("New Hot Spot", _series(hot=[19])),
    ("Consecutive Hot Spot", _series(hot=[17, 18, 19])),
    ("Intensifying Hot Spot", HOT + RAMP),  # hot in every period, rising
    ("Persistent Hot Spot", _series(hot=[t for t in ALL if t != 9])),  # 95%, S = 10 - 9 = 1
    ("Diminishing Hot Spot", HOT + RAMP[::-1]),  # hot in every period, falling
    ("Sporadic Hot Spot", _series(hot=[2, 7, 12, 19])),
    ("Oscillating Hot Spot", _series(hot=[10, 19], cold=[3])),
    ("Historical Hot Spot", _series(hot=range(18))),  # 18/20 = 90%, final two not hot
    ("No Pattern Detected", _series()),
    ("New Cold Spot", _series(cold=[19])),
    ("Consecutive Cold Spot", _series(cold=[17, 18, 19])),
    ("Intensifying Cold Spot", COLD - RAMP),  # cold in every period, getting colder
    ("Persistent Cold Spot", _series(cold=[t for t in ALL if t != 9])),
    ("Diminishing Cold Spot", COLD - RAMP[::-1]),  # cold in every period, warming
    ("Sporadic Cold Spot", _series(cold=[2, 7, 12, 19])),
    ("Oscillating Cold Spot", _series(cold=[10, 19], hot=[3])),
    ("Historical Cold Spot", _series(cold=range(18))),
    # edge cases of the precedence rules
    ("Consecutive Hot Spot", _series(hot=range(3, 20))),  # one run, 17/20 = 85% < 90%
    ("Sporadic Hot Spot", _series(hot=[5, 6, 18, 19])),  # two runs, no cold
    ("Oscillating Hot Spot", _series(hot=[17, 18, 19], cold=[2])),  # a run after a cold bin
    ("Oscillating Cold Spot", _series(hot=range(19), cold=[19])),  # final cold beats Historical
    ("Historical Hot Spot", _series(hot=[t for t in range(19) if t != 4])),  # 18/20, final not
]
N_BACKGROUND = 40


def test_every_category_from_a_hand_built_cube():
    labels = [name for name, _ in DESIGN] + ["No Pattern Detected"] * N_BACKGROUND
    rows = [s for _, s in DESIGN] + [_series()] * N_BACKGROUND
    cube = np.vstack(rows)
    units = _island_units(len(rows))
    weights = build_weights(units, method="queen")
    assert len(weights.islands) == len(rows)  # by design, see _island_units
    periods = pd.date_range("2023-01-02", periods=T, freq="W-MON")
    res = emerging_hotspots(units, cube, periods, weights=weights)

    # the cube does what the design says: "h" bins hot, "c" bins cold, BASE bins neither
    design = cube[: len(DESIGN)]
    np.testing.assert_array_equal(res.hot[: len(DESIGN)], design > BASE)
    np.testing.assert_array_equal(res.cold[: len(DESIGN)], design < BASE)
    assert not res.hot[len(DESIGN) :].any() and not res.cold[len(DESIGN) :].any()

    assert list(res.category) == labels
    assert set(res.category) == set(CATEGORIES.values())  # all 17 appear
    assert [CATEGORIES[c] for c in res.code] == list(res.category)
    by_name = {v: k for k, v in CATEGORIES.items()}
    assert by_name["Intensifying Hot Spot"] == 3 and by_name["Historical Cold Spot"] == 17
    # trends behind intensifying / diminishing / persistent
    assert res.trend_z[2] > 0 and res.trend_p[2] < 0.10
    assert res.trend_z[4] < 0 and res.trend_p[4] < 0.10
    assert res.trend_p[3] >= 0.10
    # per-unit summaries
    np.testing.assert_allclose(res.share_hot, res.hot.sum(axis=1) / T)
    np.testing.assert_array_equal(res.final_hot, res.hot[:, -1])
    np.testing.assert_array_equal(np.sign(res.signed_code), np.sign(9 - res.code) * (res.code != 9))
    table = res.table
    assert list(table["unit_id"]) == list(units["unit_id"]) and table["unit_id"].is_unique
    assert (table["category"] == res.category).all()
    assert set(CATEGORY_COLOURS) == set(CATEGORIES)


def test_classify_emerging_rejects_bad_input():
    both = np.ones((2, 5), dtype=bool)
    with pytest.raises(DataError, match="both"):
        classify_emerging(both, both, np.zeros(2), np.ones(2))
    with pytest.raises(DataError):
        classify_emerging(both, both[:1], np.zeros(2), np.ones(2))


# ------------------------------------------------------------------ the analysis on real units


def test_emerging_on_real_units(westla_cube):
    units, cube, periods = westla_cube
    res = emerging_hotspots(units, cube, periods, time_window=1)
    n, t = cube.shape
    assert res.z.shape == (n, t) and res.p.shape == (n, t)
    assert set(res.code) <= set(range(1, 18))
    assert res.table.crs.to_epsg() == 4326
    assert list(res.table["unit_id"]) == list(units["unit_id"])
    np.testing.assert_allclose(res.count_tau, mann_kendall(cube).tau, equal_nan=True)
    np.testing.assert_allclose(res.trend_z, mann_kendall(res.z).z)
    assert res.hot.any()  # the busy West LA cells are hot
    strict = emerging_hotspots(units, cube, periods, time_window=1, fdr=True)
    assert strict.hot.sum() <= res.hot.sum()
    assert not (strict.hot & ~res.hot).any()


def test_emerging_guards(westla_cube):
    units, cube, periods = westla_cube
    with pytest.raises(TooFewUnitsError, match="20"):
        emerging_hotspots(units.iloc[:20], cube[:20], periods)
    with pytest.raises(DataError):
        emerging_hotspots(units, cube, periods[:-1])
    with pytest.raises(DataError):
        emerging_hotspots(units, cube[:, :2], periods[:2])
    with pytest.raises(DataError):
        emerging_hotspots(units, cube, periods[::-1])
    with pytest.raises(ConfigError):
        emerging_hotspots(units, cube, periods, time_window=1, global_window="individual")
    with pytest.raises(ConfigError):
        emerging_hotspots(units, cube, periods, time_window=-1)
