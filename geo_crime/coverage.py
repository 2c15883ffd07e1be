"""Which (area, month) periods are recorded completely enough to trust.

LAPD moved to a new records management system on 7 March 2024, and the legacy "Crime Data from
2020 to Present" set thins out area by area from then: city-wide monthly counts fall from about
19,000 to about 8,000. Slices of the data (such as the head of the export) are incomplete too. A
hot spot or a forecast computed on such months would read a reporting break as a crime drop, so
this stage flags them and later stages leave them out by default.

Method
------
For each area, months are judged in order. A month's **baseline** is the median count of the
area's last ``window`` (12) months that were themselves judged complete; only complete months
enter, so a run of thin months cannot drag the baseline down and pass itself off as normal. With
fewer than ``min_history`` (3) such months, the baseline falls back to the area's average month in
the published annual roll-up of the full data set (``lapd_crime/reference``, 2020-2022; the same
year when available, else the nearest), so the first months of a slice are judged too. A month is
**incomplete** when its count is below ``threshold`` (60%) of the baseline. The median is robust to
one-off spikes, and 60% sits far below normal seasonal swings (about +/-15% month to month) but
well above the 2024 break (about 40%). Months with neither history nor reference stay
``unverified`` (treated as complete, and said so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geo_crime.errors import InputError

REFERENCE_ROLLUP = "lapd_crime/reference/lapd_crime_2020_2022_rollup__area_crmcd_year_counts.csv"


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
    """Completeness of each (area, month).

    Attributes
    ----------
    table
        One row per (area, month): ``area``, ``month`` (first day), ``count``, ``baseline``,
        ``baseline_source`` (``own``, ``reference`` or ``none``), ``ratio``, ``status``
        (``complete``, ``incomplete``, ``missing`` for a month with no rows at all inside the
        area's span, e.g. the gap between two slices, or ``unverified``) and ``complete`` (bool;
        unverified counts as complete).
    threshold, window, min_history
        The settings used.
    """

    table: pd.DataFrame
    threshold: float
    window: int
    min_history: int

    @property
    def incomplete(self) -> pd.DataFrame:
        """The flagged (area, month) rows."""
        return self.table.loc[~self.table["complete"]]

    def complete_mask(self, incidents: pd.DataFrame) -> np.ndarray:
        """Boolean per incident: True when its (area, month) is complete (or unverified)."""
        month = incidents["occurred_at"].dt.to_period("M").dt.start_time
        key = pd.MultiIndex.from_arrays([incidents["area"].astype("Int64"), month])
        flags = self.table.set_index(["area", "month"])["complete"]
        return flags.reindex(key).fillna(True).to_numpy(dtype=bool)

    def citywide(self) -> pd.DataFrame:
        """Monthly totals over all areas with the number of areas flagged."""
        grouped = self.table.groupby("month")
        return pd.DataFrame(
            {
                "count": grouped["count"].sum(),
                "areas_incomplete": grouped["complete"].apply(lambda s: int((~s).sum())),
            }
        ).reset_index()


def check_coverage(
    incidents: pd.DataFrame,
    *,
    threshold: float = 0.6,
    window: int = 12,
    min_history: int = 3,
    reference: pd.DataFrame | None | str = "default",
) -> CoverageResult:
    """Flag (area, month) periods whose count falls far below the area's robust baseline.

    Parameters
    ----------
    incidents
        Cleaned incidents (``area``, ``occurred_at``).
    threshold
        A month is incomplete below ``threshold`` x baseline.
    window
        How many earlier complete months the median baseline looks back over.
    min_history
        Fewer complete months than this -> use the reference baseline.
    reference
        Annual counts per area (see :func:`load_reference_rollup`); ``"default"`` loads the
        shipped roll-up when present, ``None`` disables the fallback.

    Returns
    -------
    CoverageResult
    """
    if not 0 < threshold < 1:
        raise ValueError("threshold must be between 0 and 1")
    if isinstance(reference, str):
        reference = load_reference_rollup()
    month = incidents["occurred_at"].dt.to_period("M")
    counts = (
        pd.DataFrame({"area": incidents["area"].astype("Int64"), "month": month})
        .dropna()
        .value_counts()
        .rename("count")
        .reset_index()
    )
    rows = []
    for area, group in counts.groupby("area"):
        first, last = group["month"].min(), group["month"].max()
        months = pd.period_range(first, last, freq="M")
        series = group.set_index("month")["count"].reindex(months, fill_value=0)
        history: list[int] = []
        for period, count in series.items():
            if len(history) >= min_history:
                baseline, source = float(np.median(history[-window:])), "own"
            else:
                baseline, source = _reference_month(reference, int(area), period.year)
            if count == 0:
                status, ratio = "missing", 0.0
            elif source == "none" or baseline <= 0:
                status = "unverified"
                ratio = np.nan
            else:
                ratio = count / baseline
                status = "complete" if ratio >= threshold else "incomplete"
            if status in ("complete", "unverified"):
                history.append(int(count))
            rows.append((int(area), period.start_time, int(count), baseline, source, ratio, status))
    table = pd.DataFrame(
        rows, columns=["area", "month", "count", "baseline", "baseline_source", "ratio", "status"]
    )
    table["complete"] = table["status"].isin(["complete", "unverified"])
    return CoverageResult(table, threshold, window, min_history)


def _reference_month(reference: pd.DataFrame | None, area: int, year: int) -> tuple[float, str]:
    if reference is None or reference.empty:
        return np.nan, "none"
    rows = reference.loc[reference["area"] == area]
    if rows.empty:
        return np.nan, "none"
    nearest = rows.iloc[(rows["year"] - year).abs().argsort()[:1]]
    return float(nearest["count"].iloc[0]) / 12.0, "reference"
