"""Which (area, period) cells are recorded completely enough to trust.

Recording is not always complete: the legacy "Crime Data from 2020 to 2024" set thins out area
by area from LAPD's move to NIBRS on 7 March 2024 (the NIBRS set holds the rest), slices of the
data (such as the head of the export) hold a fraction of each period, and the last weeks of any
download are still filling in. A hot spot or a forecast computed on such periods would read a
gap in recording as a fall in crime, so this stage flags them and later stages leave them out.

Method
------
1. **The union.** An (area, period) is judged on the incidents of every source and records
   system together: through 2024 the legacy and NIBRS systems split the reports between them,
   so neither is complete alone. Each source's own count stays in :attr:`CoverageResult.table`
   as a diagnostic (its share of the union and its ratio to the same reference).
2. **Span.** A period that no source spans whole (the week holding the last day of the data,
   the month a slice starts in the middle of) is ``partial``: never complete, whatever its count.
3. **A reference that does not drift.** The period's count (for days, the trailing seven days
   ending on the day, so weekday swings cancel) is compared with the first of:

   * ``year_before``: the same area's count in the same period a year earlier (12 months, 52
     weeks or 364 days back), when that period was itself complete;
   * ``before_break``: for periods that end after the switch, the area's level in its complete
     periods of the :data:`BEFORE_BREAK_DAYS` days before the switch, pro rata to the period's
     days;
   * ``reference``: the area's count in the published annual roll-up of the full data set
     (``lapd_crime/reference``, 2020-2022; the same year when available, else the nearest),
     pro rata to the period's days.

   Never a rolling median of recent "complete" periods: a slow decline in recording would then
   become its own baseline (Pacific's weekly median slid from 234.5 to 131 in 2024 that way,
   and every week stayed "complete" at 55% of its January level). No period looks at a later
   one, so flags up to any date do not change when later data is loaded.
4. **Status.** ``incomplete`` below ``threshold`` (60%) of the reference; ``missing`` with no
   row at all although a source spans the period; ``partial`` (see 2); ``unverified`` with no
   reference (treated as complete, and said so); else ``complete``. 60% sits far below normal
   seasonal swings (about +/-15% month to month, +/-25% week to week for one area) but above a
   recording gap.
5. **Months agree with their weeks.** A month is complete only when most of its days lie in
   complete weeks (``weeks`` in ``baseline_source`` marks a month overruled so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geo_crime.core.config import data_dir
from geo_crime.core.errors import ConfigError, InputError
from geo_crime.core.lapd import RECORDS_SYSTEM_SWITCH, records_systems
from geo_crime.core.periods import Freq
from geo_crime.core.schema import ROW_COUNT

REFERENCE_ROLLUP = "lapd_crime/reference/lapd_crime_2020_2022_rollup__area_crmcd_year_counts.csv"


#: The statuses, from best to worst.
STATUSES = ("complete", "unverified", "partial", "incomplete", "missing")


def load_reference_rollup(path: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """Annual counts per area from the published roll-up of the full data set.

    Parameters
    ----------
    path
        The roll-up CSV (columns ``AREA``, ``DATE OCC`` = year, ``DR_NO`` = count). Defaults to
        the file in the data folder; ``None`` is returned when that is absent.

    Returns
    -------
    pandas.DataFrame or None
        Columns ``area``, ``year``, ``count``.
    """
    if path is None:
        folder = data_dir(must_exist=False)
        path = folder / REFERENCE_ROLLUP
        if not path.is_file():
            return None
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    raw = pd.read_csv(path, dtype=str)
    needed = {"AREA", "DATE OCC", "DR_NO"}
    if not needed <= set(raw.columns):
        raise InputError(f"{path}: expected columns {sorted(needed)}, found {list(raw.columns)}")
    table = pd.DataFrame(
        {
            "area": pd.to_numeric(raw["AREA"]).astype(int),
            "year": pd.to_numeric(raw["DATE OCC"]).astype(int),
            "count": pd.to_numeric(raw["DR_NO"]).astype(float),
        }
    )
    return table.groupby(["area", "year"], as_index=False)["count"].sum()


@dataclass
class CoverageResult:
    """Completeness of each (area, period), judged on all sources together.

    Attributes
    ----------
    union
        One row per (area, period) that some source spans: ``area``, ``period`` (first day),
        ``count`` (incidents of all sources; for days, the trailing seven days), ``baseline``,
        ``baseline_source`` (``year_before``, ``before_break``, ``reference``, ``weeks`` for a
        month overruled by its weeks, or ``none``), ``ratio``, ``status`` (see
        :data:`STATUSES`), ``complete`` (bool; unverified counts as complete) and ``sources``
        (comma-separated).
    table
        The per-source diagnostic: one row per (source, area, period) the source spans, with
        the source's own ``count``, its ``share`` of the union's count, the union's
        ``baseline`` and ``baseline_source``, the source's ``ratio`` to it, and the source's own
        ``status`` and ``complete`` against that baseline (a source holding part of a period,
        as each records system does through 2024, can be incomplete where the union is not).
    spans
        One row per source: ``source``, ``first_day``, ``last_day``, ``rows``, ``areas``.
    freq
        ``M``, ``W`` or ``D``.
    threshold
        The share of the reference a complete period reaches.
    by
        The column that defines a source (``source`` or ``source_file``).
    """

    union: pd.DataFrame
    table: pd.DataFrame
    spans: pd.DataFrame
    freq: str
    threshold: float
    by: str = "source"

    @property
    def incomplete(self) -> pd.DataFrame:
        """The (area, period) rows not judged complete."""
        return self.union.loc[~self.union["complete"]]

    def combined(self) -> pd.DataFrame:
        """One row per (area, period) over all sources (:attr:`union`).

        Returns
        -------
        pandas.DataFrame
            ``area``, ``period``, ``count``, ``status``, ``complete``, ``sources`` and the
            reference columns (``baseline``, ``baseline_source``, ``ratio``).
        """
        return self.union

    def complete_mask(self, incidents: pd.DataFrame) -> np.ndarray:
        """Boolean per incident: True when its (area, period) is complete (or unverified)."""
        period = Freq.parse(self.freq).start(incidents["occurred_at"])
        key = pd.MultiIndex.from_arrays([incidents["area"].astype("Int64"), period])
        flags = self.union.set_index(["area", "period"])["complete"]
        return flags.astype(bool).reindex(key, fill_value=False).to_numpy(dtype=bool)

    def citywide(self) -> pd.DataFrame:
        """Totals per period over all areas with the number of areas not complete.

        Returns
        -------
        pandas.DataFrame
            ``period``, ``count``, ``areas`` (areas with data), ``areas_incomplete``.
        """
        grouped = self.union.groupby("period")
        return pd.DataFrame(
            {
                "count": grouped["count"].sum(),
                "areas": grouped["area"].nunique(),
                "areas_incomplete": grouped["complete"].apply(lambda s: int((~s).sum())),
            }
        ).reset_index()


#: Days before the switch whose complete periods give an area's level before the break.
BEFORE_BREAK_DAYS = 84

#: Columns of :attr:`CoverageResult.union` and of :attr:`CoverageResult.table`.
UNION_COLUMNS = (
    "area",
    "period",
    "count",
    "baseline",
    "baseline_source",
    "ratio",
    "status",
    "complete",
    "sources",
)
SOURCE_COLUMNS = (
    "source",
    "area",
    "period",
    "count",
    "share",
    "baseline",
    "baseline_source",
    "ratio",
    "status",
    "complete",
)


def check_coverage(
    incidents: pd.DataFrame,
    *,
    freq: str = "M",
    threshold: float = 0.6,
    reference: pd.DataFrame | None | str = "default",
    by: str = "source",
) -> CoverageResult:
    """Flag (area, period) cells whose count, over all sources, falls far below a stable reference.

    Parameters
    ----------
    incidents
        Cleaned incidents (``area``, ``occurred_at`` and, when present, ``source`` /
        ``source_file`` and ``source_system``; without a source column every row is one
        source), or counts of them per (source, area, day) in :data:`ROW_COUNT`.
    freq
        ``M`` (default), ``W`` (weeks starting Monday) or ``D``: the periods of the analysis.
    threshold
        A period is incomplete below ``threshold`` x its reference.
    reference
        Annual counts per area (see :func:`load_reference_rollup`); ``"default"`` loads the
        shipped roll-up when present, ``None`` disables it.
    by
        The column that defines a source: ``source`` (schema family, default) or ``source_file``.

    Returns
    -------
    CoverageResult

    Examples
    --------
    >>> import pandas as pd
    >>> days = pd.date_range("2021-01-01", "2021-03-31", freq="h")
    >>> rows = pd.DataFrame({"area": 1, "occurred_at": days, "source": "official"})
    >>> result = check_coverage(rows, freq="M", reference=None)
    >>> result.union["status"].tolist()
    ['unverified', 'unverified', 'unverified']
    """
    if not 0 < threshold < 1:
        raise ConfigError(f"coverage threshold must be between 0 and 1, got {threshold}")
    freq = Freq.parse(freq)
    if by not in ("source", "source_file"):
        raise ConfigError(f"coverage sources are 'source' or 'source_file', got {by!r}")
    if isinstance(reference, str):
        reference = load_reference_rollup()
    frame = _source_rows(incidents, by)
    spans = _spans(frame)
    union = _judge_union(frame, spans, freq, threshold, reference)
    if freq == "M" and len(union):
        weekly = _judge_union(frame, spans, "W", threshold, reference)
        union = _months_follow_weeks(union, weekly)
    table = _source_table(frame, spans, union, freq, threshold)
    return CoverageResult(union, table, spans, freq, threshold, by)


def _spans(frame: pd.DataFrame) -> pd.DataFrame:
    """First and last day, rows held (with the records it shares with another source) and
    areas of each source."""
    grouped = frame.groupby("source", sort=True)
    return pd.DataFrame(
        {
            "source": list(grouped.groups),
            "first_day": grouped["day"].min().to_numpy(),
            "last_day": grouped["day"].max().to_numpy(),
            "rows": grouped["weight"].sum().astype(int).to_numpy(),
            "areas": grouped["area"].agg(lambda a: int(a.dropna().nunique())).to_numpy(),
        }
    )


def _periods(spans: pd.DataFrame, freq: str) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Every period some source spans: starts, whether one source spans it whole, its days."""
    code = Freq.parse(freq).pandas_code
    starts: set[pd.Timestamp] = set()
    whole: set[pd.Timestamp] = set()
    for first_day, last_day in zip(spans["first_day"], spans["last_day"], strict=True):
        periods = pd.period_range(first_day, last_day, freq=code)
        begin, end = periods.start_time, periods.end_time.normalize()
        starts.update(begin)
        whole.update(begin[(begin >= first_day) & (end <= last_day)])
    index = pd.DatetimeIndex(sorted(starts))
    ends = index.to_period(code).end_time.normalize()
    days = np.asarray((ends - index).days + 1, dtype=int)
    return index, np.asarray([s in whole for s in index], dtype=bool), days


