"""One text column of a file, typed: the converter :mod:`geo_crime.ingest.convert` builds on.

A :class:`~geo_crime.ingest.readers.RawRead` holds every field as text. LAPD columns repeat
heavily, so each conversion runs once per distinct value and is spread back to the rows
(``_Distinct``); ``_Converter`` turns one text column into numbers, timestamps, text, categories
or yes/no flags and records the values that fail:

* a value that does not parse in a required field marks its row bad: the row is listed with its
  file, line and column in the :class:`~geo_crime.ingest.cleaning.CleaningReport` and left out
  (or, with ``on_bad_rows="raise"``, the first one raises an
  :class:`~geo_crime.core.errors.InputError`);
* a bad optional value becomes null and is counted;
* a column that fails in most rows is a :class:`~geo_crime.core.errors.SchemaError`: the file is
  another export or its columns are out of order.

Messages name a field by the file's own column name (``_source_column``). Which field becomes
which canonical column is :func:`geo_crime.ingest.convert.convert_raw`.
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
from geo_crime.ingest.cleaning import BadRow, CleaningReport
from geo_crime.ingest.dates import FIRST_STAMP, LAST_STAMP, NULL_STAMP, parse_datetimes
from geo_crime.ingest.readers import RawRead

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
