"""Forecast report: every model on every metric, two figures, and plain verdicts.

:func:`write_forecast_report` turns one :class:`~geo_crime.forecast.evaluate.BacktestResult` into

``forecast_metrics.md``
    The metrics table (Markdown), the backtest settings, what was left out, and sentences saying
    plainly where the Keras model does **not** beat a baseline on MAE and on harm-weighted PAI@5%.
``forecast_metrics.json``
    The same in machine-readable form.
``forecast_vs_actual.png``
    Total actual vs forecast per target period (scored cells), and the Keras forecasts against
    the actuals per cell.
``harm_capture.png``
    Share of next-period severity captured against share of area selected, per model, with the
    perfect-knowledge curve.

:func:`run_real_data_report` builds the real-data panels (West LA 2020-21 weekly by reporting
district and by H3 resolution 9; city-wide 2024 weekly with its coverage mask by H3 resolution 8
and by reporting district; the original study's 21 divisions x day task on 2024) and writes one
report per panel plus a summary. Figures use the non-interactive Agg backend.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.errors import DataError
from geo_crime.forecast.evaluate import BacktestResult
from geo_crime.io_utils import atomic_path, atomic_write_text

__all__ = [
    "build_panel",
    "metrics_markdown",
    "overview_markdown",
    "plot_forecast_vs_actual",
    "plot_harm_capture",
    "run_real_data_report",
    "write_forecast_report",
]

_COLUMNS = {
    "n": "cells",
    "mae": "MAE",
    "rmse": "RMSE",
    "r2": "R²",
    "poisson_deviance": "Poisson dev.",
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
    """The Markdown report of one backtest (see the module docstring)."""
    m = result.metrics.copy()
    shown = m[[c for c in _COLUMNS if c in m.columns]].rename(columns=_COLUMNS)
    shown.insert(0, "model", shown.index)
    cfg = result.config
    lines = [
        f"## {title or result.name}",
        "",
        f"Forecast of each unit's next-{_period_word(result.freq)} **{result.target}** "
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
        *_scope_sentences(result),
        "### Does the Keras model beat the baselines?",
        "",
    ]
    lines += [f"- {v}" for v in result.verdicts()]
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


def _period_word(freq: str) -> str:
    return {"D": "day", "W": "week", "M": "month"}.get(freq, "period")


def _plot_models(result: BacktestResult, limit: int = 5) -> list[str]:
    """Keras, the study network, and the best baselines by MAE (at most ``limit``)."""
    ranked = result.metrics.sort_values("mae").index.tolist()
    chosen = [m for m in ("keras", "study_conv1d") if m in ranked]
    chosen += [m for m in ranked if m not in chosen][: max(0, limit - len(chosen))]
    if "hist_mean" in ranked and "hist_mean" not in chosen:
        chosen.append("hist_mean")
    return chosen


def plot_forecast_vs_actual(result: BacktestResult, path: str | os.PathLike) -> Path:
    """Totals per target period (actual vs forecasts) and Keras forecast vs actual per cell."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    pred = result.predictions
    models = _plot_models(result)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1.6, 1]})
    ax = axes[0]
    first = pred.loc[pred["model"] == models[0]] if models else pred.iloc[0:0]
    actual = first.groupby("period")["actual"].sum()
    ax.plot(
        actual.index, actual.to_numpy(), color="black", lw=2.2, marker="o", ms=3, label="actual"
    )
    for name in models:
        part = pred.loc[pred["model"] == name].groupby("period")["prediction"].sum()
        ax.plot(part.index, part.to_numpy(), lw=1.3, label=name)
    n_cells = first.groupby("period").size()
    varying = n_cells.nunique() > 1
    ax.set_title(
        f"Total {result.target} over scored cells, per target period"
        + ("\n(the scored cells change with coverage: totals are not a trend)" if varying else ""),
        fontsize=10,
    )
    ax.set_ylabel(result.target)
    ax.legend(fontsize=8, ncol=2)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax = axes[1]
    ref = "keras" if "keras" in result.metrics.index else (models[0] if models else None)
    if ref is not None:
        part = pred.loc[pred["model"] == ref]
        ax.scatter(part["prediction"], part["actual"], s=6, alpha=0.35, color="tab:blue")
        top = float(max(part["prediction"].max(), part["actual"].max(), 1.0))
        ax.plot([0, top], [0, top], color="grey", lw=1, ls="--")
        if "lower" in part and part["lower"].notna().all():
            cover = (
                result.metrics.at[ref, "coverage_80"] if "coverage_80" in result.metrics else None
            )
            if cover is not None and pd.notna(cover):
                ax.text(
                    0.02,
                    0.95,
                    f"80% interval coverage: {cover:.0%}",
                    transform=ax.transAxes,
                    fontsize=8,
                    va="top",
                )
        ax.set_xscale("symlog")
        ax.set_yscale("symlog")
        ax.set_xlabel(f"{ref} forecast")
        ax.set_ylabel("actual")
        ax.set_title(f"{ref}: forecast vs actual per cell", fontsize=10)
    fig.suptitle(result.name, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_harm_capture(
    result: BacktestResult, path: str | os.PathLike, *, max_share: float = 0.3
) -> Path:
    """Captured share of next-period severity vs share of area selected, per model."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    curves = result.curves
    fig, ax = plt.subplots(figsize=(7, 5))
    x = curves.index.to_numpy()
    keep = x <= max_share + 1e-9
    for name in [c for c in curves.columns if c != "perfect"]:
        style = {"lw": 2.4, "color": "tab:red"} if name == "keras" else {"lw": 1.1}
        ax.plot(x[keep] * 100, curves[name].to_numpy()[keep] * 100, label=name, **style)
    if "perfect" in curves:
        ax.plot(
            x[keep] * 100,
            curves["perfect"].to_numpy()[keep] * 100,
            color="black",
            ls="--",
            label="perfect knowledge",
        )
    ax.plot(x[keep] * 100, x[keep] * 100, color="grey", ls=":", label="random (PAI = 1)")
    for s in (1, 5, 10):
        ax.axvline(s, color="grey", lw=0.6, alpha=0.5)
    ax.set_xlabel("area selected (%), units ranked by forecast density")
    ax.set_ylabel(f"next-period {result.capture} captured (%)")
    ax.set_title(f"Harm capture: {result.name}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def write_forecast_report(
    result: BacktestResult, folder: str | os.PathLike, *, title: str | None = None
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
        plot_forecast_vs_actual(result, folder / "forecast_vs_actual.png"),
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


def overview_markdown(summary: dict[str, dict[str, Any]], reference: str = "keras") -> str:
    """One row per panel: the reference model against the best other model on MAE and PAI@5%.

    Parameters
    ----------
    summary : dict
        ``{panel: BacktestResult.to_dict()}``.
    reference : str, default "keras"
        The model compared.

    Returns
    -------
    str
        A Markdown table and one line per panel with the verdicts.
    """
    rows, lines = [], []
    for res in summary.values():
        metrics = res["metrics"]
        if reference not in metrics:
            continue
        others = {k: v for k, v in metrics.items() if k != reference}
        best_mae = min(others, key=lambda k: others[k]["mae"])
        best_pai = max(others, key=lambda k: others[k]["pai_5"] or -1)
        mine = metrics[reference]
        rows.append(
            {
                "panel": res["name"],
                "cells": float(mine["n"]),
                f"{reference} MAE": mine["mae"],
                "best other MAE": f"{others[best_mae]['mae']:.3f} ({best_mae})",
                f"{reference} PAI@5%": mine["pai_5"],
                "best other PAI@5%": f"{others[best_pai]['pai_5']:.3f} ({best_pai})",
                "beats all on MAE": "yes" if mine["mae"] < others[best_mae]["mae"] else "NO",
                "beats all on PAI@5%": "yes" if mine["pai_5"] > others[best_pai]["pai_5"] else "NO",
            }
        )
        lines.append(f"- **{res['name']}**: " + " ".join(res.get("verdicts", [])))
    if not rows:
        return ""
    return _table(pd.DataFrame(rows)) + "\n\n" + "\n".join(lines) + "\n"


# --- real-data panels -----------------------------------------------------------------------------

WESTLA_FILE = "Crime_Data_from_2020_to_Present__bigdataforsocialjustice_WestLA2020_modified.csv.gz"
CITY_2024_GLOB = "kyleW145_2024_by_area/*.json.gz"


def _trim_partial(cube, first_day: pd.Timestamp, last_day: pd.Timestamp):
    """Drop periods that run outside the days the data covers (a partial first or last week)."""
    starts = cube.periods
    if cube.freq == "W":
        ends = starts + pd.Timedelta(days=6)
    elif cube.freq == "M":
        ends = starts + pd.offsets.MonthEnd(0)
    else:
        ends = starts
    keep = (starts >= first_day.normalize()) & (ends <= last_day.normalize())
    return cube.select_periods(np.asarray(keep))


def build_panel(
    incidents: pd.DataFrame,
    *,
    units: str,
    freq: str,
    coverage=None,
    h3_resolution: int = 8,
    study_area: Any = "city",
    population: bool = True,
):
    """A cube of real incidents on reporting districts, H3 cells or divisions.

    Parameters
    ----------
    incidents : pandas.DataFrame
        Scored incidents from :func:`geo_crime.ingest.load_incidents`.
    units : {"rd", "h3", "division"}
        Reporting districts keyed by the recorded ``rpt_dist`` (geometry: the approximate layer
        derived from the incident points, for areas and neighbours), H3 cells filling
        ``study_area`` (plus any cell holding an incident), or the 21 divisions.
    freq : {"D", "W", "M"}
        Period length.
    coverage : CoverageResult, optional
        Completeness of (area, month); sets the cube's mask.
    h3_resolution : int, default 8
    study_area : default "city"
        For H3 units (see :func:`geo_crime.units.h3_units`).
    population : bool, default True
        Interpolate census-tract population onto the units (log population feature).

    Returns
    -------
    Cube
        Periods that run past either end of the data are dropped.
    """
    from geo_crime import units as units_mod
    from geo_crime.cube import build_cube

    if units == "rd":
        layer = units_mod.rd_units(incidents, source="derived")
        rd = incidents["rpt_dist"].astype("string")
        ids = rd.where(rd.isin(set(layer["unit_id"].astype(str))))
    elif units == "h3":
        layer = units_mod.h3_units(h3_resolution, study_area=study_area)
        ids, report = units_mod.assign_units(incidents, layer, ensure_cells=True)
        if report.added_cells:
            layer = units_mod.ensure_cells(layer, report.added_cells)
        # an H3 cell's division: the most common one among its incidents (for the one-hot)
        frame = pd.DataFrame({"unit_id": ids, "area": incidents["area"].astype("Int64")}).dropna()
        major = frame.groupby("unit_id")["area"].agg(lambda s: s.value_counts().index[0])
        layer = layer.copy()
        layer["area"] = layer["unit_id"].map(major).astype("Float64").astype(float)
        if layer["area"].isna().any():
            layer["area"] = layer["area"].fillna(layer["area"].mode().iloc[0])
    elif units == "division":
        layer = units_mod.division_units()
        ids = incidents["area"].astype("Int64").astype("string")
    else:
        raise DataError(f"units must be 'rd', 'h3' or 'division', got {units!r}")
    if population:
        from geo_crime.rates import attach_population

        try:
            layer = attach_population(layer)
        except Exception as exc:  # population is an optional feature
            layer.attrs["population_error"] = str(exc)
    cube = build_cube(incidents, layer, ids, freq=freq, coverage=coverage, categories=False)
    days = incidents["occurred_at"]
    return _trim_partial(cube, days.min(), days.max())


def run_real_data_report(
    folder: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    seed: int = 0,
    quick: bool = False,
    tune_budget: tuple[int, float] | None = (8, 180.0),
    panels: Sequence[str] = ("westla_rd", "westla_h3", "city_h3", "city_rd", "divisions_daily"),
    progress: Callable[[str], None] | None = print,
) -> list[Path]:
    """Backtest every model on the real LAPD panels and write one report per panel.

    Parameters
    ----------
    folder : path-like
        Output folder (one sub-folder per panel, plus ``README.md`` and ``summary.json``).
    data : path-like, optional
        The shared data folder (default :func:`geo_crime.config.data_dir`).
    seed : int, default 0
        Seed of every model.
    quick : bool, default False
        Use :data:`~geo_crime.forecast.model.FAST_CONFIG` and no tuning (a smoke run).
    tune_budget : (int, float) or None, default (8, 180)
        ``(max_trials, max_seconds)`` of the Keras tuning on the West LA panels (tuned on the
        periods before the first forecast origin only); ``None`` disables tuning.
    panels : sequence of str
        Which panels to run.
    progress : callable, optional
        Called with progress messages.

    Returns
    -------
    list of pathlib.Path
        Every file written.
    """
    from geo_crime.config import data_dir
    from geo_crime.coverage import check_coverage
    from geo_crime.forecast.evaluate import evaluate
    from geo_crime.forecast.model import DEFAULT_CONFIG, FAST_CONFIG, KerasForecaster, predict_next
    from geo_crime.forecast.study import reproduce_study
    from geo_crime.ingest import load_incidents

    say = progress or (lambda _msg: None)
    root = Path(data) if data is not None else data_dir()
    crime = root / "lapd_crime"
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    base = FAST_CONFIG if quick else DEFAULT_CONFIG
    tune = (
        None
        if (quick or tune_budget is None)
        else {
            "max_trials": tune_budget[0],
            "max_seconds": tune_budget[1],
        }
    )
    files: list[Path] = []
    summary: dict[str, Any] = {}
    sections: list[str] = []
    cache: dict[str, Any] = {}

    def westla():
        if "westla" not in cache:
            inc, _ = load_incidents([crime / WESTLA_FILE])
            cache["westla"] = (inc, check_coverage(inc))
        return cache["westla"]

    def city():
        if "city" not in cache:
            inc, _ = load_incidents(sorted(crime.glob(CITY_2024_GLOB)))
            cache["city"] = (inc, check_coverage(inc))
        return cache["city"]

    def westla_area():
        from geo_crime.units import division_units

        divs = division_units()
        return divs.loc[divs["area"] == 8].geometry.iloc[0]

    specs: dict[str, dict[str, Any]] = {
        "westla_rd": {
            "title": "(a) West LA 2020-21, weekly, reporting districts",
            "cube": lambda: build_panel(
                westla()[0], units="rd", freq="W", coverage=westla()[1]
            ).complete_periods(),
            "config": base,
            "eval": {"n_origins": 12, "refit_every": 4, "tune": tune},
        },
        "westla_h3": {
            "title": "(a) West LA 2020-21, weekly, H3 resolution 9",
            "cube": lambda: build_panel(
                westla()[0],
                units="h3",
                freq="W",
                coverage=westla()[1],
                h3_resolution=9,
                study_area=westla_area(),
            ).complete_periods(),
            "config": base,
            "eval": {"n_origins": 12, "refit_every": 4, "tune": tune},
        },
        "city_h3": {
            "title": "(b) City-wide 2024, weekly, H3 resolution 8 (coverage-masked)",
            "cube": lambda: build_panel(city()[0], units="h3", freq="W", coverage=city()[1]),
            "config": base.replace(lags=4),
            "eval": {"n_origins": 100, "refit_every": 3},
        },
        "city_rd": {
            "title": "(b) City-wide 2024, weekly, reporting districts (coverage-masked)",
            "cube": lambda: build_panel(city()[0], units="rd", freq="W", coverage=city()[1]),
            "config": base.replace(lags=4),
            "eval": {"n_origins": 100, "refit_every": 3},
        },
        "divisions_daily": {
            "title": "(c) The original study's task: 21 divisions, daily severity, 2024",
            "cube": lambda: build_panel(city()[0], units="division", freq="D", coverage=city()[1]),
            "config": base.replace(lags=14),
            "eval": {
                "n_origins": 400,
                "refit_every": 14,
                "models": [
                    "keras",
                    "gbm",
                    "study_conv1d",
                    "last",
                    "ma4",
                    "ma8",
                    "ma13",
                    "last_year",
                    "hist_mean",
                    "spatial_smooth",
                ],
            },
        },
    }
    for key in panels:
        spec = specs[key]
        t0 = time.perf_counter()
        say(f"[{key}] building the cube")
        cube = spec["cube"]()
        share = float(np.asarray(cube.complete).mean())
        say(f"[{key}] cube {cube.shape} ({share:.0%} of cells complete); backtesting")
        result = evaluate(
            cube,
            config=spec["config"],
            seed=seed,
            name=spec["title"],
            progress=(lambda msg, k=key: say(f"[{k}] {msg}")),
            **spec["eval"],
        )
        result.config["complete_share"] = round(share, 4)
        result.notes.insert(
            0,
            f"{share:.0%} of the cube's (unit, {_period_word(cube.freq)}) cells are complete "
            "by the coverage check; only those enter training rows, history and targets.",
        )
        if key == "divisions_daily":
            say(f"[{key}] reproducing the original study's protocol")
            study = reproduce_study(cube, seed=seed, epochs=30 if quick else 50)
            table = study.metrics.reset_index()
            result.extra[
                "The original study's protocol (80/20 split, days complete for all 21 "
                f"divisions: {study.info['days'][0]} .. {study.info['days'][1]}; test "
                f"{study.info['test_days'][0]} .. {study.info['test_days'][1]})"
            ] = table
            result.config["study"] = study.info
        panel_dir = out / key
        files += write_forecast_report(result, panel_dir, title=spec["title"])
        # the final model on the whole panel, saved with its metadata and next-period forecast
        cfg = result.config["keras_config"]
        from geo_crime.forecast.model import ForecastConfig

        final = KerasForecaster(ForecastConfig.from_dict(cfg), seed=seed).fit(cube)
        extra = {"backtest": result.to_dict()["metrics"].get("keras"), "panel": spec["title"]}
        if result.tuning:
            extra["tuning"] = result.tuning
        files.append(final.save(panel_dir / "keras_model", extra=extra))
        table = predict_next(final, cube)
        with atomic_path(panel_dir / "next_period_forecast.csv") as tmp:
            table.to_csv(tmp, index=False)
        files.append(panel_dir / "next_period_forecast.csv")
        seconds = time.perf_counter() - t0
        summary[key] = {**result.to_dict(), "seconds": round(seconds, 1)}
        sections.append(metrics_markdown(result, title=spec["title"]))
        say(f"[{key}] done in {seconds:.0f} s")
    intro = (
        "# Severity forecasts on the real LAPD panels\n\n"
        "Every model and baseline on every metric, per panel (rolling-origin backtests, no "
        "tuning or scaling on the test periods, incomplete cells excluded). Each panel's folder "
        "holds its figures, JSON and the final Keras model.\n\n"
    )
    overview = overview_markdown(summary)
    if overview:
        intro += "## Overview: Keras against the best other model per panel\n\n" + overview + "\n"
    files.append(atomic_write_text(out / "README.md", intro + "\n".join(sections)))
    files.append(
        atomic_write_text(
            out / "summary.json", json.dumps(summary, indent=2, default=_json_default)
        )
    )
    return files
