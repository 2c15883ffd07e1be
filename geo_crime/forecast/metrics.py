"""Forecast metrics: point errors, harm-weighted targeting (PAI, PEI) and backtest scoring.

Everything here is a pure function of arrays or of the backtest's long predictions table, so the
backtest (:mod:`geo_crime.forecast.evaluate`) and the original study's protocol
(:mod:`geo_crime.forecast.original`) score forecasts with the same code and import nothing from each
other.

Metrics
-------
``mae``, ``rmse``, ``r2``
    Pooled over all scored (unit, origin) cells (:func:`point_metrics`).
``poisson_deviance``
    The mean Poisson deviance ``2 (y log(y / p) - y + p)`` (:func:`poisson_deviance_terms`;
    ``y log(y / p)`` is 0 where ``y = 0``, so a zero actual costs ``2p``), with predictions
    floored at :data:`DEVIANCE_FLOOR` (it needs positive predictions): a model predicting zero
    where crime happens is heavily penalised, as the Poisson likelihood says it should be. Unlike
    MAE, which a median minimises (on sparse panels the all-zero forecast has the lowest MAE), it
    is a proper score for a mean.
``total_bias``
    Sum of the forecasts over sum of the actuals, minus one, over every scored cell: a median
    forecaster's totals fall short of the actual totals on skewed counts.
``pai_k``, ``pei_k``
    Reported only where ``k``% of the scored area holds at least :data:`MIN_UNITS_IN_SHARE` (5)
    units of the median scored size at every origin (:func:`reportable_shares`): on 14 scored
    cells, 1% of the area is a fraction of one cell, and PAI@1% would only repeat PAI@5%.
    Targeting at ``k`` = 1, 5, 10% of the area, weighted by harm: units are ranked by predicted
    density (prediction / area) and accumulated until ``k``% of the scored area is covered; the
    unit straddling the threshold counts pro rata, and units with equal predicted density are
    pooled (the expected capture of a random tie break; :func:`capture_curve`). The Predictive
    Accuracy Index (:func:`pai`) is the share of the next period's actual **severity** (the
    ``capture`` measure) in the selection divided by the area share ``k``; the Predictive
    Efficiency Index (:func:`pei`) divides it by the PAI of the perfect selection (ranking by
    actual density) at the same area share, so ``0 <= PEI <= 1``. Both are computed per origin and
    averaged. Areas: ``units["area_km2"]``, else polygon areas in EPSG:3310, else equal.
``coverage_80``, ``interval_width``
    For models with intervals: share of actuals inside the 80% interval, and its mean width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import xlogy

__all__ = [
    "CURVE_GRID",
    "DEVIANCE_FLOOR",
    "MIN_UNITS_IN_SHARE",
    "SHARES",
    "capture_curve",
    "pai",
    "pei",
    "point_metrics",
    "poisson_deviance_terms",
    "reportable_shares",
    "score_predictions",
]

#: Area shares of the targeting metrics.
SHARES = (0.01, 0.05, 0.10)

#: PAI@k and PEI@k are reported only when k% of the scored area holds this many units.
MIN_UNITS_IN_SHARE = 5

#: Predictions are floored at this before the Poisson deviance (which needs positive ones).
DEVIANCE_FLOOR = 1e-6

#: Grid of area shares of the stored capture curves.
CURVE_GRID = np.round(np.linspace(0.0, 1.0, 201), 4)


def capture_curve(
    pred: np.ndarray, actual: np.ndarray, area: np.ndarray, shares: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Share of the actual total captured by the top units, by predicted density, per area share.

    Parameters
    ----------
    pred, actual, area : numpy.ndarray
        Per unit: predicted value, actual value (e.g. next-period severity) and area.
    shares : sequence of float
        Area shares in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        Captured share of ``actual`` at each area share (NaN when the actual total is zero).
        Units are taken in decreasing ``pred / area``; the unit straddling a share counts pro
        rata and equal densities are pooled (see the module docstring).
    """
    pred = np.asarray(pred, dtype=float)
    actual = np.asarray(actual, dtype=float)
    area = np.asarray(area, dtype=float)
    shares = np.asarray(shares, dtype=float)
    total = actual.sum()
    if total <= 0 or len(pred) == 0:
        return np.full(shares.shape, np.nan)
    density = pred / area
    order = np.argsort(-density, kind="stable")
    d, a, v = density[order], area[order], actual[order]
    ends = np.append(np.flatnonzero(np.diff(d) != 0), len(d) - 1)  # last index of each tie group
    xs = np.concatenate([[0.0], np.cumsum(a)[ends] / a.sum()])
    ys = np.concatenate([[0.0], np.cumsum(v)[ends] / total])
    return np.interp(shares, xs, ys)


