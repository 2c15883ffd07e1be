"""One file's text columns to the typed canonical columns of :mod:`geo_crime.core.schema`.

:func:`convert_raw` takes what a reader returns (a :class:`~geo_crime.ingest.readers.RawRead`)
and builds the canonical columns field by field: the record number (or a synthetic id, see
:func:`~geo_crime.ingest.ids.synthetic_incident_ids`), when (the dates parsed by
:mod:`geo_crime.ingest.dates`), where, what, who and how. LAPD columns repeat heavily, so each
conversion runs once per distinct value and is spread back to the rows (``_Distinct``);
``_Converter`` turns one text column into numbers, timestamps, text or categories and records the
values that fail.

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

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geo_crime.core import schema
from geo_crime.core.errors import InputError, SchemaError
from geo_crime.ingest import nibrs as nibrs_text
from geo_crime.ingest.cleaning import (
    AGE_GROUPS,
    LA_COUNTY_BBOX,
    BadRow,
    CleaningReport,
    FileSummary,
)
from geo_crime.ingest.dates import FIRST_STAMP, LAST_STAMP, NULL_STAMP, parse_datetimes
from geo_crime.ingest.ids import synthetic_incident_ids
from geo_crime.ingest.readers import RawRead
from geo_crime.ingest.severity import crime_code_lookup

#: Whole numbers of up to 18 digits always fit an int64; longer ones are out of range.
_INT_PATTERN = r"^-?\d{1,18}$"
_LONG_INT_PATTERN = r"^-?\d{19,}$"
_FLOAT_PATTERN = r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"

#: A required column whose values fail to parse in more than this share of rows is a file error.
_COLUMN_FAILURE_SHARE = 0.5


@dataclass
class _Distinct:
    """A text column split into its distinct values and, per row, the index of its value.

    LAPD columns repeat heavily (about 1,800 distinct ``DATE OCC`` strings in a million rows), so
    every conversion runs on the distinct values only and is spread back with one ``take``.
    """

    values: pa.Array
    codes: np.ndarray  # int64, -1 = null

    @classmethod
    def of(cls, arr: pa.Array | pa.ChunkedArray) -> _Distinct:
        if isinstance(arr, pa.ChunkedArray):
            if pa.types.is_dictionary(arr.type):
                arr = arr.unify_dictionaries()
                if arr.num_chunks == 0:
                    return cls(pa.array([], pa.string()), np.zeros(0, dtype=np.int64))
                dictionary = arr.chunk(0).dictionary
                codes = np.concatenate(
                    [pc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False) for c in arr.chunks]
                ).astype(np.int64)
                return cls(dictionary.cast(pa.string()), codes)
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            encoded = arr
        else:
            encoded = pc.dictionary_encode(arr.cast(pa.string()))
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        return cls(encoded.dictionary.cast(pa.string()), codes)

    def rows(self, mask_of_values: np.ndarray) -> np.ndarray:
        """Spread a per-value boolean mask to rows (null rows are False)."""
        padded = np.append(mask_of_values, False)
        return padded[self.codes]

    def spread(self, per_value: np.ndarray, fill: object) -> np.ndarray:
        """Spread a per-value numpy array to rows, ``fill`` for null rows."""
        padded = np.append(per_value, np.array([fill], dtype=per_value.dtype))
        return padded[self.codes]

    def first_row(self, value_index: np.ndarray) -> np.ndarray:
        """For each value index, the first row holding it."""
        order = np.argsort(self.codes, kind="stable")
        starts = np.searchsorted(self.codes[order], value_index)
        return order[starts]


class _Converter:
    """Turns the text columns of one :class:`RawRead` into typed pandas columns.

    Bad values of required fields mark their row bad (listed with file and line, then left out);
    bad values of optional fields become null and are counted as fixed.
    """

    def __init__(self, raw: RawRead, report: CleaningReport, *, on_bad_rows: str) -> None:
        self.raw = raw
        self.report = report
        self.on_bad_rows = on_bad_rows
        self.bad = np.zeros(raw.n_rows, dtype=bool)
        self._cache: dict[str, _Distinct] = {}

    def has(self, name: str) -> bool:
        return name in self.raw.fields

    def distinct(self, name: str) -> _Distinct:
        if name not in self._cache:
            self._cache[name] = _Distinct.of(self.raw.fields[name])
        return self._cache[name]

    def flag(
        self, rows: np.ndarray, column: str, values: list[str], reason: str, *, required: bool
    ) -> None:
        """Record failed values: required -> row listed and left out; optional -> nulled.

        ``rows`` is a boolean mask over rows, ``values`` the text of each row (lazily indexed).
        """
        count = int(rows.sum())
        if not count:
            return
        source_col = _source_column(self.raw, column)
        if not required:
            key = f"{source_col}: {reason}"
            self.report.values_nulled[key] = self.report.values_nulled.get(key, 0) + count
            return
        idx = np.flatnonzero(rows)
        first = int(idx[0])
        where = f"line {self.raw.line_numbers[first]}"
        share = count / max(self.raw.n_rows, 1)
        if share > _COLUMN_FAILURE_SHARE and self.raw.n_rows >= 4:
            raise SchemaError(
                f"{self.raw.path}: column {source_col}: {share:.0%} of values {reason} "
                f"(e.g. {values[first]!r} on {where}); wrong column order or a different export?"
            )
        if self.on_bad_rows == "raise":
            raise InputError(
                f"{self.raw.path}: {where}: column {source_col}: {values[first]!r} {reason}"
            )
        self.bad |= rows
        for i in idx[:200]:
            self.report.add_bad_row(
                BadRow(
                    file=str(self.raw.path),
                    line=int(self.raw.line_numbers[i]),
                    column=source_col,
                    value=str(values[int(i)])[:80],
                    reason=reason,
                )
            )
        by_column = self.report.rows_unparseable_by_column
        by_column[source_col] = by_column.get(source_col, 0) + count

    def _row_text(self, name: str) -> _RowText:
        return _RowText(self.distinct(name))

    def _check_missing(self, name: str) -> None:
        d = self.distinct(name)
        empty = np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(d.values), ""), True))
        missing = (d.codes < 0) | d.rows(empty)
        self.flag(missing, name, self._row_text(name), "is missing", required=True)

    def check_missing(self, name: str) -> None:
        """Mark rows where the required text field ``name`` is null or blank as bad."""
        self._check_missing(name)

    def count_nulled(self, rows: np.ndarray, name: str, reason: str) -> None:
        """Count the rows (a boolean mask) whose optional field ``name`` is read as null."""
        self.flag(rows, name, [], reason, required=False)

    def identifier(self, name: str) -> pd.api.extensions.ExtensionArray:
        """A required identifier as trimmed text; rows without one are marked bad."""
        self.check_missing(name)
        return self.strings(name)

    def number_values(
        self, name: str, *, integer: bool, required: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-row numbers (float64 or int64) and a validity mask."""
        d = self.distinct(name)
        text = pc.utf8_trim_whitespace(d.values)
        pattern = _INT_PATTERN if integer else _FLOAT_PATTERN
        ok = np.asarray(pc.fill_null(pc.match_substring_regex(text, pattern), False))
        empty = np.asarray(pc.fill_null(pc.equal(text, ""), False))
        bad_values = ~ok & ~empty
        if integer:
            too_long = np.asarray(
                pc.fill_null(pc.match_substring_regex(text, _LONG_INT_PATTERN), False)
            )
            if too_long.any():
                self.flag(
                    d.rows(too_long),
                    name,
                    self._row_text(name),
                    "is out of range",
                    required=required,
                )
                bad_values &= ~too_long
        clean = pc.if_else(pa.array(ok), text, pa.scalar(None, pa.string()))
        target = pa.int64() if integer else pa.float64()
        per_value = pc.cast(clean, target)
        valid_values = np.asarray(pc.is_valid(per_value))
        numbers = pc.fill_null(per_value, 0).to_numpy(zero_copy_only=False)
        if bad_values.any():
            reason = "is not a whole number" if integer else "is not a number"
            self.flag(d.rows(bad_values), name, self._row_text(name), reason, required=required)
        if required:
            self._check_missing(name)
        return d.spread(numbers, 0), d.rows(valid_values)

    def integer(
        self, name: str, dtype: str = "Int16", *, required: bool = False
    ) -> pd.arrays.IntegerArray:
        """A nullable integer column (``Int8``/``Int16``/``Int64``)."""
        np_type = pd.api.types.pandas_dtype(dtype).numpy_dtype
        if not self.has(name):
            n = self.raw.n_rows
            return pd.arrays.IntegerArray(np.zeros(n, dtype=np_type), np.ones(n, dtype=bool))
        values, valid = self.number_values(name, integer=True, required=required)
        info = np.iinfo(pd.api.types.pandas_dtype(dtype).numpy_dtype)
        fits = (values >= info.min) & (values <= info.max)
        if (valid & ~fits).any():
            self.flag(
                valid & ~fits, name, self._row_text(name), "is out of range", required=required
            )
            valid &= fits
        return pd.arrays.IntegerArray(np.where(valid, values, 0).astype(np_type), ~valid)

    def real(self, name: str, *, required: bool = False) -> np.ndarray:
        """A float64 column, NaN where missing."""
        if not self.has(name):
            return np.full(self.raw.n_rows, np.nan)
        values, valid = self.number_values(name, integer=False, required=required)
        return np.where(valid, values, np.nan)

    def timestamp(self, name: str, *, required: bool) -> np.ndarray:
        """Parse a date/time text column (see :func:`parse_datetimes`) to ``datetime64[s]``."""
        if not self.has(name):
            return np.full(self.raw.n_rows, np.datetime64("NaT"), dtype="datetime64[s]")
        d = self.distinct(name)
        parsed, bad = parse_datetimes(d.values)
        seconds = pc.fill_null(parsed.cast(pa.int64()), NULL_STAMP).to_numpy(zero_copy_only=False)
        self.flag(
            d.rows(bad),
            name,
            self._row_text(name),
            "is not a date in a known format",
            required=required,
        )
        # pandas keeps nanoseconds: a year such as 0001 or 9999 cannot be held (and would wrap)
        stamps = seconds.astype("datetime64[s]")
        unrepresentable = (seconds != NULL_STAMP) & ((stamps < FIRST_STAMP) | (stamps > LAST_STAMP))
        if unrepresentable.any():
            self.flag(
                d.rows(unrepresentable),
                name,
                self._row_text(name),
                f"is not a date between {FIRST_STAMP.astype('datetime64[D]')} and "
                f"{LAST_STAMP.astype('datetime64[D]')}",
                required=required,
            )
            seconds = np.where(unrepresentable, NULL_STAMP, seconds)
        if required:
            self._check_missing(name)
        return d.spread(seconds.astype(np.int64), NULL_STAMP).view("datetime64[s]")

    def strings(
        self, name: str, *, squeeze: bool = False, upper: bool = False
    ) -> pd.api.extensions.ExtensionArray:
        """A text column (trimmed; ``squeeze`` folds runs of spaces, as in LAPD addresses;
        ``upper`` upper-cases, for codes such as ``13a``)."""
        if not self.has(name):
            return pd.arrays.ArrowStringArray(
                pa.chunked_array([pa.nulls(self.raw.n_rows, pa.string())])
            )
        d = self.distinct(name)
        text = pc.utf8_trim_whitespace(d.values)
        if squeeze:
            text = pc.replace_substring_regex(text, r"\s{2,}", " ")
        if upper:
            text = pc.utf8_upper(text)
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        indices = pa.array(d.codes, mask=d.codes < 0)
        return pd.arrays.ArrowStringArray(pa.chunked_array([pc.take(text, indices)]))

    def category(self, name: str, *, upper: bool = False) -> pd.Categorical:
        """A low-cardinality text column as a pandas Categorical (trimmed, empty = null;
        ``upper`` upper-cases)."""
        if not self.has(name):
            return pd.Categorical([None] * self.raw.n_rows)
        d = self.distinct(name)
        text = pc.utf8_trim_whitespace(d.values)
        if upper:
            text = pc.utf8_upper(text)
        return _categorical(np.asarray(pc.fill_null(text, "").to_pylist(), dtype=object), d.codes)

    def yes_no(self, name: str) -> pd.arrays.BooleanArray:
        """A yes/no flag (``Yes``/``No``, ``Y``/``N``, ``true``/``false``, ``1``/``0``, any case)
        as a nullable boolean; other values become null and are counted."""
        n = self.raw.n_rows
        if not self.has(name):
            return pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool))
        d = self.distinct(name)
        truthy, falsy, blank = nibrs_text.yes_no_values(d.values)
        self.flag(
            d.rows(~truthy & ~falsy & ~blank),
            name,
            self._row_text(name),
            "is not yes or no",
            required=False,
        )
        return pd.arrays.BooleanArray(d.rows(truthy), ~d.rows(truthy | falsy))


