"""The canonical incident schema and how each real LAPD export maps onto it.

Every reader in :mod:`geo_crime.ingest` produces the same columns, in this order, with these types.
Later stages only ever see canonical names.

Canonical columns
-----------------
======================  ==============  ============================================================
column                  dtype           meaning
======================  ==============  ============================================================
incident_id             string          ``DR_NO``, zero-padded to 9 digits. A row without one (the
                                        reduced 2024 schema, a mapping without ``incident_id``, a
                                        blank ``DR_NO``) gets a synthetic id: ``S`` + 15 hex digits
                                        of the xxh3-64 hash of ``"{source_file}:{source_line}"``
                                        (see :func:`geo_crime.ingest.synthetic_incident_ids`);
                                        never null, never a ``DR_NO``. NIBRS rows: ``caseno``
                                        (see below)
incident_id_synthetic   bool            True where ``incident_id`` is synthetic (such ids are never
                                        used to find duplicate records)
occurred_at             datetime64[ns]  ``DATE OCC`` + ``TIME OCC``; naive **local time**
                                        (America/Los_Angeles, as LAPD records it)
time_known              bool            False when only the date is known (reduced schema; a NIBRS
                                        ``time_occ`` of ``0000`` or ``1200``, which stand for an
                                        unknown time in that set); ``occurred_at`` is then midnight
time_class              Int8            4-hour class of the time of day: 1 = 00:00-03:59,
                                        2 = 04:00-07:59 ... 6 = 20:00-23:59; from the time where
                                        it is known, else the reduced 2024 files' ``Time_Class``
                                        (the same classes: their source's viewer labels 1
                                        "12:00 AM - 4:00 AM" ... 6 "8:00 PM - 12:00 AM"); null
                                        when neither is known
reported_at             datetime64[ns]  ``Date Rptd`` (date only in practice); NaT when absent
area                    Int8            LAPD area (division), 1-21 (``PREC`` in boundaries)
area_name               category        LAPD's area name (``Central``, ``77th Street``, ...)
rpt_dist                string          reporting district, 4-digit zero-padded (``0377``; the
                                        NIBRS set serves it unpadded: ``943`` is ``0943``)
part                    Int8            UCR part, 1 or 2
crm_cd                  Int16           crime code (primary)
crm_cd_desc             category        the offence's display label: the crime code description of a
                                        legacy row, the FBI offence name of a NIBRS row's
                                        ``nibrs_code`` (``Motor Vehicle Theft``)
crm_cd_2..crm_cd_4      Int16           secondary crime codes (``Crm Cd 2..4``)
mocodes                 string          modus operandi codes, space separated
vict_age                Int16           victim age in years; null when unknown or when the victim is
                                        not a person (LAPD writes age 0 for those)
vict_age_group          category        coarse age band: ``child`` (<18), ``adult``, ``elderly``
                                        (>65), ``unknown``; the reduced schema only gives bands
vict_sex                category        ``F``, ``M``, ``X`` (unknown), ``H``; null when not reported
vict_descent            category        LAPD descent code (``H``, ``W``, ``B``, ``A``, ...)
premis_cd               Int16           legacy LAPD premise code (``101``, ``501``); NA on NIBRS
                                        rows, whose codes are another list (``nibrs_premis_cd``)
premis_desc             category        premise description, as published (upper case in the legacy
                                        set: ``SINGLE FAMILY DWELLING``; title case in the NIBRS
                                        set: ``Single Family Home``)
weapon_cd               Int16           weapon code; null when no weapon was recorded
weapon_desc             category        weapon description
weapon_used             boolean         a weapon was recorded (the only weapon fact in 2024 rows)
status                  category        case status code as published: legacy letters (``IC``,
                                        ``AA``, ``AO``, ``JA``, ``JO``), NIBRS numbers (``14``,
                                        ``40``)
status_desc             category        case status description as published; on a NIBRS row
                                        without one, filled from ``geo_crime/data/nibrs_status.csv``
location                string          street address, rounded to the hundred block by LAPD
cross_street            string          cross street
lat, lon                float64         WGS84 coordinates; NaN when missing
source                  category        which reader produced the row (``official``, ``modified``,
                                        ``api``, ``reduced_2024``, ``mapped``, ``nibrs``)
source_file             category        the name of the file the row came from (no folder)
source_line             Int64           1-based line (CSV) or record number (JSON) in that file
source_system           category        LAPD records system: ``legacy`` (the 2020-2024 "Crime Data
                                        from 2020 to Present" set, every reader but one) or
                                        ``nibrs`` (the NIBRS offences set, from 2024-03-07)
case_id                 string          the case: ``caseno`` of a NIBRS row, as published (as its
                                        ``incident_id``); the ``incident_id`` of a legacy row
offense_id              string          the offence: ``uniquenibrno`` of a NIBRS row as published
                                        (``<caseno>_<nibr_code>_<seq>``, ``seq`` 0-based:
                                        ``25245851_290_0``); the ``incident_id`` of a legacy row
offense_count           Int16           offence rows the row stands for: 1 for a legacy row or an
                                        uncollapsed NIBRS offence, the case's offence rows after
                                        :func:`~geo_crime.ingest.load_incidents` collapsed them
nibrs_code              string          FBI NIBRS offence code (``13A``, ``120``, ``23F``); NA on
                                        legacy rows (which carry ``crm_cd`` instead)
nibrs_group             category        NIBRS offence group, ``A`` or ``B``; NA on legacy rows
nibrs_weapon_cd         string          the NIBRS row's weapon code as written (``12``, ``11A``);
                                        NA on legacy rows. A plain integer code is also in
                                        ``weapon_cd``
crime_against           category        NIBRS crime against: ``Person``, ``Property``, ``Society``;
                                        NA on legacy rows
nibrs_premis_cd         string          the NIBRS row's premise code as written, from LAPD's NIBRS
                                        premise list (``RA`` Single Family Home, ``32`` Parking
                                        Lot / Garage / Drop Lot); NA on legacy rows
nibrs_description       string          the NIBRS row's ``nibr_description`` as published: a
                                        penal-code string (``487(D)(1) - PC - F - Grand Theft Auto -
                                        GTA  - 240``), several per NIBRS code; NA on legacy rows
victim_count            Int16           NIBRS ``totalvictimcount`` (victim-level, see below)
victim_shot             boolean         NIBRS ``victim_shot`` (victim-level)
flag_domestic_violence  boolean         NIBRS ``domestic_violence_crime`` (victim-level)
flag_hate_crime         boolean         NIBRS ``hate_crime`` (victim-level)
flag_gang_related       boolean         NIBRS ``gang_related_crime`` (victim-level)
flag_transit_related    boolean         NIBRS ``transit_related_crime`` (victim-level)
flag_homeless_victim    boolean         NIBRS ``homeless_victim_crime`` (victim-level)
flag_homeless_suspect   boolean         NIBRS ``homeless_suspect_crime`` (victim-level)
flag_homeless_arrestee  boolean         NIBRS ``homeless_arrestee_crime`` (victim-level)
======================  ==============  ============================================================

NIBRS rows (:data:`NIBRS_COLUMNS`) have no ``crm_cd``, ``part``, ``mocodes``, cross street or
victim age, sex and descent (NA): their offence is ``nibrs_code``, ``crm_cd_desc`` holds the FBI
offence name of that code (the display label, as the crime code description is for a legacy
row; the published ``nibr_description`` where the code is not in the NIBRS code table) and
``nibrs_description`` the published penal-code string. A row with a blank ``nibr_code`` (about
0.03% of the set) is kept with an unknown offence (``nibrs_code`` NA) and counted.
``incident_id`` of a NIBRS row is its ``caseno`` exactly as published (``25245851``: 8 digits,
the 2-digit year and a 6-digit sequence, never padded to the 9-digit ``DR_NO`` layout, so ids
match the portal and the NIBRS Victims set), trimmed, and never synthetic. Every offence row of a
case shares it, so ``incident_id`` is unique per row only once offences are collapsed to cases
(the default of ``load_incidents``); ``offense_id`` is unique per offence row. Their coordinates
are ``hndrdth_lat`` / ``hndrdth_lon`` (4 decimals; ``(0, 0)`` means unresolved and is counted
like a legacy ``LAT`` of 0; the retired 2024-25 set ``y8y3-fqfu`` named these keys ``lat`` /
``lon`` / ``location``, :data:`NIBRS_RETIRED_KEYS`): a point of the **hundred block**
(``hndrdth_loc_chk``, in ``location``), not the place of the offence, so they place a row to
within about a block (LAPD rounds the legacy address to the hundred block as well; only the
NIBRS field names state it for the coordinates). The flags are parsed from ``Yes`` /
``No`` (also ``Y`` / ``N``, ``true`` / ``false``, ``1`` / ``0``); anything else is null and
counted. On legacy rows every
NIBRS-only column is NA, ``case_id`` and ``offense_id`` equal ``incident_id`` and
``offense_count`` is 1.

Cleaning adds ``spatial_valid`` (bool), ``date_suspect`` (bool) and ``also_in_sources`` /
``also_in_files`` (string, NA unless a dropped duplicate of the row came from another source or
file: the coverage check counts the row for those too), and the severity stage adds
``severity`` and ``harm``. Victim-level columns (:data:`VICTIM_COLUMNS`: ``vict_*``, the NIBRS
victim count, ``victim_shot`` and the ``flag_*`` columns) are for analysis only; no public export
carries them. A field of a NIBRS offences file that the reader does not know is kept as text in a
column ``extra_<field>`` (null on rows of other files), with a warning; such columns are for
analysis only too (a public table carrying one is refused).
"""