def _counts(
    days: pd.Series,
    weights: np.ndarray,
    periods: pd.DatetimeIndex,
    freq: str,
    covered: pd.Series | None = None,
) -> np.ndarray:
    """Counts per period; for days, the trailing-seven-day count over the days some source
    covers (``covered``: bool per day), scaled up to seven days where fewer are covered."""
    if not len(periods):
        return np.zeros(0)
    if freq != "D":
        index = days.dt.to_period(Freq.parse(freq).pandas_code).dt.start_time
        counts = pd.Series(weights, index=index.to_numpy()).groupby(level=0).sum()
        return counts.reindex(periods, fill_value=0).to_numpy(dtype=float)
    full = pd.date_range(periods.min(), periods.max(), freq="D")
    daily = pd.Series(weights, index=pd.DatetimeIndex(days)).groupby(level=0).sum()
    daily = daily.reindex(full, fill_value=0)
    inside = (
        covered.reindex(full, fill_value=False)
        if covered is not None
        else pd.Series(True, index=full)
    ).astype(float)
    trailing = daily.rolling(7, min_periods=1).sum().to_numpy(dtype=float)
    seen = inside.rolling(7, min_periods=1).sum().to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(seen > 0, trailing * 7.0 / seen, 0.0)
    return pd.Series(scaled, index=full).reindex(periods).to_numpy(dtype=float)


