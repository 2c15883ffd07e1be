"""Additive tallies of incident rows: what a run reads of the rows besides the cube.

The report's data and severity tables, the records-system break, and each study's trend and hour
x weekday figures, divisions and last day all read incident rows. Each is finished here from a
*tally*: small tables of counts and sums over keys such as (source, division, reporting
district) or (day, division), such that two batches of rows tallied apart and added give the
tally of both. The in-memory run tallies its one frame; the Dask engine (``geo-crime run DATASET
--engine dask``, :mod:`geo_crime.cube.dask`) tallies each partition on the cluster and adds
the tallies there. Only the tally of the whole is finished into tables and figures, so both
engines give the same numbers by construction. (The division check adds up the same way:
:class:`geo_crime.units.assign.DivisionCheck` objects are summed.)

A tally is small whatever the data's size: at most one row per source x reporting district, per
crime category x week, per day x division, per weekday x minute x division.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from geo_crime.core.lapd import records_systems
from geo_crime.core.schema import ROW_COUNT
from geo_crime.record.breaks import weekly_category_counts, weekly_grid


def _plain(values: pd.Series, kind: str) -> pd.Series:
    """A key column in a dtype every partition shares (parts' categories differ)."""
    if kind == "int":
        return pd.to_numeric(values, errors="coerce").astype("Int64")
    return values.astype("string")


def _add(a: pd.DataFrame, b: pd.DataFrame, by: list[str], how: dict[str, str]) -> pd.DataFrame:
    """Two tallies as one: rows with the same key summed (or min/max as ``how`` says)."""
    present = [t for t in (a, b) if len(t)]
    if len(present) < 2:
        return present[0] if present else a
    both = pd.concat(present, ignore_index=True)
    return both.groupby(by, dropna=False, sort=True).agg(how).reset_index()


def _tally(frame: pd.DataFrame, by: list[str], how: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """``frame`` grouped on ``by`` (missing keys kept as their own group), sorted."""
    return frame.groupby(by, dropna=False, sort=True).agg(**how).reset_index()


def _severity(incidents: pd.DataFrame) -> pd.Series:
    """Severity points per row as floats (missing where not scored, or no column)."""
    if "severity" not in incidents:
        return pd.Series(float("nan"), index=incidents.index)
    return pd.to_numeric(incidents["severity"], errors="coerce").astype(float)


def _min(a, b):
    present = [v for v in (a, b) if v is not None and not pd.isna(v)]
    return min(present) if present else None


def _max(a, b):
    present = [v for v in (a, b) if v is not None and not pd.isna(v)]
    return max(present) if present else None


def _incidents_by(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows per key (sorted), as an ``incidents`` column: a tally two batches give summed."""
    return frame.groupby(keys, sort=True).size().rename("incidents").reset_index()


def _system_months(incidents: pd.DataFrame, systems) -> pd.DataFrame:
    """Incidents per (records system, month of occurrence)."""
    frame = pd.DataFrame(
        {
            "source_system": pd.Series(systems, index=incidents.index, dtype="string"),
            "month": incidents["occurred_at"].dt.to_period("M").dt.start_time,
        }
    ).dropna(subset=["month"])
    return _incidents_by(frame, ["source_system", "month"])


def _division_weeks(incidents: pd.DataFrame) -> pd.DataFrame:
    """Incidents per (stated division, week of occurrence, crime category)."""
    frame = pd.DataFrame(
        {
            "area": _plain(incidents["area"], "int"),
            "week": incidents["occurred_at"].dt.to_period("W-SUN").dt.start_time,
            "crime_category": _plain(incidents["crime_category"], "text").fillna("other"),
        }
    ).dropna(subset=["area", "week"])
    return _incidents_by(frame, ["area", "week", "crime_category"])


def _time_classes(incidents: pd.DataFrame) -> pd.DataFrame:
    """Incidents per (week of occurrence, 4-hour time class; 0 where unknown)."""
    classes = (
        pd.to_numeric(incidents["time_class"], errors="coerce").fillna(0).astype("int64")
        if "time_class" in incidents
        else pd.Series(0, index=incidents.index, dtype="int64")
    )
    frame = pd.DataFrame(
        {
            "week": incidents["occurred_at"].dt.to_period("W-SUN").dt.start_time,
            "time_class": classes,
        }
    ).dropna(subset=["week"])
    return _incidents_by(frame, ["week", "time_class"])


# --- the whole run ---------------------------------------------------------------------------


@dataclass
class RunTally:
    """What the report reads of all a run's incidents (every source and year).

    Attributes
    ----------
    total, spatially_valid : int
        Incidents, and those with usable coordinates.
    sources : pandas.DataFrame
        Per (``source``, ``area``, ``rpt_dist``): ``incidents``, ``first`` and ``last``
        occurrence time.
    categories : pandas.DataFrame
        Per ``crime_category``: ``incidents``, ``scored`` (with a severity), ``severity_sum``
        and ``harm_days``.
    weeks : pandas.DataFrame
        Per (``crime_category``, ``week``): ``incidents`` (category ``other`` where none), for
        the records-system break (:func:`geo_crime.record.breaks.level_shift`).
    systems : frozenset of str
        Records systems present (``legacy``, ``nibrs``).
    months : pandas.DataFrame
        Per (``source_system``, ``month``, first day): ``incidents``: what each records system
        contributes to each month (the report's break section).
    hours : pandas.DataFrame
        Per (``week``, its Monday, and ``time_class``, 0 where unknown): ``incidents``: the
        time of day in 4-hour classes (the report's briefing).
    division_weeks : pandas.DataFrame
        Per (``area``, ``week``, ``crime_category``): ``incidents`` (stated division only): the
        briefing's crime groups per division.
    """

    total: int = 0
    spatially_valid: int = 0
    sources: pd.DataFrame = field(default_factory=pd.DataFrame)
    categories: pd.DataFrame = field(default_factory=pd.DataFrame)
    weeks: pd.DataFrame = field(default_factory=pd.DataFrame)
    systems: frozenset = frozenset()
    months: pd.DataFrame = field(default_factory=pd.DataFrame)
    hours: pd.DataFrame = field(default_factory=pd.DataFrame)
    division_weeks: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def of_rows(cls, incidents: pd.DataFrame) -> RunTally:
        """The tally of cleaned, scored incidents.

        Parameters
        ----------
        incidents : pandas.DataFrame
            Canonical incidents (``source``, ``occurred_at``, ``area``, ``rpt_dist``,
            ``crime_category``, ``severity``, ``harm``, ``source_system``).

        Returns
        -------
        RunTally
        """

        frame = pd.DataFrame(
            {
                "source": _plain(incidents["source"], "text"),
                "area": _plain(incidents["area"], "int"),
                "rpt_dist": _plain(incidents["rpt_dist"], "text")
                if "rpt_dist" in incidents
                else pd.Series(pd.NA, index=incidents.index, dtype="string"),
                "occurred_at": incidents["occurred_at"],
            }
        )
        sources = _tally(
            frame,
            ["source", "area", "rpt_dist"],
            {
                "incidents": ("occurred_at", "size"),
                "first": ("occurred_at", "min"),
                "last": ("occurred_at", "max"),
            },
        )
        scored = pd.DataFrame(
            {
                "crime_category": _plain(incidents["crime_category"], "text"),
                "severity": _severity(incidents),
                "harm": pd.to_numeric(incidents["harm"], errors="coerce").astype(float),
            }
        )
        categories = (
            scored.groupby("crime_category", sort=True)
            .agg(
                incidents=("severity", "size"),
                scored=("severity", "count"),
                severity_sum=("severity", "sum"),
                harm_days=("harm", "sum"),
            )
            .reset_index()
        )
        valid = int(incidents["spatial_valid"].sum()) if "spatial_valid" in incidents else 0
        return cls(
            total=len(incidents),
            spatially_valid=valid,
            sources=sources,
            categories=categories,
            weeks=weekly_category_counts(incidents),
            systems=frozenset(str(s) for s in set(records_systems(incidents))),
            months=_system_months(incidents, records_systems(incidents)),
            hours=_time_classes(incidents),
            division_weeks=_division_weeks(incidents),
        )

    def __add__(self, other: RunTally) -> RunTally:
        """The tally of both batches of rows."""
        return RunTally(
            total=self.total + other.total,
            spatially_valid=self.spatially_valid + other.spatially_valid,
            sources=_add(
                self.sources,
                other.sources,
                ["source", "area", "rpt_dist"],
                {"incidents": "sum", "first": "min", "last": "max"},
            ),
            categories=_add(
                self.categories,
                other.categories,
                ["crime_category"],
                {"incidents": "sum", "scored": "sum", "severity_sum": "sum", "harm_days": "sum"},
            ),
            weeks=_add(self.weeks, other.weeks, ["crime_category", "week"], {"incidents": "sum"}),
            systems=self.systems | other.systems,
            months=_add(
                self.months, other.months, ["source_system", "month"], {"incidents": "sum"}
            ),
            hours=_add(self.hours, other.hours, ["week", "time_class"], {"incidents": "sum"}),
            division_weeks=_add(
                self.division_weeks,
                other.division_weeks,
                ["area", "week", "crime_category"],
                {"incidents": "sum"},
            ),
        )

    def system_months(self) -> pd.DataFrame:
        """Incidents per month (rows, first day) and records system (columns), zero-filled."""
        if not len(self.months):
            return pd.DataFrame()
        return self.months.pivot_table(
            index="month", columns="source_system", values="incidents", aggfunc="sum", fill_value=0
        ).sort_index()

    def data_summary(self) -> pd.DataFrame:
        """Rows, date range, divisions and reporting districts per source schema."""
        grouped = self.sources.groupby("source", sort=True)
        return pd.DataFrame(
            {
                "source": list(grouped.groups),
                "incidents": grouped["incidents"].sum().to_numpy(),
                "first": grouped["first"].min().dt.date.to_numpy(),
                "last": grouped["last"].max().dt.date.to_numpy(),
                "areas": grouped["area"].nunique().to_numpy(),
                "reporting districts": grouped["rpt_dist"].nunique().to_numpy(),
            }
        )

    def severity_by_category(self) -> pd.DataFrame:
        """Incidents, severity points (sum and mean) and harm days per crime category."""
        table = self.categories.assign(
            mean_severity=self.categories["severity_sum"] / self.categories["scored"]
        )
        table = table[["crime_category", "incidents", "severity_sum", "mean_severity", "harm_days"]]
        table = table.sort_values(["severity_sum", "crime_category"], ascending=[False, True])
        table = table.reset_index(drop=True)
        table["severity_sum"] = table["severity_sum"].astype(int)
        return table

    def weekly_counts(self) -> pd.DataFrame:
        """Incidents per crime category (rows) and week (columns)."""

        return weekly_grid(self.weeks)


# --- one study -------------------------------------------------------------------------------


@dataclass
class StudyTally:
    """What a study reads of its incidents besides the cube.

    Attributes
    ----------
    total : int
        The study's incidents.
    areas : pandas.DataFrame
        Per stated division (``area``, null kept): incidents in
        :data:`~geo_crime.core.schema.ROW_COUNT`; what :func:`~geo_crime.units.covered_divisions`
        and :func:`~geo_crime.units.make_units` judge as the rows they count.
    days : pandas.DataFrame
        Per (``day``, ``area``): ``incidents`` and ``severity`` (points), dated rows only.
    names : pandas.DataFrame
        Per (``area``, ``area_name``): ``incidents``.
    timed : pandas.DataFrame
        Per (``weekday``, ``minute`` of the day, ``area``): ``incidents`` with a recorded time.
    untimed : int
        Incidents without a recorded time (or date).
    timed_first, timed_last : pandas.Timestamp or None
        First and last day of the timed incidents.
    last_occurred : pandas.Timestamp or None
        The latest occurrence time (the data's end).
    systems : frozenset of str
        Records systems present.
    """

    total: int = 0
    areas: pd.DataFrame = field(default_factory=pd.DataFrame)
    days: pd.DataFrame = field(default_factory=pd.DataFrame)
    names: pd.DataFrame = field(default_factory=pd.DataFrame)
    timed: pd.DataFrame = field(default_factory=pd.DataFrame)
    untimed: int = 0
    timed_first: pd.Timestamp | None = None
    timed_last: pd.Timestamp | None = None
    last_occurred: pd.Timestamp | None = None
    systems: frozenset = frozenset()

    @classmethod
    def of_rows(cls, incidents: pd.DataFrame) -> StudyTally:
        """The tally of a study's incidents (``occurred_at``, ``area``, ``severity``; where
        present ``area_name``, ``time_known``, ``source_system``).

        Parameters
        ----------
        incidents : pandas.DataFrame

        Returns
        -------
        StudyTally
        """

        area = (
            _plain(incidents["area"], "int")
            if "area" in incidents
            else pd.Series(pd.NA, index=incidents.index, dtype="Int64")
        )
        stamps = incidents["occurred_at"]
        areas = area.to_frame("area").groupby("area", dropna=False, sort=True).size()
        dated = stamps.notna()
        days = _tally(
            pd.DataFrame(
                {
                    "day": stamps[dated].dt.normalize(),
                    "area": area[dated],
                    "severity": _severity(incidents)[dated],
                }
            ),
            ["day", "area"],
            {"incidents": ("severity", "size"), "severity": ("severity", "sum")},
        )
        if "area_name" in incidents:
            pairs = pd.DataFrame(
                {"area": area, "area_name": _plain(incidents["area_name"], "text")}
            ).dropna()
            names = pairs.groupby(["area", "area_name"], sort=True).size()
            names = names.rename("incidents").reset_index()
        else:
            names = pd.DataFrame(columns=["area", "area_name", "incidents"])
        known = dated.copy()
        if "time_known" in incidents:
            known &= incidents["time_known"].astype("boolean").fillna(False).astype(bool)
        timed_at = stamps[known]
        timed = _tally(
            pd.DataFrame(
                {
                    "weekday": timed_at.dt.weekday,
                    "minute": timed_at.dt.hour * 60 + timed_at.dt.minute,
                    "area": area[known],
                }
            ),
            ["weekday", "minute", "area"],
            {"incidents": ("weekday", "size")},
        )
        return cls(
            total=len(incidents),
            areas=areas.rename(ROW_COUNT).reset_index(),
            days=days,
            names=names,
            timed=timed,
            untimed=int((~known).sum()),
            timed_first=timed_at.min().normalize() if len(timed_at) else None,
            timed_last=timed_at.max().normalize() if len(timed_at) else None,
            last_occurred=stamps.max() if dated.any() else None,
            systems=frozenset(str(s) for s in set(records_systems(incidents))),
        )

    def __add__(self, other: StudyTally) -> StudyTally:
        """The tally of both batches of rows."""
        return StudyTally(
            total=self.total + other.total,
            areas=_add(self.areas, other.areas, ["area"], {ROW_COUNT: "sum"}),
            days=_add(
                self.days, other.days, ["day", "area"], {"incidents": "sum", "severity": "sum"}
            ),
            names=_add(self.names, other.names, ["area", "area_name"], {"incidents": "sum"}),
            timed=_add(
                self.timed, other.timed, ["weekday", "minute", "area"], {"incidents": "sum"}
            ),
            untimed=self.untimed + other.untimed,
            timed_first=_min(self.timed_first, other.timed_first),
            timed_last=_max(self.timed_last, other.timed_last),
            last_occurred=_max(self.last_occurred, other.last_occurred),
            systems=self.systems | other.systems,
        )

    def division_names(self) -> dict[int, str]:
        """Each division's most frequent recorded name (ties: the first in order)."""
        if not len(self.names):
            return {}
        table = self.names.sort_values(
            ["area", "incidents", "area_name"], ascending=[True, False, True]
        ).drop_duplicates("area")
        return {int(a): str(n) for a, n in zip(table["area"], table["area_name"], strict=True)}


def tally_of(
    rows: pd.DataFrame, select: Callable[[pd.DataFrame], pd.DataFrame] | None = None
) -> StudyTally:
    """:meth:`StudyTally.of_rows` of ``select(rows)`` (all rows without ``select``): the task a
    cluster runs on each partition for a study."""
    return StudyTally.of_rows(rows if select is None else select(rows))


__all__ = ["RunTally", "StudyTally", "tally_of"]
