"""The report's section on the March 2024 records-system break (legacy, then NIBRS rows).

Written only when a run holds both systems (:func:`geo_crime.series.spans_break`): how the two
sets were joined and what was left out, the level shift per category around the switch
(:func:`geo_crime.series.level_shift`, with its figure), which categories trend statistics
spanning the break use, and the hundred-block precision of NIBRS locations.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from geo_crime.report.markdown import markdown_table
from geo_crime.series import HARMONISED_CATEGORIES, RECORDS_SYSTEM_SWITCH

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
    dropped: Mapping[str, int],
    *,
    figure: Path | None = None,
    folder: Path | None = None,
) -> list[str]:
    """Markdown lines of the records-system break section.

    Parameters
    ----------
    shift : pandas.DataFrame
        :func:`geo_crime.series.level_shift` of the run's incidents.
    dropped : mapping
        Rows left out when joining the sets (``legacy_after_switch``, ``nibrs_before_switch``).
    figure : pathlib.Path, optional
        The level-shift figure, linked relative to ``folder``.
    folder : pathlib.Path, optional
        The run folder (the report's location).

    Returns
    -------
    list of str
    """
    switch = RECORDS_SYSTEM_SWITCH.date()
    lines = [
        "## The March 2024 records-system break",
        "",
        f"LAPD recorded crime in its legacy system until {switch - pd.Timedelta(days=1)} and "
        f"in a NIBRS system from {switch}. This run joins the two into one series: legacy rows "
        f"that occurred before {switch} and NIBRS rows from {switch} on. Left out, so that no "
        f"incident is counted twice around the switch: {dropped.get('legacy_after_switch', 0):,}"
        f" legacy rows dated on or after the switch and {dropped.get('nibrs_before_switch', 0):,}"
        " NIBRS rows dated before it. Coverage is judged per source; the switch is a documented "
        "break, not a thin period (each system is judged on its own days of the period holding "
        "it). NIBRS rows are offences; they are counted as incidents (one per case, its most "
        "serious offence) unless the run counts offences.",
        "",
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
        f" whole weeks before the switch week against the {n_after} after it; the switch week "
        "itself mixes both systems and is left out). A ratio far from 1 in a harmonised category "
        "is a change of recording or of crime; in the others it is mostly recording:"
    )
    lines.append("")
    table = shift.reset_index().rename(
        columns={
            "category": "category",
            "before": "per week before (legacy)",
            "after": "per week after (NIBRS)",
            "ratio": "after / before",
        }
    )
    table["category"] = table["category"].str.replace("_", " ")
    table["harmonised"] = table["harmonised"].map({True: "yes", False: "no"})
    table["comparable on its own"] = table.pop("comparable_alone").map({True: "yes", False: "no"})
    table = table.drop(columns=["weeks_before", "weeks_after"])
    for column in ("per week before (legacy)", "per week after (NIBRS)"):
        table[column] = table[column].round(1)
    table["after / before"] = table["after / before"].round(2)
    lines.append(markdown_table(table))
    lines.append("")
    if figure is not None:
        where = figure.relative_to(folder).as_posix() if folder is not None else figure.name
        lines.append(f"![Level shift per category around the switch]({where})")
        lines.append("")
    return lines