def _categorical(per_value_text: np.ndarray, codes: np.ndarray) -> pd.Categorical:
    """Build a Categorical from per-value text (may repeat after trimming) and row codes."""
    if len(per_value_text) == 0:
        return pd.Categorical.from_codes(np.full(len(codes), -1), categories=[])
    categories, inverse = np.unique(per_value_text.astype(str), return_inverse=True)
    keep = categories != ""
    remap = np.where(keep, np.cumsum(keep) - 1, -1)[inverse]
    row_codes = np.append(remap, -1)[codes]
    return pd.Categorical.from_codes(row_codes, categories=categories[keep])


class _RowText:
    """Lazy per-row text for error messages (only the few rows reported are materialised)."""

    def __init__(self, distinct: _Distinct) -> None:
        self.distinct = distinct

    def __getitem__(self, row: int) -> str | None:
        code = int(self.distinct.codes[row])
        return None if code < 0 else self.distinct.values[code].as_py()


_SOURCE_NAMES = {
    schema_name: {v: k for k, v in table.items()}
    for schema_name, table in (
        ("official", schema.OFFICIAL_COLUMNS),
        ("modified", schema.OFFICIAL_COLUMNS),
        ("api", schema.API_COLUMNS),
        ("reduced_2024", schema.REDUCED_2024_COLUMNS),
        ("nibrs", schema.NIBRS_COLUMNS),
    )
}


