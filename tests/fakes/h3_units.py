"""H3 cells as a units table, as :func:`geo_crime.units.make_units` would give them."""

from __future__ import annotations

import geopandas as gpd
import h3
from shapely.geometry import Polygon


def h3_units(cells: list[str]) -> gpd.GeoDataFrame:
    """Units (EPSG:4326) of H3 cells; h3 gives (lat, lng) pairs, shapely wants (x=lng, y=lat)."""
    geoms = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    return gpd.GeoDataFrame(
        {"unit_id": list(cells), "unit_type": "h3"}, geometry=geoms, crs="EPSG:4326"
    )
