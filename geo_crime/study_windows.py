"""The default studies of a run, chosen from the data rather than fixed dates.

A run without ``[[study]]`` tables analyses what the data holds completely recorded, judged by
the weekly coverage check on both records systems together (:mod:`geo_crime.record.coverage`):

* **city-wide**: the latest run of consecutive weeks completely recorded in every one of the
  21 divisions, at most :data:`CITY_WEEKS` (52) weeks, H3 resolution-8 cells and reporting
  districts. On today's full record that is the last year up to the last complete week; on a
  slice it is the slice's complete stretch. The same weeks a year earlier are compared with it
  when they were completely recorded too.
* **a division on its own**: a division whose longest run of complete weeks before the
  city-wide window is longer than that window (and at least :data:`MIN_DIVISION_WEEKS` weeks)
  gets a study of its own over that run (its latest :data:`MAX_DIVISION_WEEKS` weeks at most),
  reporting districts and H3 resolution-9 cells: data the city-wide study would miss.

Each chosen study carries the sentence saying why (:attr:`StudySettings.why`), which the report
prints under the study's heading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo_crime.core.schema import AREA_NAMES, DIVISIONS
from geo_crime.record.coverage import CoverageResult
from geo_crime.settings import StudySettings

__all__ = [
    "CITY_WEEKS",
    "MAX_DIVISION_WEEKS",
    "MIN_DIVISION_WEEKS",
    "ChosenStudies",
    "studies_from_coverage",
]

#: Weeks of the default city-wide study (a year).
CITY_WEEKS = 52
#: Fewest complete weeks a division needs for a study of its own (half a year).
MIN_DIVISION_WEEKS = 26
#: Most weeks of a division's own study (two years).
MAX_DIVISION_WEEKS = 104

_WEEK = pd.Timedelta(weeks=1)


@dataclass
class ChosenStudies:
    """The default studies and what the choice rests on.

    Attributes
    ----------
    studies : list of StudySettings
        The studies, city-wide first.
    summary : dict
        For the run's summary: each study's window, weeks, why, and the year-earlier
        comparison of the city-wide window.
    """

    studies: list[StudySettings]
    summary: dict


def _weekly_flags(weekly: CoverageResult) -> pd.DataFrame:
    """Complete flags of the 21 divisions (rows) x every week from the first to the last
    (columns, Mondays); weeks no source spans are not complete."""
    union = weekly.union
    if union.empty:
        return pd.DataFrame(index=list(DIVISIONS))
    weeks = pd.date_range(union["period"].min(), union["period"].max(), freq="7D")
    flags = union.pivot_table(index="area", columns="period", values="complete", aggfunc="all")
    flags = flags.astype(float).reindex(index=list(DIVISIONS), columns=weeks).fillna(0.0)
    flags = flags.astype(bool)
    return flags


def _runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` positions of each run of True, in order."""
    padded = np.r_[False, ok, False].astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _years(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """``2024`` or ``2020_21`` for a window (end exclusive)."""
    last = (end - pd.Timedelta(days=1)).year
    return f"{start.year}" if last == start.year else f"{start.year}_{last % 100:02d}"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower()) or "division"


