"""Honest verdicts: paired bootstrap intervals over origins, ties go to the simplest model.

A backtest scores every model at the same origins on the same cells, so two models can be
compared origin by origin. For a metric and a pair of models ``a`` and ``b``,
:func:`paired_bootstrap` resamples the origins with replacement (:data:`N_RESAMPLES` resamples,
seed :data:`SEED`) and takes the 2.5% and 97.5% quantiles of the difference ``a - b`` of the
metric over the resampled origins: the pooled MAE or Poisson deviance (error sums over cell
counts) or the mean PAI@k. A model **wins** only where that 95% interval excludes zero; otherwise
the two **tie**, and the verdict recommends the simpler one (:func:`simplicity`: ``hist_mean``,
``ma*``, ``last`` and ``last_year`` first, then ``gbm`` and ``spatial_smooth``, then ``keras``,
the original study's network and any other method). With fewer than :data:`MIN_ORIGINS`
origins no interval is drawn and every pair ties.

:func:`judge` finds, per metric, the best model, the models that tie with it, and the one to use
(the simplest of those); it also compares every model with the best baseline other than itself.
The references of :mod:`geo_crime.forecast.references` are scored beside the models but never
judged: no verdict names them as the model to use. Levels are judged on Poisson deviance, a
proper score for counts (MAE rewards a median: the all-zero reference beats every baseline on it
on sparse panels), ranking on harm-weighted PAI@5%.

The judgements are plain dictionaries (they travel in ``forecast_metrics.json`` and the run
summary); :func:`verdict_sentences`, :func:`level_sentence`, :func:`ranking_sentence` and
:func:`bias_sentence` put them into words for the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.forecast.references import REFERENCES, is_reference

__all__ = [
    "JUDGED",
    "LEVEL",
    "MIN_ORIGINS",
    "N_RESAMPLES",
    "SEED",
    "bias_sentence",
    "compare",
    "judge",
    "judgements",
    "level_sentence",
    "paired_bootstrap",
    "ranking_sentence",
    "simplicity",
    "verdict_sentences",
]

#: Bootstrap resamples of the origins, their seed and the interval's level.
N_RESAMPLES = 2_000
SEED = 0
LEVEL = 0.95

#: Fewer origins than this draw no interval: every pair ties.
MIN_ORIGINS = 5

#: Metrics judged, in the order the verdicts speak of them.
JUDGED = ("poisson_deviance", "mae", "pai_5")

LABELS = {
    "poisson_deviance": "Poisson deviance",
    "mae": "MAE",
    "pai_1": "harm-weighted PAI@1%",
    "pai_5": "harm-weighted PAI@5%",
    "pai_10": "harm-weighted PAI@10%",
}
LOWER_IS_BETTER = {"poisson_deviance": True, "mae": True}

#: Per-origin columns of a metric: the numerator summed (or averaged) and its weight.
_SUMS = {"poisson_deviance": ("deviance", "n"), "mae": ("abs_error", "n")}


def simplicity(name: str) -> int:
    """0 for the simple baselines; 1 for ``gbm``, ``spatial_smooth`` and the field's methods
    (``kde``, ``prospective``, ``sepp``: a few parameters each); 2 for anything else (the
    networks).

    Examples
    --------
    >>> [simplicity(m) for m in ("ma13", "hist_mean", "gbm", "kde", "sepp", "keras")]
    [0, 0, 1, 1, 1, 2]
    """
    if name in ("last", "last_year", "hist_mean") or re.fullmatch(r"ma\d+", name):
        return 0
    return 1 if name in ("gbm", "spatial_smooth", "kde", "prospective", "sepp") else 2


def paired_bootstrap(
    difference: Sequence[float],
    weight: Sequence[float] | None = None,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> tuple[float, float, float, int]:
    """Estimate and percentile interval of a per-origin difference, resampling origins.

    Parameters
    ----------
    difference : sequence of float
        Per origin, the difference of the two models' numerators (error sums, or PAI values);
        origins where it is NaN (PAI with no severity at all) are left out.
    weight : sequence of float, optional
        Per origin, the denominator (cells scored); default 1 (a mean over origins).
    n_resamples, seed, level
        Resamples (each draws as many origins as there are, with replacement, from
        ``numpy.random.default_rng(seed)``) and the interval's level.

    Returns
    -------
    (float, float, float, int)
        ``sum(difference) / sum(weight)``, the ``(1 - level) / 2`` and ``(1 + level) / 2``
        quantiles of the resampled statistic (NaN with fewer than :data:`MIN_ORIGINS` origins)
        and the number of origins.
    """
    diff = np.asarray(difference, dtype=float)
    w = np.ones_like(diff) if weight is None else np.asarray(weight, dtype=float)
    ok = np.isfinite(diff)
    diff, w = diff[ok], w[ok]
    n = len(diff)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    estimate = float(diff.sum() / w.sum())
    if n < MIN_ORIGINS:
        return estimate, np.nan, np.nan, n
    index = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    stats = diff[index].sum(axis=1) / w[index].sum(axis=1)
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return estimate, float(low), float(high), n


def _per_origin(scores: pd.DataFrame, metric: str, model: str) -> tuple[pd.Series, pd.Series]:
    """A model's per-origin numerator and weight of a metric, indexed by origin."""
    part = scores.loc[scores["model"] == model].set_index("origin").sort_index()
    if metric in _SUMS:
        num, den = _SUMS[metric]
        return part[num].astype(float), part[den].astype(float)
    return part[metric].astype(float), pd.Series(1.0, index=part.index)


