"""One incident series across LAPD's two records systems, and the 2024 break in recording.

LAPD recorded crime in its legacy system (the "Crime Data from 2020 to 2024" set, ``2nrs-mtv8``,
frozen: occurrences 2020-01-01 to :data:`LEGACY_LAST_DAY`) and, from 7 March 2024
(:data:`RECORDS_SYSTEM_SWITCH`), in a NIBRS system (the "LAPD NIBRS Offenses" set,
``k7nn-b2ep``). The switch was a split, not a handover: through 2024 the two systems divided the
reports between them (the legacy set holds 18,926 incidents in January 2024 and 4,697 in
December; the NIBRS set holds the rest, the two together the usual 18-20k a month). So
:func:`join_records_systems` keeps every row of both and removes a legacy row only on evidence
that NIBRS recorded the same incident (same day and time, reporting district and crosswalked
offence, points within :data:`MATCH_METRES`), counting what it removes. Public comparisons of
the two sets found such pairs rare (5 of about 2,000 legacy reports of a June-2024 week had a
NIBRS record at the same time and place, none with the same case number).

The break is a change of recording, not of crime. The crosswalk of the 140 legacy codes to FBI
NIBRS codes (``geo_crime/data/crosswalk_lapd_nibrs.csv``) gives both systems the same categories,
but not every category is recorded the same way in both: :data:`HARMONISED_CATEGORIES` are the
ones whose main offences are the same offence in both systems (homicide, rape and sexual
assault, robbery, assaults, burglary, theft, vehicle theft, arson and vandalism). Trend
statistics whose window spans the break (emerging hot spots, Mann-Kendall) should run on those
categories only (:func:`harmonised_rows`), and :func:`level_shift` measures, per category, how
the weekly level of the union of both systems changed from the weeks before the switch to the
weeks after, which the report shows as a figure (:func:`level_shift_figure`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "HARMONISED_CATEGORIES",
    "LEGACY_LAST_DAY",
    "MATCH_COLUMNS",
    "MATCH_METRES",
    "RECORDS_SYSTEM_SWITCH",
    "SHIFT_WEEKS",
    "category_moves",
    "comparable_groups",
    "cross_system_pairs",
    "harmonised_rows",
    "join_records_systems",
    "level_shift",
    "level_shift_figure",
    "match_window",
    "records_systems",
    "spans_break",
    "weekly_category_counts",
    "weekly_grid",
]

RECORDS_SYSTEM_SWITCH = pd.Timestamp("2024-03-07")
"""First day recorded in the NIBRS system (the legacy system's last day is the day before)."""

HARMONISED_CATEGORIES: tuple[str, ...] = (
    "homicide",
    "sexual_violence",
    "robbery",
    "aggravated_assault",
    "simple_assault",
    "burglary",
    "theft",
    "vehicle_theft",
    "arson_vandalism",
    "fraud",
    "weapons",
)
"""Categories recorded alike in both systems, taken together: no legacy crime code of one of
them crosswalks to a NIBRS code outside them, and none outside them into them (checked against
the shipped tables by :func:`category_moves`). Burglary and theft are comparable only together:
legacy "burglary from vehicle" (330, 410) is NIBRS theft from a motor vehicle (23F)."""

LEGACY_LAST_DAY = pd.Timestamp("2024-12-30")
"""The last occurrence day of the legacy set (``2nrs-mtv8``, frozen: 1,004,894 rows)."""

MATCH_METRES = 150.0
"""How close a legacy and a NIBRS point must be to count as one incident: both are geocoded to
the hundred block, so one incident's two records lie well within a block's length."""

SHIFT_WEEKS = 8
"""Whole weeks before and after the switch that :func:`level_shift` compares."""

_LEGACY, _NIBRS = "legacy", "nibrs"


def records_systems(incidents: pd.DataFrame) -> np.ndarray:
    """The records system of each row (``legacy`` where the column is absent or empty).

    Parameters
    ----------
    incidents : pandas.DataFrame
        Canonical incidents (``source_system``).

    Returns
    -------
    numpy.ndarray
        ``legacy`` or ``nibrs`` per row (object array).
    """
    if "source_system" not in incidents:
        return np.full(len(incidents), _LEGACY, dtype=object)
    return incidents["source_system"].astype("string").fillna(_LEGACY).to_numpy(dtype=object)


def spans_break(incidents: pd.DataFrame | Any) -> bool:
    """Whether the rows hold both records systems (legacy and NIBRS).

    Parameters
    ----------
    incidents : pandas.DataFrame, RunTally or StudyTally
        Canonical incidents (``source_system``; absent means legacy only), or a tally of them
        (:mod:`geo_crime.tallies`: anything with ``systems``).

    Returns
    -------
    bool
    """
    systems = getattr(incidents, "systems", None)
    if systems is None:
        systems = set(records_systems(incidents))
    return {_LEGACY, _NIBRS} <= systems


def join_records_systems(
    incidents: pd.DataFrame, *, metres: float = MATCH_METRES
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Both records systems as one incident table: every row kept but proven cross-system copies.

    Through 2024 the legacy and NIBRS systems split LAPD's reports between them: neither set is
    cut at the switch. A legacy row is removed only on evidence that NIBRS recorded the same
    incident: a NIBRS row of the same occurrence day and time (both times known), the same
    reporting district and the same offence (the legacy crime code crosswalked to its NIBRS
    code, :func:`geo_crime.severity.legacy_to_nibrs`, against the NIBRS row's lead offence),
    with both points within ``metres`` of each other (LAPD geocodes both to the hundred block).
    Each row matches at most one row of the other system (nearest first). The NIBRS row is kept
    (the system of record from the switch on) and the legacy source is noted in its
    ``also_in_sources``.

    Parameters
    ----------
    incidents : pandas.DataFrame
        Canonical incidents (``occurred_at``, ``time_known``, ``rpt_dist``, ``crm_cd``,
        ``nibrs_code``, ``lat``, ``lon``, ``source_system``).
    metres : float
        How close the two points must be (:data:`MATCH_METRES`).

    Returns
    -------
    (pandas.DataFrame, dict)
        The kept rows (index reset) and the counts: ``legacy_after_switch`` (legacy rows on or
        after the switch, all kept unless matched), ``legacy_matchable`` (those with a known
        time, district, offence and place: the ones a match could be found for) and
        ``cross_system_duplicates`` (legacy rows removed as recorded in NIBRS too).

    Examples
    --------
    >>> rows = pd.DataFrame({
    ...     "occurred_at": pd.to_datetime(["2024-03-01 10:00", "2024-06-03 14:30",
    ...                                    "2024-06-03 14:30", "2024-06-03 14:30"]),
    ...     "time_known": True, "rpt_dist": ["0101", "0943", "0943", "0943"],
    ...     "crm_cd": pd.array([510, 510, None, None], dtype="Int16"),
    ...     "nibrs_code": pd.array([None, None, "240", "240"], dtype="string"),
    ...     "lat": [34.05, 34.0500, 34.0502, 34.06], "lon": [-118.25, -118.25, -118.25, -118.25],
    ...     "source_system": ["legacy", "legacy", "nibrs", "nibrs"]})
    >>> kept, counts = join_records_systems(rows)
    >>> kept["source_system"].tolist(), counts["cross_system_duplicates"]
    (['legacy', 'nibrs', 'nibrs'], 1)
    """
    counts = {"legacy_after_switch": 0, "legacy_matchable": 0, "cross_system_duplicates": 0}
    systems = records_systems(incidents)
    occurred = incidents["occurred_at"]
    after = (occurred >= RECORDS_SYSTEM_SWITCH).to_numpy(dtype=bool)
    counts["legacy_after_switch"] = int(((systems == _LEGACY) & after).sum())
    if not spans_break(incidents):
        return incidents, counts
    pairs, matchable = cross_system_pairs(incidents, metres=metres)
    counts["legacy_matchable"] = matchable
    counts["cross_system_duplicates"] = len(pairs)
    if not len(pairs):
        return incidents, counts
    frame = incidents.copy()
    if "also_in_sources" in frame and "source" in frame:
        sources = frame["also_in_sources"].astype("string").to_numpy(dtype=object, na_value=None)
        legacy_source = frame["source"].astype(str).to_numpy()[pairs["legacy"].to_numpy()]
        for target, extra in zip(pairs["nibrs"].to_numpy(), legacy_source, strict=True):
            old = sources[target]
            sources[target] = ",".join(sorted({extra, *(old.split(",") if old else [])}))
        frame["also_in_sources"] = pd.array(sources, dtype=frame["also_in_sources"].dtype)
    drop = np.zeros(len(frame), dtype=bool)
    drop[pairs["legacy"].to_numpy()] = True
    return frame.loc[~drop].reset_index(drop=True), counts


def cross_system_pairs(
    incidents: pd.DataFrame, *, metres: float = MATCH_METRES
) -> tuple[pd.DataFrame, int]:
    """The legacy rows that NIBRS recorded too, by the rule of :func:`join_records_systems`.

    Parameters
    ----------
    incidents : pandas.DataFrame
        Canonical incidents of both systems.
    metres : float
        How close the two points must be.

    Returns
    -------
    (pandas.DataFrame, int)
        One row per match: ``legacy`` and ``nibrs`` (positions in ``incidents``) and
        ``metres`` (their distance); and the number of legacy rows a match could be sought for
        (from the switch to the legacy set's last day, with a known time, district, offence
        and place). Ties in distance go to the earlier rows, so the rows' order decides them.
    """
    from geo_crime.severity import legacy_to_nibrs

    systems = records_systems(incidents)
    occurred = incidents["occurred_at"]
    usable = match_window(occurred)
    if "time_known" in incidents:
        usable &= incidents["time_known"].fillna(False).to_numpy(dtype=bool)
    lat = pd.to_numeric(incidents["lat"], errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(incidents["lon"], errors="coerce").to_numpy(dtype=float)
    usable &= np.isfinite(lat) & np.isfinite(lon) & (lat != 0)
    usable &= incidents["rpt_dist"].notna().to_numpy(dtype=bool)
    legacy_codes = legacy_to_nibrs(incidents["crm_cd"]) if "crm_cd" in incidents else None
    nibrs_codes = incidents.get("nibrs_code")
    empty = pd.DataFrame({"legacy": [], "nibrs": [], "metres": []}).astype(
        {"legacy": np.int64, "nibrs": np.int64}
    )
    if legacy_codes is None or nibrs_codes is None:
        return empty, 0
    sides = []
    for system, codes in ((_LEGACY, legacy_codes), (_NIBRS, nibrs_codes)):
        mask = usable & (systems == system) & codes.notna().to_numpy(dtype=bool)
        positions = np.flatnonzero(mask)
        sides.append(
            pd.DataFrame(
                {
                    "position": positions,
                    "at": occurred.to_numpy()[positions],
                    "rpt_dist": incidents["rpt_dist"].astype(str).to_numpy()[positions],
                    "code": codes.astype(str).to_numpy()[positions],
                    "lat": lat[positions],
                    "lon": lon[positions],
                }
            )
        )
    legacy, nibrs = sides
    if not len(legacy) or not len(nibrs):
        return empty, len(legacy)
    joined = legacy.merge(nibrs, on=["at", "rpt_dist", "code"], suffixes=("_l", "_n"))
    distance = _metres_apart(
        joined["lat_l"].to_numpy(),
        joined["lon_l"].to_numpy(),
        joined["lat_n"].to_numpy(),
        joined["lon_n"].to_numpy(),
    )
    joined = joined.assign(metres=distance).loc[distance <= metres]
    joined = joined.sort_values(["metres", "position_l", "position_n"], kind="stable")
    joined = joined.drop_duplicates("position_l").drop_duplicates("position_n")
    pairs = pd.DataFrame(
        {
            "legacy": joined["position_l"].to_numpy(dtype=np.int64),
            "nibrs": joined["position_n"].to_numpy(dtype=np.int64),
            "metres": joined["metres"].to_numpy(dtype=float),
        }
    ).sort_values("legacy", ignore_index=True)
    return pairs, len(legacy)


def match_window(occurred: pd.Series) -> np.ndarray:
    """Whether each occurrence time lies where both systems recorded: from the switch to the
    legacy set's last day (:data:`LEGACY_LAST_DAY`)."""
    end = LEGACY_LAST_DAY + pd.Timedelta(days=1)
    return ((occurred >= RECORDS_SYSTEM_SWITCH) & (occurred < end)).to_numpy(dtype=bool)


#: Columns :func:`cross_system_pairs` reads.
MATCH_COLUMNS: tuple[str, ...] = (
    "occurred_at",
    "time_known",
    "rpt_dist",
    "crm_cd",
    "nibrs_code",
    "lat",
    "lon",
    "source_system",
    "source",
)


def _metres_apart(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in metres (haversine, mean Earth radius)."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi, dlam = phi2 - phi1, np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def category_moves() -> pd.DataFrame:
    """Legacy crime codes whose crosswalked NIBRS code is scored in another category.

    Returns
    -------
    pandas.DataFrame
        ``crm_cd``, ``crm_cd_desc``, ``nibrs_code``, ``legacy_category`` (severity_lapd) and
        ``nibrs_category`` (severity_nibrs), one row per legacy code that changes category.
    """
    from geo_crime.severity import lapd_nibrs_crosswalk, nibrs_severity_table, severity_table

    crosswalk = lapd_nibrs_crosswalk()
    legacy = severity_table().set_index("crm_cd")["category"]
    nibrs = nibrs_severity_table().set_index("nibrs_code")["category"]
    out = crosswalk[["crm_cd", "crm_cd_desc", "nibrs_code"]].assign(
        legacy_category=crosswalk["crm_cd"].map(legacy).to_numpy(),
        nibrs_category=crosswalk["nibrs_code"].map(nibrs).to_numpy(),
    )
    return out.loc[out["legacy_category"] != out["nibrs_category"]].reset_index(drop=True)


def comparable_groups() -> list[tuple[str, ...]]:
    """Harmonised categories comparable only together (linked by :func:`category_moves`).

    Returns
    -------
    list of tuple of str
        Each group of two or more harmonised categories between which legacy codes move,
        e.g. ``[("burglary", "theft")]``.
    """
    moves = category_moves()
    inside = moves[
        moves["legacy_category"].isin(HARMONISED_CATEGORIES)
        & moves["nibrs_category"].isin(HARMONISED_CATEGORIES)
    ]
    groups: list[set[str]] = []
    for a, b in zip(inside["legacy_category"], inside["nibrs_category"], strict=True):
        linked = [g for g in groups if a in g or b in g]
        merged = {a, b}.union(*linked)
        groups = [g for g in groups if g not in linked] + [merged]
    order = {c: i for i, c in enumerate(HARMONISED_CATEGORIES)}
    return [tuple(sorted(g, key=order.__getitem__)) for g in groups]


def harmonised_rows(incidents: pd.DataFrame) -> pd.DataFrame:
    """The rows of :data:`HARMONISED_CATEGORIES` (what trend statistics across the break use).

    Parameters
    ----------
    incidents : pandas.DataFrame
        Scored incidents (``crime_category``).

    Returns
    -------
    pandas.DataFrame
    """
    keep = incidents["crime_category"].astype("string").isin(HARMONISED_CATEGORIES)
    return incidents.loc[keep.fillna(False).to_numpy(dtype=bool)]


def level_shift(
    incidents: pd.DataFrame | Any,
    *,
    weeks: int = SHIFT_WEEKS,
    switch: pd.Timestamp = RECORDS_SYSTEM_SWITCH,
) -> pd.DataFrame:
    """Weekly incidents per category in the weeks before and after the switch, and their ratio.

    The week holding the switch is left out (it mixes both systems); the ``weeks`` whole weeks
    (Monday to Sunday) before it and the ``weeks`` after it are compared.

    Parameters
    ----------
    incidents : pandas.DataFrame or RunTally
        Incidents of both systems (:func:`join_records_systems`) with ``crime_category``, or their
        tally (:class:`geo_crime.tallies.RunTally`: anything with ``weekly_counts()``).
    weeks : int
        Whole weeks on each side.
    switch : pandas.Timestamp
        The first NIBRS day.

    Returns
    -------
    pandas.DataFrame
        One row per category, per group of :func:`comparable_groups` (``burglary + theft``)
        and ``all``: ``before`` and ``after`` (mean incidents per week), ``ratio`` (after /
        before), ``harmonised`` (in :data:`HARMONISED_CATEGORIES`, or a group of them),
        ``comparable_alone`` (its own count means the same in both systems), ``weeks_before``
        and ``weeks_after`` (whole weeks with data on each side).
    """
    switch_week = switch.to_period("W-SUN").start_time
    before_weeks = pd.date_range(end=switch_week - pd.Timedelta(weeks=1), periods=weeks, freq="7D")
    after_weeks = pd.date_range(switch_week + pd.Timedelta(weeks=1), periods=weeks, freq="7D")
    counts = (
        incidents.weekly_counts()
        if hasattr(incidents, "weekly_counts")
        else weekly_grid(weekly_category_counts(incidents))
    )
    moves = category_moves()
    moved = set(moves["legacy_category"]) | set(moves["nibrs_category"])
    seen = set(counts.columns)
    before = [w for w in before_weeks if w in seen]
    after = [w for w in after_weeks if w in seen]
    grid = counts.reindex(columns=[*before_weeks, *after_weeks], fill_value=0)
    groups = comparable_groups()
    joined = [grid.reindex(list(g), fill_value=0).sum(axis=0).rename(" + ".join(g)) for g in groups]
    totals = grid.sum(axis=0).rename("all")
    grid = pd.concat([grid, pd.DataFrame([*joined, totals])])
    mean_before = grid[before].mean(axis=1) if before else pd.Series(np.nan, index=grid.index)
    mean_after = grid[after].mean(axis=1) if after else pd.Series(np.nan, index=grid.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = mean_after / mean_before.where(mean_before > 0)
    out = pd.DataFrame(
        {
            "before": mean_before,
            "after": mean_after,
            "ratio": ratio,
            "harmonised": [c in HARMONISED_CATEGORIES for c in grid.index],
            "comparable_alone": [_comparable_alone(c, groups, moved) for c in grid.index],
            "weeks_before": len(before),
            "weeks_after": len(after),
        }
    )
    out.index.name = "category"
    group_names = [" + ".join(g) for g in groups]
    order = [
        c
        for c in out.sort_values("before", ascending=False).index
        if c != "all" and c not in group_names
    ]
    out.loc[group_names, "harmonised"] = True
    return out.loc[[*order, *group_names, "all"]]


def weekly_category_counts(incidents: pd.DataFrame) -> pd.DataFrame:
    """Incidents per crime category (``other`` where none) and week (Monday first), dated rows.

    Parameters
    ----------
    incidents : pandas.DataFrame
        Canonical incidents (``occurred_at``, ``crime_category``).

    Returns
    -------
    pandas.DataFrame
        ``crime_category``, ``week`` (its Monday) and ``incidents``, sorted; a table that two
        batches of rows give summed (see :class:`geo_crime.tallies.RunTally`).
    """
    weekly = pd.DataFrame(
        {
            "crime_category": incidents["crime_category"].astype("string").fillna("other"),
            "week": incidents["occurred_at"].dt.to_period("W-SUN").dt.start_time,
        }
    ).dropna(subset=["week"])
    counts = weekly.groupby(["crime_category", "week"], sort=True).size()
    return counts.rename("incidents").reset_index()


def weekly_grid(weekly: pd.DataFrame) -> pd.DataFrame:
    """:func:`weekly_category_counts` as categories (rows) x weeks (columns)."""
    if not len(weekly):
        return pd.DataFrame()
    return weekly.pivot_table(
        index="crime_category", columns="week", values="incidents", aggfunc="sum", fill_value=0
    )


def _comparable_alone(category: str, groups: list[tuple[str, ...]], moved: set[str]) -> bool:
    """Whether a category's own count means the same in both systems."""
    if category == "all" or " + " in category:
        return True
    return category not in moved and not any(category in g for g in groups)


def level_shift_figure(shift: pd.DataFrame, path: str | Path, *, dpi: int = 110) -> Path:
    """A bar figure of the weekly level per category before and after the switch.

    Parameters
    ----------
    shift : pandas.DataFrame
        :func:`level_shift` output.
    path : path-like
        The PNG to write (atomically).
    dpi : int
        Resolution.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from geo_crime.io_utils import save_figure

    rows = shift.drop(index="all", errors="ignore")
    labels = [
        f"{c.replace('_', ' ')}{'' if alone else ' *'}"
        for c, alone in zip(rows.index, rows["comparable_alone"], strict=True)
    ]
    y = np.arange(len(rows))
    # a private figure on the Agg canvas: pyplot's global state and backend are left alone
    fig = Figure(figsize=(8.5, 0.42 * len(rows) + 1.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(y - 0.2, rows["before"], height=0.4, color="#8c8c8c", label="before (legacy)")
    ax.barh(y + 0.2, rows["after"], height=0.4, color="#2166ac", label="after (legacy + NIBRS)")
    for i, ratio in enumerate(rows["ratio"]):
        if np.isfinite(ratio):
            top = max(rows["before"].iloc[i], rows["after"].iloc[i])
            ax.text(top, i, f"  x{ratio:.2f}", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    n_before, n_after = int(shift["weeks_before"].iloc[0]), int(shift["weeks_after"].iloc[0])
    ax.set_xlabel("recorded incidents per week (city-wide mean)")
    ax.set_title(
        f"Level per category around the records-system switch of "
        f"{RECORDS_SYSTEM_SWITCH.date()}\n{n_before} whole weeks before vs {n_after} after, "
        "both systems together; * = its own count is not comparable across the break",
        fontsize=9,
    )
    ax.margins(x=0.18)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return save_figure(fig, Path(path), dpi)
