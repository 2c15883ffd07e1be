"""Proper scores and honest verdicts: references, paired bootstrap intervals, ties to the simplest.

The rule is tested on constructed per-origin scores (where the answer is known), the numbers on
the real West LA record: the clairvoyant reference, the total bias and the Poisson deviance
recomputed by hand from the rows, and both references in every metrics file a real run writes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from geo_crime.cube.panel import Cube, build_cube
from geo_crime.cube.rates import attach_population
from geo_crime.forecast.evaluate import MAX_FITS, evaluate
from geo_crime.forecast.metrics import point_metrics, poisson_deviance_terms
from geo_crime.forecast.panel import eligible_cells, target_values
from geo_crime.forecast.references import REFERENCES
from geo_crime.forecast.verdicts import (
    bias_sentence,
    compare,
    judge,
    level_sentence,
    paired_bootstrap,
    ranking_sentence,
    simplicity,
    verdict_sentences,
)
from geo_crime.ingest import load_incidents
from geo_crime.pipeline import run_pipeline
from geo_crime.record.coverage import check_coverage
from geo_crime.settings import RunSettings, StudySettings
from geo_crime.units import assign_units, make_units
from tests.fakes.shared_data import WESTLA, crime_file

ORIGINS = pd.date_range("2021-01-04", periods=30, freq="7D")


def _scores(pai: dict[str, np.ndarray], abs_error: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per-origin scores of constructed models: 10 cells per origin, deviance = 2 x |error|."""
    rows = []
    for model in pai:
        for i, origin in enumerate(ORIGINS):
            rows.append(
                {
                    "model": model,
                    "origin": origin,
                    "n": 10,
                    "abs_error": abs_error[model][i],
                    "deviance": 2 * abs_error[model][i],
                    "pai_5": pai[model][i],
                }
            )
    return pd.DataFrame(rows)


def _alternating(size: float) -> np.ndarray:
    """+size, -size, +size ...: a difference of mean zero over the 30 origins."""
    return size * np.where(np.arange(len(ORIGINS)) % 2 == 0, 1.0, -1.0)


# --- the rule -------------------------------------------------------------------------------------


def test_overlapping_intervals_are_a_tie_and_the_simpler_model_is_used():
    base = 5 + 0.5 * np.sin(np.arange(len(ORIGINS)))
    scores = _scores(
        {"keras": base + _alternating(1.0) + 0.05, "hist_mean": base},
        {"keras": 40 + _alternating(3.0) - 0.2, "hist_mean": np.full(len(ORIGINS), 40.0)},
    )
    pai = judge(scores, "pai_5")
    # keras has the higher mean PAI@5% (by 0.05), but the interval spans zero
    assert pai["best"] == "keras" and pai["tied"] == ["keras", "hist_mean"]
    assert pai["use"] == "hist_mean"
    pair = pai["against_baseline"]["keras"]
    assert pair["outcome"] == "tie" and pair["against"] == "hist_mean"
    assert pair["low"] < 0 < pair["high"]
    assert pair["difference"] == pytest.approx(0.05)
    sentence = ranking_sentence({"metrics": {"pai_5": pai}})
    assert sentence.startswith("keras and hist_mean tie on harm-weighted PAI@5% (")
    assert "over 30 origins): use hist_mean to choose where to act, the simpler." in sentence
    assert "Only the Keras forecast's ranking is published" in sentence
    words = " ".join(verdict_sentences({"metrics": {"pai_5": pai}}))
    assert "keras and hist_mean tie on harm-weighted PAI@5%" in words
    assert "use hist_mean, the simpler" in words


def test_an_interval_that_excludes_zero_is_a_win():
    base = 5 + 0.5 * np.sin(np.arange(len(ORIGINS)))
    scores = _scores(
        {"keras": base + 0.8 + _alternating(0.1), "hist_mean": base, "gbm": base + 0.1},
        {m: np.full(len(ORIGINS), 40.0) for m in ("keras", "hist_mean", "gbm")},
    )
    pai = judge(scores, "pai_5")
    pair = pai["against_baseline"]["keras"]
    # the best baseline is gbm; keras beats it at every origin, so the interval excludes zero
    assert pair["against"] == "gbm" and pair["outcome"] == "better"
    assert pair["difference"] == pytest.approx(0.7)
    assert 0 < pair["low"] <= pair["difference"] <= pair["high"]
    assert pai["tied"] == ["keras"] and pai["use"] == "keras"
    words = verdict_sentences({"metrics": {"pai_5": pai}})
    assert words[0].startswith("keras beats gbm on harm-weighted PAI@5% (keras 5.")
    assert ranking_sentence({"metrics": {"pai_5": pai}}).startswith(
        "Use keras to choose where to act: it has the best harm-weighted PAI@5%"
    )
    # the other way round, a loss on a lower-is-better metric
    errors = _scores(
        {m: np.full(len(ORIGINS), 5.0) for m in ("keras", "hist_mean")},
        {"keras": 48 + _alternating(1.0), "hist_mean": np.full(len(ORIGINS), 40.0)},
    )
    loss = compare(errors, "mae", "keras", "hist_mean")
    assert loss["outcome"] == "worse" and loss["difference"] == pytest.approx(0.8)
    deviance = judge(errors, "poisson_deviance")
    assert deviance["use"] == "hist_mean" and deviance["tied"] == ["hist_mean"]
    assert level_sentence({"metrics": {"poisson_deviance": deviance}}, "week").startswith(
        "Use hist_mean for the level of next-week severity: it has the best Poisson deviance"
    )


