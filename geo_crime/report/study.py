"""The report's text for one study: hot spots, rates, forecasts and recommendations, in words.

The pipeline hands each study's results (cube, units, statistic tables, backtest summary,
suppression) to these functions and inserts the Markdown they return into the run report; no
statistic is computed here beyond ranking what the stages produced. Every number names its unit
and scope (per what, over which units and periods, how many were scored), and every table that
covers part of the study says so in words. Suppressed units never appear in a ranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.periods import Freq
from geo_crime.core.schema import DIVISIONS
from geo_crime.cube.rates import RANKING_MIN_RESIDENTS, rate_ranking
from geo_crime.forecast.incidents import severity_scale_sentence
from geo_crime.forecast.references import is_reference
from geo_crime.forecast.verdicts import bias_sentence, level_sentence, ranking_sentence
from geo_crime.publish.privacy import count_words, hidden_mask
from geo_crime.report.markdown import md_code, md_text


def _fmt_metric(value) -> str:
    """A metric for a report table: two decimals, or 'n/r' where it is not reported."""
    return "n/r" if value is None or pd.isna(value) else f"{float(value):.2f}"


def _fmt_bias(value) -> str:
    """A total bias for a report table: a signed percentage (-32%), or 'n/r'."""
    return "n/r" if value is None or pd.isna(value) else f"{float(value):+.0%}"


def keras_bias_sentence(backtest: dict) -> str:
    """The published Keras forecast's measured total bias, for the sentences that give its
    totals and shares (empty when the backtest did not score it)."""
    return bias_sentence(
        backtest.get("metrics") or {}, "keras", median=backtest.get("keras_point") != "mean"
    )


def scope_lines(backtest: dict, units) -> list[str]:
    """What a backtest scored, in words, for the line under its metric table."""
    scope = backtest.get("scope") or {}
    per_origin = scope.get("scored_units_per_origin") or []
    if not per_origin:
        return []
    n_units = scope.get("n_units", len(units))
    low, high = min(per_origin), max(per_origin)
    span = f"{low:,}" if low == high else f"{low:,}-{high:,}"
    share_low = low / n_units if n_units else 0.0
    scored = scope.get("scored_divisions") or []
    study = scope.get("study_divisions") or []
    divisions = (
        f" in {len(scored)} of the study's {len(study)} divisions"
        + (f" ({', '.join(map(str, scored))})" if 0 < len(scored) <= 6 else "")
        if study
        else ""
    )
    lines = [
        f"**Scored:** {span} of the {n_units:,} units per origin ({share_low:.0%} at the "
        f"fewest){divisions}, over {len(per_origin)} origins "
        f"({backtest['origins'][0]} to {backtest['origins'][-1]}); only units whose target and "
        "history are completely recorded are scored, the same cells for every model.",
        "",
    ]
    if not scope.get("covers_study_area", False):
        area = "city-wide" if len(study) == len(DIVISIONS) else "study-area-wide"
        lines += [
            f"**This backtest is not {area}:** fewer than 50% of the study's units could be "
            "scored at some origin, so its errors and PAI describe the scored units only.",
            "",
        ]
    not_reported = [k for k in (1, 5, 10) if k / 100 not in scope.get("pai_reported", [])]
    if not_reported:
        lines += [
            "PAI@" + "%, PAI@".join(map(str, not_reported)) + "% not reported (n/r): that "
            "share of the scored area holds fewer than 5 units.",
            "",
        ]
    return lines


def _place(divisions: pd.Series | None, unit_id: object) -> str:
    """The division cell of a report table row."""
    return md_text(divisions.get(str(unit_id), "")) if divisions is not None else ""


def _unit_cell(labels: pd.Series | None, unit_id: object, drop: str = "") -> str:
    """A unit's cell in a report table: its place label (``Downtown (Central) - 88...``), or
    its id when there are no labels; ``drop`` removes a division the table already names."""
    if labels is None:
        return md_text(unit_id)
    text = str(labels.get(str(unit_id), unit_id))
    return md_text(text.replace(f" ({drop})", "") if drop else text)


def recommendation(backtest: dict, period: str = "period") -> str:
    """Which forecast to use for the level of next-period severity, by name.

    Parameters
    ----------
    backtest : dict
        The forecast summary of a run (its ``judgements``: paired bootstrap comparisons over
        the origins, see :mod:`geo_crime.forecast.verdicts`).
    period : str, default "period"
        The period word (``week``).

    Returns
    -------
    str
        One sentence: the model with the best Poisson deviance when every other is worse with
        95% confidence, else the simplest of the models tied with it (never a reference).
    """
    if not backtest.get("judgements"):
        return "No paired comparison over origins is available for this backtest."
    return level_sentence(backtest["judgements"], period)


def ranking_recommendation(backtest: dict) -> str | None:
    """Which model to use to choose where to act (harm-weighted PAI@5%), by name.

    Parameters
    ----------
    backtest : dict
        The forecast summary of a run (its ``judgements``).

    Returns
    -------
    str or None
        A sentence naming the model (the simplest of those tied with the best) and, when it is
        not the Keras forecast, that only the Keras ranking is published; None when PAI@5% is not
        reported.
    """
    return ranking_sentence(
        backtest.get("judgements"), ranking_file=backtest.get("ranking_file") or ""
    )


def forecast_section(
    spec,
    cube,
    units,
    table,
    backtest,
    label,
    divisions: pd.Series | None = None,
    labels: pd.Series | None = None,
) -> list[str]:
    """Forecast accuracy and resource-allocation recommendations for one unit type.

    ``divisions`` names each unit's division and ``labels`` gives its place label (see
    :func:`geo_crime.units.places.place_labels`); with labels, tables name units by place.
    """
    metrics = pd.DataFrame(backtest["metrics"]).T
    lines = [f"#### Forecast and recommendations ({md_code(spec)})", ""]
    if metrics.empty or "keras" not in metrics.index:
        return [*lines, "Too few complete periods for a backtest.", ""]
    word = Freq.parse(cube.freq).word
    lines += _backtest_table_lines(metrics, backtest, word)
    lines.extend(scope_lines(backtest, units))
    lines += _verdict_lines(backtest, word)
    lines += _harm_captured_lines(metrics.loc["keras"], word)
    # ranked units for the next period, overall and by division
    ranked = table.merge(
        units[["unit_id", "area"]] if "area" in units else units[["unit_id"]],
        on="unit_id",
        how="left",
    ).sort_values("prediction", ascending=False)
    period = backtest.get("next_period", "")
    lines += _forecast_period_lines(backtest, word, period)
    lines += _published_lines(ranked, word)
    lines += _top_forecast_lines(ranked, backtest, cube.freq, word, period, divisions, labels)
    forecast_units = ranked.dropna(subset=["prediction"])
    if "area" in forecast_units and forecast_units["area"].notna().any():
        lines += _division_lines(forecast_units, units, backtest, word, period, divisions, labels)
    lines.append(
        "Recommendation: what to do at a place follows from its crime mix (the top places "
        "table above), not from its rank; review the ranking each period and weigh it against "
        "where residents ask for help (a forecast from recorded crime follows where police "
        "already look: see the limitations)."
    )
    lines.append("")
    return lines


def _backtest_table_lines(metrics: pd.DataFrame, backtest: dict, word: str) -> list[str]:
    """What the backtest compared, and its metric table (references last)."""
    lines = [
        f"Backtest of next-{word} severity (severity points per unit per {word}) over "
        f"{len(backtest['origins'])} rolling origins (fast configuration; the scores are "
        "explained under methods); lower MAE, RMSE and deviance are better, higher PAI is better; "
        "total bias is the sum of forecasts over the sum of actuals, minus one. The two "
        "references are not models to use: `zero` forecasts nothing, and `clairvoyant` is each "
        "unit's mean over the whole panel, future included (a ceiling).",
        "",
        "| model | MAE | RMSE | Poisson dev. | total bias | PAI@1% | PAI@5% | PAI@10% | "
        "coverage 80% |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = sorted(
        metrics.index,
        key=lambda m: (is_reference(m), float(metrics.at[m, "poisson_deviance"])),
    )
    for name in order:
        row = metrics.loc[name]
        shown = f"{name} (reference)" if is_reference(name) else name
        lines.append(
            f"| {shown} | {row['mae']:.2f} | {row['rmse']:.2f} | {row['poisson_deviance']:.2f} | "
            f"{_fmt_bias(row.get('total_bias'))} | "
            f"{_fmt_metric(row.get('pai_1'))} | {_fmt_metric(row.get('pai_5'))} | "
            f"{_fmt_metric(row.get('pai_10'))} | {_fmt_metric(row.get('coverage_80'))} |"
        )
    lines.append("")
    return lines


def _verdict_lines(backtest: dict, word: str) -> list[str]:
    """The paired verdicts and the two recommendations (level, ranking), as a list."""
    lines = [
        "Verdicts (paired bootstrap over the origins: a model wins only where the 95% interval "
        "of the difference excludes zero; a tie goes to the simpler model):",
        "",
    ]
    for verdict in backtest.get("verdicts", []):
        lines.append(f"- {verdict}")
    lines.append(f"- {recommendation(backtest, word)}")
    ranking = ranking_recommendation(backtest)
    if ranking:
        lines.append(f"- {ranking}")
    lines.append("")
    return lines


def _harm_captured_lines(keras: pd.Series, word: str) -> list[str]:
    """The share of next-period severity the Keras forecast's top 1/5/10% of the area held
    in the backtest (the reported shares only)."""
    reported = [k for k in (1, 5, 10) if pd.notna(keras.get(f"pai_{k}"))]
    if not reported:
        return []
    shares = ", ".join(
        f"top {k}% of the scored area holds {keras[f'pai_{k}'] * k:.0f}% of next-{word} severity"
        for k in reported
    )
    return [
        f"Harm captured by targeting with the Keras forecast (backtest, scored units only): "
        f"{shares}.",
        "",
    ]


def _forecast_period_lines(backtest: dict, word: str, period: str) -> list[str]:
    """Which period is forecast, from which data, and why not from the end of the data."""
    last = backtest.get("last_complete_period", "")
    data_end = backtest.get("data_end", "")
    return [
        f"**Forecast period: the {word} starting {period}**, forecast from data up to the "
        f"{word} starting {last} (the last {word} completely recorded for "
        f"{backtest.get('complete_share_at_origin', 0):.0%} of the units). The data runs to "
        f"{data_end}."
        + (
            " The forecast does not start from the end of the data because "
            f"{backtest['why_not_data_end']}."
            if backtest.get("why_not_data_end")
            else ""
        )
        + f" So this is a forecast of what would have been recorded in that {word}, not of "
        "today.",
        "",
    ]


def _published_lines(ranked: pd.DataFrame, word: str) -> list[str]:
    """How many units have a published forecast, and why the others have none."""
    n_forecast = int(ranked["prediction"].notna().sum())
    if n_forecast >= len(ranked):
        return []
    hidden = int(ranked["suppressed"].sum()) if "suppressed" in ranked else 0
    untrusted = len(ranked) - n_forecast - hidden
    return [
        f"{n_forecast:,} of the {len(ranked):,} units have a published forecast; "
        f"{hidden:,} are suppressed (fewer than the threshold of incidents)"
        + (
            f", and the other {untrusted:,} lie in divisions whose recent {word}s are not "
            "completely recorded, so no model can be trusted there."
            if untrusted
            else "."
        ),
        "",
    ]


def _top_forecast_lines(
    ranked: pd.DataFrame,
    backtest: dict,
    freq: str,
    word: str,
    period: str,
    divisions: pd.Series | None,
    labels: pd.Series | None,
) -> list[str]:
    """The ten units with the highest published forecast: severity points, 80% interval and,
    when known, the incidents it means."""
    n_forecast = int(ranked["prediction"].notna().sum())
    with_incidents = "expected_incidents" in ranked
    lines = [
        f"Units with the highest forecast severity, of the {n_forecast:,} with a published "
        f"forecast: severity points in the {word} starting {period}, its 80% interval"
        + (
            ", and the incidents that severity means at its division's recent crime mix "
            "(expected incidents in that "
            f"{word}: all, and violent / property / other)"
            if with_incidents
            else ""
        )
        + ". "
        + severity_scale_sentence(backtest.get("points_per_incident"), freq=freq, scale=False)
        + (f" {keras_bias_sentence(backtest)}" if keras_bias_sentence(backtest) else ""),
        "",
    ]
    extra = " expected incidents | violent / property / other |" if with_incidents else ""
    rule = " --- | --- |" if with_incidents else ""
    if labels is not None:
        lines.append("| rank | place | forecast (severity points) | 80% interval |" + extra)
        lines.append("| --- | --- | --- | --- |" + rule)
    else:
        lines.append(
            "| rank | unit | division | forecast (severity points) | 80% interval |" + extra
        )
        lines.append("| --- | --- | --- | --- | --- |" + rule)
    forecast_units = ranked.dropna(subset=["prediction"])
    for rank, row in enumerate(forecast_units.head(10).itertuples(index=False), start=1):
        division = "" if "area" not in ranked or pd.isna(row.area) else int(row.area)
        if divisions is not None and division != "":
            division = f"{_place(divisions, row.unit_id)} ({division})"
        lower = getattr(row, "lower", float("nan"))
        upper = getattr(row, "upper", float("nan"))
        interval = "" if pd.isna(lower) else f"{lower:.0f}-{upper:.0f}"
        where = (
            _unit_cell(labels, row.unit_id)
            if labels is not None
            else f"{md_text(row.unit_id)} | {division}"
        )
        incidents = (
            f" {row.expected_incidents:.1f} | {row.expected_violent:.1f} / "
            f"{row.expected_property:.1f} / {row.expected_other:.1f} |"
            if with_incidents
            else ""
        )
        lines.append(f"| {rank} | {where} | {row.prediction:.0f} | {interval} |{incidents}")
    lines.append("")
    return lines


def _division_lines(
    ranked: pd.DataFrame,
    units,
    backtest: dict,
    word: str,
    period: str,
    divisions: pd.Series | None,
    labels: pd.Series | None,
) -> list[str]:
    """Per division (of the units with a published forecast, ``ranked``): the top 10% of its
    units by forecast and their share of its forecast severity."""
    by_division = ranked.dropna(subset=["area"]).groupby("area")
    n_study = int(units["area"].nunique()) if "area" in units else 0
    listed = (
        f" ({by_division.ngroups} of the study's {n_study} divisions have a published "
        "forecast; the others are not listed)"
        if by_division.ngroups < n_study
        else ""
    )
    lines = [
        f"By division{listed}: the units to prioritise first (the top 10% of each "
        "division's units by forecast) and the share of the division's forecast "
        f"severity for the {word} starting {period} they hold"
        + (f". {keras_bias_sentence(backtest)}" if keras_bias_sentence(backtest) else ":"),
        "",
        "| division | units with a forecast | top units | share of forecast severity |",
        "| --- | --- | --- | --- |",
    ]
    for area, group in by_division:
        k = max(1, int(np.ceil(0.1 * len(group))))
        top = group.head(k)
        total = group["prediction"].sum()
        share = top["prediction"].sum() / total if total > 0 else float("nan")
        name = _place(divisions, group["unit_id"].iloc[0])
        names = ", ".join(_unit_cell(labels, u, drop=name) for u in top["unit_id"].head(3))
        names += " ..." if k > 3 else ""
        division = f"{name} ({int(area)})" if name else str(int(area))
        lines.append(f"| {division} | {len(group)} | {names} | {share:.0%} |")
    lines.append("")
    return lines


def top_rate_lines(
    cube,
    units,
    k: int = 10,
    k_anonymity: int = DEFAULT_K,
    suppressed=None,
    divisions=None,
    labels=None,
) -> list[str]:
    """Top units by the one severity rate (see :func:`geo_crime.cube.rates.severity_rate`); with
    ``labels`` (place labels by unit id) units are named by place."""
    hidden = hidden_mask(suppressed, units["unit_id"]) if suppressed is not None else None
    ranking = rate_ranking(cube, units, k_anonymity=k_anonymity, hidden=hidden)
    if ranking is None:
        return []
    rate, undefined, few = ranking.rate, ranking.undefined, ranking.few_residents
    top = ranking.table.head(k)
    word = Freq.parse(cube.freq).word
    lines = [
        f"Top units by {rate.label[0].lower()}{rate.label[1:]} over the window (the rate per "
        f"resident under methods; residents are not the people exposed). {undefined:,} of "
        f"{len(units):,} units have no residents and no rate; {few:,} units with fewer than "
        f"{RANKING_MIN_RESIDENTS} residents and the suppressed units (fewer than {k_anonymity} "
        "incidents) are left out of this ranking.",
        "",
        f"| {'place' if labels is not None else 'unit'} |"
        f"{' division |' if divisions is not None and labels is None else ''} residents | "
        f"incidents (complete {word}s) | raw rate | EB-smoothed rate |",
        "| --- |"
        + (" --- |" if divisions is not None and labels is None else "")
        + " --- | --- | --- | --- |",
    ]
    for row in top.itertuples(index=False):
        place = (
            f" {_place(divisions, row.unit)} |" if divisions is not None and labels is None else ""
        )
        lines.append(
            f"| {_unit_cell(labels, row.unit)} |{place} {row.residents:,.0f} | {row.incidents:,} | "
            f"{row.raw:.2f} | {row.smoothed:.2f} |"
        )
    lines.append("")
    return lines


def statistics_section(
    spec,
    cube,
    units,
    unit_summary,
    tables,
    k_anonymity,
    suppressed=None,
    divisions=None,
    labels=None,
) -> list[str]:
    """Report lines for one unit type of a study (units named by ``labels`` when given)."""
    lines = [f"### Units {md_code(spec)}", ""]
    approx = (
        " (approximate boundaries derived from incident points)"
        if unit_summary["approximate"]
        else ""
    )
    word = Freq.parse(cube.freq).word
    covered = units.attrs.get("study_area", "")
    lines.append(
        f"{unit_summary['units']:,} units{approx}"
        + (f" covering {covered}" if covered else "")
        + f"; {unit_summary['periods']} {word}s, {unit_summary['complete_periods']} of them "
        f"completely recorded for {_for_whom(unit_summary)}. "
        f"{_window_sentence(unit_summary, word)} "
        f"Incidents outside the units: {unit_summary['assignment']['outside']:,}."
    )
    lines.append("")
    if unit_summary.get("footprint_note"):
        lines.append(f"**Caution:** {unit_summary['footprint_note']}.")
        lines.append("")
    lines += _statistic_lines(unit_summary, word)
    lines.append("")
    lines.extend(
        top_rate_lines(
            cube,
            units,
            k_anonymity=k_anonymity,
            suppressed=suppressed,
            divisions=divisions,
            labels=labels,
        )
    )
    if "gi" in tables:
        lines += _top_gi_lines(tables["gi"].table, suppressed, divisions, labels)
    return lines


def _statistic_lines(unit_summary: dict, word: str) -> list[str]:
    """One item per spatial statistic over the window (Moran's I, Gi*, LISA, emerging hot
    spots), and why any was not computed."""
    lines = []
    stats = {k: v for k, v in unit_summary["statistics"].items() if "not_computed" not in v}
    names = {"moran": "Moran's I", "lisa": "LISA", "gi": "Gi*", "emerging": "Emerging hot spots"}
    for stat, value in unit_summary["statistics"].items():
        if "not_computed" in value:
            lines.append(f"- {names.get(stat, stat)}: not computed ({value['not_computed']}).")
    window = unit_summary.get("window") or {}
    over = (
        f" over the {window['periods']}-{word} window"
        if window.get("periods")
        else " over the window"
    )
    if "moran" in stats:
        m = stats["moran"]
        lines.append(
            f"- Global Moran's I{over} = {m['I']:.3f} (z = {m['z_norm']:.1f}, permutation p = "
            f"{m['p_sim']:.3f}): harm {'clusters' if m['I'] > 0 else 'disperses'} in space."
        )
    if "gi" in stats:
        bins = stats["gi"]["bins"]
        hot = sum(v for k, v in bins.items() if k.startswith("Hot"))
        cold = sum(v for k, v in bins.items() if k.startswith("Cold"))
        lines.append(
            f"- Getis-Ord Gi*{over}: {hot} hot-spot units and {cold} cold-spot units at 90% "
            "confidence or more."
            + (
                " No cold spot does not mean no quiet area: where most units record "
                "little or nothing, a neighbourhood cannot fall significantly below the mean "
                "(Gi* is asymmetric on skewed counts)."
                if hot and not cold
                else ""
            )
        )
    if "lisa" in stats:
        clusters = stats["lisa"]["clusters"]
        lines.append(
            f"- LISA clusters{over}: " + ", ".join(f"{k} {v}" for k, v in clusters.items())
        )
    if "emerging" in stats:
        lines += _emerging_lines(stats["emerging"])
    return lines


def _emerging_lines(e: dict) -> list[str]:
    """The emerging hot spot categories, the categories compared across the 2024 break, and
    the cautions."""
    cats = ", ".join(f"{k} {v}" for k, v in e["categories"].items())
    lines = [
        f"- Emerging hot spots over {e['periods']} complete periods "
        f"({e['first_period']} to {e['last_period']}): {cats}."
    ]
    if e.get("crime_categories"):
        lines.append(
            "  - The periods span the March 2024 records-system break, so the trends use "
            "the categories recorded alike in both systems only: "
            + ", ".join(str(c).replace("_", " ") for c in e["crime_categories"])
            + "."
        )
    for w in e.get("warnings", []):
        lines.append(f"  - Caution: {w}.")
    return lines


def _top_gi_lines(gi: pd.DataFrame, suppressed, divisions, labels) -> list[str]:
    """The ten published units with the highest Gi* z-score."""
    if suppressed is not None:
        gi = gi[~hidden_mask(suppressed, gi["unit_id"])]
    top = gi.sort_values("gi_z", ascending=False).head(10)
    lines = [
        "Top units by Gi* z-score over the window (published units; z to one decimal):",
        "",
    ]
    if labels is not None:
        lines.append("| place | Gi* z | class |")
        lines.append("| --- | --- | --- |")
    else:
        lines.append("| unit | division | Gi* z | class |")
        lines.append("| --- | --- | --- | --- |")
    for row in top.itertuples():
        where = (
            _unit_cell(labels, row.unit_id)
            if labels is not None
            else f"{md_text(row.unit_id)} | {_place(divisions, row.unit_id)}"
        )
        lines.append(f"| {where} | {row.gi_z:.1f} | {row.gi_label} |")
    lines.append("")
    return lines


def study_area_words(areas: list[int], *, chosen_by_data: bool) -> str:
    """The study area in words: ``all 21 LAPD divisions`` or ``LAPD division(s) 8``."""
    if sorted(areas) == list(DIVISIONS):
        return "all 21 LAPD divisions"
    return f"LAPD division(s) {', '.join(map(str, areas))}" + (
        " (the divisions the data covers)" if chosen_by_data else ""
    )


def study_header(
    study: Any, n_incidents: int, where: str, k_anonymity: int = DEFAULT_K
) -> list[str]:
    """The opening lines of a study's section: its rows (``fewer than k`` below the threshold,
    as every public count), area, dates, periods and measure."""
    last = str((pd.Timestamp(study.end) - pd.Timedelta(days=1)).date()) if study.end else "the end"
    dates = (
        f", occurrence days {study.start or 'from the start'} to {last}"
        if study.start or study.end
        else ""
    )
    lines = [
        f"## Study {md_code(study.name)}",
        "",
        f"{count_words(n_incidents, k_anonymity).capitalize()} incidents in {where}{dates}; "
        f"periods: {Freq.parse(study.freq).word}s; measure: {study.measure}.",
        "",
    ]
    why = getattr(study, "why", "")
    if why:
        lines += [f"Why this window: {md_text(why.rstrip('.'))}.", ""]
    return lines


def _for_whom(unit_summary: dict) -> str:
    """``every unit``, or ``at least 80% of the units`` for a study's window share below 1."""
    share = float((unit_summary.get("window") or {}).get("share", 1.0))
    return "every unit" if share >= 1 else f"at least {share:.0%} of the units"


