"""LAPD date and time text to timestamps, vectorised, in every format the exports have used.

The official export writes ``01/08/2020 12:00:00 AM``, its spreadsheet re-save ``1/8/2020 0:00``
in the same column, the API and the 2024 files ISO ``2020-01-08T00:00:00.000``.
:func:`parse_datetimes` tries :data:`DATETIME_FORMATS` in order on the values still unparsed,
with ``pyarrow.compute`` (no per-row Python), and rejects impossible dates such as ``02/30/2020``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Datetime formats tried in order; the first two are the official export and its spreadsheet
#: re-save, then the modified export, then ISO forms from the API and the 2024 files.
DATETIME_FORMATS: tuple[str, ...] = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
)

#: The day of the month as written, in the slash (``M/D/YYYY``) or ISO (``YYYY-MM-DD``) forms.
_DAY_PATTERN = r"^(?:\d{1,2}/(?P<slash>\d{1,2})/|\d{4}-\d{1,2}-(?P<iso>\d{1,2}))"

#: Stands for a missing value in arrays of seconds since the epoch.
NULL_STAMP = np.iinfo(np.int64).min

#: Whole days a ``datetime64[ns]`` column holds at any time of day; dates outside are bad values.
FIRST_STAMP = np.datetime64("1677-09-22T00:00:00", "s")
LAST_STAMP = np.datetime64("2262-04-10T00:00:00", "s")


def parse_datetimes(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Parse LAPD date/time text in any of :data:`DATETIME_FORMATS`, vectorised.

    Formats are tried in order on the values still unparsed (``pyarrow.compute.strptime``), so a
    column mixing ``01/08/2020 12:00:00 AM`` and ``01/08/2020 00:00`` parses in two passes. ISO
    values may carry fractional seconds (``2020-01-08T00:00:00.000``), which are dropped.
    Impossible dates (``02/30/2020``) are rejected rather than rolled over to March.

    Parameters
    ----------
    arr
        Text values (nulls allowed).

    Returns
    -------
    (pyarrow.Array, numpy.ndarray)
        ``timestamp[s]`` values (null where missing or bad) and a boolean mask of the values that
        were present but matched no format.

    Examples
    --------
    >>> import pyarrow as pa
    >>> values, bad = parse_datetimes(pa.array(["01/08/2020 12:00:00 AM", "4/28/2020 0:00",
    ...                                         "2020-01-08T13:05:00.000", "02/30/2020 0:00"]))
    >>> [str(v) for v in values.to_pylist()]
    ['2020-01-08 00:00:00', '2020-04-28 00:00:00', '2020-01-08 13:05:00', 'None']
    >>> bad.tolist()
    [False, False, False, True]
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    n = len(arr)
    present = np.asarray(pc.fill_null(pc.not_equal(arr, ""), False))
    seconds = np.full(n, NULL_STAMP, dtype=np.int64)
    todo = present.copy()
    for fmt in DATETIME_FORMATS:
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        subset = arr if len(idx) == n else arr.take(pa.array(idx))
        if fmt.startswith("%Y"):
            subset = pc.utf8_slice_codeunits(subset, 0, 19)
        parsed = pc.strptime(subset, format=fmt, unit="s", error_is_null=True)
        if parsed.null_count == len(parsed):
            continue
        ok = np.asarray(pc.is_valid(parsed))
        values = pc.fill_null(parsed.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        hit = idx[ok]
        seconds[hit] = values[ok].astype(np.int64)
        todo[hit] = False
    # strptime rolls 02/30 over to 03/01: such results land on day 1-3, so only those are checked
    parsed_mask = seconds != NULL_STAMP
    stamps = np.where(parsed_mask, seconds, 0).astype("datetime64[s]")
    day_of_month = (stamps.astype("datetime64[D]") - stamps.astype("datetime64[M]")).astype(
        np.int64
    ) + 1
    suspects = np.flatnonzero(parsed_mask & (day_of_month <= 3))
    if len(suspects):
        days = pc.extract_regex(arr.take(pa.array(suspects)), _DAY_PATTERN)
        slash_day = pc.struct_field(days, "slash")
        day_text = pc.if_else(pc.equal(slash_day, ""), pc.struct_field(days, "iso"), slash_day)
        written = pc.fill_null(pc.cast(day_text, pa.int64()), 0).to_numpy(zero_copy_only=False)
        rolled = suspects[written != day_of_month[suspects]]
        seconds[rolled] = NULL_STAMP
        todo[rolled] = True
    out = pa.array(seconds, type=pa.int64(), mask=seconds == NULL_STAMP).cast(pa.timestamp("s"))
    return out, todo