def test_a_reference_is_never_the_model_to_use():
    base = np.full(len(ORIGINS), 4.0)
    scores = _scores(
        {"keras": base, "ma4": base, "zero": base * 0 + 1.0, "clairvoyant": base + 3},
        {
            "keras": np.full(len(ORIGINS), 50.0),
            "ma4": np.full(len(ORIGINS), 52.0) + _alternating(0.5),
            "zero": np.full(len(ORIGINS), 30.0),  # the lowest MAE: it rewards a median
            "clairvoyant": np.full(len(ORIGINS), 20.0),
        },
    )
    for metric in ("mae", "poisson_deviance", "pai_5"):
        judged = judge(scores, metric)
        assert judged["best"] not in REFERENCES and judged["use"] not in REFERENCES
        assert not set(judged["tied"]) & set(REFERENCES)
        assert set(REFERENCES) <= set(judged["estimates"])  # scored, shown, never judged
    judged = {"metrics": {m: judge(scores, m) for m in ("mae", "poisson_deviance", "pai_5")}}
    text = " ".join([*verdict_sentences(judged), level_sentence(judged), ranking_sentence(judged)])
    assert "Use zero" not in text and "Use clairvoyant" not in text
    assert "use zero" not in text and "use clairvoyant" not in text
    assert "References, not models to use: the all-zero forecast has MAE 3.00" in text
    assert "The all-zero forecast has a lower MAE than every model" in text
    # the order of simplicity
    assert [simplicity(m) for m in ("last", "ma13", "hist_mean", "spatial_smooth", "gbm")] == [
        0,
        0,
        0,
        1,
        1,
    ]
    # the field's methods have a few parameters each: simpler than the network
    assert simplicity("kde") == simplicity("prospective") == simplicity("sepp") == 1
    assert simplicity("keras") == 2


def test_the_bootstrap_interval_is_the_hand_computed_one():
    diff = np.array([-3.0, 1.0, 0.5, -2.0, 4.0, -1.5, 0.0, 2.5])
    cells = np.array([10.0, 12.0, 9.0, 10.0, 11.0, 10.0, 8.0, 10.0])
    estimate, low, high, n = paired_bootstrap(diff, cells, n_resamples=2000, seed=7)
    # by hand: 2,000 resamples of 8 origins from default_rng(7), pooled ratio, 2.5%/97.5%
    rng = np.random.default_rng(7)
    stats = []
    for _ in range(2000):
        pick = rng.integers(0, 8, size=8)
        stats.append(sum(diff[i] for i in pick) / sum(cells[i] for i in pick))
    stats = sorted(stats)

    # numpy's default quantile: linear between the order statistics at (B - 1) q
    def quantile(q: float) -> float:
        pos = (len(stats) - 1) * q
        lo = math.floor(pos)
        return stats[lo] + (stats[lo + 1] - stats[lo]) * (pos - lo)

    assert n == 8
    assert estimate == pytest.approx(diff.sum() / cells.sum())  # 1.5 / 80
    assert low == pytest.approx(quantile(0.025), abs=1e-12)
    assert high == pytest.approx(quantile(0.975), abs=1e-12)
    # a difference that never varies has an interval of one point; NaN origins are left out
    assert paired_bootstrap([0.5] * 6 + [np.nan]) == (0.5, 0.5, 0.5, 6)
    # fewer than five origins: no interval (every pair ties)
    assert np.isnan(paired_bootstrap([1.0, 2.0, 3.0])[1])


