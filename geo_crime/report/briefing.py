"""The report's opening briefing: what was recorded, where, compared with what, how sure.

Written for a commander or a council member first: one window (the city-wide study's analysis
window, the weeks completely recorded in every division), city-wide crime types, and each
division against the same weeks a year earlier where the data recorded those completely too.
Every number names its unit, window and scope in its sentence or table heading.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.schema import AREA_NAMES
from geo_crime.forecast.incidents import INCIDENT_GROUPS
from geo_crime.publish.places import TIME_CLASS_LABELS
from geo_crime.publish.privacy import suppressed_units
from geo_crime.record.coverage import CoverageResult
from geo_crime.report.markdown import markdown_table, md_text
from geo_crime.report.places import place_table

__all__ = ["briefing_lines", "division_comparison"]

_YEAR = pd.Timedelta(weeks=52)


def _window_weeks(window: dict) -> pd.DatetimeIndex:
    """The Mondays of a weekly analysis window (``first`` to ``last``)."""
    return pd.date_range(window["first"], window["last"], freq="7D")


def division_groups(division_weeks: pd.DataFrame, window: dict) -> pd.DataFrame:
    """Violent and property incidents per division over the window's weeks.

    Parameters
    ----------
    division_weeks : pandas.DataFrame
        Per (``area``, ``week``, ``crime_category``): ``incidents``
        (:attr:`geo_crime.record.tallies.RunTally.division_weeks`).
    window : dict
        ``first`` and ``last`` week of the analysis window.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``area``: ``violent`` and ``property`` (the groups of
        :data:`geo_crime.forecast.incidents.INCIDENT_GROUPS`).
    """
    if division_weeks is None or not len(division_weeks):
        return pd.DataFrame(columns=["violent", "property"], dtype="int64")
    inside = division_weeks[division_weeks["week"].isin(_window_weeks(window))]
    group = {c: g for g, cats in INCIDENT_GROUPS.items() for c in cats}
    grouped = inside.assign(group=inside["crime_category"].map(group).fillna("other"))
    table = grouped.pivot_table(
        index="area", columns="group", values="incidents", aggfunc="sum", fill_value=0
    )
    table.index = table.index.astype(int)
    return table.reindex(columns=["violent", "property"], fill_value=0).astype(int)


def division_comparison(weekly: CoverageResult, window: dict) -> pd.DataFrame:
    """Recorded incidents per division in the window and in the same weeks a year earlier.

    Parameters
    ----------
    weekly : CoverageResult
        The weekly coverage of the run's incidents (its union counts every recorded incident of
        the division, with or without coordinates).
    window : dict
        ``first`` and ``last`` week (Mondays) of the analysis window.

    Returns
    -------
    pandas.DataFrame
        One row per division with data in the window: ``area``, ``division``, ``incidents``,
        ``incidents_year_earlier`` (NA unless all those weeks were completely recorded in the
        division) and ``change`` (share, NA likewise), sorted by incidents.
    """
    weeks = _window_weeks(window)
    union = weekly.union
    counts = union.pivot_table(index="area", columns="period", values="count", aggfunc="sum")
    flags = union.pivot_table(index="area", columns="period", values="complete", aggfunc="all")
    now = counts.reindex(columns=weeks).fillna(0).sum(axis=1)
    earlier = weeks - _YEAR
    then = counts.reindex(columns=earlier).fillna(0).sum(axis=1)
    complete_then = (
        flags.astype(float).reindex(columns=earlier).fillna(0.0).astype(bool).all(axis=1)
    )
    out = pd.DataFrame(
        {
            "area": now.index.astype(int),
            "division": [AREA_NAMES.get(int(a), str(a)) for a in now.index],
            "incidents": now.to_numpy().round().astype(int),
            "incidents_year_earlier": pd.array(
                np.where(complete_then.reindex(now.index).to_numpy(), then.round(), np.nan),
                dtype="Int64",
            ),
        }
    )
    out = out[out["incidents"] > 0]
    earlier_n = out["incidents_year_earlier"].astype("Float64")
    out["change"] = out["incidents"] / earlier_n.where(earlier_n > 0) - 1
    return out.sort_values(["incidents", "area"], ascending=[False, True]).reset_index(drop=True)


def _crime_types(weeks: pd.DataFrame, window_weeks: pd.DatetimeIndex) -> pd.DataFrame:
    """City-wide recorded incidents per crime category over the window's weeks."""
    inside = weeks[weeks["week"].isin(window_weeks)]
    table = inside.groupby("crime_category")["incidents"].sum().sort_values(ascending=False)
    total = int(table.sum())
    return pd.DataFrame(
        {
            "crime type": [c.replace("_", " ") for c in table.index],
            "incidents": table.to_numpy().astype(int),
            "share": [f"{v / total:.0%}" if total else "" for v in table.to_numpy()],
        }
    )


