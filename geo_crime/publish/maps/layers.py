"""What a map shows, and the units made ready for it.

:class:`MapLayers` bundles the inputs of :func:`geo_crime.publish.maps.build_map`: the units with
their measures, the optional hot-spot, emerging hot spot and forecast tables, the administrative
outlines and the labels. :func:`_prepare_units` checks the units and turns them into what every
unit layer shares (:class:`_Units`): the geometry (drawn once, see
:mod:`geo_crime.publish.maps.topology`), the tooltip values (HTML escaped, and hidden for units
below k-anonymity), the two choropleth measures (severity per km² over the analysis window, the
map's default layer, and the per-resident rate) and their labels. :func:`_aligned` lines a result
table up with the units.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.core.errors import ConfigError, DataError, PrivacyError
from geo_crime.core.periods import Freq
from geo_crime.cube.rates import severity_rate
from geo_crime.publish.privacy import victim_columns
from geo_crime.publish.style import format_number
from geo_crime.units import unit_area_km2

#: Unit columns shown in tooltips when present: column -> label. ``name`` and ``area`` describe
#: the place; the others derive from incidents and are hidden for suppressed units.
DEFAULT_TOOLTIP_COLUMNS: dict[str, str] = {"name": "Place", "top_crime": "Most common crime"}
_PLACE_COLUMNS = frozenset({"name", "area", "area_name", "unit_type"})


@dataclass
class MapLayers:
    """Everything a map can show; only ``units`` is required.

    Attributes
    ----------
    units : geopandas.GeoDataFrame
        One row per unit: ``unit_id``, geometry, ``count`` (incidents in the period, needed for
        k-anonymity), ``severity`` (severity sum) and optionally ``population``, ``area_km2``,
        ``rate``, ``severity_rate``, ``name``, ``top_crime``.
    gi : pandas.DataFrame, optional
        :func:`geo_crime.stats.hotspots.gi_star_table` output (``unit_id``, ``gi_bin``,
        ``gi_z``...).
    lisa : pandas.DataFrame, optional
        :func:`geo_crime.stats.hotspots.lisa_table` output (``unit_id``, ``cluster_code``...).
    emerging : pandas.DataFrame, optional
        ``emerging_hotspots(...).table`` (``unit_id``, ``code`` 1..17, ``category``).
    forecast : pandas.DataFrame, optional
        ``unit_id`` and ``prediction`` (next-period forecast).
    divisions : geopandas.GeoDataFrame, optional
        Division outlines (``unit_id``, optional ``name``).
    rds : geopandas.GeoDataFrame, optional
        Reporting district outlines; derived ones carry ``attrs["approximate"] = True`` or an
        ``approximate`` column.
    period : str
        Label of the period the units' ``count`` and ``severity`` cover: the analysis window
        (e.g. ``"9 complete weeks, 2024-01-08 to 2024-03-04"``).
    forecast_period : str
        Label of the forecast period (default "next period").
    measure : str, default "severity_rate"
        Units column of the per-resident choropleth (the second layer) and of the tooltips'
        rate. :meth:`from_cube` fills ``severity_rate`` with
        :func:`geo_crime.cube.rates.severity_rate`; when a bare units table lacks it, the unsmoothed
        severity per 1,000 residents (else per km²) over the whole period is used and labelled
        so.
    measure_label : str, optional
        Legend title of that choropleth (default: derived from ``measure``).
    density : str, default "severity_km2"
        Units column of the default choropleth: severity points per km² over ``period``. When
        the units lack it, ``severity`` divided by the unit's area in km² is used.
    density_label : str, optional
        Legend title of the default choropleth (default: ``"Severity points per km², "`` and
        ``period``).
    emerging_periods : str
        What the emerging hot spot categories rest on (e.g. ``"9 weeks"``), stated in their
        legend.
    forecast_unit : str, default "severity points"
        Unit of the forecast's ``prediction``, named in its legend.
    tooltip_columns : mapping of str to str
        Extra unit columns shown in tooltips when present (column -> label).
    """

    units: gpd.GeoDataFrame
    gi: pd.DataFrame | None = None
    lisa: pd.DataFrame | None = None
    emerging: pd.DataFrame | None = None
    forecast: pd.DataFrame | None = None
    divisions: gpd.GeoDataFrame | None = None
    rds: gpd.GeoDataFrame | None = None
    period: str = ""
    forecast_period: str = ""
    measure: str = "severity_rate"
    measure_label: str | None = None
    density: str = "severity_km2"
    density_label: str | None = None
    emerging_periods: str = ""
    forecast_unit: str = "severity points"
    tooltip_columns: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_TOOLTIP_COLUMNS)
    )

    @classmethod
    def from_cube(cls, cube: Any, *, window: Any = None, **kwargs: Any) -> MapLayers:
        """Layers of a cube's units over its analysis window, with its severity rate.

        The units' ``count``, ``severity`` and ``severity_km2`` (the default layer: severity
        points per km²) are totals over the analysis window, and the tooltips say so. The
        per-resident layer shows :func:`geo_crime.cube.rates.severity_rate` (EB-smoothed severity
        per 1,000 residents per complete period of each unit), the one rate every output of
        geo_crime uses.

        Parameters
        ----------
        cube : geo_crime.cube.panel.Cube
            Space-time cube.
        window : array_like of bool, optional
            The analysis window: one flag per period of the cube. Default: the periods
            completely recorded for every unit (all periods when there is none, and the label
            says so).
        **kwargs
            Other :class:`MapLayers` fields (``gi``, ``lisa``, ``emerging``, ``forecast``,
            ``divisions``, ``rds``, ``period``...). ``period`` defaults to the window's label
            and ``emerging_periods`` to its number of periods.

        Returns
        -------
        MapLayers

        Raises
        ------
        ConfigError
            A window that is not one flag per period of the cube.
        """
        keep, label = _window(cube, window)
        units = cube.units.copy()
        units["count"] = np.asarray(cube.counts)[:, keep].sum(axis=1).astype(np.int64)
        units["severity"] = np.asarray(cube.severity, dtype=float)[:, keep].sum(axis=1)
        area = unit_area_km2(units)
        with np.errstate(invalid="ignore", divide="ignore"):
            units["severity_km2"] = np.where(area > 0, units["severity"] / area, np.nan)
        if "severity_rate" not in units.columns:
            rate = severity_rate(cube)
            units["severity_rate"] = rate.values
            kwargs.setdefault("measure_label", rate.label)
        kwargs.setdefault("period", label)
        if kwargs.get("emerging") is not None:
            kwargs.setdefault("emerging_periods", f"{int(keep.sum())} {_period_word(cube)}")
        return cls(units=units, **kwargs)

    @classmethod
    def coerce(cls, layers: MapLayers | Mapping[str, Any]) -> MapLayers:
        """A :class:`MapLayers` from itself or from a dict of its fields.

        Raises
        ------
        ConfigError
            Unknown keys in the dict.
        """
        if isinstance(layers, cls):
            return layers
        if not isinstance(layers, Mapping):
            raise ConfigError(f"layers must be MapLayers or a dict, got {type(layers).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(layers) - known)
        if unknown:
            raise ConfigError(f"unknown map layer(s) {unknown}; known: {sorted(known)}")
        return cls(**layers)


def _period_word(cube: Any) -> str:
    """``weeks``, ``days`` or ``months``: the cube's periods, in words."""
    return f"{Freq.parse(cube.freq).word}s"


