"""Crime-group panels, the pooled group network, its stack and its goal, on real West LA rows.

The group cubes are recounted from the rows; the network's loss is checked against the formula
in NumPy; the stacked ensemble against a panel whose best weights are known; and the backtest
against the strict cutoff with date-only rows: rows dated the target day (midnight, no time)
never reach its forecast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo_crime.cube.panel import Cube
from geo_crime.forecast import evaluate
from geo_crime.forecast.deep import GroupNet, poisson_listwise_loss, ring_matrices
from geo_crime.forecast.group_backtest import (
    evaluate_groups,
    ratio_interval,
    stacked_predictions,
)
from geo_crime.forecast.groups import CRIME_GROUPS, crime_group, group_counts, group_cubes
from geo_crime.ingest import load_incidents
from geo_crime.record.coverage import check_coverage
from geo_crime.units import assign_units, make_units
from tests.fakes.shared_data import WESTLA, crime_file

SMALL_NET = {
    "hidden": (8,),
    "epochs": 3,
    "train_periods": 60,
    "validation_periods": 7,
    "half_lives": (1.0, 7.0),
}


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> pd.DataFrame:
    frame, _ = load_incidents(crime_file(WESTLA), cache=tmp_path_factory.mktemp("g"))
    return frame


@pytest.fixture(scope="module")
def westla(rows):
    """West LA rows, H3-9 cells, daily, 2020-06-01 to 2020-10-31, as group cubes."""
    units = make_units("h3:9", rows)
    ids, _ = assign_units(rows, units)
    cubes = group_cubes(
        rows,
        units,
        ids,
        freq="D",
        coverage=check_coverage(rows, freq="D"),
        start="2020-06-01",
        end="2020-10-31",
    )
    return cubes, units, ids


def _small(cubes: dict[str, Cube], n: int = 60) -> dict[str, Cube]:
    """The ``n`` cells with the most incidents of all groups, as group cubes."""
    total = sum(c.counts.sum(axis=1) for c in cubes.values())
    keep = np.zeros(len(total), dtype=bool)
    keep[np.argsort(-total, kind="stable")[:n]] = True
    out = {}
    for g, c in cubes.items():
        small = c.select_units(keep)
        small.categories = {k: v[keep] for k, v in c.categories.items()}
        out[g] = small
    return out


def test_group_cubes_recount_the_rows(rows, westla):
    cubes, units, ids = westla
    assert tuple(cubes) == CRIME_GROUPS
    group = crime_group(rows)
    days = rows["occurred_at"].dt.normalize()
    unit = pd.Series(np.asarray(ids, dtype=object), index=rows.index)
    inside = unit.notna().to_numpy() & days.between("2020-06-01", "2020-10-31").to_numpy(
        bool, na_value=False
    )
    for g, cube in cubes.items():
        mine = inside & (group == g).to_numpy(bool, na_value=False)
        assert int(cube.counts.sum()) == int(mine.sum()) > 0
        # one cell and one day by hand
        cell = cube.unit_ids[int(np.argmax(cube.counts.sum(axis=1)))]
        by_hand = (mine & (unit == cell).to_numpy(bool)).sum()
        assert int(cube.counts[list(cube.unit_ids).index(cell)].sum()) == int(by_hand)
        assert np.array_equal(cube.categories[g], cube.counts)
        assert cube.meta["group"] == g
    # every row is in exactly one group or in "other"
    counts = group_counts(rows)
    assert sum(counts.values()) == len(rows)
    # vehicle crime takes thefts from vehicles: count them by their offence text
    text = rows["crm_cd_desc"].astype("string").str.upper().fillna("")
    theft = (rows["crime_category"].astype("string") == "theft").to_numpy(bool, na_value=False)
    from_vehicle = theft & text.str.contains("VEHICLE").to_numpy(bool, na_value=False)
    assert counts["vehicle"] >= int(from_vehicle.sum()) > 0


def test_the_coverage_mask_is_that_of_all_crime(westla):
    cubes, _, _ = westla
    masks = [c.complete for c in cubes.values()]
    assert all(np.array_equal(masks[0], m) for m in masks)


def test_ring_matrices_are_the_h3_k_rings(westla):
    import h3

    cubes, _, _ = westla
    cube = next(iter(cubes.values()))
    cent = cube.units.geometry.to_crs("EPSG:3310").centroid
    r1, r2 = ring_matrices(np.column_stack([cent.x, cent.y]))
    ids = list(cube.unit_ids)
    index = {c: i for i, c in enumerate(ids)}
    for i in (0, len(ids) // 2):
        first = {index[c] for c in h3.grid_ring(ids[i], 1) if c in index}
        second = {index[c] for c in h3.grid_ring(ids[i], 2) if c in index}
        assert set(r1[i].indices) == first
        assert set(r2[i].indices) == second
        assert r1[i].sum() == pytest.approx(1.0 if first else 0.0)


def test_the_loss_is_the_poisson_likelihood_plus_listnet_by_hand():
    rng = np.random.default_rng(3)
    counts = rng.poisson(0.7, size=(2, 5, 2)).astype("float32")
    counts[1, :, 1] = 0  # a (period, group) with no incident: no ranking term
    mask = np.ones((2, 5, 1), dtype="float32")
    mask[0, 4] = 0
    log_rate = rng.normal(size=(2, 5, 2)).astype("float32")
    got = float(poisson_listwise_loss(2, 0.3)(np.concatenate([counts, mask], 2), log_rate))
    m = np.repeat(mask, 2, axis=2)
    poisson = (m * (np.exp(log_rate) - counts * log_rate)).sum() / (mask.sum() * 2)
    terms = []
    for b in range(2):
        for g in range(2):
            ok = mask[b, :, 0] > 0
            y = counts[b, ok, g]
            if y.sum() == 0:
                continue
            z = log_rate[b, ok, g]
            log_soft = z - np.log(np.exp(z).sum())
            terms.append(-(y / y.sum() * log_soft).sum())
    assert len(terms) == 3
    assert got == pytest.approx(poisson + 0.3 * np.mean(terms), rel=1e-5)


def test_the_stack_learns_known_weights_from_earlier_origins_only():
    rng = np.random.default_rng(0)
    rows = []
    origins = pd.date_range("2021-01-01", periods=12, freq="D")
    for o in origins:
        a = rng.gamma(2.0, 1.0, size=40)
        b = rng.gamma(2.0, 1.0, size=40)
        actual = 2.0 * a  # the best weights are (2, 0)
        for name, pred in (("hist_mean", a), ("kde", b)):
            rows.append(
                pd.DataFrame(
                    {
                        "model": name,
                        "unit_id": [f"u{i}" for i in range(40)],
                        "origin": o,
                        "period": o + pd.Timedelta(days=1),
                        "actual": actual,
                        "captured": actual,
                        "area_km2": 1.0,
                        "prediction": pred,
                        "lower": np.nan,
                        "upper": np.nan,
                    }
                )
            )
    table = pd.concat(rows, ignore_index=True)
    stack, weights = stacked_predictions(table, ("hist_mean", "kde"), warmup=3)
    assert weights.iloc[:3].to_numpy() == pytest.approx(0.5)
    assert weights.iloc[-1].to_numpy() == pytest.approx([2.0, 0.0], abs=1e-6)
    # the last origin's actuals do not move its own weights
    changed = table.copy()
    last = changed["origin"] == origins[-1]
    changed.loc[last, "actual"] = 100.0
    _, again = stacked_predictions(changed, ("hist_mean", "kde"), warmup=3)
    assert again.iloc[-1].to_numpy() == pytest.approx(weights.iloc[-1].to_numpy())
    assert set(stack["model"]) == {"stack"} and len(stack) == 12 * 40


def test_the_ratio_interval_is_the_resampled_ratio_of_means():
    a = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    b = np.array([2.0, 1.0, 2.0, 1.0, 3.0, 4.0])
    ratio, low, high, n = ratio_interval(a, b, n_resamples=500, seed=1)
    assert ratio == pytest.approx(23.0 / 13.0) and n == 6
    index = np.random.default_rng(1).integers(0, 6, size=(500, 6))
    stats = a[index].mean(axis=1) / b[index].mean(axis=1)
    assert (low, high) == pytest.approx(tuple(np.quantile(stats, [0.025, 0.975])))


def test_groupnet_reads_no_row_dated_the_day_it_forecasts(rows, westla):
    """Rows with a date and no time (midnight) on the target day never reach its forecast."""
    cubes, units, ids = westla
    small = _small(cubes)
    keep_ids = set(small["burglary"].unit_ids)
    target_day = pd.Timestamp("2020-10-20")
    busiest = small["burglary"].unit_ids[0]
    extra = rows.loc[(crime_group(rows) == "burglary").fillna(False)].head(1).copy()
    extra = pd.concat([extra] * 25, ignore_index=True)
    extra["occurred_at"] = target_day  # date only
    ids_series = pd.Series(ids, index=rows.index)
    mask = ids_series.isin(keep_ids).to_numpy()
    base_rows = rows.loc[mask]
    more = pd.concat([base_rows, extra], ignore_index=True)
    more_ids = np.concatenate([ids[mask], np.full(len(extra), busiest, dtype=object)])
    kept_units = units.loc[units["unit_id"].isin(keep_ids)]
    plain = group_cubes(
        base_rows, kept_units, ids[mask], freq="D", start="2020-06-01", end="2020-10-31"
    )
    added = group_cubes(more, kept_units, more_ids, freq="D", start="2020-06-01", end="2020-10-31")
    assert added["burglary"].counts.sum() == plain["burglary"].counts.sum() + 25
    net = GroupNet(**SMALL_NET)
    results = [
        evaluate(
            c["burglary"],
            models=[net],
            target="count",
            capture="count",
            n_origins=14,
            refit_every=14,
            min_train_periods=91,
        )
        for c in (plain, added)
    ]
    p0, p1 = (
        r.predictions.query("model == 'groupnet'").set_index(["period", "unit_id"])["prediction"]
        for r in results
    )
    upto = p0.index.get_level_values("period") <= target_day
    assert upto.sum() > 0 and (~upto).sum() > 0
    np.testing.assert_array_equal(p0[upto].to_numpy(), p1[upto].to_numpy())
    assert not np.allclose(p0[~upto].to_numpy(), p1[~upto].to_numpy())


def test_the_group_backtest_scores_the_stack_the_references_and_the_goal(westla):
    cubes, _, _ = westla
    small = _small(cubes, 200)
    result = evaluate_groups(  # 200 cells: too few for PAI@1%, so the goal reads PAI@5%
        small,
        models=["hist_mean", "kde", "sepp", GroupNet(**SMALL_NET)],
        stack=("hist_mean", "kde", "sepp"),
        n_origins=10,
        goal_metric="pai_5",
        name="West LA test",
    )
    for g in CRIME_GROUPS:
        table = result.metrics[g]
        assert {"groupnet", "stack", "zero", "clairvoyant"} <= set(table.index)
        assert np.isnan(table.loc["groupnet", "pai_1"])  # not reported on 200 cells
        weights = result.stack_weights[g]
        assert len(weights) == 10 and (weights.to_numpy() >= 0).all()
        assert weights.iloc[0].to_numpy() == pytest.approx(1 / 3)  # equal before the warm-up
        assert result.info[g]["n_origins"] == 10
    pooled = result.goal["pooled"]
    assert pooled["best"] in ("hist_mean", "kde", "sepp", "stack")
    per = pd.concat(result.origin_scores.values()).groupby(["model", "origin"])["pai_5"].mean()
    assert pooled["ratio"] == pytest.approx(per["groupnet"].mean() / per[pooled["best"]].mean())
    assert pooled["metric"] == "pai_5" and pooled["n_origins"] == 10
    assert pooled["met"] == (pooled["ratio"] >= 1.10 and pooled["low"] > 1.0)