from __future__ import annotations

import re

import pandas as pd

#: Official LAPD area numbers and names, as written in the ``AREA NAME`` column.
AREA_NAMES: dict[int, str] = {
    1: "Central",
    2: "Rampart",
    3: "Southwest",
    4: "Hollenbeck",
    5: "Harbor",
    6: "Hollywood",
    7: "Wilshire",
    8: "West LA",
    9: "Van Nuys",
    10: "West Valley",
    11: "Northeast",
    12: "77th Street",
    13: "Newton",
    14: "Pacific",
    15: "N Hollywood",
    16: "Foothill",
    17: "Devonshire",
    18: "Southeast",
    19: "Mission",
    20: "Olympic",
    21: "Topanga",
}

#: The LAPD divisions (areas) by number, 1..21: the keys of :data:`AREA_NAMES`.
DIVISIONS: tuple[int, ...] = tuple(AREA_NAMES)

#: Upper-case division names (``APREC`` in the boundary layers and in the 2024 files) to area.
APREC_TO_AREA: dict[str, int] = {
    "CENTRAL": 1,
    "RAMPART": 2,
    "SOUTHWEST": 3,
    "HOLLENBECK": 4,
    "HARBOR": 5,
    "HOLLYWOOD": 6,
    "WILSHIRE": 7,
    "WEST LOS ANGELES": 8,
    "VAN NUYS": 9,
    "WEST VALLEY": 10,
    "NORTHEAST": 11,
    "77TH STREET": 12,
    "NEWTON": 13,
    "PACIFIC": 14,
    "NORTH HOLLYWOOD": 15,
    "FOOTHILL": 16,
    "DEVONSHIRE": 17,
    "SOUTHEAST": 18,
    "MISSION": 19,
    "OLYMPIC": 20,
    "TOPANGA": 21,
}

