"""Clean canonical incidents and account for every row that was dropped or fixed.

Nothing is dropped or changed silently: each rule below counts what it touched in a
:class:`CleaningReport`, which is printed as a table, saved as JSON and carried in the incident
cache.

Policies
--------
=============================  ===================================================================
problem                        what happens
=============================  ===================================================================
unparseable value in a         row listed (file, line, column, value) and left out; public
required field                 files (the report, the run's ``cleaning_report.json``) list the
                               file, line, column and reason only, never the value
wrong number of CSV fields     row listed and left out (the same way)
duplicate ``DR_NO``            later copies dropped (files overlap: the two 2020 slices share 464)
                               among legacy rows only: NIBRS rows are never matched to a DR_NO
duplicate NIBRS offence id     later copies of a ``uniquenibrno`` (``offense_id``) dropped, counted
                               (several offence rows of one case share their ``caseno``: they are
                               no duplicates)
no ``DR_NO`` (reduced 2024     synthetic ``incident_id`` (``S`` + hash of file name and record,
rows, some mapped exports)     ``incident_id_synthetic`` True), counted; such rows are never
                               deduplicated: identical 2024 records are separate victims
(0, 0) coordinates             kept for counts, ``spatial_valid`` False (excluded from maps/stats)
coordinates outside LA County  kept for counts, ``spatial_valid`` False
lat/lon swapped in a row       swapped back while reading, counted as fixed (a file where
                               most rows are swapped is a schema error)
negative victim age            ``"null"`` (default): age unknown. ``"abs"``: the original study's
                               absolute value. Negative ages are data-entry errors; taking the
                               absolute value invents an age, so it is opt-in
victim age 0                   LAPD's code for "no person victim" (business, society): age null,
                               counted
occurred after reported        kept, ``date_suspect`` True, counted
occurred in the future         left out, counted (after ``as_of``, default now)
reported in the future         kept (the occurrence can be placed in time), ``date_suspect``
                               True, counted (a report date after ``as_of``, default now: a typo
                               or a clock error)
occurred before the minimum    left out, counted. ``min_occurred_date`` defaults to 2010-01-01:
date                           the LAPD set starts in 2020, so a 1900 or 1970 date is a placeholder
                               or a typo, not a time. As with future dates, such a row cannot be
                               placed in time and would stretch every time series, so it is left
                               out rather than flagged; ``None`` keeps every date
placeholder date 1800-01-06    seen in the NIBRS offences set: counted on its own (and, as a date
                               before the minimum, left out); with no minimum date it is kept
                               with ``date_suspect`` True
NIBRS time 0000 or 1200        an unknown time in the NIBRS set (2.7% and 2.3% of its rows): read
                               while reading as a date without a time (``time_known`` False,
                               ``occurred_at`` at midnight, as the date-only 2024 rows), counted
                               under the values set to null. A legacy 12:00 or 00:01 stays a
                               time: the hour x weekday figure measures and names those
date outside 1677-2262         pandas cannot hold it: an occurrence date is listed as unparseable
                               and its row left out; a report date is set to null, counted
reporting district outside     kept, counted (RD ``0377`` belongs to area 3)
its stated area
=============================  ===================================================================
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rich.table import Table

from geo_crime.core import schema
from geo_crime.core.errors import ConfigError, OutputError
from geo_crime.core.io_utils import atomic_write_text

#: Bounding box of Los Angeles County (the union of its 2020 census tracts, Catalina included).
LA_COUNTY_BBOX: tuple[float, float, float, float] = (-118.9448, 32.8007, -117.6462, 34.8233)

#: Victim age groups (categories of ``vict_age_group``, in this order).
AGE_GROUPS: tuple[str, ...] = ("child", "adult", "elderly", "unknown")

#: How many bad rows the report lists in full (all are counted).
MAX_LISTED_BAD_ROWS = 1000

#: Occurrences before this date are data errors (the LAPD set starts in 2020): left out, counted.
MIN_OCCURRED_DATE = pd.Timestamp("2010-01-01")

#: Dates known to stand for "unknown" in LAPD exports (``1800-01-06`` in the NIBRS offences set).
PLACEHOLDER_DATES: tuple[pd.Timestamp, ...] = (pd.Timestamp("1800-01-06"),)


@dataclass
class BadRow:
    """One input row that could not be used."""

    file: str
    line: int | None
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "unknown line"
        return f"{self.file}: {where}: column {self.column}: {self.value!r} {self.reason}"

    def located(self) -> str:
        """Where the row is and why it was left out, without its value (a raw row names an
        incident: its record number, dates, place and offence): what public files show."""
        where = f"line {self.line}" if self.line is not None else "unknown line"
        column = "" if self.column == "*" else f"column {self.column}: "
        return f"{self.file}: {where}: {column}{self.reason}"


@dataclass
class FileSummary:
    """How one input file was read."""

    path: str
    schema: str
    rows_read: int
    rows_kept: int


@dataclass
class CleaningReport:
    """Every row dropped or fixed while reading and cleaning, by reason.

    Attributes are plain counts (or dicts of counts), so the report serialises to JSON as is.
    ``synthetic_ids`` counts the rows read without a ``DR_NO`` that were given a synthetic
    ``incident_id`` (see :func:`geo_crime.ingest.synthetic_incident_ids`).
    ``duplicate_offenses_dropped`` counts NIBRS offence rows whose ``uniquenibrno`` was seen
    before, ``occurred_placeholder_date`` the rows that occurred on a placeholder date
    (:data:`PLACEHOLDER_DATES`; also in ``occurred_before_min_dropped`` when a minimum date left
    them out) and ``offenses_merged_into_cases`` the NIBRS offence rows folded into the row of
    their case by :func:`geo_crime.ingest.collapse_offenses_to_cases`.
    When legacy and NIBRS rows are joined into one table
    (:func:`geo_crime.ingest.systems.join_records_systems`), ``legacy_after_switch`` counts the
    legacy rows on or after the switch (kept: the systems split 2024's reports),
    ``legacy_matchable`` those a NIBRS copy could be sought for (known time, district, offence and
    place) and ``cross_system_duplicates_dropped`` the legacy rows removed as recorded in NIBRS too.
    """

    files: list[FileSummary] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    rows_unparseable_by_column: dict[str, int] = field(default_factory=dict)
    values_nulled: dict[str, int] = field(default_factory=dict)
    unresolved_descriptions: dict[str, int] = field(default_factory=dict)
    synthetic_ids: int = 0
    duplicates_dropped: int = 0
    coordinates_zero: int = 0
    coordinates_missing: int = 0
    coordinates_outside_county: int = 0
    coordinates_swapped_fixed: int = 0
    negative_age_policy: str = "null"
    negative_ages: int = 0
    age_zero_no_person_victim: int = 0
    occurred_after_reported: int = 0
    occurred_in_future_dropped: int = 0
    reported_in_future: int = 0
    min_occurred_date: str = ""
    occurred_before_min_dropped: int = 0
    district_outside_area: int = 0
    duplicate_offenses_dropped: int = 0
    occurred_placeholder_date: int = 0
    offenses_merged_into_cases: int = 0
    legacy_after_switch: int = 0
    legacy_matchable: int = 0
    cross_system_duplicates_dropped: int = 0
    unknown_crime_codes: dict[str, int] = field(default_factory=dict)
    severity_scheme: str = ""
    severity_version: str = ""
    rows_out: int = 0
    spatially_valid: int = 0

    # --- accumulation -----------------------------------------------------------------------

    def add_file(self, summary: FileSummary) -> None:
        """Record how one file was read."""
        self.files.append(summary)

    def add_bad_row(self, row: BadRow) -> None:
        """List one bad row (the first :data:`MAX_LISTED_BAD_ROWS` are kept in full)."""
        if len(self.bad_rows) < MAX_LISTED_BAD_ROWS:
            self.bad_rows.append(row)

    # --- derived figures --------------------------------------------------------------------

    @property
    def rows_read(self) -> int:
        """Data rows in all input files."""
        return sum(f.rows_read for f in self.files)

    @property
    def rows_unparseable(self) -> int:
        """Rows left out because a required value could not be parsed."""
        return sum(f.rows_read - f.rows_kept for f in self.files)

    @property
    def rows_dropped_by_reason(self) -> dict[str, int]:
        """Rows left out, by reason; with :attr:`rows_out` they add up to :attr:`rows_read`.

        NIBRS offence rows merged into their case's row are counted here too: they leave the
        table, though their offences are kept in ``offense_count``.
        """
        return {
            "unparseable": self.rows_unparseable,
            "duplicate DR_NO": self.duplicates_dropped,
            "duplicate NIBRS offence id": self.duplicate_offenses_dropped,
            "occurred in the future": self.occurred_in_future_dropped,
            "occurred before the minimum date": self.occurred_before_min_dropped,
            "NIBRS offences merged into cases": self.offenses_merged_into_cases,
            "legacy record also in NIBRS": self.cross_system_duplicates_dropped,
        }

    @property
    def has_nibrs(self) -> bool:
        """Whether a NIBRS offences file was read (its lines are shown only then)."""
        return any(f.schema == "nibrs" for f in self.files)

    def lines(self) -> list[tuple[str, int]]:
        """The report as (label, count) rows, in the order a reader follows the data."""
        rows = [("rows read", self.rows_read)]
        rows.append(("unparseable rows left out", self.rows_unparseable))
        for col, count in sorted(self.rows_unparseable_by_column.items()):
            rows.append((f"  bad value in {col}", count))
        for key, count in sorted(self.values_nulled.items()):
            rows.append((f"value set to null ({key})", count))
        nibrs = self.has_nibrs
        rows += [
            ("no DR_NO: synthetic id from file name + record", self.synthetic_ids),
            ("duplicate DR_NO dropped", self.duplicates_dropped),
        ]
        if nibrs or self.duplicate_offenses_dropped:
            rows.append(("duplicate NIBRS offence id dropped", self.duplicate_offenses_dropped))
        rows += [
            ("occurred in the future, dropped", self.occurred_in_future_dropped),
            (
                f"occurred before {self.min_occurred_date or 'the minimum date'}, dropped",
                self.occurred_before_min_dropped,
            ),
        ]
        if nibrs or self.occurred_placeholder_date:
            placeholders = ", ".join(str(d.date()) for d in PLACEHOLDER_DATES)
            rows.append(
                (f"occurred on a placeholder date ({placeholders})", self.occurred_placeholder_date)
            )
        if nibrs or self.offenses_merged_into_cases:
            rows.append(("NIBRS offences merged into their case", self.offenses_merged_into_cases))
        if nibrs or self.legacy_after_switch or self.cross_system_duplicates_dropped:
            rows.append(
                (
                    "legacy rows on or after the switch to NIBRS (2024-03-07), kept",
                    self.legacy_after_switch,
                )
            )
            rows.append(
                (
                    "legacy rows also recorded in NIBRS (same day, time, district, offence, "
                    "within 150 m), dropped",
                    self.cross_system_duplicates_dropped,
                )
            )
        rows += [
            ("coordinates (0, 0): no spatial use", self.coordinates_zero),
            ("coordinates missing: no spatial use", self.coordinates_missing),
            ("coordinates outside LA County: no spatial use", self.coordinates_outside_county),
            ("lat/lon swapped, fixed", self.coordinates_swapped_fixed),
            (f"negative victim age (policy: {self.negative_age_policy})", self.negative_ages),
            ("victim age 0 = no person victim", self.age_zero_no_person_victim),
            ("occurred after reported (flagged)", self.occurred_after_reported),
            ("reported in the future (flagged)", self.reported_in_future),
            ("reporting district outside its area (kept)", self.district_outside_area),
            ("unknown crime code (default severity)", sum(self.unknown_crime_codes.values())),
            (
                "crime description not resolved to a code",
                sum(self.unresolved_descriptions.values()),
            ),
            ("rows out", self.rows_out),
            ("  of which spatially valid", self.spatially_valid),
        ]
        return rows

    def to_dict(self, *, raw_values: bool = True) -> dict:
        """A JSON-ready dict (derived totals included); ``raw_values=False`` leaves the bad
        rows' values out (their file, line, column and reason stay), as public files need."""
        data = asdict(self)
        if not raw_values:
            for row in data["bad_rows"]:
                del row["value"]
        data["rows_read"] = self.rows_read
        data["rows_unparseable"] = self.rows_unparseable
        data["rows_dropped_by_reason"] = self.rows_dropped_by_reason
        return data

    @classmethod
    def combined(cls, reports: Sequence[CleaningReport]) -> CleaningReport:
        """One report for several loads (the batches of an incident dataset).

        Counts and per-key counts are summed, files and bad rows listed in order (bad rows up
        to :data:`MAX_LISTED_BAD_ROWS`); a setting (severity scheme, negative-age policy,
        minimum date) that differs between loads lists each value once, joined by ``", "``.

        Parameters
        ----------
        reports
            The reports, in load order (at least one).

        Returns
        -------
        CleaningReport
            A new report; the inputs are not changed.
        """
        if not reports:
            raise ValueError("combined() needs at least one report")
        out = cls()
        for spec in fields(cls):
            values = [getattr(r, spec.name) for r in reports]
            if isinstance(values[0], list):
                merged: object = [item for value in values for item in value]
                if spec.name == "bad_rows":
                    merged = merged[:MAX_LISTED_BAD_ROWS]
            elif isinstance(values[0], dict):
                merged = {}
                for value in values:
                    for key, count in value.items():
                        merged[key] = merged.get(key, 0) + count
            elif isinstance(values[0], str):
                merged = ", ".join(dict.fromkeys(v for v in values if v))
            else:
                merged = sum(values)
            setattr(out, spec.name, merged)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CleaningReport:
        """Rebuild a report saved by :meth:`to_dict`."""
        data = dict(data)
        data.pop("rows_read", None)
        data.pop("rows_unparseable", None)
        data.pop("rows_dropped_by_reason", None)
        data["files"] = [FileSummary(**f) for f in data.get("files", [])]
        data["bad_rows"] = [BadRow(**b) for b in data.get("bad_rows", [])]
        return cls(**data)

    def write_json(self, path: str | os.PathLike, *, raw_values: bool = True) -> Path:
        """Write the report as JSON, atomically.

        Parameters
        ----------
        path
            The JSON file to write (parent folders are created).
        raw_values
            Keep the bad rows' values (see :meth:`to_dict`).

        Returns
        -------
        pathlib.Path
            The path written.

        Raises
        ------
        OutputError
            The path is a folder or the operating system refuses the write; nothing is left.
        """

        if Path(path).is_dir():
            raise OutputError(f"{path}: is a directory; give the report a file name")
        try:
            text = json.dumps(self.to_dict(raw_values=raw_values), indent=2)
            return atomic_write_text(path, text)
        except OSError as exc:
            raise OutputError(
                f"{path}: cannot write the cleaning report ({exc.strerror or exc})"
            ) from None

    def rich_table(self):  # -> rich.table.Table
        """The report as a :class:`rich.table.Table` for the terminal."""

        table = Table(title="Cleaning report", show_lines=False)
        table.add_column("what")
        table.add_column("rows", justify="right")
        for label, count in self.lines():
            table.add_row(label, f"{count:,}")
        return table

    def __str__(self) -> str:
        width = max(len(label) for label, _ in self.lines())
        return "\n".join(f"{label:<{width}}  {count:>10,}" for label, count in self.lines())


def parse_min_occurred_date(value: str | pd.Timestamp | None) -> pd.Timestamp | None:
    """The minimum occurrence date option as a timestamp.

    Parameters
    ----------
    value
        A date (``"2010-01-01"``, a timestamp) or ``None`` for no minimum.

    Returns
    -------
    pandas.Timestamp or None

    Raises
    ------
    ConfigError
        The value is not a date.
    """
    if value is None:
        return None
    try:
        floor = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"min_occurred_date: {value!r} is not a date") from None
    if pd.isna(floor):
        raise ConfigError(f"min_occurred_date: {value!r} is not a date")
    return floor


