"""geo_crime: geospatial analytics for Los Angeles crime.

Stages, one module each, called in one direction::

    ingest -> severity -> coverage -> units -> cube -> stats -> forecast -> export -> query

The public API is reachable from the package itself (``import geo_crime as gc``); names load
their module on first use, so ``import geo_crime`` stays light (TensorFlow is only imported when a
forecast is made).

>>> import geo_crime as gc
>>> name = "Crime_Data_from_2020_to_Present__Ivanco19_first10k.csv.gz"
>>> path = gc.data_dir() / "lapd_crime" / name
>>> incidents, report = gc.load_incidents(path, cache=False)
>>> report.rows_read, int(incidents["severity"].max())
(10000, 100)
>>> cube = gc.make_cube(incidents, gc.h3_units(8), freq="M")
>>> cube.shape
(1513, 12)
>>> gi = gc.run_statistic(cube, "gi", permutations=0).table
>>> gi.sort_values("gi_z").iloc[-1]["gi_label"]
'Hot Spot - 99% Confidence'
>>> gc.run_statistic(gc.make_cube(incidents, gc.division_units()), "gi")
Traceback (most recent call last):
geo_crime.core.errors.TooFewUnitsError: Getis-Ord Gi* needs at least 30 units, got 21
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from geo_crime.core.version import __version__ as __version__

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    # data
    "load_incidents": "geo_crime.ingest",
    "read_incidents": "geo_crime.ingest",
    "read_incidents_parquet": "geo_crime.ingest",
    "default_crime_inputs": "geo_crime.core.config",
    "data_dir": "geo_crime.core.config",
    "CleaningReport": "geo_crime.ingest.cleaning",
    "score_incidents": "geo_crime.ingest.severity",
    "severity_table": "geo_crime.ingest.severity",
    "check_coverage": "geo_crime.record.coverage",
    "fetch_incidents": "geo_crime.net.fetch",
    # units and rates
    "h3_units": "geo_crime.units",
    "rd_units": "geo_crime.units",
    "division_units": "geo_crime.units",
    "polygon_units": "geo_crime.units",
    "make_units": "geo_crime.units",
    "assign_units": "geo_crime.units",
    "attach_population": "geo_crime.cube.rates",
    "rate_per_1000": "geo_crime.cube.rates",
    "eb_smooth": "geo_crime.cube.rates",
    "severity_rate": "geo_crime.cube.rates",
    # cube and statistics
    "Cube": "geo_crime.cube.panel",
    "build_cube": "geo_crime.cube.panel",
    "cube_from_table": "geo_crime.cube.panel",
    "make_cube": "geo_crime.cube.panel",
    "build_weights": "geo_crime.stats.weights",
    "global_moran": "geo_crime.stats.hotspots",
    "local_moran": "geo_crime.stats.hotspots",
    "getis_ord_gi_star": "geo_crime.stats.hotspots",
    "incremental_moran": "geo_crime.stats.incremental",
    "emerging_hotspots": "geo_crime.stats.emerging",
    "run_statistic": "geo_crime.stats.run",
    # forecasting
    "forecast": "geo_crime.forecast",
    # outputs
    "MapLayers": "geo_crime.publish.maps",
    "write_map": "geo_crime.publish.maps",
    "build_map": "geo_crime.publish.maps",
    "export_layers": "geo_crime.publish.export",
    "write_figures": "geo_crime.publish.figures.core",
    # queries
    "CrimeIndex": "geo_crime.query",
    "check_point": "geo_crime.query",
    "unit_results": "geo_crime.cube.summary",
    "cube_summary": "geo_crime.cube.summary",
    # the whole pipeline
    "RunSettings": "geo_crime.settings",
    "run_pipeline": "geo_crime.pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'geo_crime' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name == module_name.rsplit(".", 1)[-1] else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from geo_crime.cube.panel import Cube, build_cube, cube_from_table, make_cube  # noqa: F401
    from geo_crime.ingest import load_incidents  # noqa: F401