def studies_from_coverage(weekly: CoverageResult) -> ChosenStudies:
    """The default studies from the weekly coverage of a run's incidents (see the module).

    Parameters
    ----------
    weekly : CoverageResult
        :func:`geo_crime.record.coverage.check_coverage` at ``freq="W"`` of all the run's incidents.

    Returns
    -------
    ChosenStudies
    """
    flags = _weekly_flags(weekly)
    weeks = pd.DatetimeIndex(flags.columns)
    if not len(weeks):
        return ChosenStudies([], {"why": "no dated incidents"})
    city_ok = flags.all(axis=0).to_numpy(dtype=bool)
    runs = _runs(city_ok)
    if runs:
        first, last = runs[-1]
        first = max(first, last - CITY_WEEKS + 1)
        n_weeks = last - first + 1
        start, end = weeks[first], weeks[last] + _WEEK
        why = (
            f"the latest {n_weeks} consecutive weeks completely recorded in all 21 divisions "
            f"(both records systems together), at most {CITY_WEEKS}"
        )
    else:
        partial = weekly.union.loc[weekly.union["status"] == "partial", "period"]
        whole = ~weeks.isin(pd.DatetimeIndex(partial.unique()))
        last = int(np.flatnonzero(whole)[-1]) if whole.any() else len(weeks) - 1
        first = max(0, last - CITY_WEEKS + 1)
        n_weeks = last - first + 1
        start, end = weeks[first], weeks[last] + _WEEK
        why = (
            f"no week is completely recorded in all 21 divisions, so the latest {n_weeks} weeks "
            "of data, with the incompletely recorded weeks of each division left out"
        )
    comparison = _year_earlier(weekly, flags, start, end)
    city = StudySettings(
        name=f"citywide_{_years(start, end)}",
        start=str(start.date()),
        end=str(end.date()),
        units=["h3:8", "rd"],
        why=f"{why}; {comparison['sentence']}",
    )
    studies = [city]
    summary = {
        city.name: {"start": city.start, "end": city.end, "weeks": n_weeks, "why": city.why},
        "year_earlier": comparison,
    }
    for area in flags.index:
        ok = flags.loc[area].to_numpy(dtype=bool)
        before = [(a, b) for a, b in _runs(ok) if weeks[b] + _WEEK <= start]
        if not before:
            continue
        a, b = max(before, key=lambda r: (r[1] - r[0], r[1]))
        length = b - a + 1
        if length <= n_weeks or length < MIN_DIVISION_WEEKS:
            continue
        a = max(a, b - MAX_DIVISION_WEEKS + 1)
        d_start, d_end = weeks[a], weeks[b] + _WEEK
        name = AREA_NAMES.get(int(area), f"division {area}")
        study = StudySettings(
            name=f"{_slug(name)}_{_years(d_start, d_end)}",
            areas=[int(area)],
            start=str(d_start.date()),
            end=str(d_end.date()),
            units=["rd", "h3:9"],
            why=(
                f"{name}'s longest run of completely recorded weeks before the city-wide window: "
                f"{length} weeks ({b - a + 1} used, at most {MAX_DIVISION_WEEKS}), longer than "
                f"the city-wide window's {n_weeks}"
            ),
        )
        studies.append(study)
        summary[study.name] = {
            "start": study.start,
            "end": study.end,
            "weeks": b - a + 1,
            "why": study.why,
        }
    return ChosenStudies(studies, summary)


def _year_earlier(
    weekly: CoverageResult, flags: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> dict:
    """Incidents in the window and in the same weeks 52 weeks earlier, when those are complete."""
    counts = weekly.union.groupby("period")["count"].sum()
    now = pd.date_range(start, end - _WEEK, freq="7D")
    then = now - pd.Timedelta(weeks=52)
    complete_then = flags.reindex(columns=then, fill_value=False).all(axis=0)
    n_complete = int(complete_then.sum())
    incidents_now = int(counts.reindex(now, fill_value=0).sum())
    out = {
        "weeks": len(now),
        "incidents": incidents_now,
        "earlier_start": str(then[0].date()),
        "earlier_weeks_complete": n_complete,
    }
    if n_complete == len(now):
        incidents_then = int(counts.reindex(then, fill_value=0).sum())
        change = incidents_now / incidents_then - 1 if incidents_then else float("nan")
        out.update(incidents_earlier=incidents_then, change=round(change, 4))
        out["sentence"] = (
            f"{incidents_now:,} recorded incidents in all 21 divisions in these {len(now)} weeks "
            f"against {incidents_then:,} in the same weeks a year earlier (from "
            f"{then[0].date()}; {change:+.1%})"
        )
    else:
        held = "none of them" if not n_complete else f"only {n_complete} of them"
        verb = "is" if n_complete == 1 else "are"
        out["sentence"] = (
            f"of the same {len(now)} weeks a year earlier (from {then[0].date()}), {held} "
            f"{verb} completely recorded in all 21 divisions in this data, so no year-on-year "
            "comparison is made"
        )
    return out
