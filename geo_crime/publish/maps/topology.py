"""One shared, quantised and topologically simplified geometry source for all the map's layers.

A map shows the same polygons many times: each unit layer (severity, Gi*, LISA, emerging hot
spots, forecast) draws the units, the reporting districts are often the units themselves, and
the LAPD divisions are drawn both by the base map and as an overlay. :class:`Topology` stores
every polygon once, in the spirit of TopoJSON:

* coordinates are **quantised** to a grid of ``10**-precision`` degrees (1e-5 degrees by
  default: about 0.9 m east-west and 1.1 m north-south in Los Angeles);
* rings are cut into **arcs** at their junctions (where the set of rings sharing a border
  changes, or where three or more borders meet), and an arc shared by two polygons, or by two
  layers, is stored once (:meth:`Topology.encode`);
* each arc is **simplified** once (Douglas-Peucker, in metres, its end points fixed) with the
  smallest tolerance of the objects using it, so neighbours keep exactly the same border: no
  slivers, no gaps. A ring that would collapse keeps its arcs unsimplified;
* arcs are written as integers, the first point relative to the grid origin and the others as
  differences from the previous point.

An object (one layer's polygons) is a list of features, each a list of polygons, each a list of
rings, each a list of arc references: ``i`` for arc ``i`` as stored, ``~i`` (``-i - 1``) for it
reversed. :data:`geo_crime.publish.maps.runtime.RUNTIME_JS` turns them back into GeoJSON geometries
in the browser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

__all__ = ["Topology"]

#: Metres per degree of latitude (WGS84, mid-latitudes).
_M_PER_DEG_LAT = 110_574.0
#: Metres per degree of longitude at the equator.
_M_PER_DEG_LON = 111_320.0


@dataclass
class _Ring:
    """A quantised ring, open (first point not repeated), of one object."""

    points: np.ndarray  # (n, 2) int64 grid coordinates, n >= 3
    tolerance: float  # metres


@dataclass
class Topology:
    """Polygons of several named objects, encoded with shared arcs.

    Parameters
    ----------
    precision : int, default 5
        Decimals of a degree kept: the grid is ``10**-precision`` degrees (5: about 1 m).

    Examples
    --------
    >>> import shapely
    >>> topo = Topology()
    >>> left = shapely.box(-118.30, 34.00, -118.29, 34.01)
    >>> right = shapely.box(-118.29, 34.00, -118.28, 34.01)
    >>> topo.add("cells", [left, right], tolerance_m=0.0)
    >>> encoded = topo.encode()
    >>> len(encoded["arcs"])  # the shared side is stored once
    3
    """

    precision: int = 5
    _rings: list[_Ring] = field(default_factory=list, repr=False)
    _objects: dict[str, list[list[list[int]]]] = field(default_factory=dict, repr=False)

    @property
    def scale(self) -> int:
        """Grid units per degree (``10**precision``)."""
        return 10**self.precision

    def add(self, name: str, geometries: Sequence[Any] | np.ndarray, *, tolerance_m: float) -> None:
        """Add an object: one feature per geometry (in lon/lat), in order.

        Parameters
        ----------
        name : str
            Object name (a layer's geometry source).
        geometries : sequence of shapely geometries
            Polygons or multipolygons in EPSG:4326; ``None``, empty and non-polygonal parts
            give features without polygons.
        tolerance_m : float
            Simplification tolerance in metres (0 keeps every quantised vertex).
        """
        geoms = np.asarray(geometries, dtype=object)
        features: list[list[list[int]]] = [[] for _ in range(len(geoms))]
        parts, owner = shapely.get_parts(geoms, return_index=True)
        polygons = shapely.get_type_id(parts) == 3
        parts, owner = parts[polygons], owner[polygons]
        scale = float(self.scale)
        for polygon, feature in zip(parts, owner, strict=True):
            rings = [polygon.exterior, *polygon.interiors]
            refs: list[int] = []
            for k, ring in enumerate(rings):
                points = _quantised_ring(shapely.get_coordinates(ring), scale)
                if points is None:
                    if k == 0:  # the outer ring collapsed: no polygon
                        break
                    continue
                refs.append(len(self._rings))
                self._rings.append(_Ring(points, float(tolerance_m)))
            if refs:
                features[int(feature)].append(refs)
        self._objects[name] = features

    def __contains__(self, name: str) -> bool:
        return name in self._objects

    def encode(self) -> dict[str, Any]:
        """The topology as JSON-ready data.

        Returns
        -------
        dict
            ``q``: ``[x origin, y origin, grid units per degree]``; ``arcs``: one flat list of
            integers per arc (first point relative to the origin, then differences);
            ``objects``: object name -> features -> polygons -> rings -> arc references.
        """
        if not self._rings:
            return {"q": [0, 0, self.scale], "arcs": [], "objects": dict(self._objects)}
        origin = np.min([r.points.min(axis=0) for r in self._rings], axis=0)
        arcs, ring_refs, arc_tolerance = self._arcs(origin)
        lat0 = float(np.mean([r.points[:, 1].mean() for r in self._rings]))  # grid units
        kept = _simplify(arcs, arc_tolerance, origin, self.scale, lat0)
        # a ring whose simplified arcs collapse keeps its arcs as they were
        for refs in ring_refs:
            distinct = sum(len(kept[_arc(r)]) - 1 for r in refs)
            if distinct < 3:
                for r in refs:
                    kept[_arc(r)] = arcs[_arc(r)]
        objects = {
            name: [[[ring_refs[i] for i in polygon] for polygon in feature] for feature in feats]
            for name, feats in self._objects.items()
        }
        encoded_arcs = []
        for points in kept:
            flat = points.astype(np.int64, copy=True)
            flat[1:] -= points[:-1]
            encoded_arcs.append(flat.ravel().tolist())
        return {
            "q": [int(origin[0]), int(origin[1]), self.scale],
            "arcs": encoded_arcs,
            "objects": objects,
        }

    def _arcs(self, origin: np.ndarray) -> tuple[list[np.ndarray], list[list[int]], list[float]]:
        """Cut every ring at its junctions and store each distinct arc once.

        Returns the arcs (points relative to ``origin``), each ring's arc references and each
        arc's tolerance (the smallest of the rings using it).
        """
        rings = self._rings
        sizes = np.array([len(r.points) for r in rings], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        pts = np.concatenate([r.points for r in rings]) - origin
        ring_of = np.repeat(np.arange(len(rings)), sizes)
        pos = np.arange(len(pts)) - starts[ring_of]
        nxt = np.where(pos + 1 < sizes[ring_of], np.arange(len(pts)) + 1, starts[ring_of])
        prv = np.where(pos > 0, np.arange(len(pts)) - 1, starts[ring_of] + sizes[ring_of] - 1)
        key = (pts[:, 0] << 32) | pts[:, 1]
        lo, hi = np.minimum(key, key[nxt]), np.maximum(key, key[nxt])
        edges, edge_of = np.unique(np.stack([lo, hi], axis=1), axis=0, return_inverse=True)
        edge_of = edge_of.ravel()
        # which rings share an edge: two random 64-bit sums of the rings using it
        rng = np.random.default_rng(0)
        signature = []
        for _ in range(2):
            draws = rng.integers(0, 2**63 - 1, size=len(rings), dtype=np.int64).astype(np.uint64)
            total = np.zeros(len(edges), dtype=np.uint64)
            np.add.at(total, edge_of, draws[ring_of])
            signature.append(total)
        vertices, vertex_of = np.unique(key, return_inverse=True)
        degree = np.bincount(np.searchsorted(vertices, edges.ravel()), minlength=len(vertices))
        out_edge, in_edge = edge_of, edge_of[prv]
        junction = degree[vertex_of] != 2
        for total in signature:
            junction |= total[out_edge] != total[in_edge]

        index: dict[tuple[int, ...], int] = {}
        arcs: list[np.ndarray] = []
        tolerance: list[float] = []
        ring_refs: list[list[int]] = []
        keys = key.tolist()
        for r, ring in enumerate(rings):
            s, n = int(starts[r]), int(sizes[r])
            local = np.flatnonzero(junction[s : s + n])
            ring_keys = keys[s : s + n]
            ring_pts = pts[s : s + n]
            if not len(local):
                pieces = [_closed_arc(ring_keys)]
            else:
                pieces = []
                cut = local.tolist()
                for a, b in zip(cut, [*cut[1:], cut[0] + n], strict=True):
                    order = [i % n for i in range(a, b + 1)]
                    pieces.append((tuple(ring_keys[i] for i in order), order))
            refs = []
            for seq, order in pieces:
                backward = seq[::-1]  # a closed arc reversed still starts at its smallest vertex
                forward = seq <= backward
                canonical = seq if forward else backward
                found = index.get(canonical)
                if found is None:
                    found = len(arcs)
                    index[canonical] = found
                    points = ring_pts[order]
                    arcs.append(points if forward else points[::-1])
                    tolerance.append(ring.tolerance)
                else:
                    tolerance[found] = min(tolerance[found], ring.tolerance)
                refs.append(found if forward else ~found)
            ring_refs.append(refs)
        return arcs, ring_refs, tolerance


def _arc(ref: int) -> int:
    """The arc index of a reference (``~i`` is arc ``i`` reversed)."""
    return ref if ref >= 0 else ~ref


def _quantised_ring(coords: np.ndarray, scale: float) -> np.ndarray | None:
    """A ring's coordinates on the grid, open, without repeated points (None if < 3 left)."""
    if len(coords) < 4 or not np.isfinite(coords).all():
        return None
    q = np.rint(coords[:, :2] * scale).astype(np.int64)
    keep = np.ones(len(q), dtype=bool)
    keep[1:] = (q[1:] != q[:-1]).any(axis=1)
    q = q[keep]
    if len(q) > 1 and (q[0] == q[-1]).all():
        q = q[:-1]
    return q if len(q) >= 3 else None


def _closed_arc(keys: list[int]) -> tuple[tuple[int, ...], list[int]]:
    """A ring without junctions as one closed arc, starting at its smallest vertex."""
    n = len(keys)
    start = min(range(n), key=keys.__getitem__)
    order = [(start + i) % n for i in range(n + 1)]
    return tuple(keys[i] for i in order), order


def _simplify(
    arcs: list[np.ndarray],
    tolerance: list[float],
    origin: np.ndarray,
    scale: int,
    lat0: float,
) -> list[np.ndarray]:
    """Douglas-Peucker on each arc, in metres, keeping its end points (and >= 4 closed)."""
    kept = list(arcs)
    todo = [i for i, a in enumerate(arcs) if len(a) > 2 and tolerance[i] > 0]
    if not todo:
        return kept
    sx = _M_PER_DEG_LON * math.cos(math.radians(lat0 / scale)) / scale
    sy = _M_PER_DEG_LAT / scale
    factor = np.array([sx, sy])
    coords = np.concatenate([arcs[i] for i in todo]) * factor
    which = np.repeat(np.arange(len(todo)), [len(arcs[i]) for i in todo])
    lines = shapely.linestrings(coords, indices=which)
    simple = shapely.simplify(
        lines, np.array([tolerance[i] for i in todo]), preserve_topology=False
    )
    out, out_of = shapely.get_coordinates(simple, return_index=True)
    out = np.rint(out / factor).astype(np.int64)
    bounds = np.searchsorted(out_of, np.arange(len(todo) + 1))
    for j, i in enumerate(todo):
        points = out[bounds[j] : bounds[j + 1]]
        closed = (arcs[i][0] == arcs[i][-1]).all()
        if len(points) >= (4 if closed else 2):
            points[0], points[-1] = arcs[i][0], arcs[i][-1]  # exact end points
            kept[i] = points
    return kept