def _covered_days(spans: pd.DataFrame) -> pd.Series:
    """True for each day some source spans (from the first source's first day on)."""
    full = pd.date_range(spans["first_day"].min(), spans["last_day"].max(), freq="D")
    covered = pd.Series(False, index=full)
    for first_day, last_day in zip(spans["first_day"], spans["last_day"], strict=True):
        covered.loc[first_day:last_day] = True
    return covered


def _judge_union(
    frame: pd.DataFrame,
    spans: pd.DataFrame,
    freq: str,
    threshold: float,
    reference: pd.DataFrame | None,
) -> pd.DataFrame:
    """The union's rows of every area, judged in time order against stable references."""
    own = frame.loc[~frame["copy"]].dropna(subset=["area"])
    rows: list[tuple] = []
    back = {"M": pd.DateOffset(months=12), "W": pd.Timedelta(weeks=52), "D": pd.Timedelta(days=364)}
    code = Freq.parse(freq).pandas_code
    holders = frame.dropna(subset=["area"]).groupby("area")["source"].agg(lambda s: set(s))
    for area, group in own.groupby("area", sort=True):
        # the periods of the sources that hold rows of this area: a source of other areas
        # says nothing of this one
        held_by = spans.loc[spans["source"].isin(holders.get(area, set()))]
        periods, whole, days_in = _periods(held_by, freq)
        covered = _covered_days(held_by) if freq == "D" else None
        counts = _counts(group["day"], group["weight"].to_numpy(), periods, freq, covered)
        of_period = group["day"].dt.to_period(code).dt.start_time
        names = (
            group["source"]
            .astype(str)
            .groupby(of_period.to_numpy())
            .agg(lambda s: ",".join(sorted(set(s))))
        )
        sources = names.reindex(periods, fill_value="").to_numpy(dtype=object)
        judged: dict[pd.Timestamp, tuple[float, bool]] = {}
        before_break: float | None = None
        for start, count, is_whole, n_days, held in zip(
            periods, counts, whole, days_in, sources, strict=True
        ):
            basis_days = 7 if freq == "D" else int(n_days)
            end = start + pd.Timedelta(days=int(n_days))
            earlier = _year_before_rate(judged, start - back[freq], freq)
            if earlier > 0:
                baseline, basis = earlier * basis_days, "year_before"
            elif end > RECORDS_SYSTEM_SWITCH and (
                level := before_break
                if before_break is not None
                else (before_break := _level_before_break(judged, freq))
            ):
                baseline, basis = level * basis_days, "before_break"
            else:
                baseline, basis = _reference_baseline(reference, int(area), start.year, basis_days)
            ratio = count / baseline if baseline > 0 else np.nan
            if not is_whole:
                status = "partial"
            elif count == 0:
                status, ratio = "missing", 0.0
            elif basis == "none" or not baseline > 0:
                status, ratio = "unverified", np.nan
            else:
                status = "complete" if ratio >= threshold else "incomplete"
            judged[start] = (float(count), status in ("complete", "unverified"))
            rows.append((int(area), start, count, baseline, basis, ratio, status, held))
    union = pd.DataFrame(rows, columns=[c for c in UNION_COLUMNS if c != "complete"])
    union["complete"] = union["status"].isin(["complete", "unverified"])
    return union[list(UNION_COLUMNS)]


