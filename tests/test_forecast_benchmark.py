"""The forecast panels benchmark (benchmarks/forecast_panels.py), on a small synthetic panel.

Its verdicts come from the backtest's per-origin scores, pooled over seeds: checked here against
the error sums recomputed from the scores, with the Markdown it writes (every model, the
references, fit times, the verdicts, the hook for later sections) and ``--render`` from the JSON.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import group_panels
from benchmarks.forecast_panels import (
    COMMAND,
    backtest_panel,
    main,
    panel_record,
    pooled_judgements,
)
from benchmarks.forecast_report import metric_verdict, network_lines, write_markdown
from geo_crime.forecast.metrics import poisson_deviance_terms
from geo_crime.forecast.verdicts import judgements
from geo_crime.settings import StudySettings
from tests.fakes.forecast_cubes import synthetic_cube

MODELS = ["hist_mean", "ma4", "last", "kde", "prospective", "sepp"]


@pytest.fixture(scope="module")
def panel():
    cube = synthetic_cube(n_units=30, n_periods=40, seed=4)
    study = StudySettings(
        name="synthetic_weekly", forecast_models=MODELS, forecast_origins=8, refit_every=4
    )
    runs, scores = [], []
    for seed in (0, 1):
        run, origin_scores = backtest_panel(cube, study, seed, "fast")
        runs.append(run)
        scores.append(origin_scores)
    return cube, runs, scores


def test_the_verdict_is_the_paired_difference_of_the_pooled_scores(panel):
    _, runs, scores = panel
    judged = pooled_judgements(scores)
    assert judged["n_seeds"] == 2 and judged["n_origins"] == 8
    # no stochastic model here: the two seeds' scores, and so the pooled judgements, agree
    assert (
        judged["metrics"]["poisson_deviance"]
        == runs[0]["judgements"]["metrics"]["poisson_deviance"]
    )
    v = metric_verdict(judged, "poisson_deviance")
    # each model's mean Poisson deviance over every scored cell, from the scores by hand
    s = scores[0]
    mean = {
        m: s.loc[s["model"] == m, "deviance"].sum() / s.loc[s["model"] == m, "n"].sum()
        for m in MODELS
    }
    ranked = sorted(mean, key=mean.get)
    assert (v["best"], v["runner_up"]) == tuple(ranked[:2])
    assert v["difference"] == pytest.approx(mean[ranked[0]] - mean[ranked[1]], rel=1e-9)
    assert v["value"] == pytest.approx(runs[0]["metrics"][ranked[0]]["poisson_deviance"], 1e-5)
    assert v["low"] <= v["difference"] <= v["high"]
    # a win only where the runner-up's interval excludes zero (and so every other one does)
    assert (v["outcome"] == "wins") == (len(v["tied"]) == 1)
    if v["high"] >= 0:
        assert v["outcome"] == "tie" and v["runner_up"] in v["tied"]
    assert v["use"] in v["tied"]


def test_a_tie_names_the_simplest_model_even_when_it_scores_worse():
    """Per-origin deviance sums whose difference changes sign: the interval covers zero."""
    kde = [10.0, 12.0, 9.0, 11.0, 10.0, 12.0, 9.0, 11.0]
    hist = [11.0, 10.0, 10.0, 10.0, 12.0, 11.0, 10.0, 10.5]
    scores = pd.DataFrame(
        [
            {"model": m, "origin": t, "n": 1, "abs_error": v, "deviance": v}
            for m, values in (("kde", kde), ("hist_mean", hist))
            for t, v in enumerate(values)
        ]
    )
    v = metric_verdict(judgements(scores), "poisson_deviance")
    assert (v["best"], v["runner_up"]) == ("kde", "hist_mean")  # deviance sums 84.0 vs 84.5
    assert v["difference"] == pytest.approx((sum(kde) - sum(hist)) / 8)
    assert v["low"] < 0 < v["high"]
    assert v["outcome"] == "tie" and v["use"] == "hist_mean"


def test_the_markdown_shows_every_model_the_references_the_verdicts_and_renders_again(
    panel, tmp_path, monkeypatch
):
    cube, runs, scores = panel
    record = panel_record(runs)
    judged = pooled_judgements(scores)
    record["judgements"] = judged
    record["verdicts"] = {m: metric_verdict(judged, m) for m in ("poisson_deviance", "pai_5")}
    out = tmp_path / "forecast.md"
    extra = ["## Daily per-crime-group panels", "", "filled by another function"]
    networks = network_lines({"synthetic_weekly:h3": record}, networks=("sepp",))
    write_markdown({"synthetic_weekly:h3": record}, out, COMMAND, extra, networks)
    text = out.read_text()
    # a model judged as a network against the best baseline, with the verdicts' interval
    c = judged["metrics"]["poisson_deviance"]["against_baseline"]["sepp"]
    assert "| synthetic_weekly:h3 | sepp (severity) | " in text
    assert f" {c['against']}: {c['difference']:+.3f} ({c['low']:+.3f} to {c['high']:+.3f})" in text
    for model in MODELS:
        assert f"| {model} |" in text
    assert "| zero (reference) |" in text and "| clairvoyant (reference) |" in text
    assert "fit s (2 fits)" in text and "severity points per unit-week" in text
    assert text.rstrip("\n").endswith("\n".join(extra))
    best = record["verdicts"]["poisson_deviance"]["best"]
    assert f"best **{best}**" in text
    # the zero reference's Poisson deviance, from the actuals of the scored cells (every unit at
    # every origin: the synthetic panel is completely recorded), each forecast floored at 1e-6
    actual = np.concatenate(
        [
            np.asarray(cube.severity, dtype=float)[:, pd.Index(cube.periods).get_loc(p)]
            for p in pd.date_range(runs[0]["origins"][0], runs[0]["origins"][1], freq="W-MON")
            + pd.Timedelta(weeks=1)
        ]
    )
    assert actual.size == runs[0]["scored_cells"] == 30 * 8
    zero = runs[0]["metrics"]["zero"]["poisson_deviance"]
    assert zero == pytest.approx(poisson_deviance_terms(actual, np.zeros_like(actual)).mean())
    # --render rewrites the same Markdown from the saved JSON
    payload = {
        "synthetic_weekly:h3": {
            k: record[k] for k in ("runs", "judgements", "verdicts", "scored_cells", "seconds")
        }
    }
    out.with_suffix(".json").write_text(json.dumps(payload, default=str))
    rendered = tmp_path / "again.md"
    rendered.with_suffix(".json").write_text(out.with_suffix(".json").read_text())
    monkeypatch.setattr(group_panels, "OUT", tmp_path / "no_groups.json")  # none saved here
    assert main(["--render", "--out", str(rendered)]) == 0
    expected = tmp_path / "expected.md"
    write_markdown(
        {"synthetic_weekly:h3": record}, expected, COMMAND, None, network_lines({"x": record})
    )
    assert rendered.read_text() == expected.read_text()