def _record_other_sources(
    frame: pd.DataFrame, ids: np.ndarray, has_id: np.ndarray, dup: np.ndarray
) -> None:
    """Note on each kept row the other sources and files its dropped duplicates came from.

    A record number found in two files is kept once, so without this note one file's count
    would depend on whether the other file was loaded; the coverage check counts each row for
    every source that holds it (columns ``also_in_sources`` and ``also_in_files``,
    comma-separated, NA for most rows).
    """
    frame["also_in_sources"] = pd.array([pd.NA] * len(frame), dtype=schema.STRING)
    frame["also_in_files"] = pd.array([pd.NA] * len(frame), dtype=schema.STRING)
    if not dup.any() or "source" not in frame:
        return
    position = np.arange(len(frame))
    first = pd.Series(position[has_id & ~dup], index=ids[has_id & ~dup])
    target = first.reindex(ids[dup]).to_numpy()
    sources = frame["source"].astype(str).to_numpy()
    files = frame["source_file"].astype(str).to_numpy() if "source_file" in frame else sources
    copies = pd.DataFrame({"target": target, "source": sources[dup], "file": files[dup]})
    for column, key, own in (
        ("also_in_sources", "source", sources),
        ("also_in_files", "file", files),
    ):
        others = copies[copies[key].to_numpy() != own[copies["target"].to_numpy()]]
        if others.empty:
            continue
        joined = others.groupby("target")[key].agg(lambda s: ",".join(sorted(set(s))))
        values = frame[column].to_numpy(dtype=object, na_value=None)
        values[joined.index.to_numpy()] = joined.to_numpy()
        frame[column] = pd.array(values, dtype=schema.STRING)