#: Periods on either side of the one a year earlier that its reference also averages over.
_YEAR_BEFORE_HALF_WIDTH = {"M": 1, "W": 2, "D": 3}


def _year_before_rate(
    judged: dict[pd.Timestamp, tuple[float, bool]], centre: pd.Timestamp, freq: str
) -> float:
    """Incidents per day in the complete periods around the one a year earlier (0 when that
    period itself was not complete): a mean over a few periods, so one unusual week does not
    set the reference."""
    own = judged.get(centre)
    if own is None or not own[1]:
        return 0.0
    width = _YEAR_BEFORE_HALF_WIDTH[freq]
    code = Freq.parse(freq).pandas_code
    rates = []
    for shift in range(-width, width + 1):
        start = (pd.Period(centre, freq=code) + shift).start_time
        seen = judged.get(start)
        if seen is None or not seen[1]:
            continue
        days = pd.Period(start, freq=code).days_in_month if freq == "M" else 7
        rates.append(seen[0] / days)
    return float(np.mean(rates)) if rates else 0.0


def _level_before_break(judged: dict[pd.Timestamp, tuple[float, bool]], freq: str) -> float:
    """An area's incidents per day over its complete periods within the
    :data:`BEFORE_BREAK_DAYS` days before the switch (0 when they cover fewer than 28 days)."""
    first = RECORDS_SYSTEM_SWITCH - pd.Timedelta(days=BEFORE_BREAK_DAYS)
    code = Freq.parse(freq).pandas_code
    total, days = 0.0, 0
    for start, (count, complete) in judged.items():
        end = pd.Period(start, freq=code).end_time.normalize() + pd.Timedelta(days=1)
        if complete and start >= first and end <= RECORDS_SYSTEM_SWITCH:
            # a day's count is its trailing seven days: a seventh of it is the day's worth
            total += count / 7 if freq == "D" else count
            days += int((end - start).days)
    return total / days if days >= 28 else 0.0


