"""LAPD facts every stage shares: the 2024 switch of records systems and which system a row is.

LAPD recorded crime in its legacy system (the "Crime Data from 2020 to 2024" set, ``2nrs-mtv8``,
frozen: occurrences 2020-01-01 to :data:`LEGACY_LAST_DAY`) and, from 7 March 2024
(:data:`RECORDS_SYSTEM_SWITCH`), in a NIBRS system (the "LAPD NIBRS Offenses" set,
``k7nn-b2ep``). The two systems split the reports between them through 2024:
:mod:`geo_crime.ingest.systems` joins them, :mod:`geo_crime.record.breaks` measures the break.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "LEGACY",
    "LEGACY_LAST_DAY",
    "NIBRS",
    "RECORDS_SYSTEM_SWITCH",
    "records_systems",
    "spans_break",
]

RECORDS_SYSTEM_SWITCH = pd.Timestamp("2024-03-07")
"""First day recorded in the NIBRS system (the legacy system's last day is the day before)."""

LEGACY_LAST_DAY = pd.Timestamp("2024-12-30")
"""The last occurrence day of the legacy set (``2nrs-mtv8``, frozen: 1,004,894 rows)."""

LEGACY, NIBRS = "legacy", "nibrs"
"""The two values of ``source_system``."""


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
        return np.full(len(incidents), LEGACY, dtype=object)
    return incidents["source_system"].astype("string").fillna(LEGACY).to_numpy(dtype=object)


def spans_break(incidents: pd.DataFrame | Any) -> bool:
    """Whether the rows hold both records systems (legacy and NIBRS).

    Parameters
    ----------
    incidents : pandas.DataFrame, RunTally or StudyTally
        Canonical incidents (``source_system``; absent means legacy only), or a tally of them
        (:mod:`geo_crime.record.tallies`: anything with ``systems``).

    Returns
    -------
    bool
    """
    systems = getattr(incidents, "systems", None)
    if systems is None:
        systems = set(records_systems(incidents))
    return {LEGACY, NIBRS} <= systems
