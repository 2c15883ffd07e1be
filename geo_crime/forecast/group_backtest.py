"""Backtest of the crime-group panels: the network against the best of the field, and their stack.

:func:`evaluate_groups` backtests every crime-group cube of
:func:`geo_crime.forecast.groups.group_cubes` with :func:`geo_crime.forecast.evaluate.evaluate`
(rolling origins, every usable origin, the same cells for every model, incidents of the group as
target and as what PAI captures), then adds

* ``stack``: the stacked ensemble of :data:`STACKED` (``hist_mean``, ``gbm``, ``kde`` and
  ``sepp``). At each origin its weights are the non-negative least-squares fit of the actual
  counts on the members' forecasts over every **earlier** origin's scored cells (equal weights
  until :data:`STACK_WARMUP` origins have been seen), so it never reads the period it forecasts;
* the **goal** of the network (:data:`GOAL_MODEL`, ``groupnet``): its PAI@1% over the best
  candidate's (the best of the stacked members and the stack on the test origins themselves, a
  maximum that favours the candidates), per group and pooled over groups (the per-origin mean
  of the groups' PAI@1%), with a paired bootstrap interval of the ratio of means over origins
  (:data:`geo_crime.forecast.verdicts.N_RESAMPLES` resamples). The goal is met where the ratio
  is at least :data:`GOAL_RATIO` and the interval excludes 1.

Verdicts per group follow :func:`geo_crime.forecast.verdicts.judgements` on Poisson deviance,
PAI@1% and PAI@5% (here count-weighted: the share of the group's next-period incidents in the
top k% of the area, over k%).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from geo_crime.cube.panel import Cube
from geo_crime.forecast.evaluate import evaluate
from geo_crime.forecast.metrics import SHARES, score_predictions
from geo_crime.forecast.references import REFERENCES
from geo_crime.forecast.verdicts import LEVEL, MIN_ORIGINS, N_RESAMPLES, SEED, judgements

__all__ = [
    "GOAL_MODEL",
    "GOAL_RATIO",
    "GROUP_MODELS",
    "STACKED",
    "GroupBacktest",
    "evaluate_groups",
    "ratio_interval",
    "stacked_predictions",
]

#: The stacked ensemble's members (the strongest simple and field methods).
STACKED = ("hist_mean", "gbm", "kde", "sepp")
#: Models backtested on each group panel by default.
GROUP_MODELS = (*STACKED, "prospective", "groupnet")
#: The network judged against the best candidate, and the ratio it must reach.
GOAL_MODEL = "groupnet"
GOAL_RATIO = 1.10
#: Earlier origins the stack needs before it fits weights (equal weights before).
STACK_WARMUP = 7
#: The metrics judged per group.
GROUP_JUDGED = ("poisson_deviance", "pai_1", "pai_5")


def stacked_predictions(
    predictions: pd.DataFrame, members: Sequence[str] = STACKED, *, warmup: int = STACK_WARMUP
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The online stacked ensemble's forecasts, and its weights per origin.

    Parameters
    ----------
    predictions : pandas.DataFrame
        A backtest's long predictions table (:class:`geo_crime.forecast.evaluate.BacktestResult`).
    members : sequence of str
        Models combined (those absent from the table are left out).
    warmup : int
        Earlier origins needed before the weights are fitted.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        Rows of model ``stack`` in the predictions' layout, and the weights (one row per
        origin, one column per member).
    """
    members = [m for m in members if (predictions["model"] == m).any()]
    keys = ["origin", "unit_id"]
    wide = predictions.loc[predictions["model"].isin(members)].pivot_table(
        index=keys, columns="model", values="prediction", aggfunc="first"
    )[members]
    base = predictions.loc[predictions["model"] == members[0]].set_index(keys)
    base = base.loc[wide.index]
    gram = np.zeros((len(members), len(members)))
    cross = np.zeros(len(members))
    out, weights = [], []
    for seen, (origin, part) in enumerate(wide.groupby(level="origin", sort=True)):
        x = np.nan_to_num(part.to_numpy(dtype=float))
        if seen >= warmup and np.linalg.matrix_rank(gram) == len(members):
            chol = np.linalg.cholesky(gram + 1e-9 * np.eye(len(members)))
            w, _ = nnls(chol.T, np.linalg.solve(chol, cross))
        else:
            w = np.full(len(members), 1.0 / len(members))
        rows = base.loc[part.index]
        out.append(
            rows.reset_index().assign(model="stack", prediction=x @ w, lower=np.nan, upper=np.nan)
        )
        weights.append({"origin": origin, **dict(zip(members, w, strict=True))})
        actual = rows["actual"].to_numpy(dtype=float)
        gram += x.T @ x
        cross += x.T @ actual
    frame = pd.concat(out, ignore_index=True)[predictions.columns]
    return frame, pd.DataFrame(weights).set_index("origin")


