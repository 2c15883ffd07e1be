"""Key findings first: the report's opening summary, its contents and links to every output.

A reader of ``report.html`` should learn in half a page where harm concentrates, what is
emerging, what the forecast says and how far to trust it, and which caveats matter, before any
data or cleaning table. :func:`unit_findings` condenses one unit type of a study into a small dict
(kept in ``summary.json`` too) from results already computed (no statistic is re-run), naming
places by their labels (:func:`geo_crime.units.places.place_labels`) and leaving suppressed units
out of every list and share. :func:`key_findings_lines` writes the summary from those dicts,
:func:`contents_lines` the table of contents and :func:`output_links` the links to the run's
maps, GIS layers and figures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core.periods import Freq
from geo_crime.report.markdown import heading_anchor, md_text, unique_anchor
from geo_crime.report.study import keras_bias_sentence, ranking_recommendation, recommendation

__all__ = [
    "contents_lines",
    "coverage_caveats",
    "key_findings_lines",
    "output_links",
    "unit_findings",
]

#: Emerging hot spot categories the summary calls "emerging".
EMERGING = ("New Hot Spot", "Consecutive Hot Spot", "Intensifying Hot Spot")

#: Words for the period of a cube's frequency.


def unit_findings(
    *,
    study: str,
    spec: str,
    cube: Any,
    labels: pd.Series,
    suppressed: pd.Series | None,
    tables: dict[str, Any],
    backtest: dict | None,
    approximate: bool = False,
    forecast: pd.DataFrame | None = None,
    top: int = 3,
    where: str = "",
    data_end: str = "",
    places: list[dict] | None = None,
) -> dict[str, Any]:
    """The findings of one unit type of a study, for the summary.

    Parameters
    ----------
    study, spec : str
        Study name and unit specification (``h3:8``).
    cube : Cube
        The study's cube (severity over its completely recorded cells).
    labels : pandas.Series
        Place label per unit id.
    suppressed : pandas.Series, optional
        Suppressed units (True) by unit id: never named, never counted in a share.
    tables : dict
        Statistic results by name (``emerging`` is used when present).
    backtest : dict, optional
        The forecast summary of the run (``metrics``, ``scope``, ``next_period``).
    approximate : bool, default False
        The units' boundaries are approximate (derived reporting districts).
    forecast : pandas.DataFrame, optional
        The public next-period forecast (``unit_id``, ``prediction`` and, when present, the
        ``expected_*`` incidents of :func:`geo_crime.forecast.incidents.expected_incidents`);
        suppressed units are blank in it and never named.
    top : int, default 3
        Places named.
    where : str, default ""
        The study's divisions, as the report names them (``all 21 LAPD divisions``).
    data_end : str, default ""
        The last occurrence day of all the run's rows (ISO date): a period forecast that the
        data holds any of is called a backtest. Default: the study's own data end.
    places : list of dict, optional
        The top places' profiles (:func:`geo_crime.report.places.profile_record`): the repeat
        locations among them are named.

    Returns
    -------
    dict
        ``top_places`` (label and share of the study's recorded severity), ``top_decile_share``
        (share held by the 10% of units with the most), ``n_units``, ``emerging`` (labels per
        category), ``forecast`` (verdict, scope and the places forecast highest) and
        ``approximate``.
    """
    ids = np.asarray(cube.unit_ids).astype(str)
    hidden = (
        suppressed.reindex(ids).fillna(True).to_numpy(dtype=bool)
        if suppressed is not None
        else np.zeros(len(ids), dtype=bool)
    )
    severity = np.where(np.asarray(cube.complete, bool), cube.values("severity"), 0.0).sum(axis=1)
    total = float(severity.sum())
    order = [i for i in np.argsort(-severity, kind="stable") if not hidden[i] and severity[i] > 0]
    decile = max(1, int(np.ceil(0.1 * len(ids))))
    findings: dict[str, Any] = {
        "study": study,
        "spec": spec,
        "period": Freq.parse(cube.freq).word,
        "n_units": int(len(ids)),
        "where": where,
        "window": cube.span(),
        "top_places": [
            {"label": str(labels.get(ids[i], ids[i])), "share": float(severity[i] / total)}
            for i in order[:top]
        ]
        if total > 0
        else [],
        "top_decile_units": decile,
        # the decile's share counts published units only: no suppressed value enters a share
        "top_decile_share": float(severity[order[:decile]].sum() / total) if total > 0 else 0.0,
        "approximate": bool(approximate),
        "emerging": {},
        "forecast": None,
        "repeat_locations": [
            {"label": p["place"], "incidents": p["incidents"], "repeat": p["repeat"]}
            for p in places or []
            if p.get("repeat")
        ],
        "n_places": len(places or []),
    }
    if "gi" in tables:
        findings["hot_spots"] = _gi_hot_spots(
            tables["gi"].table, labels, hidden_ids=set(ids[hidden])
        )
    if "emerging" in tables:
        table = tables["emerging"].table
        keep = ~table["unit_id"].astype(str).map(
            lambda u: bool(suppressed.get(u, True)) if suppressed is not None else False
        )
        for category in EMERGING:
            chosen = table.loc[keep & (table["category"] == category), "unit_id"].astype(str)
            if len(chosen):
                findings["emerging"][category] = [str(labels.get(u, u)) for u in chosen]
    if backtest and backtest.get("metrics"):
        metrics = pd.DataFrame(backtest["metrics"]).T
        scope = backtest.get("scope", {})
        shares = scope.get("scored_share_per_origin", [])
        findings["forecast"] = {
            "next_period": backtest.get("next_period", ""),
            "use": recommendation(backtest, findings["period"]) if "keras" in metrics.index else "",
            "ranking": ranking_recommendation(backtest) or "",
            "bias": keras_bias_sentence(backtest),
            "scored_share": float(np.mean(shares)) if shares else None,
            "covers_study_area": bool(scope.get("covers_study_area", False)),
            "n_origins": len(backtest.get("origins", [])),
            "data_end": max(str(backtest.get("data_end", "")), str(data_end)),
            "top_places": _forecast_top(forecast, labels, hidden_ids=set(ids[hidden]), top=top),
        }
    return findings


def _gi_hot_spots(table: pd.DataFrame, labels: pd.Series, *, hidden_ids: set, top: int = 5) -> dict:
    """The published Gi* hot spots at 99% confidence, strongest first: how many, and the
    places of the first ``top``."""
    hot = table[(table["gi_bin"] == 3) & ~table["unit_id"].astype(str).isin(hidden_ids)]
    hot = hot.sort_values(["gi_z", "unit_id"], ascending=[False, True])
    return {
        "n": int(len(hot)),
        "places": [str(labels.get(str(u), u)) for u in hot["unit_id"].astype(str).head(top)],
    }


def _held_by_data(next_period: str, data_end: str) -> bool:
    """Whether the data already holds (part of) the period forecast: then it is a backtest."""
    if not next_period or not data_end:
        return False
    return pd.Timestamp(next_period) <= pd.Timestamp(data_end)


def _about(value: float) -> str:
    """An expected count as a reader says it: one decimal below 10, whole numbers above."""
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def _forecast_top(
    forecast: pd.DataFrame | None, labels: pd.Series, *, hidden_ids: set, top: int
) -> list[dict]:
    """The published units forecast highest: label, severity points and expected incidents."""
    if forecast is None or "prediction" not in forecast:
        return []
    ranked = forecast.dropna(subset=["prediction"])
    ranked = ranked[~ranked["unit_id"].astype(str).isin(hidden_ids)]
    out = []
    for row in ranked.sort_values("prediction", ascending=False).head(top).itertuples():
        unit = str(row.unit_id)
        incidents = getattr(row, "expected_incidents", float("nan"))
        violent = getattr(row, "expected_violent", float("nan"))
        out.append(
            {
                "label": str(labels.get(unit, unit)),
                "severity": float(row.prediction),
                "incidents": float(incidents) if pd.notna(incidents) else None,
                "violent": float(violent) if pd.notna(violent) else None,
            }
        )
    return out


def key_findings_lines(findings: Sequence[dict], caveats: Sequence[str] = ()) -> list[str]:
    """The report's opening section: findings per study and unit type, then caveats.

    Parameters
    ----------
    findings : sequence of dict
        :func:`unit_findings` results, in report order.
    caveats : sequence of str
        The data caveats that matter most (coverage breaks ...), as sentences.

    Returns
    -------
    list of str
        Markdown lines (a ``## Key findings`` section).
    """
    lines = ["## Key findings", ""]
    if not findings:
        lines += ["No study produced unit results in this run.", ""]
    for f in findings:
        text = [_finding_head(f) + ":"]
        places = "; ".join(
            f"{md_text(p['label'])} ({p['share']:.1%})" for p in f.get("top_places", [])
        )
        if places:
            text.append(
                f"harm concentrates: the {f['top_decile_units']:,} units with the most recorded "
                f"severity (10% of the units) hold {f['top_decile_share']:.0%} of it; the first "
                f"are {places} (share of the recorded severity of those units over the "
                f"window)."
            )
        emerging = f.get("emerging") or {}
        if emerging:
            text.append(_emerging_sentence(emerging))
        elif "emerging" in f:
            text.append("No new, consecutive or intensifying hot spot.")
        repeats = f.get("repeat_locations") or []
        if repeats:
            listed = "; ".join(
                f"{md_text(r['label'])} (one address holds {r['repeat'][0]:,} of its "
                f"{r['incidents']:,} incidents, {r['repeat'][2]:,} of them "
                f"{md_text(str(r['repeat'][1]).lower())})"
                for r in repeats
            )
            text.append(
                f"Repeat locations among the {f['n_places']} top places over the window: "
                f"{listed}. A problem of one site, for whoever manages it, not for area patrol."
            )
        if f.get("forecast"):
            text += _forecast_sentences(f["forecast"], f["period"])
        if f.get("approximate"):
            text.append("Boundaries are approximate (derived from incident points).")
        lines += ["- " + text[0], *(f"  - {part[0].upper()}{part[1:]}" for part in text[1:]), ""]
    if caveats:
        lines += ["Caveats that matter most:", ""]
        lines += [f"- {c}" for c in caveats]
        lines.append("")
    return lines


def _finding_head(f: dict) -> str:
    """A finding's lead: study, unit set and scope (units, where, window)."""
    window = f.get("window") or {}
    scope = f"{f['n_units']:,} units" + (f" in {md_text(f['where'])}" if f.get("where") else "")
    if window.get("periods"):
        share = float(window.get("share", 1.0))
        scope += (
            f"; window: {window['periods']} completely recorded {f['period']}s"
            + (f" (for at least {share:.0%} of the units)" if share < 1 else "")
            + f", {window['first']} to {window['last']}"
        )
    return f"**{md_text(f['study'])}, {md_text(f['spec'])}** ({scope})"


def _emerging_sentence(emerging: dict) -> str:
    """``Emerging: 2 new hot spots (A, B); ...``: at most three places per category."""
    parts = []
    for category, names in emerging.items():
        listed = ", ".join(md_text(n) for n in names[:3])
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        parts.append(
            f"{len(names)} {category.lower()}{'s' if len(names) > 1 else ''} ({listed}{more})"
        )
    return "Emerging: " + "; ".join(parts) + "."


def _forecast_sentences(forecast: dict, period: str) -> list[str]:
    """What the forecast says (or the backtest, when the data holds the period), how far it
    was tested, and the places forecast highest."""
    scope = (
        f"scored on {forecast['scored_share']:.0%} of the units per origin"
        if forecast.get("scored_share") is not None
        else "scope unknown"
    )
    if not forecast.get("covers_study_area"):
        scope += ", not the whole study area"
    held = _held_by_data(forecast.get("next_period", ""), forecast.get("data_end", ""))
    label = (
        f"Backtest, not a forecast: the {period} starting "
        f"{forecast['next_period']} lies inside this run's data (which runs to "
        f"{forecast['data_end']})"
        if held
        else f"Forecast for the {period} starting {forecast['next_period']}"
    )
    text = [
        f"{label} (models compared over {forecast['n_origins']} origins, {scope}): "
        f"{forecast['use']}" + (f" {forecast['ranking']}" if forecast.get("ranking") else "")
    ]
    highest = "; ".join(
        f"{md_text(p['label'])} ({p['severity']:,.0f} severity points"
        + (
            f", about {_about(p['incidents'])} incidents, {_about(p['violent'])} of them violent"
            if p.get("incidents") is not None and p.get("violent") is not None
            else ""
        )
        + ")"
        for p in forecast.get("top_places", [])
    )
    if highest:
        text.append(
            f"{'Predicted' if held else 'Forecast'} highest for that {period}, of "
            f"the units with a published forecast: {highest}."
            + (f" {forecast['bias']}" if forecast.get("bias") else "")
        )
    return text


def contents_lines(markdown: str) -> list[str]:
    """A table of contents of the ``##`` and ``###`` headings of a Markdown text.

    Parameters
    ----------
    markdown : str
        The report text (headings are linked by the anchors the HTML report gives them).

    Returns
    -------
    list of str
        Markdown lines (a ``## Contents`` section).
    """
    lines = ["## Contents", ""]
    # the anchors count the summary's headings too, as the HTML renderer does
    seen = {heading_anchor("Key findings"): 1, heading_anchor("Contents"): 1}
    for line in markdown.splitlines():
        match = re.match(r"^(#{2,3}) (.+)$", line)
        if not match:
            continue
        depth = len(match.group(1)) - 2
        title = match.group(2).strip()
        anchor = unique_anchor(heading_anchor(title), seen)
        lines.append(f"{'  ' * depth}- [{title}](#{anchor})")
    return [*lines, ""]


def output_links(files: Sequence[Path], folder: Path) -> list[str]:
    """Links to every map, GIS layer and figure a run wrote, relative to the run folder.

    Parameters
    ----------
    files : sequence of pathlib.Path
        The run's files (only those under ``public/`` are linked).
    folder : pathlib.Path
        The run (staging) folder.

    Returns
    -------
    list of str
        Markdown lines (a ``## Maps, GIS layers and figures`` section).
    """
    kinds = {
        "Maps (open in a browser)": (".html",),
        "GIS layers (QGIS, ArcGIS)": (".gpkg", ".geojson"),
        "Figures": (".png",),
        "Tables": (".csv",),
    }
    public = []
    for path in files:
        try:
            rel = Path(path).resolve().relative_to(Path(folder).resolve())
        except ValueError:
            continue
        if rel.parts and rel.parts[0] == "public":
            public.append(rel)
    lines = ["## Maps, GIS layers and figures", ""]
    for title, suffixes in kinds.items():
        chosen = sorted({p for p in public if p.suffix in suffixes})
        if not chosen:
            continue
        lines += [f"{title}:", ""]
        lines += [f"- [{md_text(p.as_posix())}]({p.as_posix()})" for p in chosen]
        lines.append("")
    return lines


def coverage_caveats(coverage: Any) -> list[str]:
    """The coverage breaks a reader must know about, one sentence per source.

    Parameters
    ----------
    coverage : CoverageResult
        The run's monthly coverage check (``table`` with ``source``, ``area``, ``period``,
        ``complete``).

    Returns
    -------
    list of str
        Sentences: per source, how many area-months are not completely recorded and when; and
        the March 2024 records-system change when the data reaches past it.
    """
    union = coverage.union
    out = []
    bad = union.loc[~union["complete"].astype(bool)]
    if len(bad):
        first = pd.Timestamp(bad["period"].min()).strftime("%Y-%m")
        last = pd.Timestamp(bad["period"].max()).strftime("%Y-%m")
        out.append(
            f"{len(bad):,} of {len(union):,} division-months ({first} to {last}) are not "
            "completely recorded, judged on every source and records system together against "
            "a stable reference; statistics and forecasts leave them out."
        )
    if len(union) and pd.Timestamp(union["period"].max()) >= pd.Timestamp("2024-03-01"):
        out.append(
            "LAPD moved to a NIBRS records system on 7 March 2024; through 2024 the legacy and "
            "NIBRS systems split the reports between them, so 2024 is complete only where both "
            "are loaded, and trends across the switch use the categories recorded alike in both."
        )
    return out
