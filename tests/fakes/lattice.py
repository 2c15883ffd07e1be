"""A bundled 6 x 6 lattice with known spatial statistics, as esda tests use ``libpysal.examples``.

The units are 36 unit squares (in degrees, near Los Angeles, EPSG:4326) in 6 rows and 6
columns; ``unit_id`` is ``"r<row>c<col>"`` in row-major order. With *rook* contiguity (a shared
edge) a cell has 2 (the 4 corners), 3 (the 16 other border cells) or 4 (the 16 inner cells)
neighbours. The grid is 6 x 6 and not 5 x 5 because the hot-spot statistics refuse fewer than
30 units (ArcGIS's minimum, :data:`geo_crime.stats.significance.MIN_UNITS`).

Every expected value below is worked out by hand from the published formulas; the tests in
``tests/test_stats_fixture.py`` assert them to 1e-12. Notation: ``n = 36``, ``z = y - mean(y)``,
``lag_i = sum_j w_ij z_j``.

Global Moran's I (Moran 1950; Cliff & Ord 1981), row-standardised weights (``S0 = n``)::

    I = (n / S0) * sum_i z_i lag_i / sum_i z_i**2,        E[I] = -1 / (n - 1)

* :func:`checkerboard` — ``y = (row + col) % 2``. Every rook neighbour of a cell has the other
  value, so ``lag_i = -z_i`` and ``I = -1`` exactly (the lower bound for row-standardised weights
  on a bipartite graph).
* :func:`two_halves` — ``y = 1`` in columns 0-2, ``0`` in columns 3-5; ``z = +-1/2``,
  ``sum z**2 = 9``. Cells away from the divide have all neighbours alike (``z_i lag_i = 1/4``,
  24 cells). On the divide (columns 2 and 3) a border cell (rows 0, 5; 3 neighbours, one across)
  has ``lag_i = z_i / 3`` (``z_i lag_i = 1/12``, 4 cells) and an inner cell (4 neighbours, one
  across) ``lag_i = z_i / 2`` (``1/8``, 8 cells). So ``sum z_i lag_i = 6 + 1/3 + 1 = 22/3`` and
  ``I = (22/3) / 9 = 22/27``.

Local Moran's I (Anselin 1995), in esda's normalisation (``Moran_Local.Is``)::

    I_i = (n - 1) * z_i * lag_i / sum_j z_j**2

* On the checkerboard ``z_i lag_i = -z_i**2`` for every cell, so ``I_i = -(n - 1) / n = -35/36``
  everywhere; the cells with ``y = 1`` are High-Low outliers (quadrant 4), those with ``y = 0``
  Low-High (quadrant 2).

Getis-Ord Gi* (Getis & Ord 1992; Ord & Getis 1995, eq. 14), binary weights with ``w_ii = 1``::

    G*_i = sum_j w_ij y_j / sum_j y_j
    z_i  = (sum_j w_ij y_j - mean(y) W_i) / (S sqrt((n W_i - W_i**2) / (n - 1)))
    W_i  = sum_j w_ij (neighbours + 1),   S = sqrt(sum_j y_j**2 / n - mean(y)**2)

* :func:`single_hot_cell` — ``y = 1`` at row 2, column 2 (an inner cell), ``0`` elsewhere:
  ``mean(y) = 1/36`` and ``S = sqrt(35) / 36``, so ``z_i = (36 a_i - W_i) / sqrt(W_i (36 - W_i))``
  with ``a_i = 1`` when the hot cell is in ``i``'s neighbourhood (itself or a rook neighbour)
  and ``0`` otherwise. The hot cell and its 4 neighbours (``W = 5``): ``z = 31 / sqrt(155)``
  and ``G* = 1``; any other cell ``G* = 0`` and ``z = -W / sqrt(W (36 - W))``:
  ``-5 / sqrt(155)`` inside (``W = 5``), ``-4 / sqrt(128)`` on a border (``W = 4``),
  ``-3 / sqrt(99)`` in a corner (``W = 3``).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
from shapely.geometry import box

#: Rows and columns of the lattice.
SIDE = 6
N = SIDE * SIDE
#: South-west corner (lon, lat) and side (degrees) of the cells.
ORIGIN = (-118.5, 34.0)
CELL = 0.01

#: Moran's I of :func:`checkerboard` and of :func:`two_halves` (rook, row-standardised).
CHECKERBOARD_I = -1.0
TWO_HALVES_I = 22 / 27
#: E[I] = -1 / (n - 1).
EXPECTED_I = -1 / (N - 1)
#: Local Moran's I of every cell of :func:`checkerboard` (esda's normalisation).
CHECKERBOARD_LOCAL_I = -(N - 1) / N
#: esda's quadrant codes: 2 Low-High, 4 High-Low.
LOW_HIGH, HIGH_LOW = 2, 4

#: The hot cell of :func:`single_hot_cell`.
HOT = (2, 2)
#: Gi* z-scores of :func:`single_hot_cell`: in the hot cell's neighbourhood, and outside it for
#: an inner cell, a border cell and a corner.
GI_Z_HOT = 31 / math.sqrt(155)
GI_Z_INNER = -5 / math.sqrt(155)
GI_Z_BORDER = -4 / math.sqrt(128)
GI_Z_CORNER = -3 / math.sqrt(99)


def lattice_units() -> gpd.GeoDataFrame:
    """The 36 unit squares, ``unit_id`` ``r<row>c<col>``, row-major, EPSG:4326.

    Shared edges are bit-identical: a cell's corners are ``ORIGIN + k * CELL`` for integer ``k``,
    computed the same way for both cells.
    """
    xs = [ORIGIN[0] + k * CELL for k in range(SIDE + 1)]
    ys = [ORIGIN[1] + k * CELL for k in range(SIDE + 1)]
    ids, geoms = [], []
    for row in range(SIDE):
        for col in range(SIDE):
            ids.append(f"r{row}c{col}")
            geoms.append(box(xs[col], ys[row], xs[col + 1], ys[row + 1]))
    return gpd.GeoDataFrame({"unit_id": ids}, geometry=geoms, crs="EPSG:4326")


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each unit, in the order of :func:`lattice_units`."""
    rows, cols = np.divmod(np.arange(N), SIDE)
    return rows, cols


def checkerboard() -> np.ndarray:
    """``y = (row + col) % 2``."""
    rows, cols = _grid()
    return ((rows + cols) % 2).astype(float)


def two_halves() -> np.ndarray:
    """``y = 1`` in the western three columns, ``0`` in the eastern three."""
    _, cols = _grid()
    return (cols < SIDE // 2).astype(float)


def single_hot_cell() -> np.ndarray:
    """``y = 1`` in the cell :data:`HOT`, ``0`` elsewhere."""
    rows, cols = _grid()
    return ((rows == HOT[0]) & (cols == HOT[1])).astype(float)


def rook_degree() -> np.ndarray:
    """Number of rook neighbours of each unit (2 in a corner, 3 on a border, 4 inside)."""
    rows, cols = _grid()
    border = (rows == 0).astype(int) + (rows == SIDE - 1) + (cols == 0) + (cols == SIDE - 1)
    return 4 - border


def expected_gi_star_z() -> np.ndarray:
    """The Gi* z-score of every unit for :func:`single_hot_cell`, from the closed form above."""
    rows, cols = _grid()
    near = np.abs(rows - HOT[0]) + np.abs(cols - HOT[1]) <= 1  # the cell itself or a rook pair
    w = rook_degree() + 1.0
    return (N * near - w) / np.sqrt(w * (N - w))
