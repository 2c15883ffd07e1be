"""Real legacy rows in the API forms of both records systems, for tests of their join.

:func:`nibrs_records_from_legacy` writes legacy rows as NIBRS offence records in the live set's
API form (8-digit case numbers, ``<caseno>_<code>_<seq>`` offence ids, numeric status; one case
per row, its crime code crosswalked to the FBI code, one case in fifty with a second, lesser
offence). :func:`timed_twin_files` builds the two files of a cross-system test from real rows
with times of day (the 2020 export, moved into June 2024): the legacy rows, and NIBRS records of
some of them that are the same incident (same day and time, district, offence, 20 m away) or
near misses (300 m away, an hour later, the next district).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo_crime.ingest import load_incidents
from geo_crime.ingest.severity import legacy_to_nibrs, nibrs_severity_table
from tests.fakes.nibrs_fixtures import NIBRS_FIELDS, write_ndjson_gz
from tests.fakes.shared_data import IVANCO, crime_file

SHIFT = pd.Timedelta(days=63)

#: The yes/no fields of a NIBRS record (victim shot and the seven ``*_crime`` flags): all "No".
NO_FLAGS = tuple(f for f in NIBRS_FIELDS if f == "victim_shot" or f.endswith("_crime"))


def nibrs_records_from_legacy(
    rows: pd.DataFrame, *, shift: pd.Timedelta = SHIFT, first_case: int = 0, times: bool = False
) -> list[dict[str, str]]:
    """NIBRS offence records in the live set's API form (strings, null keys left out) made from
    legacy rows moved ``shift`` later: one case per row with a crosswalked code, one case in
    fifty with a second offence (90Z). ``times``: keep each row's time of day (else a time
    derived from the row number, never the unknown-time values 0000 and 1200)."""
    table = nibrs_severity_table().set_index("nibrs_code")
    codes = legacy_to_nibrs(rows["crm_cd"])
    keep = codes.notna().to_numpy()
    rows, codes = rows.loc[keep].reset_index(drop=True), codes[keep].reset_index(drop=True)
    occurred = rows["occurred_at"] + shift
    records = []
    for i, (row, code, when) in enumerate(zip(rows.itertuples(), codes, occurred, strict=True)):
        caseno = f"24{first_case + i:06d}"
        offences = [code] if i % 50 else [code, "90Z"]
        hhmm = when.strftime("%H%M") if times else f"{(i * 7) % 24:02d}{1 + (i * 13) % 59:02d}"
        for sequence, offence in enumerate(offences):
            info = table.loc[offence]
            records.append(
                {
                    "caseno": caseno,
                    "uniquenibrno": f"{caseno}_{offence}_{sequence}",
                    "date_rptd": when.strftime("%Y-%m-%dT00:00:00.000"),
                    "date_occ": when.strftime("%Y-%m-%dT00:00:00.000"),
                    "time_occ": hhmm,
                    "area": str(int(row.area)),
                    "area_name": str(row.area_name),
                    "rpt_dist_no": str(int(row.rpt_dist)),
                    "totaloffensecount": str(len(offences)),
                    "group": str(info["group"]),
                    "nibr_code": offence,
                    "nibr_description": f"{info['nibrs_desc']} - {offence}",
                    "crime_against": str(info["crime_against"]),
                    "status": "40",
                    "status_desc": "Investigation Continued",
                    "totalvictimcount": "1",
                    **dict.fromkeys(NO_FLAGS, "No"),
                    "hndrdth_lat": f"{row.lat:.4f}",
                    "hndrdth_lon": f"{row.lon:.4f}",
                }
            )
    return records


def legacy_records(rows: pd.DataFrame) -> list[dict[str, str]]:
    """Legacy rows in the legacy set's API form (lower-case keys, every value a string)."""
    out = []
    for row in rows.itertuples():
        out.append(
            {
                "dr_no": str(row.incident_id),
                "date_rptd": row.occurred_at.strftime("%Y-%m-%dT00:00:00.000"),
                "date_occ": row.occurred_at.strftime("%Y-%m-%dT00:00:00.000"),
                "time_occ": row.occurred_at.strftime("%H%M"),
                "area": f"{int(row.area):02d}",
                "area_name": str(row.area_name),
                "rpt_dist_no": str(row.rpt_dist),
                "part_1_2": str(int(row.part)) if pd.notna(row.part) else "1",
                "crm_cd": str(int(row.crm_cd)),
                "crm_cd_desc": str(row.crm_cd_desc),
                "status": "IC",
                "status_desc": "Invest Cont",
                "crm_cd_1": str(int(row.crm_cd)),
                "location": str(row.location) if pd.notna(row.location) else "",
                "lat": f"{row.lat:.4f}",
                "lon": f"{row.lon:.4f}",
            }
        )
    return out


@dataclass
class TwinFiles:
    """The two files of a cross-system test and what they hold."""

    legacy_file: Path
    nibrs_file: Path
    legacy: pd.DataFrame
    twin_ids: set[str]


def timed_twin_files(folder: Path, n_rows: int = 400) -> TwinFiles:
    """Legacy rows with times moved into June 2024, and 70 NIBRS records: 40 twins of the first
    legacy rows (20 m north), then 10 each 300 m away, an hour later, in the next district."""
    official, _ = load_incidents(crime_file(IVANCO), cache=False)
    timed = official[
        official["time_known"]
        & official["spatial_valid"]
        & legacy_to_nibrs(official["crm_cd"]).notna()
        & (official["occurred_at"].dt.strftime("%H%M") != "1200")
    ].head(n_rows)
    # each row keeps its time of day on one of the 28 days from Monday 2024-06-03
    days = pd.to_timedelta(pd.RangeIndex(len(timed)) % 28, unit="D").to_numpy()
    time_of_day = (timed["occurred_at"] - timed["occurred_at"].dt.normalize()).to_numpy()
    moved = timed.assign(occurred_at=pd.Timestamp("2024-06-03") + days + time_of_day)
    legacy_file = write_ndjson_gz(folder / "legacy.ndjson.gz", legacy_records(moved))
    twins = moved.iloc[:40].assign(lat=moved["lat"].iloc[:40] + 0.00018)  # ~20 m north
    far = moved.iloc[40:50].assign(lat=moved["lat"].iloc[40:50] + 0.0027)  # ~300 m
    later = moved.iloc[50:60].assign(
        occurred_at=moved["occurred_at"].iloc[50:60] + pd.Timedelta(hours=1)
    )
    other_rd = moved.iloc[60:70].assign(
        rpt_dist=moved["rpt_dist"].iloc[60:70].map(lambda r: f"{int(r) + 1:04d}")
    )
    nibrs_file = write_ndjson_gz(
        folder / "nibrs.ndjson.gz",
        nibrs_records_from_legacy(
            pd.concat([twins, far, later, other_rd]), shift=pd.Timedelta(0), times=True
        ),
    )
    return TwinFiles(legacy_file, nibrs_file, moved, set(twins["incident_id"]))
