"""Stable synthetic incident ids for records that carry no record number (``DR_NO``).

Used by :mod:`geo_crime.ingest.convert` for the reduced 2024 files, exports mapped without an id
column and blank ``DR_NO`` values; see :func:`synthetic_incident_ids`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import xxhash

#: First character of every synthetic incident id: a letter, so one never equals a ``DR_NO``
#: (which is all digits).
SYNTHETIC_ID_PREFIX = "S"

#: How many hex digits of the xxh3-64 hash a synthetic incident id keeps (60 bits).
SYNTHETIC_ID_HEX_DIGITS = 15


def synthetic_incident_ids(
    source_file: str | os.PathLike, source_lines: Iterable[int]
) -> list[str]:
    """Stable ids for records that carry no record number (``DR_NO``).

    The id of a record is ``"S"`` followed by the first 15 hex digits of the xxh3-64 hash (seed 0)
    of ``"{file name}:{source_line}"`` in UTF-8. Only the file's name counts, not its folder, so
    the same file gives the same ids on every machine and run. The id follows the record's
    position, not its content: a corrected value keeps the id, a record moved within the file (or
    a file renamed) gets a new one, and two different files with the same name share ids. The
    leading letter keeps synthetic ids apart from real record numbers, which are digits only.

    Parameters
    ----------
    source_file
        The file the records come from (a path or a name; only the name is used).
    source_lines
        The records' ``source_line`` values: the 1-based record number in a JSON file, the line
        number in a CSV file.

    Returns
    -------
    list of str
        One 16-character id per record, in the order given.

    Examples
    --------
    >>> synthetic_incident_ids("/any/folder/Crime_Data_CENTRAL.json.gz", [1, 2])
    ['Sbda0cc2a62c6573', 'S63eba91450d22fe']
    >>> synthetic_incident_ids("Crime_Data_CENTRAL.json.gz", [1])
    ['Sbda0cc2a62c6573']
    """

    name = Path(source_file).name
    hexdigest = xxhash.xxh3_64_hexdigest
    return [
        SYNTHETIC_ID_PREFIX + hexdigest(f"{name}:{int(line)}".encode())[:SYNTHETIC_ID_HEX_DIGITS]
        for line in source_lines
    ]