CANONICAL_COLUMNS: list[str] = [
    "incident_id",
    "incident_id_synthetic",
    "occurred_at",
    "time_known",
    "time_class",
    "reported_at",
    "area",
    "area_name",
    "rpt_dist",
    "part",
    "crm_cd",
    "crm_cd_desc",
    "crm_cd_2",
    "crm_cd_3",
    "crm_cd_4",
    "mocodes",
    "vict_age",
    "vict_age_group",
    "vict_sex",
    "vict_descent",
    "premis_cd",
    "premis_desc",
    "weapon_cd",
    "weapon_desc",
    "weapon_used",
    "status",
    "status_desc",
    "location",
    "cross_street",
    "lat",
    "lon",
    "source",
    "source_file",
    "source_line",
]

#: The NIBRS yes/no flag columns (boolean, NA where the source left the value out).
NIBRS_FLAG_COLUMNS: tuple[str, ...] = (
    "victim_shot",
    "flag_domestic_violence",
    "flag_hate_crime",
    "flag_gang_related",
    "flag_transit_related",
    "flag_homeless_victim",
    "flag_homeless_suspect",
    "flag_homeless_arrestee",
)

#: Columns only the NIBRS offences set fills (NA on legacy rows), and the per-offence and per-case
#: identifiers every row carries. They follow the legacy columns in :data:`CANONICAL_COLUMNS`.
RECORDS_SYSTEM_COLUMNS: list[str] = [
    "source_system",
    "case_id",
    "offense_id",
    "offense_count",
    "nibrs_code",
    "nibrs_group",
    "nibrs_weapon_cd",
    "crime_against",
    "nibrs_premis_cd",
    "nibrs_description",
    "victim_count",
    *NIBRS_FLAG_COLUMNS,
]

