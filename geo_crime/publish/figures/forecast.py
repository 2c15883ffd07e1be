"""The two figures of a forecast backtest (PNG), for the forecast report.

:func:`plot_forecast_vs_actual` (``forecast_vs_actual.png``)
    Total actual vs forecast per target period (scored cells), and the Keras forecasts against
    the actuals per cell as a 2-D histogram: a public figure shows no single unit-period's value,
    only bins holding at least ``k_anonymity`` of them.
:func:`plot_harm_capture` (``harm_capture.png``)
    Share of next-period severity captured against share of area selected, per model, with the
    perfect-knowledge curve.

Each is drawn with matplotlib's Agg renderer on a private ``Figure`` (pyplot and its global
state are never used) and written atomically; the ``*_figure`` functions return the figure
unsaved. :func:`geo_crime.report.forecast.write_forecast_report` writes both beside the
backtest's tables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.io_utils import atomic_path
from geo_crime.forecast.references import is_reference

if TYPE_CHECKING:
    from geo_crime.forecast.evaluate import BacktestResult

__all__ = [
    "forecast_vs_actual_figure",
    "harm_capture_figure",
    "plot_forecast_vs_actual",
    "plot_harm_capture",
]


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
    edges = np.unique(np.concatenate([[0.0], np.geomspace(1.0, top * 1.05, 24)]))
    counts, xe, ye = np.histogram2d(
        np.clip(x.to_numpy(float), 0, None), np.clip(y.to_numpy(float), 0, None), bins=[edges] * 2
    )
    shown = np.ma.masked_less(counts.T, max(k_anonymity, 1))
    if shown.count():
        mesh = ax.pcolormesh(xe, ye, shown, cmap="Blues", norm=LogNorm(vmin=max(k_anonymity, 1)))
        ax.figure.colorbar(mesh, ax=ax, label="unit-periods", pad=0.02)


def _new_figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    return Path(path)


def _totals_panel(ax: Any, result: BacktestResult, models: list[str]) -> None:
    """Total actual and forecasts over the scored cells, per target period."""
    pred = result.predictions
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


def _cells_panel(ax: Any, result: BacktestResult, ref: str, k_anonymity: int) -> None:
    """``ref``'s forecast against the actual per cell, binned (no bin under ``k_anonymity``)."""
    part = result.predictions.loc[result.predictions["model"] == ref]
    top = float(max(part["prediction"].max(), part["actual"].max(), 1.0))
    _binned_scatter(ax, part["prediction"], part["actual"], top, k_anonymity)
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--")
    if "lower" in part and part["lower"].notna().all():
        cover = result.metrics.at[ref, "coverage_80"] if "coverage_80" in result.metrics else None
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


def forecast_vs_actual_figure(result: BacktestResult, *, k_anonymity: int = DEFAULT_K) -> Figure:
    """The figure :func:`plot_forecast_vs_actual` writes (see there), unsaved."""
    models = _plot_models(result)
    fig = _new_figure((12, 4.5))
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    _totals_panel(axes[0], result, models)
    ref = "keras" if "keras" in result.metrics.index else (models[0] if models else None)
    if ref is not None:
        _cells_panel(axes[1], result, ref, k_anonymity)
    fig.suptitle(result.name, fontsize=11)
    fig.tight_layout()
    return fig


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
    return _save(forecast_vs_actual_figure(result, k_anonymity=k_anonymity), path)


def harm_capture_figure(result: BacktestResult, *, max_share: float = 0.3) -> Figure:
    """The figure :func:`plot_harm_capture` writes (see there), unsaved."""
    curves = result.curves
    fig = _new_figure((7, 5))
    ax = fig.subplots()
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
    return fig


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
    return _save(harm_capture_figure(result, max_share=max_share), path)
