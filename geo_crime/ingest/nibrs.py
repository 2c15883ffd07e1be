"""What only the LAPD NIBRS offences form needs when its text is typed (used by ``convert``).

A NIBRS offences file (schema ``nibrs``) takes its ``incident_id`` and ``case_id`` from
``caseno`` (:func:`case_numbers`) and its ``offense_id`` from ``uniquenibrno``, keeps its FBI
offence code in ``nibrs_code`` (``crm_cd`` stays NA), its weapon code as text in
``nibrs_weapon_cd`` and, when the code is a plain integer, in ``weapon_cd`` too
(:func:`weapon_columns`), and parses its ``Yes`` / ``No`` flags (:func:`yes_no_values`).
:func:`records_system_columns` builds those columns for any file: a legacy file gets their legacy
values (``case_id`` and ``offense_id`` = ``incident_id``, NA elsewhere; see
:mod:`geo_crime.schema`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geo_crime import schema

#: Spellings of a yes/no flag, compared in lower case.
YES_VALUES: tuple[str, ...] = ("yes", "y", "true", "1")
NO_VALUES: tuple[str, ...] = ("no", "n", "false", "0")

#: The FBI NIBRS weapon code for "None" (no weapon): such a row has ``weapon_used`` False.
NO_WEAPON_CODE = "99"


def arrow_text(values: pd.api.extensions.ExtensionArray) -> pa.Array:
    """A pandas text array as one Arrow ``string`` array."""
    arrow = pa.array(values)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    return arrow.cast(pa.string())


def case_numbers(case_text: pd.api.extensions.ExtensionArray) -> pa.Array:
    """NIBRS case numbers as incident ids: all-digit ones zero-padded to 9 (the DR_NO layout).

    Examples
    --------
    >>> import pandas as pd
    >>> case_numbers(pd.array(["250310000", "1234", "LA-25-77", None], dtype="string")).to_pylist()
    ['250310000', '000001234', 'LA-25-77', None]
    """
    text = arrow_text(case_text)
    digits = pc.fill_null(pc.match_substring_regex(text, r"^\d{1,8}$"), False)
    return pc.if_else(digits, pc.utf8_lpad(text, 9, "0"), text)


def weapon_columns(
    weapon_text: pd.api.extensions.ExtensionArray,
) -> tuple[pd.arrays.IntegerArray, pd.arrays.BooleanArray]:
    """``weapon_cd`` and ``weapon_used`` of NIBRS rows from their weapon code text.

    Parameters
    ----------
    weapon_text
        The trimmed, upper-cased ``weapon_used_cd`` text (``nibrs_weapon_cd``), NA where none.

    Returns
    -------
    (pandas.arrays.IntegerArray, pandas.arrays.BooleanArray)
        The code as Int16 where it is a plain integer (``12``, ``400``; NA for ``11A``), and
        whether a weapon was recorded: a code other than :data:`NO_WEAPON_CODE`.
    """
    text = arrow_text(weapon_text)
    plain = pc.fill_null(pc.match_substring_regex(text, r"^\d{1,4}$"), False)
    numbers = pc.cast(pc.if_else(plain, text, pa.scalar(None, pa.string())), pa.int16())
    valid = np.asarray(pc.is_valid(numbers), dtype=bool)
    values = pc.fill_null(numbers, 0).to_numpy(zero_copy_only=False).astype(np.int16)
    recorded = np.asarray(pc.is_valid(text), dtype=bool)
    none = np.asarray(pc.fill_null(pc.equal(text, NO_WEAPON_CODE), False), dtype=bool)
    used = recorded & ~none
    return pd.arrays.IntegerArray(values, ~valid), pd.arrays.BooleanArray(used, np.zeros_like(used))


def yes_no_values(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which text values mean yes, which no, and which are blank (any case, trimmed).

    Examples
    --------
    >>> import pyarrow as pa
    >>> [m.tolist() for m in yes_no_values(pa.array(["Yes", " no", "Unknown", "", None]))]
    [[True, False, False, False, False], [False, True, False, False, False], \
[False, False, False, True, True]]
    """
    text = pc.utf8_lower(pc.utf8_trim_whitespace(values))
    yes = np.asarray(pc.fill_null(pc.is_in(text, pa.array(YES_VALUES)), False), dtype=bool)
    no = np.asarray(pc.fill_null(pc.is_in(text, pa.array(NO_VALUES)), False), dtype=bool)
    blank = np.asarray(pc.fill_null(pc.equal(text, ""), True), dtype=bool)
    return yes, no, blank


def empty_categorical(n_rows: int) -> pd.Categorical:
    """An all-null category column with no categories, in the one form a Parquet file restores
    (see :func:`geo_crime.ingest.cache.restore_empty_categories`): the NIBRS category columns of
    legacy rows, any category column a file leaves empty."""
    return pd.Categorical.from_codes(
        np.full(n_rows, -1, dtype=np.int8), categories=pd.Index([], dtype=object)
    )


class TextColumns(Protocol):
    """The typed views of one file's text columns this module uses (``convert._Converter``)."""

    def identifier(self, name: str) -> pd.api.extensions.ExtensionArray: ...
    def strings(self, name: str, *, upper: bool = False) -> pd.api.extensions.ExtensionArray: ...
    def category(self, name: str, *, upper: bool = False) -> pd.Categorical: ...
    def integer(self, name: str) -> pd.arrays.IntegerArray: ...
    def yes_no(self, name: str) -> pd.arrays.BooleanArray: ...
    def check_missing(self, name: str) -> None: ...


def records_system_columns(
    columns: TextColumns,
    *,
    nibrs: bool,
    incident_ids: pd.api.extensions.ExtensionArray,
    weapon_text: pd.api.extensions.ExtensionArray,
) -> dict[str, object]:
    """The columns of :data:`geo_crime.schema.RECORDS_SYSTEM_COLUMNS` for one file.

    Parameters
    ----------
    columns
        The file's text columns, typed on request.
    nibrs
        Whether the file is a NIBRS offences file (else every NIBRS-only column is NA).
    incident_ids
        The rows' ``incident_id`` (the case number of a NIBRS row), also their ``case_id``.
    weapon_text
        The rows' ``nibrs_weapon_cd``.

    Returns
    -------
    dict
        Column name -> values, in canonical order. A NIBRS row without ``uniquenibrno`` or
        ``nibr_code`` is marked bad.
    """
    n_rows = len(incident_ids)
    system = schema.NIBRS_SYSTEM if nibrs else schema.LEGACY_SYSTEM
    out: dict[str, object] = {
        "source_system": pd.Categorical.from_codes(np.zeros(n_rows, dtype=np.int8), [system]),
        "case_id": incident_ids,
        "offense_id": columns.identifier("offense_id") if nibrs else incident_ids,
        "offense_count": pd.arrays.IntegerArray(
            np.ones(n_rows, dtype=np.int16), np.zeros(n_rows, dtype=bool)
        ),
        "nibrs_code": columns.strings("nibrs_code", upper=True),
    }
    if nibrs:
        columns.check_missing("nibrs_code")
    out["nibrs_group"] = (
        columns.category("nibrs_group", upper=True) if nibrs else empty_categorical(n_rows)
    )
    out["nibrs_weapon_cd"] = weapon_text
    out["crime_against"] = columns.category("crime_against") if nibrs else empty_categorical(n_rows)
    out["victim_count"] = columns.integer("victim_count")
    for flag in schema.NIBRS_FLAG_COLUMNS:
        out[flag] = columns.yes_no(flag)
    return out