def _when_lines(
    hours: pd.DataFrame | None, window_weeks: pd.DatetimeIndex, n_weeks: int, k_anonymity: int
) -> list[str]:
    """The weekly range and the time of day over the window (city-wide)."""
    if hours is None or not len(hours):
        return []
    inside = hours[hours["week"].isin(window_weeks)]
    if not len(inside):
        return []
    per_week = inside.groupby("week")["incidents"].sum()
    by_class = inside.groupby("time_class")["incidents"].sum()
    known = by_class.drop(index=0, errors="ignore")
    unknown = int(by_class.get(0, 0))
    lines = [
        f"**When.** City-wide, {per_week.mean():,.0f} recorded incidents a week on average over "
        f"the {n_weeks} weeks (from {int(per_week.min()):,} in the week of "
        f"{per_week.idxmin().date()} to {int(per_week.max()):,} in the week of "
        f"{per_week.idxmax().date()}). Time of day, in 4-hour blocks, of the "
        f"{int(known.sum()):,} incidents whose time or time block is recorded"
        + (f" ({unknown:,} have neither)" if unknown else "")
        + "; legacy records often carry 12:00 or 00:01 when the time is not known, which "
        "inflates the 12:00 and 00:00 blocks:",
        "",
    ]
    total = int(known.sum())
    table = pd.DataFrame(
        {
            "time of day": [TIME_CLASS_LABELS[int(c)] for c in known.index],
            "incidents": known.to_numpy().astype(int),
            "share": [f"{v / total:.0%}" if total else "" for v in known.to_numpy()],
        }
    )
    return [lines[0][:-1] + ": " + _inline(table, k_anonymity) + ".", ""]


def _inline(table: pd.DataFrame, k_anonymity: int) -> str:
    """``theft 8,871 (23%); burglary 5,121 (13%); ...``: a table of (name, incidents, share)
    in one line, counts under ``k_anonymity`` (and the next smallest where one alone would
    follow from the total) as "fewer than k"."""
    hidden = suppressed_units(table["incidents"].astype(int), k_anonymity).to_numpy()
    return "; ".join(
        f"{name} fewer than {k_anonymity}" if hide else f"{name} {int(n):,} ({share})"
        for name, n, share, hide in zip(
            table.iloc[:, 0], table["incidents"], table["share"], hidden, strict=True
        )
    )