def pai(pred: np.ndarray, actual: np.ndarray, area: np.ndarray, share: float) -> float:
    """Predictive Accuracy Index: captured share of ``actual`` / area share.

    Parameters
    ----------
    pred, actual, area : numpy.ndarray
        Per unit: predicted value, actual value and area.
    share : float
        Area share selected, in ``(0, 1]``.

    Returns
    -------
    float
        NaN when the actual total is zero.

    Examples
    --------
    Four equal units, the forecast ranks the unit holding 6 of 10 incidents first:

    >>> pai([4, 3, 2, 1], [6, 2, 1, 1], [1, 1, 1, 1], 0.25)
    2.4
    """
    return float(capture_curve(pred, actual, area, [share])[0] / share)


def pei(pred: np.ndarray, actual: np.ndarray, area: np.ndarray, share: float) -> float:
    """Predictive Efficiency Index: PAI / the PAI of perfect knowledge at the same area share.

    The arguments are those of :func:`pai`; the result lies in ``[0, 1]`` (NaN when the actual
    total is zero).
    """
    got = capture_curve(pred, actual, area, [share])[0]
    best = capture_curve(actual, actual, area, [share])[0]
    return float(got / best) if best > 0 else float("nan")


def poisson_deviance_terms(actual: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Each cell's Poisson deviance ``2 (y log(y / p) - y + p)``.

    Parameters
    ----------
    actual, pred : numpy.ndarray
        Observed values ``y >= 0`` and forecasts ``p`` (floored at :data:`DEVIANCE_FLOOR`).

    Returns
    -------
    numpy.ndarray
        One term per cell; ``y log(y / p)`` is taken as 0 where ``y = 0`` (the term is ``2p``).

    Examples
    --------
    >>> poisson_deviance_terms([0.0, 2.0], [0.5, 2.0]).tolist()
    [1.0, 0.0]
    """
    y = np.asarray(actual, dtype=float)
    p = np.maximum(np.asarray(pred, dtype=float), DEVIANCE_FLOOR)
    return 2.0 * (xlogy(y, y) - xlogy(y, p) - y + p)


def point_metrics(actual: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R², mean Poisson deviance and total bias of pooled forecasts.

    Parameters
    ----------
    actual, pred : numpy.ndarray
        Observed and forecast values of the same cells.

    Returns
    -------
    dict
        ``mae``, ``rmse``, ``r2`` (NaN with fewer than two cells), ``poisson_deviance`` (the mean
        of :func:`poisson_deviance_terms`) and ``total_bias`` (sum of forecasts / sum of actuals
        - 1, NaN when the actuals sum to zero); all NaN without cells.
    """
    # heavy (about 0.7 s): the other metrics load fast
    from sklearn.metrics import r2_score

    actual = np.asarray(actual, dtype=float)
    pred = np.asarray(pred, dtype=float)
    keys = ("mae", "rmse", "r2", "poisson_deviance", "total_bias")
    if len(actual) == 0:
        return dict.fromkeys(keys, np.nan)
    err = pred - actual
    total = float(actual.sum())
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": float(r2_score(actual, pred)) if len(actual) > 1 else np.nan,
        "poisson_deviance": float(np.mean(poisson_deviance_terms(actual, pred))),
        "total_bias": float(pred.sum() / total - 1.0) if total > 0 else np.nan,
    }


def reportable_shares(predictions: pd.DataFrame, shares: Sequence[float]) -> list[float]:
    """Area shares ``k``: ``k``% of the scored area holds 5 median-sized units at every origin.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The backtest's long table (``model``, ``origin``, ``area_km2`` ...); the cells of the
        first model are read (every model is scored on the same cells).
    shares : sequence of float
        Candidate area shares.

    Returns
    -------
    list of float
        The shares whose PAI and PEI are reported (see :data:`MIN_UNITS_IN_SHARE`).
    """
    if predictions.empty:
        return []
    first = predictions["model"].iloc[0]
    part = predictions.loc[predictions["model"] == first]
    out = []
    for share in shares:
        ok = True
        for _, g in part.groupby("origin"):
            area = g["area_km2"].to_numpy(dtype=float)
            if share * area.sum() < MIN_UNITS_IN_SHARE * float(np.median(area)):
                ok = False
                break
        if ok:
            out.append(float(share))
    return out


def _share_key(kind: str, share: float) -> str:
    """Metric column of an area share: ``pai_5`` for PAI@5%."""
    return f"{kind}_{round(share * 100):g}"


