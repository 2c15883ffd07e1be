"""Forecast report: every model on every metric, two figures, and plain verdicts.

:func:`write_forecast_report` turns one :class:`~geo_crime.forecast.evaluate.BacktestResult` into

``forecast_metrics.md``
    The metrics table (Markdown, the references ``zero`` and ``clairvoyant`` labelled as such),
    the backtest settings, what was left out, and sentences saying plainly whether the Keras model
    beats the best baseline on Poisson deviance, MAE and harm-weighted PAI@5% (a win only where
    the paired bootstrap interval over origins excludes zero; a tie recommends the simpler).
``forecast_metrics.json``
    The same in machine-readable form.
``forecast_vs_actual.png``
    Total actual vs forecast per target period (scored cells), and the Keras forecasts against
    the actuals per cell.
``harm_capture.png``
    Share of next-period severity captured against share of area selected, per model, with the
    perfect-knowledge curve.

Figures use the non-interactive Agg backend. Building the panels of a study (data, units,
periods, backtest settings) is the caller's business: this module only writes what a backtest
found.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.io_utils import atomic_path, atomic_write_text
from geo_crime.forecast.evaluate import BacktestResult
from geo_crime.forecast.references import REFERENCE_WORDS, is_reference
from geo_crime.forecast.verdicts import level_sentence, ranking_sentence

__all__ = [
    "metrics_markdown",
    "plot_forecast_vs_actual",
    "plot_harm_capture",
    "write_forecast_report",
]

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
    lines += [f"- {level_sentence(judged, _period_word(result.freq))}"]
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


def _period_word(freq: str) -> str:
    return {"D": "day", "W": "week", "M": "month"}.get(freq, "period")


def _plot_models(result: BacktestResult, limit: int = 5) -> list[str]:
    """Keras, the study network, and the best baselines by MAE (at most ``limit``); never a
    reference."""
    ranked = [m for m in result.metrics.sort_values("mae").index if not is_reference(m)]
    chosen = [m for m in ("keras", "study_conv1d") if m in ranked]
    chosen += [m for m in ranked if m not in chosen][: max(0, limit - len(chosen))]
    if "hist_mean" in ranked and "hist_mean" not in chosen:
        chosen.append("hist_mean")
    return chosen


def _binned_scatter(ax, x: pd.Series, y: pd.Series, top: float, k_anonymity: int) -> None:
    """Forecast against actual as a 2-D histogram on symlog-spaced bins: a public figure shows
    no single unit-period's value, only bins holding at least ``k_anonymity`` of them."""
    from matplotlib.colors import LogNorm

    edges = np.unique(np.concatenate([[0.0], np.geomspace(1.0, top * 1.05, 24)]))
    counts, xe, ye = np.histogram2d(
        np.clip(x.to_numpy(float), 0, None), np.clip(y.to_numpy(float), 0, None), bins=[edges] * 2
    )
    shown = np.ma.masked_less(counts.T, max(k_anonymity, 1))
    if shown.count():
        mesh = ax.pcolormesh(xe, ye, shown, cmap="Blues", norm=LogNorm(vmin=max(k_anonymity, 1)))
        ax.figure.colorbar(mesh, ax=ax, label="unit-periods", pad=0.02)


def plot_forecast_vs_actual(
    result: BacktestResult, path: str | os.PathLike, *, k_anonymity: int = DEFAULT_K
) -> Path:
    """Totals per target period (actual vs forecasts) and Keras forecast vs actual, binned.

    Parameters
    ----------
    result : BacktestResult
        The backtest.
    path : path-like
        The PNG written (atomically).
    k_anonymity : int, default 3
        Bins of the forecast-vs-actual panel holding fewer unit-periods are not drawn.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
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
        top = float(max(part["prediction"].max(), part["actual"].max(), 1.0))
        _binned_scatter(ax, part["prediction"], part["actual"], top, k_anonymity)
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
        ax.set_title(
            f"{ref}: forecast vs actual, cells per bin\n(bins with fewer than {k_anonymity} "
            "unit-periods not shown)",
            fontsize=10,
        )
    fig.suptitle(result.name, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_harm_capture(
    result: BacktestResult, path: str | os.PathLike, *, max_share: float = 0.3
) -> Path:
    """Captured share of next-period severity vs share of area selected, per model.

    Parameters
    ----------
    result : BacktestResult
        The backtest.
    path : path-like
        The PNG written (atomically).
    max_share : float, default 0.3
        Largest area share shown.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    curves = result.curves
    fig, ax = plt.subplots(figsize=(7, 5))
    x = curves.index.to_numpy()
    keep = x <= max_share + 1e-9
    for name in [c for c in curves.columns if c != "perfect" and not is_reference(c)]:
        style = {"lw": 2.4, "color": "tab:red"} if name == "keras" else {"lw": 1.1}
        ax.plot(x[keep] * 100, curves[name].to_numpy()[keep] * 100, label=name, **style)
    for name, color, ls, label in (
        ("clairvoyant", "grey", "-.", "clairvoyant (reference: uses the future)"),
        ("perfect", "black", "--", "perfect knowledge"),
    ):
        if name in curves:
            y = curves[name].to_numpy()[keep] * 100
            ax.plot(x[keep] * 100, y, color=color, ls=ls, label=label)
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