def _window(cube: Any, window: Any) -> tuple[np.ndarray, str]:
    """The analysis window's period flags and its label (what the legends and tooltips say)."""
    n = len(cube.periods)
    word = _period_word(cube)
    if window is None:
        keep = np.asarray(cube.complete, dtype=bool).all(axis=0) if n else np.zeros(0, bool)
        if not keep.any():
            keep = np.ones(n, dtype=bool)
            if not n:
                return keep, ""
            first, last = cube.periods[0], cube.periods[-1]
            return keep, (
                f"all {n} {word}, {first:%Y-%m-%d} to {last:%Y-%m-%d} (none completely "
                "recorded for every unit)"
            )
        what = "complete"
    else:
        keep = np.asarray(window, dtype=bool)
        if keep.shape != (n,):
            raise ConfigError(f"window must be one flag per period ({n}), got shape {keep.shape}")
        what = "analysed"
    if not keep.any():
        raise ConfigError("the analysis window holds no period")
    chosen = cube.periods[keep]
    label = f"{int(keep.sum())} {what} {word}, {chosen[0]:%Y-%m-%d} to {chosen[-1]:%Y-%m-%d}"
    if keep.sum() < n:
        label += f" (of {n})"
    return keep, label


def _esc(value: Any) -> str:
    """HTML-escape a data value (quotes too) for tooltips, legends and layer names."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True)


def _is_approximate(gdf: pd.DataFrame | None) -> bool:
    if gdf is None:
        return False
    if bool(gdf.attrs.get("approximate", False)):
        return True
    return "approximate" in gdf.columns and bool(
        gdf["approximate"].fillna(False).astype(bool).any()
    )


def _rates(units: gpd.GeoDataFrame, numerator: np.ndarray) -> tuple[np.ndarray, str]:
    if "population" in units.columns:
        pop = pd.to_numeric(units["population"], errors="coerce").to_numpy(dtype=float)
        if np.nansum(pop) > 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(pop > 0, numerator / pop * 1000.0, np.nan), "per 1,000 residents"
    area = unit_area_km2(units)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area > 0, numerator / area, np.nan), "per km²"


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)


@dataclass
class _Units:
    """Units ready for mapping: geometry features and per-unit display values."""

    ids: list[str]
    geometry: np.ndarray  # shapely geometries in EPSG:4326, drawn once for every layer
    base: list[dict]  # place properties shared by every layer: "u" (id), "x<j>" (extras)
    values: list[dict]  # incident-derived tooltip values: "n", "s", "r" (or "suppressed")
    suppressed: np.ndarray
    measure: np.ndarray
    measure_label: str
    rate_label: str
    density: np.ndarray
    density_label: str


def _prepare_units(layers: MapLayers, k_anonymity: int) -> tuple[_Units, list[tuple[str, str]]]:
    """Check the units and compute what every unit layer shows (suppressed values hidden).

    Returns the prepared units and the extra tooltip columns shown (column, label).
    """
    units = _checked_units(layers.units)
    ids = units["unit_id"].astype(str).tolist()
    count = _column(units, "count")
    severity = (
        _column(units, "severity") if "severity" in units.columns else np.full(len(ids), np.nan)
    )
    suppressed = ~(count >= k_anonymity)
    if "suppressed" in units.columns:  # secondary suppression decided upstream
        suppressed |= units["suppressed"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    shown = _Measures.of(layers, units, count, severity)
    victims = victim_columns(layers.tooltip_columns)
    if victims:
        raise PrivacyError(f"victim-level columns {victims} cannot be shown on a public map")
    extras = [(c, a) for c, a in layers.tooltip_columns.items() if c in units.columns]
    extra_values = {c: units[c].tolist() for c, _ in extras}
    hidden = "suppressed"
    base, values = [], []
    for i, uid in enumerate(ids):
        small = bool(suppressed[i])
        values.append(
            {
                "n": hidden if small else format_number(count[i]),
                "s": hidden if small else format_number(severity[i]),
                "r": hidden if small else format_number(shown.rate[i]),
                "d": hidden if small else format_number(shown.density[i]),
            }
        )
        props = {"u": _esc(uid)}
        for j, (column, _alias) in enumerate(extras):
            value = extra_values[column][i]
            props[f"x{j}"] = hidden if small and column not in _PLACE_COLUMNS else _esc(value)
        base.append(props)
    prepared = _Units(
        ids,
        units.geometry.to_numpy(),
        base,
        values,
        suppressed,
        shown.measure,
        shown.measure_label,
        shown.rate_label,
        shown.density,
        shown.density_label,
    )
    return prepared, extras


def _checked_units(units: Any) -> gpd.GeoDataFrame:
    """The map's units, checked (a GeoDataFrame with unique ``unit_id`` and ``count``), in
    EPSG:4326."""
    if not isinstance(units, gpd.GeoDataFrame):
        raise DataError("MapLayers.units must be a GeoDataFrame")
    for column in ("unit_id", "count"):
        if column not in units.columns:
            raise DataError(
                f"map units need a {column!r} column"
                + (" (incidents per unit, for k-anonymity)" if column == "count" else "")
            )
    if units["unit_id"].duplicated().any():
        raise DataError("map units have duplicated unit_id values")
    if units.crs is not None and not units.crs.equals("EPSG:4326"):
        units = units.to_crs("EPSG:4326")
    return units


@dataclass
class _Measures:
    """The per-unit numbers the choropleths and tooltips show, with their labels."""

    measure: np.ndarray
    measure_label: str
    density: np.ndarray
    density_label: str
    rate: np.ndarray
    rate_label: str

    @classmethod
    def of(
        cls, layers: MapLayers, units: gpd.GeoDataFrame, count: np.ndarray, severity: np.ndarray
    ) -> _Measures:
        """The choropleths' measure and density and the tooltips' rate of ``units``."""
        if layers.measure in units.columns:
            measure = _column(units, layers.measure)
            measure_label = layers.measure_label or layers.measure.replace("_", " ").capitalize()
        elif layers.measure == "severity_rate":
            measure, basis = _rates(units, severity)
            measure_label = layers.measure_label or f"Severity {basis} (whole period, unsmoothed)"
        else:
            raise DataError(f"map units have no {layers.measure!r} column")
        if layers.density in units.columns:
            density = _column(units, layers.density)
        else:
            area = unit_area_km2(units)
            with np.errstate(invalid="ignore", divide="ignore"):
                density = np.where(area > 0, severity / area, np.nan)
        density_label = layers.density_label or (
            f"Severity points per km², {layers.period or 'whole period'}"
        )
        # the tooltip's rate is the choropleth's rate: one number, one label, everywhere
        if layers.measure == "severity_rate":
            rate, rate_label = measure, measure_label
        elif "rate" in units.columns:
            rate, rate_label = _column(units, "rate"), "Rate"
        else:
            rate, rate_basis = _rates(units, count)
            rate_label = f"Incidents {rate_basis} (whole period)"
        return cls(measure, measure_label, density, density_label, rate, rate_label)


def _aligned(table: pd.DataFrame, ids: list[str], column: str, what: str) -> np.ndarray:
    if "unit_id" not in table.columns or column not in table.columns:
        raise DataError(f"the {what} table needs 'unit_id' and {column!r} columns")
    keyed = pd.Series(table[column].to_numpy(), index=table["unit_id"].astype(str).to_numpy())
    keyed = keyed[~keyed.index.duplicated()]
    return keyed.reindex(ids).to_numpy()