def _record_numbers(ids: pd.Series) -> np.ndarray:
    """Record numbers as int64 (-1 where missing or not a number), via Arrow (fast on text)."""

    text = pa.array(
        ids.array if hasattr(ids.array, "__arrow_array__") else ids.astype(object),
        type=pa.large_string() if str(ids.dtype) == "string" else None,
    )
    if not pa.types.is_string(text.type) and not pa.types.is_large_string(text.type):
        text = pc.cast(text, pa.string())
    digits = pc.fill_null(pc.match_substring_regex(text, r"^\d{1,18}$"), False)
    numbers = pc.cast(pc.if_else(digits, text, pa.scalar(None, text.type)), pa.int64())
    return pc.fill_null(numbers, -1).to_numpy(zero_copy_only=False)


def _nibrs_rows(frame: pd.DataFrame) -> np.ndarray:
    """Which rows come from the NIBRS offences set (none when the column is absent)."""
    if "source_system" not in frame:
        return np.zeros(len(frame), dtype=bool)
    return (frame["source_system"] == schema.NIBRS_SYSTEM).to_numpy(dtype=bool)


def _with_offense_keys(
    frame: pd.DataFrame, ids: np.ndarray, has_id: np.ndarray, nibrs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Duplicate keys with NIBRS rows keyed by their offence id, apart from every record number.

    Record numbers have at most 18 digits, so offence ids numbered from 10**18 on never meet one.
    """
    ids = ids.copy()
    offense_ids = frame["offense_id"].to_numpy(dtype=object, na_value=None)[nibrs]
    codes, _ = pd.factorize(offense_ids, use_na_sentinel=True)
    ids[nibrs] = np.where(codes >= 0, codes.astype(np.int64) + 10**18, -1)
    has_id = has_id.copy()
    has_id[nibrs] = codes >= 0
    return ids, has_id


def _on_placeholder_date(occurred: pd.Series) -> np.ndarray:
    """Which occurrences fall on a day of :data:`PLACEHOLDER_DATES` (any time of day)."""
    days = occurred.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    return np.isin(days, np.array([d.to_datetime64() for d in PLACEHOLDER_DATES], "datetime64[D]"))


def clean_incidents(
    frame: pd.DataFrame,
    report: CleaningReport,
    *,
    negative_age: str = "null",
    as_of: pd.Timestamp | None = None,
    min_occurred_date: str | pd.Timestamp | None = MIN_OCCURRED_DATE,
) -> pd.DataFrame:
    """Apply the cleaning policies (see the module docstring), counting everything in ``report``.

    Parameters
    ----------
    frame
        Canonical incidents from :func:`geo_crime.ingest.read_incidents`.
    report
        Receives the counts.
    negative_age
        ``"null"`` (default) or ``"abs"``.
    as_of
        Occurrences after this instant are in the future (default: now).
    min_occurred_date
        Occurrences before this date are data errors, left out and counted in
        ``report.occurred_before_min_dropped`` (default :data:`MIN_OCCURRED_DATE`; ``None``
        keeps every date).

    Returns
    -------
    pandas.DataFrame
        The cleaned frame with ``spatial_valid`` and ``date_suspect`` columns added.

    Raises
    ------
    ConfigError
        ``min_occurred_date`` is not a date.
    """
    if negative_age not in {"null", "abs"}:
        raise ConfigError(f"negative_age must be 'null' or 'abs', got {negative_age!r}")
    floor = parse_min_occurred_date(min_occurred_date)
    frame = frame.copy(deep=False)
    dup = _duplicate_rows(frame, report)
    now = pd.Timestamp.now() if as_of is None else pd.Timestamp(as_of)
    untimely, placeholder = _untimely_rows(frame, report, dup, now=now, floor=floor)
    drop = dup | untimely
    placeholder_kept = placeholder[~drop]
    if drop.any():
        frame = frame.loc[~drop].reset_index(drop=True)
    _check_coordinates(frame, report)
    _clean_victim_ages(frame, report, negative_age=negative_age)
    _flag_suspect_dates(frame, report, placeholder_kept, now=now)
    report.rows_out = len(frame)
    report.spatially_valid = int(frame["spatial_valid"].sum())
    return frame


def _duplicate_rows(frame: pd.DataFrame, report: CleaningReport) -> np.ndarray:
    """The rows repeating an earlier row's record number (or a NIBRS row's offence id), counted.

    Rows with a synthetic id (the reduced 2024 rows) have none and are never deduplicated;
    record numbers are digits, so they are compared as integers (much faster than text), and
    synthetic ids, which start with a letter, never parse as one. NIBRS offence rows share their
    case number: they are deduplicated by offence id instead.
    """
    ids = _record_numbers(frame["incident_id"])
    has_id = ids >= 0
    if "incident_id_synthetic" in frame:
        has_id &= ~frame["incident_id_synthetic"].to_numpy(dtype=bool)
    nibrs = _nibrs_rows(frame)
    if nibrs.any():
        ids, has_id = _with_offense_keys(frame, ids, has_id, nibrs)
    dup = has_id & pd.Series(ids).duplicated(keep="first").to_numpy()
    report.duplicates_dropped += int((dup & ~nibrs).sum())
    report.duplicate_offenses_dropped += int((dup & nibrs).sum())
    _record_other_sources(frame, ids, has_id, dup)
    return dup


def _untimely_rows(
    frame: pd.DataFrame,
    report: CleaningReport,
    dup: np.ndarray,
    *,
    now: pd.Timestamp,
    floor: pd.Timestamp | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Occurrences that cannot be placed in time (in the future, or before the minimum date),
    and those on a placeholder date; each counted among the rows that are not duplicates."""
    future = (frame["occurred_at"] > now).to_numpy()
    report.occurred_in_future_dropped += int((future & ~dup).sum())
    too_early = np.zeros(len(frame), dtype=bool)
    if floor is not None:
        too_early = (frame["occurred_at"] < floor).to_numpy() & ~future
        report.min_occurred_date = str(floor.date())
    report.occurred_before_min_dropped += int((too_early & ~dup).sum())
    placeholder = _on_placeholder_date(frame["occurred_at"])
    report.occurred_placeholder_date += int((placeholder & ~dup).sum())
    return future | too_early, placeholder


