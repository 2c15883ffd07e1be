"""Forecast report: every model on every metric, plain verdicts, and two figures.

:func:`write_forecast_report` turns one :class:`~geo_crime.forecast.evaluate.BacktestResult` into

``forecast_metrics.md``
    The metrics table (Markdown, the references ``zero`` and ``clairvoyant`` labelled as such),
    the backtest settings, what was left out, and sentences saying plainly whether the Keras model
    beats the best baseline on Poisson deviance, MAE and harm-weighted PAI@5% (a win only where
    the paired bootstrap interval over origins excludes zero; a tie recommends the simpler).
``forecast_metrics.json``
    The same in machine-readable form.
``forecast_vs_actual.png``, ``harm_capture.png``
    The figures of :mod:`geo_crime.publish.figures.forecast`: totals and binned forecasts
    against the actuals, and the harm captured against the area selected.

This module writes text; the figures are drawn in the publish stage. Building the panels of a
study (data, units, periods, backtest settings) is the caller's business: this module only
writes what a backtest found.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.io_utils import atomic_write_text
from geo_crime.core.periods import Freq
from geo_crime.forecast.evaluate import BacktestResult
from geo_crime.forecast.references import REFERENCE_WORDS, is_reference
from geo_crime.forecast.verdicts import level_sentence, ranking_sentence
from geo_crime.publish.figures.forecast import plot_forecast_vs_actual, plot_harm_capture

__all__ = ["metrics_markdown", "write_forecast_report"]

_COLUMNS = {
    "n": "cells",
    "mae": "MAE",
    "rmse": "RMSE",
    "r2": "R²",
    "poisson_deviance": "Poisson dev.",
    "total_bias": "total bias",
    "pai_1": "PAI@1%",
    "pai_5": "PAI@5%",
    "pai_10": "PAI@10%",
    "pei_1": "PEI@1%",
    "pei_5": "PEI@5%",
    "pei_10": "PEI@10%",
    "coverage_80": "80% PI cover",
    "interval_width": "PI width",
    "fit_seconds": "fit s",
}


def _table(frame: pd.DataFrame) -> str:
    """GitHub Markdown table; floats with 3 significant decimals, NaN blank."""

    def cell(value: Any, column: str) -> str:
        if isinstance(value, float | np.floating):
            if pd.isna(value):
                return ""
            if column == "cells":
                return f"{int(value):,}"
            return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value).replace("|", "\\|")

    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v, c) for v, c in zip(row, cols, strict=True)) + " |")
    return "\n".join(lines)


def metrics_markdown(result: BacktestResult, *, title: str | None = None) -> str:
    """The Markdown report of one backtest (see the module docstring).

    Parameters
    ----------
    result : BacktestResult
        The backtest.
    title : str, optional
        Heading (default ``result.name``).

    Returns
    -------
    str
    """
    m = result.metrics.copy()
    shown = m[[c for c in _COLUMNS if c in m.columns]].rename(columns=_COLUMNS)
    shown.insert(0, "model", [f"{n} (reference)" if is_reference(n) else n for n in shown.index])
    references = [f"`{n}`: {REFERENCE_WORDS[n]}" for n in m.index if is_reference(n)]
    cfg = result.config
    lines = [
        f"## {title or result.name}",
        "",
        f"Forecast of each unit's next-{Freq.parse(result.freq).word} **{result.target}** "
        f"({result.unit_type} units, {cfg.get('n_units', '?'):,} units x "
        f"{cfg.get('n_periods', '?')} periods {cfg.get('periods', ['?', '?'])[0]} .. "
        f"{cfg.get('periods', ['?', '?'])[1]}). Rolling origin, expanding window: "
        f"{cfg.get('n_origins')} origins "
        f"({result.origins[0].date()} .. {result.origins[-1].date()}), refit every "
        f"{cfg.get('refit_every')} origins. Scored cells: complete target and "
        f"{cfg.get('history_required')} complete periods of history (the same cells for every "
        f"model). PAI/PEI capture next-period **{result.capture}** at 1/5/10% of the area.",
        "",
        _table(shown),
        "",
        *(
            ["References, never candidates: " + "; ".join(references) + ".", ""]
            if references
            else []
        ),
        "Total bias: sum of forecasts / sum of actuals - 1 over the scored cells (a median "
        "forecast falls short of the totals).",
        "",
        *_scope_sentences(result),
        "### Does the Keras model beat the baselines?",
        "",
        "Paired bootstrap over origins (2,000 resamples): a model wins only where the 95% "
        "interval of the difference excludes zero; otherwise the two tie and the simpler is "
        "recommended.",
        "",
    ]
    lines += [f"- {v}" for v in result.verdicts()]
    judged = result.judgements()
    lines += [f"- {level_sentence(judged, Freq.parse(result.freq).word)}"]
    ranking = ranking_sentence(judged)
    lines += [f"- {ranking}"] if ranking else []
    if result.notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in result.notes]
    if result.tuning:
        t = result.tuning
        lines += [
            "",
            "### Tuning",
            "",
            f"{t['n_trials']} trials in {t['seconds']} s (stopped by {t['stopped_by']}); "
            f"validation blocks {t['validation']['validation_blocks']} (before the first origin). "
            f"Chosen: `{t['best_hyperparameters']}`.",
        ]
    for name, table in result.extra.items():
        lines += ["", f"### {name}", ""]
        if "model" not in table.columns:
            table = table.reset_index()
        if "model" in table.columns:  # e.g. the original study's table: its references labelled
            table = table.assign(
                model=[f"{n} (reference)" if is_reference(n) else n for n in table["model"]]
            )
        lines.append(_table(table))
    keras_cfg = cfg.get("keras_config")
    if keras_cfg:
        keys = ("lags", "units", "layers", "dropout", "learning_rate", "batch_size", "max_epochs")
        lines += ["", "Keras settings: " + ", ".join(f"{k}={keras_cfg[k]}" for k in keys) + "."]
    return "\n".join(lines) + "\n"


def _scope_sentences(result: BacktestResult) -> list[str]:
    """What the backtest scored, in words (blank PAI/PEI cells are not reported)."""
    scope = result.scope or {}
    per_origin = scope.get("scored_units_per_origin") or []
    if not per_origin:
        return []
    n_units = scope.get("n_units") or 1
    scored, study = scope.get("scored_divisions", []), scope.get("study_divisions", [])
    where = f" in {len(scored)} of the {len(study)} divisions" if study else ""
    lines = [
        f"Scored: {min(per_origin):,}-{max(per_origin):,} of {n_units:,} units per origin "
        f"({min(per_origin) / n_units:.0%} at the fewest){where}. Blank PAI/PEI cells are not "
        "reported: that share of the scored area holds fewer than 5 units.",
        "",
    ]
    if not scope.get("covers_study_area", False):
        lines += [
            "**This backtest does not cover the study area** (fewer than 50% of the units "
            "scored at some origin): its figures describe the scored units only.",
            "",
        ]
    return lines


def write_forecast_report(
    result: BacktestResult,
    folder: str | os.PathLike,
    *,
    title: str | None = None,
    k_anonymity: int = DEFAULT_K,
) -> list[Path]:
    """Write the metrics (Markdown + JSON) and the two figures of a backtest.

    Parameters
    ----------
    result : BacktestResult
        From :func:`geo_crime.forecast.evaluate.evaluate`.
    folder : path-like
        Output folder (created).
    title : str, optional
        Heading of the Markdown section (default ``result.name``).
    k_anonymity : int, default 3
        The forecast-vs-actual panel draws no bin of fewer unit-periods.

    Returns
    -------
    list of pathlib.Path
        ``forecast_metrics.md``, ``forecast_metrics.json``, ``forecast_vs_actual.png``,
        ``harm_capture.png``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        atomic_write_text(folder / "forecast_metrics.md", metrics_markdown(result, title=title)),
        atomic_write_text(
            folder / "forecast_metrics.json",
            json.dumps(result.to_dict(), indent=2, default=_json_default),
        ),
        plot_forecast_vs_actual(result, folder / "forecast_vs_actual.png", k_anonymity=k_anonymity),
        plot_harm_capture(result, folder / "harm_capture.png"),
    ]
    return files


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer | np.floating):
        return None if pd.isna(value) else value.item()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    return str(value)
