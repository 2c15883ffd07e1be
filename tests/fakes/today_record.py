"""A generated "today" LAPD record, both records systems, for tests and benchmarks only.

**This is generated data, never a finding.** Every row below is made up from real rows (their
places, crime codes, premises, weapons and times of day) put on new dates under new record
numbers. It has the shape and the volumes of the LAPD record a person fetching the data in
December 2026 would get, so that the whole tool (fetch, ingest, the union of the two systems,
completeness, default studies, forecasts) can be tested and timed on it. No count, map or
statistic computed from it says anything about crime in Los Angeles.

What it holds
-------------
* **Legacy rows** ("Crime Data from 2020 to 2024", ``2nrs-mtv8``), one per incident, in the
  open-data API form :func:`geo_crime.net.fetch.fetch_incidents` downloads (the field names of
  :data:`geo_crime.core.schema.API_COLUMNS`, every value a string, ISO floating timestamps, null
  keys left out, area and reporting district zero-padded as the official export writes them: the
  form ``tests/test_fetch.py`` builds from the real rows). Each row is a real row of the two
  original-schema files of the shared data (the Ivanco19 head of the 2020 export and the West LA
  2020-21 slice; ``data/SOURCES.md``) drawn at random, weighted so that each LAPD division has
  its share of the real 2024 rows (the per-area 2024 files), keeping its place (area, reporting
  district, address, coordinates), crime codes, premise, weapon, status and time of day. It gets
  a new occurrence date, its real reporting lag (capped at the set's end) and a new ``dr_no``:
  2-digit report year, 2-digit area, 5-digit sequence in the order of report.
* **NIBRS offence rows** ("LAPD NIBRS Offenses", ``k7nn-b2ep``), one per offence, with the fields
  of ``tests/fakes/nibrs_fixtures.py`` (:data:`NIBRS_FIELDS`), in the forms the published set serves
  (as public code and documentation reading it show): ``caseno`` 8 digits (2-digit report year
  and a 6-digit sequence), ``uniquenibrno`` ``<caseno>_<nibr_code>_<n>`` with ``n`` the 0-based
  offence number in the case, numeric ``status`` with its description, alphanumeric premise
  codes with title-case descriptions, penal-code ``nibr_description`` strings ending in the
  NIBRS code, unpadded ``area`` and ``rpt_dist_no``, ``hndrdth_lat`` / ``hndrdth_lon`` with four
  decimals (``0.0000`` for an unresolved place), ``0000`` in 2.7% and ``1200`` in 2.3% of the
  times (both stand for an unknown time), about 0.03% of rows without ``nibr_code`` and about
  1.11 offence rows per case. A case takes its place, premise, weapon and time of day from one
  real row as above, and its first offence from that row's crime code through the shipped
  crosswalk (``geo_crime/data/crosswalk_lapd_nibrs.csv``); further offences are drawn from the
  crosswalked codes of all real rows. Known from the published set: the status codes ``14``
  (Cleared by Arrest - CA Filed) and ``40`` (Investigation Continued), the premise codes ``RA``
  (Single Family Home) and ``32`` (Parking Lot / Garage / Drop Lot) and the penal-code strings
  marked *published* in :data:`PENAL_CODES`. **Assumed here** (same form, values unknown): the
  other status codes (their descriptions are the published ones), the other premise codes, the
  other penal-code strings (real California code sections), the weapon codes (FBI NIBRS weapon
  codes, as the fixtures assume), ``<caseno>__<n>`` as the key of an offence without a code, a
  report time of day, and ``Yes`` / ``No`` flags.
* **Volumes**, multiplied by ``scale`` (:func:`monthly_volumes`): the legacy set holds its real
  yearly totals (2020-2022 from the reference roll-up of the full set, 2023 the rest of the
  frozen set's 1,004,894 rows) split over the months by their days, and its real monthly counts
  of 2024 (:data:`LEGACY_2024`), occurrences to 2024-12-30. NIBRS rows start on 2024-03-07; in
  2024 they bring each month up to :data:`UNION_PER_DAY_2024` incidents a day (about 19k a
  month), and from 2025 to November 2026 they are the only records, at
  :data:`NIBRS_PER_DAY_FROM_2025` cases a day, the level at which the set holds about 490k
  offence rows, as the published set did in late 2026. Within each division and month the
  days are spread evenly, so a small scale is as steady per division and week as the full size.
* **Cross-system twins**: a share of the 2024 legacy incidents from the switch on (0.25% by
  default) is recorded once more in NIBRS, on the same day and time, in the same reporting
  district, with the crosswalked offence, coordinates within about 20 m and a case number of its
  own, so that duplicate removal across the systems has something to find; how many is returned.

Everything is deterministic for a ``seed``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from geo_crime.core.schema import API_COLUMNS, OFFICIAL_COLUMNS
from geo_crime.ingest.severity import lapd_nibrs_crosswalk, nibrs_severity_table, nibrs_weapon_table
from geo_crime.net.catalogue import DATASETS
from tests.fakes.nibrs_fixtures import NIBRS_FIELDS
from tests.fakes.portal import FakePortal, Resource, running_portal
from tests.fakes.shared_data import IVANCO, REDUCED_DIR, WESTLA, crime_file

#: Legacy incidents per month of 2024, January to December (the frozen set's real counts).
LEGACY_2024: tuple[int, ...] = (
    18_926, 17_394, 16_293, 12_946, 9_386, 8_126, 8_170, 8_324, 8_309, 7_817, 7_179, 4_697,
)  # fmt: skip

#: Rows of the frozen legacy set.
LEGACY_TOTAL = 1_004_894

#: The reference roll-up of the full legacy set (incident counts per area, code and year).
ROLLUP = "reference/lapd_crime_2020_2022_rollup__area_crmcd_year_counts.csv"

#: First and last occurrence days of each system.
NIBRS_START = pd.Timestamp("2024-03-07")
LEGACY_LAST = pd.Timestamp("2024-12-30")
RECORD_LAST = pd.Timestamp("2026-11-30")

#: Incidents a day of both systems together from the switch to the end of 2024 (~19k a month).
UNION_PER_DAY_2024 = 620

#: NIBRS cases a day from 2025: with 1.11 offence rows a case, about 490k offence rows in all.
NIBRS_PER_DAY_FROM_2025 = 490

#: Offences per case (1, 2, 3) and their probabilities: 1.11 offence rows per case.
OFFENCES_PER_CASE = ((1, 2, 3), (0.90, 0.09, 0.01))

#: Shares of NIBRS rows with the unknown-time values, and of rows without a NIBRS code.
TIME_0000_SHARE = 0.027
TIME_1200_SHARE = 0.023
BLANK_CODE_SHARE = 0.0003

#: Status codes and descriptions (14 and 40 as published; the other codes assumed) and shares.
STATUSES: tuple[tuple[str, str, float], ...] = (
    ("40", "Investigation Continued", 0.70),
    ("14", "Cleared by Arrest - CA Filed", 0.06),
    ("10", "Open", 0.08),
    ("20", "City Attorney Review", 0.04),
    ("21", "District Attorney Review", 0.05),
    ("30", "Cleared Other (DA/CA Reject, Exceptional)", 0.04),
    ("50", "Non-Crime/Other", 0.02),
    ("60", "Unfounded", 0.01),
)

#: Penal-code ``nibr_description`` strings per NIBRS code (section - law - F/M - description).
#: The four marked "published" are strings of the published set; the others are real California
#: code sections written in the same form.
PENAL_CODES: dict[str, tuple[str, ...]] = {
    "09A": ("187(A) - PC - F - Murder",),
    "09B": ("192(B) - PC - F - Involuntary Manslaughter",),
    "100": ("207(A) - PC - F - Kidnapping", "209(B)(1) - PC - F - Kidnap To Commit Robbery"),
    "11A": ("261(A)(2) - PC - F - Rape By Force/Fear",),
    "11B": ("286(C)(2)(A) - PC - F - Sodomy By Force",),
    "11C": ("289(A)(1)(A) - PC - F - Sexual Penetration By Force",),
    "11D": ("243.4(A) - PC - F - Sexual Battery", "243.4(E)(1) - PC - M - Sexual Battery"),
    "120": ("211 - PC - F - Robbery",),
    "13A": (
        "245(A)(1) - PC - F - ADW Not Firearm",
        "245(A)(4) - PC - F - Assault With Force Likely To Produce GBI",
        "273.5(A) - PC - F - Corporal Injury On Spouse/Cohabitant",
    ),
    "13B": ("242 - PC - M - Battery", "243(E)(1) - PC - M - Battery On Spouse/Ex/Date"),
    "13C": ("422(A) - PC - F - Criminal Threats", "646.9(A) - PC - F - Stalking"),
    "200": ("451(D) - PC - F - Arson Of Property",),
    "210": ("518 - PC - F - Extortion",),
    "220": ("459 - PC - F - Burglary",),
    "23A": ("487(C) - PC - F - Grand Theft From Person",),
    "23B": ("488 - PC - M - Petty Theft - Purse Snatch",),
    "23C": ("459.5 - PC - M - Shoplifting",),
    "23D": ("487(A) - PC - F - Grand Theft From Building", "484(A) - PC - M - Petty Theft"),
    "23E": ("484(A) - PC - M - Petty Theft From Coin Machine",),
    "23F": ("487(A) - PC - F - Grand Theft From Vehicle", "488 - PC - M - Petty Theft From Veh"),
    "23H": ("487(A) - PC - F - Grand Theft", "488 - PC - M - Petty Theft"),
    "240": (
        "487(D)(1) - PC - F - Grand Theft Auto - GTA ",  # published
        "10851(A) - VC - F - Take Vehicle Without Owner's Consent",
    ),
    "250": ("470(D) - PC - F - Forgery",),
    "26A": ("532(A) - PC - F - Obtain Money/Property By False Pretenses",),
    "26B": ("484G - PC - M - Fraudulent Use Of Access Card",),
    "26F": ("530.5(A) - PC - F - Identity Theft",),
    "26G": ("502(C)(1) - PC - F - Computer Access And Fraud",),
    "270": ("503 - PC - F - Embezzlement",),
    "290": (
        "594(B)(2)(A) - PC - M - Vandalism Less Than $400 - Misd",  # published
        "10852 - VC - M - Tamper With Vehicle",  # published
        "594(B)(1) - PC - F - Vandalism $400 Or More",
    ),
    "35A": (
        "11377(A) - HS - M - Possess Controlled Substance",  # published
        "11350(A) - HS - M - Possess Narcotic Controlled Substance",
    ),
    "360": ("290.018(B) - PC - F - Fail To Register As Sex Offender",),
    "36A": ("285 - PC - F - Incest",),
    "36B": ("261.5(C) - PC - F - Unlawful Sex With Minor",),
    "370": ("311.11(A) - PC - F - Possess Child Pornography",),
    "40B": ("266H(A) - PC - F - Pimping", "266I(A)(1) - PC - F - Pandering"),
    "510": ("67 - PC - F - Bribe Executive Officer",),
    "520": (
        "25850(A) - PC - F - Carry Loaded Firearm In Public",
        "29800(A)(1) - PC - F - Felon In Possession Of Firearm",
    ),
    "64A": ("236.1(B) - PC - F - Human Trafficking For Commercial Sex",),
    "64B": ("236.1(A) - PC - F - Human Trafficking - Forced Labor",),
    "720": ("597(A) - PC - F - Animal Cruelty",),
    "90A": ("476A(A) - PC - M - Non-Sufficient Funds Check",),
    "90B": ("647(E) - PC - M - Lodging Without Consent",),
    "90C": ("415(1) - PC - M - Disturbing The Peace - Fight",),
    "90F": ("273A(B) - PC - M - Child Endangerment",),
    "90H": ("647(J)(1) - PC - M - Invasion Of Privacy - Peeping",),
    "90J": ("602(K) - PC - M - Trespassing",),
    "90Z": (
        "166(C)(1) - PC - M - Violation Of Protective Order",
        "148(A)(1) - PC - M - Resist/Obstruct Officer",
        "653M(A) - PC - M - Annoying/Obscene Phone Calls",
    ),
}

#: FBI NIBRS weapon codes for the legacy weapon codes (by code, else by hundred; assumed).
_WEAPON_BY_CODE = {
    **dict.fromkeys(("101", "102", "109"), "12"),
    **dict.fromkeys(("103", "110", "115"), "13"),
    "104": "14",
    **dict.fromkeys(("106", "116"), "11"),
    **dict.fromkeys(("113", "114"), "90"),
    **dict.fromkeys(("303", "304"), "17"),
    "307": "35",
    "400": "40",
    "500": "95",
    "501": "60",
    "503": "50",
    "506": "65",
    **dict.fromkeys(("504", "511", "515"), "99"),
}
_WEAPON_BY_HUNDRED = {"1": "15", "2": "20", "3": "30", "5": "90"}

_TIMESTAMP_MIDNIGHT = "T00:00:00.000"
_FLAGS = (
    ("hate_crime", 0.002),
    ("gang_related_crime", 0.02),
    ("transit_related_crime", 0.01),
    ("homeless_victim_crime", 0.02),
    ("homeless_suspect_crime", 0.04),
    ("homeless_arrestee_crime", 0.01),
)


# --- the real rows --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def real_rows() -> pd.DataFrame:
    """The real legacy rows every generated row is drawn from, in the API form, with weights.

    The Ivanco19 rows and the West LA rows (a row in both files once), as text in the API's
    field names, area and reporting district zero-padded (``03``, ``0377``), plus ``lag_days``
    (days from occurrence to report) and ``weight`` (the chance of being drawn: each division
    gets its share of the real 2024 rows).
    """
    frames = []
    for name in (IVANCO, WESTLA):
        frame = pd.read_csv(crime_file(name), dtype=str, keep_default_na=False, na_values=[""])
        frames.append(frame[list(OFFICIAL_COLUMNS)])
    rows = pd.concat(frames, ignore_index=True).drop_duplicates("DR_NO", ignore_index=True)
    occurred = pd.to_datetime(rows["DATE OCC"], format="mixed")
    reported = pd.to_datetime(rows["Date Rptd"], format="mixed")
    rows = rows.rename(columns=_official_to_api()).drop(columns=["dr_no", "date_occ", "date_rptd"])
    rows["area"] = rows["area"].astype(int).map("{:02d}".format)
    rows["rpt_dist_no"] = rows["rpt_dist_no"].astype(int).map("{:04d}".format)
    rows["time_occ"] = rows["time_occ"].str.zfill(4)  # West LA strips leading zeros
    rows["lag_days"] = (reported - occurred).dt.days.clip(lower=0).to_numpy()
    share = _area_shares_2024()
    per_area = rows["area"].map(rows["area"].value_counts())
    rows["weight"] = rows["area"].map(share) / per_area
    rows["weight"] /= rows["weight"].sum()
    return rows


def _official_to_api() -> dict[str, str]:
    """Official column -> API field name (``DR_NO`` -> ``dr_no``, ...)."""
    by_field = {field: api for api, field in API_COLUMNS.items()}
    return {column: by_field[field] for column, field in OFFICIAL_COLUMNS.items()}


def _area_shares_2024() -> pd.Series:
    """Each division's share of the real 2024 rows (the per-area files), by padded area code."""
    counts: dict[str, int] = {}
    for path in sorted(crime_file(REDUCED_DIR).glob("*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for record in json.load(handle):
                area = record["Report_District"][:2]
                counts[area] = counts.get(area, 0) + 1
    shares = pd.Series(counts, dtype=float)
    return shares / shares.sum()


# --- volumes --------------------------------------------------------------------------------------


def _split_by_days(total: float, months: pd.PeriodIndex) -> np.ndarray:
    days = months.days_in_month.to_numpy(dtype=float)
    return total * days / days.sum()


def _rounded(values: np.ndarray) -> np.ndarray:
    """Whole numbers with the sum of ``values`` rounded (largest remainders)."""
    floor = np.floor(values).astype(np.int64)
    missing = int(round(values.sum())) - int(floor.sum())
    if missing > 0:
        floor[np.argsort(floor - values)[:missing]] += 1
    return floor


def monthly_volumes(scale: float = 1.0) -> pd.DataFrame:
    """Incidents per month and system of the generated record, from January 2020 on.

    Parameters
    ----------
    scale
        Multiplies every volume (1.0: the real level; each month is rounded).

    Returns
    -------
    pandas.DataFrame
        Indexed by monthly period, 2020-01 to 2026-11: ``legacy`` (incidents of the legacy set)
        and ``nibrs`` (NIBRS cases, the cross-system twins not included).
    """
    rollup = pd.read_csv(crime_file(ROLLUP))
    yearly = rollup.groupby("DATE OCC")["DR_NO"].sum().astype(float)
    yearly[2023] = LEGACY_TOTAL - sum(LEGACY_2024) - yearly.sum()
    months = pd.period_range("2020-01", RECORD_LAST.strftime("%Y-%m"), freq="M")
    legacy = pd.Series(0.0, index=months)
    for year, total in yearly.items():  # whole numbers per month, the year's total kept
        inside = months[months.year == year]
        legacy[inside] = _rounded(_split_by_days(total * scale, inside)) / scale
    legacy[months[months.year == 2024]] = LEGACY_2024
    nibrs = pd.Series(0.0, index=months)
    days = pd.Series(months.days_in_month, index=months)
    for month in months[months >= NIBRS_START.to_period("M")]:
        if month.year == 2024:
            nibrs[month] = UNION_PER_DAY_2024 * days[month] - legacy[month]
        else:
            nibrs[month] = NIBRS_PER_DAY_FROM_2025 * days[month]
    return pd.DataFrame(
        {
            "legacy": np.rint(legacy.to_numpy() * scale).astype(np.int64),
            "nibrs": np.rint(nibrs.to_numpy() * scale).astype(np.int64),
        },
        index=months,
    )


def _days_in(month: pd.Period, system: str) -> tuple[np.datetime64, int]:
    """First occurrence day and number of days a system's rows of a month may fall on."""
    first, last = month.start_time.normalize(), month.end_time.normalize()
    if system == "nibrs":
        first = max(first, NIBRS_START)
    else:
        last = min(last, LEGACY_LAST)
    return np.datetime64(first.date(), "D"), (last - first).days + 1


def _placed_rows(
    counts: pd.Series, system: str, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """Real rows for ``counts[month]`` incidents of each month, and their occurrence days.

    Within each division and month the days are spread evenly (from a random offset), so that a
    small scale is as steady per division and week as the full record, whose weekly counts per
    division are in the hundreds: completeness judged on a scaled record then judges the record,
    not the noise of a few rows.
    """
    months = np.repeat(np.arange(len(counts)), counts.to_numpy())
    rows = _draw(len(months), rng)
    first, span = zip(*(_days_in(month, system) for month in counts.index), strict=True)
    groups = pd.DataFrame({"month": months, "area": rows["area"].to_numpy()}).groupby(
        ["month", "area"]
    )
    rank = groups.cumcount().to_numpy()
    size = groups["month"].transform("size").to_numpy()
    offset = rng.random(groups.ngroups)[groups.ngroup().to_numpy()]
    step = np.floor((rank + offset) * np.asarray(span)[months] / size).astype(np.int64)
    days = np.asarray(first, dtype="datetime64[D]")[months] + step.astype("timedelta64[D]")
    return rows, days


# --- the two systems ------------------------------------------------------------------------------


@dataclass
class TodayRecord:
    """The generated record (see the module docstring: generated, for tests and benchmarks only).

    Attributes
    ----------
    legacy
        Legacy rows in the API form, one per incident, in ``dr_no`` order (text, ``None`` for a
        null field).
    nibrs
        NIBRS offence rows in ``uniquenibrno`` order (text, ``None`` for a null field).
    volumes
        :func:`monthly_volumes` of the scale used.
    twin_of
        The NIBRS cases planted as twins of legacy incidents (not in ``volumes``): case number
        -> the ``dr_no`` of its legacy incident.
    """

    legacy: pd.DataFrame
    nibrs: pd.DataFrame
    volumes: pd.DataFrame
    twin_of: dict[str, str]

    @property
    def twins(self) -> int:
        """How many twins were planted."""
        return len(self.twin_of)


def _draw(count: int, rng: np.random.Generator) -> pd.DataFrame:
    pool = real_rows()
    index = rng.choice(len(pool), size=count, p=pool["weight"].to_numpy())
    return pool.iloc[index].reset_index(drop=True)


def _draw_in_areas(areas: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """One real row of each of ``areas`` (padded codes), drawn by weight within its division."""
    pool = real_rows()
    index = np.empty(len(areas), dtype=np.int64)
    for area in np.unique(areas):
        here = np.flatnonzero(pool["area"].to_numpy() == area)
        weights = pool["weight"].to_numpy()[here]
        where = np.flatnonzero(areas == area)
        index[where] = rng.choice(here, size=len(where), p=weights / weights.sum())
    return pool.iloc[index].reset_index(drop=True)


def _iso(days: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(days, unit="D"), _TIMESTAMP_MIDNIGHT)


def _sequence_ids(prefix: pd.Series, order: np.ndarray, width: int) -> pd.Series:
    """``prefix`` + a 1-based ``width``-digit sequence within each prefix, in ``order``."""
    frame = pd.DataFrame({"prefix": prefix.to_numpy(), "order": order})
    frame = frame.sort_values(["prefix", "order"], kind="stable")
    sequence = frame.groupby("prefix").cumcount() + 1
    if len(sequence) and sequence.max() >= 10**width:
        raise ValueError(f"more than {10**width - 1} records under one prefix")
    ids = frame["prefix"] + sequence.map(("{:0" + str(width) + "d}").format)
    return ids.sort_index()


def legacy_rows(volumes: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Legacy incidents for ``volumes["legacy"]``, in the API form, in ``dr_no`` order."""
    rows, occurred = _placed_rows(volumes["legacy"], "legacy", rng)
    last = np.datetime64(LEGACY_LAST.date(), "D") + 1
    lag = rows.pop("lag_days").to_numpy().astype("timedelta64[D]")
    reported = np.minimum(occurred + lag, last)
    rows = rows.drop(columns="weight")
    rows["date_occ"] = _iso(occurred)
    rows["date_rptd"] = _iso(reported)
    year = pd.Series(np.datetime_as_string(reported, unit="Y")).str[2:]
    rows["dr_no"] = _sequence_ids(year + rows["area"], reported.astype(np.int64), 5).to_numpy()
    rows = rows.astype(object).where(rows.notna(), None)
    return rows[list(API_COLUMNS)].sort_values("dr_no", ignore_index=True)


@lru_cache(maxsize=1)
def premise_codes() -> pd.DataFrame:
    """NIBRS premise code and title-case description for each legacy premise code of the pool.

    ``RA`` Single Family Home and ``32`` Parking Lot / Garage / Drop Lot as published; other
    dwellings get ``R`` and a letter, everything else two digits (assumed codes).
    """
    pool = real_rows()[["premis_cd", "premis_desc"]].dropna().drop_duplicates("premis_cd")
    pool = pool.sort_values("premis_cd", key=lambda s: s.astype(int))
    letters = iter("BCDEFGHIJKLMNOPQSTUVWXYZ")
    numbers = (f"{n:02d}" for n in range(1, 100) if n != 32)
    codes, descriptions = [], []
    for legacy, description in zip(pool["premis_cd"], pool["premis_desc"], strict=True):
        text = description.rstrip("*").strip()
        if legacy == "501":
            code, text = "RA", "Single Family Home"
        elif "PARKING" in text or "GARAGE" in text:
            code, text = "32", "Parking Lot / Garage / Drop Lot"
        elif any(word in text for word in ("DWELLING", "CONDOMINIUM", "MOBILE HOME")):
            code = "R" + next(letters)
        else:
            code = next(numbers, "99")
        codes.append(code)
        descriptions.append(text.title())
    return pd.DataFrame(
        {"nibrs_premis_cd": codes, "nibrs_premis_desc": descriptions},
        index=pool["premis_cd"].to_numpy(),
    )


def _weapon_codes(legacy: pd.Series) -> pd.Series:
    codes = legacy.map(
        lambda c: (
            None
            if not isinstance(c, str)
            else _WEAPON_BY_CODE.get(c, _WEAPON_BY_HUNDRED.get(c[0], "90"))
        )
    )
    return codes.astype(object)


def _times(real: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """Times of day: the real ones, ``0000`` / ``1200`` (unknown time) at their published shares."""
    times = real.to_numpy(dtype=object).copy()
    placeholder = np.isin(times, ["0000", "1200"])
    minutes = rng.integers(0, 24 * 60, size=placeholder.sum())
    times[placeholder] = [f"{m // 60:02d}{m % 60:02d}" for m in minutes]
    draw = rng.random(len(times))
    times[draw < TIME_0000_SHARE] = "0000"
    times[(draw >= TIME_0000_SHARE) & (draw < TIME_0000_SHARE + TIME_1200_SHARE)] = "1200"
    return times


def _cases(
    source: pd.DataFrame,
    occurred: np.ndarray,
    lag_days: np.ndarray,
    times: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """NIBRS case fields (one row per case) from real-row fields, days, lags and times."""
    last = np.datetime64(RECORD_LAST.date(), "D")
    reported = np.minimum(occurred + lag_days.astype("timedelta64[D]"), last)
    minutes = rng.integers(7 * 60, 23 * 60, size=len(occurred))
    at = reported.astype("datetime64[m]") + minutes.astype("timedelta64[m]")
    premises = premise_codes()
    weapon = _weapon_codes(source["weapon_used_cd"])
    weapon_desc = nibrs_weapon_table().set_index("nibrs_weapon_cd")["nibrs_weapon_desc"]
    status = rng.choice(len(STATUSES), size=len(occurred), p=[s[2] for s in STATUSES])
    location = source["location"].fillna("").str.split().str.join(" ")
    return pd.DataFrame(
        {
            "reported": reported,
            "date_rptd": np.char.add(np.datetime_as_string(at, unit="m"), ":00.000"),
            "date_occ": _iso(occurred),
            "time_occ": times,
            "area": source["area"].astype(int).astype(str).to_numpy(),
            "area_name": source["area_name"].to_numpy(),
            "rpt_dist_no": source["rpt_dist_no"].astype(int).astype(str).to_numpy(),
            "premis_cd": source["premis_cd"].map(premises["nibrs_premis_cd"]).to_numpy(),
            "premis_desc": source["premis_cd"].map(premises["nibrs_premis_desc"]).to_numpy(),
            "weapon_used_cd": weapon.to_numpy(),
            "weapon_desc": weapon.map(weapon_desc).to_numpy(),
            "status": [STATUSES[i][0] for i in status],
            "status_desc": [STATUSES[i][1] for i in status],
            "hndrdth_loc_chk": location.replace("", None).to_numpy(),
            "hndrdth_lat": source["lat"].astype(float).map("{:.4f}".format).to_numpy(),
            "hndrdth_lon": source["lon"].astype(float).map("{:.4f}".format).to_numpy(),
            "first_code": _crosswalked(source["crm_cd"]).to_numpy(),
        }
    )


def _crosswalked(crm_cd: pd.Series) -> pd.Series:
    crosswalk = lapd_nibrs_crosswalk().set_index("crm_cd")["nibrs_code"]
    return crm_cd.astype(int).map(crosswalk).fillna("90Z")


def _offence_rows(
    cases: pd.DataFrame, counts: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    """One row per offence of each case: the case's own offence first, then others."""
    pool = real_rows()
    extra_codes = _crosswalked(pool["crm_cd"]).to_numpy()
    weights = pool["weight"].to_numpy()
    codes: list[list[str]] = [[code] for code in cases["first_code"]]
    for case in np.flatnonzero(counts > 1):
        while len(codes[case]) < counts[case]:
            code = extra_codes[rng.choice(len(extra_codes), p=weights)]
            if code not in codes[case]:
                codes[case].append(code)
    case_of_row = np.repeat(np.arange(len(cases)), counts)
    rows = cases.iloc[case_of_row].reset_index(drop=True)
    rows["nibr_code"] = [code for case in codes for code in case]
    rows["sequence"] = np.concatenate([np.arange(n) for n in counts]).astype(str)
    rows["totaloffensecount"] = counts[case_of_row].astype(str)
    rows.loc[rng.random(len(rows)) < BLANK_CODE_SHARE, "nibr_code"] = None
    table = nibrs_severity_table().set_index("nibrs_code")
    rows["group"] = rows["nibr_code"].map(table["group"])
    rows["crime_against"] = rows["nibr_code"].map(table["crime_against"])
    rows["nibr_description"] = [
        None
        if code is None
        else f"{PENAL_CODES[code][rng.integers(len(PENAL_CODES[code]))]} - {code}"
        for code in rows["nibr_code"]
    ]
    rows["uniquenibrno"] = (
        rows["caseno"] + "_" + rows["nibr_code"].fillna("") + "_" + rows["sequence"]
    )
    person = (rows["crime_against"] == "Person").to_numpy()
    society = (rows["crime_against"] == "Society").to_numpy()
    victims = np.where(society, 0, np.where(rng.random(len(rows)) < 0.1, 2, 1))
    rows["totalvictimcount"] = victims.astype(str)
    firearm = rows["weapon_used_cd"].isin(["11", "12", "13", "14", "15"]).to_numpy()
    shot = person & firearm & (rng.random(len(rows)) < 0.3)
    rows["victim_shot"] = np.where(shot, "Yes", "No")
    domestic = person & (rng.random(len(rows)) < 0.15)
    rows["domestic_violence_crime"] = np.where(domestic, "Yes", "No")
    for flag, share in _FLAGS:
        rows[flag] = np.where(rng.random(len(rows)) < share, "Yes", "No")
    rows = rows.astype(object).where(rows.notna(), None)
    return rows[list(NIBRS_FIELDS)].sort_values("uniquenibrno", ignore_index=True)


def _match_keys(days: np.ndarray, times, districts: pd.Series, crm_cd: pd.Series) -> pd.Series:
    """Day, time, reporting district and crosswalked offence: what a cross-system match uses."""
    return (
        pd.Series(np.datetime_as_string(days, unit="D"))
        + pd.Series(np.asarray(times, dtype=object)).astype(str)
        + districts.astype(int).astype(str).to_numpy()
        + _crosswalked(crm_cd).to_numpy()
    )


def _distinct_from(
    legacy: pd.DataFrame, source: pd.DataFrame, occurred: np.ndarray, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """The real rows of NIBRS cases on ``occurred``, none a chance twin of a legacy row, and times.

    Rows are drawn from a small pool, so a NIBRS case could take the same real row as a legacy
    incident of the same day and become a cross-system duplicate by chance; such rows are drawn
    again (in the same division) until no case shares its day, time, district and offence with a
    legacy incident.
    """
    legacy_days = legacy["date_occ"].str[:10].to_numpy().astype("datetime64[D]")
    taken = set(
        _match_keys(legacy_days, legacy["time_occ"], legacy["rpt_dist_no"], legacy["crm_cd"])
    )
    times = _times(source["time_occ"], rng)
    while True:
        keys = _match_keys(occurred, times, source["rpt_dist_no"], source["crm_cd"])
        again = np.flatnonzero(keys.isin(taken).to_numpy())
        if not len(again):
            return source, times
        redrawn = _draw_in_areas(source["area"].to_numpy()[again], rng)
        source.iloc[again] = redrawn.to_numpy()
        times[again] = _times(redrawn["time_occ"], rng)


def nibrs_rows(
    volumes: pd.DataFrame, legacy: pd.DataFrame, twin_share: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, dict[str, str]]:
    """NIBRS offence rows for ``volumes["nibrs"]`` cases, plus the twins of legacy incidents.

    Returns
    -------
    tuple
        The offence rows in ``uniquenibrno`` order, and each twin's case number -> ``dr_no``.
    """
    source, occurred = _placed_rows(volumes["nibrs"], "nibrs", rng)
    source, times = _distinct_from(legacy, source, occurred, rng)
    cases = _cases(source, occurred, source["lag_days"].to_numpy(), times, rng)
    after = legacy["date_occ"] >= NIBRS_START.strftime("%Y-%m-%dT")
    placed = legacy["lat"].astype(float) != 0
    timed = ~legacy["time_occ"].isin(["0000", "1200"])
    eligible = np.flatnonzero((after & placed & timed).to_numpy())
    chosen = np.sort(rng.choice(eligible, size=int(round(twin_share * after.sum())), replace=False))
    twins = legacy.iloc[chosen].reset_index(drop=True)
    shift = rng.uniform(-0.0001, 0.0001, size=(len(twins), 2))
    twins["lat"] = twins["lat"].astype(float) + shift[:, 0]
    twins["lon"] = twins["lon"].astype(float) + shift[:, 1]
    twin_days = twins["date_occ"].str[:10].to_numpy().astype("datetime64[D]")
    twin_cases = _cases(
        twins, twin_days, rng.integers(0, 3, size=len(twins)), twins["time_occ"].to_numpy(), rng
    )
    cases = pd.concat([cases, twin_cases], ignore_index=True)
    year = pd.Series(np.datetime_as_string(cases["reported"].to_numpy(), unit="Y")).str[2:]
    order = cases["reported"].to_numpy().astype(np.int64)
    cases["caseno"] = _sequence_ids(year, order, 6).to_numpy()
    values, probabilities = OFFENCES_PER_CASE
    counts = rng.choice(values, size=len(cases), p=probabilities)
    counts[len(cases) - len(twins) :] = 1
    twin_of = dict(
        zip(cases["caseno"].iloc[len(cases) - len(twins) :], twins["dr_no"], strict=True)
    )
    return _offence_rows(cases, counts, rng), twin_of


def today_records(scale: float = 0.02, seed: int = 0, twin_share: float = 0.0025) -> TodayRecord:
    """The generated today record (generated data for tests and benchmarks, never findings).

    Parameters
    ----------
    scale
        Multiplies every volume (1.0: about 1.0M legacy rows and 0.49M NIBRS offence rows).
    seed
        Seed of every random choice: the same arguments give the same record.
    twin_share
        Share of the 2024 legacy incidents from 2024-03-07 also recorded as a NIBRS case.

    Returns
    -------
    TodayRecord
    """
    rng = np.random.default_rng(seed)
    volumes = monthly_volumes(scale)
    legacy = legacy_rows(volumes, rng)
    nibrs, twin_of = nibrs_rows(volumes, legacy, twin_share, rng)
    return TodayRecord(legacy, nibrs, volumes, twin_of)


# --- files and the portal -------------------------------------------------------------------------


def api_records(frame: pd.DataFrame) -> list[dict[str, str]]:
    """The rows as the API's JSON records: null fields left out."""
    return [
        {key: value for key, value in row.items() if value is not None}
        for row in frame.to_dict("records")
    ]


def _write_ndjson(path: Path, frame: pd.DataFrame, chunk: int = 50_000) -> None:
    """Write rows as ``geo-crime fetch`` assembles its file (ASCII JSON lines, gzip mtime 0)."""
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
    ):
        for start in range(0, len(frame), chunk):
            records = api_records(frame.iloc[start : start + chunk])
            lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
            out.write(lines.encode("ascii"))


def counts_by_month(record: TodayRecord) -> pd.DataFrame:
    """Legacy incidents, NIBRS cases and NIBRS offence rows per month of occurrence.

    Returns
    -------
    pandas.DataFrame
        Indexed by monthly period (every month of :func:`monthly_volumes`): ``legacy``,
        ``nibrs_cases`` and ``nibrs_offences`` (twins included), ``twins``.
    """
    months = record.volumes.index
    legacy = pd.PeriodIndex(record.legacy["date_occ"].str[:7], freq="M").value_counts()
    nibrs = record.nibrs
    month = pd.PeriodIndex(nibrs["date_occ"].str[:7], freq="M")
    offences = month.value_counts()
    first = ~nibrs["caseno"].duplicated().to_numpy()
    cases = month[first].value_counts()
    twins = month[first & nibrs["caseno"].isin(list(record.twin_of)).to_numpy()].value_counts()
    table = pd.DataFrame(
        {"legacy": legacy, "nibrs_cases": cases, "nibrs_offences": offences, "twins": twins}
    )
    return table.reindex(months).fillna(0).astype(np.int64)


def write_today(
    folder: str | Path, scale: float = 0.02, seed: int = 0, twin_share: float = 0.0025
) -> tuple[TodayRecord, pd.DataFrame]:
    """Write the generated record as ``geo-crime fetch --dataset all --out folder`` would.

    The files are :data:`geo_crime.net.catalogue.DATASETS`' ``file_name`` of each set, rows in key
    order.

    Returns
    -------
    tuple
        The :class:`TodayRecord` and :func:`counts_by_month` of it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = today_records(scale, seed, twin_share)
    _write_ndjson(folder / DATASETS["legacy"].file_name, record.legacy)
    _write_ndjson(folder / DATASETS["nibrs"].file_name, record.nibrs)
    return record, counts_by_month(record)


@contextlib.contextmanager
def serve_today(
    scale: float = 0.02,
    seed: int = 0,
    twin_share: float = 0.0025,
    *,
    max_requests: int = 200,
    lifetime: float = 300.0,
) -> Iterator[tuple[FakePortal, TodayRecord]]:
    """Both sets of the generated record on a loopback portal on 127.0.0.1, as the city serves them.

    Yields
    ------
    tuple
        The running :class:`tests.fakes.portal.FakePortal` (``portal.template`` is the base URL of
        ``geo-crime fetch --base-url``) and the :class:`TodayRecord` it serves.
    """
    record = today_records(scale, seed, twin_share)
    resources = {
        DATASETS["legacy"].socrata_id: Resource("dr_no", api_records(record.legacy)),
        DATASETS["nibrs"].socrata_id: Resource("uniquenibrno", api_records(record.nibrs)),
    }
    with running_portal(resources, max_requests=max_requests, lifetime=lifetime) as portal:
        yield portal, record