def _estimate(scores: pd.DataFrame, metric: str, model: str) -> float:
    """The metric as the metrics table has it, from the per-origin scores."""
    num, den = _per_origin(scores, metric, model)
    ok = np.isfinite(num.to_numpy())
    return float(num[ok].sum() / den[ok].sum()) if ok.any() else float("nan")


def compare(scores: pd.DataFrame, metric: str, a: str, b: str, **bootstrap: Any) -> dict:
    """Paired comparison of models ``a`` and ``b`` on one metric over the origins.

    Parameters
    ----------
    scores : pandas.DataFrame
        Per-origin scores (see :func:`geo_crime.forecast.metrics.score_predictions`).
    metric : str
        ``poisson_deviance``, ``mae`` or ``pai_<k>``.
    a, b : str
        The models.
    **bootstrap
        Passed to :func:`paired_bootstrap`.

    Returns
    -------
    dict
        ``model`` (a), ``against`` (b), their values ``value`` and ``against_value``,
        ``difference`` (a - b), ``low`` and ``high`` (the interval; None when not drawn),
        ``n_origins`` and ``outcome``: ``"better"`` or ``"worse"`` (for ``a``, the interval
        excluding zero) or ``"tie"``.
    """
    num_a, w_a = _per_origin(scores, metric, a)
    num_b, _ = _per_origin(scores, metric, b)
    num_b = num_b.reindex(num_a.index)
    estimate, low, high, n = paired_bootstrap(
        (num_a - num_b).to_numpy(), w_a.to_numpy(), **bootstrap
    )
    lower_better = LOWER_IS_BETTER.get(metric, False)
    outcome = "tie"
    if np.isfinite(low) and (low > 0 or high < 0):
        outcome = "better" if (high < 0) == lower_better else "worse"
    return {
        "model": a,
        "against": b,
        "value": _estimate(scores, metric, a),
        "against_value": _estimate(scores, metric, b),
        "difference": estimate,
        "low": None if not np.isfinite(low) else low,
        "high": None if not np.isfinite(high) else high,
        "n_origins": n,
        "outcome": outcome,
    }


def _best(estimates: dict[str, float], metric: str, among: Iterable[str]) -> str | None:
    chosen = [m for m in among if m in estimates]
    if not chosen:
        return None
    sign = 1.0 if LOWER_IS_BETTER.get(metric, False) else -1.0
    return min(chosen, key=lambda m: sign * estimates[m])


def judge(scores: pd.DataFrame, metric: str, **bootstrap: Any) -> dict | None:
    """The best model on a metric, the models tied with it, and the one to use.

    Parameters
    ----------
    scores : pandas.DataFrame
        Per-origin scores of every model (references included, never judged).
    metric : str
        The metric.
    **bootstrap
        Passed to :func:`paired_bootstrap`.

    Returns
    -------
    dict or None
        ``metric``, ``label``, ``lower_is_better``, ``estimates`` (every model's value,
        references included), ``best``, ``tied`` (the best and every model whose interval
        against it includes zero, best first), ``use`` (the simplest tied model, then the
        better scored), ``against_best`` (each other model compared with the best) and
        ``against_baseline`` (each model compared with the best baseline other than itself: the
        best model of :func:`simplicity` below 2, or of any when there is none); None when no
        model has the metric.
    """
    if scores.empty or _SUMS.get(metric, (metric,))[0] not in scores:
        return None
    names = list(dict.fromkeys(scores["model"]))
    estimates = {m: _estimate(scores, metric, m) for m in names}
    estimates = {m: v for m, v in estimates.items() if np.isfinite(v)}
    models = [m for m in names if m in estimates and not is_reference(m)]
    best = _best(estimates, metric, models)
    if best is None:
        return None
    sign = 1.0 if LOWER_IS_BETTER.get(metric, False) else -1.0
    against_best = {m: compare(scores, metric, m, best, **bootstrap) for m in models if m != best}
    tied = [best] + [m for m, c in against_best.items() if c["outcome"] == "tie"]
    use = min(tied, key=lambda m: (simplicity(m), sign * estimates[m]))
    against_baseline = {}
    for m in models:
        others = [o for o in models if o != m]
        baseline = _best(estimates, metric, [o for o in others if simplicity(o) < 2])
        opponent = baseline or _best(estimates, metric, others)
        if opponent is not None:
            against_baseline[m] = compare(scores, metric, m, opponent, **bootstrap)
    return {
        "metric": metric,
        "label": LABELS.get(metric, metric),
        "lower_is_better": LOWER_IS_BETTER.get(metric, False),
        "estimates": estimates,
        "best": best,
        "tied": tied,
        "use": use,
        "against_best": against_best,
        "against_baseline": against_baseline,
    }


