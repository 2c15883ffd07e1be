"""Spatial weights: who is whose neighbour.

Every local and global spatial statistic in :mod:`geo_crime.stats.hotspots` and
:mod:`geo_crime.stats.emerging` compares a unit with its *neighbours*. This module decides who
those are and wraps the answer in a :class:`SpatialWeights` object that carries a
:class:`libpysal.graph.Graph` (binary, no self-loops, ids = ``unit_id`` in the row order of
``units``) plus the diagnostics that matter before any statistic is trusted: the *islands* (units
with no neighbour at all, whose local statistics are meaningless) and the *connected components*
(groups of units that never see each other, e.g. the San Fernando Valley and the Harbor area when
the band is too short).

Methods
-------
``"h3"``
    Units are H3 cells (``unit_id`` is the cell string). Neighbours are the cells of
    ``h3.grid_disk(cell, rings)`` other than the cell itself, **kept only when they are present in
    ``units``**: a cell whose ring is empty of other units is an island.
``"queen"`` / ``"rook"``
    Polygon contiguity (shared vertex / shared edge), via ``Graph.build_contiguity``.
``"distance"``
    Binary distance band on unit centroids in EPSG:3310 (California Albers, metres): ``j`` is a
    neighbour of ``i`` when ``d(i, j) <= distance``. With ``distance=None`` the band is the smallest
    one that gives every unit at least one neighbour (the largest nearest-neighbour distance), the
    ArcGIS default.
``"knn"``
    The ``k`` nearest centroids (EPSG:3310).
``"auto"``
    ``"h3"`` when the ``unit_type`` column says ``'h3'`` for every row, otherwise ``"queen"``.

The statistics need two versions of the same graph, both available as methods:
:meth:`SpatialWeights.row_standardised` (rows sum to one; Moran's I and LISA) and
:meth:`SpatialWeights.binary_with_self` (ones, including a unit's own cell; Getis-Ord Gi*).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import h3
import numpy as np
from libpysal.graph import Graph
from scipy.spatial import cKDTree

from geo_crime.core.errors import ConfigError, DataError

__all__ = [
    "METHODS",
    "PROJECTED_CRS",
    "SpatialWeights",
    "build_weights",
    "projected_centroids",
    "nearest_neighbour_distances",
    "validate_units",
]

PROJECTED_CRS = 3310
"""EPSG code used for every area and distance (NAD83 / California Albers, metres)."""

METHODS = ("auto", "h3", "queen", "rook", "distance", "knn")

Method = Literal["auto", "h3", "queen", "rook", "distance", "knn"]


@dataclass(eq=False)
class SpatialWeights:
    """Spatial weights of a set of units, with island and component diagnostics.

    Attributes
    ----------
    graph : libpysal.graph.Graph
        Binary graph without self-loops; its ids are the ``unit_id`` values in the row order of
        ``units``. Islands are encoded the libpysal way (a self-loop of weight 0).
    method : str
        The method actually used (``"auto"`` is resolved).
    unit_ids : numpy.ndarray
        ``unit_id`` per row, in the order of ``units``.
    islands : list of str
        ``unit_id`` of the units that have no neighbour.
    n_components : int
        Number of connected components (an island counts as a component of its own).
    component_labels : numpy.ndarray
        Integer component label per unit, aligned with ``unit_ids``.
    params : dict
        Parameters of the construction (``rings``, ``k``, ``distance`` in metres, ...).
    """

    graph: Graph
    method: str
    unit_ids: np.ndarray
    islands: list[str]
    n_components: int
    component_labels: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Graph] = field(default_factory=dict, init=False, repr=False)

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.unit_ids)

    @property
    def cardinalities(self) -> np.ndarray:
        """Number of neighbours of each unit (self excluded), aligned with ``unit_ids``."""
        return self.graph.cardinalities.to_numpy()

    @property
    def n_links(self) -> int:
        """Number of directed neighbour links (each symmetric pair counts twice)."""
        return int(self.cardinalities.sum())

    def row_standardised(self) -> Graph:
        """Row-standardised graph (each non-island row sums to 1), for Moran's I and LISA.

        Returns
        -------
        libpysal.graph.Graph
            Transformation ``"R"`` of :attr:`graph`; island rows stay all-zero.
        """
        if "R" not in self._cache:
            self._cache["R"] = self.graph.transform("R")
        return self._cache["R"]

    def binary_with_self(self) -> Graph:
        """Binary graph with a self-weight of one on every unit, for Getis-Ord Gi*.

        Returns
        -------
        libpysal.graph.Graph
            Ones for neighbours and for the unit itself (so an island still has its own cell).
        """
        if "B*" not in self._cache:
            self._cache["B*"] = self.graph.transform("B").assign_self_weight(1.0)
        return self._cache["B*"]

    def binary_sparse(self, *, include_self: bool = False) -> Any:
        """Binary adjacency as a ``scipy.sparse`` CSR array aligned with ``unit_ids``.

        Parameters
        ----------
        include_self : bool, default False
            Put ones on the diagonal (the Gi* neighbourhood).

        Returns
        -------
        scipy.sparse.csr_array
            ``(n, n)`` matrix of 0/1 floats.
        """
        g = self.binary_with_self() if include_self else self.graph.transform("B")
        return g.sparse.tocsr()

    def summary(self) -> str:
        """One-line description: units, links, neighbour counts, components and islands.

        Returns
        -------
        str
            For example ``"h3 weights (rings=1): 274 units, 1,522 links, neighbours mean 5.6
            (min 0, max 6); 2 components (largest 273 units); 1 island: 8829a1d4a9fffff"``.
        """
        card = self.cardinalities
        sizes = np.bincount(self.component_labels) if self.n else np.array([0])
        opts = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items() if v is not None)
        head = f"{self.method} weights" + (f" ({opts})" if opts else "")
        comp = "component" if self.n_components == 1 else "components"
        text = (
            f"{head}: {self.n:,} units, {self.n_links:,} links, neighbours mean "
            f"{card.mean():.1f} (min {card.min()}, max {card.max()}); "
            f"{self.n_components} {comp} (largest {sizes.max():,} units); "
        )
        if not self.islands:
            return text + "no islands"
        shown = ", ".join(self.islands[:5]) + (", ..." if len(self.islands) > 5 else "")
        noun = "island" if len(self.islands) == 1 else "islands"
        return text + f"{len(self.islands)} {noun}: {shown}"

    def __str__(self) -> str:
        return self.summary()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def validate_units(units: gpd.GeoDataFrame) -> np.ndarray:
    """Check the ``units`` contract and return the ``unit_id`` values as strings.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with a unique string column ``unit_id`` and polygon geometry.

    Returns
    -------
    numpy.ndarray
        ``unit_id`` per row (object array of str).

    Raises
    ------
    DataError
        If ``units`` is not a GeoDataFrame, has no CRS, lacks ``unit_id``, or has duplicated,
        missing or empty ids or geometries.
    """
    if not isinstance(units, gpd.GeoDataFrame):
        raise DataError(f"units must be a GeoDataFrame, got {type(units).__name__}")
    if "unit_id" not in units.columns:
        raise DataError("units has no 'unit_id' column")
    if units.crs is None:
        raise DataError("units has no CRS (expected EPSG:4326)")
    ids = units["unit_id"]
    if ids.isna().any():
        raise DataError(f"units has {int(ids.isna().sum())} missing unit_id values")
    ids = ids.astype(str).to_numpy(dtype=object)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][:5].tolist()
        raise DataError(f"unit_id is not unique: {int((counts > 1).sum())} duplicated, e.g. {dup}")
    empty = units.geometry.isna() | units.geometry.is_empty
    if empty.any():
        raise DataError(f"{int(empty.sum())} units have missing or empty geometry")
    return ids


def projected_centroids(units: gpd.GeoDataFrame) -> np.ndarray:
    """Centroids of the units in EPSG:3310 (metres), as an ``(n, 2)`` array.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units in any CRS.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` x/y coordinates in metres.
    """
    cent = units.geometry.to_crs(PROJECTED_CRS).centroid
    return np.column_stack([cent.x.to_numpy(), cent.y.to_numpy()])


def nearest_neighbour_distances(xy: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest other point.

    Parameters
    ----------
    xy : numpy.ndarray
        ``(n, 2)`` coordinates, ``n >= 2``.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` distances in the units of ``xy``.
    """
    if len(xy) < 2:
        raise DataError("nearest-neighbour distances need at least 2 units")
    dist, _ = cKDTree(xy).query(xy, k=2)
    return dist[:, 1]


def _resolve_method(units: gpd.GeoDataFrame, method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"unknown weights method {method!r}; use one of {', '.join(METHODS)}")
    if method != "auto":
        return method
    if "unit_type" in units.columns and len(units) and (units["unit_type"] == "h3").all():
        return "h3"
    return "queen"


def _h3_graph(ids: np.ndarray, rings: int) -> Graph:
    if rings < 1:
        raise ConfigError(f"rings must be >= 1, got {rings}")
    bad = [c for c in ids if not h3.is_valid_cell(c)]
    if bad:
        raise DataError(f"{len(bad)} unit_id values are not H3 cells, e.g. {bad[:3]}")
    res = {h3.get_resolution(c) for c in ids}
    if len(res) > 1:
        raise DataError(f"H3 units mix resolutions {sorted(res)}; use one resolution")
    present = set(ids)
    focal: list[str] = []
    neigh: list[str] = []
    weight: list[float] = []
    for cell in ids:
        found = sorted(n for n in h3.grid_disk(cell, rings) if n != cell and n in present)
        if not found:
            focal.append(cell)
            neigh.append(cell)
            weight.append(0.0)
            continue
        focal.extend([cell] * len(found))
        neigh.extend(found)
        weight.extend([1.0] * len(found))
    return Graph.from_arrays(np.array(focal), np.array(neigh), np.array(weight))


def build_weights(
    units: gpd.GeoDataFrame,
    *,
    method: Method = "auto",
    k: int = 8,
    distance: float | None = None,
    rings: int = 1,
) -> SpatialWeights:
    """Build the spatial weights of ``units``.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units (EPSG:4326) with a unique string ``unit_id`` and polygon geometry; ``unit_type``
        ``'h3'`` rows carry the H3 cell in ``unit_id``.
    method : {"auto", "h3", "queen", "rook", "distance", "knn"}, default "auto"
        How neighbours are defined (see the module docstring). ``"auto"`` is ``"h3"`` for H3 units
        and ``"queen"`` otherwise.
    k : int, default 8
        Number of neighbours for ``"knn"``.
    distance : float, optional
        Band in metres (EPSG:3310) for ``"distance"``. ``None`` uses the smallest band that gives
        every unit at least one neighbour.
    rings : int, default 1
        Grid-disk radius for ``"h3"`` (1 = the six touching hexagons).

    Returns
    -------
    SpatialWeights
        The binary graph, its islands and connected components.

    Raises
    ------
    ConfigError
        Unknown method or an invalid ``k``, ``distance`` or ``rings``.
    DataError
        Invalid ``units`` (see :func:`validate_units`) or non-H3 ids for ``"h3"``.
    """
    ids = validate_units(units)
    resolved = _resolve_method(units, method)
    params: dict[str, Any] = {}
    if resolved == "h3":
        graph = _h3_graph(ids, rings)
        params["rings"] = rings
    elif resolved in ("queen", "rook"):
        geoms = units.geometry.set_axis(ids)
        graph = Graph.build_contiguity(geoms, rook=resolved == "rook")
    else:
        xy = projected_centroids(units)
        if resolved == "knn":
            if not 1 <= k < len(ids):
                raise ConfigError(f"k must be between 1 and n_units - 1 = {len(ids) - 1}, got {k}")
            graph = Graph.build_knn(xy, k, coplanar="clique")
            params["k"] = k
        else:
            if distance is None:
                # every unit gets >= 1 neighbour; a hair more so float noise cannot drop one
                distance = float(nearest_neighbour_distances(xy).max()) * (1 + 1e-9)
            if not np.isfinite(distance) or distance <= 0:
                raise ConfigError(f"distance must be a positive number of metres, got {distance}")
            graph = Graph.build_distance_band(xy, float(distance), binary=True)
            params["distance"] = float(distance)
        graph = _relabel(graph, ids)
    graph = graph.transform("B")
    if not np.array_equal(np.asarray(graph.unique_ids, dtype=object), ids):
        raise DataError("internal error: weights ids not aligned with units")  # pragma: no cover
    labels = graph.component_labels.to_numpy()
    islands = [str(i) for i in graph.isolates]
    return SpatialWeights(
        graph=graph,
        method=resolved,
        unit_ids=ids,
        islands=islands,
        n_components=int(graph.n_components),
        component_labels=np.asarray(labels, dtype=int),
        params=params,
    )


def _relabel(graph: Graph, ids: np.ndarray) -> Graph:
    """Replace positional ids 0..n-1 of a coordinate-built graph with ``unit_id`` values."""
    adj = graph.adjacency
    focal = ids[adj.index.get_level_values("focal").to_numpy(dtype=int)]
    neigh = ids[adj.index.get_level_values("neighbor").to_numpy(dtype=int)]
    return Graph.from_arrays(focal, neigh, adj.to_numpy(dtype=float))