#: The columns every incidents Parquet written since the first release carries (the legacy set's
#: canonical columns), by which such a file is recognised.
LEGACY_CANONICAL_COLUMNS: list[str] = list(CANONICAL_COLUMNS)

CANONICAL_COLUMNS = CANONICAL_COLUMNS + RECORDS_SYSTEM_COLUMNS


#: Prefix of the columns that keep fields a reader does not know (text, analysis table only).
EXTRA_PREFIX = "extra_"

#: Optional column of incidents per row: a table of counts (per source, area and day, or per
#: distinct point) stands for the incidents it counts (the Dask cube sends such a table, not the
#: rows); the coverage check and the unit stages read it.
ROW_COUNT = "_rows"


def extra_column(field: str) -> str:
    """The analysis-table column keeping an unknown source field (``extra_<field>``, lower
    case, runs of other characters than letters and digits folded to ``_``).

    Parameters
    ----------
    field : str
        The source field name.

    Returns
    -------
    str
    """

    return EXTRA_PREFIX + (re.sub(r"[^0-9a-z]+", "_", field.lower()).strip("_") or "field")


#: ``source_system`` values.
LEGACY_SYSTEM = "legacy"
NIBRS_SYSTEM = "nibrs"

STRING = pd.StringDtype("pyarrow")

#: pandas dtype of every canonical column.
CANONICAL_DTYPES: dict[str, object] = {
    "incident_id": STRING,
    "incident_id_synthetic": "bool",
    "occurred_at": "datetime64[ns]",
    "time_known": "bool",
    "time_class": "Int8",
    "reported_at": "datetime64[ns]",
    "area": "Int8",
    "area_name": "category",
    "rpt_dist": STRING,
    "part": "Int8",
    "crm_cd": "Int16",
    "crm_cd_desc": "category",
    "crm_cd_2": "Int16",
    "crm_cd_3": "Int16",
    "crm_cd_4": "Int16",
    "mocodes": STRING,
    "vict_age": "Int16",
    "vict_age_group": "category",
    "vict_sex": "category",
    "vict_descent": "category",
    "premis_cd": "Int16",
    "premis_desc": "category",
    "weapon_cd": "Int16",
    "weapon_desc": "category",
    "weapon_used": "boolean",
    "status": "category",
    "status_desc": "category",
    "location": STRING,
    "cross_street": STRING,
    "lat": "float64",
    "lon": "float64",
    "source": "category",
    "source_file": "category",
    "source_line": "Int64",
    "source_system": "category",
    "case_id": STRING,
    "offense_id": STRING,
    "offense_count": "Int16",
    "nibrs_code": STRING,
    "nibrs_group": "category",
    "nibrs_weapon_cd": STRING,
    "crime_against": "category",
    "nibrs_premis_cd": STRING,
    "nibrs_description": STRING,
    "victim_count": "Int16",
    **dict.fromkeys(NIBRS_FLAG_COLUMNS, "boolean"),
}

#: Victim-level columns: never written to a public export.
VICTIM_COLUMNS: tuple[str, ...] = (
    "vict_age",
    "vict_age_group",
    "vict_sex",
    "vict_descent",
    "victim_count",
    *NIBRS_FLAG_COLUMNS,
)

# --- source mappings: source column -> canonical field --------------------------------------------

