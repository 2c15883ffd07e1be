"""The 2024 break in recording: which categories compare across LAPD's two records systems.

The break at :data:`geo_crime.core.lapd.RECORDS_SYSTEM_SWITCH` is a change of recording, not of
crime. The crosswalk of the 140 legacy codes to FBI NIBRS codes
(``geo_crime/data/crosswalk_lapd_nibrs.csv``) gives both systems the same categories, but not every
category is recorded the same way in both: :data:`HARMONISED_CATEGORIES` are the ones whose main
offences are the same offence in both systems (homicide, rape and sexual assault, robbery,
assaults, burglary, theft, vehicle theft, arson and vandalism). Trend statistics whose window
spans the break (emerging hot spots, Mann-Kendall) should run on those categories only
(:func:`harmonised_rows`), and :func:`level_shift` measures, per category, how the weekly level of
the union of both systems (:func:`geo_crime.ingest.systems.join_records_systems`) changed from the
weeks before the switch to the weeks after, which the report shows as a figure
(:func:`level_shift_figure`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core.io_utils import save_figure
from geo_crime.core.lapd import RECORDS_SYSTEM_SWITCH
from geo_crime.ingest.severity import lapd_nibrs_crosswalk, nibrs_severity_table, severity_table

__all__ = [
    "HARMONISED_CATEGORIES",
    "SHIFT_WEEKS",
    "category_moves",
    "comparable_groups",
    "harmonised_rows",
    "level_shift",
    "level_shift_figure",
    "weekly_category_counts",
    "weekly_grid",
]

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

SHIFT_WEEKS = 8
"""Whole weeks before and after the switch that :func:`level_shift` compares."""


def category_moves() -> pd.DataFrame:
    """Legacy crime codes whose crosswalked NIBRS code is scored in another category.

    Returns
    -------
    pandas.DataFrame
        ``crm_cd``, ``crm_cd_desc``, ``nibrs_code``, ``legacy_category`` (severity_lapd) and
        ``nibrs_category`` (severity_nibrs), one row per legacy code that changes category.
    """

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
        tally (:class:`geo_crime.record.tallies.RunTally`: anything with ``weekly_counts()``).
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
        batches of rows give summed (see :class:`geo_crime.record.tallies.RunTally`).
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