def judgements(scores: pd.DataFrame, metrics: Sequence[str] = JUDGED, **bootstrap: Any) -> dict:
    """Every judged metric of a backtest (see :func:`judge`), with the bootstrap settings.

    Returns
    -------
    dict
        ``n_origins``, ``n_resamples``, ``seed``, ``level``, ``references`` and ``metrics``
        (metric -> :func:`judge`'s dict; metrics no model has are left out).
    """
    settings = {"n_resamples": N_RESAMPLES, "seed": SEED, "level": LEVEL, **bootstrap}
    out: dict[str, Any] = {
        "n_origins": int(scores["origin"].nunique()) if len(scores) else 0,
        **settings,
        "references": [r for r in REFERENCES if len(scores) and (scores["model"] == r).any()],
        "metrics": {},
    }
    for metric in metrics:
        judged = judge(scores, metric, **bootstrap)
        if judged is not None:
            out["metrics"][metric] = judged
    return out


# --- words ------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    """A score or difference for a sentence: 2 decimals, more for small values."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.2g}"


def _interval(c: dict) -> str:
    """``difference -0.11, 95% interval -0.45 to 0.20 over 55 origins`` of a comparison."""
    if c.get("low") is None:
        return (
            f"difference {_fmt(c['difference'])}; {c['n_origins']} origins are too few for an "
            "interval"
        )
    return (
        f"difference {_fmt(c['difference'])}, 95% interval {_fmt(c['low'])} to "
        f"{_fmt(c['high'])} over {c['n_origins']} origins"
    )


def _simpler(a: str, b: str) -> str | None:
    """The simpler of two models, or None when they are as simple as each other."""
    if simplicity(a) == simplicity(b):
        return None
    return a if simplicity(a) < simplicity(b) else b


def _pair_sentence(c: dict, label: str) -> str:
    """One model against another on one metric, in words."""
    a, b = c["model"], c["against"]
    values = f"{a} {_fmt(c['value'])} vs {b} {_fmt(c['against_value'])}; {_interval(c)}"
    if c["outcome"] == "better":
        return f"{a} beats {b} on {label} ({values})."
    if c["outcome"] == "worse":
        return f"{a} does NOT beat {b} on {label}: {b} is better ({values})."
    simpler = _simpler(a, b)
    choice = f"use {simpler}, the simpler" if simpler else "neither is shown to be better"
    return f"{a} and {b} tie on {label} ({values}): {choice}."


def verdict_sentences(judged: dict | None, reference: str = "keras") -> list[str]:
    """The verdict bullets: ``reference`` against the best baseline on each judged metric.

    Parameters
    ----------
    judged : dict or None
        :func:`judgements` of a backtest.
    reference : str, default "keras"
        The model spoken of.

    Returns
    -------
    list of str
        Per metric, whether it wins, loses or ties (with the interval), then one sentence on
        the references.
    """
    if not judged or not judged.get("metrics"):
        return ["No paired comparison over origins is available for this backtest."]
    out = []
    metrics = judged["metrics"]
    for metric in JUDGED:
        j = metrics.get(metric)
        label = LABELS[metric]
        if j is None:
            if metric.startswith("pai"):
                out.append(f"{label} is not reported for this panel (too few scored units).")
            continue
        pair = j["against_baseline"].get(reference)
        if pair is None:
            out.append(f"{reference} was not evaluated on this panel.")
            break
        out.append(_pair_sentence(pair, label))
    references = _reference_sentence(metrics)
    if references:
        out.append(references)
    return out