#: The official city CSV export (28 columns). Spreadsheet-modified files use the same names.
OFFICIAL_COLUMNS: dict[str, str] = {
    "DR_NO": "incident_id",
    "Date Rptd": "reported_at",
    "DATE OCC": "occurred_date",
    "TIME OCC": "occurred_time",
    "AREA": "area",
    "AREA NAME": "area_name",
    "Rpt Dist No": "rpt_dist",
    "Part 1-2": "part",
    "Crm Cd": "crm_cd",
    "Crm Cd Desc": "crm_cd_desc",
    "Mocodes": "mocodes",
    "Vict Age": "vict_age",
    "Vict Sex": "vict_sex",
    "Vict Descent": "vict_descent",
    "Premis Cd": "premis_cd",
    "Premis Desc": "premis_desc",
    "Weapon Used Cd": "weapon_cd",
    "Weapon Desc": "weapon_desc",
    "Status": "status",
    "Status Desc": "status_desc",
    "Crm Cd 1": "crm_cd_1",
    "Crm Cd 2": "crm_cd_2",
    "Crm Cd 3": "crm_cd_3",
    "Crm Cd 4": "crm_cd_4",
    "LOCATION": "location",
    "Cross Street": "cross_street",
    "LAT": "lat",
    "LON": "lon",
}

#: The open-data API form (CSV or JSON): snake_case keys, every value a string.
API_COLUMNS: dict[str, str] = {
    "dr_no": "incident_id",
    "date_rptd": "reported_at",
    "date_occ": "occurred_date",
    "time_occ": "occurred_time",
    "area": "area",
    "area_name": "area_name",
    "rpt_dist_no": "rpt_dist",
    "part_1_2": "part",
    "crm_cd": "crm_cd",
    "crm_cd_desc": "crm_cd_desc",
    "mocodes": "mocodes",
    "vict_age": "vict_age",
    "vict_sex": "vict_sex",
    "vict_descent": "vict_descent",
    "premis_cd": "premis_cd",
    "premis_desc": "premis_desc",
    "weapon_used_cd": "weapon_cd",
    "weapon_desc": "weapon_desc",
    "status": "status",
    "status_desc": "status_desc",
    "crm_cd_1": "crm_cd_1",
    "crm_cd_2": "crm_cd_2",
    "crm_cd_3": "crm_cd_3",
    "crm_cd_4": "crm_cd_4",
    "location": "location",
    "cross_street": "cross_street",
    "lat": "lat",
    "lon": "lon",
}

#: The LAPD NIBRS offences set (``k7nn-b2ep``, from 2024-03-07), one row per offence: open-data
#: API conventions (snake_case keys, every value a string, ISO floating timestamps, null keys
#: omitted from JSON). ``totaloffensecount`` is read but not kept (``offense_count`` counts the
#: rows of a case instead).
NIBRS_COLUMNS: dict[str, str] = {
    "caseno": "case_id",
    "uniquenibrno": "offense_id",
    "date_rptd": "reported_at",
    "date_occ": "occurred_date",
    "time_occ": "occurred_time",
    "area": "area",
    "area_name": "area_name",
    "rpt_dist_no": "rpt_dist",
    "totaloffensecount": "total_offense_count",
    "group": "nibrs_group",
    "nibr_code": "nibrs_code",
    "nibr_description": "nibrs_description",
    "crime_against": "crime_against",
    "premis_cd": "nibrs_premis_cd",
    "premis_desc": "premis_desc",
    "weapon_used_cd": "nibrs_weapon_cd",
    "weapon_desc": "weapon_desc",
    "status": "status",
    "status_desc": "status_desc",
    "totalvictimcount": "victim_count",
    "victim_shot": "victim_shot",
    "domestic_violence_crime": "flag_domestic_violence",
    "hate_crime": "flag_hate_crime",
    "gang_related_crime": "flag_gang_related",
    "transit_related_crime": "flag_transit_related",
    "homeless_victim_crime": "flag_homeless_victim",
    "homeless_suspect_crime": "flag_homeless_suspect",
    "homeless_arrestee_crime": "flag_homeless_arrestee",
    "hndrdth_loc_chk": "location",
    "hndrdth_lat": "lat",
    "hndrdth_lon": "lon",
}

#: The location keys of the retired 2024-25 NIBRS set (``y8y3-fqfu``), read as the keys of the
#: live set they stand for: the same form under other names.
NIBRS_RETIRED_KEYS: dict[str, str] = {
    "location": "hndrdth_loc_chk",
    "lat": "hndrdth_lat",
    "lon": "hndrdth_lon",
}

