"""What a download of an LAPD data set holds: its rows per month, checked against the set's span.

Each data set of :data:`geo_crime.net.catalogue.DATASETS` holds a known span of occurrence dates
(:data:`SPANS`):

* ``legacy``, "Crime Data from 2020 to 2024" (Socrata ``2nrs-mtv8``), is frozen: 1,004,894 rows,
  occurrences from 2020-01-01 to 2024-12-30;
* ``nibrs``, "LAPD NIBRS Offenses" (``k7nn-b2ep``), holds every NIBRS offence from 2024-03-07
  (LAPD's switch) to about two weeks ago: it is refreshed about every two weeks, 12-14 days
  behind. It has done so only since 2026-08-18; before that day it held the current year's
  reports only, so an older download lacks 2024 and 2025.

Through 2024 the two sets split LAPD's reports between them: a 2024 series needs both. The
retired 2024-25 NIBRS set ``y8y3-fqfu`` answers 403.

After a download, :func:`record_months` counts the rows actually written per month of the date
field (``date_occ`` for both sets), writes the counts beside the file
(``<file>.months.tsv``, atomically: a ``.tsv`` so that a folder of downloads read by
``geo-crime ingest`` or ``run`` is not taken for a crime file) and checks the span. A download
whose span is not what its set holds gets a warning (:attr:`MonthCounts.warnings`), not an
error: a NIBRS download with no 2024 rows or starting after 2024-03-31, a legacy download ending
before December 2024. A download filtered with ``where`` is not expected to hold the whole span:
what would have been a warning becomes a note saying that the filter may explain it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from geo_crime.core.io_utils import atomic_write_text

__all__ = [
    "SPANS",
    "MonthCounts",
    "Span",
    "count_months",
    "format_month_table",
    "months_path",
    "record_months",
    "span_problems",
]

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class Span:
    """The occurrence dates a data set holds.

    Attributes
    ----------
    date_field
        The field giving a row's occurrence date (``YYYY-MM-DD...`` as the API serves it).
    first
        The first occurrence day the set holds.
    last
        The last one for a frozen set; ``None`` for a set that runs to today.
    rows
        The row count of a frozen set (``None`` for a growing one).
    """

    date_field: str
    first: date
    last: date | None = None
    rows: int | None = None


#: The span of each data set of :data:`geo_crime.net.catalogue.DATASETS`, by name.
SPANS: Mapping[str, Span] = {
    "legacy": Span("date_occ", date(2020, 1, 1), date(2024, 12, 30), 1_004_894),
    "nibrs": Span("date_occ", date(2024, 3, 7)),
}

#: A legacy download ending before this month misses the end of the frozen set.
_LEGACY_LAST_MONTH = "2024-12"
#: A NIBRS download starting after this day misses the start of the set.
_NIBRS_LATEST_START = date(2024, 3, 31)
#: The day ``k7nn-b2ep`` began holding every NIBRS record from 2024-03-07.
_NIBRS_BACKFILLED = date(2026, 8, 18)


@dataclass(frozen=True)
class MonthCounts:
    """The rows of one downloaded file per month of its date field, and its span check.

    Attributes
    ----------
    dataset
        The data set's name (``legacy``, ``nibrs``).
    socrata_id
        Its Socrata id.
    date_field
        The field counted.
    months
        Rows per month, ``"YYYY-MM"`` to a count, in month order (months without rows left out).
    undated
        Rows whose date field is missing or not an ISO date.
    first, last
        The first and last occurrence day (``YYYY-MM-DD``), ``None`` without dated rows.
    where
        The ``$where`` filter of the download, if any.
    warnings
        Why the span is not what the data set holds (empty without a filter when it is).
    notes
        The same findings for a filtered download, which the filter may explain.
    path
        The ``.months.tsv`` file written beside the download (``None`` when not written).
    """

    dataset: str
    socrata_id: str
    date_field: str
    months: Mapping[str, int]
    undated: int = 0
    first: str | None = None
    last: str | None = None
    where: str | None = None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)

    @property
    def rows(self) -> int:
        """Every row counted, undated ones included."""
        return sum(self.months.values()) + self.undated

    @property
    def label(self) -> str:
        """``name (socrata id)``, the prefix of every line about this download."""
        return f"{self.dataset} ({self.socrata_id})"


def months_path(dest: str | os.PathLike) -> Path:
    """The file beside a download holding its rows per month (``<file>.months.tsv``)."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".months.tsv")


def count_months(path: str | os.PathLike, date_field: str) -> tuple[Counter, int, str, str]:
    """Rows per ``YYYY-MM`` of ``date_field`` in a newline-delimited JSON gzip file.

    Returns
    -------
    tuple
        The counts per month, the rows without an ISO date in ``date_field``, and the first and
        last day seen (``""`` when no row has a date).
    """
    months: Counter = Counter()
    undated = 0
    first = last = ""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            value = json.loads(line).get(date_field)
            match = _ISO_DAY.match(value) if isinstance(value, str) else None
            if match is None:
                undated += 1
                continue
            day = match.group(0)
            months[day[:7]] += 1
            if not first or day < first:
                first = day
            if day > last:
                last = day
    return months, undated, first, last