def ratio_interval(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> tuple[float, float | None, float | None, int]:
    """Ratio of means ``mean(a) / mean(b)`` over paired origins, with a percentile interval.

    Origins are resampled with replacement (``numpy.random.default_rng(seed)``); origins where
    either value is NaN are left out; with fewer than
    :data:`~geo_crime.forecast.verdicts.MIN_ORIGINS` no interval is drawn.

    Returns
    -------
    (float, float or None, float or None, int)
        The ratio, the interval's bounds and the number of origins.

    Examples
    --------
    >>> ratio_interval([2.0, 4.0], [1.0, 2.0])
    (2.0, None, None, 2)
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = len(a)
    if n == 0 or b.sum() == 0:
        return float("nan"), None, None, n
    ratio = float(a.mean() / b.mean())
    if n < MIN_ORIGINS:
        return ratio, None, None, n
    index = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    stats = a[index].mean(axis=1) / np.maximum(b[index].mean(axis=1), 1e-12)
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return ratio, float(low), float(high), n


@dataclass
class GroupBacktest:
    """What :func:`evaluate_groups` measured.

    Attributes
    ----------
    name : str
        Panel label.
    metrics : dict of str to pandas.DataFrame
        Per group, one row per model (the stack and the references included).
    origin_scores : dict of str to pandas.DataFrame
        Per group, per model and origin (what the intervals resample).
    judgements : dict
        Per group, :func:`geo_crime.forecast.verdicts.judgements` on :data:`GROUP_JUDGED`.
    goal : dict
        Per group and ``pooled``: ``metric``, ``best`` (the best candidate on it),
        ``model_value`` and ``best_value``, ``ratio``, ``low``, ``high``, ``n_origins``, ``met``
        and ``ceiling``: the clairvoyant reference's value over the best candidate's (the
        ratio a forecast that knew each cell's long-run rate, future included, would reach).
    stack_weights : dict of str to pandas.DataFrame
        Per group, the stack's weights per origin.
    timings : dict
        Per group, seconds per model (fit and predict).
    info : dict
        Origins, units, scored cells and incidents per group.
    notes : list of str
        What was left out and why.
    """

    name: str
    metrics: dict[str, pd.DataFrame]
    origin_scores: dict[str, pd.DataFrame]
    judgements: dict[str, Any]
    goal: dict[str, Any]
    stack_weights: dict[str, pd.DataFrame] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (no per-cell predictions)."""
        return {
            "name": self.name,
            "metrics": {
                g: m.astype(float).round(6).replace({np.nan: None}).to_dict(orient="index")
                for g, m in self.metrics.items()
            },
            "judgements": self.judgements,
            "goal": self.goal,
            "stack_weights_last": {
                g: w.iloc[-1].round(4).to_dict() for g, w in self.stack_weights.items() if len(w)
            },
            "timings": self.timings,
            "info": self.info,
            "notes": self.notes,
        }


def _goal(
    scores: pd.DataFrame, candidates: Sequence[str], model: str, metric: str = "pai_1"
) -> dict[str, Any]:
    """The model's PAI over the best candidate's, with its paired interval."""
    per = scores.pivot_table(index="origin", columns="model", values=metric, aggfunc="mean")
    present = [c for c in candidates if c in per and per[c].notna().any()]
    if model not in per or not present:
        return {
            "metric": metric,
            "best": None,
            "ratio": None,
            "low": None,
            "high": None,
            "n_origins": 0,
            "met": False,
        }
    best = max(present, key=lambda c: per[c].mean())
    ratio, low, high, n = ratio_interval(per[model], per[best])
    ceiling = float(per["clairvoyant"].mean() / per[best].mean()) if "clairvoyant" in per else None
    return {
        "ceiling": ceiling,
        "metric": metric,
        "best": best,
        "model_value": float(per[model].mean()),
        "best_value": float(per[best].mean()),
        "ratio": ratio,
        "low": low,
        "high": high,
        "n_origins": n,
        "met": bool(ratio >= GOAL_RATIO and low is not None and low > 1.0),
    }


def evaluate_groups(
    cubes: dict[str, Cube],
    *,
    models: Sequence[Any] = GROUP_MODELS,
    stack: Sequence[str] = STACKED,
    name: str = "",
    seed: int = 0,
    n_origins: int | None = None,
    min_train_periods: int | None = 91,
    shares: Sequence[float] = SHARES,
    goal_metric: str = "pai_1",
    progress: Callable[[str], None] | None = None,
) -> GroupBacktest:
    """Backtest each crime group's cube, stack the field's methods and judge the network.

    Parameters
    ----------
    cubes : dict of str to Cube
        :func:`geo_crime.forecast.groups.group_cubes`.
    models : sequence
        Names or forecasters (target ``count``).
    stack : sequence of str
        Members of the stacked ensemble.
    name : str
        Panel label.
    seed : int
        Seed of the stochastic models.
    n_origins, min_train_periods
        As :func:`geo_crime.forecast.evaluate.evaluate` takes them (default: every usable
        origin after 91 training periods).
    shares : sequence of float
        Area shares of PAI.
    goal_metric : str, default "pai_1"
        The PAI the goal compares (``pai_5`` on panels too small for PAI@1%).
    progress : callable, optional
        Receives one line per model and group.

    Returns
    -------
    GroupBacktest
    """
    metrics, origin_scores, judged, goal, weights, timings, info = {}, {}, {}, {}, {}, {}, {}
    notes: list[str] = []
    candidates = [*stack, "stack"]
    for group, cube in cubes.items():
        result = evaluate(
            cube,
            models=list(models),
            target="count",
            capture="count",
            seed=seed,
            n_origins=n_origins,
            min_train_periods=min_train_periods,
            shares=shares,
            name=f"{name} {group}".strip(),
            progress=(lambda line, g=group: progress(f"{g}: {line}")) if progress else None,
        )
        names = [m for m in result.metrics.index if m not in REFERENCES]
        table, w = stacked_predictions(result.predictions, stack)
        predictions = pd.concat([result.predictions, table], ignore_index=True)
        m, _, more, _, scores = score_predictions(
            predictions, [*names, "stack", *REFERENCES], shares
        )
        metrics[group], origin_scores[group], weights[group] = m, scores, w
        judged[group] = judgements(scores, metrics=GROUP_JUDGED, seed=seed)
        goal[group] = _goal(scores, candidates, GOAL_MODEL, goal_metric)
        timings[group] = result.timings
        info[group] = {
            "origins": [str(result.origins[0].date()), str(result.origins[-1].date())],
            "n_origins": len(result.origins),
            "n_units": cube.shape[0],
            "scored_cells": int(m["n"].max()),
            "incidents": int(cube.counts.sum()),
            "refit_every": result.config.get("refit_every"),
        }
        notes += [f"{group}: {n}" for n in dict.fromkeys([*result.notes, *more])]
    pooled = (
        pd.concat([s.assign(group=g) for g, s in origin_scores.items()], ignore_index=True)
        .groupby(["model", "origin"], as_index=False)[goal_metric]
        .mean()
    )
    goal["pooled"] = _goal(pooled, candidates, GOAL_MODEL, goal_metric)
    return GroupBacktest(
        name=name,
        metrics=metrics,
        origin_scores=origin_scores,
        judgements=judged,
        goal=goal,
        stack_weights=weights,
        timings=timings,
        info=info,
        notes=notes,
    )