def score_predictions(
    predictions: pd.DataFrame, names: Sequence[str], shares: Sequence[float]
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[float], pd.DataFrame]:
    """Metrics table, mean capture curves and notes from the backtest's long predictions table.

    Parameters
    ----------
    predictions : pandas.DataFrame
        One row per scored (model, unit, origin): ``model``, ``origin``, ``actual``,
        ``captured``, ``area_km2``, ``prediction``, ``lower``, ``upper``.
    names : sequence of str
        Models to score, in table order.
    shares : sequence of float
        Area shares of PAI and PEI.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame, list of str, list of float, pandas.DataFrame)
        The metrics (one row per reported model), the mean capture curve per model and of the
        ``perfect`` selection indexed by area share (:data:`CURVE_GRID`), notes on what was not
        reported, the reported area shares, and the per-origin scores: one row per reported
        model and origin with ``n`` (cells), the sums ``abs_error``, ``squared_error``,
        ``deviance``, ``forecast`` and ``actual``, and ``pai_k`` (NaN where not reported).
    """
    rows: dict[str, dict[str, float]] = {}
    curves: dict[str, np.ndarray] = {}
    notes: list[str] = []
    origin_rows: list[dict] = []
    perfect_done = False
    reportable = reportable_shares(predictions, shares)
    for share in shares:
        if share not in reportable:
            notes.append(
                f"PAI@{share:.0%} and PEI@{share:.0%} are not reported: {share:.0%} of the scored "
                f"area holds fewer than {MIN_UNITS_IN_SHARE} units at some origin."
            )
    for name in names:
        part = predictions.loc[predictions["model"] == name]
        missing = part["prediction"].isna()
        if missing.any():
            notes.append(
                f"{name} is not reported: it cannot forecast {int(missing.sum())} of the "
                f"{len(part)} scored cells (e.g. history shorter than a year for last_year)."
            )
            continue
        row: dict[str, float] = {"n": float(len(part))}
        row.update(point_metrics(part["actual"].to_numpy(), part["prediction"].to_numpy()))
        per_origin: dict[str, list[float]] = {_share_key("pai", s): [] for s in shares}
        per_origin.update({_share_key("pei", s): [] for s in shares})
        curve_list, perfect_list = [], []
        for origin, g in part.groupby("origin", sort=True):
            p = g["prediction"].to_numpy()
            a = g["captured"].to_numpy()
            ar = g["area_km2"].to_numpy()
            got = capture_curve(p, a, ar, shares)
            best = capture_curve(a, a, ar, shares)
            for s, gv, bv in zip(shares, got, best, strict=True):
                per_origin[_share_key("pai", s)].append(gv / s)
                per_origin[_share_key("pei", s)].append(gv / bv if bv > 0 else np.nan)
            origin_rows.append(
                _origin_row(name, origin, g, {s: gv / s for s, gv in zip(shares, got, strict=True)})
            )
            curve_list.append(capture_curve(p, a, ar, CURVE_GRID))
            if not perfect_done:
                perfect_list.append(capture_curve(a, a, ar, CURVE_GRID))
        for key, values in per_origin.items():
            arr = np.asarray(values, dtype=float)
            share = float(key.split("_")[1]) / 100.0
            ok = any(np.isclose(share, r) for r in reportable)
            row[key] = float(np.nanmean(arr)) if ok and np.isfinite(arr).any() else np.nan
        if part["lower"].notna().all() and part["upper"].notna().all():
            inside = (part["actual"] >= part["lower"]) & (part["actual"] <= part["upper"])
            row["coverage_80"] = float(inside.mean())
            row["interval_width"] = float((part["upper"] - part["lower"]).mean())
        rows[name] = row
        curves[name] = np.nanmean(np.vstack(curve_list), axis=0)
        if not perfect_done:
            curves["perfect"] = np.nanmean(np.vstack(perfect_list), axis=0)
            perfect_done = True
    metrics = pd.DataFrame.from_dict(rows, orient="index")
    metrics.index.name = "model"
    order = ["n", "mae", "rmse", "r2", "poisson_deviance", "total_bias"]
    order += [_share_key("pai", s) for s in shares] + [_share_key("pei", s) for s in shares]
    order += [c for c in ("coverage_80", "interval_width") if c in metrics]
    metrics = metrics.reindex(columns=order) if len(metrics) else metrics
    curve_frame = pd.DataFrame(curves, index=pd.Index(CURVE_GRID, name="area_share"))
    scores = pd.DataFrame(origin_rows)
    for share in shares:  # per-origin PAI only where the metrics table reports it
        if share not in reportable and len(scores):
            scores[_share_key("pai", share)] = np.nan
    return metrics, curve_frame, notes, reportable, scores


def _origin_row(name: str, origin: object, cells: pd.DataFrame, pai_at: dict) -> dict:
    """One model's scores at one origin: error sums over its cells and PAI per area share."""
    actual = cells["actual"].to_numpy(dtype=float)
    pred = cells["prediction"].to_numpy(dtype=float)
    row = {
        "model": name,
        "origin": origin,
        "n": len(cells),
        "abs_error": float(np.abs(pred - actual).sum()),
        "squared_error": float(((pred - actual) ** 2).sum()),
        "deviance": float(poisson_deviance_terms(actual, pred).sum()),
        "forecast": float(pred.sum()),
        "actual": float(actual.sum()),
    }
    row.update({_share_key("pai", s): float(v) for s, v in pai_at.items()})
    return row