def briefing_lines(
    *,
    study: str,
    window: dict,
    weekly: CoverageResult | None,
    weeks: pd.DataFrame,
    k_anonymity: int = DEFAULT_K,
    hot_spots: dict | None = None,
    units: str = "",
    hours: pd.DataFrame | None = None,
    division_weeks: pd.DataFrame | None = None,
    places: list[dict] | None = None,
) -> list[str]:
    """Markdown lines of the briefing (empty without a weekly city-wide window).

    Parameters
    ----------
    study : str
        The city-wide study's name.
    window : dict
        Its analysis window (``first``, ``last``, ``periods``; weeks).
    weekly : CoverageResult or None
        The run's weekly coverage.
    weeks : pandas.DataFrame
        City-wide incidents per (``crime_category``, ``week``)
        (:attr:`geo_crime.record.tallies.RunTally.weeks`).
    hot_spots : dict, optional
        The published Gi* hot spots at 99% of the study's first unit set (``n``, ``places``:
        :func:`geo_crime.report.findings.unit_findings`).
    units : str, default ""
        That unit set, as the report names it (``h3:8``).
    hours : pandas.DataFrame, optional
        City-wide incidents per (``week``, ``time_class``) (:attr:`RunTally.hours
        <geo_crime.record.tallies.RunTally>`).
    division_weeks : pandas.DataFrame, optional
        Incidents per (``area``, ``week``, ``crime_category``)
        (:attr:`geo_crime.record.tallies.RunTally.division_weeks`): violent and property per
        division.
    places : list of dict, optional
        The crime mix of the study's first unit set's top places over the window
        (:func:`geo_crime.report.places.profile_record`): the first five are listed.
    k_anonymity : int, default 3
        A count below it (a crime type, a division, or a division a year earlier) is shown as
        "fewer than k" (and, where a single one would follow from the total, the next smallest
        too: :func:`geo_crime.publish.privacy.suppressed_units`); a change involving one is not
        shown.

    Returns
    -------
    list of str
    """
    if weekly is None or not window.get("periods") or "first" not in window:
        return []
    window_weeks = _window_weeks(window)
    scope = (
        f"{window['periods']} weeks completely recorded in every division, {window['first']} "
        f"to the week of {window['last']} (study `{study}`)"
    )
    lines = ["## Briefing", ""]
    lines.append(
        f"**How sure.** Everything below covers one window: the {scope}. Recorded crime is not "
        "all crime: it is what was reported to and recorded by the LAPD."
    )
    lines.append("")
    kinds = _crime_types(weeks, window_weeks)
    total = int(weeks.loc[weeks["week"].isin(window_weeks), "incidents"].sum())
    if len(kinds):
        lines.append(
            f"**What.** {total:,} recorded incidents city-wide over the {window['periods']} "
            f"weeks, by crime type: {_inline(kinds, k_anonymity)}."
        )
        lines.append("")
    lines += _when_lines(hours, window_weeks, window["periods"], k_anonymity)
    if hot_spots and hot_spots.get("places"):
        listed = "; ".join(md_text(p) for p in hot_spots["places"])
        lines.append(
            f"**Where.** {hot_spots['n']:,} units ({md_text(units)}) are Getis-Ord Gi* hot spots "
            f"at 99% confidence over the window (harm clusters there and around them); the "
            f"strongest: {listed}. The study's map shows them all."
        )
        lines.append("")
    if places:
        lines.append(
            f"**What happens at the top places.** The {min(len(places), 5)} {md_text(units)} "
            "units with the most recorded severity over the window, their crime mix and what to "
            "try there (a repeat location is one address, mostly one offence: a problem of one "
            "site, for whoever manages it):"
        )
        lines.append("")
        lines += place_table(places, limit=5)
    lines += _comparison_lines(weekly, window, division_weeks, k_anonymity)
    return lines


def _comparison_lines(
    weekly: CoverageResult,
    window: dict,
    division_weeks: pd.DataFrame | None,
    k_anonymity: int,
) -> list[str]:
    """The divisions compared with the same weeks a year earlier: incidents, violent and
    property ones, and the change where both windows were completely recorded (counts below
    ``k_anonymity`` shown as "fewer than k", no change involving one)."""
    divisions = division_comparison(weekly, window)
    if not len(divisions):
        return []
    window_weeks = _window_weeks(window)
    lines: list[str] = []
    earlier = (window_weeks[0] - _YEAR).date()
    n_compared = int(divisions["incidents_year_earlier"].notna().sum())
    lines.append(
        f"**Compared with what.** Recorded incidents per division over the same "
        f"{window['periods']} weeks (all, and the violent and property ones with a stated "
        f"division), and over the same weeks a year earlier (from "
        f"{earlier}) where the data recorded those completely too ({n_compared} of "
        f"{len(divisions)} divisions):"
    )
    lines.append("")
    groups = division_groups(division_weeks, window).reindex(divisions["area"], fill_value=0)
    shown = divisions.drop(columns="area").rename(
        columns={"incidents_year_earlier": "a year earlier"}
    )
    for offset, name in enumerate(("violent", "property"), start=1):
        values = groups[name].astype(int).reset_index(drop=True)
        hide = suppressed_units(values, k_anonymity).to_numpy()
        column = [
            f"fewer than {k_anonymity}" if h else f"{int(v):,}"
            for v, h in zip(values, hide, strict=True)
        ]
        shown.insert(shown.columns.get_loc("incidents") + offset, name, column)
    few = f"fewer than {k_anonymity}"
    primary = suppressed_units(shown["incidents"], k_anonymity).to_numpy()
    hidden = primary | (shown["a year earlier"].fillna(k_anonymity) < k_anonymity).to_numpy()
    shown["change"] = shown["change"].map(lambda v: "" if pd.isna(v) else f"{v:+.0%}")
    shown.loc[hidden, "change"] = ""
    shown["a year earlier"] = shown["a year earlier"].map(
        lambda v: (
            "not completely recorded" if pd.isna(v) else (few if v < k_anonymity else f"{int(v):,}")
        )
    )
    shown["incidents"] = [
        few if hide else f"{int(v):,}" for v, hide in zip(shown["incidents"], primary, strict=True)
    ]
    lines.append(markdown_table(shown))
    lines.append("")
    return lines