def span_problems(dataset: str, months: Mapping[str, int], first: str, last: str) -> list[str]:
    """Why the dated rows of a download of ``dataset`` do not span what the set holds.

    ``months`` are the rows per ``YYYY-MM``; ``first`` and ``last`` the first and last day
    (``""`` without dated rows). Data sets without a known span have no problems.
    """
    span = SPANS.get(dataset)
    if span is None:
        return []
    held = f"occurrences from {span.first} to " + (
        f"{span.last} ({span.rows:,} rows)" if span.last else "today"
    )
    problems = []
    if dataset == "legacy" and (not last or last[:7] < _LEGACY_LAST_MONTH):
        ends = f"ends on {last}" if last else "holds no dated rows"
        problems.append(
            f"the download {ends}, but the legacy set is frozen with {held}: "
            "this copy misses its end (an older or partial copy)"
        )
    if dataset == "nibrs":
        if not any(month.startswith("2024-") for month in months):
            problems.append(
                f"the download holds no 2024 rows, but the set has held every NIBRS record "
                f"from {span.first} since {_NIBRS_BACKFILLED} (before that it held only the "
                "current year's): the 2024 and 2025 records are missing; download it again"
            )
        elif first > _NIBRS_LATEST_START.isoformat():
            problems.append(
                f"the download starts on {first}, after {_NIBRS_LATEST_START}, but the set "
                f"holds {held}: its first weeks are missing"
            )
    return problems


def record_months(
    dest: str | os.PathLike, *, dataset: str, socrata_id: str, where: str | None = None
) -> MonthCounts:
    """Count a written download per month, check its span and write ``<file>.months.tsv``.

    Parameters
    ----------
    dest
        The newline-delimited JSON gzip file just written.
    dataset
        Its data set's name: the key of :data:`SPANS` giving its date field and span.
    socrata_id
        The data set's Socrata id, for messages.
    where
        The download's ``$where`` filter: its findings become notes, not warnings.

    Returns
    -------
    MonthCounts
        The counts and the span check. The ``.months.tsv`` file (tab-separated ``month``,
        ``rows``, a last ``undated`` line when rows lack a date) is written atomically.
    """
    span = SPANS.get(dataset)
    date_field = span.date_field if span else "date_occ"
    months, undated, first, last = count_months(dest, date_field)
    problems = span_problems(dataset, months, first, last)
    filtered = f"filtered with $where {where!r}, which may explain it: " if where else ""
    counts = MonthCounts(
        dataset=dataset,
        socrata_id=socrata_id,
        date_field=date_field,
        months=dict(sorted(months.items())),
        undated=undated,
        first=first or None,
        last=last or None,
        where=where,
        warnings=() if where else tuple(problems),
        notes=tuple(filtered + p for p in problems) if where else (),
        path=months_path(dest),
    )
    lines = ["month\trows", *(f"{m}\t{n}" for m, n in counts.months.items())]
    if undated:
        lines.append(f"undated\t{undated}")
    atomic_write_text(months_path(dest), "\n".join(lines) + "\n")
    return counts


def format_month_table(counts: MonthCounts) -> str:
    """A compact text table of rows per year (lines) and month (columns), with year totals.

    Months before the first or after the last month with rows show ``-``; a month inside the
    span without rows shows ``0``.

    Examples
    --------
    >>> c = MonthCounts("nibrs", "k7nn-b2ep", "date_occ", {"2024-03": 5, "2024-05": 1200},
    ...                 first="2024-03-07", last="2024-05-30")
    >>> print(format_month_table(c))
    nibrs (k7nn-b2ep): 1,205 rows by month of date_occ, 2024-03-07 to 2024-05-30
    year    Jan    Feb    Mar    Apr    May    Jun    Jul    Aug    Sep    Oct    Nov    Dec  total
    2024      -      -      5      0  1,200      -      -      -      -      -      -      -  1,205
    """
    head = f"{counts.label}: {counts.rows:,} rows by month of {counts.date_field}"
    if not counts.months:
        return head + (f" ({counts.undated:,} without a date)" if counts.undated else "")
    lines = [head + f", {counts.first} to {counts.last}"]
    first, last = min(counts.months), max(counts.months)
    years = range(int(first[:4]), int(last[:4]) + 1)
    cells: dict[int, list[str]] = {}
    totals: dict[int, str] = {}
    for year in years:
        keys = [f"{year}-{month:02d}" for month in range(1, 13)]
        cells[year] = [f"{counts.months.get(k, 0):,}" if first <= k <= last else "-" for k in keys]
        totals[year] = f"{sum(counts.months.get(k, 0) for k in keys):,}"
    width = max(5, *(len(c) for row in cells.values() for c in row)) + 2
    total_width = max(5, *(len(t) for t in totals.values())) + 2
    lines.append(
        "year" + "".join(name.rjust(width) for name in _MONTH_NAMES) + "total".rjust(total_width)
    )
    for year in years:
        row = "".join(c.rjust(width) for c in cells[year])
        lines.append(f"{year}{row}{totals[year].rjust(total_width)}")
    if counts.undated:
        lines.append(f"{counts.undated:,} rows without a {counts.date_field}")
    return "\n".join(lines)
