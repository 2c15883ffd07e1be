"""One file's text columns to the typed canonical columns of :mod:`geo_crime.core.schema`.

:func:`convert_raw` takes what a reader returns (a :class:`~geo_crime.ingest.readers.RawRead`)
and builds the canonical columns group by group, one helper a group: the record number (or a
synthetic id, see :func:`~geo_crime.ingest.ids.synthetic_incident_ids`), when (the dates parsed
by :mod:`geo_crime.ingest.dates`), where, what, who and how. Each text column is typed by the
converter of :mod:`geo_crime.ingest.columns`, which runs each conversion once per distinct value
and records the values that fail.

What only the NIBRS offences form needs (offence labels, status descriptions, unknown times,
weapon code text, yes/no flags) is in :mod:`geo_crime.ingest.nibrs`.

A value that does not parse in a required field marks its row bad: the row is listed with its
file, line and column in the :class:`~geo_crime.ingest.cleaning.CleaningReport` and left out (or,
with ``on_bad_rows="raise"``, the first one raises). A bad optional value becomes null and is
counted. A column that fails in most rows (or latitude and longitude swapped in most rows) is a
:class:`~geo_crime.core.errors.SchemaError`: the file is another export or its columns are out of
order. :func:`finalize_dtypes` puts the columns in canonical order with their canonical dtypes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geo_crime.core import schema
from geo_crime.core.errors import SchemaError
from geo_crime.ingest import nibrs as nibrs_text
from geo_crime.ingest.cleaning import AGE_GROUPS, LA_COUNTY_BBOX, CleaningReport, FileSummary
from geo_crime.ingest.columns import (
    _COLUMN_FAILURE_SHARE,
    _categorical,
    _Converter,
    _source_column,
)
from geo_crime.ingest.ids import synthetic_incident_ids
from geo_crime.ingest.readers import RawRead
from geo_crime.ingest.severity import CrimeCodeLookup, crime_code_lookup


def convert_raw(
    raw: RawRead, report: CleaningReport, *, on_bad_rows: str = "report"
) -> pd.DataFrame:
    """Convert one file's text columns to the canonical schema (typed, bad rows left out).

    The columns are built group by group, in canonical order, one helper a group (identifiers,
    when, area, offence, victim, weapon, status, place), then the records-system columns of
    :func:`geo_crime.ingest.nibrs.records_system_columns` and the fields the reader does not know.

    Parameters
    ----------
    raw
        A reader's output.
    report
        The cleaning report that collects unparseable rows and nulled values.
    on_bad_rows
        ``"report"`` lists bad rows and leaves them out; ``"raise"`` raises on the first.

    Returns
    -------
    pandas.DataFrame
        Canonical columns (see :mod:`geo_crime.core.schema`), one row per good input row.
    """
    conv = _Converter(raw, report, on_bad_rows=on_bad_rows)
    reduced = raw.schema_name == "reduced_2024"
    nibrs = raw.schema_name == "nibrs"
    cols: dict[str, object] = {}
    cols.update(_identifier_columns(conv, nibrs=nibrs))
    cols.update(_when_columns(conv, nibrs=nibrs))
    cols.update(_area_columns(conv))
    cols.update(_offence_columns(conv, nibrs=nibrs))
    cols.update(_victim_columns(conv, reduced=reduced))
    cols["premis_cd"] = conv.integer("premis_cd")
    cols["premis_desc"] = conv.category("premis_desc")
    nibrs_weapon = conv.strings("nibrs_weapon_cd", upper=True)
    cols.update(_weapon_columns(conv, nibrs_weapon, nibrs=nibrs, reduced=reduced))
    cols.update(_status_columns(conv, nibrs=nibrs))
    cols.update(_place_columns(conv))
    cols.update(
        nibrs_text.records_system_columns(
            conv, nibrs=nibrs, incident_ids=cols["incident_id"], weapon_text=nibrs_weapon
        )
    )
    for name in raw.fields:  # fields the reader does not know: kept as text (analysis only)
        if name.startswith(schema.EXTRA_PREFIX):
            cols[name] = conv.strings(name)
    frame = pd.DataFrame(cols, copy=False)
    if conv.bad.any():
        frame = frame.loc[~conv.bad].reset_index(drop=True)
    _report_file(raw, report, frame)
    return frame


def _identifier_columns(conv: _Converter, *, nibrs: bool) -> dict[str, object]:
    """``incident_id`` and ``incident_id_synthetic``: the record number, or a synthetic id where
    the source has none; a NIBRS offence row is identified by its case (``caseno``, as
    published), every offence alike."""
    raw = conv.raw
    if nibrs:
        ident = nibrs_text.arrow_text(conv.identifier("case_id"))
    elif conv.has("incident_id"):
        ident = _record_numbers(conv)
    else:
        ident = pa.nulls(raw.n_rows, pa.string())
    synthetic = np.asarray(pc.is_null(ident), dtype=bool)
    if synthetic.any():
        made_up = pa.array(
            synthetic_incident_ids(raw.path.name, raw.line_numbers[synthetic]), pa.string()
        )
        ident = (
            made_up
            if synthetic.all()
            else pc.replace_with_mask(ident, pa.array(synthetic), made_up)
        )
    return {
        "incident_id": pd.arrays.ArrowStringArray(pa.chunked_array([ident])),
        "incident_id_synthetic": synthetic,
    }


def _record_numbers(conv: _Converter) -> pa.Array:
    """The file's record numbers as 9-digit text; a value that is not one marks its row bad."""
    ident = conv.raw.fields["incident_id"]
    if isinstance(ident, pa.ChunkedArray):
        ident = ident.combine_chunks()
    ident = ident.cast(pa.string())
    ok = pc.fill_null(pc.match_substring_regex(ident, r"^\d{1,12}$"), True)
    if not pc.all(ok).as_py():
        ident = pc.utf8_trim_whitespace(ident)
        ok = np.asarray(pc.fill_null(pc.match_substring_regex(ident, r"^\d{1,12}$"), True))
        conv.flag(~ok, "incident_id", ident.to_pylist(), "is not a record number", required=True)
    return pc.utf8_lpad(ident, 9, "0")