def test_poisson_deviance_uses_the_zero_actual_convention_and_a_floor():
    actual = np.array([0.0, 3.0, 10.0, 0.0])
    pred = np.array([2.0, 3.0, 4.0, 0.0])
    # by hand: 2p for a zero actual; 2 (y log(y/p) - y + p) else; p floored at 1e-6
    terms = [
        2 * 2.0,
        0.0,
        2 * (10 * math.log(10 / 4) - 10 + 4),
        2 * 1e-6,
    ]
    np.testing.assert_allclose(poisson_deviance_terms(actual, pred), terms, rtol=1e-12)
    m = point_metrics(actual, pred)
    assert m["poisson_deviance"] == pytest.approx(np.mean(terms), rel=1e-12)
    from sklearn.metrics import mean_poisson_deviance

    assert m["poisson_deviance"] == pytest.approx(
        mean_poisson_deviance(actual, np.maximum(pred, 1e-6)), rel=1e-12
    )
    assert m["total_bias"] == pytest.approx(9.0 / 13.0 - 1.0)
    # the all-zero forecast where crime happens: y (log y + log 1e6) - y per cell, heavily
    zero = point_metrics(np.array([5.0]), np.array([0.0]))["poisson_deviance"]
    assert zero == pytest.approx(2 * (5 * math.log(5 / 1e-6) - 5 + 1e-6))


# --- on the real West LA record --------------------------------------------------------------


@pytest.fixture(scope="module")
def westla_rd(tmp_path_factory) -> Cube:
    frame, _ = load_incidents(crime_file(WESTLA), cache=tmp_path_factory.mktemp("w"))
    rows = frame[frame["area"] == 8]
    units = attach_population(make_units("rd", rows))
    ids, _ = assign_units(rows, units)
    return build_cube(rows, units, ids, freq="W", coverage=check_coverage(rows, freq="W"))


@pytest.fixture(scope="module")
def westla_backtest(westla_rd):
    return evaluate(westla_rd, models=["hist_mean", "ma4", "last", "spatial_smooth"], seed=0)


def test_every_usable_origin_is_scored_with_a_bounded_number_of_fits(westla_rd, westla_backtest):
    result = westla_backtest
    complete = np.asarray(westla_rd.complete, bool)
    history = result.config["history_required"]
    eligible = eligible_cells(complete, history)
    first = result.config["min_train_periods"] - 1
    usable = [
        t
        for t in range(first, westla_rd.shape[1] - 1)
        if eligible[:, t].mean() >= 0.5 and eligible[:, t].any()
    ]
    assert len(result.origins) == len(usable) == result.config["n_origins"] > 40
    assert list(result.origins) == [westla_rd.periods[t] for t in usable]
    assert result.config["refit_every"] == math.ceil(len(usable) / MAX_FITS)
    assert all(t["fits"] <= MAX_FITS for t in result.timings.values())
    # the references are rows of the metrics, after the models
    assert list(result.metrics.index[-2:]) == ["zero", "clairvoyant"]
    judged = result.judgements()
    assert judged["n_origins"] == len(usable)
    assert judged["metrics"]["mae"]["use"] not in REFERENCES


