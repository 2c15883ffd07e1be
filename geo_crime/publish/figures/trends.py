"""Static figures (PNG) of *when* crime happens: trends with coverage breaks.

The companions of :mod:`geo_crime.publish.figures.core` (same conventions: matplotlib's Agg
renderer on a private ``Figure``, atomic writes, legends and colour bars outside the data axes):

* :func:`trend_figure`: incidents and severity points per week (or month, or day), city-wide
  and in small multiples per LAPD division, with the periods that the coverage check
  (:mod:`geo_crime.record.coverage`) judges not completely recorded shaded, so a recording break is
  not read as a crime drop. :func:`trend_data` computes everything the figure draws.
* :func:`~geo_crime.publish.figures.hours.hour_weekday_heatmap` (in
  :mod:`geo_crime.publish.figures.hours`): a 7 x 24 heat map of incidents by weekday and hour,
  with the LAPD placeholder times (12:00 and 00:01) measured and named in the caption, never
  dropped. :func:`~geo_crime.publish.figures.hours.hour_weekday_matrix` computes it.
* :func:`emerging_hotspot_figure` (in :mod:`geo_crime.publish.figures.emerging`, named here too):
  the emerging hot spot categories as a static map; suppressed units are grey with no category.
* :func:`study_figures`: the first two for one study, as the pipeline writes them.

Both count figures are public, so they obey the threshold of the maps
(:mod:`geo_crime.publish.privacy`, rule 7): a cell, or a period of a division, with fewer than
``k_anonymity`` incidents is drawn blank (with a second one where one alone would follow from a
total), and a study with fewer than ``k_anonymity`` incidents gets neither figure.

Each reads the incidents through their tally (:class:`geo_crime.record.tallies.StudyTally`), so the
Dask engine, which sums the tallies of a dataset's partitions on a cluster, draws the same
figures.
"""

from __future__ import annotations

import contextlib
import os
import string
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, StrMethodFormatter

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.errors import DataError
from geo_crime.core.periods import Freq
from geo_crime.publish.figures import core as figures_core  # its save_figure saves every figure
from geo_crime.publish.figures.draw import (
    DPI,
    LEGEND_BESIDE,
    as_tally,
    division_names,
    division_scope,
)
from geo_crime.publish.figures.hours import hour_weekday_heatmap
from geo_crime.publish.privacy import count_words, suppressed_units
from geo_crime.record.coverage import CoverageResult, check_coverage
from geo_crime.record.tallies import StudyTally

__all__ = [
    "TrendData",
    "study_figures",
    "trend_data",
    "trend_figure",
]

_COUNT_COLOUR = "#2166ac"
_SEVERITY_COLOUR = "#b2182b"
_INCOMPLETE = {"facecolor": "#fdb863", "alpha": 0.35, "linewidth": 0}
_PARTIAL = {"facecolor": "#d9d9d9", "edgecolor": "#969696", "hatch": "////", "linewidth": 0}


# --------------------------------------------------------------------------------------------
# trend
# --------------------------------------------------------------------------------------------


@dataclass
class TrendData:
    """Everything :func:`trend_figure` draws.

    Attributes
    ----------
    freq : str
        ``D``, ``W`` (Monday..Sunday) or ``M``.
    city : pandas.DataFrame
        Indexed by ``period`` (first day): ``count`` (incidents), ``severity`` (sum of severity
        points), ``areas_incomplete`` (divisions not complete), ``complete`` (every division
        of the data complete), ``partial`` (the period is only partly inside the data) and
        ``shown`` (plotted: not partial).
    areas : pandas.DataFrame
        One row per (``area``, ``period``): ``count``, ``severity``, ``status`` (the coverage
        status; ``not covered`` where no source spans the period), ``complete``, ``partial``,
        ``shown``.
    spans : pandas.DataFrame
        The shaded spans: ``scope`` (``city`` or ``division``), ``area`` (NA for the city),
        ``start``, ``end`` (exclusive) and ``kind`` (``incomplete`` or ``partial``); runs of
        consecutive periods of one kind are merged.
    names : dict of int to str
        Division name per area number.
    first_day, last_day : pandas.Timestamp
        The first and last occurrence day of the data.
    """

    freq: str
    city: pd.DataFrame
    areas: pd.DataFrame
    spans: pd.DataFrame
    names: dict[int, str]
    first_day: pd.Timestamp
    last_day: pd.Timestamp

    @property
    def word(self) -> str:
        """``week``, ``month`` or ``day``."""
        return Freq.parse(self.freq).word


