"""Crime rates per 1,000 residents: population on any units, raw rates and Empirical Bayes.

A count of crimes says little until it is set against the people exposed. This module puts a
resident population on any set of units and turns counts into rates, taking care of the two ways
rates mislead on small areas.

Population by areal interpolation
---------------------------------
Population is known for the 2,495 LA County census tracts (2020 tracts; the source year of the
figures is not stated, probably an ACS 5-year estimate). :func:`attach_population` moves it onto
other units (H3 cells, divisions, reporting districts, neighbourhoods) with
:func:`tobler.area_weighted.area_interpolate`, both layers in EPSG:3310 (California Albers, equal
area). Population is *extensive* (it adds up), so a unit receives from each tract the tract's
population times the share of the tract's area that the unit covers. This assumes **residents
are spread uniformly within each tract**: a tract that is half park and half housing gives the
park half its people, and small units (H3 resolution 9-10) inherit the tract's density whatever
they actually contain. The tract's whole area is the denominator (tobler's
``allocate_total=False``), so population is conserved exactly where the units cover the tracts:
the units receive the population of the tracts they cover, in proportion to the part covered,
and a tract half outside the units keeps half of its residents outside. (tobler's default,
``allocate_total=True``, would instead push a straddling tract's whole population into the part
that is covered.) Units get a population only from an explicit call of
:func:`attach_population`: no unit builder of :mod:`geo_crime.units` attaches one.

Raw rates
---------
:func:`rate_per_1000` divides counts by population. A unit without residents (an industrial zone,
a park, a freeway interchange, the airport) has no rate at all: NaN with the reason
``'no residents'``, never ``inf``.

The severity rate
-----------------
Every map, tooltip, figure, GIS layer and report table of geo_crime shows one rate, from
:func:`severity_rate`: **severity points per 1,000 residents per complete period** (week, day or
month, as the cube's), Empirical Bayes smoothed (global). The numerator of each unit is its
severity summed over the periods its coverage marks complete, divided by the number of those
periods, so a unit is never diluted by periods nobody recorded. Units without residents (fewer
than :data:`MIN_RESIDENTS`, one, after interpolation: they take no part in the smoothing), or
without a complete period, have no rate (NaN) and never appear in a rate ranking. Without any
population the rate falls back to severity per km² per complete period (unsmoothed), and its
label says so.

Empirical Bayes smoothing
-------------------------
A unit with 40 residents and 3 crimes has a raw rate of 75 per 1,000, which is mostly noise.
Empirical Bayes (Marshall 1991) shrinks each raw rate towards a reference rate, the more the
smaller the population:

``eb_i = m + w_i (r_i - m)``, ``w_i = a / (a + m / P_i)``, where ``r_i = O_i / P_i`` is the raw
rate, ``m = sum(O) / sum(P)`` the reference rate, ``s2 = sum(P_i (r_i - m)^2) / sum(P)`` and
``a = s2 - m / mean(P)`` the between-unit variance of the true rates (set to 0 when negative,
which shrinks every unit all the way to ``m``).

:func:`eb_smooth` computes the *global* version (one ``m`` and ``a`` for all units), or with
``weights`` the *spatial* version, where ``m_i``, ``a_i`` are computed over the unit and its
neighbours, so each unit is shrunk towards its local rate. Both are vectorised here (the esda
classes ``Empirical_Bayes`` and ``Spatial_Empirical_Bayes`` give the same numbers; the former
does not clip a negative ``a`` and the latter loops in Python). Units with zero or unknown
population take no part: their rate is NaN with a reason, and they are nobody's neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from geo_crime.core.config import DEFAULT_K, EQUAL_AREA_CRS, data_dir
from geo_crime.core.errors import ConfigError, DataError, InputError
from geo_crime.core.periods import Freq
from geo_crime.cube.panel import Cube
from geo_crime.units import read_polygon_layer, unit_area_km2

__all__ = [
    "TRACTS_FILE",
    "attach_population",
    "eb_smooth",
    "load_tracts",
    "rate_per_1000",
]

#: Census tracts with population, relative to :func:`geo_crime.core.config.data_dir`.
TRACTS_FILE = "boundaries/la_county_census_tracts_2020_population__tract_crimes_per_1000.geojson"

#: Reasons a rate is missing.
NO_RESIDENTS = "no residents"

#: Units with fewer residents than this (areal interpolation gives fractions: a park cell may
#: receive 0.3 residents) have no rate: "per 1,000 residents" means nothing there.
MIN_RESIDENTS = 1.0
POPULATION_UNKNOWN = "population unknown"
COUNT_UNKNOWN = "count unknown"


def load_tracts(path: str | Path | None = None) -> gpd.GeoDataFrame:
    """The LA County census tracts with their population (EPSG:4326).

    Parameters
    ----------
    path
        A polygon layer with a ``population`` column (default: the 2,495 LA County 2020 tracts
        in the data folder).

    Returns
    -------
    geopandas.GeoDataFrame
        ``GEOID`` (when present), ``population`` (float) and ``geometry``, invalid geometries
        repaired and non-polygons dropped (see :func:`geo_crime.units.read_polygon_layer`).
    """
    path = Path(path) if path is not None else data_dir() / TRACTS_FILE
    frame, report = read_polygon_layer(path)
    if "population" not in frame.columns:
        raise InputError(f"{path}: no 'population' column")
    keep = [c for c in ("GEOID", "population") if c in frame.columns]
    out = frame[[*keep, frame.geometry.name]].copy()
    out["population"] = pd.to_numeric(out["population"], errors="coerce").astype(float)
    out.attrs["read_report"] = report.to_dict()
    out.attrs["source"] = path.name
    return out


def attach_population(
    units: gpd.GeoDataFrame,
    *,
    tracts: gpd.GeoDataFrame | str | Path | None = None,
    column: str = "population",
) -> gpd.GeoDataFrame:
    """Interpolate tract population onto ``units`` (area-weighted, population uniform in a tract).

    Parameters
    ----------
    units
        Units following the contract of :mod:`geo_crime.units` (any polygons in any CRS work).
    tracts
        Source polygons with a ``population`` column: a GeoDataFrame, a file, or None for the LA
        County census tracts (:func:`load_tracts`).
    column
        Name of the output column.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``units`` with ``column`` (float residents; 0 where no tract reaches) and
        ``attrs["population"]``: the source, how many tracts were used or left out (missing
        population), the total population of the tracts, the total put on the units and the
        share of it.

    Raises
    ------
    DataError
        Negative population, or units without a CRS.
    """
    if units.crs is None:
        raise DataError("units have no CRS")
    source = load_tracts(tracts) if not isinstance(tracts, gpd.GeoDataFrame) else tracts
    if "population" not in source.columns:
        raise InputError("tracts have no 'population' column")
    if source.crs is None:
        raise DataError("tracts have no CRS")
    pop = pd.to_numeric(source["population"], errors="coerce").astype(float)
    if (pop < 0).any():
        raise DataError(f"{int((pop < 0).sum())} tracts have a negative population")
    known = pop.notna().to_numpy()
    src = gpd.GeoDataFrame(
        {"population": pop[known].to_numpy()},
        geometry=source.geometry[known].to_crs(EQUAL_AREA_CRS).to_numpy(),
        crs=EQUAL_AREA_CRS,
    )
    tgt = gpd.GeoDataFrame(
        geometry=units.geometry.to_crs(EQUAL_AREA_CRS).to_numpy(), crs=EQUAL_AREA_CRS
    )
    from tobler.area_weighted import area_interpolate

    if len(tgt):
        est = area_interpolate(
            source_df=src,
            target_df=tgt,
            extensive_variables=["population"],
            allocate_total=False,
        )
        values = est["population"].to_numpy(dtype=float)
    else:
        values = np.zeros(0)
    out = units.copy()
    out[column] = values
    total = float(src["population"].sum())
    out.attrs = dict(units.attrs)
    out.attrs["population"] = {
        "source": str(source.attrs.get("source", "tracts")),
        "method": "tobler area_interpolate, extensive, allocate_total=False (EPSG:3310)",
        "tracts_used": int(known.sum()),
        "tracts_without_population": int((~known).sum()),
        "tract_population": total,
        "population_on_units": float(values.sum()),
        "share_on_units": float(values.sum() / total) if total else float("nan"),
    }
    return out


def _as_float(values: Any, name: str) -> np.ndarray:
    arr = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce")
    return arr.to_numpy(dtype=np.float64, na_value=np.nan).ravel()


def _index_of(*candidates: Any, n: int) -> pd.Index:
    for cand in candidates:
        if isinstance(cand, pd.Series):
            return cand.index
    return pd.RangeIndex(n)


def _prepare(counts: Any, population: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index]:
    """Float arrays, the reason per unit (None when a rate exists) and the output index."""
    c = _as_float(counts, "counts")
    p = _as_float(population, "population")
    if c.shape != p.shape:
        raise InputError(f"counts ({c.size}) and population ({p.size}) differ in length")
    if (p < 0).any():
        raise DataError(f"{int((p < 0).sum())} units have a negative population")
    if (c < 0).any():
        raise DataError(f"{int((c < 0).sum())} units have a negative count")
    reasons = np.full(c.size, None, dtype=object)
    reasons[np.isnan(c)] = COUNT_UNKNOWN
    reasons[p == 0] = NO_RESIDENTS
    reasons[np.isnan(p)] = POPULATION_UNKNOWN
    return c, p, reasons, _index_of(counts, population, n=c.size)


def _outputs(
    rates: np.ndarray, reasons: np.ndarray, index: pd.Index, name: str
) -> tuple[pd.Series, pd.Series]:
    return (
        pd.Series(rates, index=index, name=name, dtype=np.float64),
        pd.Series(reasons, index=index, name="rate_note", dtype=object),
    )


def rate_per_1000(counts: Any, population: Any) -> tuple[pd.Series, pd.Series]:
    """Crimes per 1,000 residents, NaN (with the reason) where there are no residents.

    Parameters
    ----------
    counts
        Crime count per unit (array-like or Series).
    population
        Residents per unit, aligned with ``counts``.

    Returns
    -------
    (pandas.Series, pandas.Series)
        ``rate_per_1000`` and ``rate_note``: None where the rate exists, otherwise
        ``'no residents'`` (population 0), ``'population unknown'`` (NaN) or ``'count unknown'``.
        The index is that of ``counts`` (or ``population``) when a Series, else positional.
        Never ``inf``.

    Raises
    ------
    InputError
        Lengths differ.
    DataError
        A negative count or population.
    """
    c, p, reasons, index = _prepare(counts, population)
    ok = reasons == None  # noqa: E711 - elementwise on an object array
    rates = np.full(c.size, np.nan)
    rates[ok] = 1000.0 * c[ok] / p[ok]
    return _outputs(rates, reasons, index, "rate_per_1000")


def _weights_matrix(weights: Any) -> tuple[sp.csr_matrix, list[Any] | None]:
    """Binary adjacency (no self-loops) and the ids of its rows, from any weights object."""
    ids: list[Any] | None = None
    if hasattr(weights, "graph") and hasattr(weights, "unit_ids"):  # geo_crime SpatialWeights
        matrix = weights.graph.sparse
        ids = list(weights.graph.unique_ids)
    elif hasattr(weights, "unique_ids") and hasattr(weights, "sparse"):  # libpysal Graph
        matrix = weights.sparse
        ids = list(weights.unique_ids)
    elif hasattr(weights, "id_order") and hasattr(weights, "sparse"):  # libpysal W
        matrix = weights.sparse
        ids = list(weights.id_order)
    elif sp.issparse(weights) or isinstance(weights, np.ndarray):
        matrix = weights
    else:
        raise ConfigError(
            "weights must be a geo_crime SpatialWeights, a libpysal Graph or W, or a square "
            f"matrix; got {type(weights).__name__}"
        )
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    if matrix.shape[0] != matrix.shape[1]:
        raise ConfigError(f"weights matrix is not square: {matrix.shape}")
    matrix = (matrix != 0).astype(np.float64).tocsr()
    matrix.setdiag(0.0)
    matrix.eliminate_zeros()
    return matrix, ids


def _align(matrix: sp.csr_matrix, ids: list[Any] | None, counts: Any, n: int) -> sp.csr_matrix:
    if matrix.shape[0] != n:
        raise ConfigError(f"weights cover {matrix.shape[0]} units, counts {n}")
    if ids is None or not isinstance(counts, pd.Series):
        return matrix
    labels = [str(v) for v in counts.index]
    id_text = [str(v) for v in ids]
    if labels == id_text or set(labels) != set(id_text) or len(set(labels)) != n:
        return matrix
    perm = pd.Index(id_text).get_indexer(labels)
    return matrix[perm][:, perm].tocsr()


def eb_smooth(
    counts: Any,
    population: Any,
    *,
    weights: Any = None,
) -> tuple[pd.Series, pd.Series]:
    """Empirical Bayes smoothed rates per 1,000: global, or spatial when ``weights`` are given.

    Parameters
    ----------
    counts
        Crime count per unit.
    population
        Residents per unit.
    weights
        None for global EB (Marshall 1991). For spatial EB, the neighbours of each unit: a
        :class:`geo_crime.stats.weights.SpatialWeights`, a :class:`libpysal.graph.Graph`, a
        :class:`libpysal.weights.W` or a square matrix. Only who neighbours whom matters (any
        non-zero weight counts as one; the unit itself is always included). When ``counts`` is
        a Series whose labels are the weights' ids, the weights are matched to it by label,
        otherwise by position; ``population`` is always taken in the order of ``counts``.

    Returns
    -------
    (pandas.Series, pandas.Series)
        ``eb_rate_per_1000`` and ``rate_note`` (as in :func:`rate_per_1000`: units with no or
        unknown population get NaN and the reason, and take no part in the reference rates).

    Raises
    ------
    InputError
        Lengths differ.
    DataError
        Negative counts or population.
    ConfigError
        Unusable ``weights``.
    """
    c, p, reasons, index = _prepare(counts, population)
    ok = reasons == None  # noqa: E711 - elementwise on an object array
    smoothed = np.full(c.size, np.nan)
    if not ok.any():
        return _outputs(smoothed, reasons, index, "eb_rate_per_1000")
    o, b = c[ok], p[ok]
    rate = o / b
    if weights is None:
        m = o.sum() / b.sum()
        s2 = (b * (rate - m) ** 2).sum() / b.sum()
        a = max(s2 - m / b.mean(), 0.0)
        shrink = a / (a + m / b) if a > 0 else np.zeros_like(b)
        smoothed[ok] = m + shrink * (rate - m)
    else:
        matrix, ids = _weights_matrix(weights)
        matrix = _align(matrix, ids, counts, c.size)
        sub = matrix[ok][:, ok] + sp.identity(int(ok.sum()), format="csr")
        n_local = np.asarray(sub.sum(axis=1)).ravel()
        b_local = sub @ b
        o_local = sub @ o
        m = o_local / b_local
        # sum_j b_j (r_j - m_i)^2 = sum_j b_j r_j^2 - 2 m_i sum_j o_j + m_i^2 sum_j b_j
        s2 = (sub @ (b * rate**2) - 2 * m * o_local + m**2 * b_local) / b_local
        a = np.maximum(s2 - m / (b_local / n_local), 0.0)
        denom = a + m / b
        shrink = np.divide(a, denom, out=np.zeros_like(a), where=denom > 0)
        smoothed[ok] = m + shrink * (rate - m)
    return _outputs(1000.0 * smoothed, reasons, index, "eb_rate_per_1000")


@dataclass
class SeverityRate:
    """The one severity rate of a cube's units (see the module docstring).

    Attributes
    ----------
    values : numpy.ndarray
        The rate per unit (NaN where undefined), in the order of ``cube.units``.
    raw : numpy.ndarray
        The same before smoothing.
    label : str
        What the number is, with its unit and scope (for legends and table headers).
    basis : str
        ``"per 1,000 residents"`` or ``"per km²"``.
    complete_periods : numpy.ndarray
        Complete periods per unit (the denominator of the per-period numerator).
    notes : pandas.Series
        Why a unit has no rate (``None`` where it has one).
    """

    values: np.ndarray
    raw: np.ndarray
    label: str
    basis: str
    complete_periods: np.ndarray
    notes: pd.Series


def severity_rate(cube: Any, units: gpd.GeoDataFrame | None = None) -> SeverityRate:
    """EB-smoothed severity per 1,000 residents per complete period, for each unit of a cube.

    Parameters
    ----------
    cube : geo_crime.cube.panel.Cube
        The space-time cube; its coverage mask picks the complete periods.
    units : geopandas.GeoDataFrame, optional
        Units with ``population`` in the cube's unit order (default: ``cube.units``).

    Returns
    -------
    SeverityRate

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, pandas as pd
    >>> from shapely.geometry import box
    >>> from geo_crime.cube.panel import Cube
    >>> units = gpd.GeoDataFrame({"unit_id": ["a", "b"], "unit_type": "polygon",
    ...     "population": [2000.0, 0.0]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)
    >>> cube = Cube(units=units, periods=pd.date_range("2024-01-01", periods=2, freq="W-MON"),
    ...     freq="W", counts=np.array([[2, 2], [1, 0]]), severity=np.array([[40.0, 60.0],
    ...     [30.0, 0.0]]), harm=np.zeros((2, 2)))
    >>> rate = severity_rate(cube)
    >>> rate.values.round(2).tolist()[0], bool(np.isnan(rate.values[1]))
    (25.0, True)
    >>> rate.label
    'Severity per 1,000 residents per complete week (Empirical Bayes smoothed)'
    """
    units = cube.units if units is None else units
    periods = np.asarray(cube.complete, dtype=bool).sum(axis=1)
    per_period = cube.mean_per_complete_period("severity")
    word = Freq.parse(cube.freq).word
    population = (
        pd.to_numeric(units["population"], errors="coerce").to_numpy(dtype=float)
        if "population" in units
        else None
    )
    if population is not None and np.nansum(population) > 0:
        # a cell that receives 0.3 residents from areal interpolation has nobody living in it
        population = np.where(population < MIN_RESIDENTS, 0.0, population)
        raw, _ = rate_per_1000(per_period, population)
        smoothed, notes = eb_smooth(per_period, population)
        return SeverityRate(
            values=np.asarray(smoothed, dtype=float),
            raw=np.asarray(raw, dtype=float),
            label=f"Severity per 1,000 residents per complete {word} (Empirical Bayes smoothed)",
            basis="per 1,000 residents",
            complete_periods=periods,
            notes=notes.reset_index(drop=True),
        )
    area = unit_area_km2(units)
    with np.errstate(invalid="ignore", divide="ignore"):
        dense = np.where(area > 0, per_period / area, np.nan)
    notes = pd.Series(np.where(np.isnan(dense), "no complete period", None), dtype=object)
    return SeverityRate(
        values=dense,
        raw=dense,
        label=f"Severity per km² per complete {word} (no population available)",
        basis="per km²",
        complete_periods=periods,
        notes=notes,
    )


#: Units with fewer residents are left out of a rate ranking (they keep their rate on maps): a
#: ranking "per 1,000 residents" of places where a handful of people live would rank car parks.
RANKING_MIN_RESIDENTS = 100


@dataclass
class RateRanking:
    """Units ranked by the severity rate, and how many were left out and why.

    Attributes
    ----------
    rate
        The :class:`SeverityRate` of every unit.
    table
        Ranked units (highest smoothed rate first): ``unit``, ``residents``, ``incidents``
        (in complete periods), ``raw`` and ``smoothed`` rate.
    undefined
        Units with no rate (no residents, or no complete period).
    few_residents
        Units with a rate but fewer than :data:`RANKING_MIN_RESIDENTS` residents.
    """

    rate: SeverityRate
    table: pd.DataFrame
    undefined: int
    few_residents: int


def rate_ranking(
    cube: Cube,
    units: gpd.GeoDataFrame,
    *,
    k_anonymity: int = DEFAULT_K,
    hidden: np.ndarray | None = None,
    min_residents: int = RANKING_MIN_RESIDENTS,
) -> RateRanking | None:
    """Rank units by the severity rate per 1,000 residents, leaving out those it would mislead.

    A unit enters the ranking when it has a rate, at least ``min_residents`` residents, at
    least ``k_anonymity`` incidents in complete periods and is not suppressed.

    Parameters
    ----------
    cube
        The cube (its coverage mask decides the complete periods).
    units
        The cube's units with ``population`` (:func:`attach_population`).
    k_anonymity
        Units with fewer incidents are left out.
    hidden
        Boolean per unit row, true where the unit is suppressed
        (:func:`geo_crime.publish.privacy.hidden_mask`); those are left out.
    min_residents
        Units with fewer residents are left out.

    Returns
    -------
    RateRanking or None
        None when the units have no population (the rate is then per km², not per resident).
    """
    rate = severity_rate(cube, units)
    if rate.basis != "per 1,000 residents":
        return None
    complete = np.asarray(cube.complete, dtype=bool)
    counts = np.where(complete, cube.counts, 0).sum(axis=1)
    table = pd.DataFrame(
        {
            "unit": units["unit_id"].to_numpy(),
            "residents": units["population"].to_numpy(dtype=float),
            "incidents": counts,
            "raw": rate.raw,
            "smoothed": rate.values,
        }
    )
    undefined = int(np.isnan(rate.values).sum())
    few = int((np.isfinite(table["smoothed"]) & (table["residents"] < min_residents)).sum())
    shown = ~np.asarray(hidden, dtype=bool) if hidden is not None else True
    kept = table[
        np.isfinite(table["smoothed"])
        & (table["incidents"] >= k_anonymity)
        & shown
        & (table["residents"] >= min_residents)
    ]
    ranked = kept.sort_values("smoothed", ascending=False).reset_index(drop=True)
    return RateRanking(rate, ranked, undefined, few)