def test_the_clairvoyant_reference_for_one_district_by_hand(westla_rd, westla_backtest):
    pred = westla_backtest.predictions
    clair = pred[pred["model"] == "clairvoyant"]
    row = clair.sort_values(["unit_id", "origin"]).iloc[len(clair) // 2]
    i = list(westla_rd.unit_ids).index(row["unit_id"])
    s = list(westla_rd.periods).index(row["period"])
    y = target_values(westla_rd, "severity")[i]
    complete = np.asarray(westla_rd.complete, bool)[i]
    # its mean over every complete week of the panel except the target week, future included
    others = [y[t] for t in range(len(y)) if complete[t] and t != s]
    assert any(t > s for t in range(len(y)) if complete[t])  # the future is in it
    assert row["prediction"] == pytest.approx(sum(others) / len(others), rel=1e-12)
    zero = pred[pred["model"] == "zero"]
    assert (zero["prediction"] == 0).all() and len(zero) == len(clair)
    # the same cells as every model
    cells = pred[pred["model"] == "hist_mean"][["unit_id", "origin"]].to_numpy().tolist()
    assert clair[["unit_id", "origin"]].to_numpy().tolist() == cells


def test_the_total_bias_by_hand(westla_backtest):
    pred = westla_backtest.predictions
    for model in ("ma4", "zero", "clairvoyant"):
        part = pred[pred["model"] == model]
        by_hand = sum(part["prediction"]) / sum(part["actual"]) - 1
        assert westla_backtest.metrics.at[model, "total_bias"] == pytest.approx(by_hand, rel=1e-9)
    assert westla_backtest.metrics.at["zero", "total_bias"] == -1.0
    # the per-origin scores add up to the pooled table
    scores = westla_backtest.origin_scores
    ma4 = scores[scores["model"] == "ma4"]
    assert ma4["abs_error"].sum() / ma4["n"].sum() == pytest.approx(
        westla_backtest.metrics.at["ma4", "mae"], rel=1e-9
    )
    assert ma4["deviance"].sum() / ma4["n"].sum() == pytest.approx(
        westla_backtest.metrics.at["ma4", "poisson_deviance"], rel=1e-9
    )


def test_both_references_are_in_every_metrics_file_a_run_writes(tmp_path):
    study = StudySettings(
        name="westla",
        areas=[8],
        start="2020-07-01",
        end="2021-08-01",
        units=["rd"],
        statistics=[],
        forecast=True,
        forecast_models=["keras", "hist_mean", "ma4"],
    )
    settings = RunSettings(
        name="r", inputs=[str(crime_file(WESTLA))], outputs=tmp_path, studies=[study]
    )
    result = run_pipeline(settings, quiet=True)
    files = sorted(result.folder.rglob("forecast_metrics.json"))
    assert files
    for path in files:
        data = json.loads(path.read_text())
        assert list(data["metrics"])[-2:] == ["zero", "clairvoyant"]
        assert set(data["references"]) == {"zero", "clairvoyant"}
        assert data["judgements"]["metrics"]["poisson_deviance"]["use"] not in REFERENCES
        text = path.with_suffix(".md").read_text()
        assert "| zero (reference) |" in text and "| clairvoyant (reference) |" in text
    summary = json.loads((result.folder / "summary.json").read_text())
    forecast = summary["westla"]["units"]["rd"]["forecast"]
    assert {"zero", "clairvoyant"} <= set(forecast["metrics"])
    assert len(forecast["origins"]) == forecast["judgements"]["n_origins"] > 20
    report = (result.folder / "report.md").read_text()
    assert "| zero (reference) |" in report and "| clairvoyant (reference) |" in report
    assert "Use zero" not in report and "Use clairvoyant" not in report
    assert "95% interval" in report
    # the published Keras forecast is a median: its measured bias is stated with its totals
    bias = forecast["metrics"]["keras"]["total_bias"]
    assert f"its totals were {abs(bias):.0%} {'below' if bias < 0 else 'above'}" in report
    # a recommended ranking names an output the reader can open: published, ranks only
    use = forecast["judgements"]["metrics"]["pai_5"]["use"]
    if use == "keras":
        assert not forecast["ranking_file"]
    else:
        path = result.folder / forecast["ranking_file"]
        assert path.name == f"next_period_ranking_{use}.csv" and "public" in path.parts
        ranking = pd.read_csv(path, dtype={"unit_id": str})
        assert list(ranking.columns) == ["unit_id", "place", "suppressed", "rank", "top_10_percent"]
        ranked = ranking.dropna(subset=["rank"])
        assert ranked["rank"].astype(int).tolist() == list(range(1, len(ranked) + 1))
        published = pd.read_csv(path.with_name("next_period_forecast.csv"), dtype={"unit_id": str})
        shown = set(published.loc[published["prediction"].notna(), "unit_id"])
        assert set(ranked["unit_id"]) <= shown  # no suppressed unit is ranked
        assert ranking.loc[ranking["suppressed"], "rank"].isna().all()
        assert f"is published in `{forecast['ranking_file']}`" in report


def test_the_ranking_sentence_names_the_published_ranking():
    judged = {
        "metrics": {
            "pai_5": judge(
                _scores(
                    {"keras": np.full(30, 5.0) + _alternating(1.0), "hist_mean": np.full(30, 5.0)},
                    {"keras": np.full(30, 40.0), "hist_mean": np.full(30, 40.0)},
                ),
                "pai_5",
            )
        }
    }
    text = ranking_sentence(judged, ranking_file="public/s/forecast_rd/next_period_ranking_x.csv")
    assert "use hist_mean" in text
    assert "is published in `public/s/forecast_rd/next_period_ranking_x.csv`" in text
    assert "Only the Keras forecast's ranking" in ranking_sentence(judged)


def test_the_bias_sentence_states_the_measured_bias(westla_backtest):
    metrics = westla_backtest.metrics.to_dict(orient="index")
    bias = metrics["ma4"]["total_bias"]
    sentence = bias_sentence(metrics, "ma4", median=False)
    direction = "below" if bias < 0 else "above"
    assert sentence.startswith(
        f"The ma4 forecast is a mean: over the backtest its totals were {abs(bias):.0%} "
        f"{direction} the actual totals (sum of forecasts / sum of actuals - 1 = {bias:+.2f})"
    )
    # the published Keras forecast, a median, with a bias measured on the backtest
    keras = bias_sentence({"keras": {"total_bias": -0.32}})
    assert keras.startswith(
        "The Keras forecast is a median: over the backtest its totals were 32% below"
    )
    assert bias_sentence({"keras": {"total_bias": None}}) == ""
