"""Which (source, area, period) cells are recorded completely enough to trust.

LAPD moved to a new records management system on 7 March 2024, and the legacy "Crime Data from
2020 to Present" set thins out area by area from then: city-wide weekly counts fall from about
4,300 to about 1,800. Slices of the data (such as the head of the export) are incomplete too. A
hot spot or a forecast computed on such periods would read a reporting break as a crime drop, so
this stage flags them and later stages leave them out by default.

Method
------
Coverage is a property of each **source**: the rows of one schema family (the ``source`` column:
``official``, ``modified``, ``reduced_2024``, ...; ``by="source_file"`` judges each file on its
own). Each source is judged on its own rows only, so loading another file alongside never
changes what is said about a source.

1. **Span.** A source covers the days from its first to its last occurrence date. A period that
   the span does not cover whole (the week holding the last day of the data, the month a slice
   starts in the middle of) is ``partial``: it is never complete, whatever its count.
2. **Counts.** Each area of the source is judged period by period at the frequency of the
   analysis (month, week or day), from what is known at the period itself: the period's own
   count (for days, the trailing seven days ending on the day, so weekday swings cancel) and the
   periods before it. No period looks at a later one, so the flags of periods up to any date
   are the same whether or not later data is loaded (a backtest origin sees the coverage it
   would have seen then).
3. **Baseline.** The median count of the area's last ``window`` periods that were themselves
   judged complete; only complete periods enter, so a run of thin periods cannot drag the
   baseline down and pass itself off as normal. With fewer than ``min_history`` (3) such periods,
   the baseline falls back to the area's count in the published annual roll-up of the full data
   set (``lapd_crime/reference``, 2020-2022; the same year when available, else the nearest),
   pro rata to the period's days, so the first periods of a slice are judged too.
4. **Status.** ``incomplete`` below ``threshold`` (60%) of the baseline; ``missing`` with no row
   at all although the source spans the period; ``partial`` (see 1); ``unverified`` with neither
   history nor reference (treated as complete, and said so); else ``complete``. The median is
   robust to one-off spikes, and 60% sits far below normal seasonal swings (about +/-15% month to
   month, +/-25% week to week for one area) but above the 2024 break (about 40-50% in each area).

Several sources can cover one (area, period): the data is then at least as complete as its most
complete source, so :meth:`CoverageResult.combined` calls it complete when any source is.

The records-system switch (:data:`geo_crime.series.RECORDS_SYSTEM_SWITCH`, 7 March 2024) is a
documented break, never a thin period. When legacy and NIBRS rows are loaded together they are
one series (:func:`geo_crime.series.combine_across_break`: legacy rows before the switch, NIBRS
rows from it), each system still judged on its own rows: a legacy source that stops within the
week before the switch is taken to span up to it, a NIBRS source that starts within the week
after it to span from it, and the period holding the switch is judged for each system on its
own days of it (the baseline pro rata, ``switch_share`` in the table; such a period does not
enter the baseline history). The combined (area, period) is complete when the systems on both
sides each recorded their part of it completely. A NIBRS source has no history before the
switch, so its first periods are judged against the published roll-up of the legacy data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geo_crime.errors import ConfigError, InputError
from geo_crime.series import RECORDS_SYSTEM_SWITCH, records_systems, spans_break

REFERENCE_ROLLUP = "lapd_crime/reference/lapd_crime_2020_2022_rollup__area_crmcd_year_counts.csv"

#: Pandas period codes of the supported frequencies (weeks run Monday..Sunday, as in the cube).
_PERIOD_CODES = {"D": "D", "W": "W-SUN", "M": "M"}

#: Default baseline window (periods) per frequency: a year of months, a quarter of weeks, four
#: weeks of days.
DEFAULT_WINDOW = {"M": 12, "W": 12, "D": 28}

#: Optional column of incidents per row: a table of counts per (source, area, day) is judged
#: exactly as the incidents it counts (the Dask cube sends such a table, not the rows).
ROW_COUNT = "_rows"

#: Status order from best to worst: the combined status of an (area, period) is its best source's.
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
        from geo_crime.config import data_dir

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
            "count": pd.to_numeric(raw["DR_NO"]).astype(int),
        }
    )
    return table.groupby(["area", "year"], as_index=False)["count"].sum()


@dataclass
class CoverageResult:
    """Completeness of each (source, area, period).

    Attributes
    ----------
    table
        One row per (source, area, period) the source spans: ``source``, ``area``, ``period``
        (first day), ``count`` (rows of the source; for days, the trailing seven days),
        ``baseline``, ``baseline_source`` (``own``, ``reference`` or ``none``), ``ratio``,
        ``status`` (see :data:`STATUSES` and the module docstring) and ``complete`` (bool;
        unverified counts as complete).
    spans
        One row per source: ``source``, ``first_day``, ``last_day``, ``rows``, ``areas``.
    freq
        ``M``, ``W`` or ``D``.
    threshold, window, min_history
        The settings used.
    by
        The column that defines a source (``source`` or ``source_file``).
    """

    table: pd.DataFrame
    spans: pd.DataFrame
    freq: str
    threshold: float
    window: int
    min_history: int
    by: str = "source"

    @property
    def incomplete(self) -> pd.DataFrame:
        """The (source, area, period) rows not judged complete."""
        return self.table.loc[~self.table["complete"]]

    def combined(self) -> pd.DataFrame:
        """One row per (area, period) over all sources: complete when any source is.

        Returns
        -------
        pandas.DataFrame
            ``area``, ``period``, ``count`` (rows of all sources), ``status`` (the best
            source's), ``complete`` and ``sources`` (comma-separated).
        """
        table = self.table
        if table.empty:
            columns = ["area", "period", "count", "status", "complete", "sources"]
            return pd.DataFrame(columns=columns)
        rank = table["status"].map({s: i for i, s in enumerate(STATUSES)})
        share = table["switch_share"] if "switch_share" in table else pd.Series(1.0, table.index)
        whole = share >= 1.0
        work = table.assign(
            rank=rank,
            whole_complete=table["complete"] & whole,
            cut=~whole,
            cut_share=share.where(~whole, 0.0),
            cut_incomplete=~table["complete"] & ~whole,
        )
        grouped = work.groupby(["area", "period"], sort=True)
        best = grouped["rank"].min()
        # the period holding the records-system switch is complete when one source recorded
        # it whole, or when the systems on either side each recorded their own days of it
        joined = (
            grouped["cut"].any()
            & (grouped["cut_share"].sum() >= 0.999)
            & ~grouped["cut_incomplete"].any()
        )
        out = pd.DataFrame(
            {
                "count": grouped["count"].sum(),
                "status": best.map(dict(enumerate(STATUSES))),
                "complete": grouped["whole_complete"].any() | joined,
                "sources": grouped["source"].agg(lambda s: ",".join(sorted(map(str, set(s))))),
            }
        ).reset_index()
        return out

    def complete_mask(self, incidents: pd.DataFrame) -> np.ndarray:
        """Boolean per incident: True when its (area, period) is complete (or unverified)."""
        period = incidents["occurred_at"].dt.to_period(_PERIOD_CODES[self.freq]).dt.start_time
        key = pd.MultiIndex.from_arrays([incidents["area"].astype("Int64"), period])
        flags = self.combined().set_index(["area", "period"])["complete"]
        return flags.astype(bool).reindex(key, fill_value=False).to_numpy(dtype=bool)

    def citywide(self) -> pd.DataFrame:
        """Totals per period over all areas and sources with the number of areas not complete.

        Returns
        -------
        pandas.DataFrame
            ``period``, ``count``, ``areas`` (areas with data), ``areas_incomplete``.
        """
        combined = self.combined()
        grouped = combined.groupby("period")
        return pd.DataFrame(
            {
                "count": grouped["count"].sum(),
                "areas": grouped["area"].nunique(),
                "areas_incomplete": grouped["complete"].apply(lambda s: int((~s).sum())),
            }
        ).reset_index()


def check_coverage(
    incidents: pd.DataFrame,
    *,
    freq: str = "M",
    threshold: float = 0.6,
    window: int | None = None,
    min_history: int = 3,
    reference: pd.DataFrame | None | str = "default",
    by: str = "source",
) -> CoverageResult:
    """Flag (source, area, period) cells whose count falls far below the area's robust baseline.

    Parameters
    ----------
    incidents
        Cleaned incidents (``area``, ``occurred_at`` and, when present, ``source`` /
        ``source_file``; without the column every row is one source).
    freq
        ``M`` (default), ``W`` (weeks starting Monday) or ``D``: the periods of the analysis.
    threshold
        A period is incomplete below ``threshold`` x baseline.
    window
        How many earlier complete periods the median baseline looks back over (default: 12
        months, 12 weeks or 28 days).
    min_history
        Fewer complete periods than this -> use the reference baseline.
    reference
        Annual counts per area (see :func:`load_reference_rollup`); ``"default"`` loads the
        shipped roll-up when present, ``None`` disables the fallback.
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
    >>> result.table["status"].tolist()
    ['unverified', 'unverified', 'unverified']
    """
    if not 0 < threshold < 1:
        raise ConfigError(f"coverage threshold must be between 0 and 1, got {threshold}")
    freq = str(freq).upper()[:1]
    if freq not in _PERIOD_CODES:
        raise ConfigError(f"unknown coverage period {freq!r}: use D, W or M")
    if by not in ("source", "source_file"):
        raise ConfigError(f"coverage sources are 'source' or 'source_file', got {by!r}")
    window = int(window or DEFAULT_WINDOW[freq])
    if isinstance(reference, str):
        reference = load_reference_rollup()
    code = _PERIOD_CODES[freq]
    frame = _source_rows(incidents, by)
    at_break = spans_break(incidents)
    rows: list[tuple] = []
    spans: list[tuple] = []
    for source, part in frame.groupby("source", sort=True):
        first_day, last_day = part["day"].min(), part["day"].max()
        if at_break:  # a source cut at the switch covers the days up to or from it
            first_day, last_day = _span_at_switch(part["system"].iloc[0], first_day, last_day)
        n_rows = int(part["weight"].sum())
        spans.append((source, first_day, last_day, n_rows, int(part["area"].dropna().nunique())))
        periods = pd.period_range(first_day, last_day, freq=code)
        starts = periods.start_time
        ends = periods.end_time.normalize()
        spanned = (starts >= first_day) & (ends <= last_day)
        days_in = (ends - starts).days + 1
        # the period holding the switch: each system is judged on its own days of it
        share = np.ones(len(periods))
        if at_break:
            switch = RECORDS_SYSTEM_SWITCH
            ends_at_switch = (last_day == switch - pd.Timedelta(days=1)) & (starts >= first_day)
            ends_at_switch &= (starts <= last_day) & (ends > last_day)
            starts_at_switch = (first_day == switch) & (ends <= last_day)
            starts_at_switch &= (starts < first_day) & (ends >= first_day)
            cut = np.asarray(ends_at_switch | starts_at_switch, dtype=bool)
            last, first = np.datetime64(last_day, "D"), np.datetime64(first_day, "D")
            inside = np.minimum(ends.values.astype("datetime64[D]"), last) - np.maximum(
                starts.values.astype("datetime64[D]"), first
            )
            covered = inside.astype(int) + 1
            share = np.where(cut, covered / days_in, 1.0)
            spanned = spanned | cut
        for area, group in part.dropna(subset=["area"]).groupby("area", sort=True):
            counts = _period_counts(
                group["day"], group["weight"], periods, first_day, last_day, freq
            )
            rows.extend(
                _judge_area(
                    source,
                    int(area),
                    starts,
                    counts,
                    spanned,
                    days_in,
                    share,
                    threshold=threshold,
                    window=window,
                    min_history=min_history,
                    reference=reference,
                )
            )
    table = pd.DataFrame(
        rows,
        columns=[
            "source",
            "area",
            "period",
            "count",
            "baseline",
            "baseline_source",
            "ratio",
            "status",
            "switch_share",
        ],
    )
    table["complete"] = table["status"].isin(["complete", "unverified"])
    span_table = pd.DataFrame(spans, columns=["source", "first_day", "last_day", "rows", "areas"])
    return CoverageResult(table, span_table, freq, threshold, window, min_history, by)


def _source_rows(incidents: pd.DataFrame, by: str) -> pd.DataFrame:
    """``source``, ``area``, ``day`` per row, plus a row for each other source that held it.

    A record number found in two sources is kept once by cleaning; its other sources are noted
    in ``also_in_sources`` / ``also_in_files`` and counted here, so a source's counts do not
    depend on which other files were loaded with it. ``weight`` is the incidents a row stands
    for: :data:`ROW_COUNT` when the input counts them, else 1.
    """
    sources = (
        incidents[by].astype(str).to_numpy()
        if by in incidents
        else np.full(len(incidents), "all", dtype=object)
    )
    systems = records_systems(incidents)
    frame = pd.DataFrame(
        {
            "source": sources,
            "system": systems,
            "area": incidents["area"].astype("Int64").to_numpy(),
            "day": incidents["occurred_at"].dt.normalize().to_numpy(),
            "weight": (
                incidents[ROW_COUNT].to_numpy(dtype=np.int64)
                if ROW_COUNT in incidents
                else np.ones(len(incidents), dtype=np.int64)
            ),
        }
    )
    also = {"source": "also_in_sources", "source_file": "also_in_files"}[by]
    if also in incidents:
        others = incidents[also].astype("string")
        held = others.notna().to_numpy()
        if held.any():
            extra = frame.loc[held].assign(source=others[held].str.split(",").to_numpy())
            extra = extra.explode("source")
            frame = pd.concat([frame, extra], ignore_index=True)
    return frame.dropna(subset=["day"])


def _period_counts(
    days: pd.Series, weights: pd.Series, periods: pd.PeriodIndex, first_day, last_day, freq: str
) -> np.ndarray:
    """Counts per period; for days, the trailing-seven-day count (scaled up at the span start)."""
    weights = weights.to_numpy(dtype=np.int64)
    if freq != "D":
        index = pd.PeriodIndex(days, freq=periods.freq)
        return (
            pd.Series(weights, index=index).groupby(level=0).sum().reindex(periods, fill_value=0)
        ).to_numpy(dtype=float)
    daily = pd.Series(weights, index=pd.DatetimeIndex(days)).groupby(level=0).sum()
    daily = daily.reindex(periods.start_time, fill_value=0).sort_index()
    trailing = daily.rolling(7, min_periods=1).sum().to_numpy(dtype=float)
    seen = np.minimum(np.arange(1, len(daily) + 1), 7)
    return trailing * 7.0 / seen


def _judge_area(
    source: str,
    area: int,
    starts: pd.DatetimeIndex,
    counts: np.ndarray,
    spanned: np.ndarray,
    days_in: np.ndarray,
    share: np.ndarray,
    *,
    threshold: float,
    window: int,
    min_history: int,
    reference: pd.DataFrame | None,
) -> list[tuple]:
    """The rows of one (source, area) series, judged in time order."""
    history: list[float] = []
    out = []
    for start, count, whole, n_days, part in zip(
        starts, counts, spanned, days_in, share, strict=True
    ):
        if len(history) >= min_history:
            baseline, basis = float(np.median(history[-window:])), "own"
        else:
            # daily counts are trailing-seven-day sums: compare with a week of the reference
            basis_days = 7 if n_days == 1 else int(n_days)
            baseline, basis = _reference_baseline(reference, area, start.year, basis_days)
        baseline *= part  # at the switch: the system's own days of the period
        ratio = count / baseline if baseline > 0 else np.nan
        if not whole:
            status = "partial"
        elif count == 0:
            status, ratio = "missing", 0.0
        elif basis == "none" or not baseline > 0:
            status, ratio = "unverified", np.nan
        else:
            status = "complete" if ratio >= threshold else "incomplete"
        if status in ("complete", "unverified") and part == 1.0:
            history.append(float(count))
        out.append((source, area, start, count, baseline, basis, ratio, status, float(part)))
    return out


def _span_at_switch(system: str, first_day, last_day) -> tuple:
    """A source's span, taken to reach the switch when its rows stop or start in its week.

    Combined across the break (:func:`geo_crime.series.combine_across_break`), legacy rows stop
    the day before the switch and NIBRS rows start on it; a source whose rows end (or begin)
    within the seven days next to it recorded up to (or from) the switch.
    """
    switch, week = RECORDS_SYSTEM_SWITCH, pd.Timedelta(days=7)
    if system == "legacy" and switch - week <= last_day < switch:
        last_day = switch - pd.Timedelta(days=1)
    if system == "nibrs" and switch <= first_day < switch + week:
        first_day = switch
    return first_day, last_day


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
