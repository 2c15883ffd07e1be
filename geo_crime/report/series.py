"""The report's section on the March 2024 records-system break (legacy and NIBRS rows).

Written only when a run holds both systems (:func:`geo_crime.core.lapd.spans_break`): how the two
sets were joined and what was removed as recorded twice, what each system contributes to each
month, the level shift per category around the switch
(:func:`geo_crime.record.breaks.level_shift`, with its figure), which categories trend statistics
spanning the break use, and the hundred-block precision of NIBRS locations.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from geo_crime.core.lapd import LEGACY_LAST_DAY, RECORDS_SYSTEM_SWITCH
from geo_crime.ingest.systems import MATCH_METRES
from geo_crime.record.breaks import HARMONISED_CATEGORIES
from geo_crime.report.markdown import markdown_table

__all__ = ["NIBRS_PRECISION_NOTE", "break_lines"]

NIBRS_PRECISION_NOTE = (
    "NIBRS rows are located at the hundred block (LAPD's `hndrdth_lat` / `hndrdth_lon`), as the "
    "legacy rows' addresses are rounded to it: a point stands for a block of 100 street numbers, "
    "not for the address, so small units (H3 resolution 9, about 0.1 km²) near a block's edge "
    "can receive a neighbouring block's incidents."
)
"""What the report says of NIBRS location precision."""


def break_lines(
    shift: pd.DataFrame,
    joined: Mapping[str, int],
    *,
    months: pd.DataFrame | None = None,
    figure: Path | None = None,
    folder: Path | None = None,
) -> list[str]:
    """Markdown lines of the records-system break section.

    Parameters
    ----------
    shift : pandas.DataFrame
        :func:`geo_crime.record.breaks.level_shift` of the run's incidents.
    joined : mapping
        What joining the systems found (:func:`geo_crime.ingest.systems.join_records_systems`):
        ``legacy_after_switch``, ``legacy_matchable``, ``cross_system_duplicates``.
    months : pandas.DataFrame, optional
        Incidents per month (rows) and records system (columns)
        (:meth:`geo_crime.record.tallies.RunTally.system_months`).
    figure : pathlib.Path, optional
        The level-shift figure, linked relative to ``folder``.
    folder : pathlib.Path, optional
        The run folder (the report's location).

    Returns
    -------
    list of str
    """
    switch = RECORDS_SYSTEM_SWITCH.date()
    after = int(joined.get("legacy_after_switch", 0))
    matchable = int(joined.get("legacy_matchable", 0))
    twice = int(joined.get("cross_system_duplicates", 0))
    rate = f" ({twice / matchable:.2%} of them)" if matchable else ""
    lines = [
        "## The March 2024 records-system break",
        "",
        f"LAPD began recording crime in a NIBRS system on {switch}, but the legacy system did "
        f"not stop then: through 2024 the two split the reports between them (the legacy set is "
        f"frozen, its last occurrence day {LEGACY_LAST_DAY.date()}). This run keeps the rows of "
        f"both as one incident table, including the {after:,} legacy rows that occurred on or "
        f"after {switch}. A legacy row is removed only where a NIBRS row records the same "
        "incident: same occurrence day and time, reporting district and offence (the legacy "
        f"code crosswalked to NIBRS), and points within {MATCH_METRES:.0f} m. Of the "
        f"{matchable:,} legacy rows after the switch with a known time, district, offence and "
        f"place, {twice:,} were found in NIBRS too{rate} and removed. Completeness is judged on "
        "both systems together. NIBRS rows are offences; they are counted as incidents (one per "
        "case, its most serious offence) unless the run counts offences.",
        "",
    ]
    if months is not None and len(months):
        lines += _month_lines(months)
    lines += [
        "Categories come from one crosswalk of the legacy LAPD codes and the FBI NIBRS codes, "
        "but the two systems do not record every category alike. Trend statistics whose window "
        "spans the break (emerging hot spots and their Mann-Kendall trend test) use the "
        "harmonised categories only: "
        + ", ".join(c.replace("_", " ") for c in HARMONISED_CATEGORIES)
        + ". Burglary and theft are comparable only together: a legacy burglary from a vehicle "
        "is a NIBRS theft from a motor vehicle. Other statistics and the forecasts use every "
        "category; read their changes across the switch with the level shift below in mind.",
        "",
    ]
    n_before, n_after = int(shift["weeks_before"].iloc[0]), int(shift["weeks_after"].iloc[0])
    lines.append(
        f"Level shift per category (city-wide recorded incidents per week; mean of the {n_before}"
        f" whole weeks before the switch week against the {n_after} after it, both systems "
        "together; the switch week itself is left out). A ratio far from 1 in a harmonised "
        "category is a change of recording or of crime; in the others it is mostly recording:"
    )
    lines.append("")
    table = shift.reset_index().rename(
        columns={
            "category": "category",
            "before": "per week before",
            "after": "per week after (both systems)",
            "ratio": "after / before",
        }
    )
    table["category"] = table["category"].str.replace("_", " ")
    table["harmonised"] = table["harmonised"].map({True: "yes", False: "no"})
    table["comparable on its own"] = table.pop("comparable_alone").map({True: "yes", False: "no"})
    table = table.drop(columns=["weeks_before", "weeks_after"])
    for column in ("per week before", "per week after (both systems)"):
        table[column] = table[column].round(1)
    table["after / before"] = table["after / before"].round(2)
    lines.append(markdown_table(table))
    lines.append("")
    if figure is not None:
        where = figure.relative_to(folder).as_posix() if folder is not None else figure.name
        lines.append(f"![Level shift per category around the switch]({where})")
        lines.append("")
    return lines


def _month_lines(months: pd.DataFrame) -> list[str]:
    """A table of incidents per month and system, from the month before the switch to the last
    month both systems hold (or the legacy set's last month)."""
    first = RECORDS_SYSTEM_SWITCH.to_period("M").start_time - pd.DateOffset(months=2)
    last = LEGACY_LAST_DAY.to_period("M").start_time
    window = months.loc[(months.index >= first) & (months.index <= last)]
    if not len(window):
        return []
    table = pd.DataFrame(
        {
            "month": [m.strftime("%Y-%m") for m in window.index],
            "legacy": window.get("legacy", pd.Series(0, index=window.index)).astype(int).to_numpy(),
            "NIBRS": window.get("nibrs", pd.Series(0, index=window.index)).astype(int).to_numpy(),
        }
    )
    table["both"] = table["legacy"] + table["NIBRS"]
    table["legacy share"] = (table["legacy"] / table["both"].where(table["both"] > 0)).map(
        lambda v: "" if pd.isna(v) else f"{v:.0%}"
    )
    return [
        f"What each system contributes, city-wide incidents per month of occurrence "
        f"({table['month'].iloc[0]} to {table['month'].iloc[-1]}, every division of the run):",
        "",
        markdown_table(table),
        "",
    ]