def _reference_sentence(metrics: dict) -> str:
    """What the references scored, and what the all-zero forecast says about MAE."""
    parts = []
    mae = metrics.get("mae", {}).get("estimates", {})
    deviance = metrics.get("poisson_deviance", {}).get("estimates", {})
    pai = metrics.get("pai_5", {}).get("estimates", {})
    if "zero" in mae:
        parts.append(
            f"the all-zero forecast has MAE {_fmt(mae['zero'])} and Poisson deviance "
            f"{_fmt(deviance.get('zero'))}"
        )
    if "clairvoyant" in deviance:
        parts.append(
            "the clairvoyant long-run rate (each unit's mean over the whole panel, future "
            f"included) has Poisson deviance {_fmt(deviance['clairvoyant'])}"
            + (
                f" and harm-weighted PAI@5% {_fmt(pai['clairvoyant'])}"
                if "clairvoyant" in pai
                else ""
            )
        )
    if not parts:
        return ""
    text = "References, not models to use: " + "; ".join(parts) + "."
    models = [v for m, v in mae.items() if m not in REFERENCES]
    if "zero" in mae and models and mae["zero"] <= min(models):
        text += (
            " The all-zero forecast has a lower MAE than every model: MAE rewards a median, so "
            "levels are judged on Poisson deviance."
        )
    return text


def _tie_sentence(j: dict, what: str, label: str = "") -> str:
    """The models tied with the best on a metric and the one to use, in words."""
    best, tied, use = j["best"], j["tied"], j["use"]
    label = label or j["label"]
    if len(tied) == 1:
        closest = min(j["against_best"].values(), key=lambda c: abs(c["difference"]), default=None)
        text = (
            f"Use {best} {what}: it has the best {label} ({_fmt(j['estimates'][best])}), and "
            "every other model is worse with 95% confidence"
        )
        if closest is not None:
            text += f" (the closest, {closest['model']}: {_interval(closest)})"
        return text + "."
    others = [m for m in tied if m != best]
    widest = max(
        (j["against_best"][m] for m in others),
        key=lambda c: abs(c["difference"]),
    )
    names = ", ".join(tied[:-1]) + f" and {tied[-1]}"
    detail = (
        f"{widest['model']} {_fmt(widest['value'])} vs {best} {_fmt(widest['against_value'])}; "
        + _interval(widest)
    )
    if len(tied) > 2:
        detail = f"best: {best}; the widest gap, " + detail
    simplest = all(simplicity(use) < simplicity(m) for m in tied if m != use)
    why = (
        ("the simpler" if len(tied) == 2 else "the simplest")
        if simplest
        else "the best scored of the simplest"
    )
    return f"{names} tie on {label} ({detail}): use {use} {what}, {why}."


def level_sentence(judged: dict | None, period: str = "period") -> str:
    """Which model to use for the level of next-period severity (on Poisson deviance)."""
    j = (judged or {}).get("metrics", {}).get("poisson_deviance")
    if j is None:
        return "No comparison: no model was scored on Poisson deviance."
    return _tie_sentence(
        j, f"for the level of next-{period} severity", "Poisson deviance, a proper score for counts"
    )


def ranking_sentence(
    judged: dict | None, published: str = "keras", ranking_file: str = ""
) -> str | None:
    """Which model to use to choose where to act (harm-weighted PAI@5%); None when PAI@5% is
    not reported. When another model than the published forecast is to be used, names the file
    its ranking is published in (``ranking_file``), else says only the published forecast's
    ranking is."""
    j = (judged or {}).get("metrics", {}).get("pai_5")
    if j is None:
        return None
    text = _tie_sentence(j, "to choose where to act")
    if j["use"] != published and ranking_file:
        text += f" Its ranking of the units (ranks only) is published in `{ranking_file}`."
    elif j["use"] != published and published in j["estimates"]:
        name = "Keras" if published == "keras" else published
        text += (
            f" Only the {name} forecast's ranking is published in this run, so read it with that "
            "in mind."
        )
    return text


def bias_sentence(metrics: dict, model: str = "keras", *, median: bool = True) -> str:
    """The measured total bias of the published forecast, for the totals and shares it gives.

    Parameters
    ----------
    metrics : dict
        Metrics per model (``{model: {"total_bias": ...}}``).
    model : str, default "keras"
        The published forecast.
    median : bool, default True
        Whether its point forecast is a median.

    Returns
    -------
    str
        Empty when the bias was not measured.
    """
    bias = (metrics.get(model) or {}).get("total_bias")
    if bias is None or not np.isfinite(bias):
        return ""
    kind = "a median" if median else "a mean"
    direction = "below" if bias < 0 else "above"
    name = "Keras" if model == "keras" else model
    return (
        f"The {name} forecast is {kind}: over the backtest its totals were {abs(bias):.0%} "
        f"{direction} the actual totals (sum of forecasts / sum of actuals - 1 = "
        f"{bias:+.2f}), so totals and shares of forecast severity carry that bias."
    )