def _months_follow_weeks(months: pd.DataFrame, weeks: pd.DataFrame) -> pd.DataFrame:
    """Months complete by their own count but with most of their days in weeks that are not
    complete become incomplete (``baseline_source`` ``weeks``)."""
    out = months.copy()
    flags = weeks.set_index(["area", "period"])["complete"]
    for i in np.flatnonzero(out["complete"].to_numpy()):
        start = out["period"].iat[i]
        days = pd.date_range(start, start + pd.offsets.MonthEnd(0), freq="D")
        week_of = days.to_period("W-SUN").start_time
        key = pd.MultiIndex.from_arrays([np.full(len(days), out["area"].iat[i]), week_of])
        good = flags.reindex(key, fill_value=False).to_numpy(dtype=bool)
        if good.sum() * 2 < len(days):
            out.iat[i, out.columns.get_loc("status")] = "incomplete"
            out.iat[i, out.columns.get_loc("baseline_source")] = "weeks"
            out.iat[i, out.columns.get_loc("complete")] = False
    return out


def _source_table(
    frame: pd.DataFrame,
    spans: pd.DataFrame,
    union: pd.DataFrame,
    freq: str,
    threshold: float,
) -> pd.DataFrame:
    """Each source's count per (area, period) it spans, against the union's reference."""
    reference = union.set_index(["area", "period"])
    rows = []
    for span in spans.itertuples():
        part = frame.loc[frame["source"] == span.source].dropna(subset=["area"])
        periods = pd.period_range(span.first_day, span.last_day, freq=Freq.parse(freq).pandas_code)
        starts, ends = periods.start_time, periods.end_time.normalize()
        whole = np.asarray((starts >= span.first_day) & (ends <= span.last_day), dtype=bool)
        for area, group in part.groupby("area", sort=True):
            counts = _counts(group["day"], group["weight"].to_numpy(), starts, freq)
            key = pd.MultiIndex.from_arrays([np.full(len(starts), int(area)), starts])
            ref = reference.reindex(key)
            baseline = ref["baseline"].to_numpy(dtype=float)
            total = ref["count"].to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(baseline > 0, counts / baseline, np.nan)
                share = np.where(total > 0, counts / total, np.nan)
            status = np.where(
                ~whole,
                "partial",
                np.where(
                    counts == 0,
                    "missing",
                    np.where(
                        ~np.isfinite(ratio),
                        "unverified",
                        np.where(ratio >= threshold, "complete", "incomplete"),
                    ),
                ),
            )
            rows.append(
                pd.DataFrame(
                    {
                        "source": span.source,
                        "area": int(area),
                        "period": starts,
                        "count": counts,
                        "share": share,
                        "baseline": baseline,
                        "baseline_source": ref["baseline_source"].to_numpy(dtype=object),
                        "ratio": ratio,
                        "status": status,
                    }
                )
            )
    if not rows:
        return pd.DataFrame(columns=list(SOURCE_COLUMNS))
    table = pd.concat(rows, ignore_index=True)
    table["complete"] = table["status"].isin(["complete", "unverified"])
    return table[list(SOURCE_COLUMNS)]