def _spans(starts: pd.DatetimeIndex, ends: pd.DatetimeIndex, kind: np.ndarray) -> list[tuple]:
    out: list[tuple] = []
    for start, end, k in zip(starts, ends, kind, strict=True):
        if k is None:
            continue
        if out and out[-1][2] == k and out[-1][1] == start:
            out[-1] = (out[-1][0], end, k)
        else:
            out.append((start, end, k))
    return out


def _kinds(complete: np.ndarray, partial: np.ndarray) -> np.ndarray:
    return np.where(partial, "partial", np.where(complete, None, "incomplete")).astype(object)


def trend_data(
    incidents: pd.DataFrame | StudyTally,
    coverage: CoverageResult | None = None,
    *,
    freq: str = "W",
    divisions: pd.Series | None = None,
    k_anonymity: int = 0,
) -> TrendData:
    """Counts and severity per period, city-wide and per division, with their coverage flags.

    Parameters
    ----------
    incidents : pandas.DataFrame or StudyTally
        Cleaned, scored incidents (``occurred_at``, ``area``, ``severity``), or their tally
        (:class:`geo_crime.record.tallies.StudyTally`, what the Dask engine sums on a cluster).
    coverage : CoverageResult, optional
        :func:`geo_crime.record.coverage.check_coverage` at the same ``freq``; computed from the
        rows when omitted (a tally needs it given).
        An (area, period) is complete when :meth:`CoverageResult.combined` says so; one it
        has no row for (no source spans it) is not.
    freq : {"W", "M", "D"}, default "W"
        The period.
    divisions : pandas.Series, optional
        Division name per area number; default the incidents' ``area_name``.
    k_anonymity : int, default 0
        ``suppressed`` (in ``city`` and ``areas``) marks the periods with fewer incidents, and
        a second one where one alone would follow from a total (the period's, the division's,
        the study's); they are not drawn.

    Returns
    -------
    TrendData

    Raises
    ------
    DataError
        Missing columns, no dated incident, no division, or a coverage of another frequency.
    """
    freq = Freq.parse(freq)
    if not isinstance(incidents, StudyTally):
        missing = {"occurred_at", "area", "severity"} - set(incidents.columns)
        if missing:
            raise DataError(f"the incidents lack {sorted(missing)}")
        if coverage is None:
            coverage = check_coverage(incidents, freq=freq)
    if coverage is None:
        raise DataError("the trend of a tally needs the coverage check at its period")
    if coverage.freq != freq:
        raise DataError(
            f"the coverage was checked per '{coverage.freq}', the trend is per '{freq}'"
        )
    tally = as_tally(incidents)
    days = tally.days
    if not len(days) or not days["incidents"].sum():
        raise DataError("no incident has an occurrence date")
    code = freq.pandas_code
    first_day, last_day = days["day"].min(), days["day"].max()
    index = pd.period_range(first_day, last_day, freq=code)
    starts, ends = index.start_time, (index + 1).start_time
    frame = pd.DataFrame(
        {
            "period": days["day"].dt.to_period(code).dt.start_time.to_numpy(),
            "area": days["area"].astype("Int64").to_numpy(),
            "count": days["incidents"].to_numpy(dtype=np.int64),
            "severity": days["severity"].to_numpy(dtype=float),
        }
    )
    measures = {"count": ("count", "sum"), "severity": ("severity", "sum")}
    city = frame.groupby("period").agg(**measures).reindex(starts, fill_value=0)
    located = frame.dropna(subset=["area"]).astype({"area": "int64"})
    areas = sorted(int(a) for a in located["area"].unique())
    if not areas:
        raise DataError("no incident has a division (area)")
    full = pd.MultiIndex.from_product([areas, starts], names=["area", "period"])
    per_area = located.groupby(["area", "period"]).agg(**measures).reindex(full, fill_value=0)
    combined = coverage.combined().astype({"area": "int64", "period": "datetime64[ns]"})
    flags = combined.set_index(["area", "period"])
    per_area["status"] = flags["status"].reindex(full).astype(object).fillna("not covered")
    per_area["complete"] = flags["complete"].reindex(full).eq(True)  # no row: not complete
    per_area["partial"] = per_area["status"].eq("partial")
    per_area["shown"] = ~per_area["partial"]
    by_period = per_area.groupby(level="period")
    city["areas_incomplete"] = by_period["complete"].apply(lambda s: int((~s).sum()))
    city["complete"] = by_period["complete"].all()
    city["partial"] = by_period["partial"].any()
    city["shown"] = ~city["partial"]
    cells = per_area["count"].reset_index(drop=True)
    keys = [per_area.index.to_frame(index=False)[key] for key in ("area", "period")]
    per_area["suppressed"] = suppressed_units(cells, k_anonymity, groups=keys).to_numpy()
    city["suppressed"] = suppressed_units(city["count"], k_anonymity).to_numpy()
    city.index.name = "period"
    spans = [
        ("city", pd.NA, *span)
        for span in _spans(starts, ends, _kinds(city["complete"], city["partial"]))
    ]
    for area in areas:
        part = per_area.loc[area]
        kinds = _kinds(part["complete"].to_numpy(), part["partial"].to_numpy())
        spans += [("division", area, *span) for span in _spans(starts, ends, kinds)]
    span_table = pd.DataFrame(spans, columns=["scope", "area", "start", "end", "kind"])
    span_table["area"] = span_table["area"].astype("Int64")
    names = division_names(tally, areas, divisions)
    return TrendData(freq, city, per_area.reset_index(), span_table, names, first_day, last_day)