#: Keys a NIBRS offences file must have (a missing one is a schema error naming them all).
NIBRS_REQUIRED_COLUMNS: tuple[str, ...] = (
    "caseno",
    "uniquenibrno",
    "date_occ",
    "nibr_code",
    "area",
    "hndrdth_lat",
    "hndrdth_lon",
)

#: Keys only the NIBRS set has (none is in the legacy forms): two of them name a header NIBRS.
NIBRS_ONLY_COLUMNS: frozenset[str] = frozenset(NIBRS_COLUMNS) - set(API_COLUMNS)

#: The reduced per-area 2024 JSON files.
REDUCED_2024_COLUMNS: dict[str, str] = {
    "Date": "occurred_date",
    "Report_District": "rpt_dist",
    "Crime_Description": "crm_cd_desc",
    "Victim_Sex": "vict_sex",
    "Latitude": "lat",
    "Longitude": "lon",
    "Weapon_Category": "weapon_category",
    "Time_Class": "time_class",
    "Age_Category": "age_category",
    "Victim_Descent_Category": "descent_category",
    "APREC": "aprec",
}

#: Fields a source must provide for a row to be usable at all (``crm_cd`` may stand in for the
#: description).
REQUIRED_FIELDS: tuple[str, ...] = ("occurred_date", "crm_cd_desc", "lat", "lon")

#: Fields the official and API forms must both provide (a missing one is a schema error).
FULL_SCHEMA_REQUIRED: tuple[str, ...] = (
    "incident_id",
    "occurred_date",
    "occurred_time",
    "area",
    "rpt_dist",
    "crm_cd",
    "lat",
    "lon",
)

#: Columns the spreadsheet-modified West LA export adds to the official 28.
MODIFIED_EXTRA_COLUMNS: frozenset[str] = frozenset(
    {"DATE OCC.1", "month", "day", "year", "weeknum", "dayofweek", "month_text", "week_text"}
)

#: Reduced-schema victim sex labels to LAPD codes.
REDUCED_SEX_CODES: dict[str, str | None] = {
    "Male": "M",
    "Female": "F",
    "Unknown": "X",
    "Not Reported": None,
}

#: Reduced-schema age bands to canonical age groups. Teens (13-19) straddle 18 and seniors (55+)
#: straddle 65, so neither can be called child or elderly: they stay ``unknown``.
REDUCED_AGE_GROUPS: dict[str, str] = {
    "Childhood: 0-12 Years": "child",
    "Teens: 13-19 Years": "unknown",
    "Young Adults: 20-34 Years": "adult",
    "Middle-Aged Adults: 35-54 Years": "adult",
    "Older Adults/Seniors: 55+ Years": "unknown",
    "Not Reported": "unknown",
}


# --------------------------------------------------------------------------------------------
# the columns each stage reads (what a Dask run asks the cluster to read and keep)
# --------------------------------------------------------------------------------------------

#: Columns the cube is built from (unit assignment and binning; see
#: :func:`~geo_crime.cube.dask_incidents.cube_columns`).
CUBE_COLUMNS: tuple[str, ...] = (
    "occurred_at",
    "area",
    "lat",
    "lon",
    "spatial_valid",
    "severity",
    "harm",
    "crime_category",
)

#: Columns the coverage check reads (it is judged on the cluster, as counts per source, area and
#: day: :meth:`~geo_crime.cube.dask_incidents.DistributedIncidents.coverage_rows`).
COVERAGE_COLUMNS: tuple[str, ...] = (
    "occurred_at",
    "area",
    "source",
    "source_file",
    "source_system",
    "also_in_sources",
    "also_in_files",
)

#: Columns the units need from the data, per unit kind: the divisions the data covers (every
#: kind), and the points of each reporting district when the districts are derived.
UNIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "default": ("area",),
    "rd": ("area", "rpt_dist", "lat", "lon", "spatial_valid"),
}


#: Columns a whole run reads on the cluster (``geo-crime run DATASET --engine dask``): the
#: cubes', the report's tallies (:mod:`geo_crime.record.tallies`) and the division check's.
RUN_COLUMNS: tuple[str, ...] = (
    *CUBE_COLUMNS,
    "rpt_dist",
    "area_name",
    "source",
    "source_system",
    "time_known",
    "time_class",
    "crm_cd_desc",
    "premis_desc",
)
