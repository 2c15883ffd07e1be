"""Both LAPD records systems as one incident table: legacy rows NIBRS recorded too are removed.

Through 2024 the legacy and NIBRS systems divided the reports between them (the legacy set holds
18,926 incidents in January 2024 and 4,697 in December; the NIBRS set holds the rest), so
:func:`join_records_systems` keeps every row of both and removes a legacy row only on evidence
that NIBRS recorded the same incident (same day and time, reporting district and crosswalked
offence, points within :data:`MATCH_METRES`), counting what it removes. Public comparisons of
the two sets found such pairs rare (5 of about 2,000 legacy reports of a June-2024 week had a
NIBRS record at the same time and place, none with the same case number).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo_crime.core.lapd import (
    LEGACY,
    LEGACY_LAST_DAY,
    NIBRS,
    RECORDS_SYSTEM_SWITCH,
    records_systems,
    spans_break,
)
from geo_crime.ingest.severity import legacy_to_nibrs

__all__ = [
    "MATCH_COLUMNS",
    "MATCH_METRES",
    "cross_system_pairs",
    "join_records_systems",
    "match_window",
]

MATCH_METRES = 150.0
"""How close a legacy and a NIBRS point must be to count as one incident: both are geocoded to
the hundred block, so one incident's two records lie well within a block's length."""


def join_records_systems(
    incidents: pd.DataFrame, *, metres: float = MATCH_METRES
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Both records systems as one incident table: every row kept but proven cross-system copies.

    Through 2024 the legacy and NIBRS systems split LAPD's reports between them: neither set is
    cut at the switch. A legacy row is removed only on evidence that NIBRS recorded the same
    incident: a NIBRS row of the same occurrence day and time (both times known), the same
    reporting district and the same offence (the legacy crime code crosswalked to its NIBRS
    code, :func:`geo_crime.ingest.severity.legacy_to_nibrs`, against the NIBRS row's lead offence),
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
    counts["legacy_after_switch"] = int(((systems == LEGACY) & after).sum())
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
    for system, codes in ((LEGACY, legacy_codes), (NIBRS, nibrs_codes)):
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