def _window_sentence(unit_summary: dict, word: str) -> str:
    """The sentence naming a unit set's analysis window (see :func:`statistics_section`)."""
    window = unit_summary.get("window") or {}
    n = int(window.get("periods", unit_summary.get("complete_periods", 0)))
    if not n:
        return f"No {word} is completely recorded for every unit, so no statistic is computed."
    span = f" ({window['first']} to {window['last']})" if "first" in window else ""
    share = float(window.get("share", 1.0))
    if share < 1:
        return (
            f"The analysis window is the {n} {word}s{span} completely recorded for at least "
            f"{share:.0%} of the units (the study's window share): every statistic, ranking, "
            f"share, rate, map and figure below uses it, and a unit's values are means per "
            f"{word} over the window's {word}s completely recorded for that unit (the forecasts "
            "alone read each unit's own history)."
        )
    return (
        f"The analysis window is those {n} {word}s{span}: every statistic, ranking, share, rate, "
        "map and figure below uses it (the forecasts alone read each unit's own history)."
    )


def no_forecast_section(spec: str, reason: Exception) -> list[str]:
    """The forecast section of a unit type whose forecast could not be computed, and why."""
    return [
        f"#### Forecast and recommendations ({md_code(spec)})",
        "",
        f"No forecast: {reason}.",
        "",
    ]


def figure_lines(spec: str, figures: list[Path], title: str = "Figures") -> list[str]:
    """The figures of a unit type (or a study), as Markdown images (paths relative to the run
    folder), under ``title``."""
    if not figures:
        return []
    lines = [f"{title} ({md_code(spec)}):", ""]
    lines += [f"![{figure.stem.replace('_', ' ')}]({figure.as_posix()})" for figure in figures]
    return [*lines, ""]


def original_study_title(info: dict) -> str:
    """The heading of the original study's protocol table in a forecast report."""
    return (
        "The original study's protocol (80/20 split, days complete for all 21 "
        f"divisions: {info['days'][0]} .. {info['days'][1]}; test "
        f"{info['test_days'][0]} .. {info['test_days'][1]})"
    )
