"""The space-time cube: a unit x period panel every statistic and model reads.

For each spatial unit (H3 cell, reporting district, division or any polygon) and each period
(day, week or month) the cube holds the incident count, the severity sum and mean, the harm sum,
per-category counts and, where the unit has residents, the rate per 1,000. Units and periods with
no incidents are present with zeros: hot spot statistics and forecasts are biased without them.

Coverage. Each (unit, period) is marked complete or not from the coverage check (an LAPD area's
week can be recorded too thinly to trust, as after the March 2024 records-system change), judged
at the cube's own period length from each source's own rows (see :mod:`geo_crime.record.coverage`).
A unit takes the coverage of its division (the ``area`` column of divisions, RDs and H3 cells; for
polygons without one, the division most of its incidents carry; units with neither follow the
study's divisions). A period no source covers is not complete. :meth:`Cube.complete_periods`
keeps only periods complete for (by default) every unit, which is what the statistics use; models
may use the finer (unit, period) mask.

Layout. Arrays are ``(n_units, n_periods)`` in the order of ``cube.units`` rows and
``cube.periods``. :meth:`Cube.to_frame` gives the long table (one row per unit and period);
:meth:`Cube.save` writes it to Parquet with the units (geometry included) in the file metadata, so
one file carries the whole cube.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from geo_crime.core.errors import DataError, InputError
from geo_crime.core.io_utils import atomic_path
from geo_crime.core.periods import Freq
from geo_crime.record.coverage import check_coverage
from geo_crime.units import assign_units


def mean_per_complete_period(
    values: np.ndarray, complete: np.ndarray, window: int | None = None
) -> np.ndarray:
    """Each unit's mean over its completely recorded periods: the one definition every stage
    uses (statistics, rates, baselines, summaries).

    Parameters
    ----------
    values : numpy.ndarray
        ``(n_units, n_periods)`` values (NaN in an incomplete cell is ignored).
    complete : numpy.ndarray
        ``(n_units, n_periods)`` coverage mask; incomplete cells are left out.
    window : int, optional
        Only the last ``window`` periods.

    Returns
    -------
    numpy.ndarray
        ``(n_units,)``; **NaN for a unit with no complete period** (it has no mean; a caller
        that needs a number says what it puts there, as the spatial statistics do).

    Examples
    --------
    >>> mean_per_complete_period(np.array([[1.0, 3.0], [5.0, 7.0]]),
    ...                          np.array([[True, True], [False, False]])).tolist()
    [2.0, nan]
    """
    values = np.asarray(values, dtype=float)
    complete = np.asarray(complete, dtype=bool)
    if window is not None:
        values, complete = values[:, -window:], complete[:, -window:]
    count = complete.sum(axis=1)
    total = np.where(complete, np.nan_to_num(values), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@dataclass
class Cube:
    """A unit x period panel of crime measures.

    Attributes
    ----------
    units
        Units GeoDataFrame (``unit_id``, ``unit_type``, ``geometry`` ...), one row per cube row.
    periods
        Start of each period.
    freq
        ``D``, ``W`` or ``M``.
    counts, severity, harm
        ``(n_units, n_periods)`` arrays: incidents, severity sum, harm sum.
    categories
        Per-category incident counts, ``{category: (n_units, n_periods) array}``.
    complete
        ``(n_units, n_periods)`` boolean coverage mask.
    meta
        Free-form provenance (unit source, measures, dates, counts outside units...).
    """

    units: gpd.GeoDataFrame
    periods: pd.DatetimeIndex
    freq: Freq
    counts: np.ndarray
    severity: np.ndarray
    harm: np.ndarray
    categories: dict[str, np.ndarray] = field(default_factory=dict)
    complete: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.freq = Freq.parse(self.freq)
        shape = (len(self.units), len(self.periods))
        for name in ("counts", "severity", "harm"):
            if getattr(self, name).shape != shape:
                raise DataError(
                    f"cube {name} has shape {getattr(self, name).shape}, expected {shape}"
                )
        if self.complete is None:
            self.complete = np.ones(shape, dtype=bool)

    # --- views --------------------------------------------------------------------------------

    @property
    def unit_ids(self) -> np.ndarray:
        """Unit ids in row order."""
        return self.units["unit_id"].to_numpy()

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_units, n_periods)``."""
        return self.counts.shape

    def values(self, measure: str = "severity") -> np.ndarray:
        """The dense ``(n_units, n_periods)`` array of a measure.

        Parameters
        ----------
        measure
            ``count``, ``severity`` (sum), ``severity_mean``, ``harm``, ``rate`` (incidents per
            1,000 residents; NaN where no residents) or ``cat:<category>``.
        """
        if measure in ("count", "counts"):
            return self.counts.astype(float)
        if measure in ("severity", "severity_sum"):
            return self.severity
        if measure == "severity_mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(self.counts > 0, self.severity / np.maximum(self.counts, 1), 0.0)
        if measure in ("harm", "harm_sum"):
            return self.harm
        if measure == "rate":
            pop = self.population()
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(pop[:, None] > 0, self.counts / pop[:, None] * 1000.0, np.nan)
        if measure.startswith("cat:") and measure[4:] in self.categories:
            return self.categories[measure[4:]].astype(float)
        raise DataError(f"unknown cube measure {measure!r}")

    def population(self) -> np.ndarray:
        """Residents per unit (NaN when the units carry no population)."""
        if "population" not in self.units:
            return np.full(len(self.units), np.nan)
        return self.units["population"].to_numpy(dtype=float)

    def total(self, measure: str = "severity") -> np.ndarray:
        """Per-unit total of a measure over all periods."""
        return np.nansum(self.values(measure), axis=1)

    def mean_per_complete_period(self, measure: str = "severity") -> np.ndarray:
        """Each unit's mean of ``measure`` over its complete periods, NaN for a unit with none
        (:func:`mean_per_complete_period`)."""
        return mean_per_complete_period(self.values(measure), self.complete)

    def period_complete_share(self) -> np.ndarray:
        """Share of units whose coverage is complete, per period."""
        return self.complete.mean(axis=0)

    def span(self) -> dict:
        """The cube's first and last period (ISO dates) and how many: ``{"periods": 0}`` for
        a cube without periods (an analysis window nothing filled)."""
        periods = pd.DatetimeIndex(self.periods)
        if not len(periods):
            return {"periods": 0}
        return {
            "first": str(periods[0].date()),
            "last": str(periods[-1].date()),
            "periods": int(len(periods)),
        }

    def complete_periods(self, *, min_share: float = 1.0) -> Cube:
        """A cube restricted to periods complete for at least ``min_share`` of the units."""
        keep = self.period_complete_share() >= min_share
        return self.select_periods(keep)

    def select_periods(self, keep: np.ndarray | slice) -> Cube:
        """A cube with only the selected periods (boolean mask, indices or slice)."""
        return Cube(
            units=self.units,
            periods=self.periods[keep],
            freq=self.freq,
            counts=self.counts[:, keep],
            severity=self.severity[:, keep],
            harm=self.harm[:, keep],
            categories={k: v[:, keep] for k, v in self.categories.items()},
            complete=self.complete[:, keep],
            meta=dict(self.meta),
        )

    def select_units(self, keep: np.ndarray) -> Cube:
        """A cube with only the selected units (boolean mask or indices)."""
        return Cube(
            units=self.units.iloc[
                np.flatnonzero(keep) if np.asarray(keep).dtype == bool else keep
            ].reset_index(drop=True),
            periods=self.periods,
            freq=self.freq,
            counts=self.counts[keep],
            severity=self.severity[keep],
            harm=self.harm[keep],
            categories={k: v[keep] for k, v in self.categories.items()},
            complete=self.complete[keep],
            meta=dict(self.meta),
        )

    # --- long form and persistence --------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """The long table: one row per (unit, period) with every measure."""
        n_units, n_periods = self.shape
        frame = pd.DataFrame(
            {
                "unit_id": np.repeat(self.unit_ids, n_periods),
                "period": np.tile(self.periods.to_numpy(), n_units),
                "count": self.counts.ravel().astype(np.int64),
                "severity_sum": self.severity.ravel(),
                "severity_mean": self.values("severity_mean").ravel(),
                "harm_sum": self.harm.ravel(),
                "rate_per_1000": self.values("rate").ravel(),
                "complete": self.complete.ravel(),
            }
        )
        for name, arr in sorted(self.categories.items()):
            frame[f"cat_{name}"] = arr.ravel().astype(np.int64)
        return frame

    def save(self, path: str | os.PathLike) -> Path:
        """Write the cube to one Parquet file (long table; units and metadata in the footer)."""

        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        buffer = io.BytesIO()
        self.units.to_parquet(buffer, index=False)
        meta = dict(table.schema.metadata or {})
        meta[b"geo_crime_units"] = buffer.getvalue()
        meta[b"geo_crime_cube"] = json.dumps(
            {"freq": self.freq, "categories": sorted(self.categories), **self.meta},
            default=str,
        ).encode()
        table = table.replace_schema_metadata(meta)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Cube:
        """Read a cube written by :meth:`save`."""

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        meta = table.schema.metadata or {}
        if b"geo_crime_units" not in meta:
            raise InputError(f"{path}: not a geo_crime cube (no units in the file metadata)")
        units = gpd.read_parquet(io.BytesIO(meta[b"geo_crime_units"]))
        info = json.loads(meta[b"geo_crime_cube"])
        frame = table.to_pandas()
        periods = pd.DatetimeIndex(np.sort(frame["period"].unique()))
        n_units, n_periods = len(units), len(periods)
        if len(frame) != n_units * n_periods:
            raise InputError(
                f"{path}: the cube table has {len(frame)} rows, expected {n_units} x {n_periods}"
            )

        def grid(column: str) -> np.ndarray:
            return frame[column].to_numpy().reshape(n_units, n_periods)

        categories = {c: grid(f"cat_{c}") for c in info.pop("categories", [])}
        freq = info.pop("freq")
        return cls(
            units=units,
            periods=periods,
            freq=freq,
            counts=grid("count"),
            severity=grid("severity_sum").astype(float),
            harm=grid("harm_sum").astype(float),
            categories=categories,
            complete=grid("complete").astype(bool),
            meta=info,
        )