def _source_column(raw: RawRead, field_name: str) -> str:
    """The file's own name of a field (its schema's name when the reader did not say)."""
    known = raw.source_names.get(field_name)
    return known or _SOURCE_NAMES.get(raw.schema_name, {}).get(field_name, field_name)


def convert_raw(
    raw: RawRead, report: CleaningReport, *, on_bad_rows: str = "report"
) -> pd.DataFrame:
    """Convert one file's text columns to the canonical schema (typed, bad rows left out).

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
    n = raw.n_rows
    reduced = raw.schema_name == "reduced_2024"
    nibrs = raw.schema_name == "nibrs"
    cols: dict[str, object] = {}

    # identifiers: the record number, or a synthetic id where the source has none; a NIBRS
    # offence row is identified by its case (``caseno``, as published), every offence alike
    if nibrs:
        ident = nibrs_text.arrow_text(conv.identifier("case_id"))
    elif conv.has("incident_id"):
        ident = raw.fields["incident_id"]
        if isinstance(ident, pa.ChunkedArray):
            ident = ident.combine_chunks()
        ident = ident.cast(pa.string())
        ok = pc.fill_null(pc.match_substring_regex(ident, r"^\d{1,12}$"), True)
        if not pc.all(ok).as_py():
            ident = pc.utf8_trim_whitespace(ident)
            ok = np.asarray(pc.fill_null(pc.match_substring_regex(ident, r"^\d{1,12}$"), True))
            conv.flag(
                ~ok, "incident_id", ident.to_pylist(), "is not a record number", required=True
            )
        ident = pc.utf8_lpad(ident, 9, "0")
    else:
        ident = pa.nulls(n, pa.string())
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
    cols["incident_id"] = pd.arrays.ArrowStringArray(pa.chunked_array([ident]))
    cols["incident_id_synthetic"] = synthetic

    # when: DATE OCC is midnight in every real export; TIME OCC is HHMM with stripped zeros
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
    cols["occurred_at"] = (day.astype("datetime64[s]") + offset.astype("timedelta64[s]")).astype(
        "datetime64[ns]"
    )
    cols["time_known"] = known
    cols["time_class"] = _time_classes(conv, known, offset)
    cols["reported_at"] = conv.timestamp("reported_at", required=False).astype("datetime64[ns]")

    # where (administrative)
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
    if conv.has("area"):
        area = conv.integer("area", "Int64", required=True).to_numpy(dtype=np.int64, na_value=-1)
    elif conv.has("aprec"):
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
    else:
        area = np.where(rd_values >= 0, rd_values // 100, -1)
    out_of_range = (area != -1) & ~np.isin(area, schema.DIVISIONS)
    if out_of_range.any():
        conv.flag(
            out_of_range, "area", [str(a) for a in area], "is not an LAPD area 1-21", required=True
        )
    area = np.where(out_of_range, -1, area)
    cols["area"] = pd.arrays.IntegerArray(np.maximum(area, 0).astype(np.int8), area < 0)
    names_by_area = np.array([schema.AREA_NAMES.get(i, "") for i in range(22)], dtype=object)
    cols["area_name"] = _categorical(names_by_area, area)
    report.district_outside_area += int(
        ((rd_values >= 0) & (area > 0) & (rd_values // 100 != area)).sum()
    )

    # what
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
        crm = pd.arrays.IntegerArray(np.maximum(crm_values, 0).astype(np.int16), crm_values < 0)
    cols["crm_cd_desc"] = desc
    cols["crm_cd"] = crm
    part = conv.integer("part", "Int8")
    if part.isna().any() and not nibrs:
        fill = pd.Series(crm).map(lookup.part_by_code).astype("Int8").array
        part = pd.Series(part).fillna(pd.Series(fill)).astype("Int8").array
    cols["part"] = part
    for k in (2, 3, 4):
        cols[f"crm_cd_{k}"] = conv.integer(f"crm_cd_{k}")
    cols["mocodes"] = conv.strings("mocodes")

    # who (victim)
    if reduced:
        cols["vict_age"] = pd.array([pd.NA] * n, dtype="Int16")
        bands = conv.category("age_category")
        cols["vict_age_group"] = (
            pd.Series(bands)
            .map(schema.REDUCED_AGE_GROUPS)
            .fillna("unknown")
            .astype(object)
            .to_numpy()
        )
        cols["vict_sex"] = pd.Categorical(
            pd.Series(conv.category("vict_sex")).map(schema.REDUCED_SEX_CODES).astype(object)
        )
        cols["vict_descent"] = pd.Categorical([None] * n)
    else:
        cols["vict_age"] = conv.integer("vict_age")
        cols["vict_age_group"] = pd.Categorical.from_codes(  # set by the age policy
            np.full(n, -1, dtype=np.int8), categories=AGE_GROUPS
        )
        cols["vict_sex"] = conv.category("vict_sex")
        cols["vict_descent"] = conv.category("vict_descent")

    # how / status / address
    cols["premis_cd"] = conv.integer("premis_cd")
    cols["premis_desc"] = conv.category("premis_desc")
    nibrs_weapon = conv.strings("nibrs_weapon_cd", upper=True)
    if reduced:
        cols["weapon_cd"] = pd.array([pd.NA] * n, dtype="Int16")
        cols["weapon_desc"] = pd.Categorical([None] * n)
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
    cols["status"] = conv.category("status")
    cols["status_desc"] = conv.category("status_desc")
    if nibrs:
        cols["status_desc"], unknown_status = nibrs_text.status_descriptions(
            cols["status"], cols["status_desc"]
        )
        conv.count_nulled(
            unknown_status, "status", "has no description and is not in nibrs_status.csv"
        )
    cols["location"] = conv.strings("location", squeeze=True)
    cols["cross_street"] = conv.strings("cross_street", squeeze=True)
    lat = conv.real("lat", required=True)
    lon = conv.real("lon", required=True)
    lat, lon = _unswap_coordinates(lat, lon, raw, report)
    cols["lat"], cols["lon"] = lat, lon
    cols["source"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [raw.schema_name])
    cols["source_file"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [raw.path.name])
    cols["source_line"] = pd.arrays.IntegerArray(
        raw.line_numbers.astype(np.int64), np.zeros(n, dtype=bool)
    )
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
    report.synthetic_ids += int(frame["incident_id_synthetic"].sum())
    report.add_file(
        FileSummary(
            path=str(raw.path),
            schema=raw.schema_name,
            rows_read=n + len(raw.bad_rows),
            rows_kept=len(frame),
        )
    )
    for row in raw.bad_rows:
        report.add_bad_row(row)
    if raw.bad_rows:
        by_column = report.rows_unparseable_by_column
        by_column["*"] = by_column.get("*", 0) + len(raw.bad_rows)
    return frame


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