def _when_columns(conv: _Converter, *, nibrs: bool) -> dict[str, object]:
    """When: DATE OCC is midnight in every real export; TIME OCC is HHMM with stripped zeros."""
    n = conv.raw.n_rows
    day = conv.timestamp("occurred_date", required=True).astype("datetime64[D]")
    known = np.zeros(n, dtype=bool)
    offset = np.zeros(n, dtype=np.int64)
    if conv.has("occurred_time"):
        hhmm, present = conv.number_values("occurred_time", integer=True, required=False)
        hours, minutes = hhmm // 100, hhmm % 100
        known = present & (hhmm >= 0) & (hours < 24) & (minutes < 60)
        conv.flag(
            present & ~known,
            "occurred_time",
            conv._row_text("occurred_time"),
            "is not a time HHMM",
            required=False,
        )
        if nibrs:  # 0000 and 1200 stand for an unknown time in the NIBRS set
            unknown = known & np.isin(hhmm, nibrs_text.UNKNOWN_TIMES)
            conv.count_nulled(unknown, "occurred_time", "is 0000 or 1200 (unknown time)")
            known &= ~unknown
        offset = np.where(known, (hours * 60 + minutes) * 60, 0)
    occurred = day.astype("datetime64[s]") + offset.astype("timedelta64[s]")
    return {
        "occurred_at": occurred.astype("datetime64[ns]"),
        "time_known": known,
        "time_class": _time_classes(conv, known, offset),
        "reported_at": conv.timestamp("reported_at", required=False).astype("datetime64[ns]"),
    }


