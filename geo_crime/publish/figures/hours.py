"""Static figure (PNG) of *when in the week* crime happens: the hour x weekday heat map.

:func:`hour_weekday_heatmap` draws a 7 x 24 heat map of incidents by weekday and hour, with the
LAPD placeholder times (12:00 and 00:01) measured and named in the caption, never dropped;
:func:`hour_weekday_matrix` computes it. The same conventions as the trend figure
(:mod:`geo_crime.publish.figures.trends`, whose
:func:`~geo_crime.publish.figures.trends.study_figures` writes both): matplotlib's Agg renderer
on a private ``Figure``, atomic writes, cells below ``k_anonymity`` blank
(:mod:`geo_crime.publish.privacy`), and the incidents read through their tally
(:class:`geo_crime.record.tallies.StudyTally`), so the Dask engine draws the same figure.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.errors import DataError
from geo_crime.publish.figures import core as figures_core  # its save_figure saves every figure
from geo_crime.publish.figures.draw import DPI, as_tally, division_names, division_scope, new_figure
from geo_crime.publish.privacy import count_words, suppressed_units
from geo_crime.record.tallies import StudyTally

__all__ = [
    "PLACEHOLDER_RATIO",
    "WEEKDAYS",
    "HourWeekday",
    "hour_weekday_heatmap",
    "hour_weekday_matrix",
]

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
"""Row order of the hour x weekday heat map."""

#: A time of day is a suspected placeholder when it holds this many times the median full hour.
PLACEHOLDER_RATIO = 1.5


@dataclass
class HourWeekday:
    """The hour x weekday counts of :func:`hour_weekday_heatmap`.

    Attributes
    ----------
    matrix : pandas.DataFrame
        7 x 24 incident counts: rows :data:`WEEKDAYS`, columns hours 0..23.
    n_known, n_unknown : int
        Incidents with and without a recorded time of day (the latter are not in the matrix).
    placeholders : pandas.DataFrame
        Indexed by time (``12:00``, ``00:01``, ``00:00``): ``count`` (incidents at exactly that
        minute), ``share`` (of ``n_known``), ``reference`` (median count at the other full
        hours, 01:00..23:00 without 12:00), ``ratio`` and ``suspected`` (ratio >=
        :data:`PLACEHOLDER_RATIO`).
    first_day, last_day : pandas.Timestamp or None
        Occurrence days of the timed incidents.
    areas : list of int
        Divisions of the timed incidents.
    """

    matrix: pd.DataFrame
    n_known: int
    n_unknown: int
    placeholders: pd.DataFrame
    first_day: pd.Timestamp | None
    last_day: pd.Timestamp | None
    areas: list[int]


def hour_weekday_matrix(incidents: pd.DataFrame | StudyTally) -> HourWeekday:
    """Incidents per weekday and hour of day, over the incidents with a known time.

    Parameters
    ----------
    incidents : pandas.DataFrame or StudyTally
        Cleaned incidents (``occurred_at``; ``time_known`` when present, else every time counts
        as known), or their tally (:class:`geo_crime.record.tallies.StudyTally`).

    Returns
    -------
    HourWeekday
        Nothing is dropped for looking like a placeholder: 12:00 and 00:01 stay in their cells
        and are measured in ``placeholders``.
    """
    if not isinstance(incidents, StudyTally) and "occurred_at" not in incidents:
        raise DataError("the incidents lack 'occurred_at'")
    tally = as_tally(incidents)
    timed = tally.timed
    n_known = int(timed["incidents"].sum()) if len(timed) else 0
    hours = timed["minute"] // 60 if len(timed) else pd.Series([], dtype=np.int64)
    matrix = (
        timed.assign(hour=hours)
        .pivot_table(index="weekday", columns="hour", values="incidents", aggfunc="sum")
        .reindex(index=range(7), columns=range(24))
        .fillna(0)
        .astype(int)
        if len(timed)
        else pd.DataFrame(0, index=range(7), columns=range(24))
    )
    matrix.index = pd.Index(WEEKDAYS, name="weekday")
    matrix.columns.name = "hour"
    per_minute = (
        timed.groupby("minute")["incidents"].sum() if len(timed) else pd.Series([], dtype=int)
    )
    full_hours = [h * 60 for h in range(1, 24) if h != 12]
    reference = float(np.median(per_minute.reindex(full_hours, fill_value=0))) if n_known else 0
    rows = []
    for label, minute in (("12:00", 12 * 60), ("00:01", 1), ("00:00", 0)):
        count = int(per_minute.get(minute, 0))
        ratio = count / reference if reference > 0 else np.nan
        share = count / n_known if n_known else np.nan
        rows.append((label, count, share, reference, ratio, bool(ratio >= PLACEHOLDER_RATIO)))
    placeholders = pd.DataFrame(
        rows, columns=["time", "count", "share", "reference", "ratio", "suspected"]
    ).set_index("time")
    areas = timed["area"].dropna() if len(timed) else pd.Series([], dtype="Int64")
    return HourWeekday(
        matrix=matrix,
        n_known=n_known,
        n_unknown=tally.untimed,
        placeholders=placeholders,
        first_day=tally.timed_first,
        last_day=tally.timed_last,
        areas=sorted(int(a) for a in areas.unique()),
    )


def _draw_heatmap(data: HourWeekday, names: dict[int, str], title: str | None, k: int) -> Figure:
    fig, ax = new_figure((13.0, 5.6))
    values = data.matrix.to_numpy()
    # cells below k are blank (a second one where one alone follows from the total)
    hidden = suppressed_units(pd.Series(values.ravel()), k).to_numpy().reshape(values.shape)
    shown = np.ma.masked_array(values, mask=hidden)
    cmap = matplotlib.colormaps["YlOrRd"].with_extremes(bad="#d9d9d9")
    image = ax.imshow(shown, aspect="auto", cmap=cmap, vmin=0, interpolation="nearest")
    high = shown.max() * 0.6 if shown.count() else 0
    for (row, col), value in np.ndenumerate(values):
        colour = "white" if value > high and not hidden[row, col] else "#333333"
        text = f"<{k}" if hidden[row, col] else f"{value:,}"
        ax.text(col, row, text, ha="center", va="center", fontsize=6.5, color=colour)
    flagged = {"12:00": 12, "00:01": 0, "00:00": 0}
    marks = {flagged[t] for t, row in data.placeholders.iterrows() if row["suspected"]}
    ax.set_xticks(range(24), [f"{h:02d}{'*' if h in marks else ''}" for h in range(24)])
    ax.set_yticks(range(7), list(WEEKDAYS))
    ax.set_xlabel("hour of day (local time; 13 = 13:00 to 13:59)")
    ax.tick_params(length=0)
    fig.colorbar(image, ax=ax, label="incidents", location="right", shrink=0.9, pad=0.02)
    scope = division_scope(data.areas, names) if data.areas else "all incidents"
    span = f"{data.first_day.date()} to {data.last_day.date()}"
    ax.set_title(
        title or f"Incidents by weekday and hour of day, {scope}, {span}", fontsize=11, pad=8
    )
    notes = [f"{data.n_known:,} incidents with a recorded time of day."]
    if hidden.any():
        notes[0] += f" Grey cells (<{k}): fewer than {k} incidents, not shown."
    if data.n_unknown:
        notes[0] += (
            f" {count_words(data.n_unknown, k)} incidents without one (e.g. the 2024 reduced "
            "records, which carry only a date) are not shown."
        )
    parts = []
    midnight = int(data.placeholders.loc["00:00", "count"])
    for time, row in data.placeholders.drop(index="00:00").iterrows():
        verdict = "likely a placeholder" if row["suspected"] else "not clearly inflated"
        # the rest of its hour (the hour's cells minus this minute, and minus 00:00 for 00:01)
        # follows from the figure: it must not be a count below k either
        hour = 12 if time == "12:00" else 0
        rest = int(data.matrix[hour].sum()) - int(row["count"]) - (midnight if hour == 0 else 0)
        if row["count"] < k or 0 < rest < k:  # its share or ratio would give it away too
            parts.append(f"{time} exactly: fewer than {k} incidents")
            continue
        parts.append(
            f"{time} exactly: {int(row['count']):,} incidents ({row['share']:.1%}; "
            f"{row['ratio']:.1f}x the median full hour, {verdict})"
        )
    notes.append(
        "LAPD records many unknown times as 12:00 (and midnight as 00:01"
        + (", as here: no incident is at 00:00" if midnight == 0 else "")
        + "): "
        + "; ".join(parts)
        + ". They are kept in their cells, not dropped"
        + ("; hours marked * hold suspected placeholders." if marks else ".")
    )
    fig.supxlabel("\n".join(textwrap.fill(n, 170) for n in notes), fontsize=8, x=0.01, ha="left")
    return fig


def hour_weekday_heatmap(
    incidents: pd.DataFrame | StudyTally,
    path: str | os.PathLike,
    *,
    divisions: pd.Series | None = None,
    title: str | None = None,
    dpi: int = DPI,
    k_anonymity: int = DEFAULT_K,
) -> Path:
    """Heat map of incidents by weekday (rows, Monday first) and hour of day (columns).

    Only incidents with a recorded time of day are counted (``time_known``); the caption says
    how many have none. LAPD enters many unknown times as 12:00 and midnight as 00:01: the
    counts at exactly those minutes are compared with the median full hour and named in the
    caption (and the hour marked ``*`` when suspected), but kept in the matrix.

    Parameters
    ----------
    incidents : pandas.DataFrame or StudyTally
        Cleaned incidents (``occurred_at``, ``time_known``, ``area``), or their tally.
    path : path-like
        Destination PNG.
    divisions : pandas.Series, optional
        Division name per area number, for the title.
    title : str, optional
        Figure title (default: what, where and when).
    dpi : int, default 150
        Resolution.
    k_anonymity : int, default 3
        Cells with fewer incidents are grey and read ``<k`` (with a second one where one alone
        would follow from the total), and so are the caption's small counts.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DataError
        Fewer than ``k_anonymity`` incidents (or none) have a known time of day.

    See Also
    --------
    hour_weekday_matrix : the numbers drawn.
    """
    tally = as_tally(incidents)
    data = hour_weekday_matrix(tally)
    if data.n_known == 0:
        raise DataError("no incident has a recorded time of day: no hour x weekday heat map")
    if data.n_known < k_anonymity:
        raise DataError(f"fewer than {k_anonymity} incidents have a time of day: no heat map")
    names = division_names(tally, data.areas, divisions)
    fig = _draw_heatmap(data, names, title, k_anonymity)
    description = f"{fig.axes[0].get_title()}; n = {data.n_known}"
    return figures_core.save_figure(fig, path, dpi, description=description)