def _check_coordinates(frame: pd.DataFrame, report: CleaningReport) -> None:
    """Count missing, zero and out-of-county coordinates; add ``spatial_valid``.

    Rows with swapped latitude and longitude were fixed and counted while reading.
    """
    lat = frame["lat"].to_numpy(dtype=float)
    lon = frame["lon"].to_numpy(dtype=float)
    west, south, east, north = LA_COUNTY_BBOX
    missing = np.isnan(lat) | np.isnan(lon)
    zero = ~missing & (lat == 0) & (lon == 0)
    inside = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    outside = ~missing & ~zero & ~inside
    report.coordinates_missing += int(missing.sum())
    report.coordinates_zero += int(zero.sum())
    report.coordinates_outside_county += int(outside.sum())
    frame["spatial_valid"] = inside


def _clean_victim_ages(frame: pd.DataFrame, report: CleaningReport, *, negative_age: str) -> None:
    """The victim age policy: negative ages nulled (or made positive), 0 (no person) nulled;
    then the age group of each row."""
    report.negative_age_policy = negative_age
    age = frame["vict_age"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    negative = age < 0
    report.negative_ages += int(negative.sum())
    age = np.where(negative, np.abs(age) if negative_age == "abs" else np.nan, age)
    no_person = age == 0
    report.age_zero_no_person_victim += int(no_person.sum())
    age = np.where(no_person, np.nan, age)
    unknown_age = np.isnan(age)
    frame["vict_age"] = pd.arrays.IntegerArray(
        np.where(unknown_age, 0, age).astype(np.int16), unknown_age
    )
    # age group codes in AGE_GROUPS order; rows without an age keep a group given by the reader
    # (the reduced 2024 schema only has bands)
    codes = np.select([age < 18, age > 65], [0, 2], default=1).astype(np.int8)
    codes[unknown_age] = 3
    existing = frame["vict_age_group"]
    if isinstance(existing.dtype, pd.CategoricalDtype) and list(existing.cat.categories) == list(
        AGE_GROUPS
    ):
        given = existing.cat.codes.to_numpy()
    else:
        given = pd.Categorical(existing.astype(object), categories=AGE_GROUPS).codes
    codes = np.where(unknown_age & (given >= 0), given, codes)
    frame["vict_age_group"] = pd.Categorical.from_codes(codes, categories=AGE_GROUPS)


def _flag_suspect_dates(
    frame: pd.DataFrame, report: CleaningReport, placeholder: np.ndarray, *, now: pd.Timestamp
) -> None:
    """Add ``date_suspect``: occurred after it was reported, reported in the future, or on a
    placeholder date (``placeholder``, per row of ``frame``); the first two counted."""
    reported_day = frame["reported_at"].dt.normalize()
    after = (frame["occurred_at"].dt.normalize() > reported_day).fillna(False).to_numpy()
    report.occurred_after_reported += int(after.sum())
    reported_later = (frame["reported_at"] > now).fillna(False).to_numpy(dtype=bool)
    report.reported_in_future += int(reported_later.sum())
    frame["date_suspect"] = after | placeholder | reported_later
