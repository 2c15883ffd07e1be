"""geo_crime: geospatial analytics for Los Angeles crime.

Stages, one module each, called in one direction::

    ingest -> severity -> coverage -> units -> cube -> stats -> forecast -> export -> query

See ``README.md`` for the command line and a quick start.
"""

from __future__ import annotations

__version__ = "0.1.0"
