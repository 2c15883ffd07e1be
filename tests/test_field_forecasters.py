"""The field's forecasts (space-time KDE, prospective hot spots, self-exciting point process).

Each is checked against the published formula recomputed by explicit loops on real West LA rows
(H3 resolution 9, weekly), the SEPP against a simulated process with known parameters, and all
three against the strict cutoff: nothing from the target period or later reaches a forecast.
They also join the original study's table (a small synthetic daily panel), kde recomputed there
by hand at one division-day.
"""

from __future__ import annotations

import math

import h3
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from geo_crime.core.errors import ModelError
from geo_crime.cube.panel import Cube, build_cube
from geo_crime.forecast import FAST_CONFIG, evaluate, reproduce_study
from geo_crime.forecast.field import (
    ProspectiveHotSpot,
    SpaceTimeKDE,
    bowers_weights,
    unit_distances,
)
from geo_crime.forecast.registry import forecaster_class, make_forecaster
from geo_crime.forecast.sepp import SelfExcitingPointProcess
from geo_crime.ingest import load_incidents
from geo_crime.record.coverage import check_coverage
from geo_crime.units import assign_units, make_units
from tests.fakes.forecast_cubes import synthetic_cube
from tests.fakes.h3_units import h3_units
from tests.fakes.shared_data import WESTLA, crime_file

FIELD = ("kde", "prospective", "sepp")
ORDER = ["model", "origin", "unit_id"]


def _with(cube: Cube, **arrays: np.ndarray) -> Cube:
    """A copy of the cube with some arrays replaced."""
    parts = {
        "counts": cube.counts,
        "severity": cube.severity,
        "harm": cube.harm,
        "complete": cube.complete,
    }
    parts.update(arrays)
    return Cube(units=cube.units, periods=cube.periods, freq=cube.freq, meta=cube.meta, **parts)


def _centroids(cube: Cube) -> np.ndarray:
    cent = cube.units.geometry.to_crs("EPSG:3310").centroid
    return np.column_stack([cent.x.to_numpy(), cent.y.to_numpy()])


@pytest.fixture(scope="module")
def westla(tmp_path_factory) -> Cube:
    """West LA 2020-21 rows, H3 resolution-9 cells of the division, weekly (1,430 x 73)."""
    frame, _ = load_incidents(crime_file(WESTLA), cache=tmp_path_factory.mktemp("w"))
    units = make_units("h3:9", frame)
    ids, _ = assign_units(frame, units)
    return build_cube(frame, units, ids, freq="W", coverage=check_coverage(frame, freq="W"))


@pytest.fixture(scope="module")
def small(westla) -> Cube:
    """The 80 cells nearest West LA's busiest cell over ten completely recorded weeks."""
    weeks = westla.select_periods(slice(1, 11))
    assert weeks.complete.all()
    xy = _centroids(weeks)
    busiest = int(np.argmax(weeks.severity.sum(axis=1)))
    nearest = np.argsort(np.hypot(*(xy - xy[busiest]).T), kind="stable")[:80]
    keep = np.zeros(len(xy), dtype=bool)
    keep[nearest] = True
    return weeks.select_units(keep)


def _scaled(raw: list[float], y: np.ndarray, window: int) -> np.ndarray:
    """Raw risks times the factor that makes them add up to the units' last-window means."""
    level = sum(float(np.mean(y[c, -window:])) for c in range(len(raw)))
    return np.array(raw) * level / sum(raw)


