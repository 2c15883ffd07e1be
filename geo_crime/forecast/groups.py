"""Crime-group panels: one cube per crime group on shared units, periods and coverage.

Weekly all-crime severity sits at its ceiling (the clairvoyant long-run rate is hardly better
than the best models), so the place where short-term dynamics could add information is a finer
task: **which cells will see a burglary, a vehicle crime, a robbery or an assault tomorrow**.
:func:`group_cubes` builds that task from scored incidents: one :class:`~geo_crime.cube.panel.Cube`
per group of :data:`CRIME_GROUPS`, with

* ``counts`` the group's incidents (the target, ``target="count"``), ``severity`` and ``harm``
  its severity and harm sums;
* the coverage mask of **all** crime (a records-system break thins every group at once; a quiet
  day for robbery is not a reporting gap);
* ``categories`` holding every group's counts, so a pooled model (:mod:`geo_crime.forecast.deep`)
  can read the other groups, and ``meta["group"]`` / ``meta["groups"]`` naming them.

Groups (:func:`crime_group`): ``burglary`` (the severity table's category, burglaries from
vehicles excepted), ``vehicle`` (vehicle theft, and thefts and burglaries from vehicles, found
by an offence description containing ``VEHICLE``), ``robbery``, and ``assault`` (aggravated and
simple assault and homicide). Every other incident is in no group; :func:`group_counts` says how
many incidents each group holds so nothing is dropped silently.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.core.errors import DataError
from geo_crime.cube.panel import Cube, build_cube
from geo_crime.record.coverage import check_coverage
from geo_crime.units import assign_units, make_units

__all__ = [
    "CRIME_GROUPS",
    "GROUP_CATEGORIES",
    "crime_group",
    "group_counts",
    "group_cubes",
    "group_panel",
]

#: The crime groups of the daily panels, in head order of the pooled network.
CRIME_GROUPS = ("burglary", "vehicle", "robbery", "assault")

#: Severity-table categories of each group (vehicle crime also takes thefts and burglaries
#: whose offence names a vehicle).
GROUP_CATEGORIES: dict[str, tuple[str, ...]] = {
    "burglary": ("burglary",),
    "vehicle": ("vehicle_theft",),
    "robbery": ("robbery",),
    "assault": ("aggravated_assault", "simple_assault", "homicide"),
}

#: Offence-description columns searched for ``VEHICLE``, in order of preference.
OFFENCE_COLUMNS = ("crm_cd_desc", "nibrs_description", "offence")


def crime_group(incidents: pd.DataFrame) -> pd.Series:
    """Each incident's crime group (:data:`CRIME_GROUPS`), ``<NA>`` for the others.

    Parameters
    ----------
    incidents : pandas.DataFrame
        Scored incidents with ``crime_category`` and, when present, an offence description
        (:data:`OFFENCE_COLUMNS`).

    Returns
    -------
    pandas.Series
        String dtype, aligned with ``incidents``.

    Examples
    --------
    >>> rows = pd.DataFrame({
    ...     "crime_category": ["theft", "burglary", "burglary", "robbery", "simple_assault"],
    ...     "crm_cd_desc": ["THEFT FROM MOTOR VEHICLE - PETTY ($950 & UNDER)",
    ...                     "BURGLARY FROM VEHICLE", "BURGLARY", "ROBBERY",
    ...                     "BATTERY - SIMPLE ASSAULT"]})
    >>> crime_group(rows).tolist()
    ['vehicle', 'vehicle', 'burglary', 'robbery', 'assault']
    """
    if "crime_category" not in incidents:
        raise DataError("crime groups need the column 'crime_category' (scored incidents)")
    category = incidents["crime_category"].astype("string")
    lookup = {c: g for g, cats in GROUP_CATEGORIES.items() for c in cats}
    group = category.map(lookup).astype("string")
    column = next((c for c in OFFENCE_COLUMNS if c in incidents), None)
    if column is not None:
        offence = incidents[column].astype("string").str.upper().fillna("")
        from_vehicle = offence.str.contains("VEHICLE", regex=False) & category.isin(
            ["theft", "burglary"]
        )
        group = group.mask(from_vehicle, "vehicle")
    return group


def group_counts(incidents: pd.DataFrame) -> dict[str, int]:
    """Incidents per crime group, and ``other`` for those in none (they add up to every row).

    Examples
    --------
    >>> group_counts(pd.DataFrame({"crime_category": ["robbery", "fraud", "robbery"]}))
    {'burglary': 0, 'vehicle': 0, 'robbery': 2, 'assault': 0, 'other': 1}
    """
    group = crime_group(incidents)
    counts = {g: int((group == g).sum()) for g in CRIME_GROUPS}
    counts["other"] = int(group.isna().sum())
    return counts


def group_cubes(
    incidents: pd.DataFrame,
    units: gpd.GeoDataFrame,
    unit_ids: pd.Series | np.ndarray,
    *,
    freq: str = "D",
    coverage=None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    groups: tuple[str, ...] = CRIME_GROUPS,
) -> dict[str, Cube]:
    """One cube per crime group, on the units, periods and coverage mask of all crime.

    Parameters
    ----------
    incidents, units, unit_ids, freq, coverage, start, end
        As :func:`geo_crime.cube.panel.build_cube` takes them (the all-crime cube fixes the periods
        and the coverage mask).
    groups : tuple of str
        Groups to build (default all of :data:`CRIME_GROUPS`).

    Returns
    -------
    dict of str to Cube
        Keyed by group; each cube's ``categories`` holds every group's counts and
        ``meta["group"]`` its own.
    """
    unknown = [g for g in groups if g not in CRIME_GROUPS]
    if unknown:
        raise DataError(f"unknown crime group(s) {unknown}; use {', '.join(CRIME_GROUPS)}")
    everything = build_cube(
        incidents,
        units,
        unit_ids,
        freq=freq,
        coverage=coverage,
        start=start,
        end=end,
        categories=False,
    )
    label = crime_group(incidents).fillna("").to_numpy(dtype=object)
    ids = np.asarray(unit_ids, dtype=object)
    first, last = everything.periods[0], everything.periods[-1]
    parts: dict[str, Cube] = {}
    for g in groups:
        mask = label == g
        parts[g] = build_cube(
            incidents.loc[mask],
            units,
            ids[mask],
            freq=freq,
            start=first,
            end=last,
            categories=False,
        )
    stacked = {g: parts[g].counts for g in groups}
    out: dict[str, Cube] = {}
    for g in groups:
        meta = {
            **everything.meta,
            "group": g,
            "groups": list(groups),
            "group_incidents": int(parts[g].counts.sum()),
        }
        out[g] = Cube(
            units=everything.units,
            periods=everything.periods,
            freq=everything.freq,
            counts=parts[g].counts,
            severity=parts[g].severity,
            harm=parts[g].harm,
            categories=dict(stacked),
            complete=everything.complete,
            meta=meta,
        )
    return out


def group_panel(
    incidents: pd.DataFrame,
    *,
    units: str = "h3:9",
    freq: str = "D",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> dict[str, Cube]:
    """The group cubes of scored incidents on units of a spec, with their own coverage mask.

    Parameters
    ----------
    incidents : pandas.DataFrame
        Scored incidents (:func:`geo_crime.ingest.load_incidents`).
    units : str, default "h3:9"
        A unit spec of :func:`geo_crime.units.make_units` (the divisions the rows cover).
    freq, start, end
        Period length and range.

    Returns
    -------
    dict of str to Cube
        :func:`group_cubes`, with the coverage of :func:`geo_crime.record.coverage.check_coverage`
        judged at ``freq``.
    """
    cells = make_units(units, incidents)
    ids, _ = assign_units(incidents, cells)
    return group_cubes(
        incidents,
        cells,
        ids,
        freq=freq,
        coverage=check_coverage(incidents, freq=freq),
        start=start,
        end=end,
    )