def _source_rows(incidents: pd.DataFrame, by: str) -> pd.DataFrame:
    """``source``, ``system``, ``area``, ``day``, ``weight`` and ``copy`` per row.

    A record number found in two sources is kept once by cleaning; its other sources are noted
    in ``also_in_sources`` / ``also_in_files``, and a row is added for each (``copy`` True) so a
    source's own diagnostic counts do not depend on which other files were loaded with it. The
    union counts each incident once (``copy`` False). ``weight`` is the incidents a row stands
    for: :data:`ROW_COUNT` when the input counts them, else 1.
    """
    sources = (
        incidents[by].astype(str).to_numpy()
        if by in incidents
        else np.full(len(incidents), "all", dtype=object)
    )
    frame = pd.DataFrame(
        {
            "source": sources,
            "system": records_systems(incidents),
            "area": incidents["area"].astype("Int64").to_numpy(),
            "day": incidents["occurred_at"].dt.normalize().to_numpy(),
            "weight": (
                incidents[ROW_COUNT].to_numpy(dtype=np.int64)
                if ROW_COUNT in incidents
                else np.ones(len(incidents), dtype=np.int64)
            ),
            "copy": False,
        }
    )
    also = {"source": "also_in_sources", "source_file": "also_in_files"}[by]
    if also in incidents:
        others = incidents[also].astype("string")
        held = others.notna().to_numpy()
        if held.any():
            extra = frame.loc[held].assign(source=others[held].str.split(",").to_numpy(), copy=True)
            extra = extra.explode("source")
            frame = pd.concat([frame, extra], ignore_index=True)
    return frame.dropna(subset=["day"])


def _reference_baseline(
    reference: pd.DataFrame | None, area: int, year: int, days: int
) -> tuple[float, str]:
    """The area's count in the nearest reference year, pro rata to ``days``."""
    if reference is None or reference.empty:
        return np.nan, "none"
    rows = reference.loc[reference["area"] == area]
    if rows.empty:
        return np.nan, "none"
    nearest = rows.iloc[(rows["year"] - year).abs().argsort()[:1]]
    leap = pd.Timestamp(year=int(nearest["year"].iloc[0]), month=1, day=1).is_leap_year
    year_days = 366 if leap else 365
    return float(nearest["count"].iloc[0]) * days / year_days, "reference"
