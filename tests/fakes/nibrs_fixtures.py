"""LAPD NIBRS offence records in the forms the live set really has, and writers for every file form.

No real rows of the LAPD "NIBRS Offenses" set (data.lacity.org ``k7nn-b2ep``) are available
offline, so :func:`nibrs_offense_records` builds them. Where each part of their form comes from:

* **Field list**: the set's fields, as public code that reads it names them (``caseno``,
  ``uniquenibrno``, ``date_rptd``, ``date_occ``, ``time_occ``, ``area``, ``area_name``,
  ``rpt_dist_no``, ``totaloffensecount``, ``group``, ``nibr_code``, ``nibr_description``,
  ``crime_against``, ``premis_cd``, ``premis_desc``, ``weapon_used_cd``, ``weapon_desc``,
  ``status``, ``status_desc``, ``totalvictimcount``, ``victim_shot``, the seven ``*_crime`` flags
  and ``hndrdth_loc_chk`` / ``hndrdth_lat`` / ``hndrdth_lon``), in that order.
  :func:`retired_form` renames the location keys as the retired 2024-25 set (``y8y3-fqfu``)
  named them: ``location``, ``lat``, ``lon`` (the keys public code reading that set used).
* **Identifiers**, the live set's published values: ``caseno`` is 8 digits, the 2-digit year and
  a 6-digit sequence (``25245851``); ``uniquenibrno`` is ``<caseno>_<nibr_code>_<seq>`` with a
  0-based sequence (``25245851_290_0``, ``25245765_240_1``). Two cases here carry those two
  published case numbers; the others are numbered in the same form. One row per offence: a case
  with three offences has three rows sharing ``caseno``, and ``totaloffensecount`` is the
  number of offence rows of the case.
* **Offence descriptions**, the live set's published values: ``nibr_description`` is a
  penal-code string ending in the NIBRS code, several per code. The published examples
  ``487(D)(1) - PC - F - Grand Theft Auto - GTA  - 240`` (two spaces as published),
  ``594(B)(2)(A) - PC - M - Vandalism Less Than $400 - Misd - 290``,
  ``10852 - VC - M - Tamper With Vehicle - 290`` and
  ``11377(A) - HS - M - Possess Controlled Substance - 35A`` are used as they are; the strings of
  the other codes (:data:`DESCRIPTIONS`) are written in the same form (section - code book -
  F/M - text - NIBRS code) and are not published values.
* **Status**, the live set's published values: ``status`` is numeric, ``14`` "Cleared by
  Arrest - CA Filed" and ``40`` "Investigation Continued". One record leaves ``status_desc``
  out, so the reader fills it from its status table.
* **Premises**, the live set's published values: ``premis_cd`` is LAPD's NIBRS premise list,
  alphanumeric, with title-case descriptions: ``RA`` "Single Family Home" and ``32`` "Parking
  Lot / Garage / Drop Lot".
* **Places**: ``area`` and ``rpt_dist_no`` are served unpadded (``9``, ``932``), as the live set
  serves them; ``hndrdth_lat`` / ``hndrdth_lon`` have 4 decimals, and ``(0, 0)`` means
  unresolved (one case has it). Every case takes its area, area name, reporting district,
  hundred-block address, coordinates and time of day from one real legacy row of the Ivanco19
  official export in the shared data (the first row of each of nine LAPD divisions with
  coordinates), so every offence lies in the LAPD division it names.
* **Times**: ``time_occ`` is ``HHMM`` text; ``0000`` and ``1200`` stand for an unknown time in
  the live set (2.7% and 2.3% of its rows). One case has ``0000``; the Van Nuys case has
  ``1200``, the time of its legacy row.
* **Blank offence code**: about 0.03% of the live set's rows have a blank ``nibr_code``; one
  case here has one offence without ``nibr_code``, ``group``, ``crime_against`` and
  ``nibr_description`` (its ``uniquenibrno`` keeps the empty code between the underscores, an
  assumption).
* **Values**: the open-data API conventions of the legacy API form on the same portal: every
  value a string (numbers too), ISO floating timestamps such as ``2024-03-07T00:00:00.000``
  (date fields at midnight), and a key whose value is null left out of the record (here
  ``weapon_used_cd`` / ``weapon_desc`` of offences without a weapon, which public code declares
  optional, ``date_rptd`` of one record, ``status_desc`` of one, and the code fields of the
  blank-code offence). The CSV writer leaves those cells empty.
* **Flags**: ``Yes`` / ``No``, as public code reading the set compares them with ``'Yes'``.
* **Placeholder date**: ``1800-01-06`` has been seen in ``date_occ``; one case carries it.
* **Codes**: FBI NIBRS offence codes with their group (A/B) and crime against
  (Person/Property/Society) from the FBI NIBRS offence code list; weapon codes are FBI NIBRS
  two-digit weapon codes (``12`` handgun, ``40`` personal weapons), an assumption about what
  LAPD writes in ``weapon_used_cd``.

The offence dates are in 2025, after LAPD's move to NIBRS on 2024-03-07, so the records pass the
cleaning rules (apart from the placeholder case, on purpose).
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pandas as pd

from tests.fakes.shared_data import IVANCO, crime_file

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

#: ``nibr_description`` of each NIBRS code used below: penal-code strings. Those of 240, 290
#: and 35A are the live set's published values (290 has two); the others are written in the
#: same form.
DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "13A": ("245(A)(1) - PC - F - Assault With Deadly Weapon - 13A",),
    "13B": ("242 - PC - M - Battery - 13B",),
    "120": ("211 - PC - F - Robbery - 120",),
    "290": (
        "594(B)(2)(A) - PC - M - Vandalism Less Than $400 - Misd - 290",
        "10852 - VC - M - Tamper With Vehicle - 290",
    ),
    "23F": ("487(A) - PC - F - Grand Theft From Motor Vehicle - 23F",),
    "23H": ("484(A) - PC - M - Petty Theft - 23H",),
    "240": ("487(D)(1) - PC - F - Grand Theft Auto - GTA  - 240",),
    "35A": ("11377(A) - HS - M - Possess Controlled Substance - 35A",),
    "90D": ("23152(A) - VC - M - Driving Under The Influence - 90D",),
    "90Z": ("40508(A) - VC - M - Failure To Appear - 90Z",),
}

#: The live set's numeric status codes and their published descriptions.
STATUSES: dict[str, str] = {"14": "Cleared by Arrest - CA Filed", "40": "Investigation Continued"}

#: The live set's NIBRS premise codes used below and their published (title-case) descriptions.
PREMISES: dict[str, str] = {"RA": "Single Family Home", "32": "Parking Lot / Garage / Drop Lot"}

#: The cases: (case number, occurrence date, report date or None, status code, premise code,
#: victims, offences as (NIBRS code or None for a blank one, weapon code or None, domestic
#: violence flag, victim shot flag)). Case numbers 25245851 and 25245765 are published ones.
CASES: tuple[tuple, ...] = (
    (
        "25245851",
        "2025-01-14",
        "2025-01-15",
        "40",
        "RA",
        "2",
        (("290", None, "No", "No"), ("13A", "12", "Yes", "Yes"), ("90Z", None, "No", "No")),
    ),
    ("25010342", "2025-02-03", "2025-02-03", "40", "32", "1", (("23F", None, "No", "No"),)),
    (
        "25031877",
        "2025-02-20",
        "2025-02-21",
        "14",
        "32",
        "1",
        (("13B", None, "No", "No"), ("120", "40", "No", "No")),
    ),
    (
        "25245765",
        "2025-03-09",
        None,
        "40",
        "32",
        "1",
        (("290", None, "No", "No"), ("240", None, "No", "No")),
    ),
    ("25068810", "1800-01-06", "2025-03-30", "40", "RA", "1", (("23H", None, "No", "No"),)),
    (
        "25090127",
        "2025-04-11",
        "2025-04-11",
        "14",
        "32",
        "0",
        (("90D", None, "No", "No"), ("35A", None, "No", "No")),
    ),
    ("25112093", "2025-05-02", "2025-05-06", "40", "32", "1", (("23F", None, "No", "No"),)),
    ("25130456", "2025-05-28", "2025-05-28", "40", "RA", "1", (("13B", None, "Yes", "No"),)),
    ("25150731", "2025-06-17", "2025-06-18", "40", "RA", "1", ((None, None, "No", "No"),)),
)

#: Index of the case whose ``time_occ`` is ``0000`` (an unknown time in the live set).
MIDNIGHT_CASE = 5

#: Index of the case whose coordinates are ``(0, 0)`` (unresolved).
UNRESOLVED_CASE = 6

#: Index of the case whose record leaves ``status_desc`` out.
NO_STATUS_DESC_CASE = 3


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
    """An 8-digit case number in the live set's form: 2-digit year, 6-digit sequence (the
    area is not part of it; kept as a parameter for callers)."""
    year = "25" if occurred.startswith("1800") else occurred[2:4]
    return f"{year}{sequence % 1_000_000:06d}"


def offense_number(caseno: str, code: str | None, sequence: int) -> str:
    """``uniquenibrno`` as published: ``<caseno>_<nibr_code>_<seq>``, ``seq`` 0-based."""
    return f"{caseno}_{code or ''}_{sequence}"


def nibrs_offense_records() -> list[dict[str, str]]:
    """NIBRS offence records, one per offence, as the open-data API's JSON would hold them.

    Returns
    -------
    list of dict
        Records with string values only; keys whose value is null are left out. Nine cases
        (14 offence rows): case 1 (``25245851``) has three offences (290, 13A with a handgun,
        90Z), case 3 two (13B, 120 with personal weapons), case 4 (``25245765``) two (290,
        240) and no report date or status description, case 5 the placeholder occurrence date
        ``1800-01-06``, case 6 two (90D of group B, 35A) at ``0000``, case 7 coordinates
        ``(0, 0)``, case 8 (Van Nuys, area ``9``, RD ``932``) at ``1200``, case 9 a blank
        ``nibr_code``.
    """
    places = real_places()
    records = []
    seen: dict[str | None, int] = {}  # offences of a code so far: its descriptions in turn
    for index, (caseno, occurred, reported, status, premise, victims, offences) in enumerate(CASES):
        place = places.iloc[index]
        time = "0000" if index == MIDNIGHT_CASE else place["TIME OCC"]
        lat, lon = (
            ("0", "0")
            if index == UNRESOLVED_CASE
            else (f"{float(place['LAT']):.4f}", f"{float(place['LON']):.4f}")
        )
        for sequence, (code, weapon, domestic, shot) in enumerate(offences):
            group, _, against = OFFENCES[code] if code else (None, None, None)
            variants = DESCRIPTIONS.get(code, (None,)) if code else (None,)
            description = variants[seen.get(code, 0) % len(variants)]
            seen[code] = seen.get(code, 0) + 1
            record = {
                "caseno": caseno,
                "uniquenibrno": offense_number(caseno, code, sequence),
                "date_rptd": f"{reported}T00:00:00.000" if reported else None,
                "date_occ": f"{occurred}T00:00:00.000",
                "time_occ": time,
                "area": str(int(place["AREA"])),
                "area_name": place["AREA NAME"],
                "rpt_dist_no": str(int(place["Rpt Dist No"])),
                "totaloffensecount": str(len(offences)),
                "group": group,
                "nibr_code": code,
                "nibr_description": description,
                "crime_against": against,
                "premis_cd": premise,
                "premis_desc": PREMISES[premise],
                "weapon_used_cd": weapon,
                "weapon_desc": WEAPONS.get(weapon) if weapon else None,
                "status": status,
                "status_desc": None if index == NO_STATUS_DESC_CASE else STATUSES[status],
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
                "hndrdth_lat": lat,
                "hndrdth_lon": lon,
            }
            records.append({key: value for key, value in record.items() if value is not None})
    return records


def retired_form(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """The records as the retired 2024-25 set (``y8y3-fqfu``) named its location keys:
    ``location``, ``lat`` and ``lon`` for ``hndrdth_loc_chk``, ``hndrdth_lat``, ``hndrdth_lon``."""
    renamed = {"hndrdth_loc_chk": "location", "hndrdth_lat": "lat", "hndrdth_lon": "lon"}
    return [{renamed.get(key, key): value for key, value in r.items()} for r in records]


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