def build_cube(
    incidents: pd.DataFrame,
    units: gpd.GeoDataFrame,
    unit_ids: pd.Series | np.ndarray,
    *,
    freq: str = "W",
    coverage=None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    categories: bool = True,
) -> Cube:
    """Aggregate incidents into a zero-filled unit x period cube.

    Parameters
    ----------
    incidents
        Scored incidents (``occurred_at``, ``severity``, ``harm``, ``crime_category``, ``area``).
    units
        The units (see :mod:`geo_crime.units`); every one gets a row, with or without incidents.
    unit_ids
        The unit id of each incident (NA when outside every unit or not spatially valid), as
        returned by :func:`geo_crime.units.assign_units`.
    freq
        ``D``, ``W`` (weeks starting Monday) or ``M``.
    coverage
        A :class:`~geo_crime.record.coverage.CoverageResult`; without it every cell is complete.
    start, end
        Limit the periods (inclusive); default: the span of the assigned incidents.
    categories
        Also count incidents per ``crime_category``.

    Returns
    -------
    Cube
        ``meta`` records how many incidents were outside the units or the time range.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame({"unit_id": ["a", "b"], "unit_type": "polygon"},
    ...                          geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)
    >>> inc = pd.DataFrame({"occurred_at": pd.to_datetime(["2024-01-01", "2024-01-09"]),
    ...                     "severity": [30, 75], "harm": [10.0, 1095.0],
    ...                     "crime_category": ["simple_assault", "robbery"], "area": [1, 1]})
    >>> cube = build_cube(inc, units, pd.Series(["a", "a"]), freq="W")
    >>> cube.counts.tolist(), cube.severity.tolist()
    ([[1, 1], [0, 0]], [[30.0, 75.0], [0.0, 0.0]])
    """
    freq = Freq.parse(freq)
    ids = pd.Series(np.asarray(unit_ids, dtype=object), index=incidents.index)
    unit_index = pd.Index(units["unit_id"].astype(str))
    if not unit_index.is_unique:
        raise DataError("unit ids must be unique")
    row = unit_index.get_indexer(ids.astype("string").fillna("\0"))
    assigned = row >= 0
    stamps = freq.start(incidents["occurred_at"])
    if start is not None or end is not None or assigned.any():
        first = pd.Timestamp(start) if start is not None else stamps[assigned].min()
        last = pd.Timestamp(end) if end is not None else stamps[assigned].max()
    else:
        raise DataError("no incident falls inside the units: cannot build a cube")
    periods = freq.range(first, last)
    col = periods.get_indexer(stamps)
    in_time = col >= 0
    use = assigned & in_time
    n_units, n_periods = len(units), len(periods)
    flat = row[use] * n_periods + col[use]
    size = n_units * n_periods

    def accumulate(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(flat, weights=weights, minlength=size).reshape(n_units, n_periods)

    counts = accumulate(None).astype(np.int64)
    severity = accumulate(incidents["severity"].to_numpy(dtype=float)[use])
    harm = accumulate(incidents["harm"].to_numpy(dtype=float)[use])
    per_category: dict[str, np.ndarray] = {}
    if categories and "crime_category" in incidents:
        cats = incidents["crime_category"].astype("category")
        codes = cats.cat.codes.to_numpy()[use]
        for k, name in enumerate(cats.cat.categories):
            sel = codes == k
            per_category[str(name)] = (
                np.bincount(flat[sel], minlength=size).reshape(n_units, n_periods).astype(np.int64)
            )
    complete = _coverage_mask(incidents, units, row, use, periods, freq, coverage)
    _warn_disjoint_sources(incidents, use)
    meta = {
        **unit_meta(units),
        "incidents_total": int(len(incidents)),
        "incidents_in_cube": int(use.sum()),
        "incidents_outside_units": int((~assigned).sum()),
        "incidents_outside_periods": int((assigned & ~in_time).sum()),
    }
    return Cube(
        units=units.reset_index(drop=True),
        periods=pd.DatetimeIndex(periods),
        freq=freq,
        counts=counts,
        severity=severity,
        harm=harm,
        categories=per_category,
        complete=complete,
        meta=meta,
    )


def _warn_disjoint_sources(incidents: pd.DataFrame, use: np.ndarray) -> None:
    """Warn when the cube's incidents come from sources whose periods do not overlap.

    Such a cube (the 2020 files and the 2024 files together) zero-fills the years between
    them and sets one period against another in every statistic: one warning names each
    source and its span, so the caller can select one window.
    """
    if "source" not in incidents or not use.any():
        return
    used = incidents.loc[use, ["source", "occurred_at"]]
    spans = (
        used.groupby(used["source"].astype(str), observed=True)["occurred_at"]
        .agg(["min", "max"])
        .dropna()
    )
    groups: list[list[str]] = []
    reach = pd.NaT
    for source, first, last in spans.sort_values("min").itertuples():
        if groups and first <= reach + pd.Timedelta(days=1):  # abutting spans join
            groups[-1].append(source)
            reach = max(reach, last)
        else:
            groups.append([source])
            reach = last
    if len(groups) < 2:
        return
    described = "; then ".join(
        " and ".join(
            f"{s} ({spans.at[s, 'min']:%Y-%m-%d} to {spans.at[s, 'max']:%Y-%m-%d})" for s in group
        )
        for group in groups
    )
    warnings.warn(
        f"the cube mixes sources whose periods do not overlap: {described}. Its statistics "
        "would count the time between them as quiet periods and set one period against "
        "another: select one window (make_cube start and end, or filter occurred_at)",
        stacklevel=4,  # the caller of make_cube
    )


def unit_meta(units: gpd.GeoDataFrame) -> dict:
    """What a cube's ``meta`` says of its units: their type, source and whether approximate.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        The cube's units.

    Returns
    -------
    dict
        ``unit_type`` (``polygon`` when the units do not say), ``unit_source``, ``approximate``.
    """
    return {
        "unit_type": str(units["unit_type"].iloc[0])
        if "unit_type" in units and len(units)
        else "polygon",
        "unit_source": str(units.attrs.get("source", "")),
        "approximate": bool(units.attrs.get("approximate", False)),
    }


def _coverage_mask(incidents, units, row, use, periods, freq, coverage) -> np.ndarray:
    """(unit, period) completeness from the (area, period) coverage of the incidents' sources.

    The coverage must be judged at the cube's own period length (a week is judged on its own
    count, never on the month it falls in, which would look ahead); a result at another length
    is recomputed from ``incidents`` with the same settings. A period that no source covers is
    not complete.
    """
    n_units, n_periods = len(units), len(periods)
    if coverage is None:
        return np.ones((n_units, n_periods), dtype=bool)
    if coverage.freq != freq:
        coverage = check_coverage(
            incidents,
            freq=freq,
            threshold=coverage.threshold,
            by=coverage.by,
        )
    # each unit's division: its own, else the most common among its incidents, else none (-1)
    if "area" in units and units["area"].notna().all():
        unit_area = units["area"].to_numpy(dtype=np.int64)
    else:
        areas = incidents["area"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1)
        pairs = pd.DataFrame({"row": row[use], "area": areas[use]})
        pairs = pairs[pairs["area"] > 0]
        majority = pairs.groupby("row")["area"].agg(lambda s: s.value_counts().index[0])
        unit_area = np.full(n_units, -1, dtype=np.int64)
        unit_area[majority.index.to_numpy()] = majority.to_numpy()
    combined = coverage.combined()
    flags = combined.set_index(["area", "period"])["complete"].astype(bool)
    flags = flags.unstack(fill_value=False).reindex(
        columns=pd.DatetimeIndex(periods), fill_value=False
    )
    # units with no division of their own follow the study: complete only when every division
    # of the other units (all divisions with data when none has one) is
    known = np.isin(unit_area, flags.index.to_numpy())
    study = flags.loc[np.unique(unit_area[known])] if known.any() else flags
    city_ok = study.all(axis=0).to_numpy() if len(study) else np.zeros(n_periods, dtype=bool)
    mask = np.empty((n_units, n_periods), dtype=bool)
    if known.any():
        mask[known] = flags.loc[unit_area[known]].to_numpy()
    mask[~known] = city_ok
    return mask


def cube_from_table(
    table: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    unit_column: str = "unit_id",
    period_column: str = "period",
    count_column: str = "count",
    severity_column: str | None = "severity",
    harm_column: str | None = None,
    freq: str = "M",
) -> Cube:
    """Build a cube from a pre-aggregated table (e.g. published monthly counts per division).

    Parameters
    ----------
    table
        One row per (unit, period) with counts (and optionally severity and harm sums). Missing
        (unit, period) pairs are zeros.
    units
        The units; table rows whose unit is not among them raise :class:`DataError`.
    unit_column, period_column, count_column, severity_column, harm_column
        Column names in ``table``. Without a severity column, severity equals the count.
    freq
        The table's period length.

    Returns
    -------
    Cube
    """
    freq = Freq.parse(freq)
    for column in (unit_column, period_column, count_column):
        if column not in table:
            raise DataError(f"the table has no column {column!r}; found {list(table.columns)}")
    unit_index = pd.Index(units["unit_id"].astype(str))
    row = unit_index.get_indexer(table[unit_column].astype(str))
    if (row < 0).any():
        missing = sorted(set(table.loc[row < 0, unit_column].astype(str)))[:5]
        raise DataError(f"table units not among the units: {missing}")
    stamps = freq.start(pd.to_datetime(table[period_column]))
    periods = freq.range(stamps.min(), stamps.max())
    col = periods.get_indexer(stamps)
    n_units, n_periods = len(units), len(periods)
    flat = row * n_periods + col

    def grid(column: str | None, fallback: np.ndarray) -> np.ndarray:
        weights = fallback if column is None else table[column].to_numpy(dtype=float)
        return np.bincount(flat, weights=weights, minlength=n_units * n_periods).reshape(
            n_units, n_periods
        )

    counts_w = table[count_column].to_numpy(dtype=float)
    counts = grid(count_column, counts_w)
    severity = grid(severity_column if severity_column in table else None, counts_w)
    harm = grid(harm_column if harm_column in table else None, np.zeros(len(table)))
    return Cube(
        units=units.reset_index(drop=True),
        periods=pd.DatetimeIndex(periods),
        freq=freq,
        counts=np.rint(counts).astype(np.int64),
        severity=severity,
        harm=harm,
        meta={
            "unit_type": str(units["unit_type"].iloc[0]) if "unit_type" in units else "polygon",
            "source": "pre-aggregated table",
        },
    )


def make_cube(
    incidents: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    freq: str = "W",
    coverage=None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> Cube:
    """Assign incidents to units and aggregate them into a cube: the one composition of the two.

    The API (``geo_crime.make_cube``), ``geo-crime cube`` and the pipeline all build cubes
    through this function, so a cube always records how its incidents were assigned.

    Parameters
    ----------
    incidents
        Cleaned, scored incidents (:func:`geo_crime.ingest.load_incidents`).
    units
        Units (:mod:`geo_crime.units`).
    freq
        ``D``, ``W`` or ``M``.
    coverage
        A :class:`~geo_crime.record.coverage.CoverageResult` marking thin (source, area, period)
        cells; one judged at another period length is recomputed at ``freq`` from
        ``incidents`` (a week is judged on its own count, never on its month's).
    start, end
        Period range (inclusive).

    Returns
    -------
    Cube
        With the assignment counts in ``cube.meta["assignment"]``.

    Warns
    -----
    UserWarning
        When the incidents in the cube come from sources whose periods do not overlap (the 2020
        files with the 2024 files): the warning names each source and its span.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame({"unit_id": ["west", "east"], "unit_type": "polygon"},
    ...                          geometry=[box(-118.5, 34.0, -118.3, 34.1),
    ...                                    box(-118.3, 34.0, -118.1, 34.1)], crs=4326)
    >>> incidents = pd.DataFrame({
    ...     "lat": [34.05, 34.06, 34.05], "lon": [-118.4, -118.2, -118.2],
    ...     "spatial_valid": True, "occurred_at": pd.to_datetime(["2024-01-02"] * 3),
    ...     "severity": [75, 30, 30], "harm": [1095.0, 10.0, 10.0],
    ...     "crime_category": ["robbery", "simple_assault", "simple_assault"], "area": 1})
    >>> cube = make_cube(incidents, units, freq="M")
    >>> cube.counts.ravel().tolist(), cube.meta["assignment"]["assigned"]
    ([1, 2], 3)
    """

    unit_ids, report = assign_units(incidents, units)
    cube = build_cube(
        incidents, units, unit_ids, freq=freq, coverage=coverage, start=start, end=end
    )
    cube.meta["assignment"] = report.to_dict()
    return cube
