"""The Markdown of the forecast panels benchmark (:mod:`benchmarks.forecast_panels`).

:func:`write_markdown` writes the header (units, references, the verdict rule), one summary table
of the verdicts per panel, each panel's table of every model over the seeds with its verdicts,
the original study's protocol where it ran, and any further lines (``extra``) at the end: the
hook of sections other functions build (e.g. "Daily per-crime-group panels").
:func:`metric_verdict` reads one metric's verdict out of the judgements of
:mod:`geo_crime.forecast.verdicts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core.io_utils import atomic_write_text
from geo_crime.forecast.references import REFERENCE_WORDS, REFERENCES
from geo_crime.forecast.verdicts import N_RESAMPLES, simplicity, verdict_sentences

__all__ = ["VERDICT_METRICS", "metric_verdict", "write_markdown"]

#: The verdicts printed per panel, in order.
VERDICT_METRICS = ("poisson_deviance", "pai_5", "pai_1")


def metric_verdict(judged: dict | None, metric: str) -> dict | None:
    """The best model on a metric, its interval against the runner-up, and whether it wins.

    Parameters
    ----------
    judged : dict or None
        :func:`benchmarks.forecast_panels.pooled_judgements` (or a backtest's judgements).
    metric : str
        ``poisson_deviance``, ``mae`` or ``pai_<k>``.

    Returns
    -------
    dict or None
        ``best``, ``value``, ``runner_up``, ``runner_up_value``, ``difference`` (best minus
        runner-up) with its 95% interval ``low`` .. ``high`` (None when not drawn),
        ``n_origins``, ``outcome`` (``"wins"``: every other model is worse with the interval
        excluding zero; ``"tie"``: some model's interval against the best covers zero), ``tied``
        (best first) and ``use`` (the simplest tied model); None when the metric was not judged.
    """
    j = ((judged or {}).get("metrics") or {}).get(metric)
    if j is None:
        return None
    sign = 1.0 if j["lower_is_better"] else -1.0
    ranked = sorted(
        (m for m in j["estimates"] if m not in REFERENCES), key=lambda m: sign * j["estimates"][m]
    )
    best = j["best"]
    out: dict[str, Any] = {
        "metric": metric,
        "label": j["label"],
        "best": best,
        "value": j["estimates"][best],
        "runner_up": None,
        "runner_up_value": None,
        "difference": None,
        "low": None,
        "high": None,
        "n_origins": None,
        "outcome": "wins" if len(j["tied"]) == 1 else "tie",
        "tied": list(j["tied"]),
        "use": j["use"],
    }
    runner = next((m for m in ranked if m != best), None)
    if runner is not None:
        c = j["against_best"][runner]  # runner-up minus best
        out.update(
            runner_up=runner,
            runner_up_value=c["value"],
            difference=-c["difference"],
            low=None if c["high"] is None else -c["high"],
            high=None if c["low"] is None else -c["low"],
            n_origins=c["n_origins"],
        )
    return out


def _digits(value: float) -> int:
    """Decimals of a score: 3 below 10, 2 below 1,000, 1 above."""
    return 3 if abs(value) < 10 else 2 if abs(value) < 1000 else 1


def _number(value: float | None, digits: int | None = None) -> str:
    """A score with :func:`_digits` decimals (or ``digits``); blank when missing."""
    if value is None or not np.isfinite(value):
        return ""
    return f"{value:,.{_digits(value) if digits is None else digits}f}"


def _fmt(value: float, low: float, high: float, digits: int | None = None) -> str:
    """Mean over seeds, with the range over seeds in brackets where the seeds differ."""
    if pd.isna(value):
        return ""
    if digits is None:
        digits = _digits(value)
    text = _number(value, digits)
    if pd.notna(low) and pd.notna(high) and high - low > 10 ** (-digits) / 2:
        text += f" ({_number(low, digits)}-{_number(high, digits)})"
    return text


def _interval(v: dict) -> str:
    """``-0.110 (95% interval -0.450 to 0.200)`` of a verdict's best minus runner-up."""
    if v["difference"] is None:
        return "no other model"
    if v["low"] is None:
        return f"{_number(v['difference'])} (too few origins for an interval)"
    return f"{_number(v['difference'])} (95% interval {_number(v['low'])} to {_number(v['high'])})"


def _choice(v: dict | None) -> str:
    """The verdict in a few words: the winner, or the tie and the simplest tied model."""
    if v is None:
        return "n/r"
    if v["outcome"] == "wins":
        return f"**{v['best']}** wins"
    return f"tie of {len(v['tied'])}: use **{v['use']}** (simplest)"


def _period(freq: str) -> str:
    return {"D": "day", "W": "week", "M": "month"}.get(freq, "period")


def _panel_freq(key: str, r: dict) -> str:
    """The panel's period: stored with its runs, else read from its study name."""
    stored = r["runs"][0].get("freq")
    return stored or ("D" if "daily" in key else "W")


def _verdict_sentence(v: dict, unit: str) -> str:
    """One verdict in words, with the best, the runner-up, the interval and the tied models."""
    where = f" ({unit})" if v["metric"] == "poisson_deviance" else ""
    head = f"{v['label']}{where}: best **{v['best']}** {_number(v['value'])}"
    if v["runner_up"] is None:
        return head + "; no other model."
    head += (
        f", runner-up {v['runner_up']} {_number(v['runner_up_value'])}; best minus runner-up "
        f"{_interval(v)} over {v['n_origins']} origins. "
    )
    if v["outcome"] == "wins":
        return head + (
            f"**{v['best']} wins**: every other model is worse, each one's interval against it "
            "excludes 0."
        )
    others = [m for m in v["tied"] if m != v["best"]]
    simplest = all(simplicity(v["use"]) < simplicity(m) for m in v["tied"] if m != v["use"])
    why = "the simplest of the tied" if simplest else "the best scored of the simplest tied"
    return head + (
        f"**Tie**: the interval of {', '.join(others)} against {v['best']} covers 0; use "
        f"**{v['use']}**, {why}."
    )


def _header(results: dict[str, dict], command: str) -> list[str]:
    minutes = sum(r["seconds"] for r in results.values()) / 60
    return [
        "# Forecast backtests on the real panels",
        "",
        f"Regenerate with `{command}` (about {minutes:.0f} minutes on 2 cores). Written by "
        "`benchmarks/forecast_panels.py`; the protocol is in its docstring and in "
        "`geo_crime/forecast/evaluate.py`.",
        "",
        "Every model of the backtest is scored on the same cells (unit x period), the field's "
        "methods (`kde`: space-time kernel density, Chainey et al. 2008; `prospective`: "
        "prospective hot spots, Bowers et al. 2004; `sepp`: the self-exciting point process of "
        "the LAPD field trial, Mohler et al. 2015) included, beside two references that are "
        "never candidates: "
        + "; ".join(f"`{r}`, {REFERENCE_WORDS[r]}" for r in REFERENCES)
        + ". Every number is a mean over the seeds, with the range over seeds in brackets where "
        "the seeds differ. MAE, RMSE and the mean Poisson deviance are in severity points per "
        "unit and period (week or day, as the panel says) over the scored cells; PAI@5% and "
        "PAI@1% are harm-weighted (share of next-period severity in the 5% or 1% of the scored "
        "area ranked highest, divided by that share; blank where that share holds fewer than 5 "
        "units); coverage is the share of scored cells inside the 80% interval (models with "
        "intervals only); fit time is the seconds of all the backtest's fits of the model "
        "(expanding window, refit every few origins), predictions excluded.",
        "",
        "The Keras model is the correction model: at each refit it takes the best of `last`, "
        "`ma4`, `ma8`, `ma13` and `hist_mean` on its validation block as its base and learns a "
        "multiplicative correction. Its point forecast is a **median** (trained on the absolute "
        "error); the other models forecast means. MAE rewards a median (the all-zero reference "
        "beats every mean on it where most cells are empty), so levels are judged on Poisson "
        "deviance, a proper score for counts, and the ranking of places on PAI.",
        "",
        f"Verdicts: paired bootstrap over the origins ({N_RESAMPLES:,} resamples of the origins, "
        "95% interval of the difference), on each model's per-origin scores averaged over the "
        "seeds. A model **wins** only where the interval of the difference excludes zero against "
        "every other model; otherwise the models whose interval against the best covers zero "
        "**tie** with it, and the simplest of them is the one to use (`hist_mean`, `ma*`, "
        "`last`, `last_year` first; then `gbm`, `spatial_smooth`, `kde`, `prospective`, `sepp`; "
        "then the networks). The intervals shown are those of the best model against the "
        "runner-up (the second best score).",
        "",
    ]


def _summary_table(results: dict[str, dict]) -> list[str]:
    lines = [
        "| panel | origins | cells scored | best on Poisson deviance | best minus runner-up "
        "(95% interval) | levels: verdict | best on PAI@5% | best minus runner-up (95% interval) "
        "| places: verdict |",
        "| --- | ---: | ---: | --- | ---: | --- | --- | ---: | --- |",
    ]
    judged = [r for r in results.values() if "verdicts" in r]
    for key, r in results.items():
        v = r.get("verdicts")
        dev, pai = (v or {}).get("poisson_deviance"), (v or {}).get("pai_5")
        cells = []
        for one in (dev, pai):
            if v is None:
                cells += ["not stored", "", ""]
            elif one is None:
                cells += ["n/r (too few units)", "", "n/r"]
            else:
                runner = f" vs {one['runner_up']}" if one["runner_up"] else ""
                cells += [
                    f"{one['best']} {_number(one['value'])}",
                    _interval(one) + runner,
                    _choice(one),
                ]
        lines.append(
            f"| {key} | {r['runs'][0]['n_origins']} | {r['scored_cells']:,} | "
            + " | ".join(cells)
            + " |"
        )
    wins = {
        m: sum(((r.get("verdicts") or {}).get(m) or {}).get("outcome") == "wins" for r in judged)
        for m in ("poisson_deviance", "pai_5")
    }
    if not judged:
        return [*lines, "", "No verdicts: the saved JSON holds no judgements; rerun.", ""]
    return [
        *lines,
        "",
        f"A model wins outright on Poisson deviance on {wins['poisson_deviance']} of "
        f"{len(judged)} panels and on PAI@5% on {wins['pai_5']}; elsewhere the best ties with "
        "at least one other model and the verdict names the simplest of the tied (n/r: PAI@5% "
        "not reported, 5% of the scored area holds fewer than 5 units).",
        "",
    ]


def _panel_section(key: str, r: dict) -> list[str]:
    table, first = r["table"], r["runs"][0]
    period = _period(_panel_freq(key, r))
    unit = f"severity points per unit-{period}"
    seeds = ", ".join(str(x["seed"]) for x in r["runs"])
    keras = first["keras_config"]
    fits = next((t.get("fits") for t in (first.get("timings") or {}).values()), None)
    fit_head = f"fit s ({fits} fits)" if fits else "fit s"
    lines = [
        f"## {key}",
        "",
        f"{first['n_origins']} origins ({first['origins'][0]} to {first['origins'][1]}), "
        f"{r['scored_cells']:,} scored cells; seeds {seeds}; Keras settings: lags "
        f"{keras['lags']}, {keras['units']} units x {keras['layers']} layer(s), batch "
        f"{keras['batch_size']}, up to {keras['max_epochs']} epochs; {r['seconds']:.0f} s for "
        f"all seeds. MAE, RMSE and Poisson deviance in {unit}; rows by Poisson deviance.",
        "",
    ]
    with_pai_1 = bool(table["pai_1"].notna().any())
    head = ["model", "MAE", "RMSE", "Poisson deviance", "PAI@5%"]
    head += ["PAI@1%"] if with_pai_1 else []
    head += ["80% coverage", fit_head]
    lines += ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    models = table.loc[[m for m in table.index if m not in REFERENCES]]
    refs = table.loc[[m for m in table.index if m in REFERENCES]]
    for model, row in [*models.sort_values("poisson_deviance").iterrows(), *refs.iterrows()]:
        name = f"{model} (reference)" if model in REFERENCES else model
        shown = ["mae", "rmse", "poisson_deviance", "pai_5"]
        shown += ["pai_1"] if with_pai_1 else []
        cells = [_fmt(row[m], row[f"{m}_min"], row[f"{m}_max"]) for m in shown]
        cells.append(_fmt(row["coverage_80"], row["coverage_80_min"], row["coverage_80_max"], 3))
        cells.append(_fmt(row["fit_seconds"], row["fit_seconds_min"], row["fit_seconds_max"], 1))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    verdicts = r.get("verdicts")
    if verdicts is None:
        lines += [
            "No verdict: this JSON holds no per-origin judgements (written before they were "
            "stored); rerun the panel.",
            "",
        ]
    else:
        judged = r.get("judgements") or {}
        lines.append(
            f"Verdicts (paired bootstrap over {judged.get('n_origins', '?')} origins, per-origin "
            f"scores averaged over {judged.get('n_seeds', len(r['runs']))} seed(s)):"
        )
        lines.append("")
        for metric in VERDICT_METRICS:
            v = verdicts.get(metric)
            if v is not None:
                lines.append(f"- {_verdict_sentence(v, unit)}")
            elif metric == "pai_5":
                lines.append("- harm-weighted PAI@5%: not reported (too few scored units).")
        if "keras" in table.index and judged.get("metrics"):
            lines += [
                "",
                "Our Keras model against the best simple baseline (or field method) other than "
                "itself, on the same paired intervals:",
                "",
            ]
            lines += [f"- {s}" for s in verdict_sentences(judged, "keras")]
        lines.append("")
    lines += [f"- {note}" for note in first["notes"]]
    lines += [""] if first["notes"] else []
    return lines + _study_section(r)


def _study_section(r: dict) -> list[str]:
    studies = [x["study"] for x in r["runs"] if "study" in x]
    if not studies:
        return []
    info = studies[0]["info"]
    field = info.get("field") or []
    methods = [m for m in field if m != "hist_mean"]
    lines = [
        "### The original study's own protocol",
        "",
        f"Daily severity of the {info['n_units']} divisions, {info['window']}-day windows, "
        f"trained on {info['training_days'][0]} to {info['training_days'][1]}, tested on "
        f"{info['test_days'][0]} to {info['test_days'][1]} ({info['test_forecasts']:,} "
        "division-days), the study's 80/20 split of the longest run of complete days. "
        "`study_conv1d` is its network (divisions as channels); `mean_7d` and `last_day` the "
        "naive forecasts it lacked; "
        + ("`hist_mean` the mean of all earlier days; " if "hist_mean" in field else "")
        + (f"{', '.join(f'`{m}`' for m in methods)} the field's methods; " if methods else "")
        + "`keras` ours. Each is fitted once on the training days and forecasts each test day "
        "from the days before it; the references use the whole run of days. MAE, RMSE and "
        "Poisson deviance in severity points per division-day; MAE / range is the study's scale "
        "(each error over its division's range on the training days); fit s: the one fit on the "
        "training days.",
        "",
        "| model | MAE | RMSE | Poisson deviance | MAE / range | fit s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model in studies[0]["metrics"]:
        vals = pd.DataFrame([s["metrics"][model] for s in studies])
        cells = [
            _fmt(vals[m].mean(), vals[m].min(), vals[m].max(), digits) if m in vals else ""
            for m, digits in (("mae", 1), ("rmse", 1), ("poisson_deviance", 1), ("mae_minmax", 4))
        ]
        fit = [s["info"].get("fit_seconds", {}).get(model) for s in studies]
        fit = pd.Series([f for f in fit if f is not None], dtype=float)
        cells.append(_fmt(fit.mean(), fit.min(), fit.max(), 1) if len(fit) else "")
        name = f"{model} (reference)" if model in REFERENCES else model
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _against(c: dict | None, digits: int = 3) -> str:
    """A network's paired comparison with the best baseline, in a table cell."""
    if not c:
        return "n/r"
    interval = (
        f"{c['low']:+.{digits}f} to {c['high']:+.{digits}f}"
        if c.get("low") is not None
        else "no interval"
    )
    word = {"better": "**better** than", "worse": "worse than", "tie": "tie with"}[c["outcome"]]
    return f"{word} {c['against']}: {c['difference']:+.{digits}f} ({interval})"


def _helps(good: bool, bad: bool) -> str:
    if good:
        return "mixed" if bad else "helps"
    return "worse" if bad else "no gain"


def network_lines(
    results: dict[str, dict],
    groups: dict[str, dict] | None = None,
    networks: Sequence[str] = ("keras",),
) -> list[str]:
    """Where a network helps and where it does not: one row per panel (and crime group).

    Parameters
    ----------
    results : dict
        The weekly and daily panels (their ``judgements``: Keras against the best model of
        simplicity below 2 other than itself).
    groups : dict, optional
        The saved daily crime-group panels (``benchmarks/group_panels.py``): ``groupnet``
        against the best baseline on Poisson deviance, and its PAI@1% goal.
    networks : sequence of str, default ("keras",)
        The models of ``results`` judged as networks.
    """
    lines = [
        "## Where a network helps, and where it does not",
        "",
        "Each network against the best simple baseline or field method other than itself, on "
        "paired intervals over the origins (difference network minus baseline; lower is better "
        "for Poisson deviance, higher for PAI). *better* or *worse* only where the 95% interval "
        "excludes zero.",
        "",
        "| panel | network | Poisson deviance | PAI | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    helps = 0
    rows = 0
    for key, r in results.items():
        metrics = (r.get("judgements") or {}).get("metrics") or {}
        pai_metric = "pai_1" if "pai_1" in metrics else "pai_5"
        for name in networks:
            dev = (metrics.get("poisson_deviance") or {}).get("against_baseline", {}).get(name)
            pai = (metrics.get(pai_metric) or {}).get("against_baseline", {}).get(name)
            if dev is None and pai is None:
                continue
            good = any(c and c["outcome"] == "better" for c in (dev, pai))
            bad = any(c and c["outcome"] == "worse" for c in (dev, pai))
            helps += good and not bad
            rows += 1
            label = pai_metric.replace("pai_", "PAI@") + "%"
            lines.append(
                f"| {key} | {name} (severity) | {_against(dev)} | {label}: {_against(pai)} | "
                f"{_helps(good, bad)} |"
            )
    for key, r in (groups or {}).items():
        for group, judged in r.get("judgements", {}).items():
            metrics = (judged or {}).get("metrics") or {}
            dev = (
                (metrics.get("poisson_deviance") or {}).get("against_baseline", {}).get("groupnet")
            )
            goal = r["goal"].get(group, {})
            pai = (
                f"PAI@1% {goal['ratio']:.3f} x {goal['best']}"
                + (
                    f" ({goal['low']:.2f}-{goal['high']:.2f})"
                    if goal.get("low") is not None
                    else ""
                )
                if goal.get("best")
                else "n/r"
            )
            good = (dev or {}).get("outcome") == "better" or goal.get("met")
            bad = (dev or {}).get("outcome") == "worse" or (
                goal.get("high") is not None and goal["high"] < 1.0
            )
            helps += good and not bad
            rows += 1
            verdict = (
                "helps"
                if good and not bad
                else "mixed"
                if good
                else "no gain"
                if not bad
                else "worse"
            )
            lines.append(
                f"| {key} {group} | groupnet (daily incidents) | {_against(dev, 4)} | {pai} | "
                f"{verdict} |"
            )
    lines += [
        "",
        f"A network helps (better on one score, worse on none) on {helps} of {rows} rows; "
        '"mixed" is better on one score and worse on the other.',
        "",
    ]
    return lines


def write_markdown(
    results: dict[str, dict],
    path: Path,
    command: str,
    extra: Sequence[str] | None = None,
    networks: Sequence[str] | None = None,
) -> Path:
    """The verdicts and per-panel tables as Markdown.

    Parameters
    ----------
    results : dict
        Per panel key: ``runs`` (each seed's record), ``table`` (:func:`summarise`),
        ``judgements`` and ``verdicts`` (absent in an older JSON), ``scored_cells``,
        ``seconds``.
    path : Path
        The Markdown file written.
    command : str
        The command that regenerates it.
    extra : sequence of str, optional
        Markdown lines appended after the panels: the hook of sections other functions build
        (e.g. "Daily per-crime-group panels").
    networks : sequence of str, optional
        Markdown lines put after the summary table (:func:`network_lines`).

    Returns
    -------
    Path
    """
    lines = _header(results, command) + _summary_table(results) + list(networks or [])
    for key, r in results.items():
        lines += _panel_section(key, r)
    lines += list(extra or [])
    return atomic_write_text(path, "\n".join(lines).rstrip("\n") + "\n")