def _deviance(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean Poisson deviance 2 (y log(y/mu) - (y - mu)), forecasts floored at 1e-6."""
    mu = np.maximum(forecast, 1e-6)
    term = np.where(actual > 0, actual * np.log(np.where(actual > 0, actual, 1.0) / mu), 0.0)
    return float(np.mean(2.0 * (term - (actual - mu))))


# --- kernel density -------------------------------------------------------------------------------


def test_kde_matches_the_formula_by_hand_on_real_rows(small):
    model = SpaceTimeKDE().fit(small)
    h, tau = model.bandwidth_, model.half_life_
    y = small.severity
    n, T = y.shape
    xy = _centroids(small)
    # the bandwidth is a multiple of the median nearest-neighbour distance, chosen from the grid
    nearest = [min(math.dist(xy[c], xy[j]) for j in range(n) if j != c) for c in range(n)]
    spacing = float(np.median(nearest))
    assert any(h == pytest.approx(m * spacing, rel=1e-9) for m in model.multiples)
    assert tau in model.half_lives
    raw = []
    for c in range(n):
        total = 0.0
        for j in range(n):
            d = math.dist(xy[c], xy[j])
            if d > 3 * h:
                continue
            kernel = math.exp(-(d**2) / (2 * h**2))
            for s in range(T):
                total += y[j, s] * kernel * 2 ** (-(T - 1 - s) / tau)
        raw.append(total)
    by_hand = _scaled(raw, y, 8)
    forecast = model.predict(small)
    np.testing.assert_allclose(forecast, by_hand, rtol=1e-10)
    busiest = int(np.argmax(y.sum(axis=1)))
    assert forecast[busiest] == pytest.approx(by_hand[busiest], rel=1e-12)
    # a mean level: the forecasts add up to the sum of the units' 8-week means
    assert forecast.sum() == pytest.approx(y[:, -8:].mean(axis=1).sum(), rel=1e-12)


def test_kde_bandwidths_minimise_the_deviance_of_the_last_training_weeks(small):
    model = SpaceTimeKDE().fit(small)
    T = small.shape[1]
    scores = {}
    for key in model.validation_deviance_:
        h, tau = key
        actual, forecast = [], []
        for t in range(T - 4, T):  # each of the last four weeks from the weeks before it
            history = small.select_periods(slice(0, t))
            fixed = SpaceTimeKDE(h, half_life=tau).fit(history)
            actual.append(small.severity[:, t])
            forecast.append(fixed.predict(history))
        scores[key] = _deviance(np.concatenate(actual), np.concatenate(forecast))
    assert len(scores) == len(model.multiples) * len(model.half_lives) == 30
    for key, value in scores.items():
        assert model.validation_deviance_[key] == pytest.approx(value, rel=1e-9)
    assert (model.bandwidth_, model.half_life_) == min(scores, key=scores.get)


# --- prospective hot spots ------------------------------------------------------------------------


def test_prospective_matches_the_bowers_weights_by_hand_on_real_rows(small):
    model = ProspectiveHotSpot().fit(small)
    y = small.severity
    n, T = y.shape
    xy = _centroids(small)
    nearest = [min(math.dist(xy[c], xy[j]) for j in range(n) if j != c) for c in range(n)]
    band = float(np.median(nearest))
    assert model.band_ == pytest.approx(band, rel=1e-12)
    # H3-9 cells are ~360 m apart: 400 m is widened to 1.5 cells so the first ring counts
    assert 300 < band < 420 and model.radius_ == pytest.approx(max(400.0, 1.5 * band))
    raw = []
    for c in range(n):
        total = 0.0
        for j in range(n):
            d = math.dist(xy[c], xy[j])
            if d > model.radius_:
                continue
            for weeks_ago in range(8):  # the origin week is 0 weeks ago
                weight = 1 / (1 + round(d / band)) * 1 / (1 + weeks_ago)
                total += y[j, T - 1 - weeks_ago] * weight
        raw.append(total)
    np.testing.assert_allclose(model.predict(small), _scaled(raw, y, 8), rtol=1e-10)
    # the published weights: the cell itself 1, its first ring 1/2, nothing beyond the radius
    weights = bowers_weights(unit_distances(xy, model.radius_), band, model.radius_).toarray()
    assert np.all(np.diag(weights) == 1.0)
    ring = np.array([[0 < math.dist(a, b) <= model.radius_ for b in xy] for a in xy])
    assert ring.any() and np.all(weights[ring] == 0.5)
    assert np.all(weights[~ring & ~np.eye(n, dtype=bool)] == 0.0)


# --- self-exciting point process ------------------------------------------------------------------


def _simulate(mu: np.ndarray, theta: float, omega: float, periods: int, seed: int) -> np.ndarray:
    """A discrete-time Hawkes process: x_c(t) ~ Poisson(mu_c + theta sum_s x_c(s) g(t - s))."""
    rng = np.random.default_rng(seed)
    a = math.exp(-omega)
    x = np.zeros((len(mu), periods))
    running = np.zeros(len(mu))  # sum_s x(s) a^(t-1-s)
    for t in range(periods):
        x[:, t] = rng.poisson(mu + theta * (1 - a) * running)
        running = a * running + x[:, t]
    return x


def _count_cube(values: np.ndarray, complete: np.ndarray | None = None) -> Cube:
    import pandas as pd

    n, T = values.shape
    centre = h3.latlng_to_cell(34.05, -118.25, 9)
    cells = sorted(h3.grid_disk(centre, 8), key=lambda c: (h3.grid_distance(centre, c), c))[:n]
    periods = pd.period_range("2021-01-04", periods=T, freq="W-SUN").start_time
    return Cube(
        units=h3_units(cells),
        periods=pd.DatetimeIndex(periods),
        freq="W",
        counts=values.astype(np.int64),
        severity=values * 30.0,
        harm=values * 10.0,
        complete=complete,
        meta={"unit_type": "h3"},
    )


def test_sepp_recovers_the_parameters_of_a_simulated_process():
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.1, 1.5, 200)
    x = _simulate(mu, theta=0.5, omega=0.5, periods=200, seed=1)
    model = SelfExcitingPointProcess(target="count").fit(_count_cube(x))
    # Tolerances: with a background per cell, the maximum-likelihood theta is biased low by
    # about 0.03 on 200 periods (-0.030, -0.017, -0.006 on 200, 400, 1000 periods over five
    # seeds: it shrinks as 1/T) with a seed-to-seed spread of 0.007; omega by +0.03 +- 0.015.
    # 0.05 and 0.1 leave about two spreads beyond the bias.
    assert model.converged_
    assert model.theta_ == pytest.approx(0.5, abs=0.05)
    assert model.omega_ == pytest.approx(0.5, abs=0.1)
    assert model.theta_neighbours_ == 0.0
    # per-cell backgrounds from 200 periods: standard error sqrt(mu / 200 / (1 - theta)) ~ 0.08
    assert np.mean(np.abs(model.mu_ - mu)) < 0.12
    assert np.corrcoef(model.mu_, mu)[0, 1] > 0.95
    # the branching ratio is the stationary share of triggered events
    assert model.self_exciting_share_ == pytest.approx(model.theta_, abs=0.02)
    # the fit is EM's fixed point: its likelihood sum x log(lambda) - lambda beats the truth's
    a = math.exp(-0.5)
    lagged = np.zeros_like(x)
    for t in range(1, x.shape[1]):
        lagged[:, t] = a * lagged[:, t - 1] + x[:, t - 1]
    truth = mu[:, None] + 0.5 * (1 - a) * lagged
    assert model.log_likelihood_ > float((x * np.log(truth) - truth).sum())
    # severity = 30 x counts: theta and omega are scale-free, mu scales
    severe = SelfExcitingPointProcess().fit(_count_cube(x))
    assert severe.theta_ == pytest.approx(model.theta_, abs=1e-4)
    np.testing.assert_allclose(severe.mu_, 30 * model.mu_, rtol=1e-3)


def test_sepp_recovers_a_neighbour_term_and_skips_incomplete_cells():
    import scipy.sparse as sp

    rng = np.random.default_rng(2)
    n, T = 200, 200
    mu = rng.uniform(0.1, 1.5, n)
    cube = _count_cube(np.zeros((n, T)))
    cells = list(cube.unit_ids)
    index = {c: i for i, c in enumerate(cells)}
    pairs = [(index[c], index[b]) for c in cells for b in h3.grid_ring(c, 1) if b in index]
    ring = sp.csr_matrix((np.ones(len(pairs)), tuple(zip(*pairs, strict=True))), shape=(n, n))
    ring = sp.diags(1.0 / np.asarray(ring.sum(axis=1)).ravel()) @ ring
    a = math.exp(-0.5)
    x, running = np.zeros((n, T)), np.zeros(n)
    for t in range(T):
        phi = (1 - a) * running
        x[:, t] = rng.poisson(mu + 0.3 * phi + 0.2 * (ring @ phi))
        running = a * running + x[:, t]
    complete = np.ones((n, T), dtype=bool)
    complete[:40, 100:140] = False  # a reporting break: these cells must never be read
    poisoned = np.where(complete, x, 1e6)
    model = SelfExcitingPointProcess(neighbours=True, target="count")
    model.fit(_count_cube(poisoned, complete))
    # the neighbours the model finds are the H3 first ring
    radius = model.neighbour_radius * np.median(
        [np.partition(np.hypot(*(_centroids(cube) - p).T), 1)[1] for p in _centroids(cube)]
    )
    assert abs(model.unit_weights(cube, radius) - ring).max() < 1e-12
    assert model.theta_ == pytest.approx(0.3, abs=0.05)
    assert model.theta_neighbours_ == pytest.approx(0.2, abs=0.05)
    assert model.omega_ == pytest.approx(0.5, abs=0.1)
    clean = SelfExcitingPointProcess(neighbours=True, target="count")
    clean.fit(_count_cube(np.where(complete, x, 0.0), complete))
    assert clean.theta_ == model.theta_ and np.array_equal(clean.mu_, model.mu_)


# --- coverage and the strict cutoff ---------------------------------------------------------------


def test_incomplete_cells_are_never_read(small):
    n, T = small.shape
    complete = np.ones((n, T), dtype=bool)
    complete[:10, 3:6] = False
    complete[10] = False  # no complete history at all
    clean = _with(small, complete=complete)
    poisoned = _with(small, severity=np.where(complete, small.severity, 1e6), complete=complete)
    for name in FIELD:
        a = make_forecaster(name).fit(clean).predict(clean)
        b = make_forecaster(name).fit(poisoned).predict(poisoned)
        np.testing.assert_array_equal(a, b)
        assert np.isnan(a[10]) and np.isfinite(np.delete(a, 10)).all(), name
        assert np.nanmax(a) < 1e4, name
    # the kernel mass on unrecorded cells is made up for, not read as quiet
    kde = SpaceTimeKDE(300.0, half_life=4.0).fit(clean)
    everything = _with(small, complete=np.ones((n, T), dtype=bool))
    full = SpaceTimeKDE(300.0, half_life=4.0).fit(everything).predict(everything)
    gap = kde.predict(clean)
    outside = np.arange(12, n)
    assert np.corrcoef(gap[outside], full[outside])[0, 1] > 0.99


def test_no_value_of_the_target_period_or_later_reaches_a_forecast(westla):
    t = 40  # the last origin; its target period is t + 1
    rng = np.random.default_rng(0)
    changed = {}
    for key in ("counts", "severity", "harm"):
        array = getattr(westla, key).copy()
        block = array[:, t + 1 :]
        array[:, t + 1 :] = rng.permutation(block.ravel()).reshape(block.shape) * 3 + 1
        changed[key] = array
    future = _with(westla, **changed)
    kwargs = {"models": list(FIELD), "n_origins": 4, "refit_every": 2, "config": FAST_CONFIG}
    r1 = evaluate(westla.select_periods(slice(0, t + 2)), **kwargs)
    r2 = evaluate(future.select_periods(slice(0, t + 2)), **kwargs)
    # only the field's models (the backtest may add reference rows of its own)
    p1, p2 = (
        r.predictions[r.predictions["model"].isin(FIELD)].sort_values(ORDER) for r in (r1, r2)
    )
    assert set(p1["model"]) == set(FIELD)
    np.testing.assert_array_equal(p1["prediction"].to_numpy(), p2["prediction"].to_numpy())
    assert not np.array_equal(p1["actual"].to_numpy(), p2["actual"].to_numpy())  # it did change
    # the test has power: a change AT the origin changes every method's forecast
    window = westla.select_periods(slice(0, t + 1))
    bumped = window.severity.copy()
    bumped[:, -1] += 50
    moved = _with(window, severity=bumped)
    for name in FIELD:
        model = make_forecaster(name).fit(window)
        assert not np.allclose(model.predict(window), model.predict(moved)), name


# --- through the backtest -------------------------------------------------------------------------


def test_registered_and_scored_by_the_backtest_with_the_same_contract(westla):
    for name, cls in (
        ("kde", SpaceTimeKDE),
        ("prospective", ProspectiveHotSpot),
        ("sepp", SelfExcitingPointProcess),
    ):
        assert forecaster_class(name) == (cls, {})
        model = make_forecaster(name, context={"target": "count", "seed": 3})
        assert model.target == "count" and model.name == name
        assert model.clone().get_params() == model.get_params()
    result = evaluate(
        westla,
        models=["kde", "prospective", "sepp", "hist_mean"],
        n_origins=8,
        refit_every=4,
        config=FAST_CONFIG,
    )
    metrics = result.metrics
    assert {"kde", "prospective", "sepp", "hist_mean"} <= set(metrics.index)
    assert metrics.loc[["kde", "prospective", "sepp", "hist_mean"], "n"].nunique() == 1
    pred = result.predictions
    last = result.origins[-1]
    t = int(westla.periods.get_loc(last))
    history = westla.select_periods(slice(0, t + 1))
    at_last = pred[pred["origin"] == last].set_index(["model", "unit_id"])["prediction"]
    row = {u: i for i, u in enumerate(westla.unit_ids)}
    # the backtest's forecasts are the last refit's forecasts from the origin's history
    for name in FIELD:
        direct = result.last_fits[name].predict(history)
        got = at_last.loc[name]
        np.testing.assert_allclose(got.to_numpy(), direct[[row[u] for u in got.index]])
    # kde: a mean level, the forecasts add up to the units' 8-week means at the origin
    kde = result.last_fits["kde"].predict(history)
    level = history.severity[:, -8:].mean(axis=1)
    ok = np.isfinite(kde)
    assert kde[ok].sum() == pytest.approx(level[ok].sum(), rel=1e-9)
    # sepp: mu_c + theta sum_s x_c(s) (e^{-w (T-1-s)} - e^{-w (T-s)}), by hand for the busiest unit
    sepp = result.last_fits["sepp"]
    c = int(np.argmax(history.severity.sum(axis=1)))
    T, w = history.shape[1], sepp.omega_
    carried = sum(
        history.severity[c, s] * (math.exp(-w * (T - 1 - s)) - math.exp(-w * (T - s)))
        for s in range(T)
        if history.complete[c, s]
    )
    assert sepp.predict(history)[c] == pytest.approx(sepp.mu_[c] + sepp.theta_ * carried)
    summary = sepp.summary()
    assert 0 <= summary["theta"] < 1 and 0 <= summary["self_exciting_share"] < 1
    assert summary["converged"] and summary["mean_delay_periods"] >= 1


def test_the_study_table_adds_the_fields_methods_on_the_same_division_days():
    """The field's methods and the references join the study's table, each forecast of a test day
    made from the days before it only; hist_mean and kde recomputed by hand at one division-day."""
    # the first division's last 7 days are unrecorded: the study keeps the 63 days before them
    cube = synthetic_cube(n_units=6, n_periods=70, freq="D", incomplete=0.1, seed=3)
    study = reproduce_study(cube, window=10, epochs=1, seed=0)
    table = study.metrics
    assert list(table.index) == [
        "study_conv1d",
        "last_day",
        "mean_7d",
        "hist_mean",
        "kde",
        "prospective",
        "sepp",
        "zero",
        "clairvoyant",
    ]
    split = int(round(0.8 * 63))
    assert study.info["n_days"] == 63 and study.info["references"] == ["zero", "clairvoyant"]
    assert (table["n"] == 6 * (63 - split)).all()  # every row on the same division-days
    assert np.isfinite(table[["mae", "rmse", "poisson_deviance", "mae_minmax"]]).all().all()
    preds = study.predictions
    y = np.asarray(cube.severity, dtype=float)
    t = split + 5  # a test day: forecast from days 0 .. t-1
    i = 2
    unit = cube.unit_ids[i]
    row = preds[(preds["day"] == cube.periods[t]) & (preds["unit_id"] == unit)].iloc[0]
    assert row["actual"] == y[i, t]
    assert row["hist_mean"] == pytest.approx(y[i, :t].mean(), rel=1e-12)
    # kde by hand: Gaussian kernel within 3h of the EPSG:3310 centroids, decay 2^(-age/tau),
    # scaled so the units' forecasts add up to the sum of their last-8-day means
    kde = SpaceTimeKDE().fit(cube.select_periods(slice(0, split)))  # the training days only
    h, tau = kde.bandwidth_, kde.half_life_
    cent = cube.units.geometry.to_crs("EPSG:3310").centroid
    d = cdist(np.column_stack([cent.x, cent.y]), np.column_stack([cent.x, cent.y]))
    kernel = np.where(d <= 3 * h, np.exp(-0.5 * (d / h) ** 2), 0.0)
    age = np.arange(t - 1, -1, -1)
    risk = kernel @ (y[:, :t] * 2.0 ** (-age / tau)).sum(axis=1)
    by_hand = risk[i] * y[:, t - 8 : t].mean(axis=1).sum() / risk.sum()
    assert row["kde"] == pytest.approx(by_hand, rel=1e-9)
    # the metrics are those of the predictions: hist_mean's MAE over every test division-day
    test = preds["day"] >= cube.periods[split]
    assert test.all() and len(preds) == table.at["hist_mean", "n"]
    assert table.at["hist_mean", "mae"] == pytest.approx(
        (preds["hist_mean"] - preds["actual"]).abs().mean(), rel=1e-12
    )
    assert table.at["zero", "mae"] == pytest.approx(preds["actual"].mean(), rel=1e-12)
    with pytest.raises(ModelError):
        reproduce_study(cube, window=10, epochs=1, field_methods=("zero",))
