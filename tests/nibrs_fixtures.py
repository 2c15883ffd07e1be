"""Realistic LAPD NIBRS offence records for tests, and writers for every form they come in.

No real rows of the LAPD "NIBRS Offenses" set (data.lacity.org ``k7nn-b2ep``) are available
offline, so :func:`nibrs_offense_records` builds them from what is known of its form. Where each
assumption comes from:

* **Field list**: the documented fields of the set, as public code that reads it names them
  (``caseno``, ``uniquenibrno``, ``date_rptd``, ``date_occ``, ``time_occ``, ``area``,
  ``area_name``, ``rpt_dist_no``, ``totaloffensecount``, ``group``, ``nibr_code``,
  ``nibr_description``, ``crime_against``, ``premis_cd``, ``premis_desc``, ``weapon_used_cd``,
  ``weapon_desc``, ``status``, ``status_desc``, ``totalvictimcount``, ``victim_shot``, the seven
  ``*_crime`` flags and ``hndrdth_loc_chk`` / ``hndrdth_lat`` / ``hndrdth_lon``), in that order.
* **One row per offence**: ``uniquenibrno`` is documented as case number + NIBRS code +
  sequence, so a case with three offences has three rows sharing ``caseno``. The sequence is
  written here as a plain 1-based number (its exact layout is not documented), and
  ``totaloffensecount`` is the number of offence rows of the case.
* **Values**: the open-data API conventions of the legacy API form on the same portal: every value
  a string (numbers too), ISO floating timestamps such as ``2024-03-07T00:00:00.000`` (date fields
  at midnight), ``time_occ`` as ``HHMM`` text.
* **Omitted null keys**: as in the legacy API's JSON, a key whose value is null is left out of the
  record (here: ``weapon_used_cd`` / ``weapon_desc`` for offences without a weapon, which public
  code declares optional, and ``date_rptd`` of one record). The CSV writer leaves those cells
  empty.
* **Flags**: ``Yes`` / ``No``, as public code reading the set compares them with ``'Yes'``.
* **Placeholder date**: ``1800-01-06`` has been seen in ``date_occ``; one case carries it.
* **Case numbers**: 9 digits in the ``DR_NO`` layout (2-digit year, 2-digit area, 5-digit
  sequence). That NIBRS case numbers keep this layout is an assumption.
* **Codes**: FBI NIBRS offence codes with their group (A/B) and crime against
  (Person/Property/Society) from the FBI NIBRS offence code list; weapon codes are FBI NIBRS
  two-digit weapon codes (``12`` handgun, ``40`` personal weapons), which is an assumption about
  what LAPD writes in ``weapon_used_cd``. Premise codes are LAPD premise codes (taken from the
  legacy rows below), status descriptions from the documented ``status_desc`` values.
* **Places**: every case takes its ``area``, ``area_name``, ``rpt_dist_no``, premise, hundred-block
  address and coordinates from one real legacy row of the Ivanco19 official export in the shared
  data (the first row of each of eight LAPD divisions with coordinates), so every offence lies in
  the LAPD division it names.

The offence dates are in 2025, after LAPD's move to NIBRS on 2024-03-07, so the records pass the
cleaning rules (apart from the placeholder case, on purpose).
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pandas as pd

from tests.shared_data import IVANCO, crime_file

#: The documented NIBRS offence fields, in the order the set lists them.
NIBRS_FIELDS: tuple[str, ...] = (
    "caseno",
    "uniquenibrno",
    "date_rptd",
    "date_occ",
    "time_occ",
    "area",
    "area_name",
    "rpt_dist_no",
    "totaloffensecount",
    "group",
    "nibr_code",
    "nibr_description",
    "crime_against",
    "premis_cd",
    "premis_desc",
    "weapon_used_cd",
    "weapon_desc",
    "status",
    "status_desc",
    "totalvictimcount",
    "victim_shot",
    "domestic_violence_crime",
    "hate_crime",
    "gang_related_crime",
    "transit_related_crime",
    "homeless_victim_crime",
    "homeless_suspect_crime",
    "homeless_arrestee_crime",
    "hndrdth_loc_chk",
    "hndrdth_lat",
    "hndrdth_lon",
)

#: The placeholder occurrence date seen in the set.
PLACEHOLDER_DATE = "1800-01-06T00:00:00.000"

#: FBI NIBRS offences used below: code -> (group, description, crime against).
OFFENCES: dict[str, tuple[str, str, str]] = {
    "13A": ("A", "Aggravated Assault", "Person"),
    "13B": ("A", "Simple Assault", "Person"),
    "120": ("A", "Robbery", "Property"),
    "290": ("A", "Destruction/Damage/Vandalism of Property", "Property"),
    "23F": ("A", "Theft From Motor Vehicle", "Property"),
    "23H": ("A", "All Other Larceny", "Property"),
    "240": ("A", "Motor Vehicle Theft", "Property"),
    "35A": ("A", "Drug/Narcotic Violations", "Society"),
    "90D": ("B", "Driving Under the Influence", "Society"),
    "90Z": ("B", "All Other Offenses", "Society"),
}

#: FBI NIBRS weapon codes used below.
WEAPONS: dict[str, str] = {"12": "Handgun", "40": "Personal Weapons"}

#: The cases: (occurrence date, report date or None, status code, status description, victims,
#: offences as (NIBRS code, weapon code or None, domestic violence flag, victim shot flag)).
CASES: tuple[tuple, ...] = (
    (
        "2025-01-14",
        "2025-01-15",
        "IC",
        "Investigation Continued",
        "2",
        (("13A", "12", "Yes", "Yes"), ("290", None, "No", "No"), ("90Z", None, "No", "No")),
    ),
    (
        "2025-02-03",
        "2025-02-03",
        "IC",
        "Investigation Continued",
        "1",
        (("23F", None, "No", "No"),),
    ),
    (
        "2025-02-20",
        "2025-02-21",
        "AA",
        "Cleared by Arrest (CA/DA Filed)",
        "1",
        (("13B", None, "No", "No"), ("120", "40", "No", "No")),
    ),
    ("2025-03-09", None, "IC", "Investigation Continued", "1", (("240", None, "No", "No"),)),
    (
        "1800-01-06",
        "2025-03-30",
        "IC",
        "Investigation Continued",
        "1",
        (("23H", None, "No", "No"),),
    ),
    (
        "2025-04-11",
        "2025-04-11",
        "AA",
        "Cleared by Arrest (CA/DA Filed)",
        "0",
        (("90D", None, "No", "No"), ("35A", None, "No", "No")),
    ),
    (
        "2025-05-02",
        "2025-05-06",
        "IC",
        "Investigation Continued",
        "1",
        (("23F", None, "No", "No"),),
    ),
    (
        "2025-05-28",
        "2025-05-28",
        "IC",
        "Investigation Continued",
        "1",
        (("13B", None, "Yes", "No"),),
    ),
)


def real_places(count: int = len(CASES)) -> pd.DataFrame:
    """Places of real legacy rows: the first row with coordinates of each of ``count`` divisions.

    Returns
    -------
    pandas.DataFrame
        Text columns ``AREA``, ``AREA NAME``, ``Rpt Dist No``, ``Premis Cd``, ``Premis Desc``,
        ``LOCATION`` (hundred block, spaces folded), ``LAT``, ``LON`` and ``TIME OCC``.
    """
    rows = pd.read_csv(crime_file(IVANCO), dtype=str, nrows=200, keep_default_na=False)
    rows = rows[rows["LAT"].astype(float) != 0].drop_duplicates("AREA").head(count)
    rows = rows.reset_index(drop=True)
    rows["LOCATION"] = rows["LOCATION"].str.split().str.join(" ")
    return rows


def case_number(occurred: str, area: str, sequence: int) -> str:
    """A 9-digit case number in the DR_NO layout: year, area, 5-digit sequence."""
    year = "25" if occurred.startswith("1800") else occurred[2:4]
    return f"{year}{int(area):02d}{sequence:05d}"


def nibrs_offense_records() -> list[dict[str, str]]:
    """NIBRS offence records, one per offence, as the open-data API's JSON would hold them.

    Returns
    -------
    list of dict
        Records with string values only; keys whose value is null are left out. Eight cases
        (12 offence rows): case 1 has three offences (13A with a handgun, 290, 90Z), case 3 two
        (13B, 120 with personal weapons), case 6 two (90D of group B, 35A), case 4 no report
        date, case 5 the placeholder occurrence date ``1800-01-06``.
    """
    places = real_places()
    records = []
    for index, (occurred, reported, status, status_desc, victims, offences) in enumerate(CASES):
        place = places.iloc[index]
        caseno = case_number(occurred, place["AREA"], 10_000 + index)
        for sequence, (code, weapon, domestic, shot) in enumerate(offences, start=1):
            group, description, against = OFFENCES[code]
            record = {
                "caseno": caseno,
                "uniquenibrno": f"{caseno}{code}{sequence}",
                "date_rptd": f"{reported}T00:00:00.000" if reported else None,
                "date_occ": f"{occurred}T00:00:00.000",
                "time_occ": place["TIME OCC"],
                "area": place["AREA"],
                "area_name": place["AREA NAME"],
                "rpt_dist_no": place["Rpt Dist No"],
                "totaloffensecount": str(len(offences)),
                "group": group,
                "nibr_code": code,
                "nibr_description": description,
                "crime_against": against,
                "premis_cd": place["Premis Cd"],
                "premis_desc": place["Premis Desc"],
                "weapon_used_cd": weapon,
                "weapon_desc": WEAPONS.get(weapon) if weapon else None,
                "status": status,
                "status_desc": status_desc,
                "totalvictimcount": victims,
                "victim_shot": shot,
                "domestic_violence_crime": domestic,
                "hate_crime": "No",
                "gang_related_crime": "No",
                "transit_related_crime": "No",
                "homeless_victim_crime": "No",
                "homeless_suspect_crime": "No",
                "homeless_arrestee_crime": "No",
                "hndrdth_loc_chk": place["LOCATION"],
                "hndrdth_lat": place["LAT"],
                "hndrdth_lon": place["LON"],
            }
            records.append({key: value for key, value in record.items() if value is not None})
    return records


def write_json_array(path: Path, records: list[dict[str, str]]) -> Path:
    """Write the records as one JSON array (the API's ``.json`` page)."""
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path


def write_ndjson(path: Path, records: list[dict[str, str]]) -> Path:
    """Write the records as newline-delimited JSON, gzipped when ``path`` ends in ``.gz``."""
    text = "".join(json.dumps(record) + "\n" for record in records)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_ndjson_gz(path: Path, records: list[dict[str, str]]) -> Path:
    """Write the records as gzipped newline-delimited JSON (``path`` should end in ``.gz``)."""
    return write_ndjson(
        path if path.suffix == ".gz" else path.with_name(path.name + ".gz"), records
    )


def write_csv(path: Path, records: list[dict[str, str]]) -> Path:
    """Write the records as the API's CSV: every key any record has as the header (documented
    fields in their order, then any others), an empty cell where a record has no value."""
    keys = {key for record in records for key in record}
    columns = [f for f in NIBRS_FIELDS if f in keys] + sorted(keys - set(NIBRS_FIELDS))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(records)
    return path