def _date_axis(ax: Any, first: pd.Timestamp, last: pd.Timestamp, maxticks: int = 8) -> None:
    # ticks chosen once for the data range: an AutoDateLocator re-run on each of ~50 axes at
    # every layout pass is most of the drawing time
    locator = AutoDateLocator(minticks=3, maxticks=maxticks)
    ax.xaxis.set_major_locator(FixedLocator(locator.tick_values(first, last)))
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _shade(ax: Any, spans: pd.DataFrame) -> None:
    for span in spans.itertuples():
        style = _PARTIAL if span.kind == "partial" else _INCOMPLETE
        ax.axvspan(span.start, span.end, zorder=0, **style)


def _midpoints(index: pd.DatetimeIndex, freq: str) -> pd.DatetimeIndex:
    ends = (index.to_period(Freq.parse(freq).pandas_code) + 1).start_time
    return index + (ends - index) / 2


def _series(table: pd.DataFrame, column: str) -> np.ndarray:
    drawn = table["shown"] & ~table["suppressed"]
    return np.where(drawn, table[column].to_numpy(dtype=float), np.nan)


def _draw_trend(data: TrendData, title: str | None, k_anonymity: int) -> Figure:
    areas = list(data.names)
    word = data.word
    small = len(areas) > 1
    ncols = min(7, len(areas))
    nrows = -(-len(areas) // ncols) if small else 0
    fig = Figure(figsize=(16.0, 5.6 + 2.1 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    if small:
        top, bottom = fig.subfigures(2, 1, height_ratios=[5.6, 2.1 * nrows])
    else:
        top, bottom = fig, None
    count_ax, severity_ax = top.subplots(2, 1, sharex=True)
    city = data.city
    x = _midpoints(city.index, data.freq)
    city_spans = data.spans.loc[data.spans["scope"].eq("city")]
    style = {"linewidth": 1.4, "marker": "o", "markersize": 2.5}
    for ax, column, colour, label in (
        (count_ax, "count", _COUNT_COLOUR, f"incidents per {word}"),
        (severity_ax, "severity", _SEVERITY_COLOUR, f"severity points per {word}"),
    ):
        _shade(ax, city_spans)
        ax.plot(x, _series(city, column), color=colour, **style)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.grid(alpha=0.3)
        _date_axis(ax, data.first_day, data.last_day)
    scope = division_scope(areas, data.names)
    count_ax.set_title(f"Incidents per {word}, {scope}", loc="left", fontsize=10)
    severity_title = f"Severity points per {word} (sum over the {word}'s incidents), {scope}"
    severity_ax.set_title(severity_title, loc="left", fontsize=10)
    kinds = set(data.spans["kind"])
    handles = [
        Line2D([], [], color=_COUNT_COLOUR, **style, label=f"incidents per {word}"),
        Line2D([], [], color=_SEVERITY_COLOUR, **style, label=f"severity points per {word}"),
    ]
    incomplete = f"{word} not completely recorded\n(city-wide: any division; panels: that one)"
    if "incomplete" in kinds:
        handles.append(Patch(**_INCOMPLETE, label=incomplete))
    if "partial" in kinds:
        handles.append(
            Patch(**_PARTIAL, label=f"partial {word} at the edge\nof the data: not shown")
        )
    count_ax.legend(handles=handles, **LEGEND_BESIDE, title="Legend")
    span_text = f"{data.first_day.date()} to {data.last_day.date()}"
    fig.suptitle(title or f"Incidents and severity per {word}, {scope}, {span_text}")
    if bottom is not None:
        _draw_divisions(bottom, data, nrows, ncols)
    partial = city.index[city["partial"]]
    notes = [
        f"Data: {count_words(city['count'].sum(), k_anonymity)} incidents occurring {span_text}."
        + (" Weeks run Monday to Sunday." if data.freq == "W" else ""),
        f"Shaded orange: {word}s the coverage check judges not completely recorded (a recording "
        "gap, e.g. the LAPD records-system change of March 2024, not a fall in crime); "
        "city-wide when any division is incomplete, in a division panel for that division.",
    ]
    if len(partial):
        dates = ", ".join(str(p.date()) for p in partial)
        notes.append(
            f"Hatched grey and left out of the lines: partial {word}s at the edge of the data "
            f"({word} of {dates}), so a part-{word} does not read as a drop."
        )
    fig.supxlabel("\n".join(textwrap.fill(n, 190) for n in notes), fontsize=8, x=0.01, ha="left")
    return fig


def _draw_divisions(sub: Any, data: TrendData, nrows: int, ncols: int) -> None:
    word, areas = data.word, list(data.names)
    axes = sub.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    table = data.areas
    city = data.city.loc[data.city["shown"]]
    mean = float(city["severity"].sum() / max(city["count"].sum(), 1)) or 1.0
    shown = table.loc[table["shown"] & ~table["suppressed"]]
    # severity is drawn in incident-equivalents (points / mean points per incident) on the same
    # axes; the right-hand axis of the last column turns them back into points
    peak = max(float(shown["count"].max()), float(shown["severity"].max()) / mean, 1.0)
    top = peak * 1.08 if len(shown) else 1.0
    division_spans = data.spans.loc[data.spans["scope"].eq("division")]
    x = _midpoints(pd.DatetimeIndex(data.city.index), data.freq)
    for i, ax in enumerate(axes.ravel()):
        if i >= len(areas):
            ax.set_axis_off()
            continue
        area = areas[i]
        part = table.loc[table["area"].eq(area)].set_index("period").reindex(data.city.index)
        _shade(ax, division_spans.loc[division_spans["area"].eq(area)])
        ax.plot(x, _series(part, "count"), color=_COUNT_COLOUR, linewidth=1.0)
        severity = _series(part, "severity") / mean
        ax.plot(x, severity, color=_SEVERITY_COLOUR, linewidth=0.9, linestyle="--")
        ax.set_ylim(0, top)
        ax.set_title(f"{area} {data.names[area]}", fontsize=8, pad=2)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        _date_axis(ax, data.first_day, data.last_day, maxticks=4)
        if i % ncols == 0:
            ax.set_ylabel(f"incidents / {word}", fontsize=7)
        if i % ncols == ncols - 1 or i == len(areas) - 1:
            right = ax.secondary_yaxis("right", functions=(lambda v: v * mean, lambda v: v / mean))
            right.set_ylabel(f"severity pts / {word}", fontsize=7, color=_SEVERITY_COLOUR)
            right.tick_params(labelsize=7)
    sub.suptitle(
        f"Per division: incidents per {word} (solid, left axis) and severity points per {word} "
        f"(dashed, right axis, scaled so both lines meet at the overall mean of {mean:.1f} "
        "points per incident: dashed above solid = a more severe mix); same scales in every "
        "panel",
        fontsize=9,
    )


def trend_figure(
    incidents: pd.DataFrame | StudyTally,
    coverage: CoverageResult | None,
    path: str | os.PathLike,
    *,
    freq: str = "W",
    divisions: pd.Series | None = None,
    title: str | None = None,
    dpi: int = DPI,
    k_anonymity: int = DEFAULT_K,
) -> Path:
    """City-wide and per-division trend of incidents and severity, coverage breaks shaded.

    Two city-wide panels (incidents per period, severity points per period) and, when the data
    holds several divisions, one small panel per division with both measures. Periods the
    coverage check judges not completely recorded are shaded: city-wide those where any
    division of the data is incomplete, in a division's panel that division's. Periods only
    partly inside the data (the week holding the last day, a slice starting mid-week) are
    hatched and left out of the lines, so they do not read as drops; the caption names them.

    Parameters
    ----------
    incidents : pandas.DataFrame or StudyTally
        Cleaned, scored incidents (``occurred_at``, ``area``, ``severity``), or their tally.
    coverage : CoverageResult or None
        :func:`geo_crime.record.coverage.check_coverage` of the incidents at ``freq`` (``None``: run
        it on the rows).
    path : path-like
        Destination PNG.
    freq : {"W", "M", "D"}, default "W"
        The period.
    divisions : pandas.Series, optional
        Division name per area number (default: the incidents' ``area_name``).
    title : str, optional
        Figure title (default: what, where and when).
    dpi : int, default 150
        Resolution.
    k_anonymity : int, default 3
        Periods (city-wide or of a division) with fewer incidents are not drawn (see
        :func:`trend_data`).

    Returns
    -------
    pathlib.Path

    See Also
    --------
    trend_data : the numbers drawn.
    """
    data = trend_data(incidents, coverage, freq=freq, divisions=divisions, k_anonymity=k_anonymity)
    fig = _draw_trend(data, title, k_anonymity)
    description = f"{fig.get_suptitle()}; shaded: periods not completely recorded"
    return figures_core.save_figure(fig, path, dpi, description=description)


def study_figures(
    incidents: pd.DataFrame | StudyTally,
    coverage: CoverageResult | None,
    folder: str | os.PathLike,
    *,
    freq: str = "W",
    divisions: gpd.GeoDataFrame | None = None,
    k_anonymity: int = DEFAULT_K,
) -> list[Path]:
    """A study's trend figure and, where times of day are recorded, its hour x weekday map.

    Parameters
    ----------
    incidents : pandas.DataFrame or StudyTally
        The study's incidents, or their tally (:class:`geo_crime.record.tallies.StudyTally`).
    coverage : CoverageResult or None
        The coverage check at ``freq``.
    folder : path-like
        Output folder (``trend.png``, ``hour_weekday.png``).
    freq : str, default "W"
        Period of the trend.
    divisions : geopandas.GeoDataFrame, optional
        LAPD divisions (``area``, ``name``), to name the division panels.
    k_anonymity : int, default 3
        The public threshold: counts below it are not drawn, and a study with fewer incidents
        gets no figure.

    Returns
    -------
    list of pathlib.Path
        The figures written (no heat map when no incident has a time of day).
    """
    names = None
    if divisions is not None:
        names = pd.Series(
            [string.capwords(str(n).lower()) for n in divisions["name"]],
            index=divisions["area"].astype(int).to_numpy(),
        )
    folder = Path(folder)
    tally = as_tally(incidents)
    if 0 < tally.total < k_anonymity:  # every count it could show is below k
        return []
    if coverage is None and not isinstance(incidents, StudyTally):
        coverage = check_coverage(incidents, freq=Freq.parse(freq))
    common = {"divisions": names, "k_anonymity": k_anonymity}
    files = [trend_figure(tally, coverage, folder / "trend.png", freq=freq, **common)]
    with contextlib.suppress(DataError):  # no (or too few) recorded times of day
        files.append(hour_weekday_heatmap(tally, folder / "hour_weekday.png", **common))
    return files