def _area_columns(conv: _Converter) -> dict[str, object]:
    """Where (administrative): the reporting district, and the LAPD area from the file's area,
    its division name or the district; districts outside their area are counted."""
    n = conv.raw.n_rows
    cols: dict[str, object] = {}
    rd = conv.integer("rpt_dist", "Int64")
    rd_values = rd.to_numpy(dtype=np.int64, na_value=-1)
    if conv.has("rpt_dist"):
        d = conv.distinct("rpt_dist")
        per_value = pc.utf8_lpad(pc.utf8_trim_whitespace(d.values), 4, "0")
        ok = np.asarray(pc.fill_null(pc.match_substring_regex(per_value, r"^\d{4}$"), False))
        per_value = pc.if_else(pa.array(ok), per_value, pa.scalar(None, pa.string()))
        rd_text = pc.take(per_value, pa.array(d.codes, mask=d.codes < 0))
        cols["rpt_dist"] = pd.arrays.ArrowStringArray(pa.chunked_array([rd_text]))
    else:
        cols["rpt_dist"] = pd.array([None] * n, dtype=schema.STRING)
    area = _area_numbers(conv, rd_values)
    out_of_range = (area != -1) & ~np.isin(area, schema.DIVISIONS)
    if out_of_range.any():
        conv.flag(
            out_of_range, "area", [str(a) for a in area], "is not an LAPD area 1-21", required=True
        )
    area = np.where(out_of_range, -1, area)
    cols["area"] = pd.arrays.IntegerArray(np.maximum(area, 0).astype(np.int8), area < 0)
    names_by_area = np.array([schema.AREA_NAMES.get(i, "") for i in range(22)], dtype=object)
    cols["area_name"] = _categorical(names_by_area, area)
    conv.report.district_outside_area += int(
        ((rd_values >= 0) & (area > 0) & (rd_values // 100 != area)).sum()
    )
    return cols


def _area_numbers(conv: _Converter, rd_values: np.ndarray) -> np.ndarray:
    """Each row's area number (-1 unknown): the file's area, its division name, or the
    district's first two digits."""
    if conv.has("area"):
        return conv.integer("area", "Int64", required=True).to_numpy(dtype=np.int64, na_value=-1)
    if conv.has("aprec"):
        d = conv.distinct("aprec")
        names = pc.utf8_upper(pc.utf8_trim_whitespace(d.values)).to_pylist()
        per_value = np.array([schema.APREC_TO_AREA.get(x, -1) for x in names], dtype=np.int64)
        area = d.spread(per_value, -1)
        conv.flag(
            (area < 0) & (d.codes >= 0),
            "aprec",
            conv._row_text("aprec"),
            "is not an LAPD division name",
            required=True,
        )
        return area
    return np.where(rd_values >= 0, rd_values // 100, -1)


def _offence_columns(conv: _Converter, *, nibrs: bool) -> dict[str, object]:
    """What: the crime code and its description (each filled from the other where missing),
    Part I or II, the further crime codes and the MO codes."""
    n = conv.raw.n_rows
    lookup = crime_code_lookup()
    if nibrs:  # an FBI offence code (nibrs_code below), no LAPD crime code
        crm = pd.array([pd.NA] * n, dtype="Int16")
        desc = nibrs_text.offence_labels(
            conv.strings("nibrs_code", upper=True), conv.strings("nibrs_description")
        )
    elif conv.has("crm_cd"):
        crm = conv.integer("crm_cd", required=True)
        desc = (
            conv.category("crm_cd_desc") if conv.has("crm_cd_desc") else pd.Categorical([None] * n)
        )
        if desc.isna().any():
            fill = pd.Series(crm).map(lookup.desc_by_code)
            desc = pd.Categorical(pd.Series(desc).astype(object).fillna(fill))
    else:
        desc = conv.category("crm_cd_desc")
        crm = _codes_of_descriptions(desc, lookup, conv.report)
    cols: dict[str, object] = {"crm_cd_desc": desc, "crm_cd": crm}
    part = conv.integer("part", "Int8")
    if part.isna().any() and not nibrs:
        fill = pd.Series(crm).map(lookup.part_by_code).astype("Int8").array
        part = pd.Series(part).fillna(pd.Series(fill)).astype("Int8").array
    cols["part"] = part
    for k in (2, 3, 4):
        cols[f"crm_cd_{k}"] = conv.integer(f"crm_cd_{k}")
    cols["mocodes"] = conv.strings("mocodes")
    return cols


def _codes_of_descriptions(
    desc: pd.Categorical, lookup: CrimeCodeLookup, report: CleaningReport
) -> pd.arrays.IntegerArray:
    """The crime codes of a file that has only descriptions; those not found are counted."""
    codes_by_category = np.array(
        [lookup.code_by_desc.get(c, -1) for c in desc.categories] + [-1], dtype=np.int64
    )
    crm_values = codes_by_category[desc.codes]
    unresolved = (crm_values < 0) & (desc.codes >= 0)
    if unresolved.any():
        for text, count in pd.Series(np.asarray(desc)[unresolved]).value_counts().items():
            report.unresolved_descriptions[str(text)] = report.unresolved_descriptions.get(
                str(text), 0
            ) + int(count)
    return pd.arrays.IntegerArray(np.maximum(crm_values, 0).astype(np.int16), crm_values < 0)


def _victim_columns(conv: _Converter, *, reduced: bool) -> dict[str, object]:
    """Who (the victim): age (or the reduced files' age band), sex and descent."""
    n = conv.raw.n_rows
    if reduced:
        bands = conv.category("age_category")
        return {
            "vict_age": pd.array([pd.NA] * n, dtype="Int16"),
            "vict_age_group": (
                pd.Series(bands)
                .map(schema.REDUCED_AGE_GROUPS)
                .fillna("unknown")
                .astype(object)
                .to_numpy()
            ),
            "vict_sex": pd.Categorical(
                pd.Series(conv.category("vict_sex")).map(schema.REDUCED_SEX_CODES).astype(object)
            ),
            "vict_descent": pd.Categorical([None] * n),
        }
    return {
        "vict_age": conv.integer("vict_age"),
        "vict_age_group": pd.Categorical.from_codes(  # set by the age policy
            np.full(n, -1, dtype=np.int8), categories=AGE_GROUPS
        ),
        "vict_sex": conv.category("vict_sex"),
        "vict_descent": conv.category("vict_descent"),
    }


def _weapon_columns(
    conv: _Converter,
    nibrs_weapon: pd.api.extensions.ExtensionArray,
    *,
    nibrs: bool,
    reduced: bool,
) -> dict[str, object]:
    """How: the weapon code, its description and whether a weapon was used."""
    cols: dict[str, object] = {}
    if reduced:
        cols["weapon_cd"] = pd.array([pd.NA] * conv.raw.n_rows, dtype="Int16")
        cols["weapon_desc"] = pd.Categorical([None] * conv.raw.n_rows)
        category = pd.Series(conv.category("weapon_category")).astype(object)
        cols["weapon_used"] = pd.array(
            category.map({"Weapon Used": True, "No Weapon Used": False}), dtype="boolean"
        )
    elif nibrs:
        cols["weapon_cd"], cols["weapon_used"] = nibrs_text.weapon_columns(nibrs_weapon)
        cols["weapon_desc"] = conv.category("weapon_desc")
    else:
        weapon = conv.integer("weapon_cd")
        cols["weapon_cd"] = weapon
        cols["weapon_desc"] = conv.category("weapon_desc")
        cols["weapon_used"] = pd.array(~weapon.isna(), dtype="boolean")
    return cols


def _status_columns(conv: _Converter, *, nibrs: bool) -> dict[str, object]:
    """The case status and its description (a NIBRS row's from ``nibrs_status.csv``)."""
    status = conv.category("status")
    status_desc = conv.category("status_desc")
    if nibrs:
        status_desc, unknown_status = nibrs_text.status_descriptions(status, status_desc)
        conv.count_nulled(
            unknown_status, "status", "has no description and is not in nibrs_status.csv"
        )
    return {"status": status, "status_desc": status_desc}


def _place_columns(conv: _Converter) -> dict[str, object]:
    """Where (the place) and where from: address, cross street, coordinates (swapped ones
    fixed), and the source, file and line of each row."""
    raw, n = conv.raw, conv.raw.n_rows
    cols: dict[str, object] = {
        "location": conv.strings("location", squeeze=True),
        "cross_street": conv.strings("cross_street", squeeze=True),
    }
    lat = conv.real("lat", required=True)
    lon = conv.real("lon", required=True)
    cols["lat"], cols["lon"] = _unswap_coordinates(lat, lon, raw, conv.report)
    cols["source"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [raw.schema_name])
    cols["source_file"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [raw.path.name])
    cols["source_line"] = pd.arrays.IntegerArray(
        raw.line_numbers.astype(np.int64), np.zeros(n, dtype=bool)
    )
    return cols


def _report_file(raw: RawRead, report: CleaningReport, frame: pd.DataFrame) -> None:
    """Add the file, its kept rows, synthetic ids and the rows its reader could not parse."""
    report.synthetic_ids += int(frame["incident_id_synthetic"].sum())
    report.add_file(
        FileSummary(
            path=str(raw.path),
            schema=raw.schema_name,
            rows_read=raw.n_rows + len(raw.bad_rows),
            rows_kept=len(frame),
        )
    )
    for row in raw.bad_rows:
        report.add_bad_row(row)
    if raw.bad_rows:
        by_column = report.rows_unparseable_by_column
        by_column["*"] = by_column.get("*", 0) + len(raw.bad_rows)


def _time_classes(
    conv: _Converter, known: np.ndarray, offset: np.ndarray
) -> pd.arrays.IntegerArray:
    """The 4-hour class of the time of day (1 = 00:00-03:59 ... 6 = 20:00-23:59): from the
    exact time where it is known, else from a source's own class (the reduced 2024 files'
    ``Time_Class``); a class outside 1-6 is read as null and counted."""
    given = conv.integer("time_class", "Int8")
    values = given.to_numpy(dtype=np.int64, na_value=0)
    valid = ~given.isna()
    wrong = valid & ((values < 1) | (values > TIME_CLASSES))
    if wrong.any():
        conv.count_nulled(wrong, "time_class", f"is not a time class 1-{TIME_CLASSES}")
        valid &= ~wrong
    from_time = offset // (HOURS_PER_CLASS * 3600) + 1
    classes = np.where(known, from_time, values)
    return pd.arrays.IntegerArray(classes.astype(np.int8), ~(known | valid))


#: The time-of-day classes: six blocks of four hours.
TIME_CLASSES = 6
HOURS_PER_CLASS = 4


def _unswap_coordinates(
    lat: np.ndarray, lon: np.ndarray, raw: RawRead, report: CleaningReport
) -> tuple[np.ndarray, np.ndarray]:
    """Swap back rows whose latitude holds an LA longitude and vice versa.

    A few such rows are typing slips and are fixed (and counted). When most rows of a file are
    swapped, the columns themselves are mislabelled: that is a schema error, not a fix to apply
    silently.
    """
    west, south, east, north = LA_COUNTY_BBOX
    swapped = (lat >= west) & (lat <= east) & (lon >= south) & (lon <= north)
    count = int(swapped.sum())
    if not count:
        return lat, lon
    if count > _COLUMN_FAILURE_SHARE * len(lat) and len(lat) >= 4:
        first = int(np.flatnonzero(swapped)[0])
        lat_col = _source_column(raw, "lat")
        lon_col = _source_column(raw, "lon")
        raise SchemaError(
            f"{raw.path}: columns {lat_col} and {lon_col} look swapped: {count / len(lat):.0%} of "
            f"rows have a longitude in {lat_col} (e.g. {lat[first]} on line "
            f"{raw.line_numbers[first]})"
        )
    report.coordinates_swapped_fixed += count
    return np.where(swapped, lon, lat), np.where(swapped, lat, lon)


def finalize_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Put the canonical columns in order with their canonical dtypes (extra columns kept after).

    A category column without any category (all null: the NIBRS columns of legacy rows, the
    weapon description of the 2024 rows) is given the form that survives a Parquet round trip.
    """
    for col, dtype in schema.CANONICAL_DTYPES.items():
        if col not in frame:
            frame[col] = pd.Series([pd.NA] * len(frame), dtype=object)
        if str(frame[col].dtype) != str(dtype):
            if dtype == "category":
                frame[col] = frame[col].astype("string").astype("category")
            else:
                frame[col] = frame[col].astype(dtype)
        if dtype == "category" and len(frame[col].cat.categories) == 0:
            frame[col] = nibrs_text.empty_categorical(len(frame))
    extra = [c for c in frame.columns if c not in schema.CANONICAL_DTYPES]
    for col in extra:  # unknown source fields: text, null on rows of files without them
        if col.startswith(schema.EXTRA_PREFIX):
            frame[col] = frame[col].astype(schema.STRING)
    return frame[schema.CANONICAL_COLUMNS + extra]
