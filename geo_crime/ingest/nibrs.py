"""What only the LAPD NIBRS offences form needs when its text is typed (used by ``convert``).

A NIBRS offences file (schema ``nibrs``) takes its ``incident_id`` and ``case_id`` from
``caseno`` and its ``offense_id`` from ``uniquenibrno``, both exactly as published (``25245851``
and ``25245851_290_0``), keeps its FBI offence code in ``nibrs_code`` (``crm_cd`` stays NA; a
blank code is kept as an unknown offence and counted), its display label in ``crm_cd_desc``
(:func:`offence_labels`) and its penal-code string in ``nibrs_description``, its premise code as
text in ``nibrs_premis_cd`` (LAPD's NIBRS premise list, ``RA``, ``32``: not the legacy
``premis_cd``), its weapon code as text in ``nibrs_weapon_cd`` and, when the code is a plain
integer, in ``weapon_cd`` too (:func:`weapon_columns`), fills a missing status description from
:func:`status_table` (:func:`status_descriptions`), reads ``time_occ`` ``0000`` and ``1200`` as
unknown times (:data:`UNKNOWN_TIMES`) and parses its ``Yes`` / ``No`` flags
(:func:`yes_no_values`). :func:`records_system_columns` builds the NIBRS-only columns for any
file: a legacy file gets their legacy values (``case_id`` and ``offense_id`` = ``incident_id``,
NA elsewhere; see :mod:`geo_crime.core.schema`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geo_crime.core import schema
from geo_crime.ingest.severity import nibrs_severity_table

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


def status_table() -> pd.DataFrame:
    """The NIBRS status codes whose description is known (``geo_crime/data/nibrs_status.csv``).

    Returns
    -------
    pandas.DataFrame
        Text columns ``status`` (``14``), ``status_desc`` (``Cleared by Arrest - CA Filed``) and
        ``source``, one row per code.
    """
    return _status_table().copy()


@lru_cache(maxsize=1)
def _status_table() -> pd.DataFrame:
    with resources.files("geo_crime.data").joinpath("nibrs_status.csv").open("rb") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False, na_values=[""])


def status_descriptions(
    status: pd.Categorical, published: pd.Categorical
) -> tuple[pd.Categorical, np.ndarray]:
    """NIBRS status descriptions: the published one, else the one :func:`status_table` knows.

    Parameters
    ----------
    status
        The rows' status codes as written (``14``, ``40``).
    published
        The rows' published ``status_desc`` (NA where the source left it out).

    Returns
    -------
    (pandas.Categorical, numpy.ndarray)
        The descriptions, and which rows have a status code missing from the table and no
        published description (their description stays NA).

    Examples
    --------
    >>> import pandas as pd
    >>> desc, unknown = status_descriptions(
    ...     pd.Categorical(["14", "40", "97", None]),
    ...     pd.Categorical(["Cleared by Arrest - CA Filed", None, None, None]))
    >>> list(desc), unknown.tolist()
    (['Cleared by Arrest - CA Filed', 'Investigation Continued', nan, nan], \
[False, False, True, False])
    """
    table = _status_table()
    known = dict(zip(table["status"], table["status_desc"], strict=True))
    codes = pd.Series(status, dtype=object)
    filled = pd.Series(published, dtype=object).fillna(codes.map(known))
    unknown = (filled.isna() & codes.notna()).to_numpy(dtype=bool)
    return pd.Categorical(filled), unknown


def offence_labels(
    codes: pd.api.extensions.ExtensionArray, descriptions: pd.api.extensions.ExtensionArray
) -> pd.Categorical:
    """Display labels of NIBRS offences: the FBI offence name of each code.

    A code missing from the NIBRS code table
    (:func:`geo_crime.ingest.severity.nibrs_severity_table`) keeps its published description; a row
    without a code and description has none.

    Examples
    --------
    >>> import pandas as pd
    >>> labels = offence_labels(
    ...     pd.array(["240", "99X", None], dtype="string"),
    ...     pd.array(["487(D)(1) - PC - F - Grand Theft Auto - GTA  - 240",
    ...               "123 - PC - M - Something New - 99X", None], dtype="string"))
    >>> list(labels)
    ['Motor Vehicle Theft', '123 - PC - M - Something New - 99X', nan]
    """
    table = nibrs_severity_table()
    names = dict(zip(table["nibrs_code"], table["nibrs_desc"], strict=True))
    label = pd.Series(codes, dtype=object).map(names)
    return pd.Categorical(label.fillna(pd.Series(descriptions, dtype=object)))


#: ``time_occ`` values that stand for an unknown time of day in the NIBRS set (``0000`` in
#: about 2.7% of rows, ``1200`` in 2.3%): read as ``time_known`` False.
UNKNOWN_TIMES: tuple[int, ...] = (0, 1200)


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
    """The typed views of one file's text columns this module uses (``columns._Converter``)."""

    def identifier(self, name: str) -> pd.api.extensions.ExtensionArray: ...
    def strings(self, name: str, *, upper: bool = False) -> pd.api.extensions.ExtensionArray: ...
    def category(self, name: str, *, upper: bool = False) -> pd.Categorical: ...
    def integer(self, name: str) -> pd.arrays.IntegerArray: ...
    def yes_no(self, name: str) -> pd.arrays.BooleanArray: ...
    def count_nulled(self, rows: np.ndarray, name: str, reason: str) -> None: ...


def records_system_columns(
    columns: TextColumns,
    *,
    nibrs: bool,
    incident_ids: pd.api.extensions.ExtensionArray,
    weapon_text: pd.api.extensions.ExtensionArray,
) -> dict[str, object]:
    """The columns of :data:`geo_crime.core.schema.RECORDS_SYSTEM_COLUMNS` for one file.

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
        Column name -> values, in canonical order. A NIBRS row without ``uniquenibrno`` is
        marked bad; one with a blank ``nibr_code`` is kept with an unknown offence
        (``nibrs_code`` NA) and counted in the report's nulled values.
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
        blank = np.asarray(pd.isna(out["nibrs_code"]), dtype=bool)
        columns.count_nulled(blank, "nibrs_code", "is blank (offence unknown, row kept)")
    out["nibrs_group"] = (
        columns.category("nibrs_group", upper=True) if nibrs else empty_categorical(n_rows)
    )
    out["nibrs_weapon_cd"] = weapon_text
    out["crime_against"] = columns.category("crime_against") if nibrs else empty_categorical(n_rows)
    out["nibrs_premis_cd"] = columns.strings("nibrs_premis_cd", upper=True)
    out["nibrs_description"] = columns.strings("nibrs_description")
    out["victim_count"] = columns.integer("victim_count")
    for flag in schema.NIBRS_FLAG_COLUMNS:
        out[flag] = columns.yes_no(flag)
    return out
